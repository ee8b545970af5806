"""Terminology over HTTP: an EPJ translates FEST ids and codes to IDMP and back, and looks up FEST
code systems; unknown codes are answers (result=false), malformed requests are 400."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources import get_fhir_model_class

from grunndata.importers.fest import import_fest
from grunndata.sample import generate_delivery
from grunndata.server import create_app
from grunndata.store import connect
from grunndata.terminology.verification import entries, unmarked
from tests.server.conftest import CERTICAN_BRAND, CERTICAN_PACKAGE, GTIN, VARENR

T = "/fhir/ConceptMap/$translate"
MERKEVARE = "http://dmp.no/fhir/NamingSystem/festLegemiddelMerkevare"
PAKNING = "http://dmp.no/fhir/NamingSystem/festLegemiddelPakning"
FORM = "urn:oid:2.16.578.1.12.4.1.1.7448"
EDQM = "http://standardterms.edqm.eu"
PACKAGE_MAP = "https://grunndata.no/fhir/ConceptMap/fest-legemiddelpakning-idmp"


def ok(client: TestClient, url: str, **kwargs: Any) -> dict[str, Any]:
    r = client.request(kwargs.pop("method", "GET"), url, **kwargs)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    get_fhir_model_class(body["resourceType"]).model_validate(body)
    return body


def matches(parameters: dict[str, Any]) -> list[tuple[str, str | None, str, str]]:
    """(relationship, system, code, origin map without version) of each match."""
    found = []
    for p in parameters["parameter"]:
        if p["name"] == "match":
            parts = {part["name"]: part for part in p["part"]}
            coding = parts["concept"]["valueCoding"]
            origin = parts["originMap"]["valueCanonical"].split("|")[0]
            found.append((parts["relationship"]["valueCode"], coding.get("system"), coding["code"], origin))
    return found


def result(parameters: dict[str, Any]) -> tuple[bool, str | None]:
    values = {p["name"]: p for p in parameters["parameter"] if p["name"] in ("result", "message")}
    return values["result"]["valueBoolean"], values.get("message", {}).get("valueString")


def test_varenr_to_gtin_and_package_every_way_of_asking(api: TestClient) -> None:
    expected = [("equivalent", GTIN, "7046260148840", PACKAGE_MAP)]
    r5 = ok(api, T, params={"system": VARENR, "sourceCode": "014884", "targetSystem": GTIN})
    assert result(r5) == (True, None) and matches(r5) == expected
    r4 = ok(api, T, params={"system": VARENR, "code": "014884", "targetsystem": GTIN})
    assert matches(r4) == expected
    coding = ok(api, T, params={"sourceCoding": f"{VARENR}|014884", "targetSystem": GTIN})
    assert matches(coding) == expected
    posted = ok(
        api,
        T,
        method="POST",
        json={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "sourceCoding", "valueCoding": {"system": VARENR, "code": "014884"}},
                {"name": "targetSystem", "valueUri": GTIN},
            ],
        },
    )
    assert matches(posted) == expected
    anywhere = ok(api, T, params={"system": VARENR, "sourceCode": "014884"})
    assert matches(anywhere) == [
        ("equivalent", "https://grunndata.no/fhir/PackagedProductDefinition", CERTICAN_PACKAGE, PACKAGE_MAP),
        *expected,
    ]


def test_back_from_gtin_to_varenr_r5_and_r4(api: TestClient) -> None:
    expected = [("equivalent", VARENR, "014884", PACKAGE_MAP)]
    assert matches(ok(api, T, params={"targetCode": "7046260148840", "targetSystem": GTIN})) == expected
    assert matches(ok(api, T, params={"targetCoding": f"{GTIN}|7046260148840"})) == expected
    assert (
        matches(ok(api, T, params={"code": "7046260148840", "system": GTIN, "reverse": "true"})) == expected
    )
    fest_id = ok(
        api,
        T,
        params={
            "targetCode": CERTICAN_PACKAGE,
            "targetSystem": "https://grunndata.no/fhir/PackagedProductDefinition",
            "system": PAKNING,
        },
    )
    assert matches(fest_id) == [("equivalent", PAKNING, "ID_" + CERTICAN_PACKAGE, PACKAGE_MAP)]


def test_brand_id_to_the_medicinal_product(api: TestClient) -> None:
    found = ok(api, T, params={"system": MERKEVARE, "sourceCode": "ID_" + CERTICAN_BRAND})
    assert matches(found) == [
        (
            "equivalent",
            "https://grunndata.no/fhir/MedicinalProductDefinition",
            CERTICAN_BRAND,
            "https://grunndata.no/fhir/ConceptMap/fest-legemiddelmerkevare-idmp",
        )
    ]


def test_fest_dose_form_to_edqm_from_the_reviewed_map(api: TestClient) -> None:
    found = ok(api, T, params={"system": FORM, "sourceCode": "53", "targetSystem": EDQM})
    origin = "https://grunndata.no/fhir/ConceptMap/fest-legemiddelform-edqm-doseform"
    assert matches(found) == [
        ("source-is-broader-than-target", EDQM, "10219000", origin),
        ("source-is-broader-than-target", EDQM, "10221000", origin),
        ("source-is-broader-than-target", EDQM, "10220000", origin),
    ]
    xml = api.get(T, params={"system": FORM, "sourceCode": "53", "_format": "xml"})
    assert xml.status_code == 200 and '<code value="10219000"/>' in xml.text


def test_every_served_map_marks_every_entry_verified_or_not(api: TestClient) -> None:
    """Read every map as a client does (search, then each map by id) and fail on an unmarked entry."""
    listed = ok(api, "/fhir/ConceptMap", params={"_count": "1000", "_elements": "url,status"})
    ids = sorted(e["resource"]["id"] for e in listed["entry"])
    assert ids == [
        "fest-administrasjonsvei-edqm-route",
        "fest-enhet-dosering-ucum",
        "fest-enhet-pakning-ucum",
        "fest-legemiddelform-edqm-doseform",
        "fest-legemiddelmerkevare-idmp",
        "fest-legemiddelpakning-idmp",
        "fest-legemiddelvirkestoff-idmp",
        "fest-pakningstype-edqm-container",
    ]
    unverified = {}
    for map_id in ids:
        conceptmap = ok(api, f"/fhir/ConceptMap/{map_id}")
        assert unmarked(conceptmap) == [], map_id
        doubtful = sum(flag is False for *_, flag in entries(conceptmap))
        unverified[map_id] = doubtful
        assert conceptmap["status"] == ("draft" if doubtful else "active"), map_id
    assert sum(unverified.values()) == 51  # entries (targets and noMap elements) of the 29 stand-in codes


def test_translate_says_when_a_code_is_unverified_and_not_when_it_is_verified(api: TestClient) -> None:
    checked = ok(api, T, params={"system": FORM, "sourceCode": "25"})  # Depottablett, in the real extract
    assert result(checked) == (True, None)
    stand_in = ok(api, T, params={"system": FORM, "sourceCode": "28"})  # Enterotablett, a stand-in
    said = result(stand_in)
    assert said[0] is True and said[1] is not None and said[1].startswith("unverified: 1 of 1 match (")
    marks = [
        part["part"][1]
        for p in stand_in["parameter"]
        if p["name"] == "match"
        for part in p["part"]
        if part["name"] == "property"
    ]
    assert marks == [{"name": "value", "valueBoolean": False}]


def test_unknown_codes_and_systems_are_result_false(api: TestClient) -> None:
    for params in (
        {"system": VARENR, "sourceCode": "999999"},
        {"system": "urn:oid:1.2.3", "sourceCode": "53"},
        {"system": FORM, "sourceCode": "136"},  # explicitly not mapped in the reviewed map
        {"system": VARENR, "sourceCode": "014884", "url": "https://example.org/no-such-map"},
    ):
        answer = ok(api, T, params=params)
        ok_, message = result(answer)
        assert not ok_ and message and matches(answer) == [], params


def test_malformed_translate_requests_are_400(api: TestClient) -> None:
    for kwargs in (
        {"params": {"system": VARENR}},
        {"params": {"system": VARENR, "code": "014884", "reverse": "maybe"}},
        {"params": {"sourceCoding": "014884"}},
        {"params": {"sourceCode": "1", "targetCode": "2", "system": VARENR}},
        {"params": {"sourceCode": "1", "code": "2"}},
        {"method": "POST", "content": b"not json", "headers": {"content-type": "application/fhir+json"}},
        {"method": "POST", "json": {"resourceType": "Patient"}},
        {"method": "POST", "json": {"resourceType": "Parameters", "parameter": [{"name": "code"}]}},
    ):
        r = api.request(kwargs.pop("method", "GET"), T, **kwargs)
        assert r.status_code == 400, (kwargs, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"


def test_the_maps_are_conceptmap_resources(api: TestClient) -> None:
    package_map = ok(api, "/fhir/ConceptMap/fest-legemiddelpakning-idmp")
    groups = {(g["source"], g["target"]): len(g["element"]) for g in package_map["group"]}
    assert groups == {
        (PAKNING, "https://grunndata.no/fhir/PackagedProductDefinition"): 107,
        (VARENR, "https://grunndata.no/fhir/PackagedProductDefinition"): 107,
        (VARENR, GTIN): 105,  # 2 of the 107 packages have no Ean
        (PAKNING, VARENR): 107,
    }
    found = ok(api, "/fhir/ConceptMap", params={"source-group-system": FORM, "_summary": "true"})
    assert [e["resource"]["id"] for e in found["entry"]] == ["fest-legemiddelform-edqm-doseform"]
    assert "group" not in found["entry"][0]["resource"]
    one = ok(
        api,
        "/fhir/ConceptMap/fest-legemiddelform-edqm-doseform/$translate",
        params={"system": VARENR, "code": "014884"},
    )
    assert result(one)[0] is False  # that map knows no varenr
    assert api.get("/fhir/ConceptMap/nope").status_code == 404
    assert api.get("/fhir/ConceptMap/nope/$translate", params={"code": "1"}).status_code == 404
    resources = {r["type"]: r for r in ok(api, "/fhir/metadata")["rest"][0]["resource"]}
    assert [o["name"] for o in resources["ConceptMap"]["operation"]] == ["translate"]
    assert [o["name"] for o in resources["ValueSet"]["operation"]] == ["expand"]
    assert [o["name"] for o in resources["CodeSystem"]["operation"]] == ["lookup", "validate-code"]


def test_a_conceptmap_search_is_answered_as_every_search_with_the_common_parameters(api: TestClient) -> None:
    counted = ok(api, "/fhir/ConceptMap", params={"_summary": "count"})
    everything = ok(api, "/fhir/ConceptMap", params={"_count": "1000", "_elements": "url,status"})
    assert (counted["total"], "entry" in counted) == (everything["total"], False)
    assert counted["total"] == len(everything["entry"])
    assert {e["resource"]["id"] for e in everything["entry"]} >= {
        "fest-legemiddelform-edqm-doseform",
        "fest-legemiddelpakning-idmp",
        "fest-legemiddelmerkevare-idmp",
    }
    by_target = ok(api, "/fhir/ConceptMap", params={"target-group-system": EDQM, "_summary": "count"})
    assert by_target["total"] == len(
        [
            e
            for e in ok(api, "/fhir/ConceptMap", params={"_count": "1000"})["entry"]
            if any(g.get("target") == EDQM for g in e["resource"].get("group", ()))
        ]
    )
    first = ok(api, "/fhir/ConceptMap", params={"name": "fest", "_count": "1", "_elements": "status"})
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert links["next"] == "http://testserver/fhir/ConceptMap?name=fest&_elements=status&_count=1&_offset=1"
    strict = api.get("/fhir/ConceptMap?colour=green", headers={"Prefer": "handling=strict"})
    assert strict.json()["issue"][0]["diagnostics"] == "unknown search parameter 'colour' for ConceptMap"
    resources = {r["type"]: r for r in ok(api, "/fhir/metadata")["rest"][0]["resource"]}
    assert [(p["name"], p["type"]) for p in resources["ConceptMap"]["searchParam"]] == [
        ("_id", "token"),
        ("_lastUpdated", "date"),
        ("_tag", "token"),
        ("url", "uri"),
        ("version", "token"),
        ("name", "string"),
        ("status", "token"),
        ("source-group-system", "reference"),
        ("target-group-system", "reference"),
    ]


# -- FEST Kodeverk code systems (the real extract has none; a generated delivery has all 25) ----------


@pytest.fixture(scope="module")
def kodeverk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder: Path = tmp_path_factory.mktemp("kodeverk")
    generate_delivery(
        folder / "fest.xml", scale=0.1, seed=3
    )  # 0.1 keeps the first two code lists: ATC and 7448
    engine = connect(f"sqlite:///{folder / 'store.db'}")
    import_fest(engine, folder / "fest.xml")
    with TestClient(create_app(engine)) as client:
        yield client
    engine.dispose()


def test_lookup_validate_and_expand_a_fest_code_system(kodeverk: TestClient) -> None:
    found = ok(kodeverk, "/fhir/CodeSystem/$lookup", params={"system": FORM, "code": "53"})
    assert {p["name"]: p.get("valueString") for p in found["parameter"][:2]} == {
        "name": "Legemiddelform",
        "display": "Tablett",
    }
    valid = ok(
        kodeverk,
        "/fhir/CodeSystem/$validate-code",
        params={"url": FORM, "code": "25", "display": "Depottablett"},
    )
    assert result(valid) == (True, None)
    wrong = ok(
        kodeverk, "/fhir/CodeSystem/$validate-code", params={"url": FORM, "code": "25", "display": "Tablett"}
    )
    assert result(wrong)[0] is False and "Depottablett" in (result(wrong)[1] or "")
    unknown = ok(kodeverk, "/fhir/CodeSystem/$validate-code", params={"url": FORM, "code": "0"})
    assert result(unknown)[0] is False
    expansion = ok(kodeverk, "/fhir/ValueSet/$expand", params={"url": FORM, "filter": "depot"})["expansion"]
    assert [(c["code"], c["display"]) for c in expansion["contains"]] == [
        ("25", "Depottablett"),
        ("24", "Depotkapsel"),
        ("58", "Depotplaster"),
    ]
    page = ok(kodeverk, "/fhir/ValueSet/$expand", params={"url": FORM, "offset": "2", "count": "3"})[
        "expansion"
    ]
    assert (page["total"], [c["code"] for c in page["contains"]]) == (32, ["25", "51", "16"])


def test_bad_code_system_requests(kodeverk: TestClient) -> None:
    assert kodeverk.get("/fhir/CodeSystem/$lookup", params={"system": FORM, "code": "0"}).status_code == 404
    assert (
        kodeverk.get("/fhir/CodeSystem/$lookup", params={"system": "urn:oid:1.2", "code": "0"}).status_code
        == 404
    )
    assert kodeverk.get("/fhir/CodeSystem/$lookup", params={"code": "53"}).status_code == 400
    assert kodeverk.get("/fhir/ValueSet/$expand", params={"url": "urn:oid:1.2"}).status_code == 404
    assert kodeverk.get("/fhir/ValueSet/$expand").status_code == 400
    assert kodeverk.get("/fhir/ValueSet/$expand", params={"url": FORM, "count": "-1"}).status_code == 400


def test_the_fast_path_answers_exactly_as_the_route(api: TestClient) -> None:
    params = {"system": VARENR, "sourceCode": "014884"}
    ok(api, T, params=params)  # the maps of the snapshot are indexed now
    fast = api.get(T, params=params)
    routed = api.get(T, params={**params, "_format": "json"})  # a format parameter takes the full route
    assert fast.content == routed.content
    assert (
        fast.headers["content-type"]
        == routed.headers["content-type"]
        == "application/fhir+json; charset=utf-8"
    )
    bad = api.get(T, params={"system": VARENR})  # errors always come from the route
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"


def test_a_code_without_its_system_is_not_translated(api: TestClient) -> None:
    # "53" is a code of FEST's dose forms and of its routes: without a system it names neither
    for kwargs in (
        {"params": {"sourceCode": "53"}},
        {"params": {"sourceCoding": "|28"}},
        {"params": {"targetCode": "10219000"}},
        {
            "method": "POST",
            "json": {
                "resourceType": "Parameters",
                "parameter": [{"name": "sourceCoding", "valueCoding": {"code": "28"}}],
            },
        },
    ):
        r = api.request(kwargs.pop("method", "GET"), T, **kwargs)
        assert r.status_code == 400, (kwargs, r.text)
        assert r.json()["issue"][0]["diagnostics"] == (
            "a code to translate needs its system (sourceCode with system, a Coding with its system)"
        )


def test_translate_answers_from_the_map_version_asked_for(api: TestClient) -> None:
    url = "https://grunndata.no/fhir/ConceptMap/fest-legemiddelform-edqm-doseform"
    asked = {"system": FORM, "sourceCode": "25", "url": url}
    assert result(ok(api, T, params={**asked, "conceptMapVersion": "2"})) == (True, None)
    wrong = result(ok(api, T, params={**asked, "conceptMapVersion": "99"}))
    assert wrong == (False, f"there is no ConceptMap '{url}|99' here")
    instance = ok(
        api,
        "/fhir/ConceptMap/fest-legemiddelform-edqm-doseform/$translate",
        params={"system": FORM, "sourceCode": "25", "conceptMapVersion": "99"},
    )
    assert result(instance)[0] is False
    for params in (
        {"system": FORM, "sourceCode": "25", "conceptMapVersion": "2"},  # which map?
        {**asked, "url": f"{url}|1", "conceptMapVersion": "2"},  # two versions
    ):
        r = api.get(T, params=params)
        assert r.status_code == 400, (params, r.text)


def test_an_identifier_in_any_form_a_search_takes_is_translated_as_its_served_form(api: TestClient) -> None:
    to_gtin = [("equivalent", GTIN, "7046260148840", PACKAGE_MAP)]
    for system, code, target in (
        (VARENR, "14884", GTIN),  # the leading zero left out
        ("https://farmalogg.no/varenummer", "014884", "https://farmalogg.no/produktkode/GTIN"),
        (VARENR, "014884", "urn:oid:1.3.160"),
    ):
        answer = ok(api, T, params={"system": system, "sourceCode": code, "targetSystem": target})
        assert matches(answer) == to_gtin, (system, code, target)
    for system, code in (
        (PAKNING, CERTICAN_PACKAGE.lower()),  # without ID_, in lower case
        ("http://hl7.no/fhir/NamingSystem/festLegemiddelpakning", f"ID_{CERTICAN_PACKAGE}"),
    ):
        answer = ok(api, T, params={"system": system, "sourceCode": code, "targetSystem": VARENR})
        assert [m[1:3] for m in matches(answer)] == [(VARENR, "014884")], (system, code)
    reverse = ok(api, T, params={"targetCode": "07046260148840", "targetSystem": GTIN, "system": VARENR})
    assert [m[1:3] for m in matches(reverse)] == [(VARENR, "014884")]
