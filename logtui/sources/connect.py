"""`logtui connect`'s connections to aggregators: subscribe, receive, reconnect.

One asyncio loop on a worker thread runs a connection per aggregator. Each applies what
it receives to its replica in the RemoteDashboard, resends the view when it changes,
and after a failure retries with a growing delay (shown as the connection's state).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

from logtui.core.dashboard import View
from logtui.core.forward import ClientHandshake, ForwardAuthError, Helo, Pong, ReplyDecoder
from logtui.core.remote import RemoteDashboard, Replica
from logtui.core.shadow import ShadowBoard
from logtui.core.wire import (
    MessageDecoder,
    WireError,
    bucket_from_wire,
    encode,
    lines_from_wire,
    sources_from_wire,
)

BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
CONNECT_TIMEOUT = 5.0


class Refused(Exception):
    """The aggregator said no (a wrong shared key): retrying soon will not help."""


class Connection:
    def __init__(self, name: str, host: str, port: int, remote: RemoteDashboard,
                 shared_key: str | None) -> None:
        self.name, self.host, self.port = name, host, port
        self.remote = remote
        self.shared_key = shared_key
        self.writer: asyncio.StreamWriter | None = None

    def state(self, text: str) -> None:
        def change(replica: Replica) -> None:
            replica.state = text
        self.remote.update(self.name, change)

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self._session()
                failures = 0
                reason = "aggregator closed the connection"
            except Refused as error:
                reason, failures = f"refused: {error}", len(BACKOFF) - 1
            except (OSError, EOFError, WireError, TimeoutError, ForwardAuthError) as error:
                reason = (getattr(error, "strerror", None) or str(error)
                          or type(error).__name__).lower()
            delay = BACKOFF[min(failures, len(BACKOFF) - 1)]
            failures += 1
            self.state(f"retrying in {delay:g}s: {reason}")
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        self.state("connecting")
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), CONNECT_TIMEOUT)
        try:
            if self.shared_key is not None:
                await self._handshake(reader, writer)
            replica = self.remote.replicas[self.name]
            newest = max((line.time for line in replica.lines), default=None)
            writer.write(encode("subscribe", {"view": self.remote.view.to_string(),
                                              "bucket": self.remote.bucket, "since": newest}))
            self.writer = writer
            self.state("connected")
            decoder = MessageDecoder()
            while data := await reader.read(1 << 16):
                for kind, body in decoder.feed(data):
                    self._apply(kind, body)
        finally:
            self.writer = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handshake(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        assert self.shared_key is not None
        client = ClientHandshake(self.shared_key, socket.gethostname())
        decoder = ReplyDecoder()
        while True:
            try:
                data = await asyncio.wait_for(reader.read(1 << 16), CONNECT_TIMEOUT)
            except TimeoutError:
                raise WireError(f"no handshake in {CONNECT_TIMEOUT:g}s (an aggregator without "
                                "a shared key sends none: leave out --shared-key)") from None
            if not data:
                raise Refused("the aggregator closed the handshake (a wrong shared key?)")
            for reply in decoder.feed(data):
                if isinstance(reply, Helo):
                    writer.write(client.ping(reply))
                elif isinstance(reply, Pong):
                    try:
                        client.check(reply)
                    except ForwardAuthError as error:
                        raise Refused(str(error)) from None
                    return

    def _apply(self, kind: str, body: object) -> None:
        if kind == "stats" and isinstance(body, dict):
            buckets = [bucket_from_wire(b) for b in body.get("buckets", [])]
            self.remote.update(self.name, lambda r: r.apply_stats(
                float(body["width"]), buckets, bool(body.get("replace")),
                int(body.get("late", 0)), body.get("since")))
        elif kind == "lines" and isinstance(body, dict):
            lines = lines_from_wire(body.get("lines", []))
            self.remote.update(self.name, lambda r: r.apply_lines(
                lines, int(body.get("dropped", 0))))
        elif kind == "sources" and isinstance(body, list):
            sources = sources_from_wire(body, prefix=f"{self.name} ")
            self.remote.update(self.name, lambda r: setattr(r, "sources", sources))
        elif kind == "shadow" and isinstance(body, dict):
            board = ShadowBoard.from_wire(body)
            self.remote.update(self.name, lambda r: setattr(r, "shadow", board))
        elif kind == "error":
            self.state(f"error: {body}")
        elif kind == "HELO":   # the handshake of an aggregator that wants a key
            raise Refused("the aggregator requires a shared key: give --shared-key")
        else:
            raise WireError(f"unexpected {kind!r}")

    def send_view(self, view: View) -> None:
        if self.writer is not None:
            self.writer.write(encode("view", {"view": view.to_string()}))


def connect_all(remote: RemoteDashboard, endpoints: dict[str, tuple[str, int]],
                shared_key: str | None, stop: threading.Event) -> None:
    """Run every connection until `stop` is set (the body of a worker thread)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        connections = [Connection(name, host, port, remote, shared_key)
                       for name, (host, port) in endpoints.items()]
        for connection in connections:
            remote.on_view.append(lambda view, c=connection: loop.call_soon_threadsafe(
                c.send_view, view))
        tasks = [asyncio.create_task(connection.run()) for connection in connections]
        await asyncio.to_thread(stop.wait)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
