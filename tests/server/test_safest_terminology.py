"""The terminology SAFEST publishes joins the national line and the terminology operations.

DMP's six SAFEST CodeSystems, as published (R4 XML, ../shared/data/safest-r4/CodeSystem), come in
one delivery with a ValueSet (R5 JSON) over two of them and a FEST code system of ours, an R4
ConceptMap (with equivalence) from SAFEST's marketing status, and an R4 ConceptMap with the url and
version of our reviewed dose-form map, which replaces ours. The FEST code systems come from a
generated FEST delivery (the real extract has none), imported first.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from grunndata.importers.fest import import_fest
from grunndata.importers.safest import SafestResult, import_safest
from grunndata.sample import generate_delivery
from grunndata.server import create_app
from grunndata.store import connect
from grunndata.terminology.verification import unmarked
from grunndata.translators.safest.terminology import EQUIVALENCE_KEPT
from tests.conftest import SHARED, fresh_pg_database, require
from tests.server.test_terminology import matches, ok, result

CODE_SYSTEMS = SHARED / "data" / "safest-r4" / "CodeSystem"
NOMA = "http://legemiddelverket.no/fhir/CodeSystem/"
FORM = "urn:oid:2.16.578.1.12.4.1.1.7448"
EDQM = "http://standardterms.edqm.eu"
OUR_DOSE_FORM_MAP = "https://grunndata.no/fhir/ConceptMap/fest-legemiddelform-edqm-doseform"
STATUS_MAP = "https://example.dmp.no/fhir/ConceptMap/marketing-status"
STATUS = "https://example.org/fhir/CodeSystem/marketing-status"  # a made-up target system
VALUE_SET = "https://example.dmp.no/fhir/ValueSet/package-facts"

VALUE_SET_R5 = {
    "resourceType": "ValueSet",
    "id": "package-facts",
    "url": VALUE_SET,
    "version": "1.0.0",
    "name": "PackageFacts",
    "status": "draft",
    "compose": {
        "include": [
            {"system": NOMA + "PackageLevel"},
            {"system": FORM, "concept": [{"code": "53"}, {"code": "25"}]},
            {"system": NOMA + "MarketingStatus", "concept": [{"code": "5"}, {"code": "6"}]},
        ],
        "exclude": [{"system": NOMA + "PackageLevel", "concept": [{"code": "4"}]}],
    },
}
STATUS_MAP_R4 = {
    "resourceType": "ConceptMap",
    "id": "marketing-status",
    "url": STATUS_MAP,
    "version": "1",
    "status": "draft",
    "sourceUri": NOMA + "MarketingStatus",
    "group": [
        {
            "source": NOMA + "MarketingStatus",
            "sourceVersion": "1.0.0",
            "target": STATUS,
            "element": [
                {"code": "5", "target": [{"code": "marketed", "equivalence": "equal"}]},
                {"code": "6", "target": [{"code": "marketed", "equivalence": "wider"}]},
                {"code": "0", "target": [{"code": "not-marketed", "equivalence": "equivalent"}]},
                {"code": "10", "target": [{"equivalence": "unmatched"}]},
            ],
        }
    ],
}
DOSE_FORM_MAP_R4 = {  # the url and version of our reviewed map: it replaces ours
    "resourceType": "ConceptMap",
    "id": "dmp-legemiddelform-edqm",
    "url": OUR_DOSE_FORM_MAP,
    "version": "2",
    "status": "active",
    "group": [
        {
            "source": FORM,
            "target": EDQM,
            "element": [{"code": "53", "target": [{"code": "10219000", "equivalence": "equivalent"}]}],
        }
    ],
}


def delivery(folder: Path) -> Path:
    """The six published CodeSystems as they are, and the three resources above as JSON."""
    for source in sorted(require(CODE_SYSTEMS).iterdir()):
        shutil.copy(source, folder / source.name)
    for resource in (VALUE_SET_R5, STATUS_MAP_R4, DOSE_FORM_MAP_R4):
        (folder / f"{resource['id']}.json").write_text(json.dumps(resource), "utf-8")
    return folder


@pytest.fixture(scope="module")
def fest_xml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fest") / "fest.xml"
    generate_delivery(path, scale=0.1, seed=3)  # the first two code lists: ATC and 7448
    return path


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def imported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fest_xml: Path
) -> Iterator[tuple[SafestResult, TestClient]]:
    """FEST, then the SAFEST terminology delivery, in one store; the report and a client of it."""
    folder = tmp_path_factory.mktemp("safest-terminology")
    (folder / "delivery").mkdir()
    if request.param == "sqlite":
        yield from _imported(f"sqlite:///{folder / 'store.db'}", fest_xml, delivery(folder / "delivery"))
        return
    with fresh_pg_database() as url:
        yield from _imported(url, fest_xml, delivery(folder / "delivery"))


def _imported(url: str, fest_xml: Path, folder: Path) -> Iterator[tuple[SafestResult, TestClient]]:
    engine = connect(url)
    import_fest(engine, fest_xml)
    report = import_safest(engine, folder)
    with TestClient(create_app(engine)) as client:
        yield report, client
    engine.dispose()


def test_the_published_code_systems_and_the_rest_import_as_r5(
    imported: tuple[SafestResult, TestClient],
) -> None:
    report, client = imported
    assert report.read == 9
    assert report.types == {"CodeSystem": 6, "ConceptMap": 2, "ValueSet": 1}
    assert report.resources["CodeSystem"] == {
        "new": 6,
        "changed": 0,
        "unchanged": 2,
        "expired": 0,
    }
    assert report.resources["ValueSet"] == {"new": 1, "changed": 0, "unchanged": 0, "expired": 0}
    assert report.resources["ConceptMap"] == {
        "new": 2,
        "changed": 0,
        "unchanged": 0,
        "expired": 0,
    }
    served = ok(client, "/fhir/CodeSystem", params={"url": NOMA + "MarketingStatus"})
    assert [e["resource"]["id"] for e in served["entry"]] == ["safest-MarketingStatus.codesystem"]
    assert ok(client, "/fhir/ValueSet/package-facts")["compose"] == VALUE_SET_R5["compose"]


def test_the_report_says_what_was_not_served_as_sent_and_what_replaced_ours(
    imported: tuple[SafestResult, TestClient],
) -> None:
    report, _ = imported
    assert report.warnings == [
        {
            "kind": "conversion",
            "where": "safest-marketingStatus.codesystem.xml",
            "resource": "CodeSystem/safest-MarketingStatus.codesystem",
            "message": "CodeSystem.concept[8].display is empty; FHIR has no empty values, so it is left out",
        },
        {
            "kind": "replaces-shipped",
            "resource": "ConceptMap/dmp-legemiddelform-edqm",
            "canonical": OUR_DOSE_FORM_MAP + "|2",
            "replaced": "ConceptMap/fest-legemiddelform-edqm-doseform",
            "message": f"{OUR_DOSE_FORM_MAP}|2 is also ConceptMap/fest-legemiddelform-edqm-doseform, shipped "
            "with grunndata; this release's terminology ($translate, $lookup, $validate-code, $expand) "
            "uses the delivered one instead",
        },
    ]


@pytest.mark.parametrize(
    ("system", "code", "display"),
    [
        ("PackageLevel", "2", "Secondary"),
        ("UnitDose", "true", "Is unit dose"),
        ("MarketingStatus", "5", "Marketed"),
        ("ConsumerPackage", "false", "Not consumer package"),
        ("EnteralNutrition", "true", "Is enteral nutrition"),
        ("NutritionProperties", "EnergyContentKcal", "Energy Content"),
    ],
)
def test_lookup_finds_a_code_of_each_published_code_system(
    imported: tuple[SafestResult, TestClient], system: str, code: str, display: str
) -> None:
    _, client = imported
    found = ok(client, "/fhir/CodeSystem/$lookup", params={"system": NOMA + system, "code": code})
    named = {p["name"]: p.get("valueString") for p in found["parameter"] if "valueString" in p}
    assert (named["version"], named["display"]) == ("1.0.0", display)


def test_lookup_gives_designations_and_leaves_out_a_display_of_spaces(
    imported: tuple[SafestResult, TestClient],
) -> None:
    _, client = imported
    found = ok(client, "/fhir/CodeSystem/$lookup", params={"system": NOMA + "MarketingStatus", "code": "7"})
    assert found["parameter"] == [
        {"name": "name", "valueString": "safest-MarketingStatus.codesystem"},
        {"name": "version", "valueString": "1.0.0"},
        {
            "name": "designation",
            "part": [
                {"name": "language", "valueCode": "no"},
                {"name": "value", "valueString": "Avregistrert"},
            ],
        },
    ]


def test_validate_code_of_a_published_code_system(imported: tuple[SafestResult, TestClient]) -> None:
    _, client = imported
    v = "/fhir/CodeSystem/$validate-code"
    assert result(ok(client, v, params={"url": NOMA + "UnitDose", "code": "false"})) == (True, None)
    assert result(ok(client, v, params={"url": NOMA + "PackageLevel|1.0.0", "code": "4"})) == (True, None)
    norwegian = {"url": NOMA + "ConsumerPackage", "code": "true", "display": "Er forbrukerpakning"}
    assert result(ok(client, v, params=norwegian)) == (True, None)
    assert result(ok(client, v, params={"url": NOMA + "PackageLevel", "code": "5"})) == (
        False,
        f"code '5' is not in code system '{NOMA}PackageLevel|1.0.0'",
    )
    assert result(ok(client, v, params={"url": NOMA + "PackageLevel", "code": "1", "version": "2.0.0"})) == (
        False,
        f"the code system '{NOMA}PackageLevel|2.0.0' is not known to this server",
    )


def test_the_value_set_expands_to_exactly_its_codes(imported: tuple[SafestResult, TestClient]) -> None:
    _, client = imported
    expanded = ok(client, "/fhir/ValueSet/$expand", params={"url": VALUE_SET})
    assert [(c["system"], c["code"], c.get("display")) for c in expanded["expansion"]["contains"]] == [
        (NOMA + "PackageLevel", "1", "Primary"),
        (NOMA + "PackageLevel", "2", "Secondary"),
        (NOMA + "PackageLevel", "3", "Tertiary"),
        (FORM, "53", "Tablett"),
        (FORM, "25", "Depottablett"),
        (NOMA + "MarketingStatus", "5", "Marketed"),
        (NOMA + "MarketingStatus", "6", "Temporarily unavailable"),
    ]
    assert (expanded["url"], expanded["version"], expanded["expansion"]["total"]) == (VALUE_SET, "1.0.0", 7)
    assert [p["valueUri"] for p in expanded["expansion"]["parameter"] if p["name"] == "used-codesystem"] == [
        NOMA + "PackageLevel|1.0.0",
        FORM,
        NOMA + "MarketingStatus|1.0.0",
    ]
    filtered = ok(client, "/fhir/ValueSet/$expand", params={"url": VALUE_SET + "|1.0.0", "filter": "tab"})
    assert [c["code"] for c in filtered["expansion"]["contains"]] == ["53"]
    implicit = ok(client, "/fhir/ValueSet/$expand", params={"url": NOMA + "UnitDose"})
    assert [c["code"] for c in implicit["expansion"]["contains"]] == ["true", "false"]
    missing = client.get("/fhir/ValueSet/$expand", params={"url": VALUE_SET, "valueSetVersion": "9"})
    assert missing.status_code == 404
    assert missing.json()["issue"][0]["diagnostics"] == (
        f"there is no value set '{VALUE_SET}|9' here (neither a ValueSet nor a code system's own)"
    )


def test_the_r4_concept_map_is_converted_and_translates(imported: tuple[SafestResult, TestClient]) -> None:
    _, client = imported
    stored = ok(client, "/fhir/ConceptMap/marketing-status")
    assert stored["sourceScopeUri"] == NOMA + "MarketingStatus" and "sourceUri" not in stored
    assert stored["group"][0]["source"] == NOMA + "MarketingStatus|1.0.0"
    assert stored["group"][0]["element"][0]["target"] == [
        {
            "extension": [{"url": EQUIVALENCE_KEPT, "valueString": "equal"}],
            "code": "marketed",
            "relationship": "equivalent",
        }
    ]
    assert stored["group"][0]["element"][3] == {"code": "10", "noMap": True}
    t = "/fhir/ConceptMap/$translate"
    system = NOMA + "MarketingStatus"
    assert matches(ok(client, t, params={"system": system, "sourceCode": "6"})) == [
        ("source-is-narrower-than-target", STATUS, "marketed", STATUS_MAP)
    ]
    assert matches(ok(client, t, params={"system": system, "sourceCode": "5"})) == [
        ("equivalent", STATUS, "marketed", STATUS_MAP)
    ]
    unmatched = ok(client, t, params={"system": system, "sourceCode": "10"})
    assert result(unmatched) == (
        False,
        f"'10' is in ConceptMap {STATUS_MAP}|1 but explicitly not mapped (noMap)",
    )


def test_every_served_map_of_ours_is_marked_and_the_delivered_ones_are_served_as_sent(
    imported: tuple[SafestResult, TestClient],
) -> None:
    _, client = imported
    listed = ok(client, "/fhir/ConceptMap", params={"_count": "1000", "_elements": "url,status"})
    unmarked_by_id = {
        e["resource"]["id"]: unmarked(ok(client, f"/fhir/ConceptMap/{e['resource']['id']}"))
        for e in listed["entry"]
    }
    assert sorted(i for i, missing in unmarked_by_id.items() if missing) == [
        "dmp-legemiddelform-edqm",
        "marketing-status",
    ]
    assert len(unmarked_by_id) == 9  # ours: 4 reviewed (the 5th replaced), 3 id maps; DMP's 2
    # a delivered map's matches carry no mark and no unverified message
    status = ok(
        client, "/fhir/ConceptMap/$translate", params={"system": NOMA + "MarketingStatus", "sourceCode": "6"}
    )
    assert result(status) == (True, None)
    assert "property" not in [
        part["name"] for p in status["parameter"] if p["name"] == "match" for part in p["part"]
    ]


def test_a_map_with_the_url_and_version_of_ours_replaces_it(
    imported: tuple[SafestResult, TestClient],
) -> None:
    _, client = imported
    t = "/fhir/ConceptMap/$translate"
    tablet = ok(client, t, params={"system": FORM, "sourceCode": "53", "targetSystem": EDQM})
    assert matches(tablet) == [("equivalent", EDQM, "10219000", OUR_DOSE_FORM_MAP)]
    origin = [p for p in tablet["parameter"] if p["name"] == "match"][0]["part"][2]
    assert origin == {"name": "originMap", "valueCanonical": OUR_DOSE_FORM_MAP + "|2"}
    # ours knew 28 (Enterotablett); the delivered map does not, and ours answers no more
    assert (
        result(ok(client, t, params={"system": FORM, "sourceCode": "28", "targetSystem": EDQM}))[0] is False
    )
    found = ok(client, "/fhir/ConceptMap", params={"url": OUR_DOSE_FORM_MAP})
    assert [e["resource"]["id"] for e in found["entry"]] == ["dmp-legemiddelform-edqm"]
    assert client.get("/fhir/ConceptMap/fest-legemiddelform-edqm-doseform").status_code == 404


def test_what_cannot_be_expanded_is_a_sentence_not_an_error(
    imported: tuple[SafestResult, TestClient],
) -> None:
    _, client = imported
    r = client.get("/fhir/ValueSet/$expand", params={"url": "urn:oid:1.2"})
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
