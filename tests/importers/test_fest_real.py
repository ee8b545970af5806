"""The real 2017 FEST extract imports with exactly its counts, on SQLite and PostgreSQL."""

from __future__ import annotations

import orjson
import pytest

from grunndata.errors import DeliveryError
from grunndata.importers.fest import import_fest
from grunndata.m30 import FestEntry
from grunndata.m30.records import child, child_text
from grunndata.store import list_releases, read_active, served_counts
from tests.conftest import REAL_FEST, REAL_FEST_AS_PUBLISHED, REAL_FEST_COUNTS, require
from tests.deliveries import expiry, real_entries, write

EXPECTED = REAL_FEST_COUNTS


@pytest.mark.parametrize("path", [REAL_FEST, REAL_FEST_AS_PUBLISHED], ids=["repaired", "as-published"])
def test_real_extract_imports_with_exact_counts(engine, path):
    result = import_fest(engine, require(path))
    assert {name: c["entries"] for name, c in result.catalogues.items()} == EXPECTED
    assert all(c["new"] == c["entries"] for c in result.catalogues.values())
    assert result.kinds["VirkestoffMedStyrke"] == 55
    assert result.kinds["Virkestoff"] == 71
    assert result.hentet_dato == "2017-04-12T18:26:27.336Z"
    assert result.warnings == []
    fhir = {
        "MedicinalProductDefinition": 78,  # 75 brands and 3 LegemiddelVirkestoff
        "ManufacturedItemDefinition": 75,
        "AdministrableProductDefinition": 75,
        "Ingredient": 139,
        "PackagedProductDefinition": 107,
        "SubstanceDefinition": 71,
        "ClinicalUseDefinition": 25,
        "Basic": 67,  # Refusjon, Vilkar, VarselSlv, Byttegruppe entries
        "RegulatedAuthorization": 75,  # each brand's holder (its Produsent)
    }
    assert {t: c["new"] for t, c in result.resources.items()} == fhir
    assert served_counts(engine, result.release_id) == {f"FEST.{k}": v for k, v in EXPECTED.items()} | fhir
    [release] = list_releases(engine)
    assert (release.status, release.hentet_dato, release.kind) == (
        "active",
        "2017-04-12T18:26:27.336Z",
        "full",
    )
    assert release.counts["FEST.Legemiddelpakning"] == {
        "new": 107,
        "changed": 0,
        "unchanged": 0,
        "expired": 0,
    }


def test_certican_package_is_stored_whole(engine):
    import_fest(engine, require(REAL_FEST))
    data = read_active(engine, "FEST.Legemiddelpakning", "ID_CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A")
    entry = FestEntry.from_json(orjson.loads(data))
    assert (entry.oppf_id, entry.tidspunkt, entry.status) == (
        "ID_7B25F318-5F0E-4D95-BAD3-5722F6528424",
        "2017-01-01T00:54:56",
        "A",
    )
    pakning = entry.payload[0]
    assert pakning[0] == "Legemiddelpakning"
    assert child_text(pakning, "Varenr") == "014884"
    assert child_text(pakning, "Ean") == "7046260148840"
    assert child_text(pakning, "NavnFormStyrke") == "Certican Disperg tab 0,1 mg"
    assert child(pakning, "Atc")[1] == {"V": "L04AA18", "S": "2.16.578.1.12.4.1.1.7180", "DN": "Everolimus"}
    info = child(pakning, "Pakningsinfo")
    assert child_text(info, "RefLegemiddelMerkevare") == "ID_F2CEF840-A295-4A7A-9CCD-5873D846C3BD"
    assert child_text(info, "Pakningsstr") == "60"
    assert child(info, "DDD")[1] == {"V": "1.5", "U": "mg"}


def test_the_same_file_twice_changes_nothing(engine):
    first = import_fest(engine, require(REAL_FEST))
    second = import_fest(engine, REAL_FEST)
    assert second.changed_nothing
    assert all(
        c["unchanged"] == c["entries"] and c["new"] == c["changed"] == c["expired"] == 0
        for c in second.catalogues.values()
    )
    assert [(r.id, r.status) for r in list_releases(engine)] == [(first.release_id, "active")]


def test_the_as_published_extract_is_the_same_content(engine):
    import_fest(engine, require(REAL_FEST))
    again = import_fest(engine, require(REAL_FEST_AS_PUBLISHED))
    assert again.changed_nothing


def test_dry_run_checks_and_writes_nothing(engine):
    result = import_fest(engine, require(REAL_FEST), dry_run=True)
    assert result.dry_run and result.release_id is None
    assert result.catalogues["Legemiddelpakning"]["new"] == 107
    assert list_releases(engine) == []


@pytest.mark.parametrize("expired_first", [True, False], ids=["U then A", "A then U"])
def test_an_oppf_id_both_expired_and_active_in_one_delivery_is_refused(engine, tmp_path, expired_first):
    """A change expires the old Oppf and brings a new one: the same Oppf Id both ways contradicts itself."""
    hentet, entries = real_entries(require(REAL_FEST))
    import_fest(engine, require(REAL_FEST))
    package = next(e for e in entries if e.catalogue == "Legemiddelpakning")
    pair = [expiry(package), package] if expired_first else [package, expiry(package)]
    delivery = write(tmp_path / "both.xml", "2017-05-01T00:00:00", pair)
    with pytest.raises(DeliveryError) as refused:
        import_fest(engine, delivery, incremental=True, force=True)
    assert str(refused.value).startswith(
        f"the Oppf Id {package.oppf_id} is both expired (Status U) and delivered active in this delivery; "
        "a changed entry comes with a new Oppf Id (Legemiddelpakning, Id "
    )
    assert [r.status for r in list_releases(engine)] == ["active", "failed"]  # the first still served
