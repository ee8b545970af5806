"""A real uvicorn server over the real extract, for tests that talk HTTP the way outside clients do."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from grunndata.server import create_app
from tests.server.conftest import served_store


@dataclass(frozen=True)
class LiveServer:
    url: str  # http://127.0.0.1:<port>, no trailing slash

    @property
    def fhir(self) -> str:
        return self.url + "/fhir"


def wait_for_health(
    url: str, running: Callable[[], bool], seconds: float, failure: Callable[[], str], step: float = 0.1
) -> None:
    """Until GET `url`/health answers 200; RuntimeError(failure()) once the server is no longer
    `running` or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if not running() or time.monotonic() > deadline:
            raise RuntimeError(failure())
        time.sleep(step)


@contextmanager
def running(app: FastAPI, startup_seconds: float = 20.0) -> Iterator[str]:
    """Serve `app` with uvicorn in a background thread on a free port; yields its base URL.

    Stopping sets `should_exit`, as a signal would: uvicorn finishes the requests in flight and closes.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # bound here and handed over, so no other process can take the port
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for_health(
            url,
            thread.is_alive,
            startup_seconds,
            lambda: f"uvicorn did not answer {url}/health within {startup_seconds} s",
            step=0.05,
        )
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        if thread.is_alive():
            raise RuntimeError(f"uvicorn at {url} did not stop within 10 s")


@pytest.fixture(scope="module", name="live")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The FHIR server over the real extract (SQLite), listening on 127.0.0.1; read-only for tests."""
    engine = served_store(f"sqlite:///{tmp_path_factory.mktemp('live') / 'store.db'}")
    try:
        with running(create_app(engine)) as url:
            yield LiveServer(url)
    finally:
        engine.dispose()
