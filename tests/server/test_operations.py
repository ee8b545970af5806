"""What an operations team relies on: /livez and /readyz for the load balancer, /metrics for
Prometheus (one process and several), and one log line per request that names the client but
never the person."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from grunndata.importers.fest import import_fest
from grunndata.server import create_app
from grunndata.settings import Settings
from tests.conftest import REAL_FEST, require
from tests.server.conftest import CERTICAN_PACKAGE
from tests.server.live import wait_for_health
from tests.server.test_workers import _free_port
from tests.server.tokens import Issuer

READ = f"/fhir/PackagedProductDefinition/{CERTICAN_PACKAGE}"
READ_ROUTE = "/fhir/PackagedProductDefinition/{rid}"
SEARCH = "/fhir/PackagedProductDefinition?_count=3"
HPR = "helseid://claims/hpr/hpr_number"


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value from the Prometheus text (0 when it is not there yet)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_readyz_is_503_on_an_empty_store_and_200_after_an_import(engine: Engine) -> None:
    with TestClient(create_app(engine, warm=False)) as client:
        assert client.get("/livez").json() == {"status": "alive"}
        empty = client.get("/readyz")
        assert empty.status_code == 503
        assert empty.json() == {
            "status": "not ready",
            "checks": {"store": "ok", "national": "no national release is active: import one"},
        }
        assert client.get("/health").status_code == 200  # kept as it was: up, whatever it serves
        release = import_fest(engine, require(REAL_FEST)).release_id
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "checks": {"store": "ok", "national": f"ok: release {release}"},
        }


def test_readyz_asks_only_the_checks_configured(engine: Engine) -> None:
    settings = Settings.load({"GRUNNDATA_READY_CHECKS": "store"})
    with TestClient(create_app(engine, warm=False, settings=settings)) as client:
        answer = client.get("/readyz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ready", "checks": {"store": "ok"}})


def test_metrics_count_the_fast_path_and_the_framework_by_route_template(
    fresh_api: tuple[Engine, TestClient],
) -> None:
    _, client = fresh_api
    before = client.get("/metrics").text
    assert client.get(READ).status_code == 200  # the framework: the read cache is empty
    assert client.get(READ).status_code == 200  # the fast path, from the read cache
    assert client.get(READ, headers={"Accept": "application/fhir+xml"}).status_code == 200  # the framework
    assert client.get(SEARCH).status_code == 200
    assert client.get(SEARCH).status_code == 200  # the search cache, in the fast path
    assert client.get("/fhir/NoSuchType/1/2/3").status_code == 404
    answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain; version=")
    after = answer.text

    def moved(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    requests = "grunndata_http_requests_total"
    assert moved(requests, method="GET", route=READ_ROUTE, status="200") == 3
    assert moved(requests, method="GET", route="/fhir/PackagedProductDefinition", status="200") == 2
    assert moved(requests, route="/fhir/{rtype}/{rid}/_history/{vid}", status="404") == 0
    assert moved(requests, route="(no route)", status="404") == 1  # one label for every unknown path
    assert moved("grunndata_http_request_duration_seconds_count", method="GET", route=READ_ROUTE) == 3
    assert moved("grunndata_cache_lookups_total", cache="search", result="hit") == 1
    assert moved("grunndata_cache_lookups_total", cache="search", result="miss") == 1
    assert moved("grunndata_cache_lookups_total", cache="read", result="hit") >= 1
    assert metric(after, "grunndata_active_release", tier="national", owner="dmp") == 1
    assert 0 <= metric(after, "grunndata_active_release_age_seconds", tier="national", owner="dmp") < 600
    assert metric(after, "grunndata_national_release_active") == 1
    assert metric(after, "grunndata_imports", source="fest", status="active") == 1
    assert metric(after, "grunndata_last_import_duration_seconds", source="fest", status="active") > 0
    labels = {s.labels.get("route") for f in text_string_to_metric_families(after) for s in f.samples}
    assert CERTICAN_PACKAGE not in str(labels)  # never a raw path


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return Issuer(tmp_path_factory.mktemp("keys"))


@pytest.mark.parametrize("log_format", ["json", "plain", "off"])
def test_a_request_is_one_log_line_naming_the_client_never_the_person(
    engine: Engine, issuer: Issuer, caplog: pytest.LogCaptureFixture, log_format: str
) -> None:
    import_fest(engine, require(REAL_FEST))
    settings = Settings.load({"GRUNNDATA_LOG_FORMAT": log_format})
    token = issuer.token(**{"client_id": "epj-vendor-7", "sub": "PERSON-SUB-1", HPR: "9144889"})
    with TestClient(create_app(engine, issuer.authenticator(), warm=False, settings=settings)) as client:
        client.get(READ, headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-42"})  # framework
        with caplog.at_level(logging.INFO, logger="grunndata.access"):
            answer = client.get(READ, headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-43"})
    assert answer.status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "grunndata.access"]
    if log_format == "off":
        assert lines == []
        return
    assert len(lines) == 1
    for secret in (token, "PERSON-SUB-1", "9144889"):
        assert secret not in caplog.text
    if log_format == "plain":
        assert lines[0].startswith(f"req-43 GET {READ} ({READ_ROUTE}) 200 ")
        assert lines[0].endswith(" ms client epj-vendor-7")
        return
    line = json.loads(lines[0])
    assert line.pop("duration_ms") > 0
    assert line == {
        "request_id": "req-43",
        "method": "GET",
        "route": READ_ROUTE,
        "path": READ,
        "status": 200,
        "client_id": "epj-vendor-7",
    }


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[str]:
    """`grunndata serve --workers 2` over a store with the real extract; yields its URL."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    from grunndata.store import connect

    engine = connect(db)
    import_fest(engine, require(REAL_FEST))
    engine.dispose()
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    port = _free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics), "GRUNNDATA_WARM": "0"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "grunndata.cli",
                "serve",
                "--db",
                db,
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, lambda: proc.poll() is None, 40, lambda: log.read_text()[-3000:])
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # uvicorn and its workers: one process group
            proc.wait(timeout=20)


def test_metrics_add_up_every_worker_process(workers: str) -> None:
    before = metric(httpx.get(workers + "/metrics").text, "grunndata_http_requests_total", route="/livez")
    pids = set()
    for _ in range(20):
        assert httpx.get(workers + "/livez").status_code == 200
        pids.add(httpx.get(workers + "/health").json()["pid"])
    text = httpx.get(workers + "/metrics").text
    assert len(pids) == 2  # both processes answered...
    assert (
        metric(text, "grunndata_http_requests_total", route="/livez", status="200") - before == 20
    )  # ...and all is counted


def test_a_plain_line_stays_one_line_whatever_the_path(
    fresh_api: tuple[Engine, TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    engine, _ = fresh_api
    settings = Settings.load({"GRUNNDATA_LOG_FORMAT": "plain"})
    app = create_app(engine, warm=False, settings=settings)
    with TestClient(app) as client, caplog.at_level(logging.INFO, logger="grunndata.access"):
        client.get("/fhir/Basic/x%0A200 GET forged", headers={"X-Request-ID": "req-44"})
    (line,) = [r.getMessage() for r in caplog.records if r.name == "grunndata.access"]
    assert line.startswith(
        "req-44 GET /fhir/Basic/x\\x0a200 GET forged (/fhir/Basic/{rid}) 400 "
    )  # not an id


def test_a_head_request_is_logged_with_its_request_id_and_client(
    engine: Engine, issuer: Issuer, caplog: pytest.LogCaptureFixture
) -> None:
    # HEAD is answered as a GET inside (server/conventions.py); what the inner layers learn of it
    # (the request id, the client) still reaches the log line
    import_fest(engine, require(REAL_FEST))
    token = issuer.token(client_id="epj-vendor-7")
    app = create_app(engine, issuer.authenticator(), warm=False, settings=Settings.load({}))
    with TestClient(app) as client, caplog.at_level(logging.INFO, logger="grunndata.access"):
        answer = client.head(READ, headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-head-1"})
    assert (answer.status_code, answer.content, answer.headers["x-request-id"]) == (200, b"", "req-head-1")
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "grunndata.access"]
    assert (line["request_id"], line["method"], line["status"], line["client_id"]) == (
        "req-head-1",
        "HEAD",
        200,
        "epj-vendor-7",
    )


def test_a_plain_line_escapes_the_client_id_too(
    engine: Engine, issuer: Issuer, caplog: pytest.LogCaptureFixture
) -> None:
    # a signed claim, but text from outside all the same: a line break in it must not forge a line
    import_fest(engine, require(REAL_FEST))
    token = issuer.token(client_id="evil\n2026 GET /admin 200 root\u2028\x1b[31m")
    settings = Settings.load({"GRUNNDATA_LOG_FORMAT": "plain"})
    app = create_app(engine, issuer.authenticator(), warm=False, settings=settings)
    with TestClient(app) as client, caplog.at_level(logging.INFO, logger="grunndata.access"):
        client.get(READ, headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-45"})
    (line,) = [r.getMessage() for r in caplog.records if r.name == "grunndata.access"]
    assert line.endswith(" ms client evil\\x0a2026 GET /admin 200 root\\u2028\\x1b[31m")


def test_metrics_files_cut_short_are_a_503_not_a_500(
    fresh_api: tuple[Engine, TestClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a worker killed while it made its file leaves it empty: prometheus-client cannot unpack it
    (tmp_path / "counter_999.db").write_bytes(b"")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    _, client = fresh_api
    answer = client.get("/metrics")
    assert answer.status_code == 503, answer.text
    assert answer.json()["issue"][0]["diagnostics"].startswith(
        "the metrics files in PROMETHEUS_MULTIPROC_DIR cannot be read ("
    )


def test_serve_refuses_a_multiprocess_folder_that_is_not_there(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "missing")}
    done = subprocess.run(
        [sys.executable, "-m", "grunndata.cli", "serve", "--db", f"sqlite:///{tmp_path / 'g.db'}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert f"PROMETHEUS_MULTIPROC_DIR={tmp_path / 'missing'} is no folder" in done.stderr
    assert not (tmp_path / "g.db").exists()  # nothing made
