"""What keeps a `$export` off the server's reads beyond the child's own priority: the child paces
its work to a share of the time (ndjson.Pacer, GRUNNDATA_EXPORT_SHARE), and renices the
PostgreSQL backends serving it when they run on this machine (runner.nice_backend,
GRUNNDATA_EXPORT_BACKEND_NICE)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import psycopg
import pytest

from grunndata.exporters import ndjson
from grunndata.exporters.runner import _named, nice_backend
from grunndata.importers.fest import import_fest
from grunndata.store import connect, current_snapshot, open_connection
from grunndata.store.bulk import Entitlement
from tests.conftest import REAL_FEST, fresh_pg_database, require


class _Clock:
    """A clock the pacer reads and sleeps on: each resource costs `step` seconds of work."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def work(self) -> None:
        self.now += self.step

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(("share", "pause"), [(0.5, 0.012), (0.25, 0.036), (0.8, 0.003)])
def test_the_pacer_keeps_the_work_to_its_share_of_the_time(share: float, pause: float) -> None:
    clock = _Clock(0.004)
    pacer = ndjson.Pacer(share, clock, clock.sleep)
    for _ in range(99):  # 0.396 s of work, in slices of 3 resources (0.012 s, the first past 0.01)
        clock.work()
        pacer()
    assert len(clock.slept) == 33
    assert clock.slept[0] == pytest.approx(pause)
    assert 0.396 / clock.now == pytest.approx(share)
    assert pacer.slept == pytest.approx(sum(clock.slept))


def test_a_share_of_one_does_not_pace_and_a_share_out_of_range_is_refused() -> None:
    clock = _Clock(0.05)
    pacer = ndjson.Pacer(1.0, clock, clock.sleep)
    for _ in range(10):
        clock.work()
        pacer()
    assert clock.slept == []
    for share in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="more than 0 and at most 1"):
            ndjson.Pacer(share)


def _lines(folder: Path) -> dict[str, bytes]:
    return {p.name: gzip.decompress(p.read_bytes()) for p in sorted(folder.iterdir())}


def test_a_paced_export_writes_the_same_files(tmp_path: Path) -> None:
    """On the real extract: paced to a tenth of the time, the export writes byte for byte what it
    writes unpaced, and it slept between its slices (nine times each slice's work)."""
    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    import_fest(engine, require(REAL_FEST))
    with open_connection(engine) as conn:
        snapshot = current_snapshot(conn)
    types = ["PackagedProductDefinition", "MedicinalProductDefinition"]
    plain = ndjson.export_ndjson(
        engine, tmp_path / "plain", snapshot=snapshot, types=types, since=None, entitled=Entitlement()
    )
    clock = _Clock(0.004)  # each resource 4 ms of work, as the pacer sees it

    def ticking() -> float:
        clock.work()
        return clock()

    pacer = ndjson.Pacer(0.1, ticking, clock.sleep)
    paced = ndjson.export_ndjson(
        engine,
        tmp_path / "paced",
        snapshot=snapshot,
        types=types,
        since=None,
        entitled=Entitlement(),
        pacer=pacer,
    )
    assert paced.counts == plain.counts and sum(plain.counts.values()) > 100
    assert _lines(tmp_path / "paced") == _lines(tmp_path / "plain")
    resources = sum(plain.counts.values())
    assert len(clock.slept) == resources // 3  # a sleep after every third resource (12 ms of work)
    assert pacer.slept == pytest.approx(0.012 * 9 * (resources // 3))
    engine.dispose()


@pytest.mark.postgres
def test_the_backend_of_a_child_connection_on_this_machine_is_reniced() -> None:
    """The store on this machine (127.0.0.1): the backend whose process title names our
    connection's port gets the niceness; the other backends (the server's) keep theirs."""
    with fresh_pg_database() as url:
        engine = connect(_named(url))
        try:
            with engine.connect() as conn:
                dbapi = conn.connection.driver_connection
                pid = dbapi.pgconn.backend_pid  # type: ignore[union-attr]
                before = os.getpriority(os.PRIO_PROCESS, pid)
                assert nice_backend(dbapi, 19) is (os.geteuid() == 0 or _own_process(pid))
                if os.geteuid() == 0:
                    assert (before, os.getpriority(os.PRIO_PROCESS, pid)) == (0, 19)
            with psycopg.connect(
                url.replace("postgresql+psycopg://", "postgresql://")
            ) as other:  # the server's connection: not touched
                assert os.getpriority(os.PRIO_PROCESS, other.pgconn.backend_pid) == 0
        finally:
            engine.dispose()


def _own_process(pid: int) -> bool:
    return Path(f"/proc/{pid}").stat().st_uid == os.getuid()


class _Elsewhere:
    """A psycopg connection as nice_backend sees it, to a store at another address."""

    def __init__(self, real: psycopg.Connection) -> None:
        self.real = real

    @property
    def pgconn(self) -> object:
        real = self.real.pgconn

        class _Conn:
            backend_pid = os.getpid()  # a process of this machine that is no backend of ours
            socket = real.socket

        return _Conn()


@pytest.mark.postgres
def test_a_process_whose_title_does_not_name_our_connection_is_left_alone() -> None:
    """A backend id from a store elsewhere (or behind a pooler) may be any process here: only a
    process whose title is a PostgreSQL backend's naming our connection's port is reniced."""
    with (
        fresh_pg_database() as url,
        psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn,
    ):
        before = os.getpriority(os.PRIO_PROCESS, 0)
        assert nice_backend(_Elsewhere(conn), 19) is False
        assert os.getpriority(os.PRIO_PROCESS, 0) == before
