"""`$export` with two server processes (`uvicorn --workers 2`) over one PostgreSQL store and one
export folder: asked of both at once, the export is made once; either process answers its status
and sends its files."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from grunndata.importers.fest import import_fest
from grunndata.store import connect
from grunndata.store.models import BT
from tests.conftest import REAL_FEST, fresh_pg_database, require
from tests.server.test_bulk_export import counts
from tests.server.test_workers import WORKERS, uvicorn_workers

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ASYNC = {"Prefer": "respond-async"}


def clients_of_each_process(url: str, tries: int = 200) -> Iterator[tuple[int, httpx.Client]]:
    """A keep-alive client per worker process (a connection stays with the process that accepted it)."""
    seen: set[int] = set()
    for _ in range(tries):
        client = httpx.Client(base_url=url, timeout=10.0, limits=httpx.Limits(max_connections=1))
        pid = client.get("/health").json()["pid"]
        if pid in seen:
            client.close()
            continue
        seen.add(pid)
        yield pid, client
        if len(seen) == WORKERS:
            return
    raise AssertionError(f"only processes {seen} accepted {tries} new connections")


def test_two_processes_asked_at_once_make_one_export_and_both_serve_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fest = require(REAL_FEST)
    monkeypatch.setenv("GRUNNDATA_EXPORT_DIR", str(tmp_path / "exports"))  # as `serve --workers` sets it
    with fresh_pg_database() as db:
        engine = connect(db)
        try:
            import_fest(engine, real_fest)
            with uvicorn_workers(db, WORKERS, tmp_path / "uvicorn.log") as url:
                (pid_a, a), (pid_b, b) = list(clients_of_each_process(url))
                assert pid_a != pid_b
                with ThreadPoolExecutor(2) as pool:
                    kicked = list(
                        pool.map(lambda c: c.get("/fhir/$export?_type=Ingredient", headers=ASYNC), (a, b))
                    )
                assert [r.status_code for r in kicked] == [202, 202]
                status_url, other_url = (r.headers["content-location"] for r in kicked)
                assert status_url != other_url  # a ticket each
                with engine.connect() as conn:
                    jobs = conn.execute(select(BT.c.job_id).distinct()).scalars().all()
                assert len(jobs) == 1  # to one job
                for _ in range(300):  # process b answers the job process a (or b) started
                    done = b.get(status_url)
                    if done.status_code != 202:
                        break
                    time.sleep(0.1)
                assert done.status_code == 200, done.text
                assert a.get(status_url).json() == done.json()
                assert counts(a.get(other_url).json()) == counts(done.json())
                [item] = done.json()["output"]
                assert item["type"] == "Ingredient" and item["count"] == 139
                from_a, from_b = a.get(item["url"]), b.get(item["url"])
                assert from_a.status_code == from_b.status_code == 200
                assert from_a.content == from_b.content and from_a.content.count(b"\n") == 139
                assert len(list((tmp_path / "exports").iterdir())) == 1  # written once
                a.close()
                b.close()
        finally:
            engine.dispose()
