"""The Fluentd forward input: TCP (or TLS) and the UDP heartbeat on one port. It only moves bytes
(`logtui.core.forward` decodes them) and acks a batch once `on_events` has taken it."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from logtui.core.forward import (
    MAX_BUFFER_BYTES,
    MAX_CHUNK_BYTES,
    MAX_DECOMPRESSED_BYTES,
    Dropped,
    EventBatch,
    Events,
    ForwardDecoder,
    ForwardProtocolError,
    Frame,
    Heartbeat,
    Ping,
    ServerHandshake,
    encode_ack,
    encode_pong,
)

Peer = tuple[str, int]
OnEvents = Callable[[EventBatch, Peer], Awaitable[None] | None]
READ_SIZE = 256 << 10
HEARTBEAT_REPLY = b"\x00"   # what Fluentd's in_forward answers; out_forward only needs a reply
UDP_BIND_ATTEMPTS = 8       # port 0: the free TCP port may be taken for UDP, then pick again
CLOSE_GRACE = 1.0           # seconds close() lets sessions finish a batch before cancelling


@dataclass(frozen=True)
class ForwardLimits:
    max_connections: int = 1024
    idle_timeout: float = 300.0              # seconds without a byte before closing
    max_buffer_bytes: int = MAX_BUFFER_BYTES  # per connection: a bigger frame closes it
    max_chunk_bytes: int = MAX_CHUNK_BYTES    # a bigger frame is dropped, not acked
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES
    recent_chunks: int = 10_000              # chunk ids remembered to drop resent duplicates


@dataclass
class ForwardStats:
    connections: int = 0    # open now
    accepted: int = 0
    refused: int = 0        # over max_connections
    frames: int = 0
    events: int = 0
    acks: int = 0
    duplicates: int = 0     # resent chunks: acked, not passed on again
    dropped: int = 0        # frames over a size limit: not acked
    signals: int = 0        # metrics/traces frames (fluent_signal): acked, skipped
    malformed: int = 0      # connections closed for a protocol error
    auth_failures: int = 0
    idle_closed: int = 0
    heartbeats: int = 0     # UDP pings and TCP nils
    rejected: int = 0       # batches on_events raised for: not acked, connection closed
    last_error: str = ""


def tls_context(cert: str | Path, key: str | Path,
                client_ca: str | Path | None = None) -> ssl.SSLContext:
    """The context for --tls-cert/--tls-key; with `client_ca`, clients need a cert it signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"TLS {cert}, {key}: {_reason(exc)}") from None
    if client_ca is not None:
        try:
            context.load_verify_locations(client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise TLSClientCAError(f"{client_ca}: {_reason(exc)}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class TLSClientCAError(ValueError):
    """The client CA file of --tls-client-ca cannot be used."""


def _reason(exc: OSError) -> str:
    return getattr(exc, "reason", None) or exc.strerror or str(exc)


class _HeartbeatEcho(asyncio.DatagramProtocol):
    def __init__(self, stats: ForwardStats) -> None:
        self.stats = stats
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.stats.heartbeats += 1
        if self.transport is not None:
            self.transport.sendto(HEARTBEAT_REPLY, addr)


class _Closed(Exception):
    """The session ends here (after a PONG refusal, say); the connection closes."""


class ForwardServer:
    """Accepts forward-protocol clients; `on_events(events, peer)` takes each batch.

    `on_events` may be a plain function or a coroutine function; the batch is acked when
    it returns, so awaiting there slows the sender down instead of buffering. If it
    raises, the batch is not acked and the connection closes (the sender resends).
    """

    def __init__(self, host: str, port: int, on_events: OnEvents, *,
                 shared_key: str | None = None, hostname: str | None = None,
                 users: Mapping[str, str] | None = None, tls: ssl.SSLContext | None = None,
                 limits: ForwardLimits | None = None, source_address_key: str | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.host = host
        self.requested_port = port
        self.on_events = on_events
        self.shared_key = shared_key
        self.hostname = hostname or socket.gethostname()
        self.users = dict(users or {})
        self.tls = tls
        self.limits = limits or ForwardLimits()
        self.source_address_key = source_address_key  # e.g. "source_address", as in_forward
        self.clock = clock
        self.stats = ForwardStats()
        self._server: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._sessions: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._recent: OrderedDict[bytes, None] = OrderedDict()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the forward server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for attempt in range(UDP_BIND_ATTEMPTS):
            # limit: the reader stops the socket at twice this buffered; at the default
            # (64 KiB) it stopped and restarted it, an epoll change each, on every read
            self._server = await asyncio.start_server(
                self._connection, self.host, self.requested_port, ssl=self.tls,
                reuse_address=True, limit=READ_SIZE)
            try:
                self._udp, _ = await loop.create_datagram_endpoint(
                    lambda: _HeartbeatEcho(self.stats), local_addr=(self.host, self.port))
                return
            except OSError:
                self._server.close()
                await self._server.wait_closed()
                self._server = None
                if self.requested_port or attempt == UDP_BIND_ATTEMPTS - 1:
                    raise

    async def close(self) -> None:
        """Stop listening and drop every connection (unacked batches will be resent)."""
        if self._server is not None:
            self._server.close()
        if self._udp is not None:
            self._udp.close()
        for writer in self._sessions.values():
            writer.transport.abort()
        if self._sessions:
            # sessions end on their own once their transport is gone, unless they are
            # inside on_events: those are cancelled after a moment
            _, stuck = await asyncio.wait(list(self._sessions), timeout=CLOSE_GRACE)
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.wait(stuck)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> ForwardServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        stats = self.stats
        if len(self._sessions) >= self.limits.max_connections:
            stats.refused += 1
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._sessions[task] = writer
        stats.accepted += 1
        stats.connections += 1
        address = writer.get_extra_info("peername")
        peer = (str(address[0]), int(address[1])) if address else ("", 0)
        try:
            await self._session(reader, writer, peer)
        except ForwardProtocolError:
            stats.malformed += 1
        except TimeoutError:
            stats.idle_closed += 1
        except (_Closed, ConnectionError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            # close() cancelled it: end quietly, as Python 3.11's stream callback would
            # otherwise log the cancellation as an unhandled error
            pass
        finally:
            stats.connections -= 1
            del self._sessions[task]
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       peer: Peer) -> None:
        limits = self.limits
        decoder = ForwardDecoder(limits.max_chunk_bytes, limits.max_decompressed_bytes,
                                 limits.max_buffer_bytes, self.clock)
        handshake = None
        if self.shared_key is not None:
            handshake = ServerHandshake(self.shared_key, self.hostname, self.users)
            await self._send(writer, handshake.helo())
        while True:
            # asyncio.timeout, not wait_for: wait_for runs the read as a task of its own
            async with asyncio.timeout(limits.idle_timeout):
                data = await reader.read(READ_SIZE)
            if not data:
                return
            for frame in decoder.feed(data):
                if handshake is not None and not handshake.authenticated:
                    await self._authenticate(handshake, frame, writer)
                else:
                    await self._frame(frame, writer, peer)
            await self._drain(writer)

    async def _authenticate(self, handshake: ServerHandshake, frame: Frame,
                            writer: asyncio.StreamWriter) -> None:
        if isinstance(frame, Ping):
            pong = handshake.check(frame)
        else:
            pong = encode_pong(False, "invalid ping message", "", "")
        await self._send(writer, pong)
        if not handshake.authenticated:
            self.stats.auth_failures += 1
            raise _Closed

    async def _frame(self, frame: Frame, writer: asyncio.StreamWriter, peer: Peer) -> None:
        stats = self.stats
        if isinstance(frame, Heartbeat):
            stats.heartbeats += 1
            return
        if isinstance(frame, Dropped):
            stats.dropped += 1
            return
        if not isinstance(frame, Events):
            raise ForwardProtocolError(f"unexpected {type(frame).__name__} frame")
        stats.frames += 1
        chunk = frame.chunk
        if frame.signal:
            stats.signals += 1
        elif chunk is not None and chunk in self._recent:
            stats.duplicates += 1
            self._recent.move_to_end(chunk)
        else:
            await self._accept(frame, peer)
            if chunk is not None:
                self._remember(chunk)
        if chunk is not None:
            # one write per ack: Fluent Bit reads the ack with a single read()
            writer.write(encode_ack(chunk))
            stats.acks += 1

    async def _accept(self, frame: Events, peer: Peer) -> None:
        events = frame.events
        if not events:
            return
        if self.source_address_key is not None:
            key, address = self.source_address_key, peer[0]
            for record in events.records:
                record[key] = address
        try:
            result = self.on_events(events, peer)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            self.stats.rejected += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            raise _Closed from exc
        self.stats.events += len(events)

    def _remember(self, chunk: bytes) -> None:
        self._recent[chunk] = None
        if len(self._recent) > self.limits.recent_chunks:
            self._recent.popitem(last=False)

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await self._drain(writer)

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(self.limits.idle_timeout):
            await writer.drain()
