"""Send comparison records live to logtui as forward-protocol events (tag `shadow.diff`):
best effort, bounded, reconnecting, never in production's way."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections import deque
from dataclasses import dataclass
from typing import Any, TypeVar

from logtui.core.forward import (
    ClientHandshake,
    ForwardProtocolError,
    Helo,
    Pong,
    ReplyDecoder,
    encode_forward,
)
from logtui.core.shadow import SHADOW_TAG

MAX_PENDING = 10_000
BATCH = 500
HANDSHAKE_TIMEOUT = 5.0
BACKOFF = (0.2, 30.0)
R = TypeVar("R", Helo, Pong)


def os_reason(error: OSError) -> str:
    """`Connection refused`, not `[Errno 111] Connect call failed ('127.0.0.1', 1)`."""
    return os.strerror(error.errno) if error.errno else str(error)


@dataclass
class ForwardStats:
    sent: int = 0
    dropped: int = 0
    connected: bool = False
    last_error: str = ""


class ForwardSender:
    """A sink for records: `write` queues without waiting; a task sends them in batches.

    Records wait in a bounded buffer (the overflow is dropped and counted) while the
    connection is retried with backoff; nothing is acked, so delivery is at most once.
    """

    def __init__(self, host: str, port: int, *, tag: str = SHADOW_TAG,
                 shared_key: str | None = None, max_pending: int = MAX_PENDING) -> None:
        self.host, self.port, self.tag = host, port, tag
        self.shared_key = shared_key
        self.max_pending = max_pending
        self.stats = ForwardStats()
        self._pending: deque[tuple[float, dict[str, Any]]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def write(self, record: dict[str, Any]) -> None:
        if len(self._pending) >= self.max_pending:
            self.stats.dropped += 1
            return
        self._pending.append((record["time"], record))
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self, grace: float = 2.0) -> None:
        """Give queued records `grace` seconds to go out, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                while self._pending and self.stats.connected:
                    await asyncio.sleep(0.01)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.stats.dropped += len(self._pending)
        self._pending.clear()

    async def _run(self) -> None:
        delay = BACKOFF[0]
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError as error:
                self.stats.last_error = f"cannot connect: {os_reason(error)}"
            else:
                try:
                    await self._session(reader, writer)
                except (OSError, ForwardProtocolError, TimeoutError) as error:
                    self.stats.last_error = str(error) or type(error).__name__
                    delay = BACKOFF[0]
                finally:
                    self.stats.connected = False
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF[1])

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.shared_key is not None:
            await self._handshake(reader, writer)
        self.stats.connected = True
        self.stats.last_error = ""
        # After the handshake a forward server only sends acks, which we never ask for:
        # a read that returns means the server closed the connection.
        closed = asyncio.ensure_future(reader.read(1))
        try:
            while True:
                if not self._pending:
                    self._wake.clear()
                    woken = asyncio.ensure_future(self._wake.wait())
                    await asyncio.wait({woken, closed}, return_when=asyncio.FIRST_COMPLETED)
                    woken.cancel()
                if closed.done():
                    raise ConnectionError("the forward server closed the connection")
                count = min(len(self._pending), BATCH)
                batch = [self._pending.popleft() for _ in range(count)]
                writer.write(encode_forward(self.tag, batch))
                await writer.drain()
                self.stats.sent += count
        finally:
            closed.cancel()

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                         ) -> None:
        assert self.shared_key is not None
        client = ClientHandshake(self.shared_key, socket.gethostname())
        replies = ReplyDecoder()
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            helo = await _next_reply(reader, replies, Helo)
            writer.write(client.ping(helo))
            await writer.drain()
            client.check(await _next_reply(reader, replies, Pong))


async def _next_reply(reader: asyncio.StreamReader, replies: ReplyDecoder, kind: type[R]) -> R:
    while True:
        data = await reader.read(4096)
        if not data:
            raise ConnectionError("the forward server closed the connection in the handshake")
        for reply in replies.feed(data):
            if isinstance(reply, kind):
                return reply
