"""Limits before work (issue 18): a search past a bound is a 400 naming it, before the database is asked.

Each bound is tried at its default value and one past it, by GET and by POST `_search`, over the
real extract on SQLite and PostgreSQL; a search at the bounds still finds what it asks for. The
inputs the security run sent (a 60,000-character value, a parameter 1,000 times, 15,000 values,
1,000 `_sort` keys) get their 400; and at the most each bound can be set to, the worst query it
lets through is still one SQLite (as shipped: 32,766 variables) and PostgreSQL answer.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import hypothesis
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from sqlalchemy import event
from sqlalchemy.engine import Engine

from grunndata.server import create_app
from grunndata.server.fhir_io.params import DEFAULT_LIMITS, RESULT_PARAMS, Limits, parse, query_string
from grunndata.server.fhir_io.responses import FhirError
from grunndata.settings import SEARCH_LIMITS, Settings, SettingsError
from grunndata.store import (
    SEARCH_PARAMS,
    SEARCHED_TYPES,
    Clause,
    SearchError,
    clause_matches,
    connect,
    index_rows,
    lookup,
    params_for,
)
from tests.server.conftest import ATC, CERTICAN_BRAND, CERTICAN_PACKAGE, VARENR

MPD, PPD, CUD = "MedicinalProductDefinition", "PackagedProductDefinition", "ClinicalUseDefinition"
FORM = {"content-type": "application/x-www-form-urlencoded"}
LIMITS = DEFAULT_LIMITS
Items = list[tuple[str, str]]


def ask(
    api: TestClient, method: str, path: str, items: Items, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A search (or operation) with these parameters: in the query string (GET) or as a form (POST),
    commas, bars, colons and slashes as they are (as clients write them)."""
    query = urlencode(items, quote_via=lambda text, _, *rest: quote(text, ",|:/", *rest))
    if method == "GET":
        return api.get(f"{path}?{query}", headers=headers)
    return api.post(f"{path}/_search", content=query.encode(), headers={**FORM, **(headers or {})})


def found(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["resourceType"] == "Bundle"
    return body


def refused(r: httpx.Response, bound: str, value: int | None = None, code: str = "too-costly") -> str:
    """The answer is our 400 naming the bound (GRUNNDATA_SEARCH_MAX_<BOUND>=<value>)."""
    assert r.status_code == 400, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert (issue["severity"], issue["code"]) == ("error", code)
    setting = f"GRUNNDATA_SEARCH_MAX_{bound.upper()}={getattr(LIMITS, bound) if value is None else value}"
    assert setting in issue["diagnostics"]
    diagnostics: str = issue["diagnostics"]
    return diagnostics


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


@pytest.fixture(scope="module")
def varenrs(api: TestClient) -> list[str]:
    """Every varenr of the real extract's packages (107), read from the store."""
    bundle = found(api.get(f"/fhir/{PPD}?identifier={VARENR}|&_count=1000"))
    numbers = [
        i["value"] for e in bundle["entry"] for i in e["resource"]["identifier"] if i.get("system") == VARENR
    ]
    assert len(numbers) == 107
    return sorted(numbers)


METHODS = pytest.mark.parametrize("method", ["GET", "POST"])


# -- each bound: at it, and one past it ------------------------------------------------------------


def padded(n: int) -> Items:
    """Unknown (ignored) parameters whose query string is exactly `n` bytes: values of 'æ' (6 bytes
    encoded), short enough for the bound on characters, and a last one of 'æ' and 'a' to fit."""
    full = LIMITS.value_chars - 5
    items: Items = []
    while True:
        head = len(f"&p{len(items)}=") - (0 if items else 1)
        left = n - len(urlencode(items, quote_via=quote)) - head
        if left <= 6 * full:
            items.append((f"p{len(items)}", "æ" * (left // 6) + "a" * (left % 6)))
            break
        items.append((f"p{len(items)}", "æ" * full))
    assert len(urlencode(items, quote_via=quote)) == n
    return items


@METHODS
def test_parameters_of_exactly_the_bytes_bound_are_answered_one_byte_more_is_not(
    api: TestClient, method: str
) -> None:
    at = padded(LIMITS.bytes)
    assert len(at) <= LIMITS.params
    bundle = found(ask(api, method, f"/fhir/{PPD}", at))
    assert len(ids(bundle)) == 20  # the parameters are unknown: ignored, the first page of all
    past = padded(LIMITS.bytes + 1)
    diagnostics = refused(ask(api, method, f"/fhir/{PPD}", past), "bytes")
    assert diagnostics.startswith("the parameters are 32,769 bytes")


def test_a_post_body_that_declares_too_many_bytes_is_refused_before_it_is_read(api: TestClient) -> None:
    r = api.post(
        f"/fhir/{PPD}/_search",
        content=b"identifier=014884",
        headers={**FORM, "content-length": str(10**12)},
    )
    refused(r, "bytes")
    chunked = api.post(
        f"/fhir/{PPD}/_search", content=iter([b"_id=", b"a" * 20_000, b"a" * 20_000]), headers=FORM
    )
    refused(chunked, "bytes")


@METHODS
def test_forty_parameters_are_answered_forty_one_are_not(api: TestClient, method: str) -> None:
    asked = [("identifier", f"{VARENR}|014884"), ("_total", "accurate")]
    at = asked + [(f"unknown{i}", "x") for i in range(LIMITS.params - len(asked))]
    bundle = found(ask(api, method, f"/fhir/{PPD}", at))
    assert (bundle["total"], ids(bundle)) == (1, [CERTICAN_PACKAGE])
    diagnostics = refused(ask(api, method, f"/fhir/{PPD}", [*at, ("one-more", "x")]), "params")
    assert diagnostics == "the request sends 41 parameters, more than GRUNNDATA_SEARCH_MAX_PARAMS=40 allows"
    paging = [
        ("_count", "1"),
        ("_offset", "0"),
        ("_snapshot", bundle["link"][0]["url"].split("_snapshot=")[1]),
    ]
    assert found(ask(api, method, f"/fhir/{PPD}", [*at, *paging]))["total"] == 1  # a link's own: not counted


@METHODS
def test_a_parameter_given_eight_times_is_answered_nine_times_is_not(api: TestClient, method: str) -> None:
    at = [("identifier", f"{VARENR}|014884")] * LIMITS.repeats + [("_total", "accurate")]
    bundle = found(ask(api, method, f"/fhir/{PPD}", at))
    assert (bundle["total"], ids(bundle)) == (1, [CERTICAN_PACKAGE])
    diagnostics = refused(ask(api, method, f"/fhir/{PPD}", [*at, ("identifier:", "014884")]), "repeats")
    assert diagnostics.startswith("identifier is given 9 times")


@METHODS
def test_a_hundred_varenr_in_one_parameter_find_a_hundred_packages(
    api: TestClient, method: str, varenrs: list[str]
) -> None:
    hundred = varenrs[: LIMITS.values]
    at = [("identifier", ",".join(f"{VARENR}|{v}" for v in hundred)), ("_total", "accurate")]
    assert found(ask(api, method, f"/fhir/{PPD}", at))["total"] == 100
    past = [("identifier", ",".join(f"{VARENR}|{v}" for v in varenrs[: LIMITS.values + 1]))]
    diagnostics = refused(ask(api, method, f"/fhir/{PPD}", past), "values")
    assert diagnostics.startswith("identifier has 101 comma-separated values")
    escaped = [("identifier", ",".join(hundred[:99] + ["a\\,b"]))]  # an escaped comma separates nothing
    assert "entry" in found(ask(api, method, f"/fhir/{PPD}", escaped))


@METHODS
def test_two_hundred_values_in_all_are_answered_one_more_is_not(
    api: TestClient, method: str, varenrs: list[str]
) -> None:
    hundred = ",".join(varenrs[: LIMITS.values])
    at = [("identifier", hundred), ("identifier", hundred), ("_total", "accurate")]
    assert found(ask(api, method, f"/fhir/{PPD}", at))["total"] == 100
    diagnostics = refused(ask(api, method, f"/fhir/{PPD}", [*at, ("_id", CERTICAN_PACKAGE)]), "values_total")
    assert diagnostics.startswith("the request has 201 values in all")


@METHODS
def test_a_value_of_five_hundred_characters_is_answered_one_more_is_not(api: TestClient, method: str) -> None:
    # the characters that normalise to the longest LIKE pattern: 'ﷺ' is 18 letters, 33 bytes
    for value in ("certican" + "x" * (LIMITS.value_chars - 8), "\ufdfa" * LIMITS.value_chars):
        for name in ("name", "name:contains", "name:exact"):
            assert "entry" not in found(ask(api, method, f"/fhir/{MPD}", [(name, value)])), name
    assert CERTICAN_BRAND in ids(found(ask(api, method, f"/fhir/{MPD}", [("name", "certican")])))
    diagnostics = refused(ask(api, method, f"/fhir/{MPD}", [("name", "x" * 501)]), "value_chars")
    assert diagnostics.startswith("a value of name has 501 characters")
    each = [("_id", ",".join([CERTICAN_BRAND, "x" * 501]))]  # each comma-separated value counts
    refused(ask(api, method, f"/fhir/{MPD}", each), "value_chars")
    name = [("n" * 501, "x")]
    assert refused(ask(api, method, f"/fhir/{MPD}", name), "value_chars").startswith(
        "a parameter name has 501 characters"
    )


@METHODS
def test_five_sort_keys_are_answered_six_are_not_and_a_key_repeated_is_one(
    api: TestClient, method: str
) -> None:
    every = found(ask(api, method, f"/fhir/{PPD}", [("_total", "accurate")]))["total"]
    at = [("_sort", "name,-_lastUpdated,status,identifier,-_id"), ("_total", "accurate"), ("_count", "200")]
    assert found(ask(api, method, f"/fhir/{PPD}", at))["total"] == every
    diagnostics = refused(
        ask(api, method, f"/fhir/{PPD}", [("_sort", "name,status,identifier,_id,_lastUpdated,package-for")]),
        "sort",
    )
    assert diagnostics.startswith("_sort names 6 keys")
    split = [("_sort", "name,status,identifier"), ("_sort", "_id,_lastUpdated,package-for")]
    refused(ask(api, method, f"/fhir/{PPD}", split), "sort")
    by_name = found(ask(api, method, f"/fhir/{PPD}", [("_sort", "name"), ("_count", "200")]))
    thousand = found(
        ask(api, method, f"/fhir/{PPD}", [("_sort", ",".join(["name", "-name"] * 500)), ("_count", "200")])
    )
    assert ids(thousand) == ids(by_name)  # one key, the first as given


@METHODS
def test_ten_includes_are_answered_eleven_are_not(api: TestClient, method: str) -> None:
    include, revinclude = f"{PPD}:package-for", f"{PPD}:package"
    at = [("identifier", f"{VARENR}|014884"), *[("_include", include)] * 9, ("_revinclude", revinclude)]
    bundle = found(ask(api, method, f"/fhir/{PPD}", at))
    assert ids(bundle) == [CERTICAN_PACKAGE] and CERTICAN_BRAND in ids(bundle, "include")
    diagnostics = refused(ask(api, method, f"/fhir/{PPD}", [*at, ("_include:iterate", include)]), "includes")
    assert diagnostics.startswith("the request has 11 _include and _revinclude")


@METHODS
def test_fifty_elements_are_answered_fifty_one_are_not(api: TestClient, method: str) -> None:
    names = ["identifier", "name", *[f"element{i}" for i in range(LIMITS.elements - 2)]]
    at = [("identifier", f"{VARENR}|014884"), ("_elements", ",".join(names + names))]
    resource = found(ask(api, method, f"/fhir/{PPD}", at))["entry"][0]["resource"]
    assert {"identifier", "name"} <= set(resource) and "packageFor" not in resource
    diagnostics = refused(
        ask(api, method, f"/fhir/{PPD}", [("_elements", ",".join([*names, "one-more"]))]), "elements"
    )
    assert diagnostics.startswith("_elements names 51 elements")
    read = api.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}?_elements={','.join([*names, 'one-more'])}")
    refused(read, "elements")  # a read's _elements has the same bound


# -- what the security run sent --------------------------------------------------------------------


@METHODS
def test_what_made_500s_before_is_a_400_naming_the_bound(api: TestClient, method: str) -> None:
    cases: list[tuple[str, Items, str]] = [
        (MPD, [("name", "a" * 60_000)], "bytes"),  # SQLite: LIKE or GLOB pattern too complex
        (MPD, [("name", "a" * 20_000)], "value_chars"),
        (PPD, [("identifier", "014884")] * 1000, "params"),  # SQLite: Expression tree is too large
        (PPD, [("identifier", ",".join(["1"] * 15_000))], "values"),  # 6 s, 550 MB
        (PPD, [("_sort", "name")] * 1000, "params"),  # 5 s of sorting
        (PPD, [("_sort", ",".join(f"k{i}" for i in range(1000)))], "sort"),
        (MPD, [("product-classification", f"{ATC}|L04AA18")] * 30, "repeats"),
    ]
    for rtype, items, bound in cases:
        refused(ask(api, method, f"/fhir/{rtype}", items), bound)


@METHODS
@pytest.mark.parametrize("text", ["\x00", "a\x00b", "\x1f", "\ufffe"])
def test_text_no_fhir_string_can_hold_is_invalid_not_a_database_error(
    api: TestClient, method: str, text: str
) -> None:
    for rtype, name in ((MPD, "name"), (PPD, "identifier"), (PPD, "package-for"), (MPD, "name:exact")):
        r = ask(api, method, f"/fhir/{rtype}", [(name, text)])
        assert r.status_code == 400, (name, r.text)
        assert r.json()["issue"][0]["code"] == "invalid"
    assert ask(api, method, f"/fhir/{PPD}", [(f"x{text}", "1")]).status_code == 400  # in a name too


def test_listed_types_share_the_bounds(api: TestClient) -> None:
    for rtype in ("ConceptMap", "Endpoint", "Organization"):
        refused(ask(api, "GET", f"/fhir/{rtype}", [("name", "x")] * 9), "repeats")
        refused(ask(api, "POST", f"/fhir/{rtype}", [("url", ",".join("x" * 101))]), "values")
        assert ask(api, "GET", f"/fhir/{rtype}", [("name", "x")] * 8).status_code == 200


# -- history, $everything, the terminology operations, /fest/m30 -----------------------------------


def test_history_parameters_have_the_same_bounds(api: TestClient) -> None:
    for path in ("/fhir/_history", f"/fhir/{PPD}/_history", f"/fhir/{PPD}/{CERTICAN_PACKAGE}/_history"):
        assert api.get(f"{path}?_since=2000-01-01T00:00:00Z&_count=5").status_code == 200
        refused(api.get(f"{path}?_since={'2' * 60_000}"), "bytes")
        refused(api.get(f"{path}?_since={'2' * 501}"), "value_chars")
        refused(api.get(f"{path}?{'&'.join(['_since=2000'] * 41)}"), "params")
        refused(api.get(f"{path}?{'&'.join(['_count=5'] * 9)}"), "repeats")
        assert api.get(f"{path}?_since=%00").json()["issue"][0]["code"] == "invalid"


def test_everything_measures_its_parameters(api: TestClient) -> None:
    path = f"/fhir/{MPD}/{CERTICAN_BRAND}/$everything"
    assert api.get(f"{path}?unknown=1").status_code == 200
    refused(api.get(f"{path}?x={'a' * 40_000}"), "bytes")


def test_translate_within_the_bounds_and_past_them(api: TestClient) -> None:
    path = "/fhir/ConceptMap/$translate"
    asked = [("system", VARENR), ("sourceCode", "014884"), ("targetSystem", "https://www.gs1.org/gtin")]
    assert api.get(f"{path}?{urlencode(asked)}").json()["parameter"][0]["valueBoolean"] is True
    refused(api.get(f"{path}?{urlencode(asked)}&x={'a' * 40_000}"), "bytes")  # the fast path too
    refused(api.get(f"{path}?{urlencode(asked + [('x', 'y')] * 38)}"), "params")
    refused(api.post(path, content=urlencode(asked + [("x", "a" * 501)]), headers=FORM), "value_chars")
    parameters = [{"name": "system", "valueUri": VARENR}, {"name": "sourceCode", "valueCode": "014884"}]
    many = {"resourceType": "Parameters", "parameter": parameters + [{"name": "x", "valueString": "y"}] * 39}
    refused(api.post(path, json=many), "params")
    big = {"resourceType": "Parameters", "parameter": [{"name": "x", "valueString": "y" * 40_000}]}
    refused(api.post(path, json=big), "bytes")
    codings = [{"system": VARENR, "code": "014884"}] * 101
    concept = {"name": "sourceCodeableConcept", "valueCodeableConcept": {"coding": codings}}
    refused(api.post(path, json={"resourceType": "Parameters", "parameter": [concept]}), "values")
    concept["valueCodeableConcept"] = {"coding": codings[:100]}
    answer = api.post(path, json={"resourceType": "Parameters", "parameter": [concept]})
    assert answer.json()["parameter"][0]["valueBoolean"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "Parameters", "parameter": 5},
        {"resourceType": "Parameters", "parameter": {"name": "x"}},
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "sourceCodeableConcept", "valueCodeableConcept": {"coding": 5}}],
        },
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "sourceCode", "valueCode": "a\x00"}, {"name": "system", "valueUri": "x"}],
        },
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "sourceCoding", "valueCoding": {"system": {"a": 1}, "code": "x"}}],
        },
        '{"resourceType": "Parameters", "parameter": [{"name": "sourceCode", "valueCode": "\\ud800"}]}',
        "[" * 5000,  # deeper than any JSON reader goes
        b"\xff\xfe",
    ],
)
def test_a_malformed_parameters_body_is_invalid(api: TestClient, body: dict[str, Any] | str | bytes) -> None:
    sent = {"json": body} if isinstance(body, dict) else {"content": body}
    r = api.post("/fhir/ConceptMap/$translate", headers={"content-type": "application/fhir+json"}, **sent)
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["code"] == "invalid"


def test_m30_since_is_measured_before_it_is_looked_up(api: TestClient) -> None:
    assert api.get("/fest/m30?since=2017-01-01T00:00:00").status_code == 400  # no such delivery
    refused(api.get(f"/fest/m30?since={'2' * 60_000}"), "bytes")
    refused(api.get(f"/fest/m30?since={'2' * 501}"), "value_chars")
    r = api.get("/fest/m30?since=2017%00")
    assert (r.status_code, r.json()["issue"][0]["code"]) == (400, "invalid")


# -- the most each bound can be set to stays inside what the databases take -----------------------


STOCK_SQLITE_VARIABLES = 32_766  # SQLITE_MAX_VARIABLE_NUMBER as SQLite ships it (Debian's allows 250,000)


@pytest.fixture(scope="module")
def most_allowed(api: TestClient) -> Iterator[TestClient]:
    """The same store served with every bound at the most it may be set to, SQLite held to its
    shipped limits."""
    served: Engine = api.app.state.served.engine
    engine = connect(served.url.render_as_string(hide_password=False))
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def shipped(dbapi_connection: sqlite3.Connection, _: object) -> None:
            dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, STOCK_SQLITE_VARIABLES)

        engine.dispose()
    settings = Settings.load(
        {f"GRUNNDATA_SEARCH_MAX_{n.upper()}": str(most) for n, (_, most, _) in SEARCH_LIMITS.items()}
    )
    with TestClient(create_app(engine, settings=settings, warm=False)) as client:
        yield client
    engine.dispose()


def test_the_worst_query_the_most_allowed_bounds_let_through_is_answered(
    most_allowed: TestClient, varenrs: list[str]
) -> None:
    most = Limits.of(most_allowed.app.state.settings)
    # the most bind variables: a reference to ten types, 2,000 values, 11 variables each
    ids_ = [f"id{i}" for i in range(most.values)]
    subject = [("subject", ",".join(ids_))] * (most.values_total // most.values)
    assert found(ask(most_allowed, "POST", f"/fhir/{CUD}", subject)).get("entry") is None
    # the deepest expression: one parameter of 250 values OR-ed, AND-ed with 49 more
    deep = [("identifier", ",".join(varenrs + ids_[: most.values - len(varenrs)]))]
    deep += [("identifier", f"{VARENR}|014884")] * (most.params - 1)
    assert ids(found(ask(most_allowed, "POST", f"/fhir/{PPD}", deep))) == [CERTICAN_PACKAGE]
    dates = [("_lastUpdated", ",".join(f"ne2017-01-{1 + i % 28:02d}" for i in range(most.values)))]
    dates += [("identifier", f"{VARENR}|014884")] * (most.params - 1)
    assert ids(found(ask(most_allowed, "POST", f"/fhir/{PPD}", dates))) == [CERTICAN_PACKAGE]
    # the longest LIKE pattern: 1,000 characters of 33 bytes each once normalised
    for name in ("name", "name:contains"):
        assert found(ask(most_allowed, "POST", f"/fhir/{MPD}", [(name, "\ufdfa" * most.value_chars)]))
    # the deepest chains: each link nests the values again, so a linked parameter's values count
    # once per link more (SQLite refused 250 values one link deep: "Expression tree is too large")
    for name, value in (
        ("package-for.name:contains", "name{}"),
        (
            f"package-for:{MPD}._has:AdministrableProductDefinition:form-of:_has:Ingredient:for:substance",
            "x{}",
        ),
    ):
        links = name.count(".") + name.count("_has:")
        n = most.values // (1 + links)
        times = min(most.params // (1 + links), most.values_total // n)
        chained = [(name, ",".join(value.format(i) for i in range(n)))] * times
        assert found(ask(most_allowed, "POST", f"/fhir/{PPD}", chained)).get("entry") is None, name
        over = [(name, ",".join(value.format(i) for i in range(n + 1)))]
        assert ask(most_allowed, "POST", f"/fhir/{PPD}", over).status_code == 400
    # every key MedicinalProductDefinition sorts by (12, fewer than the most), the most includes
    keys = [c for c, p in params_for(MPD).items() if p.type in ("string", "token", "date") and c != "_tag"]
    at = [("_sort", ",".join(keys)), *[("_revinclude", f"{PPD}:package-for")] * most.includes]
    bundle = found(ask(most_allowed, "POST", f"/fhir/{MPD}", [*at, ("_count", "1000")]))
    assert len(ids(bundle, "include")) == 107  # every package, once


def test_the_bounds_cannot_be_set_past_what_the_databases_take() -> None:
    for name, (default, most, _) in SEARCH_LIMITS.items():
        variable = f"GRUNNDATA_SEARCH_MAX_{name.upper()}"
        assert getattr(Limits.of(Settings.load({variable: str(most)})), name) == most
        assert getattr(DEFAULT_LIMITS, name) == default
        with pytest.raises(SettingsError) as caught:
            Settings.load({variable: str(most + 1)})
        assert str(caught.value) == f"{variable} must be a whole number from 1 to {most:,}, not '{most + 1}'"


def test_a_like_pattern_sqlite_would_refuse_is_a_search_error_whoever_asks() -> None:
    """The store's own guard, for a caller without the server's bounds: 2,000 x 'ﷺ' is 66,000 bytes."""
    product = {"resourceType": MPD, "id": "x", "name": [{"productName": "x"}]}
    name = lookup(MPD, "name")
    assert name is not None
    for modifier in (None, "contains"):
        with pytest.raises(SearchError) as caught:
            clause_matches(Clause(name, modifier, ("\ufdfa" * 2000,)), product, index_rows(product))
        assert (
            str(caught.value)
            == f"the text to match is {66_001 + (modifier == 'contains'):,} bytes, more than 50,000"
        )


# -- whatever a client sends: never a 5xx (hypothesis) ---------------------------------------------

SLOW = os.environ.get("GRUNNDATA_SLOW") == "1"
FUZZ = hypothesis.settings(
    max_examples=4000 if SLOW else 300,  # per database: ~10 s each; the long run ~2 min each
    deadline=None,
    derandomize=True,  # the same requests on every run, so CI does not flake
    database=None,
    suppress_health_check=list(HealthCheck),
)
CODES = sorted({p.code for p in SEARCH_PARAMS} | RESULT_PARAMS)
MODIFIERS = [
    "",
    ":exact",
    ":contains",
    ":missing",
    ":text",
    ":not",
    ":iterate",
    f":{MPD}",
    ":Patient",
    ":",
    "::x",
]
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)  # no lone surrogate: no URL holds one
ATOMS = st.one_of(
    TEXT,
    st.sampled_from(
        [
            "",
            ",",
            "\\,",
            "\\",
            "|",
            "||",
            "a|",
            "|a",
            f"{VARENR}|014884",
            f"{VARENR}|",
            "014884",
            CERTICAN_PACKAGE,
            CERTICAN_BRAND,
            f"{MPD}/{CERTICAN_BRAND}",
            f"http://x/fhir/{MPD}/{CERTICAN_BRAND}",
            "ge2017",
            "lt2017-01-01",
            "ge",
            "eq2017-13-45",
            "sa2017-01-01T00:00:00Z",
            "2017-01-01T00:00:00",
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "name",
            "-name",
            "-_id",
            "*",
            f"{PPD}:package-for",
            f"{PPD}:package-for:{MPD}",
            f"{PPD}:package-for:iterate",
            "true",
            "count",
            "accurate",
            "1000",
            "1001",
            "-1",
            "9" * 5000,
            "1.2.3",
            "0",
            "xml",
            "json",
            "\x00",
            "%",
            "_",
            "\ufdfa",
            "national",
            f"{ATC}|L04AA18",
        ]
    ),
    st.integers(0, 1100).map(lambda n: "a" * n),
    st.integers(0, 1100).map(lambda n: "\ufdfa" * n),
)
VALUES = st.one_of(ATOMS, st.lists(ATOMS, max_size=150).map(",".join))
NAMES = st.one_of(
    st.sampled_from(CODES),
    st.tuples(st.sampled_from(CODES), st.sampled_from(MODIFIERS)).map("".join),
    st.sampled_from(["subject.name", "package-for.name", f"subject:{MPD}.name", "_has:Ingredient:for:role"]),
    TEXT,
)
PAIRS = st.lists(st.tuples(NAMES, VALUES), max_size=45)
REPEATED = st.one_of(st.none(), st.tuples(NAMES, VALUES, st.integers(1, 1200)))
SEARCHES = st.tuples(st.sampled_from(SEARCHED_TYPES), PAIRS, REPEATED).map(
    lambda t: (t[0], t[1] + ([] if t[2] is None else [t[2][:2]] * t[2][2]))
)


@FUZZ
@given(search=SEARCHES, strict=st.booleans())
def test_the_parser_answers_every_search_or_says_why_not(search: tuple[str, Items], strict: bool) -> None:
    rtype, items = search
    try:
        parse(rtype, items, strict)
    except FhirError as e:
        assert e.status == 400 and e.code in ("invalid", "too-costly"), e.message


def test_the_endpoint_never_answers_5xx(api: TestClient) -> None:
    """GET and POST `_search` of generated searches (names known and not, modifiers, chains; values
    empty, huge, unicode, with commas, prefixes and systems; repeated up to 1,200 times)."""
    statuses: Counter[int] = Counter()

    @FUZZ
    @given(search=SEARCHES, method=st.sampled_from(["GET", "POST"]), strict=st.booleans())
    def never_5xx(search: tuple[str, Items], method: str, strict: bool) -> None:
        rtype, items = search
        if method == "GET" and len(urlencode(items)) > 60_000:
            method = "POST"  # httpx sends no URL this long (the bytes bound is tested above)
        r = ask(api, method, f"/fhir/{rtype}", items, {"prefer": "handling=strict"} if strict else None)
        statuses[r.status_code] += 1
        assert r.status_code < 500, (r.status_code, r.text[:2000])
        if r.status_code >= 400 and "json" in r.headers["content-type"]:
            assert r.json()["resourceType"] == "OperationOutcome"

    never_5xx()
    print(f"\nstatuses: {dict(sorted(statuses.items()))}")
    assert statuses[200] > 0 and statuses[400] > 0


@METHODS
def test_a_search_at_the_bytes_bound_pages_as_its_links_are_answered_too(
    api: TestClient, method: str, varenrs: list[str]
) -> None:
    """The bound counts the parameters as the paging links write them (a `|` escaped, `,` `:` `/`
    as they are, the paging parameters apart), so the next page of a search at the bound is no
    refusal: the links escaped every `,` before, three bytes each, and outgrew the bound."""
    wanted = [f"{VARENR}|{v}" for v in varenrs[:3]]

    def at(size: int) -> Items:
        fillers = [f"{VARENR}|9{n:03d}" + "0" * 112 for n in range(96)]  # no package has these
        used = [("identifier", ",".join(wanted + fillers))] * 2  # the same OR twice (AND): the 3
        items = used + padded(size - len(query_string(used)) - 1) + [("_count", "1")]
        assert len(query_string(items[:-1])) == size
        return items

    bundle = found(ask(api, method, f"/fhir/{PPD}", at(LIMITS.bytes)))
    seen = ids(bundle)
    assert len(seen) == 1
    for _ in range(2):
        (following,) = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        assert len(following.split("?", 1)[1]) > LIMITS.bytes - 1_000  # the link is about as long
        bundle = found(api.get(following.removeprefix("http://testserver")))
        seen += ids(bundle)
    assert len(set(seen)) == 3
    refused(ask(api, method, f"/fhir/{PPD}", at(LIMITS.bytes + 1)), "bytes")
