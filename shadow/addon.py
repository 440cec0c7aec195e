"""The mitmproxy edge of shadow, embedded by `shadow proxy run` or loaded by mitmdump:
`mitmdump -s shadow/addon.py --mode reverse:URL --set shadow_staging=URL`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from mitmproxy import ctx, exceptions, http

from logtui.core.address import parse_endpoint
from shadow.forward import os_reason
from shadow.mirror import ConfigError, MirrorConfig, Production
from shadow.worker import MirrorWorker

logger = logging.getLogger(__name__)

SNAPSHOT = "shadow.request"
# (option, type, default, help); each maps to the `shadow proxy run` flag of the same name.
OPTIONS: tuple[tuple[str, Any, Any, str], ...] = (
    ("shadow_staging", str | None, None, "Staging base URL that requests are mirrored to."),
    ("shadow_secondary", str | None, None,
     "A second production base URL: its differences from the primary are noise."),
    ("shadow_sample", str, "100", "Percentage of requests to mirror."),
    ("shadow_sample_key", str | None, None,
     "Sample consistently by header:NAME or param:NAME instead of at random."),
    ("shadow_methods", str, "GET,HEAD,OPTIONS", "Comma-separated methods to mirror."),
    ("shadow_allow_unsafe", bool, False, "Allow unsafe methods (POST, PUT...) in shadow_methods."),
    ("shadow_allow", Sequence[str], [], "Mirror only paths matching these globs."),
    ("shadow_deny", Sequence[str], [], "Never mirror paths matching these globs."),
    ("shadow_strip_header", Sequence[str], [], "Headers not sent to staging."),
    ("shadow_set_header", Sequence[str], [], "NAME:VALUE headers set on staging requests."),
    ("shadow_max_body", str, "1m", "Bodies larger than this are not mirrored."),
    ("shadow_timeout", str, "10s", "Give up on staging after this long."),
    ("shadow_max_in_flight", int, 100, "Mirrored requests in flight at most; more are dropped."),
    ("shadow_ignore", Sequence[str], [], "JSON paths or header:NAME never compared."),
    ("shadow_insecure", bool, False, "Do not verify staging's TLS certificate."),
    ("shadow_report", str | None, None, "Append one JSON line per comparison to this file."),
    ("shadow_forward", str | None, None,
     "Send comparisons as shadow.diff events to this HOST:PORT (Fluentd forward protocol)."),
    ("shadow_shared_key", str | None, None, "The forward handshake key, when one is required."),
)


def config_from_options(options: Any) -> MirrorConfig:
    return MirrorConfig.parse(
        staging=options.shadow_staging, secondary=options.shadow_secondary,
        sample=options.shadow_sample, sample_key=options.shadow_sample_key,
        methods=options.shadow_methods, allow_unsafe=options.shadow_allow_unsafe,
        allow=options.shadow_allow, deny=options.shadow_deny,
        strip_header=options.shadow_strip_header, set_header=options.shadow_set_header,
        max_body=options.shadow_max_body, timeout=options.shadow_timeout,
        max_in_flight=str(options.shadow_max_in_flight), ignore=options.shadow_ignore,
        insecure=options.shadow_insecure)


class MirrorAddon:
    """Hooks only copy references and hand jobs to the worker; nothing here waits for staging."""

    def __init__(self) -> None:
        self.worker: MirrorWorker | None = None
        self._settings: tuple[MirrorConfig, str | None, tuple[str, int] | None] | None = None
        self._running = False

    def load(self, loader: Any) -> None:
        for name, typespec, default, help in OPTIONS:
            loader.add_option(name, typespec, default, help)

    def configure(self, updated: set[str]) -> None:
        if not any(name.startswith("shadow_") for name in updated):
            return
        options = ctx.options
        try:
            config = config_from_options(options) if options.shadow_staging else None
            forward = (parse_endpoint(options.shadow_forward, default_host=None)
                       if options.shadow_forward else None)
        except ConfigError as error:
            raise exceptions.OptionsError(f"shadow_{error.setting}: {error}") from None
        except ValueError as error:
            raise exceptions.OptionsError(f"shadow_forward: {error}") from None
        if options.shadow_report:
            _check_writable(options.shadow_report)
        self._settings = (config, options.shadow_report, forward) if config else None
        if self._running:
            _background(self._restart())

    async def running(self) -> None:
        self._running = True
        await self._restart()
        if self._settings is None:
            logger.warning("shadow: nothing is mirrored until shadow_staging is set")

    async def _restart(self) -> None:
        old, self.worker = self.worker, None
        if old is not None:
            _background(old.stop())
        if self._settings is not None:
            config, report, forward = self._settings
            worker = MirrorWorker(config, report=report, forward=forward,
                                  shared_key=ctx.options.shadow_shared_key)
            await worker.start()
            self.worker = worker

    def request(self, flow: http.HTTPFlow) -> None:
        if self.worker is None:
            return
        request = flow.request
        # A streamed body was never buffered: raw_content is None and the worker skips it.
        snapshot = self.worker.admit(
            request.method, request.path, _headers(request.headers),
            None if request.stream else request.raw_content, id=flow.id)
        if snapshot is not None:
            flow.metadata[SNAPSHOT] = (self.worker, snapshot)

    def response(self, flow: http.HTTPFlow) -> None:
        pending = flow.metadata.pop(SNAPSHOT, None)
        if pending is None or flow.response is None:
            return
        worker, snapshot = pending
        response = flow.response
        body = response.raw_content
        if response.stream or body is None:
            worker.skip("streamed_response")
        elif len(body) > worker.config.max_body:
            worker.skip("response_too_large")
        else:
            worker.submit(snapshot, Production(
                response.status_code, _headers(response.headers), body,
                _elapsed(flow.request.timestamp_end, response.timestamp_end)))

    def error(self, flow: http.HTTPFlow) -> None:
        pending = flow.metadata.pop(SNAPSHOT, None)
        if pending is None or flow.response is not None or flow.error is None:
            return
        # Only production's own failures are worth comparing; a client that gave up is not.
        if flow.error.msg.startswith("Client disconnected") and not flow.server_conn.error:
            return
        worker, snapshot = pending
        worker.submit(snapshot, Production(
            None, error=flow.error.msg,
            latency=_elapsed(flow.request.timestamp_end, flow.error.timestamp)))

    async def done(self) -> None:
        self._running = False
        if self.worker is not None:
            await self.worker.stop()


def _headers(headers: http.Headers) -> tuple[tuple[str, str], ...]:
    return tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in headers.fields)


def _elapsed(start: float | None, end: float | None) -> float | None:
    return end - start if start is not None and end is not None else None


def _check_writable(path: str) -> None:
    """Fail at configuration, in one line, rather than later in the worker."""
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as error:
        raise exceptions.OptionsError(
            f"shadow_report: {path}: {os_reason(error)}") from None


_tasks: set[asyncio.Task[None]] = set()


def _background(coroutine: Any) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


addons = [MirrorAddon()]
