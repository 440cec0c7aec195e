"""The forward server on real loopback sockets: modes, acks, duplicates, limits, handshake,
TLS, the UDP heartbeat and misbehaving clients. Every scenario is bounded in time."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import msgpack
import pytest

from logtui.core.event import Event
from logtui.core.forward import (
    NS,
    Ack,
    ClientHandshake,
    EventTime,
    ForwardEvent,
    Helo,
    Pong,
    Reply,
    ReplyDecoder,
    encode_forward,
    encode_heartbeat,
    encode_message,
    encode_packed_forward,
)
from logtui.sources.forward import ForwardLimits, ForwardServer, Peer, tls_context

T = 1_700_000_000
RECORD = {"remote_addr": "10.1.2.3", "method": "GET", "path": "/", "status": 200}


def run(scenario: Callable[[], Awaitable[None]], timeout: float = 20.0) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout))


class Collector:
    """on_events for the tests: keeps every batch, optionally waits on a gate first."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[Event], Peer]] = []
        self.gate: asyncio.Event | None = None
        self.arrived = asyncio.Event()

    async def __call__(self, events: Sequence[Event], peer: Peer) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.batches.append((list(events), peer))
        self.arrived.set()

    @property
    def events(self) -> list[Event]:
        return [event for batch, _ in self.batches for event in batch]


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = ReplyDecoder()
        self.pending: list[Reply] = []

    @classmethod
    async def connect(cls, port: int, tls: ssl.SSLContext | None = None) -> Client:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls, server_hostname="localhost" if tls else None)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def replies(self, count: int, timeout: float = 5.0) -> list[Reply]:
        async with asyncio.timeout(timeout):
            while len(self.pending) < count:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("closed by the server")
                self.pending += self.decoder.feed(data)
        replies, self.pending = self.pending[:count], self.pending[count:]
        return replies

    async def nothing_within(self, seconds: float) -> bool:
        """No byte and no close from the server for `seconds`."""
        try:
            async with asyncio.timeout(seconds):
                await self.reader.read(65536)
        except TimeoutError:
            return True
        return False

    async def closed_by_server(self, timeout: float = 5.0) -> bool:
        """Reads (and decodes) until the server closes; times out otherwise."""
        try:
            async with asyncio.timeout(timeout):
                while data := await self.reader.read(65536):
                    self.pending += self.decoder.feed(data)
        except ConnectionError:
            pass
        return True

    async def handshake(self, shared_key: str, hostname: str = "client") -> Pong:
        [helo] = await self.replies(1)
        assert isinstance(helo, Helo)
        client = ClientHandshake(shared_key, hostname)
        await self.send(client.ping(helo))
        [pong] = await self.replies(1)
        assert isinstance(pong, Pong)
        if pong.authenticated:
            client.check(pong)
        return pong

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


def entries(count: int, start: int = 0) -> list[tuple[EventTime, dict[str, object]]]:
    return [(EventTime(T, start + i), {**RECORD, "n": start + i}) for i in range(count)]


# -- modes, acks, duplicates ----------------------------------------------------------------


def test_each_mode_arrives_once_with_tag_time_and_record() -> None:
    async def scenario() -> None:
        collector = Collector()
        async with ForwardServer("127.0.0.1", 0, collector) as server:
            client = await Client.connect(server.port)
            await client.send(encode_message("m", EventTime(T, 1), RECORD, chunk="c-msg"))
            await client.send(encode_forward("f", entries(3, 10), chunk="c-fwd"))
            await client.send(encode_packed_forward("p", entries(3, 20), chunk="c-pack"))
            await client.send(encode_packed_forward("z", entries(3, 30), compressed=True,
                                                    chunk="c-gzip"))
            acks = await client.replies(4)
            assert acks == [Ack(b"c-msg"), Ack(b"c-fwd"), Ack(b"c-pack"), Ack(b"c-gzip")]
            await client.close()
        got = [(e.tag, e.time_ns, e.record) for e in collector.events
               if isinstance(e, ForwardEvent)]
        assert got == [("m", T * NS + 1, RECORD),
                       *[("f", T * NS + 10 + i, {**RECORD, "n": 10 + i}) for i in range(3)],
                       *[("p", T * NS + 20 + i, {**RECORD, "n": 20 + i}) for i in range(3)],
                       *[("z", T * NS + 30 + i, {**RECORD, "n": 30 + i}) for i in range(3)]]
        assert server.stats.events == 10 and server.stats.acks == 4
    run(scenario)


def test_ack_is_sent_only_after_the_events_are_accepted() -> None:
    async def scenario() -> None:
        collector = Collector()
        collector.gate = asyncio.Event()
        async with ForwardServer("127.0.0.1", 0, collector) as server:
            client = await Client.connect(server.port)
            await client.send(encode_message("m", T, RECORD, chunk="held"))
            assert await client.nothing_within(0.3)
            assert collector.events == []
            collector.gate.set()
            assert await client.replies(1) == [Ack(b"held")]
            assert len(collector.events) == 1
            await client.close()
    run(scenario)


def test_resent_chunk_is_acked_but_not_passed_on_twice() -> None:
    async def scenario() -> None:
        collector = Collector()
        async with ForwardServer("127.0.0.1", 0, collector) as server:
            frame = encode_forward("f", entries(2), chunk="WhPqv0ubGJ1ZnFmNn2eF0A==\n")
            for _ in range(2):   # a sender that missed the ack resends on a new connection
                client = await Client.connect(server.port)
                await client.send(frame)
                assert await client.replies(1) == [Ack(b"WhPqv0ubGJ1ZnFmNn2eF0A==\n")]
                await client.close()
        assert len(collector.events) == 2
        assert server.stats.duplicates == 1 and server.stats.acks == 2
    run(scenario)


def test_oversized_chunk_is_dropped_without_ack() -> None:
    async def scenario() -> None:
        collector = Collector()
        limits = ForwardLimits(max_chunk_bytes=2000)
        async with ForwardServer("127.0.0.1", 0, collector, limits=limits) as server:
            client = await Client.connect(server.port)
            await client.send(encode_forward("f", entries(100), chunk="big"))
            await client.send(encode_message("m", T, RECORD, chunk="small"))
            assert await client.replies(1) == [Ack(b"small")]
            assert await client.nothing_within(0.2)
            await client.close()
        assert [e.tag for e in collector.events] == ["m"]
        assert server.stats.dropped == 1
    run(scenario)


def test_fluent_signal_frames_are_acked_and_skipped() -> None:
    async def scenario() -> None:
        collector = Collector()
        async with ForwardServer("127.0.0.1", 0, collector) as server:
            client = await Client.connect(server.port)
            await client.send(msgpack.packb(["metrics", b"\x00cmetrics",
                                             {"fluent_signal": 1, "chunk": "sig"}]))
            assert await client.replies(1) == [Ack(b"sig")]
            await client.close()
        assert collector.events == [] and server.stats.signals == 1
    run(scenario)


def test_source_address_is_added_to_records() -> None:
    async def scenario() -> None:
        collector = Collector()
        async with ForwardServer("127.0.0.1", 0, collector,
                                 source_address_key="source_address") as server:
            client = await Client.connect(server.port)
            await client.send(encode_message("m", T, {"a": 1}, chunk="x"))
            await client.replies(1)
            await client.close()
        assert collector.events[0].record == {"a": 1, "source_address": "127.0.0.1"}
        assert collector.batches[0][1][0] == "127.0.0.1"
    run(scenario)


def test_events_refused_by_the_pipeline_are_not_acked() -> None:
    async def scenario() -> None:
        def refuse(events: Sequence[Event], peer: Peer) -> None:
            raise RuntimeError("queue full")

        async with ForwardServer("127.0.0.1", 0, refuse) as server:
            client = await Client.connect(server.port)
            await client.send(encode_message("m", T, RECORD, chunk="nope"))
            assert await client.closed_by_server()
            assert client.pending == [] and client.decoder.pending == 0
            await client.close()
        assert server.stats.rejected == 1 and server.stats.acks == 0
        assert server.stats.last_error == "RuntimeError: queue full"
    run(scenario)


# -- misbehaving clients --------------------------------------------------------------------


def test_malformed_client_is_disconnected_while_another_keeps_working() -> None:
    async def scenario() -> None:
        collector = Collector()
        async with ForwardServer("127.0.0.1", 0, collector) as server:
            good = await Client.connect(server.port)
            bad = await Client.connect(server.port)
            await good.send(encode_message("good", T, RECORD)[:10])   # half a frame
            await bad.send(b"\x93\xa1t\xc1garbage")
            assert await bad.closed_by_server()
            await bad.close()
            await good.send(encode_message("good", T, RECORD)[10:])
            await good.send(encode_message("good", T + 1, RECORD, chunk="still-here"))
            assert await good.replies(1) == [Ack(b"still-here")]
            await good.close()
        assert [e.tag for e in collector.events] == ["good", "good"]
        assert server.stats.malformed == 1
    run(scenario)


def test_random_and_mutated_bytes_never_hurt_other_connections() -> None:
    async def scenario() -> None:
        collector = Collector()
        rng = random.Random(4)
        valid = (encode_message("m", T, RECORD, chunk="a") + encode_forward("f", entries(3))
                 + encode_packed_forward("z", entries(3), compressed=True, chunk="b"))
        payloads = [rng.randbytes(rng.randrange(1, 400)) for _ in range(20)]
        for _ in range(40):
            mutated = bytearray(valid)
            for _ in range(rng.randrange(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            payloads.append(bytes(mutated))
        limits = ForwardLimits(idle_timeout=1.0, max_buffer_bytes=1 << 16)
        async with ForwardServer("127.0.0.1", 0, collector, limits=limits) as server:
            good = await Client.connect(server.port)

            async def attack(payload: bytes) -> None:
                client = await Client.connect(server.port)
                await client.send(payload)
                await client.close()

            for round_ in range(0, len(payloads), 10):
                await asyncio.gather(*(attack(p) for p in payloads[round_:round_ + 10]))
                await good.send(encode_message("good", T, RECORD, chunk=f"g{round_}"))
                assert await good.replies(1) == [Ack(f"g{round_}".encode())]
            await good.close()
        assert sum(e.tag == "good" for e in collector.events) == len(payloads) // 10
    run(scenario)


def test_idle_connection_is_closed() -> None:
    async def scenario() -> None:
        limits = ForwardLimits(idle_timeout=0.3)
        async with ForwardServer("127.0.0.1", 0, Collector(), limits=limits) as server:
            client = await Client.connect(server.port)
            await client.send(encode_heartbeat())
            assert await client.closed_by_server(timeout=3.0)
            await client.close()
        assert server.stats.idle_closed == 1 and server.stats.heartbeats == 1
    run(scenario)


def test_connections_over_the_limit_are_refused() -> None:
    async def scenario() -> None:
        collector = Collector()
        limits = ForwardLimits(max_connections=1)
        async with ForwardServer("127.0.0.1", 0, collector, limits=limits) as server:
            first = await Client.connect(server.port)
            await first.send(encode_message("m", T, RECORD, chunk="1"))
            await first.replies(1)
            second = await Client.connect(server.port)
            assert await second.closed_by_server()
            await first.send(encode_message("m", T, RECORD, chunk="2"))
            assert await first.replies(1) == [Ack(b"2")]
            await first.close()
            await second.close()
        assert server.stats.refused == 1
    run(scenario)


def test_udp_heartbeat_is_answered_on_the_same_port() -> None:
    async def scenario() -> None:
        async with ForwardServer("127.0.0.1", 0, Collector()) as server:
            loop = asyncio.get_running_loop()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.setblocking(False)
                await loop.sock_sendto(udp, b"\x00", ("127.0.0.1", server.port))
                reply = await asyncio.wait_for(loop.sock_recv(udp, 64), 3.0)
            assert reply == b"\x00"
        assert server.stats.heartbeats == 1
    run(scenario)


# -- shared-key handshake -------------------------------------------------------------------


def test_shared_key_handshake_then_events() -> None:
    async def scenario() -> None:
        collector = Collector()
        async with ForwardServer("127.0.0.1", 0, collector, shared_key="s3cret",
                                 hostname="aggregator") as server:
            client = await Client.connect(server.port)
            pong = await client.handshake("s3cret")
            assert pong.authenticated and pong.hostname == "aggregator"
            await client.send(encode_message("m", T, RECORD, chunk="after-auth"))
            assert await client.replies(1) == [Ack(b"after-auth")]
            await client.close()
        assert len(collector.events) == 1
    run(scenario)


def test_wrong_shared_key_is_refused_with_pong_false_and_closed() -> None:
    async def scenario() -> None:
        collector = Collector()
        async with ForwardServer("127.0.0.1", 0, collector, shared_key="s3cret") as server:
            client = await Client.connect(server.port)
            pong = await client.handshake("wrong")
            assert pong == Pong(False, "shared_key mismatch", "", b"")
            await client.send(encode_message("m", T, RECORD, chunk="x"))
            assert await client.closed_by_server()
            await client.close()

            unaware = await Client.connect(server.port)   # a sender without the key
            await unaware.replies(1)                       # HELO
            await unaware.send(encode_message("m", T, RECORD, chunk="y"))
            [pong] = await unaware.replies(1)
            assert pong == Pong(False, "invalid ping message", "", b"")
            assert await unaware.closed_by_server()
            await unaware.close()
        assert collector.events == [] and server.stats.auth_failures == 2
    run(scenario)


# -- TLS ------------------------------------------------------------------------------------




def test_tls_with_shared_key(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate

    async def scenario() -> None:
        collector = Collector()
        async with ForwardServer("127.0.0.1", 0, collector, shared_key="k",
                                 tls=tls_context(cert, key)) as server:
            client_tls = ssl.create_default_context(cafile=str(cert))
            client = await Client.connect(server.port, client_tls)
            assert (await client.handshake("k")).authenticated
            await client.send(encode_packed_forward("tls", entries(5), compressed=True,
                                                    chunk="over-tls"))
            assert await client.replies(1) == [Ack(b"over-tls")]
            await client.close()

            plain = await Client.connect(server.port)     # plaintext to a TLS port
            await plain.send(encode_message("m", T, RECORD, chunk="plain"))
            assert await plain.closed_by_server()
            await plain.close()
        assert [e.record["n"] for e in collector.events] == list(range(5))
    run(scenario)


def test_tls_client_certificate_required_with_a_client_ca(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate

    async def scenario() -> None:
        collector = Collector()
        context = tls_context(cert, key, client_ca=cert)
        async with ForwardServer("127.0.0.1", 0, collector, tls=context) as server:
            with_cert = ssl.create_default_context(cafile=str(cert))
            with_cert.load_cert_chain(cert, key)
            client = await Client.connect(server.port, with_cert)
            await client.send(encode_message("m", T, RECORD, chunk="mtls"))
            assert await client.replies(1) == [Ack(b"mtls")]
            await client.close()

            without = ssl.create_default_context(cafile=str(cert))
            anonymous = None
            with pytest.raises((ssl.SSLError, ConnectionError)):
                anonymous = await Client.connect(server.port, without)
                await anonymous.send(encode_message("m", T, RECORD, chunk="anon"))
                await anonymous.replies(1)
            if anonymous is not None:
                await anonymous.close()
        assert [e.tag for e in collector.events] == ["m"]
    run(scenario)


def test_tls_context_reports_a_bad_certificate_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    with pytest.raises(ValueError, match=r"cert\.pem"):
        tls_context(tmp_path / "cert.pem", tmp_path / "key.pem")
