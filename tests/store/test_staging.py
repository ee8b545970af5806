"""Stage, review, activate: a follow-up delivery imported with `stage=True` is written and checked
but served to no one; its diff against the active release lists exactly what the sample generator
changed; `activate` makes it the active release as an import's end would, and `discard` drops it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from grunndata.errors import ReleaseConflict
from grunndata.importers.fest import import_fest
from grunndata.importers.run import activate_staged
from grunndata.sample import derive_followup, generate_delivery
from grunndata.store import (
    Snapshot,
    connect,
    current_snapshot,
    discard,
    ever_served,
    history,
    instant,
    list_releases,
    newest_release,
    read,
    snapshot_exists,
    vread,
)
from grunndata.store.diff import ElementChange, element_changes, json_changes, release_diff
from grunndata.store.exports import active_national
from grunndata.store.models import REL, M, R, T
from grunndata.store.subscriptions import pending_releases
from tests.conftest import fresh_pg_database

SCALE = 0.02  # ~1,400 FEST entries: a follow-up changes a few dozen of them


@dataclass(frozen=True)
class Deliveries:
    base: Path
    followup: Path
    stats: dict[str, dict[str, int]]  # what the generator says it changed, per catalogue


class Everyone:
    """A client entitled to every line: what it cannot see, no client sees."""

    sector = True
    supplementary = frozenset({"*"})


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory: pytest.TempPathFactory) -> Deliveries:
    folder = tmp_path_factory.mktemp("staging")
    base, followup = folder / "base.xml", folder / "followup.xml"
    generate_delivery(base, scale=SCALE, seed=7)
    return Deliveries(base, followup, derive_followup(base, followup, seed=3))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def staged(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, deliveries: Deliveries
) -> Iterator[Engine]:
    """A store serving the base (release 1) with the follow-up staged beside it (release 2); read only."""

    def fill(url: str) -> Engine:
        engine = connect(url)
        assert import_fest(engine, deliveries.base).release_id == 1
        result = import_fest(engine, deliveries.followup, stage=True)
        assert (result.release_id, result.staged) == (2, True)
        return engine

    if request.param == "sqlite":
        engine = fill(f"sqlite:///{tmp_path_factory.mktemp('staged') / 'store.db'}")
        yield engine
        engine.dispose()
        return
    with fresh_pg_database() as url:
        engine = fill(url)
        yield engine
        engine.dispose()


def expected_counts(stats: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The generator's counts of the catalogues it changed anything in (a diff lists no others)."""
    return {cat: c for cat, c in sorted(stats.items()) if any(c.values())}


def test_the_diff_of_the_staged_follow_up_lists_exactly_the_generators_counts(
    staged: Engine, deliveries: Deliveries
) -> None:
    with staged.connect() as conn:
        diff = release_diff(conn, 1, 2)
    assert diff.counts()["catalogues"] == expected_counts(deliveries.stats)
    assert sum(diff.counts()["catalogues"]["Legemiddelpakning"].values()) > 0
    # the FHIR made from the entries changed with them: a new package is a new PackagedProductDefinition
    packages = diff.counts()["resources"]["PackagedProductDefinition"]
    assert packages["new"] == deliveries.stats["Legemiddelpakning"]["new"]
    assert packages["expired"] == deliveries.stats["Legemiddelpakning"]["expired"]
    assert (diff.tier, diff.owner) == ("national", "dmp")


def at(value: Any, path: str) -> Any:
    """The value at an element path of store/diff.py (`a.b[2].c`) in parsed JSON, None when absent."""
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            index = int(part[1:-1])
            value = value[index] if isinstance(value, list) and index < len(value) else None
        else:
            value = value.get(part) if isinstance(value, dict) else None
    return value


def bodies(engine: Engine, release: int, rtype: str, rid: str) -> Any:
    with engine.connect() as conn:
        data = conn.execute(
            select(R.c.data)
            .select_from(R.join(M, M.c.resource_pk == R.c.pk))
            .where(M.c.release_id == release, R.c.type == rtype, R.c.id == rid)
        ).scalar_one()
    return orjson.loads(data)


def test_a_changed_entry_shows_its_changed_elements_only(staged: Engine) -> None:
    with staged.connect() as conn:
        diff = release_diff(conn, 1, 2)
        changed = [(e.type, e.id) for e in diff.entries if e.change == "changed"]
        elements = element_changes(conn, 1, 2, changed)
    assert len(changed) == len(elements) > 10
    for (rtype, rid), found in elements.items():
        assert found, f"{rtype}/{rid} is listed as changed but no element differs"
        assert len({c.path for c in found}) == len(found)
        assert all(c.old != c.new for c in found)
        if rtype.startswith("FEST."):  # a re-listed entry: new Oppf Id and Tidspunkt, and what changed
            assert [c.path for c in found[:2]] == ["Id", "Tidspunkt"]
            assert len(found) > 2
            continue
        old, new = bodies(staged, 1, rtype, rid), bodies(staged, 2, rtype, rid)
        for c in found:  # each change is true of the two bodies at its path (an inserted list item's
            # index is in the new list, a removed one's in the old)
            assert c.old is None or at(old, c.path) == c.old, (rtype, rid, c)
            assert c.new is None or at(new, c.path) == c.new, (rtype, rid, c)


def test_element_changes_align_lists_and_name_absent_values_none() -> None:
    old = {"name": [{"productName": "A"}, {"productName": "B"}], "status": "active", "gone": 1}
    new = {"name": [{"productName": "New"}, {"productName": "A"}, {"productName": "B2"}], "status": "active"}
    assert list(json_changes(old, new)) == [
        ElementChange("name[0]", None, {"productName": "New"}),  # inserted before A, not A changed
        ElementChange("name[2].productName", "B", "B2"),
        ElementChange("gone", 1, None),
    ]


def test_no_client_sees_the_staged_release(staged: Engine) -> None:
    with staged.connect() as conn:
        diff = release_diff(conn, 1, 2)
        new = next(e for e in diff.entries if e.type == "PackagedProductDefinition" and e.change == "new")
        changed = next(
            e for e in diff.entries if e.type == "PackagedProductDefinition" and e.change == "changed"
        )
        snapshot = current_snapshot(conn)
        assert snapshot == Snapshot((1,))
        assert read(conn, snapshot, new.type, new.id) is None
        assert read(conn, snapshot, changed.type, changed.id).version == changed.version - 1  # type: ignore[union-attr]
        # versions read outside a snapshot: vread, 410 Gone, history, the newest release a link names
        assert vread(conn, changed.type, changed.id, changed.version, Everyone()) is None
        assert vread(conn, changed.type, changed.id, changed.version - 1, Everyone()) is not None
        assert not ever_served(conn, new.type, new.id, Everyone())
        assert newest_release(conn) == 1
        items, _ = history(
            conn, rtype=None, rid=None, since=None, upto_release=2, count=5000, offset=0, entitled=Everyone()
        )
        assert items and all(i.version is None or i.version.version == 1 for i in items)
        assert not [i for i in items if i.version is None]  # no removal of the staged release's
        # a _snapshot naming it, the M30 export's releases, the subscriptions' notifier
        assert not snapshot_exists(conn, Snapshot((2,)))
        assert [r.id for r in active_national(conn)] == [1]
        assert [p.release_id for p in pending_releases(conn)] == [1]
    assert [(r.id, r.status, r.activated_at is None) for r in list_releases(staged)] == [
        (1, "active", False),
        (2, "staged", True),
    ]


def count(engine: Engine, table: Any, release: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(table).where(table.c.release_id == release)
            ).scalar_one()
        )


def test_activate_serves_the_staged_release_and_a_stale_one_is_refused_then_discarded(
    engine: Engine, deliveries: Deliveries
) -> None:
    import_fest(engine, deliveries.base)
    assert import_fest(engine, deliveries.followup, stage=True).release_id == 2
    assert import_fest(engine, deliveries.followup, stage=True).release_id == 3  # a second review copy
    with engine.connect() as conn:
        new = next(e for e in release_diff(conn, 1, 2).entries if e.change == "new" and not e.catalogue)
    row = activate_staged(engine, 2)
    assert (row.status, row.based_on, row.activated_at is not None) == ("active", 1, True)
    with engine.connect() as conn:
        assert current_snapshot(conn) == Snapshot((2,))
        served = read(conn, Snapshot((2,)), new.type, new.id)
        assert served is not None and instant(served.last_updated) == instant(row.activated_at)
        assert [p.release_id for p in pending_releases(conn)] == [2]  # the notifier's next release
        statuses = dict(conn.execute(select(REL.c.id, REL.c.status)).all())
    assert statuses == {1: "superseded", 2: "active", 3: "staged"}
    with pytest.raises(ReleaseConflict) as refused:
        activate_staged(engine, 3)
    assert str(refused.value) == (
        "release 3 was staged against release 1, but release 2 is active now; what it changes was "
        "reviewed against a release no longer served, so it is not activated: import the delivery "
        "again with --stage (or discard release 3)"
    )
    assert count(engine, R, 3) > 0 and count(engine, M, 3) > 0 and count(engine, T, 3) > 0
    assert discard(engine, 3).status == "discarded"
    assert (count(engine, R, 3), count(engine, M, 3), count(engine, T, 3)) == (0, 0, 0)
    with pytest.raises(
        ReleaseConflict, match="^release 3 is discarded, not staged; only a staged release can be activated$"
    ):
        activate_staged(engine, 3)
    with pytest.raises(
        ReleaseConflict, match="^release 2 is active, not staged; only a staged release can be discarded$"
    ):
        discard(engine, 2)
    with engine.connect() as conn:
        assert current_snapshot(conn) == Snapshot((2,))
