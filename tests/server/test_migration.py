"""The migration page: per national release, how much of FEST has an IDMP counterpart, and where not."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.importers.fest import import_fest
from grunndata.importers.safest import import_safest
from grunndata.server import create_app
from tests.conftest import REAL_FEST, require
from tests.importers.test_safest import PLANTED_DISAGREEMENTS

PLANTED = Path(__file__).parents[1] / "importers" / "safest_data" / "planted.json"


def test_the_migration_page_shows_each_release_its_coverage_and_disagreements(engine: Engine) -> None:
    import_fest(engine, require(REAL_FEST))
    import_safest(engine, PLANTED)
    with TestClient(create_app(engine)) as client:
        report = client.get("/migration", headers={"Accept": "application/json"}).json()
        page = client.get("/migration")
    newest, first = report["releases"]
    assert (newest["id"], newest["source"], newest["status"]) == (2, "safest", "active")
    assert (first["id"], first["source"], first["status"]) == (1, "fest", "superseded")
    assert first["share_with_idmp"] == 0.0 and first["disagreement_count"] == 0
    assert first["coverage"]["PackagedProductDefinition"] == {"fest": 107, "with_idmp": 0, "share": 0.0}
    assert newest["coverage"]["PackagedProductDefinition"] == {"fest": 107, "with_idmp": 2, "share": 0.0187}
    assert newest["coverage"]["MedicinalProductDefinition"] == {"fest": 78, "with_idmp": 2, "share": 0.0256}
    assert newest["idmp_only"] == {"MedicinalProductDefinition": 1}
    assert newest["disagreement_count"] == len(PLANTED_DISAGREEMENTS) == 18
    assert sorted(
        (d["resource"], d["element"], d["fest"], d["safest"]) for d in newest["disagreements"]
    ) == sorted(PLANTED_DISAGREEMENTS)
    assert report["compared"]["Ingredient"] == ["substance", "strength", "strength-denominator"]
    assert report["compared"]["PackagedProductDefinition"][:3] == ["name", "gtin", "varenr"]
    refusjon = next(r for r in report["not_in_idmp"] if r["catalogue"] == "Refusjon")
    assert refusjon["extension"] > 0
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<strong>18 disagreements</strong>" in page.text
    assert "Certican 0,1 mg dispergerbar tablett" in page.text
    assert "<td>gtin</td><td>07046260236080</td><td>07046260236097</td>" in page.text
    assert "<td>marketing-dates</td><td>start 2004-07-15</td><td>start 2004-08-01</td>" in page.text
    # what SAFEST overwrote, as JSON, escaped
    assert (
        "<td>identifier</td><td>{&quot;system&quot;:&quot;https://grunndata.no/fhir/NamingSystem/"
        in page.text
    )
    assert "Ingredient: substance, strength, strength-denominator" in page.text
    assert "width=device-width" in page.text


def test_an_empty_store_has_a_migration_page_too(engine: Engine) -> None:
    with TestClient(create_app(engine)) as client:
        assert client.get("/migration", headers={"Accept": "application/json"}).json()["releases"] == []
        assert "No national release has been imported yet." in client.get("/migration").text
