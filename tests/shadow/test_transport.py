"""The mirror's httpx transport on plain asyncio streams, against real loopback servers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from shadow_upstreams import closed_port

from shadow.transport import AsyncioBackend, asyncio_transport

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


@contextlib.asynccontextmanager
async def server(answers: int, close_after: bool) -> AsyncIterator[tuple[int, list[int]]]:
    """Answers `answers` requests per connection, then closes it if `close_after`;
    yields the port and the count of connections accepted."""
    accepted: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        with contextlib.suppress(ConnectionError, EOFError):
            for _ in range(answers):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(RESPONSE)
                await writer.drain()
            if not close_after:
                await reader.read()
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with listener:
        yield listener.sockets[0].getsockname()[1], accepted


def test_the_transport_makes_its_connections_with_the_asyncio_backend() -> None:
    # httpx gives no public way to choose the backend: fail here if its internals move
    transport = asyncio_transport()
    assert isinstance(transport._pool._network_backend, AsyncioBackend)


def test_keep_alive_connections_are_reused_and_a_closed_one_is_let_go() -> None:
    async def scenario() -> None:
        async with server(answers=2, close_after=True) as (port, accepted), httpx.AsyncClient(
                transport=asyncio_transport()) as client:
            url = f"http://127.0.0.1:{port}/"
            assert (await client.get(url)).text == "ok"
            assert (await client.get(url)).text == "ok"
            assert len(accepted) == 1        # the second request reused the connection
            await asyncio.sleep(0.1)         # the server has closed it, idle
            assert (await client.get(url)).text == "ok"
            assert len(accepted) == 2        # a new one, not an error on the dead one

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_failures_surface_as_httpx_errors() -> None:
    async def scenario() -> None:
        async with httpx.AsyncClient(transport=asyncio_transport()) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{closed_port()}/")
            async with server(answers=0, close_after=True) as (port, _):
                with pytest.raises(httpx.RemoteProtocolError):
                    await client.get(f"http://127.0.0.1:{port}/")

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_a_read_timeout_names_itself() -> None:
    async def scenario() -> None:
        async with server(answers=0, close_after=False) as (port, _), httpx.AsyncClient(
                transport=asyncio_transport(), timeout=0.2) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"http://127.0.0.1:{port}/")

    asyncio.run(asyncio.wait_for(scenario(), 10))
