"""The child's side of a `$export` job: it hears of a cancel while it writes, and leaves nothing."""

from __future__ import annotations

import contextlib
import gzip
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy.engine import Connection, Engine

from grunndata.exporters import ndjson
from grunndata.importers.fest import import_fest
from grunndata.store import bulk, connect, current_snapshot, open_connection, read
from grunndata.store.bulk import Entitlement
from tests.conftest import REAL_FEST, fresh_pg_database, require


@pytest.fixture
def store(tmp_path: Path) -> Engine:
    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    import_fest(engine, require(REAL_FEST))
    return engine


def _job(engine: Engine) -> str:
    return _kicked_off(engine, ["PackagedProductDefinition"])[0]


def _kicked_off(engine: Engine, types: list[str]) -> tuple[str, str]:
    """(job id, the kick-off's ticket) of a new job."""
    with open_connection(engine) as conn:
        snapshot = current_snapshot(conn)
    job, ticket, new = bulk.start_job(engine, Entitlement(), snapshot, types, None, "/x")
    assert new
    return job.id, ticket


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def either_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The real extract in a SQLite file or a fresh PostgreSQL database."""
    with contextlib.ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path / 'store.db'}"
            if request.param == "sqlite"
            else stack.enter_context(fresh_pg_database())
        )
        engine = connect(url)
        stack.callback(engine.dispose)
        import_fest(engine, require(REAL_FEST))
        yield engine


def test_a_job_cancelled_while_it_is_written_stops_and_removes_its_files(
    either_store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the rows come by COPY: the one cut short is ended before its connection goes
    back to the pool, which serves the next query as before."""
    store = either_store
    job_id, ticket = _kicked_off(store, ["PackagedProductDefinition"])
    monkeypatch.setattr(ndjson, "_REPORT_SECONDS", 0.0)  # a word after every resource
    words: list[int] = []
    report = bulk.report_progress

    def cancelled_at_the_tenth(conn: Connection, job: str, done: int, total: int) -> bool:
        words.append(done)
        if len(words) == 10:  # another server process answers a DELETE of the job's one ticket
            with open_connection(store) as other:
                assert bulk.cancel_ticket(other, ticket) == (True, job)
        return report(conn, job, done, total)

    monkeypatch.setattr(bulk, "report_progress", cancelled_at_the_tenth)
    ndjson.run_job(store, job_id, tmp_path / "exports", 60)
    assert len(words) == 10 and words[-1] == 9  # it stopped at the word that found the row gone
    assert not ndjson.job_folder(tmp_path / "exports", job_id).exists()
    with open_connection(store) as conn:
        assert bulk.get_job(conn, job_id) is None
    assert store.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_job_written_to_the_end_is_done_with_its_manifest(store: Engine, tmp_path: Path) -> None:
    job_id = _job(store)
    ndjson.run_job(store, job_id, tmp_path / "exports", 60)
    with open_connection(store) as conn:
        job = bulk.get_job(conn, job_id)
    assert job is not None and job.status == bulk.DONE and (job.done, job.total) == (107, 107)
    assert job.output == [
        {"type": "PackagedProductDefinition", "file": "PackagedProductDefinition.ndjson.gz", "count": 107}
    ]
    assert job.expires_at is not None and 59 <= (job.expires_at - job.updated_at).total_seconds() <= 60
    folder = ndjson.job_folder(tmp_path / "exports", job_id)
    assert sorted(p.name for p in folder.iterdir()) == ["PackagedProductDefinition.ndjson.gz"]


def test_a_job_cancelled_while_it_waits_for_its_turn_starts_no_child(store: Engine, tmp_path: Path) -> None:
    """A kick-off and a cancel in a loop queued a child per job, each started when its turn came
    though its job was gone (probe): the turn now asks first whether the job is still there."""
    import asyncio

    from grunndata.exporters.runner import Exporter

    exporter = Exporter(store)
    started: list[str] = []

    async def started_child(argv: list[str], in_thread: object, what: str) -> None:
        started.append(argv[1])

    exporter._child = started_child  # type: ignore[method-assign]
    kept, (cancelled, ticket) = _job(store), _kicked_off(store, ["Basic"])
    with open_connection(store) as conn:
        assert bulk.cancel_ticket(conn, ticket) == (True, cancelled)

    async def both() -> None:
        await exporter.write_ndjson(kept, tmp_path, 60)
        await exporter.write_ndjson(cancelled, tmp_path, 60)

    asyncio.run(both())
    assert started == [kept]


def test_the_files_are_packed_at_gzips_fastest_level_in_chunks(
    store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's CPU time is what the server's reads share the machine with: gzip level 1 (the
    header's XFL byte is 4, "fastest") and one write per chunk, not two per resource."""
    job_id = _job(store)
    writes: list[int] = []
    write = gzip.GzipFile.write

    def counted(self: gzip.GzipFile, data: Any) -> int:
        writes.append(len(data))
        return write(self, data)

    monkeypatch.setattr(gzip.GzipFile, "write", counted)
    monkeypatch.setattr(ndjson, "_GZIP", gzip)  # the standard library's writer, where isal is installed
    ndjson.run_job(store, job_id, tmp_path / "exports", 60)
    packed = (
        ndjson.job_folder(tmp_path / "exports", job_id) / "PackagedProductDefinition.ndjson.gz"
    ).read_bytes()
    assert packed[8] == 4  # XFL: compressed with the fastest algorithm
    assert len(gzip.decompress(packed).splitlines()) == 107
    # 107 packages, 635,227 bytes: three writes (two full chunks and the rest), not 214
    assert sum(writes) == 635_227 and len(writes) == 3
    assert all(n >= ndjson._CHUNK for n in writes[:-1])


def test_the_export_child_runs_only_on_cpu_time_no_one_else_wants() -> None:
    """nice 19 and SCHED_IDLE (Linux): at nice 10 a full-size export still took a share of a core
    from a busy server every few milliseconds (benchmarks/RESULTS.md)."""
    probe = (
        "import os; from grunndata.exporters.runner import lowest_priority; lowest_priority(); "
        "print(os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0) == os.SCHED_IDLE)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["19", "True"]


def test_an_export_child_the_machine_never_leaves_idle_time_goes_on_at_nice_19() -> None:
    """SCHED_IDLE alone could wait for ever on a machine never idle; after its idle time the child
    is in the normal class again, at nice 19."""
    probe = (
        "import os, time; from grunndata.exporters.runner import lowest_priority; "
        "lowest_priority(idle_seconds=0.2); time.sleep(1.0); "
        "print(os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0) == os.SCHED_OTHER)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["19", "True"]


def test_every_line_is_the_bytes_a_read_sends_in_id_order(either_store: Engine, tmp_path: Path) -> None:
    """The export makes each body itself (PostgreSQL: rows by binary COPY, meta made once per
    version, instant and line): every line is byte for byte what a read of that id sends, every
    served resource once, ids in order."""
    engine = either_store
    with open_connection(engine) as conn:
        snapshot = current_snapshot(conn)
    types = ndjson.export_types([])
    result = ndjson.export_ndjson(
        engine, tmp_path / "out", snapshot=snapshot, types=types, since=None, entitled=Entitlement()
    )
    assert sum(result.counts.values()) == 712  # the real extract: 107 packages and what they need
    with open_connection(engine) as conn:
        for rtype, name, count in result.files():
            written = gzip.decompress((tmp_path / "out" / name).read_bytes()).splitlines()
            ids = [orjson.loads(line)["id"] for line in written]
            assert ids == sorted(ids) and len(set(ids)) == count == len(written), rtype
            sent = [read(conn, snapshot, rtype, rid) for rid in ids]
            assert written == [v.body() for v in sent if v is not None], rtype
        served = bulk.count_served(conn, snapshot, types, None)
    assert served == result.counts  # each type, 0 for those with no file
