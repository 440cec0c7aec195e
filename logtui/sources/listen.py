"""The forward-protocol input of `tail --listen` and `serve`: a ForwardServer on its own
thread and event loop. Each accepted batch is parsed through the pipeline and handed to
`sink` before the sender gets its ack, so an ack means the events are in."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import polars as pl

from logtui.core.dashboard import SourceState
from logtui.core.event import Event
from logtui.core.pipeline import Pipeline, Source
from logtui.sources.forward import ForwardServer, Peer

STARTUP_TIMEOUT = 10.0


@dataclass(frozen=True)
class ListenOptions:
    host: str
    port: int
    shared_key: str | None = None
    tls: ssl.SSLContext | None = None


class ForwardListener:
    def __init__(self, options: ListenOptions, pipeline: Pipeline,
                 sink: Callable[[pl.DataFrame], None]) -> None:
        self.options = options
        self.pipeline = pipeline
        self.sink = sink
        self.sources: dict[str, Source] = {}
        self.loop = asyncio.new_event_loop()
        self.server = ForwardServer(options.host, options.port, self._accept,
                                    shared_key=options.shared_key, tls=options.tls)
        self.thread = threading.Thread(target=self.loop.run_forever, name="logtui-forward",
                                       daemon=True)
        self.events = 0
        self.listening = False

    def start(self) -> None:
        """Listen, or raise OSError (the port is taken, say) before anything else runs."""
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

    def _accept(self, events: Sequence[Event], peer: Peer) -> None:
        tag = events[0].tag
        source = self.sources.get(tag) or self.sources.setdefault(tag, self.pipeline.source(tag))
        self.sink(source.records([event.record for event in events],
                                 [event.time for event in events]))
        self.events += len(events)

    def state(self) -> SourceState:
        stats = self.server.stats
        label = f"forward {self.options.host}:{self.port}"
        detail = f"listening, {stats.connections} senders"
        if stats.malformed or stats.auth_failures:
            detail += f", {stats.malformed} malformed, {stats.auth_failures} refused"
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
