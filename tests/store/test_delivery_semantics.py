"""Full and incremental deliveries, versions, guards and rollback, on SQLite and PostgreSQL."""

from __future__ import annotations

import orjson
import pytest

from grunndata.errors import DeliveryError, StoreError
from grunndata.importers.fest import import_fest
from grunndata.m30 import FestEntry
from grunndata.m30.records import child
from grunndata.store import list_releases, read_active, rollback, served_counts
from tests.conftest import REAL_FEST, require
from tests.deliveries import expiry, real_entries, relisted, set_text, write

CERTICAN = "ID_CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A"


@pytest.fixture
def real():
    return real_entries(require(REAL_FEST))


def _package(entries, inner_id=CERTICAN):
    return next(e for e in entries if e.inner_id == inner_id)


def _new_price(payload):
    set_text(payload[0], "NavnFormStyrke", "Certican Disperg tab 0,1 mg (ny pakning)")


def _stored(engine, rtype, rid):
    data = read_active(engine, rtype, rid)
    return None if data is None else FestEntry.from_json(orjson.loads(data))


def _versions(engine, rid):
    from sqlalchemy import select

    from grunndata.store.models import Resource

    with engine.connect() as conn:
        return [
            v
            for (v,) in conn.execute(
                select(Resource.version).where(Resource.id == rid).order_by(Resource.version)
            )
        ]


def test_full_delivery_expires_what_it_no_longer_contains(engine, tmp_path, real):
    hentet, entries = real
    import_fest(engine, REAL_FEST)
    dropped = [e for e in entries if e.inner_id != CERTICAN]
    result = import_fest(engine, write(tmp_path / "next.xml", "2017-04-26T18:00:00Z", dropped))
    assert result.catalogues["Legemiddelpakning"] == {
        "new": 0,
        "changed": 0,
        "unchanged": 106,
        "expired": 1,
        "entries": 106,
    }
    assert _stored(engine, "FEST.Legemiddelpakning", CERTICAN) is None
    assert served_counts(engine, result.release_id)["FEST.Legemiddelpakning"] == 106
    assert [r.status for r in list_releases(engine)] == ["superseded", "active"]
    assert list_releases(engine)[1].hentet_dato == "2017-04-26T18:00:00Z"


def test_a_version_rises_only_when_content_changes(engine, tmp_path, real):
    hentet, entries = real
    import_fest(engine, REAL_FEST)
    changed = [relisted(e, "ID_NEW-OPPF-0001", _new_price) if e.inner_id == CERTICAN else e for e in entries]
    result = import_fest(engine, write(tmp_path / "next.xml", "2017-04-26T18:00:00Z", changed))
    assert result.catalogues["Legemiddelpakning"]["changed"] == 1
    assert result.catalogues["Legemiddelpakning"]["unchanged"] == 106
    assert _versions(engine, CERTICAN) == [1, 2]
    assert _versions(engine, "ID_F2CEF840-A295-4A7A-9CCD-5873D846C3BD") == [1]  # the brand did not change
    stored = _stored(engine, "FEST.Legemiddelpakning", CERTICAN)
    assert stored.oppf_id == "ID_NEW-OPPF-0001"
    assert child(stored.payload[0], "NavnFormStyrke")[2] == "Certican Disperg tab 0,1 mg (ny pakning)"


def test_incremental_delivery_expires_status_u_and_replaces_changes(engine, tmp_path, real):
    hentet, entries = real
    import_fest(engine, REAL_FEST)
    certican = _package(entries)
    gone = next(e for e in entries if e.catalogue == "Interaksjon")
    delivery = [expiry(certican), relisted(certican, "ID_NEW-OPPF-0002", _new_price), expiry(gone)]
    delivery.sort(
        key=lambda e: ["LegemiddelMerkevare", "Legemiddelpakning", "Interaksjon"].index(e.catalogue)
    )
    result = import_fest(
        engine, write(tmp_path / "inc.xml", "2017-04-13T18:00:00Z", delivery), incremental=True
    )
    assert result.catalogues["Legemiddelpakning"]["changed"] == 1
    assert result.catalogues["Interaksjon"]["expired"] == 1
    assert _stored(engine, "FEST.Legemiddelpakning", CERTICAN).oppf_id == "ID_NEW-OPPF-0002"
    assert _stored(engine, "FEST.Interaksjon", gone.key) is None
    counts = served_counts(engine, result.release_id)
    assert counts["FEST.Legemiddelpakning"] == 107 and counts["FEST.Interaksjon"] == 24
    assert counts["FEST.LegemiddelMerkevare"] == 75  # untouched catalogues stay served


def test_a_status_u_entry_in_a_full_delivery_is_refused(engine, tmp_path, real):
    hentet, entries = real
    first = import_fest(engine, REAL_FEST)
    bad = [expiry(e) if e.inner_id == CERTICAN else e for e in entries]
    with pytest.raises(DeliveryError, match="full delivery holds only active"):
        import_fest(engine, write(tmp_path / "bad.xml", "2017-04-26T18:00:00Z", bad))
    assert [(r.id, r.status) for r in list_releases(engine)][0] == (first.release_id, "active")
    assert _stored(engine, "FEST.Legemiddelpakning", CERTICAN) is not None


def test_a_full_delivery_30_percent_smaller_is_refused_unless_forced(engine, tmp_path, real):
    hentet, entries = real
    first = import_fest(engine, REAL_FEST)
    packages = [e for e in entries if e.catalogue == "Legemiddelpakning"]
    drop = {e.key for e in packages[: int(len(packages) * 0.3)]}  # 32 of 107
    # keep references resolvable: drop only packages, nothing points at them in this extract
    smaller = write(tmp_path / "small.xml", "2017-04-26T18:00:00Z", [e for e in entries if e.key not in drop])
    with pytest.raises(
        DeliveryError, match=r"expire 30% of the active Legemiddelpakning entries \(32 of 107\)"
    ):
        import_fest(engine, smaller)
    releases = list_releases(engine)
    assert [(r.id, r.status) for r in releases] == [
        (first.release_id, "active"),
        (first.release_id + 1, "failed"),
    ]
    assert "expire 30%" in releases[1].message
    assert served_counts(engine, first.release_id)["FEST.Legemiddelpakning"] == 107
    forced = import_fest(engine, smaller, force=True)
    assert served_counts(engine, forced.release_id)["FEST.Legemiddelpakning"] == 75


def test_rollback_serves_the_earlier_release_again(engine, tmp_path, real):
    hentet, entries = real
    first = import_fest(engine, REAL_FEST)
    changed = [relisted(e, "ID_NEW-OPPF-0003", _new_price) if e.inner_id == CERTICAN else e for e in entries]
    import_fest(engine, write(tmp_path / "next.xml", "2017-04-26T18:00:00Z", changed))
    assert _stored(engine, "FEST.Legemiddelpakning", CERTICAN).oppf_id == "ID_NEW-OPPF-0003"
    back = rollback(engine, first.release_id)
    # a release of its own, serving the first one's data: the first keeps its status and activation
    assert [(r.id, r.status, r.kind) for r in list_releases(engine)] == [
        (first.release_id, "superseded", "full"),
        (first.release_id + 1, "rolled-back", "full"),
        (back.id, "active", "rollback"),
    ]
    assert (back.based_on, back.hentet_dato, back.report) == (first.release_id + 1, hentet, {"restores": 1})
    assert back.counts["FEST.Legemiddelpakning"] == {"new": 0, "changed": 1, "unchanged": 106, "expired": 0}
    assert served_counts(engine, back.id) == served_counts(engine, first.release_id)
    assert (
        _stored(engine, "FEST.Legemiddelpakning", CERTICAN).oppf_id
        == "ID_7B25F318-5F0E-4D95-BAD3-5722F6528424"
    )
    # what it serves again is a new version, so the history says the resource changed back
    assert _versions(engine, CERTICAN) == [1, 2, 3]
    with pytest.raises(StoreError, match="release 1 serves what release 3, the active one, serves; there"):
        rollback(engine, first.release_id)
    # the next import builds on the release now active; the content the rolled-back release
    # served is a new version, so the history says the resource changed again
    third = import_fest(engine, write(tmp_path / "again.xml", "2017-04-27T18:00:00Z", changed))
    assert third.based_on == back.id
    assert third.catalogues["Legemiddelpakning"]["changed"] == 1
    assert _versions(engine, CERTICAN) == [1, 2, 3, 4]
    with pytest.raises(StoreError, match="already the active one"):
        rollback(engine, third.release_id)
    with pytest.raises(StoreError, match="no release 999"):
        rollback(engine, 999)


def test_a_failed_release_cannot_be_rolled_back_to(engine, tmp_path, real):
    hentet, entries = real
    import_fest(engine, REAL_FEST)
    (tmp_path / "notes.xml").write_bytes(b"not xml")
    with pytest.raises(DeliveryError):
        import_fest(engine, tmp_path / "notes.xml")
    failed = list_releases(engine)[-1]
    assert failed.status == "failed"
    with pytest.raises(StoreError, match="holds no data"):
        rollback(engine, failed.id)
