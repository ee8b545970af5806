"""`kill -9` at several moments of an import: the store stays consistent, the previous release served.

The base release is a generated delivery; each kill interrupts the import of its follow-up at a
different share of the time a complete import takes. Afterwards the same follow-up imports
cleanly and the interrupted attempts are recorded as failed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from grunndata.importers.fest import import_fest
from grunndata.sample import derive_followup, generate_delivery
from grunndata.store import connect, list_releases, rollback, served_counts
from grunndata.store.models import Release, ReleaseEntry, Resource

KILL_AT = (0.1, 0.25, 0.4, 0.55, 0.7, 0.85)  # shares of the time a complete import takes


def _import_process(path: Path, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "grunndata.cli", "import", "fest", str(path), "--db", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory) -> tuple[Path, Path, float, dict[str, int]]:
    """Base and follow-up, the wall time of importing the follow-up in a process, and what it serves."""
    folder = tmp_path_factory.mktemp("generated")
    base, followup = folder / "base.xml.gz", folder / "next.xml.gz"
    generate_delivery(base, scale=0.12, seed=7)
    derive_followup(base, followup, seed=8)
    scratch = f"sqlite:///{folder / 'scratch.db'}"
    engine = connect(scratch)
    import_fest(engine, base)
    started = time.monotonic()
    assert _import_process(followup, scratch).wait() == 0
    wall = time.monotonic() - started
    after = served_counts(engine, max(r.id for r in list_releases(engine)))
    engine.dispose()
    return base, followup, wall, after


def _state(engine) -> tuple:
    """(active release ids, manifest rows of unfinished releases, resource rows of unfinished releases)."""
    unfinished = Release.status.in_(["building", "failed"])

    def rows_of_unfinished(conn, table, release_column) -> int:
        query = select(func.count()).select_from(table).join(Release, Release.id == release_column)
        return conn.execute(query.where(unfinished)).scalar()

    active = [r.id for r in list_releases(engine) if r.status == "active"]
    with engine.connect() as conn:
        orphans = rows_of_unfinished(conn, ReleaseEntry, ReleaseEntry.release_id)
        unreleased = rows_of_unfinished(conn, Resource, Resource.release_id)
    return active, orphans, unreleased


@pytest.mark.slow
def test_kill_9_at_any_moment_leaves_the_previous_release_served(store_url, deliveries):
    base, followup, wall, served_after = deliveries
    engine = connect(store_url)
    first = import_fest(engine, base)
    served_before = served_counts(engine, first.release_id)
    assert served_before != served_after

    interrupted = 0
    for share in KILL_AT:
        proc = _import_process(followup, store_url)
        time.sleep(wall * share)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        active, orphans, unreleased = _state(engine)
        assert orphans == 0 and unreleased == 0  # nothing of an unfinished release is stored
        assert len(active) == 1
        if active == [first.release_id]:
            interrupted += 1
            assert served_counts(engine, first.release_id) == served_before
        else:  # the kill came after the commit: then the follow-up is served whole
            assert served_counts(engine, active[0]) == served_after
            rollback(engine, first.release_id)
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    assert interrupted >= 4, f"only {interrupted} of {len(KILL_AT)} kills came before the commit"

    after = import_fest(engine, followup)
    releases = list_releases(engine)
    assert [r.status for r in releases].count("active") == 1
    assert releases[-1].id == after.release_id and releases[-1].status == "active"
    assert "failed" in {r.status for r in releases}  # the interrupted attempts are recorded as failed
    assert "building" not in {r.status for r in releases}
    assert served_counts(engine, after.release_id) == served_after
    engine.dispose()
