"""Real loopback HTTP servers standing in for production and staging (healthy, broken, slow,
hanging, resetting, TLS), and a real ShadowProxy run on its own event loop thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from shadow.cli import ShadowProxy
from shadow.mirror import MirrorStats
from shadow.mirror import Upstream as UpstreamURL

# Bound every wait: a broken build fails a test, it never hangs the suite.
WAIT = 15.0


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


HANG, RESET = "hang", "reset"
Route = Callable[["Seen"], Answer | str]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def json_answer(value: Any, status: int = 200, **headers: str) -> Answer:
    return Answer(status, json.dumps(value).encode(),
                  {"Content-Type": "application/json", **headers})


class Upstream:
    """A threaded HTTP/1.1 server; `routes` maps a path prefix to an answer or a behaviour."""

    def __init__(self, routes: dict[str, Route], *, tls: ssl.SSLContext | None = None) -> None:
        self.routes = routes
        self.seen: list[Seen] = []
        self.active = 0
        self.entered = threading.Event()   # a request reached a hanging route
        self.release = threading.Event()   # lets hanging routes finish
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in
                                                      self.headers.items()},
                            self.rfile.read(length))
                upstream.seen.append(seen)
                route = next((r for prefix, r in sorted(upstream.routes.items(),
                                                         key=lambda item: -len(item[0]))
                              if self.path.startswith(prefix)), None)
                answer = route(seen) if route else Answer(404, b"no route")
                if answer == RESET:
                    # SO_LINGER 0: close() sends a RST instead of a FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if answer == HANG:
                    upstream.active += 1
                    upstream.entered.set()
                    upstream.release.wait(WAIT)
                    upstream.active -= 1
                    answer = Answer(200, b"late")
                assert isinstance(answer, Answer)
                time.sleep(answer.delay)
                head = [f"HTTP/1.1 {answer.status} X", f"Content-Length: {len(answer.body)}",
                        *(f"{k}: {v}" for k, v in answer.headers.items())]
                # one write: no Nagle stall between the head and the body; a client that
                # stops reading early (a body over the cap) is not the server's error
                with contextlib.suppress(ConnectionError):
                    self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + answer.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # a burst of mirrored requests opens many connections

        self._server = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> Upstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningProxy:
    def __init__(self, proxy: ShadowProxy, port: int, thread: threading.Thread) -> None:
        self.proxy = proxy
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._thread = thread

    @property
    def stats(self) -> MirrorStats:
        return self.proxy.stats

    def settle(self, mirrored: int) -> MirrorStats:
        """Wait until `mirrored` requests were handed over and all of them compared."""
        wait_until(lambda: self.stats.mirrored >= mirrored and self.stats.in_flight == 0)
        return self.stats

    def stop(self) -> None:
        self.proxy.shutdown()
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the proxy did not stop"


@contextlib.contextmanager
def running_proxy(primary: str, staging: str, **options: Any) -> Iterator[RunningProxy]:
    """ShadowProxy on 127.0.0.1, port 0; `options` are shadow_* settings without the prefix."""
    settings = {"shadow_staging": staging, **{f"shadow_{k}": v for k, v in options.items()}}
    proxy = ShadowProxy(UpstreamURL.parse("primary", primary), ("127.0.0.1", 0), settings)
    started: list[int | BaseException] = []
    ready = threading.Event()

    async def main() -> None:
        try:
            _, port = await proxy.start()
        except BaseException as error:  # hand any failure to the test thread
            started.append(error)
            ready.set()
            return
        started.append(port)
        ready.set()
        await proxy.wait()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert ready.wait(WAIT), "the proxy did not start"
    if isinstance(started[0], BaseException):
        raise started[0]
    running = RunningProxy(proxy, started[0], thread)
    try:
        yield running
    finally:
        running.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for a condition")
        time.sleep(0.01)


def read_report(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
