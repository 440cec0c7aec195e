"""The mirror's httpx transport (asyncio protocol + h11), against real loopback servers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from shadow_upstreams import closed_port

from shadow.transport import HIGH_WATER, MirrorTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def response(body: bytes, *headers: str) -> bytes:
    head = ["HTTP/1.1 200 OK", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def answering(*answers: bytes, close_after: int | None = None) -> Handler:
    """Gives the answers in turn, whichever connection asks; closes a connection after
    `close_after` answers, or else waits for the client to close it."""
    queue = list(answers)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        while queue and served != close_after:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(queue.pop(0))
            await writer.drain()
            served += 1
        if close_after is None:
            await reader.read()
    return handle


@contextlib.asynccontextmanager
async def server(handle: Handler) -> AsyncIterator[tuple[str, list[bool]]]:
    """Yields the base URL and one entry per connection accepted, True once it ended."""
    connections: list[bool] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(connections)
        connections.append(False)
        with contextlib.suppress(ConnectionError, EOFError):
            await handle(reader, writer)
        writer.close()
        connections[index] = True

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with listener:
        yield f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}", connections


@dataclass
class Served:
    url: str
    connections: list[bool]   # one per connection accepted, True once it ended
    client: httpx.AsyncClient  # on a MirrorTransport


@contextlib.asynccontextmanager
async def serving(handle: Handler, keepalive_expiry: float = 5.0,
                  **client_options: Any) -> AsyncIterator[Served]:
    """`handle` serving on loopback, and an httpx client on the transport under test."""
    transport = MirrorTransport(keepalive_expiry=keepalive_expiry)
    async with server(handle) as (url, connections), \
            httpx.AsyncClient(transport=transport, **client_options) as client:
        yield Served(url, connections, client)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_keep_alive_connections_are_reused_and_a_closed_one_is_let_go() -> None:
    async def scenario() -> None:
        async with serving(answering(*[response(b"ok")] * 3, close_after=2)) as served:
            get = served.client.get
            assert (await get(served.url)).text == "ok"
            assert (await get(served.url)).text == "ok"
            assert len(served.connections) == 1   # the second request reused the connection
            await asyncio.sleep(0.1)              # the server has closed it, idle
            assert (await get(served.url)).text == "ok"
            assert len(served.connections) == 2   # a new one, not an error on the dead one

    run(scenario)


def test_a_connection_is_reused_only_after_a_complete_exchange() -> None:
    big = b"x" * 5000

    async def scenario() -> None:
        async with serving(answering(response(big), response(b"ok"), response(b"ok"))) as served:
            async with served.client.stream("GET", served.url) as partly:
                async for _ in partly.aiter_raw(100):
                    break   # the rest of the body is never read: the mirror's body cap
            assert (await served.client.get(served.url)).text == "ok"
            assert len(served.connections) == 2   # its unread rest would have been this answer
            assert (await served.client.get(served.url)).text == "ok"
            assert len(served.connections) == 2   # after a whole exchange: reused

    run(scenario)


def test_an_answer_sent_unasked_is_not_taken_for_the_next_one() -> None:
    async def scenario() -> None:
        async with serving(answering(response(b"ok") + response(b"unasked"),
                                     response(b"fresh"))) as served:
            assert (await served.client.get(served.url)).text == "ok"
            assert (await served.client.get(served.url)).text == "fresh"
            assert len(served.connections) == 2

    run(scenario)


def test_a_reused_connection_closed_under_a_safe_request_is_retried_once_on_a_new_one() -> None:
    # The keep-alive race: the server closes an idle connection as a request goes out on
    # it. A GET goes again on a new connection; a POST is the caller's to decide.
    async def scenario() -> None:
        def closing_on_the_second(second: bytes) -> Handler:
            return answering(response(b"ok"), second, response(b"again"), close_after=2)

        async with serving(closing_on_the_second(b"")) as served:
            assert (await served.client.get(served.url)).text == "ok"
            assert (await served.client.get(served.url)).text == "again"
            assert len(served.connections) == 2
        async with serving(closing_on_the_second(b"")) as served:
            assert (await served.client.post(served.url, content=b"x")).text == "ok"
            with pytest.raises(httpx.RemoteProtocolError):
                await served.client.post(served.url, content=b"x")
            assert len(served.connections) == 1
        # a server that began to answer and died failed that request: not asked again
        async with serving(closing_on_the_second(b"HTTP/1.1 200 OK\r\ncontent-")) as served:
            assert (await served.client.get(served.url)).text == "ok"
            with pytest.raises(httpx.RemoteProtocolError):
                await served.client.get(served.url)
            assert len(served.connections) == 1

    run(scenario)


def test_a_server_that_says_close_is_not_asked_again() -> None:
    async def scenario() -> None:
        async with serving(answering(*[response(b"bye", "connection: close")] * 2,
                                     close_after=1)) as served:
            assert (await served.client.get(served.url)).text == "bye"
            assert (await served.client.get(served.url)).text == "bye"
            assert len(served.connections) == 2

    run(scenario)


def test_idle_connections_are_closed_after_the_keep_alive_expiry() -> None:
    async def scenario() -> None:
        async with serving(answering(response(b"ok")), keepalive_expiry=0.1) as served:
            assert (await served.client.get(served.url)).text == "ok"
            assert served.connections == [False]   # kept open while fresh
            for _ in range(50):
                if served.connections[0]:
                    break
                await asyncio.sleep(0.02)
            assert served.connections == [True]    # the client let it go: the server saw EOF

    run(scenario)


def test_bodies_go_out_and_come_back_whole_whatever_their_size() -> None:
    # More than the read-ahead limit, so reading pauses and resumes on the way.
    large = bytes(range(256)) * (3 * HIGH_WATER // 256)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            body = await reader.readexactly(length)
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c)
                              for c in (body[i:i + 70000] for i in range(0, length, 70000)))
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                         + chunks + b"0\r\n\r\n")
            await writer.drain()

    async def scenario() -> None:
        async with serving(echo) as served:
            for body in (b"small", large):
                answer = await served.client.post(served.url, content=body)
                assert answer.content == body
            assert len(served.connections) == 1

    run(scenario)


def test_a_body_not_read_holds_the_server_back() -> None:
    # Reading pauses past HIGH_WATER: the server's writes wait rather than the client
    # buffering all of a body it is not reading.
    size = 64 * HIGH_WATER
    written = asyncio.Event()

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size + bytes(size))
        await writer.drain()
        written.set()
        await reader.read()

    async def scenario() -> None:
        async with serving(flood) as served, served.client.stream("GET", served.url) as answer:
            await asyncio.sleep(0.3)
            assert not written.is_set()
            assert len(await answer.aread()) == size
            assert written.is_set()

    run(scenario)


def test_failures_surface_as_httpx_errors() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()   # an RST, not a FIN

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=MirrorTransport()) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{closed_port()}/")
            async with server(answering(b"", close_after=1)) as (url, _):
                with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
                    await client.get(url)
            async with server(reset) as (url, _):
                with pytest.raises(httpx.ReadError, match="reset"):
                    await client.get(url)
            async with server(answering(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf",
                                        close_after=1)) as (url, _):
                with pytest.raises(httpx.RemoteProtocolError):
                    await client.get(url)
            with pytest.raises(httpx.UnsupportedProtocol):
                await client.get("ftp://127.0.0.1/")

    run(scenario)


def test_a_read_timeout_names_itself() -> None:
    async def scenario() -> None:
        async with serving(answering(), timeout=0.2) as served:
            with pytest.raises(httpx.ReadTimeout):
                await served.client.get(served.url)

    run(scenario)
