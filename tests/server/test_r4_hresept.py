"""DMP's R4 bases beyond /fhir-r4's reads: `package-item-level-one|two|three` on MedicinalProductPackaged
(the entry says where the code was found) and /fhir-r4-hresept, the R4 view with DMP's H-resept
content filters applied; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.importers.fest import import_fest
from grunndata.server import create_app
from grunndata.settings import Settings
from tests.server.conftest import CERTICAN_PACKAGE, GTIN
from tests.server.conftest import fhir_json as _get
from tests.server.test_content_filters import MPD, PPD, planted
from tests.server.test_r4 import PACKAGED_PARAMS

MPP = "MedicinalProductPackaged"
R4, HRESEPT = "/fhir-r4", "/fhir-r4-hresept"
CERTICAN_GTIN = "7046260148840"
LEVEL_ONE_MATCH = {
    "url": "https://grunndata.no/fhir/StructureDefinition/barcode-match",
    "extension": [
        {"url": "where", "valueCode": "packaging"},
        {"url": "level", "valueInteger": 1},
        {
            "url": "packageLevel",
            "valueCoding": {
                "system": "http://legemiddelverket.no/fhir/CodeSystem/PackageLevel",
                "code": "1",
                "display": "Primary",
            },
        },
        {"url": "identifier", "valueIdentifier": {"system": GTIN, "value": CERTICAN_GTIN}},
    ],
}


def _ids(client: TestClient, url: str) -> tuple[set[str], int]:
    """Every id a search finds, following its next links (each on the same base, without a
    content-filter parameter), and the total the first page gave."""
    found: set[str] = set()
    base = urlsplit(url).path
    first = _get(client, url)
    bundle = first
    while True:
        found |= {e["resource"]["id"] for e in bundle.get("entry", [])}
        for link in bundle["link"]:
            assert urlsplit(link["url"]).path == base
            assert "content-filter" not in parse_qs(urlsplit(link["url"]).query)
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            return found, int(first["total"])
        bundle = _get(client, following[0].removeprefix("http://testserver"))


# -- product codes at each packaging level ---------------------------------------------------------


@pytest.mark.parametrize("base", [R4, HRESEPT])
def test_a_real_gtin_is_found_at_level_one_over_r4_and_the_entry_says_so(api: TestClient, base: str) -> None:
    for value in (CERTICAN_GTIN, f"0{CERTICAN_GTIN}", f"{GTIN}|{CERTICAN_GTIN}"):  # GTIN-13, -14, system
        bundle = _get(api, f"{base}/{MPP}?package-item-level-one={value}")
        (entry,) = bundle["entry"]
        assert entry["resource"]["resourceType"] == MPP
        assert entry["resource"]["id"] == CERTICAN_PACKAGE
        assert entry["fullUrl"] == f"http://testserver{base}/{MPP}/{CERTICAN_PACKAGE}"
        assert entry["search"] == {"extension": [LEVEL_ONE_MATCH], "mode": "match"}, value
    for deeper in ("two", "three"):  # the pack's GTIN is on its first level only
        assert "entry" not in _get(api, f"{base}/{MPP}?package-item-level-{deeper}={CERTICAN_GTIN}")
    assert "entry" not in _get(api, f"{base}/{MPP}?package-item-level-one=7046260148841")


def test_the_r4_capability_statements_list_the_levels(api: TestClient) -> None:
    for base, view in ((R4, ""), (HRESEPT, "h-resept")):
        statement = _get(api, f"{base}/metadata")
        assert statement["url"] == f"http://testserver{base}/metadata"
        assert statement["id"] == ("grunndata-r4-h-resept" if view else "grunndata-r4")
        assert ("h-resept content filters applied" in statement["description"]) == bool(view)
        packaged = statement["rest"][0]["resource"][1]
        assert packaged["type"] == MPP
        assert [p["name"] for p in packaged["searchParam"]] == PACKAGED_PARAMS


@pytest.mark.parametrize(
    ("query", "said"),
    [
        (f"package-item-level-one:exact={CERTICAN_GTIN}", "modifier :exact"),
        ("package-item-level-one:missing=maybe", "true or false"),
        ("package-item-level-two=", "empty value"),
        ("package-item-level-three=" + "9" * 600, "GRUNNDATA_SEARCH_MAX_VALUE_CHARS"),
    ],
)
@pytest.mark.parametrize("base", [R4, HRESEPT])
def test_a_bad_level_value_is_a_400_outcome(api: TestClient, base: str, query: str, said: str) -> None:
    outcome = _get(api, f"{base}/{MPP}?{query}", 400)
    assert outcome["resourceType"] == "OperationOutcome"
    assert said in outcome["issue"][0]["diagnostics"]


def test_a_level_dmp_does_not_define_or_a_level_on_another_type_is_unknown(api: TestClient) -> None:
    strict = _get(api, f"{R4}/{MPP}?package-item-level-four=1", 400, Prefer="handling=strict")
    assert "'package-item-level-four'" in strict["issue"][0]["diagnostics"]
    other = _get(api, f"{R4}/MedicinalProduct?package-item-level-one=1", 400, Prefer="handling=strict")
    assert "'package-item-level-one'" in other["issue"][0]["diagnostics"]
    lenient = _get(api, f"{R4}/{MPP}?identifier=014884&package-item-level-four=1")
    assert [e["resource"]["id"] for e in lenient["entry"] if e["search"]["mode"] == "match"] == [
        CERTICAN_PACKAGE
    ]
    (note,) = [e["resource"] for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert note["issue"][0]["diagnostics"] == (
        f"ignored search parameter 'package-item-level-four' (unknown for {MPP} over R4)"
    )


# -- /fhir-r4-hresept: the R4 view with DMP's H-resept filters ---------------------------------------


@pytest.fixture
def planted_api(engine: Engine, tmp_path: Path) -> Iterator[tuple[Engine, TestClient, dict[str, Any]]]:
    """The real extract with one product or package in each filter class (test_content_filters.py)."""
    delivery, expected = planted(tmp_path)
    import_fest(engine, delivery)
    with TestClient(create_app(engine)) as client:
        yield engine, client, {"expected": expected}


def test_the_hresept_base_leaves_out_what_the_filters_exclude_and_fhir_r4_keeps_it(planted_api: Any) -> None:
    _, client, found = planted_api
    expected: dict[str, set[tuple[str, str]]] = found["expected"]
    left_out = {rid for keys in expected.values() for rtype, rid in keys if rtype == PPD}
    assert len(left_out) >= 4
    everything, everything_total = _ids(client, f"{R4}/{MPP}?_count=200&_total=accurate")
    view, view_total = _ids(client, f"{HRESEPT}/{MPP}?_count=9&_total=accurate")  # paged
    assert (everything_total, len(everything)) == (107, 107)
    assert everything - view == left_out
    assert view_total == len(view) == 107 - len(left_out)
    for rid in sorted(left_out):
        assert _get(client, f"{R4}/{MPP}/{rid}")["id"] == rid
        assert _get(client, f"{R4}/{MPP}?_id={rid}")["entry"][0]["resource"]["id"] == rid
        outcome = _get(client, f"{HRESEPT}/{MPP}/{rid}", 404)
        assert outcome["issue"][0]["diagnostics"].startswith(f"{MPP}/{rid} is not in the H-resept view")
        assert "entry" not in _get(client, f"{HRESEPT}/{MPP}?_id={rid}")
        _get(client, f"{HRESEPT}/{MPP}/{rid}/_history/1", 404)
        _get(client, f"{HRESEPT}/{MPP}/{rid}/_history", 404)
    kept = sorted(view)[0]
    assert _get(client, f"{HRESEPT}/{MPP}/{kept}") == _get(client, f"{R4}/{MPP}/{kept}")
    assert _get(client, f"{HRESEPT}/{MPP}/{kept}/_history/1")["id"] == kept
    assert _get(client, f"{HRESEPT}/{MPP}/nope", 404)["issue"][0]["diagnostics"] == f"{MPP}/nope is not known"


def test_the_hresept_delta_and_histories_leave_out_what_the_filters_exclude(planted_api: Any) -> None:
    _, client, found = planted_api
    expected: dict[str, set[tuple[str, str]]] = found["expected"]
    left_out = {rid for keys in expected.values() for rtype, rid in keys if rtype == PPD}

    def versions(url: str) -> list[str]:
        bundle, seen = _get(client, url), []
        while True:
            seen += [e["request"]["url"].split("/")[1] for e in bundle.get("entry", [])]
            following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
            assert all(urlsplit(link["url"]).path.startswith(urlsplit(url).path) for link in bundle["link"])
            if not following:
                return seen
            bundle = _get(client, following[0].removeprefix("http://testserver"))

    everything = versions(f"{R4}/delta/{MPP}?_count=40")
    view = versions(
        f"{HRESEPT}/delta/{MPP}?_count=40"
    )  # paged: a page is full, what is left out is not counted
    assert len(everything) == len(set(everything)) == 107
    assert set(everything) - set(view) == left_out and len(view) == 107 - len(left_out)
    assert versions(f"{HRESEPT}/{MPP}/_history?_count=40") == view
    system = versions(f"{HRESEPT}/_history?_count=1000")
    assert not left_out & set(system) and set(view) <= set(system)
    for rid in sorted(left_out):
        _get(client, f"{HRESEPT}/delta/{MPP}/{rid}", 404)
        _get(client, f"{HRESEPT}/delta/{MPP}/{rid}/_history", 404)
        assert _get(client, f"{R4}/delta/{MPP}/{rid}")["id"] == rid


def test_the_left_out_product_is_left_out_of_the_hresept_base_too(planted_api: Any) -> None:
    _, client, found = planted_api
    planted = found["expected"]["atc-q"] | found["expected"]["homeopathic"]
    products = {rid for rtype, rid in planted if rtype == MPD}
    everything, _ = _ids(client, f"{R4}/MedicinalProduct?_count=200&_total=accurate")
    view, view_total = _ids(client, f"{HRESEPT}/MedicinalProduct?_count=200&_total=accurate")
    gone = everything - view
    assert len(gone) == 2 and gone <= products
    assert view_total == len(everything) - 2


def test_a_filter_switched_off_lets_its_class_through_the_hresept_base(planted_api: Any) -> None:
    engine, _, found = planted_api
    no_varenr = {rid for _, rid in found["expected"]["no-varenr"]}
    homeopathic = {rid for rtype, rid in found["expected"]["homeopathic"] if rtype == PPD}
    settings = Settings.load({"GRUNNDATA_HRESEPT_VARENR": "off"})
    with TestClient(create_app(engine, settings=settings)) as client:
        view, _ = _ids(client, f"{HRESEPT}/{MPP}?_count=200&_total=accurate")
        (rid,) = no_varenr
        assert _get(client, f"{HRESEPT}/{MPP}/{rid}")["id"] == rid
        assert homeopathic and not homeopathic & view
    assert no_varenr <= view


def test_the_hresept_base_refuses_what_fhir_r4_refuses(planted_api: Any) -> None:
    _, client, _ = planted_api
    assert client.get(f"{HRESEPT}/{MPP}/x?_format=ttl").status_code == 406
    outcome = _get(client, f"{HRESEPT}/PackagedProductDefinition/x", 404)
    assert outcome["issue"][0]["diagnostics"].startswith("'PackagedProductDefinition' is not served as R4")
    assert _get(client, f"{HRESEPT}/{MPP}/bad%20id", 400)["resourceType"] == "OperationOutcome"
    strict = _get(client, f"{HRESEPT}/{MPP}?content-filter=none", 400, Prefer="handling=strict")
    assert "'content-filter'" in strict["issue"][0]["diagnostics"]


# -- Accept: application/fhir+json; fhirVersion=4.0 on /fhir reads ---------------------------------

R4_JSON = "application/fhir+json; fhirVersion=4.0"


@pytest.mark.parametrize(
    "accept", [R4_JSON, "application/fhir+json;fhirVersion=4.0.1", "*/*; fhirVersion=4.0"]
)
def test_a_read_on_fhir_with_fhir_version_4_is_the_r4_view_s(api: TestClient, accept: str) -> None:
    r4 = api.get(f"{R4}/{MPP}/{CERTICAN_PACKAGE}").json()
    for path in (f"/fhir/{PPD}/{CERTICAN_PACKAGE}", f"/fhir/{PPD}/{CERTICAN_PACKAGE}/_history/1"):
        answer = api.get(path, headers={"Accept": accept})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/fhir+json; fhirVersion=4.0; charset=utf-8"
        assert "Accept" in answer.headers["vary"]
        assert answer.headers["etag"] == 'W/"1"'
        assert answer.json() == r4
    plain = api.get(
        f"/fhir/{PPD}/{CERTICAN_PACKAGE}", headers={"Accept": "application/fhir+json; fhirVersion=5.0"}
    )
    assert plain.json()["resourceType"] == PPD
    assert api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}").json()["resourceType"] == PPD
    unchanged = api.get(
        f"/fhir/{PPD}/{CERTICAN_PACKAGE}", headers={"Accept": accept, "If-None-Match": 'W/"1"'}
    )
    assert unchanged.status_code == 304


@pytest.mark.parametrize(
    ("accept", "query", "version"),
    [
        (f"{R4_JSON};q=0.1, application/fhir+json; fhirVersion=5.0;q=0.9", "", "5.0"),  # quality decides
        (f"application/fhir+json; fhirVersion=5.0;q=0.1, {R4_JSON};q=0.9", "", "4.0"),
        (f"{R4_JSON};q=0, application/fhir+json", "", "5.0"),  # refused: the server's own
        ("application/fhir+json", "?_format=application/fhir%2Bjson;fhirVersion=4.0", "4.0"),  # _format wins
        (R4_JSON, "?_format=json", "5.0"),
    ],
)
def test_the_fhir_version_is_chosen_as_the_format_is(
    api: TestClient, accept: str, query: str, version: str
) -> None:
    answer = api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}{query}", headers={"Accept": accept})
    assert answer.status_code == 200, answer.text
    assert answer.json()["resourceType"] == (MPP if version == "4.0" else PPD)
    refused = api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}?_format=application/fhir%2Bjson;fhirVersion=3.0")
    assert refused.status_code == 406
    on_r4 = api.get(f"{R4}/{MPP}/{CERTICAN_PACKAGE}?_format=application/fhir%2Bjson;fhirVersion=5.0")
    assert on_r4.status_code == 406


@pytest.mark.parametrize(
    ("path", "accept", "said"),
    [
        (
            f"/fhir/{PPD}/{CERTICAN_PACKAGE}",
            "application/fhir+json; fhirVersion=3.0",
            "fhirVersion '3.0' is not served",
        ),
        (
            f"/fhir/{PPD}/{CERTICAN_PACKAGE}",
            "application/fhir+json; fhirVersion=4",
            "fhirVersion '4' is not served",
        ),
        (
            f"/fhir/{PPD}/{CERTICAN_PACKAGE}",
            "application/fhir+json; fhirVersion=",
            "fhirVersion '' is not served",
        ),
        (f"/fhir/{PPD}/{CERTICAN_PACKAGE}", "application/fhir+xml; fhirVersion=3.0", "fhirVersion '3.0'"),
        (f"/fhir/{PPD}/{CERTICAN_PACKAGE}?_summary=true", R4_JSON, "whole resources"),
        ("/fhir/RegulatedAuthorization/x", R4_JSON, "RegulatedAuthorization has no R4 form"),
        (f"/fhir/{PPD}?_count=1", R4_JSON, "R4 searches and history are at /fhir-r4"),
        (f"/fhir/{PPD}/{CERTICAN_PACKAGE}/_history", R4_JSON, "R4 searches and history are at /fhir-r4"),
        (f"{R4}/{MPP}/{CERTICAN_PACKAGE}", "application/fhir+json; fhirVersion=5.0", "R5 is at /fhir"),
    ],
)
def test_a_fhir_version_not_served_there_is_a_406(api: TestClient, path: str, accept: str, said: str) -> None:
    answer = api.get(path, headers={"Accept": accept})
    assert answer.status_code == 406, answer.text
    if "xml" in accept:
        assert said in answer.text
        return
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert said in outcome["issue"][0]["diagnostics"]
