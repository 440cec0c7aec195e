"""httpx's transport for the mirror, with its connections on asyncio's own streams.

httpcore runs every socket operation under asyncio through anyio: a cancel scope and a
checkpoint per read and write, and a poll() per idle connection each time it picks one
from the pool (encode/httpx#3215). That was most of the mirror worker's CPU, which the
proxy shares with production's traffic. `AsyncioBackend` is the same network interface
over plain asyncio streams; httpx and httpcore do everything else as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

READ_LIMIT = 1 << 20   # bytes a connection buffers ahead of what httpcore has read


@contextlib.contextmanager
def _mapped(timeout: type[Exception], error: type[Exception]) -> Iterator[None]:
    try:
        yield
    except TimeoutError as exc:
        raise timeout(str(exc)) from exc
    except (OSError, EOFError, ssl.SSLError) as exc:
        raise error(str(exc) or type(exc).__name__) from exc


async def _within(timeout: float | None, operation: Any) -> Any:
    # No timer at all in the usual case: the mirror bounds each exchange as a whole.
    if timeout is None:
        return await operation
    return await asyncio.wait_for(operation, timeout)


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _mapped(httpcore.ReadTimeout, httpcore.ReadError):
            return await _within(timeout, self._reader.read(max_bytes))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        with _mapped(httpcore.WriteTimeout, httpcore.WriteError):
            self._writer.write(buffer)
            await _within(timeout, self._writer.drain())

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):   # a cancellation goes through
            await self._writer.wait_closed()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
            await _within(timeout, self._writer.start_tls(
                ssl_context, server_hostname=server_hostname))
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # An idle keep-alive connection is readable when the server has closed it
            # (or sent something unasked): asyncio has read that already.
            return self._reader.at_eof() or self._writer.is_closing()
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info in ("ssl_object", "socket"):
            return self._writer.get_extra_info(info)
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
            reader, writer = await _within(timeout, asyncio.open_connection(
                host, port, local_addr=(local_address, 0) if local_address else None,
                limit=READ_LIMIT))
        # asyncio sets TCP_NODELAY itself
        for option in socket_options or ():
            writer.get_extra_info("socket").setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def asyncio_transport(**options: Any) -> httpx.AsyncHTTPTransport:
    """httpx.AsyncHTTPTransport(**options), its connections made by AsyncioBackend.

    httpx offers no way to choose httpcore's network backend, so it is set on the pool
    httpx built; should a release of either rename that, the transport keeps its own."""
    transport = httpx.AsyncHTTPTransport(**options)
    pool = getattr(transport, "_pool", None)
    if isinstance(pool, httpcore.AsyncConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = AsyncioBackend()
    return transport
