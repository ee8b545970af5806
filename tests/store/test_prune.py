"""A store that keeps what it should: 13 releases of generated deliveries pruned to 3 keep serving
reads, searches, paging and the history within the kept range, answer 410 before it, can still be
rolled back, and shrink by exactly the rows only the pruned releases held; on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, insert, select, text, update
from sqlalchemy.engine import Engine

from grunndata.importers.fest import import_fest
from grunndata.sample import derive_followup, generate_delivery
from grunndata.server import create_app
from grunndata.store import connect, prune, rollback, vacuum
from grunndata.store.models import BT, NL, REL, SUB, B, M, R
from grunndata.store.prune import VACUUMED
from grunndata.store.read import instant
from tests.conftest import PG_ADMIN_URL, fresh_pg_database

TABLES = (
    "release_entry",
    "content_filter",
    "expiry_notice",
    "search_index",
    "resource_index",
    "resource_r4",
    "tombstone",
    "resource",
)
PPD = "PackagedProductDefinition"


@pytest.fixture(scope="session")
def deliveries(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A small generated full delivery and 12 full follow-ups, each derived from the one before."""
    folder = tmp_path_factory.mktemp("prune-deliveries")
    paths = [folder / "d0.xml"]
    generate_delivery(paths[0], scale=0.005, seed=3)
    for n in range(1, 13):
        paths.append(folder / f"d{n}.xml")
        derive_followup(paths[n - 1], paths[n], seed=n)
    return paths


def _build(url: str, deliveries: list[Path]) -> None:
    engine = connect(url)
    for path in deliveries:
        assert import_fest(engine, path).release_id is not None
    engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, deliveries: list[Path]
) -> Iterator[str]:
    """A store with 13 releases, built once per database; tests prune copies of it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('prune') / 'template.db'}"
        _build(url, deliveries)
        yield url
        return
    with fresh_pg_database() as url:
        _build(url, deliveries)
        yield url


@pytest.fixture
def store(template: str, tmp_path: Path) -> Iterator[Engine]:
    """A copy of the 13-release store of this test's own."""
    if template.startswith("sqlite"):
        target = tmp_path / "store.db"
        shutil.copy(template.removeprefix("sqlite:///"), target)
        engine = connect(f"sqlite:///{target}")
        yield engine
        engine.dispose()
        return
    name = "grunndata_test_" + uuid.uuid4().hex[:10]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template.rsplit("/", 1)[1]}"'))
    engine = connect(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() or 0) for t in TABLES}


def _size(engine: Engine) -> int:
    """The store's size on disk after VACUUM: the SQLite file; on PostgreSQL the tables a prune
    shrinks and VACUUM FULL rewrites, with their indexes and TOAST (pg_database_size also counts the
    system catalogues, and the release table's rows updated by a prune leave dead tuples until
    autovacuum comes: either moved by more than a prune of this small store frees)."""
    if engine.dialect.name == "postgresql":
        _until_no_older_snapshot(engine)
    vacuum(engine)
    if engine.dialect.name == "sqlite":
        return Path(str(engine.url.database)).stat().st_size
    with engine.connect() as conn:
        sizes = conn.execute(
            text("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c WHERE c.relname = ANY(:names)"),
            {"names": list(VACUUMED)},
        )
        return int(sizes.scalar() or 0)


def _until_no_older_snapshot(engine: Engine, seconds: float = 20.0) -> None:
    """Until no other session of this database holds a snapshot (an autovacuum ANALYZE on a busy
    machine, say): rows deleted after it was taken are still visible to it, so VACUUM FULL keeps
    them and the store does not shrink (seen once with two test workers on a loaded machine)."""
    deadline = time.monotonic() + seconds
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            holders = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL"
                )
            ).scalar()
            conn.rollback()  # no snapshot of our own between two looks
            if not holders:
                return
            time.sleep(0.2)


def _newest(engine: Engine) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(select(R.c.type, R.c.id, func.max(R.c.version)).group_by(R.c.type, R.c.id))
        return {(t, i): v for t, i, v in rows}


def _activated(engine: Engine) -> dict[int, datetime]:
    with engine.connect() as conn:
        rows = conn.execute(select(REL.c.id, REL.c.activated_at).order_by(REL.c.id))
        return {i: at.replace(tzinfo=UTC) for i, at in rows}


def _all_pages(client: TestClient, path: str) -> tuple[list[tuple[str, str]], int]:
    """Every entry of a searchset or history, following its next links; and the pages read."""
    found: list[tuple[str, str]] = []
    pages = 0
    url: str | None = path
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        for e in body.get("entry", []):
            res = e.get("resource") or {}
            found.append(
                (
                    e.get("fullUrl", "").rsplit("/", 2)[-2] + "/" + res.get("id", ""),
                    e.get("request", {}).get("method", "") + res.get("meta", {}).get("versionId", ""),
                )
            )
        url = next((link["url"] for link in body.get("link", []) if link["relation"] == "next"), None)
    return found, pages


def _since(at: datetime) -> str:
    return instant(at).replace("+", "%2B")


def test_13_releases_pruned_to_3_keep_serving_answer_410_before_and_shrink(store: Engine) -> None:
    activated = _activated(store)
    assert list(activated) == list(range(1, 14))
    with store.connect() as conn:
        manifests = dict(conn.execute(select(M.c.release_id, func.count()).group_by(M.c.release_id)).all())
    newest = _newest(store)
    with store.connect() as conn:  # a version only the releases to be pruned served
        later = select(M.c.resource_pk).where(M.c.release_id >= 11)
        other = R.alias("other")
        newer = select(func.max(other.c.version)).where(other.c.type == R.c.type, other.c.id == R.c.id)
        superseded = conn.execute(
            select(R.c.type, R.c.id, R.c.version)
            .where(R.c.type == PPD, R.c.pk.not_in(later), R.c.version < newer.scalar_subquery())
            .order_by(R.c.pk)
            .limit(1)
        ).one()
    before, size_before = _rows(store), _size(store)
    with TestClient(create_app(store, warm=False)) as client:
        searched, _ = _all_pages(client, f"/fhir/{PPD}?_count=7")
        some = searched[0][0].split("/")[1]
        read = client.get(f"/fhir/{PPD}/{some}").json()
        kept_history, _ = _all_pages(client, f"/fhir/_history?_since={_since(activated[11])}&_count=9")
        old_link = f"/fhir/{PPD}?_count=7&_snapshot=9"
        assert client.get(old_link).status_code == 200

    result = prune(store, keep=3, keep_rollback=2, grace=timedelta(0))

    assert result.pruned == list(range(1, 11))
    assert result.kept == {11: "a rollback may return to it", 12: "a rollback may return to it", 13: "active"}
    after = _rows(store)
    # the newest version of every resource stays, of those that expired long ago too
    assert _newest(store) == newest
    assert {t: before[t] - after[t] for t in TABLES} == {t: result.rows[t] for t in TABLES}
    # every manifest row of the pruned releases went, none of the kept ones
    assert result.rows["release_entry"] == sum(manifests[r] for r in range(1, 11))
    assert after["release_entry"] == manifests[11] + manifests[12] + manifests[13]
    assert result.rows == {
        "release_entry": 9302,
        "content_filter": 4,
        "expiry_notice": 0,
        "search_index": 296,
        "resource_index": 539,  # 3 of them the substitution-group parameter's (a package in a Byttegruppe)
        "resource_r4": 53,
        "tombstone": 0,
        "resource": 134,
        "bulk_export": 0,
        "bulk_export_ticket": 0,
    }
    with store.connect() as conn:
        statuses = dict(conn.execute(select(REL.c.id, REL.c.status)).all())
    assert statuses == {
        **dict.fromkeys(range(1, 11), "pruned"),
        11: "superseded",
        12: "superseded",
        13: "active",
    }
    size_after = _size(store)
    deadline = time.monotonic() + 90
    while size_after >= size_before and time.monotonic() < deadline:
        # PostgreSQL: a transaction elsewhere (two test workers on a busy machine) may still see
        # the deleted rows, and VACUUM FULL keeps them until it ends; measured again, not excused
        time.sleep(1)
        size_after = _size(store)
    print(
        f"\n{store.dialect.name}: {size_before:,} bytes before, {size_after:,} after pruning 10 of 13 releases"
    )
    assert size_after < size_before

    with TestClient(create_app(store, warm=False)) as client:
        assert _all_pages(client, f"/fhir/{PPD}?_count=7")[0] == searched  # searches and paging
        assert client.get(f"/fhir/{PPD}/{some}").json() == read
        # the history within the kept range is what it was, page by page
        assert (
            _all_pages(client, f"/fhir/_history?_since={_since(activated[11])}&_count=9")[0] == kept_history
        )
        gone = client.get(f"/fhir/_history?_since={_since(activated[11] - timedelta(milliseconds=1))}")
        assert gone.status_code == 410
        issue = gone.json()["issue"][0]
        assert issue["code"] == "expired"
        assert issue["diagnostics"] == (
            "_since reaches before the history this server keeps: it starts at release 11, served from "
            f"{instant(activated[11])} (older releases were pruned); read the data again (a search, or "
            "$export without _since) and follow the history from then"
        )
        assert client.get(f"/fhir/{PPD}/_history?_since=2020-01-01").status_code == 410
        export = client.get(
            f"/fhir/$export?_since={_since(activated[10])}", headers={"Prefer": "respond-async"}
        )  # an export since then cannot say what changed either
        assert export.status_code == 410
        assert "it starts at release 11" in export.json()["issue"][0]["diagnostics"]
        # a version only pruned releases served is gone; the resource itself is served
        assert client.get(f"/fhir/{PPD}/{superseded.id}/_history/{superseded.version}").status_code == 404
        assert client.get(f"/fhir/{PPD}/{superseded.id}").status_code in (200, 410)
        # a paging link made on a pruned release is gone
        assert client.get(old_link).status_code == 410
        # DMP's delta says where it starts now: the oldest release kept
        delta = client.get("/fhir-r4/delta?_count=1")
        assert delta.status_code == 200, delta.text
        assert delta.json()["meta"]["extension"][0]["valueInteger"] == 11
        assert client.get(f"/fhir-r4/delta?_since={_since(activated[3])}").status_code == 410

    back = rollback(store, 11)  # a rollback target is whole
    assert back.status == "active"
    with TestClient(create_app(store, warm=False)) as client:
        found, _ = _all_pages(client, f"/fhir/{PPD}?_count=50")
    with store.connect() as conn:
        served = conn.execute(
            select(func.count())
            .select_from(M.join(R, R.c.pk == M.c.resource_pk))
            .where(M.c.release_id == 11, R.c.type == PPD)
        ).scalar()
    assert len(found) == served


def test_what_a_prune_never_takes(store: Engine) -> None:
    """The active release and the rollback targets; releases superseded within the grace or
    --older-than; those a running export reads, or the notifier still counts from."""
    now = datetime.now(UTC)
    assert prune(store, keep=1, keep_rollback=3, grace=timedelta(hours=1)).pruned == []
    with store.begin() as conn:
        for n in range(1, 14):  # an import every 14 days, the last one today
            conn.execute(
                update(REL).where(REL.c.id == n).values(activated_at=now - timedelta(days=14 * (13 - n)))
            )
        conn.execute(
            insert(B).values(
                id="job", key="k", entitlement="a:0:", request="r", snapshot="4", types="", status="running",
                created_at=now, updated_at=now, output=[], deleted=[],
            )
        )  # fmt: skip
        conn.execute(insert(BT).values(id="t", job_id="job", request="r", created_at=now))
        conn.execute(
            insert(B).values(
                id="done", key="k2", entitlement="a:0:", request="r", snapshot="2", types="", status="done",
                created_at=now, updated_at=now, output=[], deleted=[],
            )
        )  # fmt: skip
        conn.execute(insert(BT).values(id="t2", job_id="done", request="r", created_at=now))
        conn.execute(  # a subscriber: the notifier counts changes for it
            insert(SUB).values(
                id="sub", owner="epj", status="active", topic="t", channel="rest-hook", created_at=now,
                updated_at=now, filters=[], resource={}, headers=[],
            )
        )  # fmt: skip
        conn.execute(
            insert(NL).values(
                tier="national", owner="dmp", release_id=6, activated_at=now - timedelta(days=14 * 7)
            )
        )
    dry = prune(store, older_than=timedelta(days=100), keep_rollback=1, grace=timedelta(days=1), dry_run=True)
    # 12 stopped being served today (grace), 11 14 days ago, ... 5 98 days ago (--older-than)
    assert dry.pruned == [1, 2, 3]
    assert dry.kept == {
        4: "a running bulk export reads it",
        5: "superseded less than --older-than ago",
        6: "the notifier counts the next release's changes from it",
        7: "the notifier has still to make its events",
        **{n: "the notifier has still to make its events" for n in range(8, 12)},
        12: "a rollback may return to it",
        13: "active",
    }
    assert dry.exports == ["done"] and dry.rows["bulk_export_ticket"] == 1
    assert _rows(store)["release_entry"] > 0 and dry.dry_run
    with store.connect() as conn:  # a dry run changes nothing
        assert (
            conn.execute(select(func.count()).select_from(REL).where(REL.c.status == "pruned")).scalar() == 0
        )
    done = prune(store, older_than=timedelta(days=100), keep_rollback=1, grace=timedelta(days=1))
    assert done.pruned == [1, 2, 3] and done.rows == dry.rows
    with store.connect() as conn:
        assert sorted(conn.execute(select(B.c.id)).scalars()) == ["job"]
    with pytest.raises(Exception, match="pruned and holds no data"):
        rollback(store, 3)


def test_prune_needs_to_be_told_what_to_keep(store: Engine) -> None:
    with pytest.raises(Exception, match="say what to keep"):
        prune(store)
    with pytest.raises(Exception, match="at least 1"):
        prune(store, keep=0)


def test_the_notifiers_mark_holds_nothing_while_no_subscription_listens(store: Engine) -> None:
    """With no subscription the notifier counts no changes (its marks only move on), so a lagging
    mark does not keep every release after it."""
    with store.begin() as conn:
        at = conn.execute(select(REL.c.activated_at).where(REL.c.id == 2)).scalar_one()
        conn.execute(insert(NL).values(tier="national", owner="dmp", release_id=2, activated_at=at))
    result = prune(store, keep=1, keep_rollback=0, grace=timedelta(0))
    assert result.pruned == list(range(1, 13)) and result.kept == {13: "active"}
