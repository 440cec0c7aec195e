"""The forward-protocol input of `tail --listen` and `serve`: a ForwardServer on its own
thread and event loop. Each accepted batch is parsed through the pipeline and handed to
`sink` before the sender gets its ack, so an ack means the events are in."""

from __future__ import annotations

import asyncio
import gc
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from itertools import chain
from typing import Any

import polars as pl

from logtui.core.dashboard import SourceState
from logtui.core.forward import EventBatch
from logtui.core.pipeline import UNREADABLE, Pipeline, Source
from logtui.core.shadow import is_shadow
from logtui.sources.forward import ForwardServer, Peer

STARTUP_TIMEOUT = 10.0
# Each forwarded event arrives as a dict with its strings: at the default threshold (700
# allocations) the young-generation collector ran several times per thousand events.
# bench/forward_ingest.py --modes serve: 107k -> 118-127k events/s; nothing here makes
# reference cycles that would wait longer for collection.
GC_YOUNG_THRESHOLD = 50_000
FLUSH_DELAY = 0.02      # seconds events wait for more before they are parsed together
FLUSH_EVENTS = 20_000   # queued events above which senders wait for the parse (no ack yet)


@dataclass(frozen=True)
class ListenOptions:
    host: str
    port: int
    shared_key: str | None = None
    tls: ssl.SSLContext | None = None


def _records(batches: list[EventBatch]) -> list[dict[str, Any]]:
    return list(chain.from_iterable(batch.records for batch in batches))


class ForwardListener:
    def __init__(self, options: ListenOptions, pipeline: Pipeline,
                 sink: Callable[[pl.DataFrame], None],
                 shadow_sink: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
        self.options = options
        self.pipeline = pipeline
        self.sink = sink
        # `shadow` comparison records go to the Shadow panel, not to the traffic panels
        self.shadow_sink = shadow_sink
        self.sources: dict[str, Source] = {}
        self.loop = asyncio.new_event_loop()
        self.server = ForwardServer(options.host, options.port, self._accept,
                                    shared_key=options.shared_key, tls=options.tls)
        self.thread = threading.Thread(target=self.loop.run_forever, name="logtui-forward",
                                       daemon=True)
        self.events = 0
        self.listening = False
        self.pending: dict[str, list[EventBatch]] = {}
        self.pending_events = 0
        self.waiting: list[asyncio.Future[None]] = []
        self.flusher: asyncio.Task[None] | None = None
        self.unread = 0              # events lost to an error while reading them
        self.unread_reason = ""

    def start(self) -> None:
        """Listen, or raise OSError (the port is taken, say) before anything else runs."""
        gc.set_threshold(max(gc.get_threshold()[0], GC_YOUNG_THRESHOLD), *gc.get_threshold()[1:])
        self.thread.start()
        started: Future[None] = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop)
        try:
            started.result(STARTUP_TIMEOUT)
        except BaseException:
            self._stop_loop()
            raise
        self.listening = True

    @property
    def port(self) -> int:
        return self.server.port

    async def _accept(self, events: EventBatch, peer: Peer) -> None:
        """Queue a sender's batch for the next parse. The sender gets its ack when this
        returns: at once, unless too much is queued, and then once the parse has room."""
        self.pending.setdefault(events.tag, []).append(events)
        self.pending_events += len(events)
        if self.flusher is None:
            self.flusher = asyncio.create_task(self._flush())
        if self.pending_events >= FLUSH_EVENTS:
            flushed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiting.append(flushed)
            await flushed

    async def _flush(self) -> None:
        # Message mode sends one event per frame, and parsing costs about the same for one
        # event or a thousand: parse what arrives within a moment, from every sender.
        await asyncio.sleep(FLUSH_DELAY)
        try:
            while self.pending:
                pending, waiting = self.pending, self.waiting
                self.pending, self.waiting, self.pending_events = {}, [], 0
                for tag, batches in pending.items():
                    count = sum(len(batch) for batch in batches)
                    self.events += count
                    try:
                        await self._deliver(tag, batches)
                    except UNREADABLE as error:
                        # a bug, not a sender's record (Source.records reads any record):
                        # counted and shown, and the input goes on
                        self.unread += count
                        self.unread_reason = f"{type(error).__name__}: {error}"[:200]
                for flushed in waiting:
                    flushed.set_result(None)
        finally:
            self.flusher = None

    async def _deliver(self, tag: str, batches: list[EventBatch]) -> None:
        if self.shadow_sink is not None and is_shadow(tag):
            self.shadow_sink(_records(batches))
            return
        source = self.sources.get(tag) or self.sources.setdefault(
            tag, self.pipeline.source(tag))
        # joined, parsed (polars, mostly outside the GIL) and handed to the sink, which
        # may wait for room, in a thread: the loop reads and acks meanwhile
        await asyncio.to_thread(self._parse, source, batches)

    def _parse(self, source: Source, batches: list[EventBatch]) -> None:
        seconds = list(chain.from_iterable(batch.seconds for batch in batches))
        self.sink(source.records(_records(batches), seconds))

    def state(self) -> SourceState:
        stats = self.server.stats
        label = f"forward {self.options.host}:{self.port}"
        detail = f"listening, {stats.connections} senders"
        if stats.malformed or stats.auth_failures:
            detail += f", {stats.malformed} malformed, {stats.auth_failures} refused"
        if self.unread:
            detail += f", {self.unread} not read ({self.unread_reason})"
        return SourceState(label, detail, "forward", self.events)

    def close(self) -> None:
        if self.listening:
            self.listening = False
            asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(
                STARTUP_TIMEOUT)
        self._stop_loop()

    def _stop_loop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(STARTUP_TIMEOUT)
        self.loop.close()
