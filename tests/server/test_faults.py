"""Every 500 is a bug, and is answered as one: an OperationOutcome with code `exception` and the
request id, logged once with that id, on a keep-alive connection that stays open."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.server import create_app
from grunndata.store import connect
from tests.server.conftest import CERTICAN_PACKAGE
from tests.server.live import running

SECRET = "the secret inside the failure"


def boom() -> None:
    raise RuntimeError(SECRET)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    """The app over an empty store, with a route that fails (only in this test)."""
    engine: Engine = connect(f"sqlite:///{tmp_path}/store.db")
    app = create_app(engine, warm=False)
    app.add_api_route("/fails", boom, methods=["GET"])
    yield app
    engine.dispose()


@pytest.fixture
def errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[logging.LogRecord]]]:
    """The errors logged, ours and uvicorn's (which does not pass its records on to the root)."""
    server_log = logging.getLogger("uvicorn.error")
    server_log.addHandler(caplog.handler)
    try:
        yield lambda: [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        server_log.removeHandler(caplog.handler)


def local_port(response: httpx.Response) -> int:
    """The client's end of the connection the response came on."""
    port: int = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    return port


def test_a_failing_handler_is_a_500_outcome_logged_once_and_the_connection_stays_open(
    app: FastAPI, errors_logged: Callable[[], list[logging.LogRecord]]
) -> None:
    with running(app) as url, httpx.Client(base_url=url) as client:
        before = client.get("/health")
        failed = client.get("/fails", headers={"X-Request-ID": "abc-123"})
        after = client.get("/health")
        ports = {local_port(r) for r in (before, failed, after)}
    assert failed.status_code == 500
    assert failed.headers["x-request-id"] == "abc-123"
    body = failed.json()
    assert body["resourceType"] == "OperationOutcome"
    assert [i["code"] for i in body["issue"]] == ["exception"]
    assert "abc-123" in body["issue"][0]["diagnostics"]
    assert SECRET not in failed.text and "Traceback" not in failed.text
    assert len(ports) == 1  # one connection throughout
    logged = errors_logged()
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert "abc-123" in logged[0].getMessage() and SECRET in str(logged[0].exc_info)


def test_a_failure_in_the_fast_path_is_answered_the_same_way(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch, errors_logged: Callable[[], list[logging.LogRecord]]
) -> None:
    monkeypatch.setattr(app.state.served, "read", lambda *_: boom())
    with running(app) as url, httpx.Client(base_url=url) as client:
        failed = client.get(f"/fhir/PackagedProductDefinition/{CERTICAN_PACKAGE}")
        after = client.get("/health")
        ports = {local_port(r) for r in (failed, after)}
    assert failed.status_code == 500
    assert failed.json()["issue"][0]["code"] == "exception"
    assert len(ports) == 1
    logged = errors_logged()
    assert len(logged) == 1 and failed.headers["x-request-id"] in logged[0].getMessage()


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("7f3e-AB.c_9", True), ("", False), ("has space", False), ("x" * 129, False), ("ø", False)],
)
def test_a_sane_request_id_is_kept_and_any_other_replaced(app: FastAPI, sent: str, kept: bool) -> None:
    with TestClient(app) as client:
        answer = client.get("/health", headers={"X-Request-ID": sent.encode("utf-8")})
    assert answer.status_code == 200
    if kept:
        assert answer.headers["x-request-id"] == sent
    else:
        assert answer.headers["x-request-id"] != sent and len(answer.headers["x-request-id"]) == 32
