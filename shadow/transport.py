"""httpx's transport for the mirror: HTTP/1.1 keep-alive connections on asyncio, parsed by h11.

The mirror worker shares the machine's CPU with the proxy and production's traffic, so
what it spends per replayed request shows up in production's latency. httpx's own
transport (httpcore) spent most of it outside HTTP: anyio cancel scopes and locks around
every read and write, and a scan of every pooled connection on every request
(encode/httpx#3215). Here each connection is an asyncio protocol feeding h11, the same
parser httpcore uses; the pool is a stack of idle connections per origin. httpx still
builds the requests and decodes the responses. CPU per replayed request: 420 -> 195 us
(bench/README.md, fourth session).

A connection goes back to the pool only after a whole exchange with nothing unasked
after it, and a request safe to repeat that finds its reused connection closed under
it goes once more on a new one: neither is staging's failure, and both would otherwise
be reported as regressions.

What it leaves out, because the mirror does not need it: HTTP/2, proxies, and a limit
on connections (the mirror bounds the exchanges in flight, and each exchange holds one
connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import cast

import h11
import httpx

Origin = tuple[bytes, str, int]
HIGH_WATER = 1 << 20   # bytes read ahead of the reader before reading pauses
MAX_HEAD = 64 * 1024   # a response head larger than this is a protocol error
DEFAULT_PORTS = {b"http": 80, b"https": 443}
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


@contextlib.contextmanager
def _mapped(error: type[httpx.TransportError]) -> Iterator[None]:
    """OS and protocol failures as the httpx errors callers catch."""
    try:
        yield
    except h11.RemoteProtocolError as exc:
        raise httpx.RemoteProtocolError(str(exc)) from exc
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(str(exc)) from exc
    except OSError as exc:   # ssl.SSLError is one too
        raise error(str(exc) or type(exc).__name__) from exc


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: bytes in from asyncio, events out of h11."""

    def __init__(self) -> None:
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self.transport: asyncio.Transport   # set by asyncio before anything is sent
        self.idle_since = 0.0
        self.answered_nothing = True   # no byte has arrived since the last request went out
        self._arrived: asyncio.Future[None] | None = None
        self._unread = 0
        self._paused = False
        self._lost: Exception | None = None
        self._closed = False

    # asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.answered_nothing = False
        self.h11.receive_data(data)
        self._unread += len(data)
        if self._unread > HIGH_WATER and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> None:
        self._end()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc
        self._end()

    def _end(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._arrived is not None and not self._arrived.done():
            self._arrived.set_result(None)

    # the exchange's side

    @property
    def reusable(self) -> bool:
        """Idle, open, and the server has neither closed it nor sent anything unasked."""
        return (not self._closed and self.h11.our_state is h11.IDLE
                and self.h11.their_state is h11.IDLE and not self.h11.trailing_data[0])

    def write(self, data: bytes) -> None:
        if self._closed or self.transport.is_closing():
            raise httpx.WriteError(str(self._lost or "the server closed the connection"))
        self.transport.write(data)

    async def send(self, request: httpx.Request) -> None:
        self.answered_nothing = True
        with _mapped(httpx.WriteError):
            self.write(self.h11.send(h11.Request(
                method=request.method, target=request.url.raw_path,
                headers=request.headers.raw)))
            async for chunk in request.stream:  # type: ignore[union-attr]
                self.write(self.h11.send(h11.Data(data=chunk)))
            self.write(self.h11.send(h11.EndOfMessage()))

    async def next_event(self, read_timeout: float | None) -> h11.Event:
        with _mapped(httpx.ReadError):
            while (event := self.h11.next_event()) is h11.NEED_DATA:
                if not self._closed:
                    await self._more(read_timeout)
                    continue
                lost = self._lost
                if lost is not None:   # a reset says more than the end it caused
                    raise httpx.ReadError(str(lost) or type(lost).__name__) from lost
                if self.h11.their_state is h11.SEND_RESPONSE:
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response.")
                # the end of the stream may be the end of the body, or it cut the body short
                self.h11.receive_data(b"")
            return event  # type: ignore[return-value]

    async def _more(self, read_timeout: float | None) -> None:
        # all that arrived is parsed: let more in
        self._unread = 0
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        self._arrived = asyncio.get_running_loop().create_future()
        try:
            if read_timeout is None:
                await self._arrived
            else:
                async with asyncio.timeout(read_timeout):
                    await self._arrived
        except TimeoutError:
            raise httpx.ReadTimeout("no answer within the read timeout") from None
        finally:
            self._arrived = None

    async def response_head(self, read_timeout: float | None) -> h11.Response:
        while True:
            event = await self.next_event(read_timeout)
            if isinstance(event, h11.Response):
                return event
            # an InformationalResponse (100 Continue, 103 Early Hints): the answer follows

    def close(self) -> None:
        self._closed = True
        self.transport.close()


def _repeatable(request: httpx.Request) -> bool:
    """Safe to send twice: an idempotent method, with a body held in memory (if any)."""
    return request.method in IDEMPOTENT and isinstance(request.stream, httpx.ByteStream)


class _ResponseBody(httpx.AsyncByteStream):
    """The body as h11 parses it; closing hands the connection back when it can be reused."""

    def __init__(self, pool: MirrorTransport, origin: Origin, connection: _Connection,
                 read_timeout: float | None) -> None:
        self._pool = pool
        self._origin = origin
        self._connection = connection
        self._read_timeout = read_timeout
        self._complete = False
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self._complete:
            event = await self._connection.next_event(self._read_timeout)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            else:   # EndOfMessage: a body cut short is an error h11 raises
                self._complete = True

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool._release(self._origin, self._connection)


class MirrorTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 to any origin, over keep-alive connections let go after `keepalive_expiry`
    seconds unused. httpx's connect and read timeouts apply; write timeouts do not, since
    a request is handed to asyncio's buffer whole."""

    def __init__(self, *, verify: bool = True, keepalive_expiry: float = 5.0) -> None:
        self._ssl = httpx.create_ssl_context(verify=verify)
        self._ssl.set_alpn_protocols(["http/1.1"])
        self._expiry = keepalive_expiry
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._open = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.raw_scheme, url.host, url.port or DEFAULT_PORTS.get(url.raw_scheme, 80))
        timeouts = request.extensions.get("timeout", {})
        reused = self._reuse(origin)
        if reused is not None:
            try:
                return await self._exchange(origin, reused, request, timeouts)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                # A server may close an idle connection just as it is reused; nothing was
                # answered, so a request that is safe to repeat goes again on a new one
                # (as Go's and urllib3's clients do). Anything else is staging's failure.
                if not (_repeatable(request) and reused.answered_nothing):
                    raise
        connection = await self._connect(origin, timeouts.get("connect"))
        return await self._exchange(origin, connection, request, timeouts)

    async def _exchange(self, origin: Origin, connection: _Connection, request: httpx.Request,
                        timeouts: dict[str, float | None]) -> httpx.Response:
        try:
            await connection.send(request)
            head = await connection.response_head(timeouts.get("read"))
        except BaseException:
            connection.close()
            raise
        return httpx.Response(
            head.status_code, headers=head.headers.raw_items(),
            stream=_ResponseBody(self, origin, connection, timeouts.get("read")),
            extensions={"http_version": b"HTTP/" + head.http_version,
                        "reason_phrase": head.reason})

    def _reuse(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()   # the most recently used: least likely to have timed out
            if connection.reusable:
                return connection
            connection.close()
        return None

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        if scheme not in DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"{scheme.decode(errors='replace')}: not http(s)")
        loop = asyncio.get_running_loop()
        with _mapped(httpx.ConnectError):
            try:
                async with asyncio.timeout(timeout):
                    _, connection = await loop.create_connection(
                        _Connection, host, port,
                        ssl=self._ssl if scheme == b"https" else None)
            except TimeoutError:
                raise httpx.ConnectTimeout(f"no connection to {host}:{port} in time") from None
        return connection

    def _release(self, origin: Origin, connection: _Connection) -> None:
        # Reusable only after a whole exchange: an unread rest of a body, or anything the
        # server sent unasked, would be taken for the next answer.
        with contextlib.suppress(h11.LocalProtocolError):
            connection.h11.start_next_cycle()
        if not (self._open and connection.reusable):
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(origin, deque()).append(connection)
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().call_later(self._expiry, self._expire)

    def _expire(self) -> None:
        """Close what has been idle for `keepalive_expiry`; look again while any are idle."""
        self._sweep = None
        cutoff = time.monotonic() - self._expiry
        for idle in self._idle.values():
            while idle and idle[0].idle_since <= cutoff:   # oldest first
                idle.popleft().close()
        if any(self._idle.values()):
            self._sweep = asyncio.get_running_loop().call_later(self._expiry, self._expire)

    async def aclose(self) -> None:
        self._open = False   # exchanges still running close their connections when done
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
