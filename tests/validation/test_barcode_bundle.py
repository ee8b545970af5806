"""A barcode search's answer is valid R5: the barcode-match extension where its definition allows it."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from grunndata.importers.fest import import_fest
from grunndata.importers.safest import import_safest
from grunndata.server import create_app
from grunndata.store import connect
from grunndata.validation import Definitions, Report, Validator
from tests.conftest import REAL_FEST, require

PLANTED = Path(__file__).parents[1] / "server" / "barcode_data" / "safest-three-levels.json"
MATCH = "https://grunndata.no/fhir/StructureDefinition/barcode-match"


def test_a_barcode_searchset_with_its_match_extensions_is_valid_r5(r5: Definitions, tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    import_fest(engine, require(REAL_FEST))
    import_safest(engine, PLANTED)
    with TestClient(create_app(engine)) as client:
        # a level code, the item's code and a FEST pack's GTIN: every kind of match in one answer
        query = "barcode=7046261999038,99001,7046260148840&_count=10"
        bundle = client.get(f"/fhir/PackagedProductDefinition?{query}").json()
    engine.dispose()
    matched = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    wheres = sorted(
        p["valueCode"]
        for e in matched
        for x in e["search"]["extension"]
        for p in x["extension"]
        if p["url"] == "where"
    )
    assert wheres == ["item", "package", "packaging", "packaging"]
    report = Report()
    Validator(r5).validate(bundle, "barcode search", report)
    assert [p.sentence() for p in report.problems] == []
    assert not [k for k in report.not_checked if MATCH in k]  # our definition was read, not skipped
