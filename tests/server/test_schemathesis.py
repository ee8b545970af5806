"""Whatever a client sends, the live server answers without a 5xx (schemathesis, bounded and derandomized).

Two OpenAPI documents drive the fuzzing: the one the server publishes at /openapi.json (one route
per served type, with its search and result parameters, generated from the search-parameter
table), and one built here from the CapabilityStatement, with real ids and boundary values among
the generated ones. Each operation gets 30 positive and negative cases.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.errors import FailureGroup

from tests.server.conftest import ATC, CERTICAN_BRAND, CERTICAN_PACKAGE, VARENR
from tests.server.live import LiveServer, live_server  # noqa: F401 (the fixture `live`)

MPD, PPD = "MedicinalProductDefinition", "PackagedProductDefinition"
FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same requests on every run, so CI does not flake
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def fuzz(schema: schemathesis.BaseSchema, base_url: str) -> None:
    """Send every operation's generated requests; fail listing each operation that got a 5xx."""
    failures = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if isinstance(result, Err):  # an operation the document describes wrongly
                failures.append(str(result.err()))
                continue
            operation = result.ok()
            cases = st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
            )

            @FUZZ
            @given(case=cases)
            def no_server_error(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url, session, checks=[not_a_server_error])

            try:
                no_server_error()
            except (FailureGroup, Exception) as e:  # every operation is tried; the report lists them all
                failures.append(f"{operation.label}:\n{e}")
    assert not failures, "\n\n".join(failures)


def test_the_published_openapi_document_gives_no_server_error(live: LiveServer) -> None:
    """30 cases an operation: GRUNNDATA_SLOW=1's. In CI, tests/server/test_openapi.py sends every
    operation of the same document positive and negative cases with `--checks all`, which holds
    not_a_server_error, so this deeper run repeats its question with more examples."""
    if os.environ.get("GRUNNDATA_SLOW") != "1":
        pytest.skip(
            "the deeper fuzz of the published document is GRUNNDATA_SLOW=1's (test_openapi.py checks it in CI)"
        )
    fuzz(schemathesis.openapi.from_url(live.url + "/openapi.json"), live.url)


# -- an OpenAPI document from the CapabilityStatement ----------------------------------------------


def known(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def either(listed: list[str], regex: str) -> dict[str, Any]:
    """The values listed (real ids, boundary cases) or values matching `regex`.

    The regex must not match the listed values: the generator folds a branch into another that
    covers it, and the listed values would then come up no more often than any other string.
    """
    return {"anyOf": [known(*listed), {"type": "string", "pattern": regex}]}


ANY: dict[str, Any] = {"type": "string"}
# Positive cases draw from these; negative cases from what they exclude.
DATE = either(
    [
        "ge2017-01-01",
        "lt2017-04-26T03:00:00+02:00",
        "2017-02-30",
        "0001",
        "0001-01-01T00:00:00+14:00",
        "9999",
        "9999-12",
        "9999-12-31",
        "sa9999-12-31T23:59:59.999Z",
    ],
    r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?[12][0-9]{3}(-[0-9]{2}(-[0-9]{2}"
    r"(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?$",
)
TOKEN = either(
    [f"{VARENR}|014884", "014884", f"{ATC}|L04AA18", f"{VARENR}|", f"014884,{ATC}|L04AA18", "a\\,b", "|"],
    r"^([a-z]+://[a-z./-]{1,30})?\|?[a-z_-]{0,20}$",
)
REFERENCE = either(
    [CERTICAN_BRAND, f"{MPD}/{CERTICAN_BRAND}", f"http://elsewhere/fhir/{MPD}/{CERTICAN_BRAND}"],
    r"^([A-Z][a-z]{2,40}/)?[a-z0-9.-]{1,70}$",
)
WHOLE_NUMBER = either(
    ["0", "-1", "1000", "1001", "10000000", "10000001", "9223372036854775807", "9223372036854775808"],
    r"^[1-9][0-9]{0,2}$",
)
SNAPSHOT = either(
    ["0", "-1", "9223372036854775808", "1.99999999999999999999"], r"^[1-9][0-9]?(\.[1-9][0-9]?){0,2}$"
)
VALUES = {
    "date": DATE,
    "token": TOKEN,
    "reference": REFERENCE,
    "string": ANY,
    "uri": ANY,
    "special": known("h-resept", "H-RESEPT", ""),  # content-filter: a view by name
}
MODIFIERS = {
    "string": ("exact", "contains"),
    "token": ("not", "text", "missing"),
    "reference": ("identifier",),
}
RID = {"type": "string", "pattern": r"^[a-z0-9.-]{1,70}$"}


def _param(where: str, name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": schema}


def _get(*parameters: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"parameters": list(parameters), "responses": {"default": {"description": "any"}}}}


NEGOTIATION = (
    _param("query", "_format", known("json", "xml", "application/fhir+xml", "text/html")),
    _param("query", "_pretty", known("true", "false")),
    _param(
        "header",
        "Accept",
        known(
            "application/fhir+json", "application/fhir+xml", "text/*", "application/fhir+xml;q=0.5, */*;q=0.9"
        ),
    ),
)
SHAPING = (_param("query", "_summary", known("true", "text", "data")), _param("query", "_elements", ANY))
CONDITIONS = (
    _param("header", "If-None-Match", known('W/"1"', "*")),
    _param(
        "header", "If-Modified-Since", known("Wed, 26 Apr 2017 03:00:00 GMT", "Mon, 01 Jan 0001 00:00:00 GMT")
    ),
)
HISTORY = (
    _param("query", "_since", DATE),
    _param("query", "_count", WHOLE_NUMBER),
    _param("query", "_offset", WHOLE_NUMBER),
    _param("query", "_snapshot", WHOLE_NUMBER),  # a history snapshot is one release number
    *NEGOTIATION,
)


def search_parameters(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """A served type's search and result parameters, as the CapabilityStatement lists them."""
    out = []
    for p in resource["searchParam"]:
        values = VALUES[p["type"]]
        out.append(_param("query", p["name"], values))
        out += [_param("query", f"{p['name']}:{m}", values) for m in MODIFIERS.get(p["type"], ())]
    codes = [p["name"] for p in resource["searchParam"]]
    return out + [
        _param("query", "_count", WHOLE_NUMBER),
        _param("query", "_offset", WHOLE_NUMBER),
        _param("query", "_sort", known(*codes, *(f"-{c}" for c in codes))),
        _param("query", "_include", known(*resource.get("searchInclude", []))),
        _param("query", "_revinclude", known(*resource.get("searchRevInclude", []))),
        _param("query", "_summary", known("true", "false", "count", "data", "text")),
        _param("query", "_elements", known("identifier", "name,identifier")),
        _param("query", "_total", known("none", "estimate", "accurate")),
        _param("query", "_snapshot", SNAPSHOT),
    ]


CODE = either(["014884", "53", "7046260148840", "ID_" + CERTICAN_PACKAGE, "A02"], r"^[A-Za-z0-9_|.-]{0,20}$")
SYSTEM = either(
    [
        "http://dmp.no/fhir/NamingSystem/fest-varenummer",
        "https://www.gs1.org/gtin",
        "urn:oid:2.16.578.1.12.4.1.1.7448",
        "http://standardterms.edqm.eu",
        "https://grunndata.no/fhir/PackagedProductDefinition",
    ],
    r"^.{0,40}$",
)


def terminology_paths(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The operations the CapabilityStatement lists (ConceptMap $translate and search, CodeSystem
    $lookup and $validate-code, ValueSet $expand), with the parameters they take."""
    by_type = {r["type"]: r for r in resources}
    operations = {(t, o["name"]) for t, r in by_type.items() for o in r.get("operation", ())}
    assert {
        ("ConceptMap", "translate"),
        ("CodeSystem", "lookup"),
        ("CodeSystem", "validate-code"),
        ("ValueSet", "expand"),
    } <= operations
    query = {
        "translate": [
            "system",
            "sourceCode",
            "code",
            "sourceCoding",
            "targetSystem",
            "targetsystem",
            "targetCode",
            "targetCoding",
            "reverse",
            "url",
        ],
        "lookup": ["system", "code", "coding"],
        "validate-code": ["url", "system", "code", "display"],
        "expand": ["url", "filter", "offset", "count"],
    }
    schema = {"reverse": known("true", "false", "maybe"), "offset": WHOLE_NUMBER, "count": WHOLE_NUMBER}
    paths = {}
    for rtype, name in sorted(operations):
        if name not in query:
            continue
        params = [
            _param("query", p, schema.get(p, SYSTEM if "ystem" in p or p == "url" else CODE))
            for p in query[name]
        ]
        paths[f"/fhir/{rtype}/${name}"] = _get(*params, *NEGOTIATION)
    searches = [_param("query", p["name"], SYSTEM) for p in by_type["ConceptMap"]["searchParam"]]
    paths["/fhir/ConceptMap"] = _get(
        *searches, _param("query", "_summary", known("true", "false", "x")), *NEGOTIATION
    )
    map_id = _param(
        "path",
        "rid",
        either(["fest-legemiddelpakning-idmp", "fest-legemiddelform-edqm-doseform"], RID["pattern"]),
    )
    paths["/fhir/ConceptMap/{rid}"] = _get(map_id, *NEGOTIATION)
    return paths


def capability_openapi(capability: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI document with what the CapabilityStatement says the server does."""
    rest = capability["rest"][0]
    stored = [r for r in rest["resource"] if "history-type" in {i["code"] for i in r.get("interaction", ())}]
    rtype = _param("path", "rtype", known(*(r["type"] for r in stored)))
    rid, vid = _param("path", "rid", RID), _param("path", "vid", WHOLE_NUMBER)
    paths: dict[str, Any] = {
        "/fhir/_history": _get(*HISTORY),
        "/fhir/{rtype}/_history": _get(rtype, *HISTORY),
        "/fhir/{rtype}/{rid}": _get(rtype, rid, *SHAPING, *NEGOTIATION, *CONDITIONS),
        "/fhir/{rtype}/{rid}/_history": _get(rtype, rid, *HISTORY),
        "/fhir/{rtype}/{rid}/_history/{vid}": _get(rtype, rid, vid, *SHAPING, *NEGOTIATION),
    }
    for served, real_id in ((PPD, CERTICAN_PACKAGE), (MPD, CERTICAN_BRAND)):  # reads that find something
        real = _param("path", "rid", known(real_id))
        paths[f"/fhir/{served}/{{rid}}"] = _get(real, *SHAPING, *NEGOTIATION, *CONDITIONS)
        paths[f"/fhir/{served}/{{rid}}/_history/{{vid}}"] = _get(real, vid, *SHAPING, *NEGOTIATION)
    paths[f"/fhir/{MPD}/{{rid}}/$everything"] = _get(
        _param("path", "rid", either([CERTICAN_BRAND], RID["pattern"])), *NEGOTIATION
    )
    prefer = _param("header", "Prefer", known("handling=strict", "handling=lenient"))
    paths.update(terminology_paths(rest["resource"]))
    for resource in stored:
        params = search_parameters(resource)
        paths[f"/fhir/{resource['type']}"] = _get(*params, *NEGOTIATION, prefer)
        form = {"type": "object", "properties": {p["name"]: p["schema"] for p in params}}
        paths[f"/fhir/{resource['type']}/_search"] = {
            "post": {
                "parameters": [*NEGOTIATION, prefer],
                "requestBody": {
                    "required": True,
                    "content": {"application/x-www-form-urlencoded": {"schema": form}},
                },
                "responses": {"default": {"description": "any"}},
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Grunndata as its CapabilityStatement describes it",
            "version": capability["version"],
        },
        "paths": paths,
    }


def test_what_the_capability_statement_describes_gives_no_server_error(live: LiveServer) -> None:
    capability = httpx.get(live.fhir + "/metadata").raise_for_status().json()
    fuzz(schemathesis.openapi.from_dict(capability_openapi(capability)), live.url)


@pytest.mark.parametrize(
    "path",
    [
        f"{PPD}?_lastUpdated=9999",
        f"{PPD}?_lastUpdated=9999-12",
        f"{PPD}?_lastUpdated=9999-12-31",
        f"{PPD}?_lastUpdated=sa9999-12-31T23:59:59.999Z",
        f"{PPD}?_lastUpdated=0001-01-01T00:00:00%2B14:00",
        "_history?_since=9999",
        f"{PPD}/_history?_since=0001-01-01T00:00:00%2B01:00",
        f"{PPD}?_snapshot=9223372036854775808",
        f"{PPD}/{CERTICAN_PACKAGE}/_history/9223372036854775808",
    ],
)
def test_values_at_the_edge_of_the_range_are_answered_in_fhir(live: LiveServer, path: str) -> None:
    """Requests the fuzzing found 5xx for: a year 9999 search, a far time zone, a release number past 2**63."""
    r = httpx.get(f"{live.fhir}/{path}")
    assert r.status_code < 500, r.text
    assert r.json()["resourceType"] in ("Bundle", "OperationOutcome")
