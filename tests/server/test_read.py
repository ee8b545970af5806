"""An EPJ reads a package by id: the stored bytes, with version headers, 304s, formats and clear errors."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources import get_fhir_model_class
from lxml import etree

from grunndata.server import create_app
from grunndata.server.state import http_date
from grunndata.settings import Settings
from grunndata.store import Version
from tests.server.conftest import CERTICAN_BRAND, CERTICAN_PACKAGE, VARENR, served_store

PPD = "PackagedProductDefinition"


def test_read_gives_the_package_with_version_headers(api: TestClient) -> None:
    r = api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/fhir+json; charset=utf-8"
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["last-modified"].endswith(" GMT")
    body = r.json()
    assert body["resourceType"] == PPD and body["id"] == CERTICAN_PACKAGE
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["tag"] == [
        {"system": "https://grunndata.no/fhir/CodeSystem/tier", "code": "national"}
    ]
    assert body["meta"]["source"] == "https://grunndata.no/owner/dmp"
    assert {"system": VARENR, "value": "014884"} in body["identifier"]
    assert body["packageFor"] == [{"reference": f"MedicinalProductDefinition/{CERTICAN_BRAND}"}]
    get_fhir_model_class(PPD).model_validate(body)


def test_unchanged_resource_answers_304(api: TestClient) -> None:
    first = api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}")
    again = api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    since = api.get(
        f"/fhir/{PPD}/{CERTICAN_PACKAGE}", headers={"If-Modified-Since": first.headers["last-modified"]}
    )
    assert since.status_code == 304
    older = api.get(
        f"/fhir/{PPD}/{CERTICAN_PACKAGE}", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
    )
    assert older.status_code == 200
    other = api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}", headers={"If-None-Match": 'W/"7"'})
    assert other.status_code == 200


def test_vread_gives_the_version_and_404_for_a_version_that_never_was(api: TestClient) -> None:
    r = api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}/_history/1")
    assert r.status_code == 200 and r.json()["meta"]["versionId"] == "1"
    missing = api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}/_history/9")
    assert missing.status_code == 404
    assert "has no version 9" in missing.json()["issue"][0]["diagnostics"]
    assert api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}/_history/x").status_code == 400


def test_xml_by_accept_and_by_format(api: TestClient) -> None:
    for r in (
        api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}", headers={"Accept": "application/fhir+xml"}),
        api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}?_format=xml"),
    ):
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/fhir+xml; charset=utf-8"
        root = etree.fromstring(r.content)
        assert root.tag == "{http://hl7.org/fhir}PackagedProductDefinition"
        assert root.find("{http://hl7.org/fhir}id").get("value") == CERTICAN_PACKAGE
        parsed = get_fhir_model_class(PPD).model_validate_xml(r.content)
        assert parsed.id == CERTICAN_PACKAGE
    assert (
        api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}?_format=json")
        .headers["content-type"]
        .startswith("application/fhir+json")
    )


def test_pretty_json_is_the_same_resource(api: TestClient) -> None:
    plain = api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}")
    pretty = api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}?_pretty=true")
    assert b"\n  " in pretty.content and pretty.json() == plain.json()


def test_errors_are_operation_outcomes_with_the_right_status(api: TestClient) -> None:
    cases = {
        f"/fhir/{PPD}/00000000-0000-0000-0000-000000000000": (404, "not-found"),
        f"/fhir/Patient/{CERTICAN_PACKAGE}": (404, "not-supported"),
        f"/fhir/{PPD}/bad_id!": (400, "invalid"),
        f"/fhir/{PPD}/{CERTICAN_PACKAGE}?_format=text/csv": (406, "not-supported"),
        "/fhir/nothing/here/at/all/x": (404, "not-found"),
    }
    for url, (status, code) in cases.items():
        r = api.get(url)
        assert r.status_code == status, url
        outcome = r.json()
        assert outcome["resourceType"] == "OperationOutcome", url
        assert outcome["issue"][0]["code"] == code, url
        get_fhir_model_class("OperationOutcome").model_validate(outcome)
    refused = api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}", headers={"Accept": "text/plain"})
    assert refused.status_code == 406 and refused.json()["resourceType"] == "OperationOutcome"
    for method in ("put", "delete", "patch"):
        r = getattr(api, method)(f"/fhir/{PPD}/{CERTICAN_PACKAGE}")
        assert r.status_code == 405, method
        assert r.json()["issue"][0]["code"] == "not-supported"
    assert api.post(f"/fhir/{PPD}", json={"resourceType": PPD}).status_code == 405


def test_capability_statement_lists_every_type_and_parameter(api: TestClient) -> None:
    r = api.get("/fhir/metadata")
    assert r.status_code == 200
    cs = get_fhir_model_class("CapabilityStatement").model_validate(r.json())
    assert cs.fhirVersion == "5.0.0"
    resources = {res.type: res for res in cs.rest[0].resource}
    assert set(resources) >= {
        "MedicinalProductDefinition",
        "PackagedProductDefinition",
        "ManufacturedItemDefinition",
        "AdministrableProductDefinition",
        "Ingredient",
        "SubstanceDefinition",
        "ClinicalUseDefinition",
        "CodeSystem",
    }
    ppd_params = {p.name: p.type for p in resources[PPD].searchParam}
    assert ppd_params["identifier"] == "token" and ppd_params["package-for"] == "reference"
    assert ppd_params["_lastUpdated"] == "date"
    assert f"{PPD}:package-for" in resources[PPD].searchInclude
    assert f"{PPD}:package-for" in resources["MedicinalProductDefinition"].searchRevInclude
    xml = api.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"})
    assert etree.fromstring(xml.content).tag == "{http://hl7.org/fhir}CapabilityStatement"


def test_the_fast_read_path_sends_what_the_full_route_sends(api: TestClient) -> None:
    fast = api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}")  # plain: answered by server/fastpath.py
    full = api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}?_format=json")  # a query string: the FastAPI route
    assert fast.content == full.content
    for header in ("content-type", "content-length", "etag", "last-modified"):
        assert fast.headers[header] == full.headers[header], header
    # what the fast path does not answer still gets the full treatment
    assert (
        api.get(f"/fhir/{PPD}/00000000-0000-0000-0000-000000000000").json()["issue"][0]["code"] == "not-found"
    )
    assert api.get(
        f"/fhir/{PPD}/{CERTICAN_PACKAGE}", headers={"Accept": "application/fhir+xml"}
    ).content.startswith(b"<?xml")


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        ("application/fhir+json;q=0", 406),  # JSON refused, nothing else acceptable
        ("application/fhir+ndjson", 406),
        ("text/json-seq", 406),
        ("application/jsonpath", 406),
        ("application/fhir+xml;q=0.9, application/fhir+json;q=0.1", 200),  # XML preferred
        ("application/fhir+json; charset=utf-8", 200),
        ("application/fhir+ndjson, */*;q=0.1", 200),
    ],
)
def test_the_fast_path_negotiates_as_the_route_does(api: TestClient, accept: str, status: int) -> None:
    for path in (f"/fhir/{PPD}/{CERTICAN_PACKAGE}", f"/fhir-r4/MedicinalProductPackaged/{CERTICAN_PACKAGE}"):
        fast = api.get(path, headers={"Accept": accept})  # plain: the fast path's to answer or pass on
        full = api.get(f"{path}?_pretty=false", headers={"Accept": accept})  # the route's
        assert (fast.status_code, full.status_code) == (status, status), (path, accept)
        assert fast.headers["content-type"] == full.headers["content-type"], (path, accept)


def test_every_type_the_translators_make_is_served() -> None:
    from grunndata.fhir import SERVED_TYPES, TERMINOLOGY_TYPES
    from grunndata.translators.fest_to_idmp.rules import RESOURCE_TYPES
    from grunndata.translators.safest import R5_TYPES

    # SAFEST brings RegulatedAuthorization, an ePI document Bundle its Composition and Organization;
    # everything SAFEST may bring is served, ConceptMaps by the terminology routes, from the map index
    assert set(SERVED_TYPES) == RESOURCE_TYPES | {
        "RegulatedAuthorization",
        "ValueSet",
        "Composition",
        "Organization",
    }
    assert set(SERVED_TYPES) | {"ConceptMap"} == set(R5_TYPES) | TERMINOLOGY_TYPES


def test_reads_work_with_the_read_cache_off(tmp_path: Path) -> None:
    """GRUNNDATA_READ_CACHE=0 (how benchmarks run with caches off) keeps nothing and answers every
    read from the store; it made every read a 500 once (an eviction from the empty cache)."""
    engine = served_store(f"sqlite:///{tmp_path / 'store.db'}")
    settings = Settings(db="sqlite://", read_cache=0)
    with TestClient(create_app(engine, settings=settings)) as client:
        for _ in range(2):
            response = client.get(f"/fhir/PackagedProductDefinition/{CERTICAN_PACKAGE}")
            assert response.status_code == 200, response.text
            assert response.json()["id"] == CERTICAN_PACKAGE
    engine.dispose()


def test_a_path_with_a_trailing_slash_is_no_redirect_built_from_the_host_header(api: TestClient) -> None:
    """The framework answered 307 with an empty body and a Location made of the Host header (probe)."""
    for path in (f"/fhir/PackagedProductDefinition/{CERTICAN_PACKAGE}/", "/fhir/PackagedProductDefinition/"):
        r = api.get(path, headers={"host": "evil.example"}, follow_redirects=False)
        assert r.status_code == 404, path
        assert "location" not in r.headers
        assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 12, 7, 21, 5, 55, 123456),  # stored naive: UTC
        datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 59, 59, tzinfo=timezone(timedelta(hours=2))),  # the day before in UTC
        datetime(1, 1, 9, 3, 4, 5),  # every field padded
        datetime(9999, 12, 31, 10, 59, 59, tzinfo=timezone(timedelta(hours=-12), "far west")),
    ],
)
def test_last_modified_is_the_email_date_of_the_version_s_time_in_utc(when: datetime) -> None:
    version = Version(1, "Basic", "x", 1, when, "national", "dmp", b"{}")
    utc = (when.replace(tzinfo=UTC) if when.tzinfo is None else when).astimezone(UTC)
    assert http_date(version) == format_datetime(utc, usegmt=True)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"accept-encoding": "gzip"},
        {"accept-encoding": "br, gzip", "user-agent": "EPJ"},
        {"x-request-id": "epj-42", "accept": "application/json"},
    ],
)
def test_a_plain_read_is_answered_in_front_of_the_layers_with_what_they_send(
    api: TestClient, headers: dict[str, str]
) -> None:
    """A cached read by id is answered before any ASGI layer (server/fastpath.py HotReads): with
    the bytes and every header the layers would have sent (request id, Vary, Cache-Control, coding)."""
    path = f"/fhir/{PPD}/{CERTICAN_PACKAGE}"
    app: Any = api.app
    assert api.get(path).status_code == 200  # the first request builds the layers, and the lane
    hot = app.hot
    assert hot is not None

    def scope() -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "scheme": "http",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 50000),
            "root_path": "",
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(k.encode(), v.encode()) for k, v in {"host": "testserver", **headers}.items()],
        }

    async def answer(through: Any) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        if through is hot:
            assert await hot(scope(), send) is True  # answered by the lane, nothing else
        else:
            app.hot = None
            try:
                await app(scope(), receive, send)
            finally:
                app.hot = hot
        return sent

    lane, layers = asyncio.run(answer(hot)), asyncio.run(answer(app))
    assert [m["type"] for m in lane] == ["http.response.start", "http.response.body"]
    assert lane[0]["status"] == layers[0]["status"] == 200
    assert lane[1]["body"] == layers[1]["body"]
    names = [k for k, _ in lane[0]["headers"]]
    assert names == [k for k, _ in layers[0]["headers"]]  # the same headers in the same order
    ids = [dict(m[0]["headers"])[b"x-request-id"] for m in (lane, layers)]
    assert [h for h in lane[0]["headers"] if h[0] != b"x-request-id"] == [
        h for h in layers[0]["headers"] if h[0] != b"x-request-id"
    ]
    if "x-request-id" in headers:
        assert ids == [b"epj-42", b"epj-42"]
    else:
        assert all(re.fullmatch(b"[0-9a-f]{32}", i) for i in ids) and ids[0] != ids[1]
    sent = dict(lane[0]["headers"])
    assert sent[b"cache-control"] == b"public, no-cache" and b"Accept" in sent[b"vary"]
    assert sent.get(b"content-encoding") == {"gzip": b"gzip", "br, gzip": b"br"}.get(
        headers.get("accept-encoding", "")
    )


def test_a_read_of_nothing_served_asks_the_read_cache_no_more_than_before(api: TestClient) -> None:
    """The lane found nothing to send: the layers answer the 404 without the fast path asking the
    cache again (the lane's lookup and the route's: two, as before the lane)."""

    def misses() -> float:
        text = api.get("/metrics").text
        found = re.search(r'grunndata_cache_lookups_total\{cache="read",result="miss"\} ([0-9.e+]+)', text)
        return float(found.group(1)) if found else 0.0

    api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}")  # the lane is built at the first request
    before = misses()
    missing = api.get(f"/fhir/{PPD}/00000000-0000-0000-0000-000000000001")
    assert missing.status_code == 404 and missing.json()["issue"][0]["code"] == "not-found"
    assert misses() - before == 2.0
