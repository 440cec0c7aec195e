"""The mirror worker: a child process replays and compares, so that the proxy's event loop
only decides and hands over."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, Protocol

from shadow.breaker import Breaker
from shadow.forward import ForwardSender, ForwardStats, os_reason
from shadow.mirror import Mirror, MirrorConfig, MirrorStats, Policy, Production, RequestSnapshot
from shadow.report import ReportWriter

# In-flight comparisons get this long to finish when the proxy stops; the rest are cancelled.
STOP_GRACE = 2.0
FORWARD_STATS_EVERY = 1.0
READY_TIMEOUT = 30.0
NICENESS = 10
# Jobs go over in batches: one wake-up of the worker per batch rather than per request,
# and never from inside a hook, before production's answer is on its way to the client.
HAND_OFF_EVERY = 0.005
UNAVAILABLE = "staging_unavailable"   # skip reason while the breaker is open
_LENGTH = struct.Struct(">I")

Job = tuple[RequestSnapshot, Production]


class Sink(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...


class _Channel(asyncio.Protocol):
    """Length-prefixed pickles over a stream socket, both ways."""

    def __init__(self, on_message: Callable[[Any], None], on_closed: Callable[[], None]) -> None:
        self._on_message = on_message
        self._on_closed = on_closed
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(buffer, start)
            end = start + _LENGTH.size + size
            if len(buffer) < end:
                break
            self._on_message(pickle.loads(buffer[start + _LENGTH.size:end]))
            start = end
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_closed()

    def send(self, message: Any) -> None:
        if self.transport is not None and not self.transport.is_closing():
            payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
            self.transport.write(_LENGTH.pack(len(payload)) + payload)


class MirrorWorker:
    """The proxy's handle on the worker process: admission, hand-off and counters.

    Jobs are pickled onto a socket pair by the proxy's own event loop, in batches (no
    threads, so no GIL hand-offs), and verdicts come back the same way. At most
    `max_in_flight` jobs are outstanding; more are dropped and counted, never queued.
    """

    def __init__(self, config: MirrorConfig, *, report: str | None = None,
                 forward: tuple[str, int] | None = None, shared_key: str | None = None) -> None:
        self.config = config
        self.policy = Policy(config)
        # a probe that took longer than a staging timeout (plus its hand-offs) was lost
        self.breaker = Breaker(probe_wait=config.timeout + 1.0)
        self.stats = MirrorStats()
        self.forward = ForwardStats() if forward else None
        self.failure: str | None = None
        self._settings = (report, forward, shared_key)
        self._channel: _Channel | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._ready: asyncio.Future[None] | None = None
        self._batch: list[Job] = []
        self._flush_timer: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        """Start the worker and wait until it can take jobs (its imports take a moment)."""
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        ours, theirs = socket.socketpair()
        with theirs:
            # A fresh interpreter, not a fork of one running an event loop and threads; its
            # own session, so a Ctrl-C meant for the proxy does not interrupt it mid-report.
            self._process = subprocess.Popen(
                [sys.executable, "-m", "shadow.worker", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, start_new_session=True)
        _, self._channel = await loop.connect_accepted_socket(
            lambda: _Channel(self._result, self._closed), ours)
        self._channel.send((self.config, *self._settings))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._ready), READY_TIMEOUT)

    def admit(self, method: str, path: str, headers: Sequence[tuple[str, str]],
              body: bytes | None, *, id: str) -> RequestSnapshot | None:
        """A snapshot of the request when it is to be mirrored, else None (and counted)."""
        reason = self.policy.skip_reason(method, path, headers, body)
        if reason is None and not self.breaker.allow():
            reason = UNAVAILABLE
        if reason is not None:
            self.stats.skipped[reason] += 1
            return None
        assert body is not None
        return RequestSnapshot(id, time.time(), method.upper(), path, tuple(headers), body)

    def skip(self, reason: str) -> None:
        self.stats.skipped[reason] += 1

    def submit(self, request: RequestSnapshot, production: Production) -> bool:
        """Hand the job over without waiting; False (and counted) when over the cap."""
        if (self._channel is None or self.failure is not None
                or self.stats.in_flight >= self.config.max_in_flight):
            self.stats.dropped += 1
            return False
        self.stats.mirrored += 1
        self._batch.append((request, production))
        if self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(HAND_OFF_EVERY, self._flush)
        return True

    def _flush(self) -> None:
        self._flush_timer = None
        if self._channel is not None and self._batch:
            self._channel.send(self._batch)
        self._batch = []

    async def stop(self) -> None:
        """Let in-flight comparisons finish (STOP_GRACE at most), then end the worker."""
        self._stopping = True
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        self._flush()
        if self._channel is not None:
            self._channel.send(None)
        if self._process is not None:
            try:
                await asyncio.to_thread(self._process.wait, STOP_GRACE + 5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                await asyncio.to_thread(self._process.wait)
        if self._channel is not None and self._channel.transport is not None:
            self._channel.transport.close()

    def _result(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(None)
        elif kind == "done":
            verdicts: dict[str | None, int] = message[1]
            for verdict, count in verdicts.items():
                if verdict is not None:
                    self.stats.verdicts[verdict] += count
                self.stats.completed += count
            self.breaker.record(unanswered=message[2], answered=message[3])
        elif kind == "forward" and self.forward is not None:
            for name, value in message[1].items():
                setattr(self.forward, name, value)
        elif kind == "failed":
            self.failure = message[1]

    def _closed(self) -> None:
        if not self._stopping and self.failure is None:
            self.failure = "the mirror worker exited"
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)


def main(argv: Sequence[str]) -> None:
    """`python -m shadow.worker FD`: serve the proxy at the other end of socket FD."""
    # Production first: a batch task never preempts the proxy when it wakes up. Its lower
    # priority counts within its own session (the kernel's autogroup); measured, that gave
    # production a lower p50 than the proxy's session at nice 10 (bench/shadow_latency.py:
    # 1.04-1.15 against 1.13-1.18). SCHED_IDLE in the proxy's session did a little better
    # still, but on a host with no idle core the worker would then stall and report staging
    # timeouts that never happened. Past the backlog cap the proxy drops and counts.
    os.nice(NICENESS)
    if hasattr(os, "SCHED_BATCH"):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    asyncio.run(_Comparisons.serve(socket.socket(fileno=int(argv[1]))))


class _Comparisons:
    """The worker's side: replays each job, writes its record, reports verdicts back."""

    def __init__(self, channel: _Channel, mirror: Mirror, sinks: list[Sink],
                 sender: ForwardSender | None) -> None:
        self.channel = channel
        self.mirror = mirror
        self.sinks = sinks
        self.sender = sender
        self.tasks: set[asyncio.Task[None]] = set()
        self.finished: Counter[str | None] = Counter()
        self.answered: Counter[bool] = Counter()

    @classmethod
    async def serve(cls, sock: socket.socket) -> None:
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        # EOF means the proxy is gone: stop as if told to.
        _, channel = await asyncio.get_running_loop().connect_accepted_socket(
            lambda: _Channel(inbox.put_nowait, lambda: inbox.put_nowait(None)), sock)
        settings = await inbox.get()
        if settings is None:
            return
        config, report, forward, shared_key = settings
        try:
            writer = ReportWriter.open(report) if report else None
        except OSError as error:
            channel.send(("failed", f"--report {report}: {os_reason(error)}"))
            return
        sender = ForwardSender(*forward, shared_key=shared_key) if forward else None
        sinks: list[Sink] = [s for s in (writer, sender) if s is not None]
        comparisons = cls(channel, Mirror(config), sinks, sender)
        try:
            await comparisons.run(inbox)
        finally:
            if writer is not None:
                writer.close()
        # Let the last messages out before the process ends.
        while channel.transport is not None and channel.transport.get_write_buffer_size():
            await asyncio.sleep(0.01)

    async def run(self, inbox: asyncio.Queue[list[Job] | None]) -> None:
        loop = asyncio.get_running_loop()
        self.channel.send(("ready",))
        forward_stats = None
        if self.sender is not None:
            self.sender.start()
            forward_stats = loop.create_task(self._forward_stats(self.sender))
        while (batch := await inbox.get()) is not None:
            for request, production in batch:
                task = loop.create_task(self._compare(request, production))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=STOP_GRACE)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.mirror.aclose()
        if self.finished:
            self._report_finished()
        if self.sender is not None and forward_stats is not None:
            forward_stats.cancel()
            await self.sender.aclose()
            self.channel.send(("forward", asdict(self.sender.stats)))

    async def _compare(self, request: RequestSnapshot, production: Production) -> None:
        verdict = None  # cancelled at stop: counted as finished, not as a verdict
        answered: bool | None = None   # did staging answer (for the proxy's breaker)
        try:
            record = await self.mirror.compare(request, production)
            verdict = record["verdict"]
            answered = record["staging_status"] is not None
            for sink in self.sinks:
                sink.write(record)
        except Exception as error:  # one bad comparison must not stop the others
            verdict = "error"
            print(f"shadow: comparing {request.method} {request.path} failed: "
                  f"{type(error).__name__}: {error}", file=sys.stderr)
        finally:
            self._finish(verdict, answered)

    def _finish(self, verdict: str | None, answered: bool | None) -> None:
        # Batched like the jobs: fewer wake-ups of the proxy.
        if not self.finished:
            asyncio.get_running_loop().call_later(HAND_OFF_EVERY, self._report_finished)
        self.finished[verdict] += 1
        if answered is not None:
            self.answered[answered] += 1

    def _report_finished(self) -> None:
        if self.finished:
            self.channel.send(("done", dict(self.finished), self.answered[False],
                               self.answered[True]))
            self.finished.clear()
            self.answered.clear()

    async def _forward_stats(self, sender: ForwardSender) -> None:
        while True:
            self.channel.send(("forward", asdict(sender.stats)))
            await asyncio.sleep(FORWARD_STATS_EVERY)


if __name__ == "__main__":
    main(sys.argv)
