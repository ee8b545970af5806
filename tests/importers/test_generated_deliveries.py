"""Generated deliveries and their follow-ups import with exactly the changes the generator made."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from grunndata.importers.fest import import_fest
from grunndata.sample import derive_followup, generate_delivery
from grunndata.store import connect
from grunndata.store.models import Release, ReleaseEntry, Resource


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gen")
    base, full, inc = folder / "base.xml.gz", folder / "full.xml", folder / "inc.zip"
    made = generate_delivery(base, scale=0.03, seed=11)
    full_changes = derive_followup(base, full, seed=12)
    inc_changes = derive_followup(base, inc, seed=12, incremental=True)
    return base, full, inc, made, full_changes, inc_changes


def served(engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(Resource.type, Resource.id, Resource.content_hash)
                .join(ReleaseEntry, ReleaseEntry.resource_pk == Resource.pk)
                .join(Release, Release.id == ReleaseEntry.release_id)
                .where(Release.status == "active")
                .order_by(Resource.type, Resource.id)
            )
        )


def test_a_generated_delivery_imports_all_15_catalogues_without_warnings(engine, generated):
    base, _, _, made, _, _ = generated
    result = import_fest(engine, base)
    assert {name: c["entries"] for name, c in result.catalogues.items()} == made
    assert len(result.catalogues) == 15
    assert result.warnings == []


def test_a_full_follow_up_reports_exactly_the_generated_changes(engine, generated):
    base, full, _, _, changes, _ = generated
    import_fest(engine, base)
    result = import_fest(engine, full)
    for name, c in changes.items():
        got = result.catalogues.get(name, {"new": 0, "changed": 0, "expired": 0})
        assert (got["new"], got["changed"], got["expired"]) == (c["new"], c["changed"], c["expired"]), name
    assert result.warnings == []


def test_incremental_and_full_follow_ups_serve_the_same_release(store_url, tmp_path, generated):
    base, full, inc, _, full_changes, inc_changes = generated
    assert inc_changes == full_changes
    via_full = connect(store_url)
    import_fest(via_full, base)
    import_fest(via_full, full)
    via_incremental = connect(f"sqlite:///{tmp_path / 'incremental.db'}")
    import_fest(via_incremental, base)
    result = import_fest(via_incremental, inc, incremental=True)
    for name, c in inc_changes.items():
        got = result.catalogues.get(name, {"new": 0, "changed": 0, "expired": 0})
        assert (got["new"], got["changed"], got["expired"]) == (c["new"], c["changed"], c["expired"]), name
    assert served(via_incremental) == served(via_full)
    via_full.dispose()
    via_incremental.dispose()
