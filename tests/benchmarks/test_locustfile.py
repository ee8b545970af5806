"""benchmarks/locustfile.py run the way vendors run it: headless locust against a real server.

Three runs: over the real 2017 extract (every kind of lookup asked, none failed), against a server
that fails every lookup (every one counted as a failure, the token sent on every request), and
against a server with no data (one `sample` failure, locust stops at once with exit code 1).
"""

from __future__ import annotations

import csv
import json
import os
import re
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

PPD_TYPE = "PackagedProductDefinition"

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


def test_a_release_switch_during_the_run_fails_nothing_and_the_ids_are_drawn_again(tmp_path: Path) -> None:
    """The follow-up (one package expired, one renamed) imported while locust runs: the expired
    package's 410 is the right answer, no request fails by locust's own count, and the run draws its
    ids again from the new release at the first such 410 (its look at /health is off here, so the
    410 is sure to come; the fake server below has it see a new release there)."""
    from tests.server.conftest import write_followup

    db = f"sqlite:///{tmp_path / 'store.db'}"
    engine = connect(db)
    import_fest(engine, require(REAL_FEST))
    followup, dropped = write_followup(tmp_path, "Certican Disperg tab 0,1 mg (ny)")
    prefix = tmp_path / "switch"
    times = tmp_path / "times.csv"
    # reads weigh most, so the expired package (1 in 107) is read between the switch and the new sample
    weights = ",".join(f"{kind}={ {'read': 20, 'm30': 0}.get(kind, 1) }" for kind in KINDS)
    options = ["--grunndata-wait", "0", "--grunndata-weights", weights, "--grunndata-watch", "0"]
    with grunndata_serving(db, tmp_path) as url:
        command = [str(locust()), "-f", str(LOCUSTFILE), "--headless", "-u", "10", "-r", "10", "-t", "16s"]
        command += ["--host", url, "--csv", str(prefix), "--only-summary", "--grunndata-times", str(times)]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("GRUNNDATA_LOCUST_")}
        with (tmp_path / "locust.err").open("w") as err:
            proc = subprocess.Popen(
                [*command, *options], cwd=tmp_path, env=clean, stdout=subprocess.PIPE, stderr=err
            )
            try:
                deadline = time.monotonic() + 30
                while "sampled 107 packages" not in (tmp_path / "locust.err").read_text():
                    assert time.monotonic() < deadline and proc.poll() is None, (
                        tmp_path / "locust.err"
                    ).read_text()
                    time.sleep(0.2)
                time.sleep(2)
                switched = time.time()
                result = import_fest(engine, followup)
                assert result.resources[PPD_TYPE]["expired"] == 1
                proc.wait(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    engine.dispose()
    whole = (tmp_path / "locust.err").read_text()
    log = whole[-5000:]
    assert proc.returncode == 0, log
    with Path(f"{prefix}_stats.csv").open(newline="") as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    total, failed = counts(rows["Aggregated"])
    assert total > 200 and failed == 0, log
    expired_ok = re.search(r"(\d+) answers were a 410 for an id a newer release expired", whole)
    assert expired_ok is not None and int(expired_ok.group(1)) >= 1, log
    # every request is in the times file, as many as locust counted, some of them after the switch
    with times.open(newline="") as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == total and {line["failed"] for line in lines} == {"0"}
    assert any(float(line["started"]) > switched + 1 for line in lines)
    gone = dropped.removeprefix("ID_")
    assert f"{PPD_TYPE}/{gone} expired: sampled again, 106 packages, 70 products (releases 2)" in whole, whole


class Wrong(BaseHTTPRequestHandler):
    """Serves a sample of three packages and one product, and answers: P1 200, P2 410 though its
    history says it is served (a wrong 410), P3 410 for an expiry older than the sample (it cannot
    have been in it), the product's $everything 404."""

    protocol_version = "HTTP/1.1"
    NEWEST = "2026-11-01T03:00:00Z"
    started = 0.0  # /health names release 7 for the first 2 s, then 8

    def do_GET(self) -> None:  # noqa: N802
        path, query = urlsplit(self.path).path, parse_qs(urlsplit(self.path).query)
        ppd = "/fhir/PackagedProductDefinition"
        status, body = 404, {"resourceType": "OperationOutcome", "issue": [{"code": "not-found"}]}
        if path == "/health":
            release = 7 if time.monotonic() - self.started < 2 else 8
            status, body = 200, {"status": "ok", "active_releases": [{"id": release}]}
        elif path == ppd and "_elements" in query:
            packages = [
                {
                    "resourceType": "PackagedProductDefinition",
                    "id": f"P{n}",
                    "packageFor": [{"reference": "MedicinalProductDefinition/M1"}],
                }
                for n in (1, 2, 3)
            ]
            status, body = (
                200,
                {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": p} for p in packages]},
            )
        elif path == "/fhir/MedicinalProductDefinition" and "_elements" in query:
            status, body = (
                200,
                bundle(
                    {
                        "resourceType": "MedicinalProductDefinition",
                        "id": "M1",
                        "name": [{"productName": "Paracetamol"}],
                    }
                ),
            )
        elif path == "/fhir/_history":
            status, body = 200, history("PUT", self.NEWEST)
        elif path == f"{ppd}/P1":
            status, body = 200, {"resourceType": "PackagedProductDefinition", "id": "P1"}
        elif path in (f"{ppd}/P2", f"{ppd}/P3"):
            status, body = 410, {"resourceType": "OperationOutcome", "issue": [{"code": "deleted"}]}
        elif path == f"{ppd}/P2/_history":
            status, body = 200, history("PUT", "2026-10-01T03:00:00Z")
        elif path == f"{ppd}/P3/_history":
            status, body = 200, history("DELETE", "2026-10-31T03:00:00Z")
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def history(method: str, when: str) -> dict[str, object]:
    return {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [
            {"request": {"method": method, "url": "x"}, "response": {"status": "200", "lastModified": when}}
        ],
    }


def test_a_410_no_newer_release_explains_and_a_404_are_failures(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Wrong)
    Wrong.started = time.monotonic()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        weights = ",".join(f"{kind}={int(kind in ('read', 'everything'))}" for kind in KINDS)
        options = ["--grunndata-wait", "0", "--grunndata-weights", weights, "--grunndata-watch", "1"]
        result, rows = run_locust(url, tmp_path / "wrong", 4, *options)
    finally:
        server.shutdown()
        server.server_close()
    log = result.stdout[-3000:] + result.stderr[-5000:]
    assert result.returncode == 1, log
    reads, failed_reads = counts(rows["read"])
    assert 0 < failed_reads < reads, rows["read"]  # P1's 200s count as answered, P2's and P3's 410s not
    assert counts(rows["everything"])[0] == counts(rows["everything"])[1] > 0
    with Path(f"{tmp_path / 'wrong'}_failures.csv").open(newline="") as f:
        errors = {
            (row["Name"], re.sub(r"^CatchResponseError\('(.*)'\)$", r"\1", row["Error"]))
            for row in csv.DictReader(f)
        }
    assert errors == {
        ("read", "HTTP 410 for PackagedProductDefinition/P2, which no newer release expired"),
        ("read", "HTTP 410 for PackagedProductDefinition/P3, which no newer release expired"),
        ("everything", "HTTP 404"),
    }, errors
    assert "0 answers were a 410 for an id a newer release expired" in result.stderr, log
    # /health named a new release: the ids were drawn again (the same three here)
    assert "releases 7 -> 8: sampled again, 3 packages, 1 products (releases 8)" in result.stderr, log
