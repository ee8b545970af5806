"""Several server processes over one PostgreSQL store: the API processes share nothing but the store.

`uvicorn --workers 2` over a fresh database holding the real extract: more than one process
answers (`/health` names its pid; a keep-alive connection stays with the process that accepted
it, so what is read on it after `/health` comes from that process), every process gives the same
answers, and after a new release is imported (by the importer, from here) every process serves it
within a couple of seconds (GRUNNDATA_SNAPSHOT_SECONDS=1) and none serves the old one after that:
not the cached read, not the cached search, not an expired package.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from grunndata.importers.fest import import_fest
from grunndata.server import create_app
from grunndata.settings import Settings
from grunndata.store import connect
from tests.conftest import REAL_FEST, fresh_pg_database, require
from tests.server.conftest import CERTICAN_BRAND, CERTICAN_PACKAGE, VARENR, write_followup
from tests.server.live import wait_for_health

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2
SNAPSHOT_SECONDS = 1.0
DEADLINE = 2.5  # seconds after the import returns by which every process must serve the new release
NEW_NAME = "Certican Disperg tab 0,1 mg (ny release)"
PPD = "PackagedProductDefinition"


def app_from_env() -> FastAPI:
    """The app over GRUNNDATA_DB: the factory each uvicorn worker calls (the edge: settings read here)."""
    settings = Settings.load()
    return create_app(connect(settings.db, create=False), settings=settings)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def uvicorn_workers(db: str, workers: int, log: Path) -> Iterator[str]:
    """`uvicorn --workers N` over `db` on a free port, until it answers /health; yields its URL."""
    port = _free_port()
    env = {**os.environ, "GRUNNDATA_DB": db, "GRUNNDATA_SNAPSHOT_SECONDS": str(SNAPSHOT_SECONDS)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "tests.server.test_workers:app_from_env",
                "--app-dir",
                str(ROOT),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers are in its group: stopped together below
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(
            url,
            lambda: proc.poll() is None,
            40,
            lambda: f"uvicorn --workers {workers} did not start:\n{log.read_text()[-3000:]}",
        )
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass(frozen=True, slots=True)
class Sample:
    """What one process served on one connection, and when (monotonic seconds)."""

    at: float
    pid: int
    package_status: int
    package_name: str
    package_etag: str
    search_snapshot: str  # the _snapshot of the search's self link: the releases the process serves
    search_names: tuple[str, ...]
    dropped_status: int


def sample(url: str, dropped: str) -> Sample:
    """One new connection: /health says which process accepted it, the rest is read from that process."""
    with httpx.Client(base_url=url, timeout=10.0, limits=httpx.Limits(max_connections=1)) as client:
        pid = client.get("/health").json()["pid"]
        package = client.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}")
        search = client.get(f"/fhir/{PPD}", params={"identifier": f"{VARENR}|014884"}).json()
        gone = client.get(f"/fhir/{PPD}/{dropped}")
    self_link = next(link["url"] for link in search["link"] if link["relation"] == "self")
    body = package.json()
    return Sample(
        at=time.monotonic(),
        pid=pid,
        package_status=package.status_code,
        package_name=package_name(body),
        package_etag=package.headers.get("etag", ""),
        search_snapshot=httpx.URL(self_link).params.get("_snapshot", ""),
        search_names=tuple(package_name(e["resource"]) for e in search.get("entry", [])),
        dropped_status=gone.status_code,
    )


def package_name(resource: dict[str, Any]) -> str:
    return str(resource.get("name", ""))


def samples(url: str, dropped: str, n: int, threads: int = 8) -> list[Sample]:
    """`n` samples over new connections, `threads` at a time, so the kernel hands them to every worker."""
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda _: sample(url, dropped), range(n)))


def same_answers(url: str, paths: list[str], pid_wanted: int, tries: int = 200) -> dict[str, bytes]:
    """The bodies of `paths` as process `pid_wanted` answers them (new connections until it accepts one).

    Bundles without their `meta.lastUpdated` (when the process made the bundle); the rest byte for byte."""
    for _ in range(tries):
        with httpx.Client(base_url=url, timeout=10.0, limits=httpx.Limits(max_connections=1)) as client:
            if client.get("/health").json()["pid"] != pid_wanted:
                continue
            answers = {}
            for path in paths:
                response = client.get(path)
                assert response.status_code == 200, (path, response.text[:300])
                answers[path] = response.content
                if response.content.startswith(b'{"resourceType":"Bundle"'):
                    body = response.json()
                    body.pop("meta")
                    answers[path] = repr(body).encode()
            return answers
    raise AssertionError(f"process {pid_wanted} accepted none of {tries} new connections")


def test_several_processes_serve_one_store_and_pick_up_a_new_release_together(tmp_path: Path) -> None:
    real_fest = require(REAL_FEST)  # before anything reads it: a clean skip without ../shared
    followup, dropped_key = write_followup(tmp_path, NEW_NAME)
    dropped = dropped_key.removeprefix("ID_")
    with fresh_pg_database() as db:
        engine = connect(db)
        try:
            import_fest(engine, real_fest)
            with uvicorn_workers(db, WORKERS, tmp_path / "uvicorn.log") as url:
                # more than one process answers, and each serves the first release (and caches it)
                before = samples(url, dropped, 64)
                pids = {s.pid for s in before}
                assert len(pids) == WORKERS, f"only {pids} answered 64 new connections"
                first = before[0]
                assert first.package_status == 200 and first.dropped_status == 200
                assert NEW_NAME not in first.package_name
                for s in before:
                    assert (s.package_etag, s.package_name, s.search_snapshot, s.search_names) == (
                        first.package_etag,
                        first.package_name,
                        first.search_snapshot,
                        first.search_names,
                    ), f"process {s.pid} answers differently from process {first.pid}"

                # the same bytes from every process: reads, a search, an include, $everything, $translate
                paths = [
                    f"/fhir/{PPD}/{CERTICAN_PACKAGE}",
                    f"/fhir/MedicinalProductDefinition/{CERTICAN_BRAND}",
                    f"/fhir/{PPD}?identifier={VARENR}|014884&_include={PPD}:package-for",
                    "/fhir/MedicinalProductDefinition?name=cert&_sort=name",
                    f"/fhir/MedicinalProductDefinition/{CERTICAN_BRAND}/$everything",
                    f"/fhir/ConceptMap/$translate?system={VARENR}&sourceCode=014884"
                    "&targetSystem=https://www.gs1.org/gtin",
                ]
                answers = {pid: same_answers(url, paths, pid) for pid in sorted(pids)}
                reference = answers[min(pids)]
                for pid, got in answers.items():
                    for path in paths:
                        assert got[path] == reference[path], f"process {pid} answers {path} differently"

                # a new release, imported from here while the processes keep answering
                seen: list[Sample] = []
                stop = threading.Event()

                def poll() -> None:
                    while not stop.is_set():
                        seen.extend(samples(url, dropped, 8, threads=4))

                poller = threading.Thread(target=poll, daemon=True)
                poller.start()
                try:
                    import_fest(engine, followup)
                    imported = time.monotonic()
                    # keep sampling until every process has been seen a few times after the deadline
                    until = imported + DEADLINE
                    limit = imported + 30
                    while time.monotonic() < limit:
                        late = [s for s in list(seen) if s.at > until]
                        if all(sum(s.pid == pid for s in late) >= 5 for pid in pids):
                            break
                        time.sleep(0.1)
                finally:
                    stop.set()
                    poller.join(timeout=30)
                late = [s for s in seen if s.at > until]
                assert {s.pid for s in late} == pids, (
                    f"after the import only {sorted({s.pid for s in late})} answered"
                )
                stale = [s for s in late if NEW_NAME not in s.package_name or s.dropped_status != 410]
                assert not stale, (
                    f"{len(stale)} answers still from the old release after {DEADLINE} s: {stale[:3]}"
                )
                new = late[0]
                assert new.search_snapshot != first.search_snapshot
                assert new.package_etag != first.package_etag
                for s in late:
                    assert (s.package_etag, s.search_snapshot, s.search_names) == (
                        new.package_etag,
                        new.search_snapshot,
                        new.search_names,
                    ), f"process {s.pid} answers differently after the new release"
                    assert any(NEW_NAME in n for n in s.search_names), "the cached search is stale"
                # and how fast: per process, the first answer from the new release
                for pid in pids:
                    fresh = [s.at for s in seen if s.pid == pid and NEW_NAME in s.package_name]
                    assert fresh and min(fresh) - imported <= DEADLINE
        finally:
            engine.dispose()
