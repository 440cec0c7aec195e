"""Records sent live to logtui's own forward input (logtui.sources.forward.ForwardServer)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from typing import Any

import pytest

from logtui.core.event import Event
from logtui.sources.forward import ForwardServer
from shadow.forward import ForwardSender

WAIT = 15.0


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(WAIT):
            await coroutine
    asyncio.run(bounded())


async def until(predicate: Any) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


def record(n: int) -> dict[str, Any]:
    return {"id": str(n), "time": 1_700_000_000.5 + n, "endpoint": "GET /users/{id}",
            "verdict": "regression", "staging_status": 500, "fields": [{"path": "status"}]}


@pytest.mark.parametrize("shared_key", [None, "s3cret"])
def test_records_arrive_as_shadow_diff_events(shared_key: str | None) -> None:
    received: list[Event] = []

    async def scenario() -> None:
        async with ForwardServer("127.0.0.1", 0, lambda events, peer: received.extend(events),
                                 shared_key=shared_key) as server:
            sender = ForwardSender("127.0.0.1", server.port, shared_key=shared_key)
            sender.start()
            for n in range(3):
                sender.write(record(n))
            await until(lambda: len(received) == 3)
            sender.write(record(3))
            await until(lambda: len(received) == 4)
            await sender.aclose()
            assert sender.stats.sent == 4 and sender.stats.dropped == 0

    run(scenario())
    assert {e.tag for e in received} == {"shadow.diff"}
    assert [e.record for e in received] == [record(n) for n in range(4)]
    assert received[0].time == pytest.approx(1_700_000_000.5)


def test_a_wrong_shared_key_is_reported_not_raised() -> None:
    async def scenario() -> None:
        async with ForwardServer("127.0.0.1", 0, lambda events, peer: None,
                                 shared_key="right") as server:
            sender = ForwardSender("127.0.0.1", server.port, shared_key="wrong")
            sender.start()
            sender.write(record(0))
            await until(lambda: "shared_key mismatch" in sender.stats.last_error)
            assert not sender.stats.connected
            await sender.aclose(grace=0.1)
            assert sender.stats.dropped == 1

    run(scenario())


def test_the_sender_reconnects_and_bounds_what_waits() -> None:
    received: list[Event] = []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario() -> None:
        sender = ForwardSender("127.0.0.1", port, max_pending=5)
        sender.start()
        for n in range(8):
            sender.write(record(n))
        assert sender.stats.dropped == 3
        await until(lambda: sender.stats.last_error.startswith("cannot connect"))
        async with ForwardServer("127.0.0.1", port,
                                 lambda events, peer: received.extend(events)):
            await until(lambda: len(received) == 5)
        # the server went away: once the sender has seen it, records wait for a successor
        await until(lambda: not sender.stats.connected)
        sender.write(record(8))
        async with ForwardServer("127.0.0.1", port,
                                 lambda events, peer: received.extend(events)):
            await until(lambda: len(received) == 6)
        await sender.aclose(grace=0.1)

    run(scenario())
    assert [e.record["id"] for e in received] == ["0", "1", "2", "3", "4", "8"]
