from hypothesis import given
from hypothesis import strategies as st

from logtui.core.lines import LineSplitter, _has_line_over, decode_column, decode_lines


def split_all(chunks: list[bytes], max_line: int = 1 << 20) -> tuple[list[str], int]:
    splitter = LineSplitter(max_line)
    lines: list[str] = []
    for chunk in chunks:
        lines += splitter.feed(chunk)
    lines += splitter.flush()
    return lines, splitter.truncated


def test_partial_line_waits_for_its_newline() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"GET /a\nGET /b") == ["GET /a"]
    assert splitter.pending == len(b"GET /b")
    assert splitter.feed(b" HTTP/1.1\n") == ["GET /b HTTP/1.1"]
    assert splitter.pending == 0


def test_crlf_empty_lines_and_invalid_utf8() -> None:
    lines, _ = split_all([b"one\r\n\r\ntwo \xff\xfe end\r\n"])
    assert lines == ["one", "", "two \ufffd\ufffd end"]


def test_multibyte_character_split_across_reads() -> None:
    data = "caf\u00e9 \u2603\n".encode()
    assert split_all([data[:4], data[4:7], data[7:]])[0] == ["caf\u00e9 \u2603"]


def test_long_lines_are_cut_counted_and_the_rest_skipped() -> None:
    long_line = b"x" * 50
    lines, truncated = split_all([b"a\n" + long_line[:30], long_line[30:] + b"\nb\n"], 16)
    assert lines == ["a", "x" * 16, "b"]
    assert truncated == 1
    lines, truncated = split_all([b"a\n" + long_line + b"\nb\n" + long_line + b"\n"], 16)
    assert lines == ["a", "x" * 16, "b", "x" * 16]
    assert truncated == 2


@given(st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r\n", b"\xff", b"\xc3\xa9", b"yyyyyyy"]),
                max_size=60),
       st.lists(st.integers(min_value=0, max_value=200), max_size=10))
def test_any_split_of_the_same_bytes_gives_the_same_lines(parts: list[bytes],
                                                          cuts: list[int]) -> None:
    data = b"".join(parts)
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert split_all(chunks, 10) == split_all([data], 10)


PIECES = [b"a", b"bc", b"\n", b"\r\n", b"\r", b"\xff", b"\xc3\xa9", b"yyyyyyy"]


@given(st.lists(st.sampled_from(PIECES), max_size=60))
def test_the_polars_split_gives_the_lines_python_gives(parts: list[bytes]) -> None:
    blob = b"".join(parts)
    assert decode_column(blob).to_list() == decode_lines(blob)


@given(st.lists(st.sampled_from(PIECES), max_size=60),
       st.lists(st.integers(min_value=0, max_value=200), max_size=10))
def test_blobs_hold_the_lines_feed_returns(parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(parts)
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    splitter = LineSplitter(10)
    blobs = [splitter.feed_blob(chunk) for chunk in chunks] + [splitter.flush_blob()]
    lines = [line for blob in blobs if blob is not None for line in decode_lines(blob)]
    assert (lines, splitter.truncated) == split_all(chunks, 10)


@given(st.lists(st.integers(min_value=0, max_value=40), max_size=30),
       st.integers(min_value=1, max_value=30))
def test_a_line_over_the_limit_is_found_wherever_it_is(lengths: list[int], limit: int) -> None:
    blob = b"\n".join(b"x" * n for n in lengths)
    assert _has_line_over(blob, limit) == any(n > limit for n in lengths)
