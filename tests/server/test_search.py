"""EPJ lookups: by varenr, GTIN, FEST id, name, ATC; paging, sorting, includes, summaries, errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from fhir.resources import get_fhir_model_class

from grunndata.store.searchparams import normalise
from tests.server.conftest import ATC, CERTICAN_BRAND, CERTICAN_PACKAGE, GTIN, VARENR

MPD, PPD = "MedicinalProductDefinition", "PackagedProductDefinition"


def search(api: TestClient, url: str, status: int = 200) -> dict[str, Any]:
    r = api.get(url)
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    if status == 200:
        get_fhir_model_class("Bundle").model_validate(body)
    return body


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def test_package_by_varenr_in_every_token_form(api: TestClient) -> None:
    for value in ("014884", f"{VARENR}|014884"):
        assert ids(search(api, f"/fhir/{PPD}?identifier={value}")) == [CERTICAN_PACKAGE], value
    assert ids(search(api, f"/fhir/{PPD}?identifier=|014884")) == []  # it has a system
    assert ids(search(api, f"/fhir/{PPD}?identifier=http://example.org|014884")) == []
    everything = search(api, f"/fhir/{PPD}?identifier={VARENR}|&_total=accurate&_count=1")
    assert everything["total"] == 107  # every package has a varenr


def test_package_by_gtin_and_by_fest_id(api: TestClient) -> None:
    assert ids(search(api, f"/fhir/{PPD}?identifier={GTIN}|7046260148840")) == [CERTICAN_PACKAGE]
    fest_id = "http://dmp.no/fhir/NamingSystem/festLegemiddelPakning|ID_" + CERTICAN_PACKAGE
    assert ids(search(api, f"/fhir/{PPD}?identifier={fest_id}")) == [CERTICAN_PACKAGE]
    assert ids(search(api, f"/fhir/{PPD}?_id={CERTICAN_PACKAGE},nope")) == [CERTICAN_PACKAGE]


def test_name_search_prefix_contains_and_exact(api: TestClient) -> None:
    assert CERTICAN_BRAND in ids(search(api, f"/fhir/{MPD}?name=certic"))
    assert CERTICAN_BRAND in ids(search(api, f"/fhir/{MPD}?name:contains=ERTICA"))
    assert CERTICAN_BRAND not in ids(search(api, f"/fhir/{MPD}?name=ertica"))
    brand = search(
        api, f"/fhir/{MPD}/{CERTICAN_BRAND}".replace(f"/{CERTICAN_BRAND}", f"?_id={CERTICAN_BRAND}")
    )
    name = brand["entry"][0]["resource"]["name"][0]["productName"]
    assert "," in name  # a comma in a value is escaped (\\,), or it separates alternatives
    exact = quote(name.replace(",", "\\,"))
    assert ids(search(api, f"/fhir/{MPD}?name:exact={exact}")) == [CERTICAN_BRAND]
    assert ids(search(api, f"/fhir/{MPD}?name:exact={exact.upper()}")) == []


def test_products_by_atc(api: TestClient) -> None:
    found = ids(search(api, f"/fhir/{MPD}?product-classification={ATC}|L04AA18"))
    assert CERTICAN_BRAND in found
    assert ids(search(api, f"/fhir/{MPD}?product-classification={ATC}|L04AA18,{ATC}|Z99ZZ99")) == found
    assert ids(search(api, f"/fhir/{MPD}?product-classification=L04AA18")) == found
    either = ids(search(api, f"/fhir/{MPD}?product-classification={ATC}|L04AA18,{ATC}|C09CA06&_count=100"))
    assert set(found) < set(either)


def test_packages_of_a_product_by_reference(api: TestClient) -> None:
    for value in (
        CERTICAN_BRAND,
        f"{MPD}/{CERTICAN_BRAND}",
        f"http://testserver/fhir/{MPD}/{CERTICAN_BRAND}",
    ):
        assert CERTICAN_PACKAGE in ids(search(api, f"/fhir/{PPD}?package-for={value}")), value
    assert CERTICAN_PACKAGE in ids(search(api, f"/fhir/{PPD}?package-for:{MPD}={CERTICAN_BRAND}"))
    search(api, f"/fhir/{PPD}?package-for:Patient={CERTICAN_BRAND}", status=400)


def test_include_and_revinclude(api: TestClient) -> None:
    inc = search(api, f"/fhir/{PPD}?identifier=014884&_include={PPD}:package-for")
    assert ids(inc) == [CERTICAN_PACKAGE] and ids(inc, "include") == [CERTICAN_BRAND]
    rev = search(api, f"/fhir/{MPD}?_id={CERTICAN_BRAND}&_revinclude={PPD}:package-for")
    assert ids(rev) == [CERTICAN_BRAND] and CERTICAN_PACKAGE in ids(rev, "include")
    search(api, f"/fhir/{MPD}?_include={PPD}:package-for", status=400)  # not this search's type


def test_paging_to_the_end_gives_every_package_once(api: TestClient) -> None:
    url: str | None = f"/fhir/{PPD}?_count=10"
    seen: list[str] = []
    pages = 0
    while url:
        page = search(api, url)
        seen += ids(page)
        pages += 1
        links = {link["relation"]: link["url"] for link in page["link"]}
        assert "_snapshot=" in links["self"]
        url = links.get("next")
    assert pages == 11 and len(seen) == len(set(seen)) == 107
    assert seen == sorted(seen)  # default order: by id
    last = search(api, f"/fhir/{PPD}?_count=10&_offset=100")
    assert {link["relation"] for link in last["link"]} == {"self", "first", "previous"}


def test_sort_by_name_and_last_updated(api: TestClient) -> None:
    def names(url: str) -> list[str]:
        return [e["resource"]["name"][0]["productName"] for e in search(api, url)["entry"]]

    ascending = names(f"/fhir/{MPD}?_sort=name&_count=200")
    descending = names(f"/fhir/{MPD}?_sort=-name&_count=200")
    assert len(ascending) == len(descending) == 78  # 75 brands, 3 LegemiddelVirkestoff
    assert [normalise(n) for n in ascending] == sorted(normalise(n) for n in ascending)
    assert [normalise(n) for n in descending] == sorted((normalise(n) for n in ascending), reverse=True)
    assert len(ids(search(api, f"/fhir/{MPD}?_sort=-_lastUpdated&_count=5"))) == 5
    search(api, f"/fhir/{MPD}?_sort=package-for", status=400)


def test_summary_count_elements_and_total(api: TestClient) -> None:
    count = search(api, f"/fhir/{PPD}?_summary=count")
    assert count["total"] == 107 and "entry" not in count
    assert "total" not in search(api, f"/fhir/{PPD}?_count=1")  # _total defaults to none
    assert search(api, f"/fhir/{PPD}?_count=1&_total=accurate")["total"] == 107
    shaped = search(api, f"/fhir/{PPD}?identifier=014884&_elements=identifier")["entry"][0]["resource"]
    assert set(shaped) == {"resourceType", "id", "meta", "identifier"}
    assert {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "SUBSETTED",
    } in shaped["meta"]["tag"]
    summary = search(api, f"/fhir/{PPD}?identifier=014884&_summary=true")["entry"][0]["resource"]
    assert "extension" not in summary and "identifier" in summary
    read_summary = api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}?_summary=true").json()
    assert read_summary == summary


def test_tag_and_last_updated(api: TestClient) -> None:
    tier = "https://grunndata.no/fhir/CodeSystem/tier"
    assert search(api, f"/fhir/{PPD}?_tag={tier}|national&_total=accurate&_count=1")["total"] == 107
    search(api, f"/fhir/{PPD}?_tag={tier}|sector", status=403)  # no token: the sector tier is closed
    assert search(api, f"/fhir/{PPD}?_lastUpdated=gt2020-01-01&_total=accurate&_count=1")["total"] == 107
    assert search(api, f"/fhir/{PPD}?_lastUpdated=lt2020-01-01&_total=accurate&_count=1")["total"] == 0
    search(api, f"/fhir/{PPD}?_lastUpdated=yesterday", status=400)


def test_unknown_parameters_are_ignored_unless_strict(api: TestClient) -> None:
    lenient = search(api, f"/fhir/{PPD}?identifier=014884&colour=blue")
    assert ids(lenient) == [CERTICAN_PACKAGE]
    assert "colour" not in lenient["link"][0]["url"]
    outcome = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert "colour" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    strict = api.get(f"/fhir/{PPD}?identifier=014884&colour=blue", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400 and "colour" in strict.json()["issue"][0]["diagnostics"]


def test_bad_parameter_values_are_400(api: TestClient) -> None:
    for query in (
        "_count=-1",
        "_count=abc",
        "_count=100000",
        "_count=%D9%A1%D9%A2",  # Arabic-Indic digits: Python's int() reads them as 12
        "_count=%2B5",
        "_count=1_0",
        "_offset=%205",
        "_count=" + "9" * 30,
        "_summary=maybe",
        "_total=some",
        "identifier=",
        "identifier:contains=01",
        "_id=bad_id!",
        "_snapshot=x.y",
        "_include=nonsense",
        f"_revinclude={PPD}:identifier",
    ):
        r = api.get(f"/fhir/{PPD}?{query}")
        assert r.status_code == 400, query
        assert r.json()["issue"][0]["code"] == "invalid", query


def test_post_search_matches_get_and_needs_a_form(api: TestClient) -> None:
    posted = api.post(f"/fhir/{PPD}/_search", data={"identifier": "014884"})
    assert posted.status_code == 200 and ids(posted.json()) == [CERTICAN_PACKAGE]
    assert api.post(f"/fhir/{PPD}/_search", json={"identifier": "014884"}).status_code == 415


def test_search_answers_in_xml(api: TestClient) -> None:
    r = api.get(f"/fhir/{PPD}?identifier=014884&_format=xml")
    assert r.status_code == 200
    bundle = get_fhir_model_class("Bundle").model_validate_xml(r.content)
    assert bundle.entry[0].resource.id == CERTICAN_PACKAGE


def test_everything_gives_the_product_and_what_belongs_to_it(api: TestClient) -> None:
    r = search(api, f"/fhir/{MPD}/{CERTICAN_BRAND}/$everything")
    types = {e["resource"]["resourceType"] for e in r["entry"]}
    assert r["entry"][0]["resource"]["id"] == CERTICAN_BRAND
    assert CERTICAN_PACKAGE in ids(r, "include")
    assert {PPD, "Ingredient", "SubstanceDefinition"} <= types
    assert [
        (e["resource"]["id"], e["resource"]["contained"][0]["name"])
        for e in r["entry"]
        if e["resource"]["resourceType"] == "RegulatedAuthorization"
    ] == [(CERTICAN_BRAND, "Novartis Norge (2)")]  # its holder, from the Produsent
    assert api.get(f"/fhir/{MPD}/00000000-0000-0000-0000-000000000000/$everything").status_code == 404


def test_a_colon_without_a_modifier_is_refused(api: TestClient) -> None:
    answer = search(api, f"/fhir/{PPD}?identifier:=014884", status=400)
    assert answer["issue"][0]["diagnostics"] == "identifier:: a ':' must be followed by a modifier"
    assert ids(search(api, f"/fhir/{PPD}?identifier=014884")) != []
