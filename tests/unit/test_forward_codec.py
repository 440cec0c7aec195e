"""The forward-protocol codec against hand-built bytes: every mode, the Fluentd and Fluent Bit
quirks, the handshake, the limits, and garbage (hypothesis)."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import struct
import tracemalloc
import zlib

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logtui.core.forward import (
    NS,
    Ack,
    ClientHandshake,
    Dropped,
    Events,
    EventTime,
    ForwardAuthError,
    ForwardDecoder,
    ForwardEvent,
    ForwardProtocolError,
    Heartbeat,
    Helo,
    Ping,
    Pong,
    ReplyDecoder,
    ServerHandshake,
    encode_ack,
    encode_forward,
    encode_heartbeat,
    encode_message,
    encode_packed_forward,
    gunzip,
    gzip_member,
)

NOW_NS = 1_600_000_000_111_222_333     # what the injected clock says "now" is
T = 1_700_000_000                     # seconds of the test events
RECORD = {"remote_addr": "10.0.0.1", "method": "GET", "path": "/a?b=1", "status": 200,
          "request_time": 0.012}


def decode(data: bytes, **limits: int) -> list[object]:
    return ForwardDecoder(clock=lambda: NOW_NS, **limits).feed(data)


def pk(value: object) -> bytes:
    return msgpack.packb(value)


def fixext8(seconds: int, nanoseconds: int) -> bytes:
    return b"\xd7\x00" + struct.pack(">II", seconds, nanoseconds)


def ext8(seconds: int, nanoseconds: int) -> bytes:
    return b"\xc7\x08\x00" + struct.pack(">II", seconds, nanoseconds)


def str32(data: bytes) -> bytes:
    return b"\xdb" + struct.pack(">I", len(data)) + data


def bin32(data: bytes) -> bytes:
    return b"\xc6" + struct.pack(">I", len(data)) + data


def array(n: int) -> bytes:
    return bytes([0x90 | n])


def fixmap(n: int) -> bytes:
    return bytes([0x80 | n])


def entry(time: bytes, record: dict[str, object]) -> bytes:
    return array(2) + time + pk(record)


def ev(tag: str, time_ns: int, record: dict[str, object],
       metadata: dict[str, object] | None = None) -> ForwardEvent:
    return ForwardEvent(tag, time_ns / NS, record, time_ns, metadata)


def only_events(frames: list[object]) -> Events:
    assert len(frames) == 1 and isinstance(frames[0], Events), frames
    return frames[0]


# -- the four modes -------------------------------------------------------------------------


def test_message_mode_with_integer_time() -> None:
    frame = only_events(decode(array(3) + pk("web.access") + pk(T) + pk(RECORD)))
    assert frame.tag == "web.access"
    assert frame.events == [ev("web.access", T * NS, RECORD)]
    assert frame.chunk is None and not frame.ack_needed


@pytest.mark.parametrize("form", [fixext8, ext8], ids=["fixext8", "ext8"])
def test_message_mode_event_time_keeps_nanoseconds_in_both_ext_forms(form) -> None:
    data = array(4) + pk("web") + form(T, 123_456_789) + pk(RECORD) + pk({"chunk": "p8n9"})
    frame = only_events(decode(data))
    [e] = frame.events
    assert (e.time_ns, e.seconds, e.nanoseconds) == (T * NS + 123_456_789, T, 123_456_789)
    assert e.time == pytest.approx(T + 0.123456789)
    assert frame.chunk == b"p8n9" and frame.ack_needed
    assert frame.size == len(data)


def test_forward_mode() -> None:
    data = (array(3) + pk("app") + array(2) + entry(fixext8(T, 1), {"n": 1})
            + entry(pk(T + 1), {"n": 2}) + pk({"size": 2, "chunk": "abc"}))
    frame = only_events(decode(data))
    assert frame.events == [ev("app", T * NS + 1, {"n": 1}), ev("app", (T + 1) * NS, {"n": 2})]
    assert frame.chunk == b"abc"


def test_fluent_bit_forward_entries_carry_time_and_metadata() -> None:
    # Fluent Bit 2.x: [[EventTime, {metadata}], record]; metadata is often empty
    data = (array(2) + pk("kube.var.log") + array(2)
            + array(2) + array(2) + fixext8(T, 5) + fixmap(0) + pk({"log": "a"})
            + array(2) + array(2) + fixext8(T, 6) + pk({"otlp": {"x": 1}}) + pk({"log": "b"}))
    frame = only_events(decode(data))
    assert frame.events == [ev("kube.var.log", T * NS + 5, {"log": "a"}, {}),
                            ev("kube.var.log", T * NS + 6, {"log": "b"}, {"otlp": {"x": 1}})]


def packed(records: list[dict[str, object]], start: int = 0) -> bytes:
    return b"".join(entry(fixext8(T, start + i), r) for i, r in enumerate(records))


RECORDS = [{"status": 200 + i, "path": f"/p/{i}"} for i in range(5)]
EVENTS = [ev("web", T * NS + i, r) for i, r in enumerate(RECORDS)]


@pytest.mark.parametrize("wrap", [lambda b: b"\xc4" + bytes([len(b)]) + b, bin32, str32],
                         ids=["bin8", "bin32", "str32"])
def test_packed_forward_payload_as_bin_or_str(wrap) -> None:
    data = array(3) + pk("web") + wrap(packed(RECORDS)) + pk({"size": 5})
    assert only_events(decode(data)).events == EVENTS


def test_fluentd_out_forward_bytes_str32_gzip_members_and_newline_chunk() -> None:
    # out_forward writes the header by hand: array(3), tag, 0xdb + length, the buffer chunk
    # (one gzip member per append), then the option; its chunk id is Base64 ending in "\n".
    payload = gzip.compress(packed(RECORDS[:2])) + gzip.compress(packed(RECORDS[2:], 2))
    chunk = b"WhPqv0ubGJ1ZnFmNn2eF0A==\n"
    option = fixmap(3) + pk("size") + pk(5) + pk("compressed") + pk("gzip") + pk("chunk")
    data = array(3) + pk("web") + str32(payload) + option + str32(chunk)
    frame = only_events(decode(data))
    assert frame.events == EVENTS
    assert frame.chunk == chunk
    ack = encode_ack(frame.chunk)
    assert ack == b"\x81\xa3ack" + bytes([0xA0 | len(chunk)]) + chunk
    assert msgpack.unpackb(ack) == {"ack": chunk.decode()}


def test_compressed_text_means_not_compressed() -> None:
    data = array(3) + pk("web") + bin32(packed(RECORDS)) + pk({"compressed": "text"})
    assert only_events(decode(data)).events == EVENTS


def test_fluent_signal_skips_entries_but_still_acks() -> None:
    data = array(3) + pk("metrics") + bin32(b"\x01\x02 cmetrics bytes") + pk(
        {"fluent_signal": 2, "chunk": "m1"})
    frame = only_events(decode(data))
    assert frame.events == [] and frame.signal == 2 and frame.chunk == b"m1"


def test_bare_nil_is_a_heartbeat() -> None:
    assert decode(b"\xc0" + encode_heartbeat()) == [Heartbeat(), Heartbeat()]


@pytest.mark.parametrize("time", [pk(0), pk(None), fixext8(0, 0), fixext8(0, 999), pk(0.5)])
def test_time_zero_means_now(time: bytes) -> None:
    frame = only_events(decode(array(3) + pk("t") + time + pk({"a": 1})))
    assert frame.events[0].time_ns == NOW_NS
    forward = only_events(decode(array(2) + pk("t") + array(1) + entry(time, {"a": 1})))
    assert forward.events[0].time_ns == NOW_NS


def test_float_time_and_nil_records() -> None:
    frame = only_events(decode(array(2) + pk("t") + array(2) + entry(pk(T + 0.25), {"a": 1})
                               + array(2) + pk(T) + b"\xc0"))
    assert frame.events == [ev("t", T * NS + 250_000_000, {"a": 1})]


def test_invalid_utf8_in_records_becomes_replacement_characters() -> None:
    bad = b"\xa4ok\xff\xfe"                 # fixstr of 4 bytes, two of them invalid
    record = fixmap(1) + pk("ua") + bad
    for data in (array(3) + pk("t") + pk(T) + record,
                 array(2) + pk("t") + array(1) + array(2) + pk(T) + record,
                 array(2) + pk("t") + bin32(array(2) + pk(T) + record)):
        assert only_events(decode(data)).events[0].record == {"ua": "ok\ufffd\ufffd"}


def test_events_become_logtui_events_with_nanoseconds() -> None:
    frame = only_events(decode(encode_message("web", EventTime(T, 7), {"a": 1})))
    [event] = frame.events
    assert isinstance(event, ForwardEvent)
    assert (event.tag, event.time_ns, event.record) == ("web", T * NS + 7, {"a": 1})
    assert event.time == pytest.approx(T, abs=1e-6)


# -- encoders -------------------------------------------------------------------------------


def test_encoders_round_trip_and_use_fixext8_event_time() -> None:
    entries = [(EventTime(T, i), r) for i, r in enumerate(RECORDS)]
    message = encode_message("web", EventTime(T, 9), RECORD, chunk="c0")
    assert fixext8(T, 9) in message
    frames = decode(message + encode_forward("web", entries, chunk="c1")
                    + encode_packed_forward("web", entries, chunk="c2")
                    + encode_packed_forward("web", entries, compressed=True, chunk="c3"))
    assert [f.chunk for f in frames] == [b"c0", b"c1", b"c2", b"c3"]
    assert frames[0].events == [ev("web", T * NS + 9, RECORD)]
    assert all(f.events == EVENTS for f in frames[1:])
    assert only_events(decode(encode_message("t", T + 0.5, {}))).events[0].time_ns == (
        T * NS + 500_000_000)


def test_ack_uses_the_shortest_str_header() -> None:
    assert encode_ack(b"x" * 40)[5:7] == b"\xd9\x28"
    assert ReplyDecoder().feed(encode_ack(b"a\n") + encode_ack(b"\xff")) == [
        Ack(b"a\n"), Ack(b"\xff")]


# -- handshake ------------------------------------------------------------------------------


def sha512_hex(*parts: bytes) -> str:
    return hashlib.sha512(b"".join(parts)).hexdigest()


NONCE = bytes(range(16))
FLUENT_BIT_SALT = bytes(range(0xF0, 0x100))   # 16 raw bytes, not valid UTF-8


def fluent_bit_ping(key: bytes, hostname: bytes = b"fb-host") -> bytes:
    # Fluent Bit packs the salt as a str of 16 random bytes (msgpack_pack_str)
    digest = sha512_hex(FLUENT_BIT_SALT, hostname, NONCE, key).encode()
    return (array(6) + pk("PING") + pk(hostname.decode()) + b"\xb0" + FLUENT_BIT_SALT
            + pk(digest.decode()) + pk("") + pk(""))


def test_helo_bytes() -> None:
    helo = msgpack.unpackb(ServerHandshake("k", "srv", nonce=NONCE).helo(), raw=True)
    assert helo == [b"HELO", {b"nonce": NONCE, b"auth": b"", b"keepalive": True}]
    assert ReplyDecoder().feed(ServerHandshake("k", "srv", nonce=NONCE).helo()) == [
        Helo(NONCE, b"", True)]


def test_fluent_bit_ping_with_a_raw_salt_is_accepted() -> None:
    [ping] = decode(fluent_bit_ping(b"s3cret"))
    assert ping == Ping("fb-host", FLUENT_BIT_SALT,
                        sha512_hex(FLUENT_BIT_SALT, b"fb-host", NONCE, b"s3cret").encode())
    server = ServerHandshake("s3cret", "logtui-host", nonce=NONCE)
    pong = msgpack.unpackb(server.check(ping))
    assert server.authenticated
    assert pong == ["PONG", True, "", "logtui-host",
                    sha512_hex(FLUENT_BIT_SALT, b"logtui-host", NONCE, b"s3cret")]


def test_wrong_shared_key_is_refused_with_a_short_reason() -> None:
    [ping] = decode(fluent_bit_ping(b"wrong"))
    server = ServerHandshake("s3cret", "logtui-host", nonce=NONCE)
    pong = msgpack.unpackb(server.check(ping))
    assert not server.authenticated
    assert pong == ["PONG", False, "shared_key mismatch", "", ""]
    assert len(pong[2]) < 32   # Fluent Bit copies the reason into a 32-byte buffer


def test_client_and_server_with_users() -> None:
    users = {"alice": "pw"}
    server = ServerHandshake("key", "srv", users)
    replies = ReplyDecoder()
    [helo] = replies.feed(server.helo())
    assert len(helo.auth) == 16
    client = ClientHandshake("key", "cli", "alice", "pw")
    [ping] = decode(client.ping(helo))
    assert ping.username == "alice"
    assert ping.password_digest == sha512_hex(helo.auth, b"alice", b"pw").encode()
    [pong] = replies.feed(server.check(ping))
    client.check(pong)
    assert server.authenticated

    for username, password in (("alice", "nope"), ("mallory", "pw")):
        server = ServerHandshake("key", "srv", users)
        [helo] = ReplyDecoder().feed(server.helo())
        [ping] = decode(ClientHandshake("key", "cli", username, password).ping(helo))
        [pong] = ReplyDecoder().feed(server.check(ping))
        assert pong == Pong(False, "username/password mismatch", "", b"")
        with pytest.raises(ForwardAuthError, match="username/password mismatch"):
            ClientHandshake("key", "cli").check(pong)


def test_client_detects_a_server_without_the_key() -> None:
    client = ClientHandshake("key", "cli")
    client.ping(Helo(NONCE))
    with pytest.raises(ForwardAuthError):
        client.check(Pong(True, "", "srv", sha512_hex(b"x").encode()))


# -- limits and malformed input -------------------------------------------------------------


def test_frame_over_the_chunk_limit_is_dropped_and_the_stream_goes_on() -> None:
    big = encode_forward("t", [(T, {"x": "y" * 2000})], chunk="big")
    small = encode_message("t", T, {"a": 1}, chunk="small")
    frames = decode(big + small, max_chunk_bytes=1000)
    assert frames[0] == Dropped("frame over 1000 bytes", len(big))
    assert only_events(frames[1:]).chunk == b"small"


def test_frame_over_the_buffer_limit_breaks_the_stream() -> None:
    decoder = ForwardDecoder(max_buffer_bytes=1024)
    with pytest.raises(ForwardProtocolError, match="buffer"):
        decoder.feed(encode_forward("t", [(T, {"x": "y" * 2000})])[:1500])
    with pytest.raises(ForwardProtocolError):
        decoder.feed(encode_heartbeat())


@pytest.mark.parametrize("data", [
    b"\xc1",                                              # reserved byte
    pk("just a string"), pk(42), pk({"a": 1}), pk([]), pk(["tag"]),
    pk([1, 2, 3]),                                        # tag is not a string
    pk(["t", T, "not a map"]),
    pk(["t", T, {}, {}, {}]),
    pk(["t", [[T]]]),                                     # entry without a record
    pk(["t", [[T, 5]]]),
    pk(["t", [["yesterday", {}]]]),
    pk(["t", -5, {}]),
    pk(["t", T, {}, "option"]),
    pk(["t", T, {}, {"compressed": "zstd"}]),
    pk(["t", T, {}, {"chunk": 5}]),
    pk(["t", b"\x92\x01", {}]),                           # truncated packed entry
    pk(["t", b"\x92\x01\x80\xc1", {}]),
    pk(["t", b"not gzip", {"compressed": "gzip"}]),
    pk(["t", gzip.compress(b"\x92\x01\x80")[:-4], {"compressed": "gzip"}]),
    b"\x92\xa1t\xdc\x00\x01" + b"\x91" * 5000,            # nesting deeper than the stack
], ids=lambda d: d[:12].hex())
def test_malformed_frames_raise_protocol_errors(data: bytes) -> None:
    with pytest.raises(ForwardProtocolError):
        decode(data)


# -- gzip bombs -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """1 GiB of zeros in one gzip member (about 1 MiB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(16 << 20)
    parts = [compressor.compress(block) for _ in range(64)]
    return b"".join(parts) + compressor.flush()


def peak_bytes(run) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_gzip_bomb_is_refused_before_memory_passes_the_cap(gzip_bomb: bytes) -> None:
    cap = 16 << 20
    # what inflating may hold: the output (a bytearray grows by up to 1/8 more) plus one
    # 1 MiB step; the bomb itself inflates to 64 times the cap
    inflating = cap + cap // 8 + (2 << 20)
    result, peak = peak_bytes(lambda: gunzip(gzip_bomb, cap))
    assert result is None
    assert peak < inflating

    data = msgpack.packb(["t", gzip_bomb, {"compressed": "gzip", "chunk": "bomb"}])
    frames, peak = peak_bytes(lambda: decode(data, max_decompressed_bytes=cap))
    assert frames == [Dropped(f"entries inflate past {cap} bytes", len(data))]
    # plus copies of the ~1 MiB compressed frame (stream buffer, frame, payload)
    assert peak < inflating + 4 * len(data)


def test_many_small_gzip_members_count_towards_the_same_cap() -> None:
    member = gzip_member(bytes(1 << 20), 9)
    assert gunzip(member * 8, 8 << 20) == bytearray(8 << 20)
    assert gunzip(member * 9, 8 << 20) is None


# -- hypothesis: splits, garbage, mutations -------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                    st.floats(allow_nan=False), st.text(max_size=20), st.binary(max_size=20))
records = st.dictionaries(st.text(max_size=10), st.one_of(
    scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=5), scalars,
                                                            max_size=3)), max_size=6)
times = st.one_of(st.integers(1, 2**32 - 1),
                  st.builds(EventTime, st.integers(1, 2**32 - 1), st.integers(0, NS - 1)))
entry_lists = st.lists(st.tuples(times, records), max_size=5)
chunks = st.one_of(st.none(), st.text(min_size=1, max_size=30))


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    tag = draw(st.text(max_size=20))
    mode = draw(st.sampled_from(["message", "forward", "packed", "gzip", "heartbeat"]))
    chunk = draw(chunks)
    if mode == "heartbeat":
        return encode_heartbeat()
    if mode == "message":
        time, record = draw(st.tuples(times, records))
        return encode_message(tag, time, record, chunk=chunk)
    entries = draw(entry_lists)
    if mode == "forward":
        return encode_forward(tag, entries, chunk=chunk)
    return encode_packed_forward(tag, entries, compressed=mode == "gzip", chunk=chunk)


streams = st.lists(frames(), min_size=1, max_size=6).map(b"".join)


def feed_in_pieces(data: bytes, cuts: list[int]) -> list[object]:
    decoder = ForwardDecoder(clock=lambda: NOW_NS)
    points = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    result: list[object] = []
    for start, end in itertools.pairwise(points):
        result += decoder.feed(data[start:end])
    return result


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams, st.lists(st.integers(min_value=0), max_size=12))
def test_any_split_of_a_valid_stream_decodes_identically(data: bytes, cuts: list[int]) -> None:
    whole = decode(data)
    assert feed_in_pieces(data, cuts) == whole
    assert whole and all(
        isinstance(f, Events | Heartbeat) for f in whole)


@settings(max_examples=100, deadline=None)
@given(st.tuples(times, records), chunks)
def test_message_round_trip(event: tuple[EventTime | int, dict], chunk: str | None) -> None:
    time, record = event
    frame = only_events(decode(encode_message("tag", time, record, chunk=chunk)))
    expected_ns = time.ns if isinstance(time, EventTime) else time * NS
    assert frame.events[0].time_ns == expected_ns
    assert frame.chunk == (chunk.encode() if chunk is not None else None)


def decodes_or_refuses(data: bytes, cuts: list[int]) -> None:
    try:
        frames = feed_in_pieces(data, cuts)
    except ForwardProtocolError:
        return
    assert all(isinstance(f, Events | Heartbeat | Dropped | Ping) for f in frames)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=5))
def test_random_bytes_decode_or_raise_protocol_errors(data: bytes, cuts: list[int]) -> None:
    decodes_or_refuses(data, cuts)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams, st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255),
                                   st.sampled_from(["set", "insert", "delete"])),
                         min_size=1, max_size=4),
       st.lists(st.integers(min_value=0), max_size=5))
def test_mutated_streams_decode_or_raise_protocol_errors(
        data: bytes, edits: list[tuple[int, int, str]], cuts: list[int]) -> None:
    mutated = bytearray(data)
    for position, value, how in edits:
        at = position % (len(mutated) + 1)
        if how == "insert":
            mutated[at:at] = bytes([value])
        elif at < len(mutated):
            if how == "set":
                mutated[at] = value
            else:
                del mutated[at]
    decodes_or_refuses(bytes(mutated), cuts)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(times, records), min_size=1, max_size=4),
       st.integers(min_value=0), st.integers(0, 255))
def test_mutated_gzip_payloads_decode_or_raise_protocol_errors(
        entries: list[tuple[EventTime | int, dict]], position: int, value: int) -> None:
    data = bytearray(encode_packed_forward("t", entries, compressed=True))
    data[position % len(data)] = value
    decodes_or_refuses(bytes(data), [])
