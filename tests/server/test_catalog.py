"""The service catalogue over HTTP: /catalog.json, FHIR Endpoint and Organization, and the page.

The store holds the real FEST extract and vendor-a's supplementary notes; partners.yaml adds DMP's
SAFEST API, the FEST web service and vendor-a's own FHIR service, which the probe found up at
10:00 and refused at 10:05. Our FHIR API was up both times; nothing else was ever probed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.endpoint import Endpoint
from fhir.resources.organization import Organization
from sqlalchemy.engine import Engine

from grunndata.catalog.files import CatalogueError
from grunndata.catalog.probe import ProbeResult
from grunndata.importers.fest import import_fest
from grunndata.importers.tiered import import_tiered
from grunndata.server import create_app
from grunndata.server.auth import Authenticator, AuthSettings
from grunndata.server.catalog import CatalogueView
from grunndata.server.state import Served
from grunndata.settings import Settings
from grunndata.store import connect
from grunndata.store.probes import record
from tests.conftest import REAL_FEST, fresh_pg_database, require

DATA = Path(__file__).parent / "catalog_data"
PARTNERS = DATA / "partners.yaml"
HOSTILE = DATA / "hostile.yaml"
BROKEN = DATA / "broken.yaml"
DUPLICATE = DATA / "duplicate.yaml"
VENDOR_NOTES = DATA / "vendor-a-notes.csv"
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
PROBES = [
    ProbeResult("fhir", T0, True, 12.5, 200, "ok"),
    ProbeResult("vendor-a-notes", T0, True, 30.0, 200, "ok"),
    ProbeResult("fhir", T0 + timedelta(minutes=5), True, 8.25, 200, "ok"),
    ProbeResult("vendor-a-notes", T0 + timedelta(minutes=5), False, None, None, "connection refused"),
]
OURS = ["fhir", "supplementary-vendor-a", "m30", "translate", "code-systems", "catalog"]
THEIRS = ["dmp-safest", "fest-web-service", "vendor-a-notes"]
EVERY_ROUTE = [
    "/catalog",
    "/catalog.json",
    "/fhir/Endpoint",
    "/fhir/Endpoint/fhir",
    "/fhir/Organization",
    "/fhir/Organization/dmp",
]


def catalog_store(url: str) -> Engine:
    """A store with the real extract (DMP's national line) and vendor-a's supplementary notes."""
    engine = connect(url)
    import_fest(engine, require(REAL_FEST))
    import_tiered(engine, VENDOR_NOTES, tier="supplementary", owner="vendor-a", owner_name="Vendor A")
    return engine


def catalog_app(engine: Engine, files: list[Path], auth: Authenticator | None = None) -> FastAPI:
    """The server as app.py is to build it: the catalogue's routes ahead of the FHIR router's."""
    return create_app(engine, auth or Authenticator(AuthSettings()), files)


@dataclass
class Site:
    engine: Engine
    client: TestClient

    def get(self, path: str, **options: Any) -> Any:
        return self.client.get(path, **options)

    def ids(self, path: str) -> list[str]:
        answer = self.get(path)
        assert answer.status_code == 200, answer.text
        return [e["resource"]["id"] for e in answer.json().get("entry", []) if e["search"]["mode"] == "match"]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    def serve(url: str) -> Iterator[Site]:
        engine = catalog_store(url)
        record(engine, PROBES)
        with TestClient(catalog_app(engine, [PARTNERS])) as client:
            yield Site(engine, client)
        engine.dispose()

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'store.db'}")
        return
    with fresh_pg_database() as url:
        yield from serve(url)


# -- /catalog.json ------------------------------------------------------------------------------------


def test_the_json_feed_lists_our_services_then_the_files_with_what_probing_measured(site: Site) -> None:
    answer = site.get("/catalog.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["generated"])
    services = {s["id"]: s for s in body["services"]}
    assert list(services) == OURS + THEIRS
    assert services["vendor-a-notes"] == {
        "id": "vendor-a-notes",
        "name": "Vendor A storage notes",
        "description": "Handling and storage notes per package, keyed on varenr.",
        "owner": "vendor-a",
        "owner_name": "Vendor A",
        "tier": "supplementary",
        "interface": "fhir-r4",
        "base_url": "http://127.0.0.1:9/fhir",
        "resource_types": ["Basic"],
        "operations": ["read", "search-type"],
        "code_systems": [],
        "licence": "by agreement with Vendor A",
        "cadence": "daily",
        "latest_release": None,
        "status": "test",
        "origin": f"{PARTNERS.name}:25",  # the file, not where the server keeps it
        "availability": {
            "state": "down",
            "checks": 2,
            "up": 1,
            "share": 0.5,
            "last_checked": "2024-05-01T10:05:00.000Z",
            "last_up": False,
            "last_latency_ms": None,
            "last_message": "connection refused",
        },
    }
    assert services["fhir"]["base_url"] == "http://testserver/fhir"
    assert services["fhir"]["latest_release"] == "release 1, HentetDato 2017-04-12T18:26:27.336Z"
    assert services["fhir"]["availability"]["share"] == 1.0
    assert services["fhir"]["availability"]["last_latency_ms"] == 8.25
    assert services["dmp-safest"]["availability"] is None


def test_the_json_feed_filters_by_tier_and_owner_and_refuses_an_unknown_tier(site: Site) -> None:
    def ids(query: str) -> list[str]:
        return [s["id"] for s in site.get(f"/catalog.json?{query}").json()["services"]]

    assert ids("tier=supplementary") == ["supplementary-vendor-a", "vendor-a-notes"]
    assert ids("owner=dmp") == ["fhir", "m30", "translate", "code-systems", "catalog", *THEIRS[:2]]
    assert ids("tier=national&owner=vendor-a") == []
    answer = site.get("/catalog.json?tier=regional")
    assert answer.status_code == 400
    assert answer.json()["issue"][0]["diagnostics"] == (
        "unknown tier 'regional'; the tiers are national, sector, supplementary"
    )


# -- FHIR Endpoint and Organization ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", OURS + THEIRS),
        ("tier=supplementary", ["supplementary-vendor-a", "vendor-a-notes"]),
        ("tier=sector,supplementary", ["supplementary-vendor-a", "vendor-a-notes"]),
        ("owner=vendor-a", ["supplementary-vendor-a", "vendor-a-notes"]),
        ("organization=Organization/vendor-a", ["supplementary-vendor-a", "vendor-a-notes"]),
        ("owner=dmp&tier=supplementary", []),
        ("resource-type=Basic", ["fhir", "supplementary-vendor-a", "vendor-a-notes"]),
        ("resource-type=CodeSystem", ["code-systems", "dmp-safest"]),
        ("resource-type=MedicinalProduct&owner=dmp", ["dmp-safest"]),
        ("status=error", ["vendor-a-notes"]),  # declared test, but the last probe found it down
        ("status=active", OURS + THEIRS[:2]),
        ("status=off", []),
        ("_id=m30,translate", ["m30", "translate"]),
        ("name=vendor", ["supplementary-vendor-a", "vendor-a-notes"]),
        ("name=VENDOR A STORAGE", ["vendor-a-notes"]),
        ("name:contains=catalogue", ["catalog"]),
        ("name:exact=FEST web service", ["fest-web-service"]),
    ],
)
def test_endpoints_are_searched_by_tier_owner_resource_type_status_id_and_name(
    site: Site, query: str, expected: list[str]
) -> None:
    assert site.ids(f"/fhir/Endpoint?_count=50&{query}") == expected


def test_an_endpoint_search_is_a_searchset_bundle_paged_with_links(site: Site) -> None:
    first = site.get("/fhir/Endpoint?_count=4&tier=national")
    assert first.headers["content-type"] == "application/fhir+json; charset=utf-8"
    body = first.json()
    assert (body["resourceType"], body["type"], body["total"]) == ("Bundle", "searchset", 7)
    assert [e["fullUrl"] for e in body["entry"]] == [
        f"http://testserver/fhir/Endpoint/{i}" for i in ("fhir", "m30", "translate", "code-systems")
    ]
    links = {link["relation"]: link["url"] for link in body["link"]}
    assert links == {
        "self": "http://testserver/fhir/Endpoint?tier=national&_count=4&_offset=0",
        "first": "http://testserver/fhir/Endpoint?tier=national&_count=4&_offset=0",
        "next": "http://testserver/fhir/Endpoint?tier=national&_count=4&_offset=4",
    }
    second = site.get(links["next"]).json()
    assert [e["resource"]["id"] for e in second["entry"]] == ["catalog", "dmp-safest", "fest-web-service"]
    assert {link["relation"] for link in second["link"]} == {"self", "first", "previous"}
    counted = site.get("/fhir/Endpoint?_count=0").json()
    assert (counted["total"], "entry" in counted) == (9, False)


def test_an_endpoint_is_read_by_id_as_valid_fhir_r5_with_its_owner_and_availability(site: Site) -> None:
    answer = site.get("/fhir/Endpoint/vendor-a-notes")
    assert answer.status_code == 200
    endpoint = answer.json()
    Endpoint.model_validate(endpoint)
    assert (endpoint["status"], endpoint["address"], endpoint["name"]) == (
        "error",
        "http://127.0.0.1:9/fhir",
        "Vendor A storage notes",
    )
    assert endpoint["managingOrganization"] == {"reference": "Organization/vendor-a", "display": "Vendor A"}
    measured = next(e for e in endpoint["extension"] if e["url"].endswith("catalog-availability"))
    assert measured["extension"] == [
        {"url": "state", "valueCode": "down"},
        {"url": "checks", "valueInteger": 2},
        {"url": "up", "valueInteger": 1},
        {"url": "share", "valueDecimal": 0.5},
        {"url": "lastChecked", "valueInstant": "2024-05-01T10:05:00.000Z"},
        {"url": "lastMessage", "valueString": "connection refused"},
    ]
    as_xml = site.get("/fhir/Endpoint/fhir?_format=xml")
    assert as_xml.status_code == 200
    assert as_xml.headers["content-type"] == "application/fhir+xml; charset=utf-8"
    assert '<Endpoint xmlns="http://hl7.org/fhir"><id value="fhir"/>' in as_xml.text


def test_an_unknown_endpoint_or_organization_is_404_and_a_malformed_id_400(site: Site) -> None:
    for path, status, sentence in [
        ("/fhir/Endpoint/no-such-service", 404, "Endpoint/no-such-service is not known"),
        ("/fhir/Organization/nobody", 404, "Organization/nobody is not known"),
        ("/fhir/Endpoint/bad_id!", 400, "'bad_id!' is not a valid resource id"),
    ]:
        answer = site.get(path)
        assert answer.status_code == status, path
        assert answer.json()["issue"][0]["diagnostics"] == sentence


def test_organizations_are_the_owners_searched_by_id_name_and_tier(site: Site) -> None:
    assert site.ids("/fhir/Organization") == ["dmp", "vendor-a"]
    assert site.ids("/fhir/Organization?tier=supplementary") == ["vendor-a"]
    assert site.ids("/fhir/Organization?tier=national") == ["dmp"]
    assert site.ids("/fhir/Organization?name=direktoratet") == ["dmp"]
    assert site.ids("/fhir/Organization?_id=vendor-a,dmp") == ["dmp", "vendor-a"]
    vendor = site.get("/fhir/Organization/vendor-a").json()
    Organization.model_validate(vendor)
    assert (vendor["name"], vendor["endpoint"]) == (
        "Vendor A",
        [{"reference": "Endpoint/supplementary-vendor-a"}, {"reference": "Endpoint/vendor-a-notes"}],
    )


def test_an_unknown_search_parameter_is_ignored_with_a_warning_or_refused_when_strict(site: Site) -> None:
    body = site.get("/fhir/Endpoint?tier=sector&colour=green").json()
    outcome = body["entry"][-1]
    assert outcome["search"] == {"mode": "outcome"}
    assert outcome["resource"]["issue"][0]["diagnostics"] == (
        "ignored search parameter 'colour' (unknown for Endpoint)"
    )
    strict = site.get("/fhir/Endpoint?colour=green", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert strict.json()["issue"][0]["diagnostics"] == "unknown search parameter 'colour' for Endpoint"


def test_endpoints_and_organizations_take_the_common_parameters_as_every_searched_type(site: Site) -> None:
    counted = site.get("/fhir/Endpoint?tier=national&_summary=count").json()
    assert (counted["total"], "entry" in counted) == (7, False)
    assert site.get("/fhir/Organization?_summary=count").json()["total"] == 2
    assert site.ids("/fhir/Endpoint?_tag=supplementary") == ["supplementary-vendor-a", "vendor-a-notes"]
    shaped = site.get("/fhir/Endpoint?_id=m30&_elements=name").json()["entry"][0]["resource"]
    assert shaped == {
        "resourceType": "Endpoint",
        "id": "m30",
        "meta": {
            "source": "https://grunndata.no/owner/dmp",
            "tag": [
                {"system": "https://grunndata.no/fhir/CodeSystem/tier", "code": "national"},
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"},
            ],
        },
        "name": "FEST M30 export",
    }
    posted = site.client.post("/fhir/Endpoint/_search", data={"owner": "vendor-a", "_count": "1"}).json()
    assert [e["resource"]["id"] for e in posted["entry"]] == ["supplementary-vendor-a"]
    assert posted["total"] == 2
    bad = site.get("/fhir/Endpoint?_count=1001")
    assert bad.json()["issue"][0]["diagnostics"] == "_count must be between 0 and 1000, not 1001"
    unsorted = site.get("/fhir/Endpoint?_sort=name")
    assert (unsorted.status_code, unsorted.json()["issue"][0]["diagnostics"]) == (
        400,
        "_sort is not supported for Endpoint: it is searched in the catalogue's list",
    )


def test_the_capability_statement_lists_endpoint_and_organization_with_their_parameters(site: Site) -> None:
    resources = {r["type"]: r for r in site.get("/fhir/metadata").json()["rest"][0]["resource"]}
    endpoint = resources["Endpoint"]
    assert [i["code"] for i in endpoint["interaction"]] == ["read", "search-type"]
    assert [(p["name"], p["type"]) for p in endpoint["searchParam"]] == [
        ("_id", "token"),
        ("_lastUpdated", "date"),
        ("_tag", "token"),
        ("name", "string"),
        ("status", "token"),
        ("organization", "reference"),
        ("owner", "reference"),
        ("tier", "token"),
        ("resource-type", "token"),
    ]
    assert [p["name"] for p in resources["Organization"]["searchParam"]] == [
        "_id",
        "_lastUpdated",
        "_tag",
        "identifier",
        "name",
        "type",
        "active",
        "partof",
        "tier",
        "content-filter",  # the store holds Organizations: a view may be asked (it leaves none out)
    ]
    documented = site.get("/openapi.json").json()["paths"]
    assert [p["name"] for p in documented["/fhir/Endpoint"]["get"]["parameters"]][:5] == [
        "_id",
        "_lastUpdated",
        "_tag",
        "name",
        "name:exact",
    ]


@pytest.mark.parametrize("path", EVERY_ROUTE)
def test_a_bad_token_is_401_on_every_catalogue_route(site: Site, path: str) -> None:
    answer = site.get(path, headers={"Authorization": "Bearer not-a-token"})
    assert answer.status_code == 401
    if path == "/catalog":  # a page: the pages' 401 page (pages/guard.py), as on every page
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert "<h1>Tokenet gjelder ikke</h1>" in answer.text
        return
    assert answer.json()["issue"][0]["code"] == "login"


# -- the page ---------------------------------------------------------------------------------------


def cards(page: str) -> dict[str, str]:
    """Service id -> the state its card shows."""
    return dict(re.findall(r"<article class='card \w+' id='service-([a-z0-9-]+)' data-state='(\w+)'>", page))


def test_the_page_shows_each_service_as_a_card_with_its_state_at_a_glance(site: Site) -> None:
    answer = site.get("/catalog")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    page = answer.text
    assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in page
    assert "<script" not in page  # no JavaScript needed
    assert cards(page) == {
        "fhir": "up",
        "supplementary-vendor-a": "unknown",
        "m30": "unknown",
        "translate": "unknown",
        "code-systems": "unknown",
        "catalog": "unknown",
        "dmp-safest": "unknown",
        "fest-web-service": "unknown",
        "vendor-a-notes": "down",
    }
    assert (
        "<strong>9 services</strong> <span class='badge up'>1 up</span> "
        "<span class='badge down'>1 down</span> <span class='badge unknown'>7 unknown</span>"
    ) in page
    vendor = page.split("id='service-vendor-a-notes'")[1].split("</article>")[0]
    assert "<h3>Vendor A storage notes <span class='declared'>test</span></h3>" in vendor
    assert "<span class='badge down'>down</span>" in vendor
    assert "50 % up over 2 checks · connection refused · checked 2024-05-01 10:05 UTC" in vendor
    assert "Vendor A &middot; supplementary &middot; FHIR R4 REST" in vendor
    assert "<a class='url' href='http://127.0.0.1:9/fhir'>http://127.0.0.1:9/fhir</a>" in vendor
    assert "<dt>Licence</dt><dd>by agreement with Vendor A</dd><dt>Cadence</dt><dd>daily</dd>" in vendor
    ours = page.split("id='service-fhir'")[1].split("</article>")[0]
    assert "100 % up over 2 checks · 8 ms · checked 2024-05-01 10:05 UTC" in ours
    assert "<dd>release 1, HentetDato 2017-04-12T18:26:27.336Z</dd>" in ours
    soap = page.split("id='service-fest-web-service'")[1].split("</article>")[0]
    assert "not probed (only FHIR interfaces are)" in soap


def test_the_page_filters_by_tier_and_owner_with_plain_links(site: Site) -> None:
    page = site.get("/catalog?tier=supplementary&owner=vendor-a").text
    assert list(cards(page)) == ["supplementary-vendor-a", "vendor-a-notes"]
    tiers = page.split("<p id='tier-filter'>")[1].split("</p>")[0]
    assert tiers == (
        "<span>Tier</span><a href='/catalog?owner=vendor-a'>all</a>"
        "<a href='/catalog?tier=national&amp;owner=vendor-a'>national</a>"
        "<a href='/catalog?tier=supplementary&amp;owner=vendor-a' aria-current='page'>supplementary</a>"
    )
    owners = page.split("<p id='owner-filter'>")[1].split("</p>")[0]
    assert owners == (
        "<span>Owner</span><a href='/catalog?tier=supplementary'>all</a>"
        "<a href='/catalog?tier=supplementary&amp;owner=dmp'>Direktoratet for medisinske produkter (DMP)</a>"
        "<a href='/catalog?tier=supplementary&amp;owner=vendor-a' aria-current='page'>Vendor A</a>"
    )
    assert list(cards(site.get("/catalog?owner=dmp").text)) == [*OURS[:1], *OURS[2:], *THEIRS[:2]]
    nobody = site.get("/catalog?owner=nobody").text
    assert cards(nobody) == {} and "<p id='none'>No service matches these filters.</p>" in nobody


def test_an_unknown_tier_is_a_400_page_that_leads_back(site: Site) -> None:
    answer = site.get("/catalog?tier=<b>regional</b>")
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert (
        "<p id='error'>unknown tier &#x27;&lt;b&gt;regional&lt;/b&gt;&#x27;; "
        "the tiers are national, sector, supplementary</p>"
    ) in answer.text
    assert "<a href='/catalog'>All services</a>" in answer.text


# -- catalogue files ---------------------------------------------------------------------------------


def test_a_hostile_catalogue_file_is_shown_as_text_never_as_markup(site: Site) -> None:
    with TestClient(catalog_app(site.engine, [HOSTILE])) as client:
        page = client.get("/catalog").text
    card = page.split("id='service-hostile'")[1].split("</article>")[0]
    assert "<h3>&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;</h3>" in card
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot;" in card
    assert "&lt;b&gt;Mallory &amp; Co&lt;/b&gt;" in card
    assert "href='https://example.org/?q=&lt;script&gt;&amp;x=&#x27;y&#x27;'" in card
    assert "<code>&lt;i&gt;Basic&lt;/i&gt;</code>" in card
    assert "<dd>&lt;/dd&gt;&lt;/dl&gt;&lt;h1&gt;owned&lt;/h1&gt;</dd>" in card
    assert "<script" not in page and "<img" not in page and "<h1>owned" not in page


def test_a_broken_catalogue_file_stops_the_server_at_start_naming_file_and_line(site: Site) -> None:
    with pytest.raises(CatalogueError) as caught:
        CatalogueView(Served(site.engine), [PARTNERS, BROKEN])
    assert caught.value.problems == [f"{BROKEN}:2: the service `broken` has no `tier`"]


def test_a_file_taking_one_of_our_ids_stops_the_server_at_start_naming_file_and_line(site: Site) -> None:
    with pytest.raises(CatalogueError) as caught:
        catalog_app(site.engine, [DUPLICATE])
    assert caught.value.problems == [
        f"{DUPLICATE}:2: the id `fhir` is reserved for grunndata's own services (catalog, code-systems, fhir, fhir-sector, m30, translate, sector-<owner>, supplementary-<owner>); choose another"
    ]


def test_the_catalogue_files_come_from_grunndata_catalog_separated_like_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRUNNDATA_CATALOG", os.pathsep.join([str(PARTNERS), str(HOSTILE), ""]))
    assert list(Settings.load().catalog) == [PARTNERS, HOSTILE]
    assert list(Settings.load({"GRUNNDATA_CATALOG": ""}).catalog) == []


def test_when_a_restricted_feed_last_published_is_shown_only_to_its_readers(
    site: Site, tmp_path: Path
) -> None:
    from tests.server.tokens import Issuer

    issuer = Issuer(tmp_path)
    with TestClient(catalog_app(site.engine, [PARTNERS], issuer.authenticator())) as client:
        anonymous = client.get("/catalog.json").json()["services"]
        reader = client.get(
            "/catalog.json", headers=issuer.headers("grunndata:supplementary.read:vendor-a")
        ).json()["services"]
    feed = "supplementary-vendor-a"
    assert next(s for s in anonymous if s["id"] == feed)["latest_release"] is None
    assert next(s for s in reader if s["id"] == feed)["latest_release"].startswith("release 2, activated ")
    assert next(s for s in anonymous if s["id"] == "fhir")["latest_release"].startswith("release 1")
