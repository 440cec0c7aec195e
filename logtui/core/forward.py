"""Fluentd Forward Protocol v1, sans-I/O: `ForwardDecoder.feed(bytes)` gives the frames Fluentd,
Fluent Bit and fluent-loggers send; the encoders and handshake classes give the bytes to send."""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time as _time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import msgpack
import msgspec

from logtui.core.event import Event

MAX_CHUNK_BYTES = 16 << 20         # a frame bigger than this is dropped unread, not acked
MAX_BUFFER_BYTES = 32 << 20        # a frame bigger than this breaks the connection
MAX_DECOMPRESSED_BYTES = 64 << 20  # a gzip payload inflating past this is dropped, not acked
NS = 1_000_000_000
EVENT_TIME_EXT = 0
# Fluent Bit copies a refused PONG's reason into a 32-byte buffer: keep reasons shorter.
REASON_MAX = 31
_TWO_UINT32 = struct.Struct(">II")
_INFLATE_STEP = 1 << 20            # bytes of inflated output produced per zlib call
_INPUT_STEP = 64 << 10             # bytes of gzip input given per zlib call


class ForwardProtocolError(Exception):
    """The peer broke the protocol; the connection cannot continue."""


class ForwardAuthError(ForwardProtocolError):
    """The shared-key handshake failed (wrong key, user or password)."""


@dataclass(slots=True)
class EventTime:
    """Fluentd's EventTime: msgpack ext type 0, uint32 BE seconds + uint32 BE nanoseconds.

    The encoders take it; decoding yields ForwardEvent.time_ns (an EventTime inside a
    record decodes as a `(seconds, nanoseconds)` tuple).
    """

    seconds: int
    nanoseconds: int

    @classmethod
    def from_ns(cls, time_ns: int) -> EventTime:
        return cls(*divmod(time_ns, NS))

    @classmethod
    def from_float(cls, seconds: float) -> EventTime:
        whole = int(seconds)
        return cls(whole, min(round((seconds - whole) * NS), NS - 1))

    @property
    def ns(self) -> int:
        return self.seconds * NS + self.nanoseconds

    def ext(self) -> msgpack.ExtType:
        return msgpack.ExtType(EVENT_TIME_EXT, _TWO_UINT32.pack(self.seconds, self.nanoseconds))


Time = float | int | EventTime   # int and float are seconds


@dataclass(slots=True)
class ForwardEvent(Event):
    """An Event from the forward protocol, with the sender's time to the nanosecond."""

    time_ns: int = 0
    metadata: dict[str, Any] | None = None  # Fluent Bit's `[[time, metadata], record]`

    @property
    def seconds(self) -> int:
        return self.time_ns // NS

    @property
    def nanoseconds(self) -> int:
        return self.time_ns % NS


# -- frames a server receives ---------------------------------------------------------------


class EventBatch(Sequence[ForwardEvent]):
    """Events of one tag, kept as the columns the pipeline reads (one ForwardEvent per
    event would cost a fifth of the decoding); indexing builds the ForwardEvent."""

    __slots__ = ("metadata", "records", "tag", "times_ns")

    def __init__(self, tag: str, records: list[dict[str, Any]] | None = None,
                 times_ns: list[int] | None = None,
                 metadata: list[dict[str, Any] | None] | None = None) -> None:
        self.tag = tag
        self.records = [] if records is None else records
        self.times_ns = [] if times_ns is None else times_ns
        self.metadata = metadata   # Fluent Bit's, per event; None when no event had any

    def __len__(self) -> int:
        return len(self.records)

    @property
    def seconds(self) -> list[float]:
        """The events' times as seconds since the epoch (the pipeline's `time`)."""
        return [time_ns / NS for time_ns in self.times_ns]

    @overload
    def __getitem__(self, index: int) -> ForwardEvent: ...
    @overload
    def __getitem__(self, index: slice) -> list[ForwardEvent]: ...

    def __getitem__(self, index: int | slice) -> ForwardEvent | list[ForwardEvent]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        time_ns = self.times_ns[index]
        metadata = None if self.metadata is None else self.metadata[index]
        return ForwardEvent(self.tag, time_ns / NS, self.records[index], time_ns, metadata)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]   # mutable, like a list

    def __repr__(self) -> str:
        return f"EventBatch({self.tag!r}, {len(self)} events)"


@dataclass(slots=True)
class Events:
    """Message, Forward or (Compressed)PackedForward: events of one tag."""

    events: EventBatch
    chunk: bytes | None = None  # the `chunk` option, byte for byte: ack it after acceptance
    size: int = 0               # bytes of the frame on the wire
    signal: int = 0             # `fluent_signal`: non-zero = metrics/traces, entries skipped

    @property
    def tag(self) -> str:
        return self.events.tag

    @property
    def ack_needed(self) -> bool:
        return self.chunk is not None


@dataclass(slots=True)
class Dropped:
    """A frame over a size limit, dropped without an ack (the sender may resend it)."""

    reason: str
    size: int


@dataclass(slots=True)
class Heartbeat:
    """A bare msgpack nil."""


@dataclass(slots=True)
class Ping:
    """The client's answer to HELO: `["PING", hostname, salt, digest, username, digest]`."""

    hostname: str
    shared_key_salt: bytes
    shared_key_digest: bytes
    username: str = ""
    password_digest: bytes = b""


# -- frames a client receives ---------------------------------------------------------------


@dataclass(slots=True)
class Helo:
    nonce: bytes
    auth: bytes = b""        # the user-auth salt; empty when the server has no users
    keepalive: bool = True


@dataclass(slots=True)
class Pong:
    authenticated: bool
    reason: str
    hostname: str
    shared_key_digest: bytes


@dataclass(slots=True)
class Ack:
    chunk: bytes


Frame = Events | Dropped | Heartbeat | Ping
Reply = Helo | Pong | Ack


# -- decoding -------------------------------------------------------------------------------


def _ext_hook(code: int, data: bytes | memoryview,
              _seconds_ns: Callable[[bytes | memoryview], tuple[int, ...]]
              = _TWO_UINT32.unpack) -> Any:
    # EventTime decodes to a (seconds, nanoseconds) tuple: msgpack arrays decode to lists,
    # so a tuple can only be this, and it is the cheapest thing to build once per event.
    # msgpack hands over bytes, msgspec a memoryview.
    if code == EVENT_TIME_EXT and len(data) == 8:
        return _seconds_ns(data)
    return msgpack.ExtType(code, bytes(data))


def _unpack_options(unicode_errors: str) -> dict[str, Any]:
    return {"raw": False, "strict_map_key": False, "ext_hook": _ext_hook,
            "unicode_errors": unicode_errors}


# msgspec builds the same objects as msgpack's strict decoder at about twice the speed
# (its C decoder caches short map keys). It knows no "surrogateescape" or "replace" and
# no partial input: whatever it refuses goes to msgpack, which says what is wrong.
_FAST = msgspec.msgpack.Decoder(ext_hook=_ext_hook)
# msgspec.DecodeError is a ValueError; invalid UTF-8 raises UnicodeDecodeError, also one.
_FAST_ERRORS = (ValueError, TypeError)
_STRICT = _unpack_options("strict")
# Raw bytes sent as msgpack str (Fluent Bit's salt, Fluentd's str32 payload) survive this
# and are recovered exactly by `.encode("utf-8", "surrogateescape")`.
_ESCAPED = _unpack_options("surrogateescape")
# Invalid UTF-8 inside records becomes U+FFFD, as for tailed lines.
_REPLACED = _unpack_options("replace")
_UNPACK_ERRORS = (ValueError, TypeError, msgpack.UnpackException)


def _unpack(data: bytes | bytearray) -> tuple[Any, bool]:
    """One whole frame; the flag says whether a str held invalid UTF-8."""
    try:
        return _FAST.decode(data), False
    except UnicodeDecodeError:
        return _unpack_escaped(data), True   # every Fluentd str32 PackedForward frame
    except _FAST_ERRORS:
        pass
    try:
        return msgpack.unpackb(data, **_STRICT), False
    except UnicodeDecodeError:
        return _unpack_escaped(data), True
    except _UNPACK_ERRORS as exc:
        raise ForwardProtocolError(f"undecodable frame: {exc}") from None


def _unpack_escaped(data: bytes | bytearray) -> Any:
    try:
        return msgpack.unpackb(data, **_ESCAPED)
    except _UNPACK_ERRORS as exc:
        raise ForwardProtocolError(f"undecodable frame: {exc}") from None


def _pack_default(value: Any) -> Any:
    if isinstance(value, EventTime):
        return value.ext()
    raise TypeError(f"cannot pack {type(value).__name__}")


def _pack_decoded(value: Any) -> Any:
    """Packs EventTime tuples back as ext 0, for repacking what was decoded."""
    if type(value) is tuple:
        return EventTime(*value).ext()
    return _pack_default(value)


def _replace_invalid(value: Any) -> Any:
    """Turn surrogate escapes (invalid UTF-8 in the wire bytes) into U+FFFD."""
    try:
        packed = msgpack.packb(value, default=_pack_decoded, strict_types=True,
                               unicode_errors="surrogateescape")
        return msgpack.unpackb(packed, **_REPLACED)
    except _UNPACK_ERRORS as exc:
        raise ForwardProtocolError(f"undecodable frame: {exc}") from None


def _raw(value: Any, what: str) -> bytes:
    """A str or bin field as the exact bytes that were sent."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    raise ForwardProtocolError(f"{what}: expected str or bin, got {type(value).__name__}")


def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise ForwardProtocolError(f"{what}: expected str, got {type(value).__name__}")


def gunzip(data: bytes, limit: int) -> bytearray | None:
    """Inflate gzip `data` (one or more members), or None once it passes `limit` bytes.

    Input goes in 64 KiB at a time and output comes out 1 MiB at a time, checked as it
    grows, so a gzip bomb costs little more than `limit` bytes before it is refused.
    """
    out = bytearray()
    inflater = zlib.decompressobj(wbits=31)
    view = memoryview(data)
    try:
        for start in range(0, len(data), _INPUT_STEP):
            pending: bytes | memoryview = view[start:start + _INPUT_STEP]
            while pending:
                if inflater.eof:          # the next gzip member
                    inflater = zlib.decompressobj(wbits=31)
                room = min(limit + 1 - len(out), _INFLATE_STEP)
                out += inflater.decompress(pending, room)
                if len(out) > limit:
                    return None
                pending = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
    except zlib.error as exc:
        raise ForwardProtocolError(f"bad gzip data: {exc}") from None
    finally:
        view.release()
    if not inflater.eof:
        raise ForwardProtocolError("truncated gzip data")
    return out


class _FrameSplitter:
    """Cuts a msgpack stream into whole objects, with their exact bytes and size.

    `Unpacker.skip()` finds where each object ends without building it, so the limits
    apply before anything is decoded; each frame is then decoded from its own bytes.
    """

    def __init__(self, max_buffer_bytes: int) -> None:
        self._unpacker = msgpack.Unpacker(max_buffer_size=max_buffer_bytes)
        self._pending = bytearray()  # the bytes of the object being received, and after it
        self._start = 0              # stream offset of the object being received
        self._base = 0               # stream offset of _pending[0]
        self._broken: str | None = None

    def _objects(self, data: bytes) -> list[bytearray]:
        if self._broken:
            raise ForwardProtocolError(self._broken)
        try:
            self._unpacker.feed(data)
        except msgpack.BufferFull:
            self._broken = "frame larger than the buffer limit"
            raise ForwardProtocolError(self._broken) from None
        self._pending += data
        objects = []
        while True:
            try:
                self._unpacker.skip()
            except msgpack.OutOfData:
                break
            except _UNPACK_ERRORS as exc:
                self._broken = f"malformed msgpack stream: {exc}"
                raise ForwardProtocolError(self._broken) from None
            end = self._unpacker.tell()
            objects.append(self._pending[self._start - self._base:end - self._base])
            self._start = end
        del self._pending[:self._start - self._base]
        self._base = self._start
        return objects

    @property
    def pending(self) -> int:
        """Bytes received of a frame not yet complete."""
        return len(self._pending)


class ForwardDecoder(_FrameSplitter):
    """What a server receives: event frames, heartbeats and the handshake PING.

    Any split of the same bytes yields the same frames. A malformed stream raises
    `ForwardProtocolError` (the connection must be closed); a frame over
    `max_chunk_bytes`, or whose gzip payload inflates past `max_decompressed_bytes`,
    becomes `Dropped` (not acked), and the stream goes on. Buffered bytes stay under
    about twice `max_buffer_bytes`; decoded records take a few times their msgpack size.
    """

    def __init__(self, max_chunk_bytes: int = MAX_CHUNK_BYTES,
                 max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
                 max_buffer_bytes: int = MAX_BUFFER_BYTES,
                 clock: Callable[[], int] = _time.time_ns) -> None:
        super().__init__(max_buffer_bytes)
        self.max_chunk_bytes = max_chunk_bytes
        self.max_decompressed_bytes = max_decompressed_bytes
        self.clock = clock   # nanoseconds since the epoch, for events sent with time 0

    def feed(self, data: bytes) -> list[Frame]:
        frames = []
        for raw in self._objects(data):
            try:
                frames.append(self._frame(raw))
            except ForwardProtocolError as exc:
                self._broken = str(exc)
                raise
        return frames

    def _frame(self, raw: bytearray) -> Frame:
        size = len(raw)
        if size > self.max_chunk_bytes:
            return Dropped(f"frame over {self.max_chunk_bytes} bytes", size)
        message, dirty = _unpack(raw)
        if message is None:
            return Heartbeat()
        if not isinstance(message, list) or len(message) < 2:
            raise ForwardProtocolError("expected an array [tag, ...] or nil")
        if message[0] == "PING" and len(message) == 6:
            return _ping(message)
        tag = _text(message[0], "tag")
        body = message[1]
        if isinstance(body, list):
            return self._forward(tag, body, message, size, dirty)
        if isinstance(body, bytes | str):
            return self._packed(tag, body, message, size)
        return self._message(tag, message, size, dirty)

    def _message(self, tag: str, message: list[Any], size: int, dirty: bool) -> Events:
        if len(message) not in (3, 4):
            raise ForwardProtocolError("Message mode: expected [tag, time, record, option?]")
        chunk, signal, _ = _options(message[3] if len(message) == 4 else None)
        record = message[2]
        events = EventBatch(tag)
        if not signal and record is not None:
            if not isinstance(record, dict):
                raise ForwardProtocolError("record: expected a map")
            stamp = message[1]
            if dirty:
                stamp, record = _replace_invalid([stamp, record])
            time_ns, metadata = self._time(stamp)
            events = EventBatch(tag, [record], [time_ns], None if metadata is None else [metadata])
        return Events(events, chunk, size, signal)

    def _forward(self, tag: str, items: list[Any], message: list[Any], size: int,
                 dirty: bool) -> Events:
        if len(message) > 3:
            raise ForwardProtocolError("Forward mode: expected [tag, [entries], option?]")
        chunk, signal, _ = _options(message[2] if len(message) == 3 else None)
        if signal:
            return Events(EventBatch(tag), chunk, size, signal)
        if dirty:
            items = _replace_invalid(items)
        return Events(self._entries(tag, items), chunk, size)

    def _packed(self, tag: str, payload: bytes | str, message: list[Any], size: int) -> Frame:
        if len(message) > 3:
            raise ForwardProtocolError("PackedForward mode: expected [tag, bin, option?]")
        option = message[2] if len(message) == 3 else None
        chunk, signal, compressed = _options(option)
        if signal:
            return Events(EventBatch(tag), chunk, size, signal)
        # Fluentd's out_forward sends the packed entries as str32, even when gzipped.
        data: bytes | bytearray = _raw(payload, "entries")
        if compressed:
            inflated = gunzip(data, self.max_decompressed_bytes)
            if inflated is None:
                return Dropped(f"entries inflate past {self.max_decompressed_bytes} bytes",
                               size)
            data = inflated
        entries = _unpack_stream(data, option and option.get("size"))
        return Events(self._entries(tag, entries), chunk, size)

    def _entries(self, tag: str, items: Iterable[Any]) -> EventBatch:
        records: list[dict[str, Any]] = []
        times: list[int] = []
        metadata: list[dict[str, Any] | None] | None = None
        for item in items:
            if type(item) is not list or len(item) != 2:
                raise ForwardProtocolError("entry: expected [time, record]")
            stamp, record = item
            if record is None:       # Fluentd skips these too
                continue
            if type(record) is not dict:
                raise ForwardProtocolError("record: expected a map")
            # the common cases inline: this loop runs once per event
            if type(stamp) is tuple and stamp[0] and stamp[1] < NS:
                time_ns, meta = stamp[0] * NS + stamp[1], None
            elif type(stamp) is int and stamp > 0:
                time_ns, meta = stamp * NS, None
            else:
                time_ns, meta = self._time(stamp)
            records.append(record)
            times.append(time_ns)
            if meta is not None and metadata is None:
                metadata = [None] * (len(records) - 1)
            if metadata is not None:
                metadata.append(meta)
        return EventBatch(tag, records, times, metadata)

    def _time(self, stamp: Any) -> tuple[int, dict[str, Any] | None]:
        """Nanoseconds (and Fluent Bit metadata) of an int, float, EventTime or [time, meta]."""
        metadata = None
        if type(stamp) is list and len(stamp) == 2 and type(stamp[0]) is not list:
            stamp, metadata = stamp
            if metadata is not None and not isinstance(metadata, dict):
                raise ForwardProtocolError("time metadata: expected a map")
        if type(stamp) is tuple:     # EventTime
            seconds, nanoseconds = stamp
            if nanoseconds >= NS:
                raise ForwardProtocolError("EventTime nanoseconds out of range")
            time_ns = seconds * NS + nanoseconds
        elif type(stamp) is int:
            time_ns = stamp * NS
        elif type(stamp) is float and 0 <= stamp < 1 << 63:
            time_ns = int(stamp) * NS + round(stamp % 1 * NS)
        elif stamp is None:
            time_ns = 0
        else:
            raise ForwardProtocolError(f"time: expected int or EventTime, got {stamp!r:.40}")
        if time_ns < 0:
            raise ForwardProtocolError("time: negative")
        # Fluentd: a time whose seconds are 0 (or nil) means "now".
        if time_ns < NS:
            time_ns = self.clock()
        return time_ns, metadata


def _options(option: Any) -> tuple[bytes | None, int, bool]:
    """(chunk, fluent_signal, gzip) from a frame's option map."""
    if option is None:
        return None, 0, False
    if not isinstance(option, dict):
        raise ForwardProtocolError("option: expected a map")
    chunk = option.get("chunk")
    if chunk is not None:
        chunk = _raw(chunk, "chunk")
    compressed = option.get("compressed")
    if compressed not in (None, "gzip", "text"):
        raise ForwardProtocolError(f"compressed: unknown {compressed!r:.40}")
    signal = option.get("fluent_signal") or 0
    if type(signal) is not int:
        raise ForwardProtocolError("fluent_signal: expected an integer")
    return chunk, signal, compressed == "gzip"


def _ping(message: list[Any]) -> Ping:
    _, hostname, salt, digest, username, password_digest = message
    return Ping(_text(hostname, "PING hostname"), _raw(salt, "PING salt"),
                _raw(digest, "PING digest"), _text(username or "", "PING username"),
                _raw(password_digest or b"", "PING password digest"))


def _unpack_stream(data: bytes | bytearray, size: Any = None) -> list[Any]:
    """The concatenated [time, record] entries of a PackedForward payload. `size` is the
    sender's count of entries (option `size`, which Fluentd and Fluent Bit send)."""
    passes = (_STRICT, _REPLACED)
    if type(size) is int and 0 < size < 1 << 32:
        # one C call for the whole payload: the entries, behind an array32 header
        try:
            return _FAST.decode(b"\xdd" + size.to_bytes(4, "big") + data)
        except UnicodeDecodeError:
            passes = (_REPLACED,)
        except _FAST_ERRORS:
            pass   # a wrong size or broken bytes: msgpack finds which
    for options in passes:
        unpacker = msgpack.Unpacker(max_buffer_size=max(len(data), 1), **options)
        unpacker.feed(data)
        items = []
        end = 0   # tell() also counts a partial object: track where whole entries end
        try:
            for item in unpacker:
                items.append(item)
                end = unpacker.tell()
        except UnicodeDecodeError:
            continue
        except _UNPACK_ERRORS as exc:
            raise ForwardProtocolError(f"undecodable entries: {exc}") from None
        if end != len(data):
            raise ForwardProtocolError("truncated entry in packed entries")
        return items
    raise AssertionError("unreachable: 'replace' never fails on UTF-8")


class ReplyDecoder(_FrameSplitter):
    """What a client receives: HELO, PONG and acks."""

    def __init__(self, max_buffer_bytes: int = 1 << 20) -> None:
        super().__init__(max_buffer_bytes)

    def feed(self, data: bytes) -> list[Reply]:
        return [self._reply(raw) for raw in self._objects(data)]

    def _reply(self, raw: bytearray) -> Reply:
        message, _ = _unpack(raw)
        if isinstance(message, dict) and "ack" in message:
            return Ack(_raw(message["ack"], "ack"))
        if isinstance(message, list) and len(message) == 2 and message[0] == "HELO":
            options = message[1]
            if not isinstance(options, dict) or "nonce" not in options:
                raise ForwardProtocolError("HELO: expected {nonce, auth, keepalive}")
            return Helo(_raw(options["nonce"], "HELO nonce"),
                        _raw(options.get("auth") or b"", "HELO auth"),
                        options.get("keepalive", True) is not False)
        if isinstance(message, list) and len(message) == 5 and message[0] == "PONG":
            _, ok, reason, hostname, digest = message
            return Pong(ok is True, _text(reason or "", "PONG reason"),
                        _text(hostname or "", "PONG hostname"), _raw(digest or b"", "digest"))
        raise ForwardProtocolError("expected HELO, PONG or an ack")


# -- encoding -------------------------------------------------------------------------------


def _event_time(value: Time) -> msgpack.ExtType:
    if isinstance(value, EventTime):
        return value.ext()
    return EventTime.from_float(value).ext()


def _option(size: int | None, chunk: str | None, compressed: bool = False) -> dict[str, Any]:
    option: dict[str, Any] = {}
    if size is not None:
        option["size"] = size
    if chunk is not None:
        option["chunk"] = chunk
    if compressed:
        option["compressed"] = "gzip"
    return option


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, default=_pack_default)


def encode_message(tag: str, time: Time, record: Mapping[str, Any], *,
                   chunk: str | None = None) -> bytes:
    """Message mode, with the time as EventTime."""
    message: list[Any] = [tag, _event_time(time), record]
    if chunk is not None:
        message.append(_option(None, chunk))
    return _pack(message)


def encode_forward(tag: str, entries: Iterable[tuple[Time, Mapping[str, Any]]], *,
                   chunk: str | None = None) -> bytes:
    items = [[_event_time(time), record] for time, record in entries]
    return _pack([tag, items, _option(len(items), chunk)])


def pack_entries(entries: Iterable[tuple[Time, Mapping[str, Any]]]) -> tuple[bytes, int]:
    """The msgpack stream of [time, record] entries that PackedForward carries, and its count."""
    packer = msgpack.Packer(default=_pack_default, autoreset=False)
    count = 0
    for time, record in entries:
        packer.pack([_event_time(time), record])
        count += 1
    return packer.bytes(), count


def encode_packed_forward(tag: str, entries: Iterable[tuple[Time, Mapping[str, Any]]], *,
                          compressed: bool = False, chunk: str | None = None) -> bytes:
    """PackedForward, or CompressedPackedForward (one gzip member) with `compressed`."""
    payload, count = pack_entries(entries)
    if compressed:
        payload = gzip_member(payload)
    return _pack([tag, payload, _option(count, chunk, compressed)])


def gzip_member(data: bytes, level: int = 6) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def _str_header(length: int) -> bytes:
    if length < 32:
        return bytes((0xA0 | length,))
    if length < 1 << 8:
        return b"\xd9" + length.to_bytes(1, "big")
    if length < 1 << 16:
        return b"\xda" + length.to_bytes(2, "big")
    return b"\xdb" + length.to_bytes(4, "big")


def encode_ack(chunk: bytes) -> bytes:
    """`{"ack": chunk}`, the chunk as a msgpack str holding the bytes received, unchanged
    (Fluent Bit and @fluent-org/logger only accept a str)."""
    return b"\x81\xa3ack" + _str_header(len(chunk)) + chunk


def encode_helo(nonce: bytes, auth: bytes = b"", keepalive: bool = True) -> bytes:
    # Fluentd sends an empty str, not an empty bin, when it has no users.
    return _pack(["HELO", {"nonce": nonce, "auth": auth or "", "keepalive": keepalive}])


def encode_ping(hostname: str, shared_key_salt: bytes, shared_key_digest: str,
                username: str = "", password_digest: str = "") -> bytes:
    return _pack(["PING", hostname, shared_key_salt, shared_key_digest, username,
                  password_digest])


def encode_pong(authenticated: bool, reason: str, hostname: str, shared_key_digest: str) -> bytes:
    return _pack(["PONG", authenticated, reason[:REASON_MAX], hostname, shared_key_digest])


def encode_heartbeat() -> bytes:
    return b"\xc0"


# -- handshake ------------------------------------------------------------------------------


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def shared_key_digest(salt: bytes, hostname: str, nonce: bytes, shared_key: str) -> str:
    return hashlib.sha512(salt + _utf8(hostname) + nonce + _utf8(shared_key)).hexdigest()


def password_digest(auth_salt: bytes, username: str, password: str) -> str:
    return hashlib.sha512(auth_salt + _utf8(username) + _utf8(password)).hexdigest()


class ServerHandshake:
    """The server side: send `helo()`, then answer the client's Ping with `check(ping)`.

    After `check`, `authenticated` says whether events may follow; if not, the PONG
    returned carries the reason and the server closes the connection after sending it.
    """

    def __init__(self, shared_key: str, hostname: str,
                 users: Mapping[str, str] | None = None, *, nonce: bytes | None = None,
                 auth_salt: bytes | None = None, keepalive: bool = True) -> None:
        self.shared_key = shared_key
        self.hostname = hostname
        self.users = dict(users or {})
        self.nonce = nonce if nonce is not None else os.urandom(16)
        self.auth_salt = (auth_salt if auth_salt is not None
                          else os.urandom(16) if self.users else b"")
        self.keepalive = keepalive
        self.authenticated = False
        self.reason = ""

    def helo(self) -> bytes:
        return encode_helo(self.nonce, self.auth_salt, self.keepalive)

    def check(self, ping: Ping) -> bytes:
        expected = shared_key_digest(ping.shared_key_salt, ping.hostname, self.nonce,
                                     self.shared_key)
        if not hmac.compare_digest(expected.encode(), ping.shared_key_digest):
            return self._refuse("shared_key mismatch")
        if self.users:
            # an unknown user is compared against a digest too, so timing does not tell
            password = self.users.get(ping.username, "")
            wanted = password_digest(self.auth_salt, ping.username, password).encode()
            matches = hmac.compare_digest(wanted, ping.password_digest)
            if not matches or ping.username not in self.users:
                return self._refuse("username/password mismatch")
        self.authenticated = True
        digest = shared_key_digest(ping.shared_key_salt, self.hostname, self.nonce,
                                   self.shared_key)
        return encode_pong(True, "", self.hostname, digest)

    def _refuse(self, reason: str) -> bytes:
        self.authenticated = False
        self.reason = reason
        return encode_pong(False, reason, "", "")


class ClientHandshake:
    """The client side: `ping(helo)` gives the PING to send; `check(pong)` raises if refused."""

    def __init__(self, shared_key: str, hostname: str, username: str = "",
                 password: str = "", *, salt: bytes | None = None) -> None:
        self.shared_key = shared_key
        self.hostname = hostname
        self.username = username
        self.password = password
        self.salt = salt if salt is not None else os.urandom(16)
        self.nonce = b""

    def ping(self, helo: Helo) -> bytes:
        self.nonce = helo.nonce
        digest = shared_key_digest(self.salt, self.hostname, helo.nonce, self.shared_key)
        secret = (password_digest(helo.auth, self.username, self.password)
                  if helo.auth else "")
        return encode_ping(self.hostname, self.salt, digest, self.username if secret else "",
                           secret)

    def check(self, pong: Pong) -> None:
        if not pong.authenticated:
            raise ForwardAuthError(f"refused by the server: {pong.reason}")
        expected = shared_key_digest(self.salt, pong.hostname, self.nonce, self.shared_key)
        if not hmac.compare_digest(expected.encode(), pong.shared_key_digest):
            raise ForwardAuthError("the server does not know the shared key")
