"""A subscriber's rest-hook endpoint for tests: a small HTTP server on 127.0.0.1 in a thread that
keeps every notification POSTed to it, and can be taken down and brought back on its port."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass(frozen=True)
class Received:
    at: float  # monotonic
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def status(self) -> dict[str, Any]:
        """The SubscriptionStatus the notification leads with."""
        status: dict[str, Any] = self.body["entry"][0]["resource"]
        return status

    @property
    def kind(self) -> str:
        return str(self.status["type"])

    @property
    def numbers(self) -> list[int]:
        return [int(e["eventNumber"]) for e in self.status.get("notificationEvent", [])]


class Receiver:
    """The endpoint at `url`; `received` in order of arrival."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                length = int(self.headers.get("content-length") or 0)
                body = orjson.loads(self.rfile.read(length))
                with receiver._lock:
                    receiver.received.append(Received(time.monotonic(), dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def down(self) -> None:
        """Stop answering: connections to the port are refused until `up`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of(self, kind: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.kind == kind]

    def wait_for(self, found: Callable[[Receiver], bool], seconds: float) -> float:
        """Until `found(self)`; the seconds it took. AssertionError after `seconds`."""
        started = time.monotonic()
        while not found(self):
            if time.monotonic() - started > seconds:
                kinds = [(r.kind, r.numbers) for r in self.received]
                raise AssertionError(f"not received within {seconds} s; received: {kinds}")
            time.sleep(0.02)
        return time.monotonic() - started


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    try:
        yield receiver
    finally:
        receiver.down()
