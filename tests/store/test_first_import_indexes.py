"""A first import into an empty SQLite store drops the secondary indexes of the version, manifest and
search tables after its first batch and builds them again from all its rows (issue 23 item 5: row by
row they cost more than the sort). Whatever happens, a store is never left without them."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import orjson
import pytest
from sqlalchemy.engine import Engine

from grunndata.store import ReleaseBuilder, connect
from grunndata.store.models import M, R, S, X
from grunndata.store.searchparams import index_rows

DEFERRED = sorted(str(index.name) for table in (R, M, S, X) for index in table.indexes)


def _indexes(path: Path) -> list[str]:
    """The indexes the file holds, read past SQLAlchemy (`connect` makes missing ones again)."""
    with sqlite3.connect(path) as db:
        return sorted(n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'"))


def _put(builder: ReleaseBuilder, n: int) -> None:
    resource = {"resourceType": "Basic", "id": f"b{n}", "code": {"text": f"thing {n}"}}
    body = orjson.dumps(resource)
    builder.put("Basic", f"b{n}", body, hashlib.sha256(body).hexdigest(), fhir_index=index_rows(resource))


@pytest.fixture
def store(tmp_path: Path) -> tuple[Engine, Path]:
    path = tmp_path / "store.db"
    return connect(f"sqlite:///{path}"), path


def test_the_indexes_are_the_ones_a_store_is_made_with() -> None:
    assert DEFERRED == [
        "ix_release_entry_resource",
        "ix_resource_index_lookup",
        "ix_resource_index_resource",
        "ix_resource_type_updated_pk",
        "ix_resource_updated_pk",
        "ix_search_index_resource",
    ]


def test_a_first_import_drops_them_while_it_writes_and_ends_with_all_of_them(
    store: tuple[Engine, Path],
) -> None:
    engine, path = store
    made = _indexes(path)
    assert set(DEFERRED) <= set(made)
    with ReleaseBuilder(engine, "sector", "full", "sector", "acme", "Acme") as builder:
        for n in range(2001):  # one batch and then some
            _put(builder, n)
        assert builder._deferred is not None and {str(i.name) for i in builder._deferred} == set(DEFERRED)
        release = builder.finish(None, {})
    assert release == 1
    assert _indexes(path) == made
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM resource").fetchone() == (2001,)
        assert db.execute("SELECT count(*) FROM release_entry").fetchone() == (2001,)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # a search reads through the lookup index again
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT resource_pk FROM resource_index WHERE param = ? AND value = ?",
            ("Basic.code", "x"),
        ).fetchall()
    assert "ix_resource_index_lookup" in str(plan)


def test_a_first_import_that_fails_after_the_drop_leaves_every_index(store: tuple[Engine, Path]) -> None:
    engine, path = store
    made = _indexes(path)
    with (
        pytest.raises(RuntimeError, match="broken delivery"),
        ReleaseBuilder(engine, "sector", "full", "sector", "acme", "Acme") as builder,
    ):
        for n in range(2500):
            _put(builder, n)
        assert builder._deferred  # dropped in the open transaction
        raise RuntimeError("broken delivery")
    assert _indexes(path) == made
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM resource").fetchone() == (0,)
        assert db.execute("SELECT status FROM release").fetchall() == [("failed",)]


def test_a_dry_run_and_an_import_into_a_store_with_versions_keep_their_indexes(
    store: tuple[Engine, Path],
) -> None:
    engine, path = store
    made = _indexes(path)
    with ReleaseBuilder(engine, "sector", "full", "sector", "acme", "Acme", dry_run=True) as builder:
        for n in range(2001):
            _put(builder, n)
        assert builder._deferred is None
        assert builder.finish(None, {}) is None
    with ReleaseBuilder(engine, "sector", "full", "sector", "acme", "Acme") as builder:
        _put(builder, 1)
        builder.finish(None, {})
    with ReleaseBuilder(engine, "sector", "full", "sector", "acme", "Acme") as builder:
        for n in range(2001):
            _put(builder, n)
        assert builder._deferred is None  # the store holds versions: indexes kept row by row
        assert builder.finish(None, {}) == 2  # the dry run keeps no release
    assert _indexes(path) == made
