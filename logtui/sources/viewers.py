"""`logtui serve`'s side of the viewer protocol (see logtui/core/wire.py).

The `Hub` keeps one store of recent events for the whole aggregator and one `Dashboard`
per viewer, which filters and counts each batch for that viewer's view as it arrives.
The `ViewerServer` (asyncio, its own thread) sends each viewer its buckets, lines and
sources on a timer. A slow viewer only delays its own sends: ingestion never waits for
the network, the viewer's line queue drops its oldest lines (and says how many), and its
statistics are sent as the buckets that changed, whatever happened in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from logtui.core.dashboard import RETAINED_ROWS, Dashboard, EventStore, SourceState, View
from logtui.core.filters import FilterError
from logtui.core.forward import ForwardDecoder, ForwardProtocolError, Ping, ServerHandshake
from logtui.core.shadow import ShadowBoard
from logtui.core.wire import (
    MessageDecoder,
    WireError,
    bucket_to_wire,
    encode,
    lines_to_wire,
    sources_to_wire,
)

OUTBOX_LINES = 2_000      # lines queued per viewer before the oldest are dropped
SEND_EVERY = 0.5          # seconds between updates to each viewer
STARTUP_TIMEOUT = 10.0


@dataclass
class Hub:
    """What an aggregator knows, shared by its viewers."""

    clock: Callable[[], float] = time.time
    store: EventStore = field(default_factory=lambda: EventStore(RETAINED_ROWS))
    sources: list[SourceState] = field(default_factory=list)
    outbox_lines: int = OUTBOX_LINES

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.viewers: set[Dashboard] = set()
        self.events = 0
        self.shadow = ShadowBoard()    # every viewer sees all comparisons
        self.shadow_version = 0

    def ingest(self, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        with self.lock:   # one batch at a time, so viewers see positions in order
            position = self.store.add(frame)
            self.events += frame.height
            for viewer in list(self.viewers):
                viewer.observe(frame, position)

    def update_sources(self, states: Iterable[SourceState]) -> None:
        self.sources = list(states)

    def ingest_shadow(self, records: list[dict[str, Any]]) -> None:
        if records:
            with self.lock:
                self.shadow.add(records)
                self.shadow_version += 1

    def shadow_wire(self, known: int) -> tuple[int, dict[str, Any] | None]:
        """The shadow board's version and, when it is not `known`, the board itself."""
        with self.lock:
            if self.shadow_version == known:
                return known, None
            return self.shadow_version, self.shadow.to_wire()

    def join(self, view: View, bucket: float) -> Dashboard:
        viewer = Dashboard(bucket=bucket, view=view, clock=self.clock, store=self.store,
                           outbox_size=self.outbox_lines)
        with self.lock:   # no batch can slip between the count and the first observe
            self.viewers.add(viewer)
            viewer.catch_up()
        return viewer

    def leave(self, viewer: Dashboard) -> None:
        with self.lock:
            self.viewers.discard(viewer)


class ViewerServer:
    def __init__(self, hub: Hub, host: str, port: int, shared_key: str | None = None,
                 send_every: float = SEND_EVERY) -> None:
        self.hub = hub
        self.host, self.requested_port = host, port
        self.shared_key = shared_key
        self.send_every = send_every
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="logtui-viewers",
                                       daemon=True)
        self.server: asyncio.Server | None = None
        self.connected = 0
        self.refused = 0
        self.last_error = ""

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def start(self) -> None:
        """Listen, or raise OSError before anything else runs."""
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(asyncio.start_server(
            self._connection, self.host, self.requested_port, reuse_address=True), self.loop)
        try:
            self.server = future.result(STARTUP_TIMEOUT)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.server is not None:
            server = self.server
            self.server = None

            async def stop() -> None:
                server.close()
                this = asyncio.current_task()
                tasks = [task for task in asyncio.all_tasks() if task is not this]
                for task in tasks:
                    task.cancel()
                if tasks:   # let them unwind: a loop stopped under them leaves them pending
                    await asyncio.wait(tasks, timeout=STARTUP_TIMEOUT / 2)

            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(STARTUP_TIMEOUT)
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(STARTUP_TIMEOUT)

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        viewer: Dashboard | None = None
        try:
            if self.shared_key is not None and not await self._handshake(reader, writer):
                self.refused += 1
                return
            decoder = MessageDecoder()
            viewer = await self._subscribe(reader, writer, decoder)
            if viewer is None:
                return
            self.connected += 1
            await self._serve(viewer, reader, writer, decoder)
        except (ConnectionError, asyncio.IncompleteReadError, WireError, TimeoutError):
            pass
        except Exception as error:  # one viewer's failure must not reach the others
            self.last_error = f"{type(error).__name__}: {error}"
        finally:
            if viewer is not None:
                self.hub.leave(viewer)
                self.connected -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handshake(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> bool:
        assert self.shared_key is not None
        handshake = ServerHandshake(self.shared_key, socket.gethostname())
        writer.write(handshake.helo())
        await writer.drain()
        decoder = ForwardDecoder()
        while True:
            data = await asyncio.wait_for(reader.read(65536), STARTUP_TIMEOUT)
            if not data:
                return False
            try:
                frames = decoder.feed(data)
            except ForwardProtocolError:
                return False
            for frame in frames:
                if isinstance(frame, Ping):
                    writer.write(handshake.check(frame))
                    await writer.drain()
                    return handshake.authenticated
                return False

    async def _subscribe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         decoder: MessageDecoder) -> Dashboard | None:
        while True:
            data = await asyncio.wait_for(reader.read(65536), STARTUP_TIMEOUT)
            if not data:
                return None
            for kind, body in decoder.feed(data):
                if kind != "subscribe" or not isinstance(body, dict):
                    raise WireError(f"expected a subscription, got {kind!r}")
                try:
                    view = View.from_string(str(body.get("view", "logtui:")))
                    bucket = float(body.get("bucket", 10.0))
                    if bucket <= 0:
                        raise ValueError("bucket must be positive")
                except (ValueError, FilterError) as error:
                    writer.write(encode("error", str(error)))
                    await writer.drain()
                    return None
                # counting the store for a new view can take a moment: not on the loop
                viewer = await asyncio.to_thread(self.hub.join, view, bucket)
                since = body.get("since")
                viewer.queue_recent(float(since) if isinstance(since, int | float) else None)
                return viewer

    async def _serve(self, viewer: Dashboard, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter, decoder: MessageDecoder) -> None:
        sender = asyncio.create_task(self._send(viewer, writer))
        try:
            while data := await reader.read(65536):
                for kind, body in decoder.feed(data):
                    if kind != "view" or not isinstance(body, dict):
                        raise WireError(f"unexpected {kind!r}")
                    try:
                        view = View.from_string(str(body.get("view", "")))
                    except (ValueError, FilterError) as error:
                        writer.write(encode("error", str(error)))
                        continue
                    await asyncio.to_thread(viewer.set_view, view)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _send(self, viewer: Dashboard, writer: asyncio.StreamWriter) -> None:
        shadow_version = 0
        while True:
            # counted and encoded in a thread: the loop serves every viewer meanwhile
            messages = await asyncio.to_thread(_view_messages, viewer)
            messages.append(encode("sources", sources_to_wire(self.hub.sources)))
            shadow_version, board = self.hub.shadow_wire(shadow_version)
            if board is not None:
                messages.append(encode("shadow", board))
            writer.write(b"".join(messages))
            await writer.drain()   # a slow viewer waits here, and only it
            await asyncio.sleep(self.send_every)


def _view_messages(viewer: Dashboard) -> list[bytes]:
    """A viewer's statistics and lines since the last call, encoded."""
    update = viewer.changes(bucket_to_wire)
    messages = [encode("stats", {"width": viewer.bucket, "replace": update.full,
                                 "buckets": update.buckets, "late": update.late,
                                 "since": update.since})]
    if update.lines or update.dropped:
        messages.append(encode("lines", {"lines": lines_to_wire(update.lines),
                                         "dropped": update.dropped}))
    return messages
