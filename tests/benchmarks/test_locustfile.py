"""benchmarks/locustfile.py run the way vendors run it: headless locust against a real server.

Three runs: over the real 2017 extract (every kind of lookup asked, none failed), against a server
that fails every lookup (every one counted as a failure, the token sent on every request), and
against a server with no data (one `sample` failure, locust stops at once with exit code 1).
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from grunndata.importers.fest import import_fest
from grunndata.store import connect
from tests.conftest import REAL_FEST, require
from tests.server.live import wait_for_health

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "benchmarks" / "locustfile.py"
KINDS = [  # the request names of the locustfile's kinds, as its docstring lists them
    "read",
    "varenr",
    "gtin",
    "fest-id",
    "atc",
    "name",
    "name-contains",
    "everything",
    "paging",
    "history",
    "translate",
    "m30",
]
FOLLOW_UPS = ["paging next", "history next"]
# Even weights and no pause, so every kind is asked many times in a short run (with the default
# weights M30 is 1 task in 1,000 and a user pauses about a second between tasks).
EVEN = ["--grunndata-wait", "0", "--grunndata-weights", ",".join(f"{kind}=1" for kind in KINDS)]


def locust() -> Path:
    path = Path(sys.executable).parent / "locust"
    if not path.exists():
        message = f"{path} not found: pip install -e '.[test]' installs locust"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def grunndata_serving(db: str, cwd: Path) -> Iterator[str]:
    """`grunndata serve` over `db` in its own process on a free port; yields its root URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = cwd / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "grunndata.cli", "serve", "--port", str(port), "--no-access-log"],
            env={**os.environ, "GRUNNDATA_DB": db},
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_health(
            url,
            lambda: proc.poll() is None,
            30,
            lambda: f"grunndata serve did not answer {url}/health:\n{log.read_text()[-3000:]}",
        )
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_locust(
    url: str, prefix: Path, seconds: int, *options: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, str]]]:
    """Locust as the locustfile's docstring says, with 10 users; its exit and `_stats.csv` rows by name."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GRUNNDATA_LOCUST_")}
    result = subprocess.run(
        [
            str(locust()),
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "-u",
            "10",
            "-r",
            "10",
            "-t",
            f"{seconds}s",
            "--host",
            url,
            "--csv",
            str(prefix),
            "--only-summary",
            *options,
        ],
        cwd=prefix.parent,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    with Path(f"{prefix}_stats.csv").open(newline="") as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    return result, rows


def counts(row: dict[str, str]) -> tuple[int, int]:
    return int(row["Request Count"]), int(row["Failure Count"])


def test_every_lookup_against_the_real_extract_without_a_failure(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    engine = connect(db)
    import_fest(engine, require(REAL_FEST))
    engine.dispose()
    with grunndata_serving(db, tmp_path) as url:
        result, rows = run_locust(url, tmp_path / "epj", 15, *EVEN)
    log = result.stdout[-3000:] + result.stderr[-5000:]
    assert result.returncode == 0, log
    assert "sampled 107 packages (107 varenr, 105 GTIN, 107 FEST ids)" in result.stderr, log
    assert set(rows) == {*KINDS, *FOLLOW_UPS, "Aggregated"}, log
    for name in [*KINDS, *FOLLOW_UPS]:
        requests, failures = counts(rows[name])
        assert requests > 0 and failures == 0, (name, rows[name])
    total, failed = counts(rows["Aggregated"])
    assert total == sum(counts(rows[name])[0] for name in [*KINDS, *FOLLOW_UPS]) and total > 0
    assert failed == 0
    for column in ("Requests/s", "50%", "95%", "99%"):
        assert float(rows["Aggregated"][column]) > 0, column


class Failing(BaseHTTPRequestHandler):
    """Answers the locustfile's sampling with one package and one product, every lookup with an error:
    500, except name searches, which get a 200 that is not a Bundle. Keeps the Authorization headers."""

    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append(self.headers.get("Authorization", ""))
        path, query = urlsplit(self.path).path, parse_qs(urlsplit(self.path).query)
        status = 500
        body: dict[str, object] = {"resourceType": "OperationOutcome", "issue": [{"code": "exception"}]}
        if path == "/fhir/PackagedProductDefinition" and "_elements" in query:
            status, body = (
                200,
                bundle(
                    {
                        "resourceType": "PackagedProductDefinition",
                        "id": "P1",
                        "identifier": [
                            {
                                "system": "http://dmp.no/fhir/NamingSystem/festLegemiddelPakning",
                                "value": "ID_P1",
                            },
                            {"system": "http://dmp.no/fhir/NamingSystem/fest-varenummer", "value": "123456"},
                            {"system": "https://www.gs1.org/gtin", "value": "7040001234567"},
                        ],
                        "packageFor": [{"reference": "MedicinalProductDefinition/M1"}],
                    }
                ),
            )
        elif path == "/fhir/MedicinalProductDefinition" and "_elements" in query:
            status, body = (
                200,
                bundle(
                    {
                        "resourceType": "MedicinalProductDefinition",
                        "id": "M1",
                        "classification": [
                            {"coding": [{"system": "http://www.whocc.no/atc", "code": "N02BE01"}]}
                        ],
                        "name": [{"productName": "Paracetamol Tabletter 500 mg"}],
                    }
                ),
            )
        elif path == "/fhir/_history" and "_since" not in query:
            status, body = (
                200,
                {
                    "resourceType": "Bundle",
                    "type": "history",
                    "entry": [{"response": {"status": "201", "lastModified": "2026-11-01T03:00:00Z"}}],
                },
            )
        elif path == "/fhir/MedicinalProductDefinition" and {"name", "name:contains"} & set(query):
            status = 200
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def bundle(resource: dict[str, object]) -> dict[str, object]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": resource}]}


def test_every_lookup_a_server_fails_is_a_failure_and_the_token_is_sent(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    Failing.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result, rows = run_locust(
            url, tmp_path / "failing", 5, *EVEN, env={"GRUNNDATA_LOCUST_TOKEN": "t0k3n"}
        )
    finally:
        server.shutdown()
        server.server_close()
    log = result.stdout[-3000:] + result.stderr[-5000:]
    assert result.returncode == 1, log
    assert set(rows) == {*KINDS, "Aggregated"}, log  # no page came back, so no next page was asked
    for name in KINDS:
        requests, failures = counts(rows[name])
        assert requests > 0 and failures == requests, (name, rows[name])
    assert counts(rows["Aggregated"])[0] == counts(rows["Aggregated"])[1] > 0
    with Path(f"{tmp_path / 'failing'}_failures.csv").open(newline="") as f:
        errors = {row["Name"]: row["Error"] for row in csv.DictReader(f)}
    assert set(errors) == set(KINDS)
    for name in KINDS:
        expected = "not a Bundle" if name in ("name", "name-contains") else "HTTP 500"
        assert expected in errors[name], (name, errors[name])
    assert len(Failing.seen) > len(KINDS) and set(Failing.seen) == {"Bearer t0k3n"}


def test_a_server_without_data_stops_locust_with_one_sample_failure(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    connect(db).dispose()
    started = time.monotonic()
    with grunndata_serving(db, tmp_path) as url:
        result, rows = run_locust(url, tmp_path / "empty", 30)
    assert result.returncode == 1, result.stderr[-3000:]
    assert time.monotonic() - started < 20  # stopped at once, not after the 30 s
    assert {name: counts(row) for name, row in rows.items()} == {"sample": (1, 1), "Aggregated": (1, 1)}
    assert "serves no packages or no products" in result.stderr
