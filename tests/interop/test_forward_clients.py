"""Real third-party forward clients against the real ForwardServer on loopback: PyPI
fluent-logger and npm @fluent-org/logger (all four modes, ack, shared key, TLS)."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from logtui.core.event import Event
from logtui.core.forward import NS, ForwardEvent
from logtui.sources.forward import ForwardServer, Peer, tls_context

NODE_DIR = Path(__file__).parent / "node"
SECONDS = 1_700_000_000
NANOS = 123_456_000     # + i for event i: nanosecond precision must survive end to end


class Collector:
    def __init__(self) -> None:
        self.events: list[ForwardEvent] = []

    def __call__(self, events: Sequence[Event], peer: Peer) -> None:
        self.events += [e for e in events if isinstance(e, ForwardEvent)]

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)   # and nothing more (a duplicate) right after




# -- PyPI fluent-logger ---------------------------------------------------------------------


def test_python_fluent_logger_message_mode_with_event_time() -> None:
    sender = pytest.importorskip(
        "fluent.sender", reason="PyPI fluent-logger is not installed (make test installs it)")
    count = 50
    record = {"remote_addr": "10.0.0.9", "path": "/caf\u00e9", "status": 404,
              "request_time": 0.25}

    def send(port: int) -> tuple[int, int]:
        logger = sender.FluentSender("py", host="127.0.0.1", port=port,
                                     nanosecond_precision=True)
        try:
            for i in range(count):
                stamp = sender.EventTime.from_unix_nano(SECONDS * NS + NANOS + i)
                assert logger.emit_with_time("web", stamp, {**record, "n": i}), logger.last_error
            before = time.time_ns()
            assert logger.emit("now", record), logger.last_error   # the logger's own clock
            return before, time.time_ns()
        finally:
            logger.close()

    async def scenario() -> None:
        collector = Collector()
        async with ForwardServer("127.0.0.1", 0, collector) as server:
            before, after = await asyncio.to_thread(send, server.port)
            await collector.wait_for(count + 1)
        assert sorted((e.tag, e.time_ns, e.record["n"]) for e in collector.events[:count]) == [
            ("py.web", SECONDS * NS + NANOS + i, i) for i in range(count)]
        assert all(e.record == {**record, "n": e.record["n"]} for e in collector.events[:-1])
        now = collector.events[-1]
        assert now.tag == "py.now" and now.record == record
        assert before - 10**6 <= now.time_ns <= after + 10**6
        assert len(collector.events) == count + 1

    asyncio.run(asyncio.wait_for(scenario(), 30))


# -- npm @fluent-org/logger -----------------------------------------------------------------


def node_client() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the @fluent-org/logger interop tests need it")
    if not (NODE_DIR / "node_modules" / "@fluent-org" / "logger").is_dir():
        pytest.skip("@fluent-org/logger is not installed: run `npm ci --prefix tests/interop/node`"
                    " (make test does)")
    return node


async def run_node(node: str, port: int, options: dict[str, Any],
                   timeout: float = 20.0) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        node, str(NODE_DIR / "send.js"), str(port), json.dumps(options), cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1, "timed out"
    return process.returncode or 0, stderr.decode(errors="replace")


def expected(mode: str, count: int) -> list[tuple[str, int, dict[str, Any]]]:
    return [("node.web", SECONDS * NS + NANOS + i,
             {"n": i, "mode": mode, "path": f"/items/{i}?q=caf\u00e9",
              "status": 200 + (i % 3) * 100, "text": "h\u00e9llo \u2713"})
            for i in range(count)]


CASES = [
    ("Message", {}),
    ("Forward", {}),
    ("PackedForward", {}),
    ("CompressedPackedForward", {}),
    ("Message", {"ack": True}),
    ("Forward", {"ack": True}),
    ("PackedForward", {"ack": True}),
    ("CompressedPackedForward", {"ack": True}),
    ("Forward", {"ack": True, "sharedKey": "s3cret"}),
    ("CompressedPackedForward", {"ack": True, "sharedKey": "s3cret"}),
    ("Message", {"ack": True, "tls": True}),
    ("CompressedPackedForward", {"ack": True, "sharedKey": "s3cret", "tls": True}),
]


@pytest.mark.parametrize(("mode", "extra"), CASES,
                         ids=["-".join([m, *sorted(e)]) for m, e in CASES])
def test_node_fluent_org_logger(mode: str, extra: dict[str, Any],
                                certificate: tuple[Path, Path]) -> None:
    node = node_client()
    count = 200
    cert, key = certificate
    options = {"mode": mode, "count": count, "seconds": SECONDS, "nanos": NANOS,
               "label": "web", **{k: v for k, v in extra.items() if k != "tls"}}
    if extra.get("tls"):
        options["ca"] = str(cert)

    async def scenario() -> None:
        collector = Collector()
        async with ForwardServer("127.0.0.1", 0, collector, shared_key=extra.get("sharedKey"),
                                 tls=tls_context(cert, key) if extra.get("tls") else None,
                                 hostname="logtui-test") as server:
            code, errors = await run_node(node, server.port, options)
            assert code == 0, errors
            await collector.wait_for(count)
        got = sorted((e.tag, e.time_ns, e.record) for e in collector.events)
        assert got == expected(mode, count)
        assert server.stats.malformed == 0 and server.stats.duplicates == 0
        if extra.get("ack"):
            assert server.stats.acks == server.stats.frames > 0

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_node_client_with_a_wrong_shared_key_sends_nothing(
        certificate: tuple[Path, Path]) -> None:
    node = node_client()

    async def scenario() -> None:
        collector = Collector()
        async with ForwardServer("127.0.0.1", 0, collector, shared_key="s3cret") as server:
            options = {"mode": "Forward", "count": 3, "seconds": SECONDS, "nanos": NANOS,
                       "label": "web", "ack": True, "sharedKey": "wrong"}
            code, errors = await run_node(node, server.port, options, timeout=8.0)
            assert code == 3 and "shared_key mismatch" in errors, errors
        assert collector.events == [] and server.stats.auth_failures >= 1

    asyncio.run(asyncio.wait_for(scenario(), 30))
