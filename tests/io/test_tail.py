"""The file tailer against real files in tmp_path: rotation styles, partial lines, globs, stdin."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logtui.core.lines import LineSplitter
from logtui.sources.tail import FileFollower, StdinSource, TailSet


def numbered(i: int) -> str:
    return f"line {i:06d}"


def write_lines(path: Path, lines: range, mode: str = "a") -> None:
    with open(path, mode) as f:
        f.writelines(numbered(i) + "\n" for i in lines)


def eventually(cond: Callable[[], bool], timeout: float = 4.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def logtui_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("logtui-") and t.is_alive()]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(logtui_threads())
    yield
    eventually(lambda: set(logtui_threads()) <= before, timeout=2.0)


# -- rotation under a live writer -----------------------------------------------------------


class Writer(threading.Thread):
    """Appends numbered lines like nginx: O_APPEND, one write() per line (some split in two)."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="test-writer", daemon=True)
        self.path = path
        self.lock = threading.Lock()   # held by the "logrotate" steps, pausing the writer
        self.count = 0
        self.done = threading.Event()
        self.file = open(path, "ab", buffering=0)  # noqa: SIM115 - reopened on rotation

    def reopen(self) -> None:
        self.file.close()
        self.file = open(self.path, "ab", buffering=0)  # noqa: SIM115

    def run(self) -> None:
        while not self.done.is_set():
            with self.lock:
                data = (numbered(self.count) + "\n").encode()
                if self.count % 7 == 3:
                    # A line arriving in two writes: the follower must wait for the newline.
                    self.file.write(data[:4])
                    self.file.write(data[4:])
                else:
                    self.file.write(data)
                self.count += 1
            if self.count % 20 == 0:
                time.sleep(0.001)
        self.file.close()


def shift_rotated(path: Path, keep: int = 9) -> None:
    """logrotate's numbering: access.log.1 -> access.log.2, and so on."""
    for n in range(keep, 0, -1):
        older = Path(f"{path}.{n}")
        if older.exists():
            older.rename(f"{path}.{n + 1}")


def rotate_rename(w: Writer) -> None:
    shift_rotated(w.path)
    w.path.rename(f"{w.path}.1")
    w.reopen()


def rotate_copytruncate(w: Writer) -> None:
    # Done with the writer paused: lines written between logrotate's copy and its truncate
    # are lost in the real world too, whatever the reader does.
    shift_rotated(w.path)
    shutil.copyfile(w.path, f"{w.path}.1")
    os.truncate(w.path, 0)


def rotate_delete(w: Writer) -> None:
    w.file.close()
    w.path.unlink()
    time.sleep(0.02)   # the path is missing for a while
    w.reopen()


@pytest.mark.parametrize("rotate", [rotate_rename, rotate_copytruncate, rotate_delete],
                         ids=["rename", "copytruncate", "delete"])
def test_rotation_loses_and_duplicates_nothing(
    tmp_path: Path, rotate: Callable[[Writer], None]
) -> None:
    path = tmp_path / "access.log"
    writer = Writer(path)
    follower = FileFollower(path, rotate_wait=0.2)
    got: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            got.extend(follower.read())
            # Slower than the writer's bursts, so rotations often find unread lines left.
            time.sleep(0.01)

    poller = threading.Thread(target=poll, name="test-poller", daemon=True)
    writer.start()
    poller.start()
    try:
        for _ in range(5):
            time.sleep(0.03)
            with writer.lock:
                rotate(writer)
                first_after = writer.count
            # The next rotation waits until the follower has read a line of the new file:
            # rotations faster than the poll interval could skip a whole intermediate file.
            eventually(lambda n=first_after: len(got) > n)
        time.sleep(0.03)
        writer.done.set()
        writer.join()
        eventually(lambda: len(got) >= writer.count)
    finally:
        writer.done.set()
        stop.set()
        poller.join()
    assert got == [numbered(i) for i in range(writer.count)]
    assert follower.read() == []
    assert follower.state == "following"
    assert follower.gaps == 0
    follower.close()


def test_rename_rotation_keeps_draining_the_old_file_until_the_writer_reopens(
    tmp_path: Path,
) -> None:
    # logrotate renames and creates the new file; nginx writes to the old one until USR1.
    path = tmp_path / "access.log"
    old = open(path, "a")  # noqa: SIM115
    old.write("a\n")
    old.flush()
    with FileFollower(path, from_start=True, rotate_wait=60) as follower:
        assert follower.read() == ["a"]
        path.rename(tmp_path / "access.log.1")
        path.touch()
        assert follower.read() == []
        old.write("b\nc")
        old.flush()
        assert follower.read() == ["b"]
        old.write("\n")
        old.close()
        write_lines(path, range(2))
        assert follower.read() == ["c", numbered(0), numbered(1)]


def test_copytruncate_found_by_fingerprint_after_the_file_grew_back(tmp_path: Path) -> None:
    # Truncated and rewritten past our offset before we looked: only the fingerprint tells.
    path = tmp_path / "access.log"
    write_lines(path, range(10))
    with FileFollower(path, from_start=True) as follower:
        assert follower.read() == [numbered(i) for i in range(10)]
        write_lines(path, range(10, 15))
        shutil.copyfile(path, f"{path}.1")
        os.truncate(path, 0)
        write_lines(path, range(15, 60))
        assert follower.read() == [numbered(i) for i in range(10, 60)]
        assert follower.gaps == 0


def test_copytruncate_copy_found_among_dated_siblings(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    write_lines(path, range(10))
    with FileFollower(path, from_start=True) as follower:
        assert len(follower.read()) == 10
        write_lines(path, range(10, 12))
        write_lines(tmp_path / "access.log.1", range(1000, 1100), "w")   # an older rotation
        (tmp_path / "access.log-20250102.gz").write_bytes(b"\x1f\x8b not text")
        shutil.copyfile(path, tmp_path / "access.log-20250103")
        os.truncate(path, 0)
        write_lines(path, range(12, 13))
        assert follower.read() == [numbered(i) for i in range(10, 13)]
        assert follower.gaps == 0


def test_truncation_without_a_copy_is_counted_as_a_gap(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    write_lines(path, range(10))
    with FileFollower(path, from_start=True) as follower:
        assert len(follower.read()) == 10
        write_lines(path, range(10, 20))    # never seen: truncated before we read it
        os.truncate(path, 0)
        write_lines(path, range(20, 22))
        assert follower.read() == [numbered(20), numbered(21)]
        assert follower.gaps == 1
        assert follower.lost_bytes_unknown


# -- lines --------------------------------------------------------------------------------------


def test_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"")
    with FileFollower(path) as follower:
        with open(path, "ab") as f:
            f.write(b"abc")
        assert follower.read() == []
        assert follower.pending == 3
        with open(path, "ab") as f:
            f.write(b"def\n")
        assert follower.read() == ["abcdef"]


def test_close_final_returns_the_partial_last_line(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"one\ntwo")
    follower = FileFollower(path, from_start=True)
    assert follower.read() == ["one"]
    assert follower.close(final=True) == ["two"]
    assert follower.state == "closed"
    assert not follower.is_open


def test_long_lines_are_cut_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"x" * 500 + b"\nshort\n")
    with FileFollower(path, from_start=True, max_line=100) as follower:
        assert follower.read() == ["x" * 100, "short"]
        assert follower.truncated == 1


def test_last_lines_of_a_big_file(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    write_lines(path, range(5000))
    with FileFollower(path, last_lines=1000) as follower:
        assert follower.read() == [numbered(i) for i in range(4000, 5000)]
        assert not follower.has_more


def test_from_start_returns_everything_across_bounded_reads(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    write_lines(path, range(5000))
    got: list[str] = []
    with FileFollower(path, from_start=True, max_read=10_000) as follower:
        calls = 0
        while True:
            got += follower.read()
            calls += 1
            assert follower.bytes_read <= 10_000
            if not follower.has_more:
                break
        assert follower.read() == []
    assert got == [numbered(i) for i in range(5000)]
    assert calls >= 6


def test_last_lines_ignores_the_partial_line_and_spans_scan_blocks(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    long = [c * 70_000 for c in "abc"]     # each longer than the 64 KiB scan block
    path.write_text("\n".join(long) + "\npartial")
    with FileFollower(path, last_lines=2) as follower:
        assert follower.read() == long[1:]
        with open(path, "a") as f:
            f.write(" end\n")
        assert follower.read() == ["partial end"]
    with FileFollower(path, last_lines=10) as follower:
        assert follower.read() == [*long, "partial end"]
    with FileFollower(path, last_lines=0) as follower:
        assert follower.read() == []
        write_lines(path, range(1))
        assert follower.read() == [numbered(0)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=40), st.booleans()), max_size=30))
def test_any_appends_and_reads_yield_the_lines_written(steps: list[tuple[bytes, bool]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a.log"
        path.write_bytes(b"")
        written = b""
        got: list[str] = []
        with FileFollower(path, max_read=7) as follower:
            for data, read in steps:
                with open(path, "ab") as f:
                    f.write(data)
                written += data
                if read:
                    got += follower.read()
            while True:
                got += follower.read()
                if not follower.has_more:
                    break
            got += follower.close(final=True)
        # Whatever the timing of reads, the lines are those of the whole file split at once.
        whole = LineSplitter()
        assert got == whole.feed(written) + whole.flush()


# -- missing files and errors ---------------------------------------------------------------


def test_missing_file_is_picked_up_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "later.log"
    with FileFollower(path, last_lines=1) as follower:
        assert follower.state == "missing"
        assert follower.read() == []
        write_lines(path, range(3))
        assert follower.read() == [numbered(i) for i in range(3)]
        assert follower.state == "following"


def test_deleted_file_is_drained_then_released(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    with open(path, "a") as writer, FileFollower(path, rotate_wait=0.3) as follower:
        writer.write("one\n")
        writer.flush()
        path.unlink()
        writer.write("two\n")    # still written to the deleted file
        writer.flush()
        assert follower.read() == ["one", "two"]
        assert follower.state == "missing"
        assert follower.is_open
        time.sleep(0.35)
        assert follower.read() == []
        assert not follower.is_open       # the deleted file's space can be freed
        write_lines(path, range(2))
        assert follower.read() == [numbered(0), numbered(1)]
        assert follower.state == "following"


DENIED_CHILD = """
import sys
from logtui.sources.tail import FileFollower
follower = FileFollower(sys.argv[1], last_lines=2)
lines = follower.read()
print(follower.state, lines, flush=True)
sys.stdin.readline()
lines = follower.read()
print(follower.state, lines, flush=True)
"""


def test_permission_denied_is_a_state_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "secret.log"
    write_lines(path, range(5))
    path.chmod(0)
    # Root reads mode-000 files through CAP_DAC_OVERRIDE: drop it in a child process.
    setpriv = shutil.which("setpriv")
    if os.geteuid() == 0 and setpriv is None:
        pytest.skip("root can read any file (and setpriv is missing to drop that)")
    prefix = [setpriv, "--inh-caps=-dac_override,-dac_read_search",
              "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    child = subprocess.Popen([*prefix, sys.executable, "-c", DENIED_CHILD, str(path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        path.chmod(0o644)
        rest, err = child.communicate("go\n", timeout=20)
    finally:
        child.kill()
        child.wait()
    if not first and os.geteuid() == 0:
        pytest.skip(f"root can read any file (could not drop capabilities: {err.strip()})")
    assert first == "error: permission denied []\n"
    assert rest == f"following {[numbered(3), numbered(4)]}\n"   # --lines still applies


def test_a_directory_is_an_error_state_not_an_exception(tmp_path: Path) -> None:
    path = tmp_path / "logs"
    path.mkdir()
    with FileFollower(path) as follower:
        assert follower.state == "error: is a directory"
        assert follower.read() == []
        path.rmdir()
        write_lines(path, range(1))
        assert follower.read() == [numbered(0)]
        assert follower.state == "following"


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    with FileFollower(path) as follower:
        assert follower.state.startswith("error: not a regular file")
        assert follower.read() == []


# -- TailSet ------------------------------------------------------------------------------------


def test_glob_picks_up_new_files_from_their_start(tmp_path: Path) -> None:
    write_lines(tmp_path / "old.log", range(10))
    (tmp_path / "sub.log").mkdir()          # directories matching a glob are not sources
    with TailSet([str(tmp_path / "*.log")], from_start=False, last_lines=2) as tails:
        assert tails.poll() == [(str(tmp_path / "old.log"), [numbered(8), numbered(9)])]
        write_lines(tmp_path / "new.log", range(3))
        (tmp_path / "new.txt").write_text("not matched\n")
        assert tails.poll() == [(str(tmp_path / "new.log"), [numbered(i) for i in range(3)])]
        assert [(s.tag, s.state) for s in tails.sources] == [
            (str(tmp_path / "old.log"), "following"),
            (str(tmp_path / "new.log"), "following"),
        ]


def test_plain_paths_stay_listed_while_missing_globbed_files_go(tmp_path: Path) -> None:
    plain = tmp_path / "plain.log"
    globbed = tmp_path / "g.log"
    globbed.write_text("x\n")
    with TailSet([str(plain), str(tmp_path / "g*.log")], rotate_wait=0) as tails:
        tails.poll()
        globbed.unlink()
        tails.poll()
        tails.poll()
        assert [(s.tag, s.state) for s in tails.sources] == [(str(plain), "missing")]
        plain.write_text("hello\n")
        assert tails.poll() == [(str(plain), ["hello"])]


def test_poll_is_bounded_and_fair_across_sources(tmp_path: Path) -> None:
    write_lines(tmp_path / "a.log", range(3000))
    write_lines(tmp_path / "b.log", range(3000))
    got: dict[str, list[str]] = {}
    with TailSet([str(tmp_path / "a.log"), str(tmp_path / "b.log")], from_start=True,
                 max_read=20_000) as tails:
        polls = 0
        while True:
            for tag, lines in tails.poll():
                got.setdefault(tag, []).extend(lines)
            polls += 1
            if not tails.has_more:
                break
    assert polls > 2
    expected = [numbered(i) for i in range(3000)]
    assert got == {str(tmp_path / "a.log"): expected, str(tmp_path / "b.log"): expected}


def test_wait_wakes_on_a_write_and_close_stops_the_watcher(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_text("")
    tails = TailSet([str(path)])
    tails.poll()
    tails.wait(0.01)        # starts the watcher thread
    done = threading.Event()

    def keep_writing() -> None:
        # Until the watcher is set up a write may go unseen, so keep writing.
        i = 0
        while not done.is_set():
            write_lines(path, range(i, i + 1))
            i += 1
            done.wait(0.05)

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    try:
        started = time.monotonic()
        tails.wait(30)
        assert time.monotonic() - started < 10, "wait() was not woken by the write"
        assert tails.watch_error is None
        eventually(lambda: bool(tails.poll()))
    finally:
        done.set()
        writer.join()
        tails.close()
    assert logtui_threads() == []


def test_wait_falls_back_to_polling_without_watchfiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "watchfiles", None)    # import now raises ImportError
    path = tmp_path / "a.log"
    with TailSet([str(path)]) as tails:
        tails.poll()
        write_lines(path, range(2))
        tails.wait(0.05)      # starts the watcher thread, which cannot import watchfiles
        eventually(lambda: tails.watch_error is not None)
        started = time.monotonic()
        tails.wait(30)        # polls instead: returns after the fallback interval
        assert time.monotonic() - started < 10
        assert tails.poll() == [(str(path), [numbered(0), numbered(1)])]
        assert "watchfiles" in (tails.watch_error or "")


def test_follow_calls_back_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    write_lines(path, range(3))
    got: list[tuple[str, str]] = []
    stop = threading.Event()
    with TailSet([str(tmp_path / "*.log")], from_start=True) as tails:
        loop = threading.Thread(target=tails.follow,
                                args=(lambda tag, lines: got.extend((tag, x) for x in lines),
                                      stop, 0.05))
        loop.start()
        eventually(lambda: len(got) == 3)
        write_lines(path, range(3, 5))
        eventually(lambda: len(got) == 5)
        stop.set()
        loop.join(timeout=2)
        assert not loop.is_alive()
    assert got == [(str(path), numbered(i)) for i in range(5)]


# -- stdin ------------------------------------------------------------------------------------


def test_stdin_source_reads_a_pipe_and_flushes_at_eof() -> None:
    r, w = os.pipe()
    with open(r, "rb") as stream:
        source = StdinSource(stream)
        os.write(w, b"a\nb")
        got: list[str] = []
        eventually(lambda: bool(got.extend(source.read()) or got))
        assert got == ["a"]
        assert source.state == "following"
        os.write(w, b"c\nd")
        os.close(w)
        eventually(lambda: bool(got.extend(source.read()) or source.state == "closed"))
        assert got == ["a", "bc", "d"]
        source.close()
    assert logtui_threads() == []


def test_stdin_source_close_stops_its_thread_while_the_pipe_stays_open() -> None:
    r, w = os.pipe()
    with open(r, "rb") as stream:
        source = StdinSource(stream)
        os.write(w, b"x")
        time.sleep(0.05)
        assert source.close(final=True) == ["x"]
        assert source.state == "closed"
        assert logtui_threads() == []
    os.close(w)


def test_tailset_mixes_stdin_and_files(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    write_lines(path, range(1))
    r, w = os.pipe()
    with open(r, "rb") as stream, TailSet(["-", str(path)], stdin=stream) as tails:
        os.write(w, b"from stdin\n")
        os.close(w)
        got: dict[str, list[str]] = {}

        def collect() -> bool:
            for tag, lines in tails.poll():
                got.setdefault(tag, []).extend(lines)
            return got.get("-") == ["from stdin"] and str(path) in got

        eventually(collect)
        assert got == {"-": ["from stdin"], str(path): [numbered(0)]}
        assert {s.tag: s.state for s in tails.sources} == {"-": "closed", str(path): "following"}


def test_copy_search_skips_siblings_that_are_not_the_copy(tmp_path: Path) -> None:
    # access.log.1 is a directory here; the search goes on to the real copy.
    path = tmp_path / "access.log"
    write_lines(path, range(4))
    with FileFollower(path, from_start=True) as follower:
        follower.read()
        write_lines(path, range(4, 6))
        (tmp_path / "access.log.1").mkdir()
        shutil.copyfile(path, tmp_path / "access.log.2")
        os.chmod(tmp_path / "access.log.2", stat.S_IRUSR)
        os.truncate(path, 0)
        assert follower.read() == [numbered(4), numbered(5)]


W3C_HEADER = ["#Software: Microsoft Internet Information Services 10.0", "#Version: 1.0",
              "#Date: 2024-05-01 00:00:00", "#Fields: date time cs-method cs-uri-stem sc-status"]


def test_following_the_end_of_a_w3c_log_reads_the_layout_in_force_first(tmp_path: Path) -> None:
    log = tmp_path / "u_ex240501.log"
    requests = [f"2024-05-01 00:00:{n % 60:02} GET /a/{n} 200" for n in range(3000)]
    restarted = [*W3C_HEADER[:3], "#Fields: date time c-ip cs-method cs-uri-stem sc-status"]
    later = [f"2024-05-01 01:00:00 10.0.0.{n} GET /b/{n} 404" for n in range(5)]
    log.write_text("\n".join([*W3C_HEADER, *requests]) + "\n")
    with FileFollower(log, last_lines=2) as follower:
        assert follower.read() == [W3C_HEADER[-1], *requests[-2:]]
    log.write_text("\n".join([*W3C_HEADER, *requests, *restarted, *later]) + "\n")
    with FileFollower(log, last_lines=2) as follower:       # the newer layout wins
        assert follower.read() == [restarted[-1], *later[-2:]]
    with FileFollower(log, from_start=True) as follower:    # read anyway: nothing added
        assert follower.read()[:4] == W3C_HEADER
    plain = tmp_path / "access.log"
    plain.write_text("".join(f"line {n}\n" for n in range(10)))
    with FileFollower(plain, last_lines=2) as follower:     # other logs: only their lines
        assert follower.read() == ["line 8", "line 9"]


def test_the_layout_line_is_found_across_block_boundaries_and_far_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import logtui.sources.tail as tail

    monkeypatch.setattr(tail, "SCAN_BLOCK", 16)      # blocks smaller than the line
    monkeypatch.setattr(tail, "LAYOUT_SCAN", 200)    # and a header further back than this
    log = tmp_path / "ex.log"
    rows = [f"2024-05-01 00:00:00 GET /{n} 200" for n in range(40)]
    log.write_text("\n".join([*W3C_HEADER, *rows]) + "\n")
    with FileFollower(log, last_lines=1) as follower:
        assert follower.read() == [W3C_HEADER[-1], rows[-1]]
    for cut in range(1, 30):      # the #Fields line at every position relative to a block
        log.write_text("x" * cut + "\n" + "\n".join([W3C_HEADER[-1], *rows[:3]]) + "\n")
        with FileFollower(log, last_lines=1) as follower:
            assert follower.read() == [W3C_HEADER[-1], rows[2]], cut
