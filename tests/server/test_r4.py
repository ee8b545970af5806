"""A SAFEST client changes its base URL to /fhir-r4 and nothing else: the same store's national
data, in DMP's R4 shape, read, vread, history and search by varenr, GTIN and FEST id, paged."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import text, update
from sqlalchemy.engine import Engine

from grunndata import store
from grunndata.importers.identifiers import served_identifiers
from grunndata.server.app import create_app
from grunndata.store import connect
from grunndata.store.models import R4 as R4_BODIES
from grunndata.translators.safest import to_r5
from grunndata.translators.safest.to_r4 import PROFILES, R4_OF_R5, r4_json, to_r4
from tests.server.conftest import CERTICAN_BRAND, CERTICAN_PACKAGE, GTIN, VARENR
from tests.server.conftest import fhir_json as _get

MPP = "MedicinalProductPackaged"
PACKAGED_PARAMS = [
    "identifier",
    "_id",
    "_lastUpdated",
    "_tag",
    "subject",
    "package-item-level-one",
    "package-item-level-two",
    "package-item-level-three",
]
"""MedicinalProductPackaged's search parameters, as both R4 bases' CapabilityStatements list them."""
R4 = "/fhir-r4"


def _ids(bundle: dict[str, Any]) -> list[str]:
    """The ids of a Bundle's resources, a search's outcome note apart."""
    return [
        e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") != "outcome"
    ]


def test_the_capability_statement_is_r4(api: TestClient) -> None:
    statement = _get(api, f"{R4}/metadata")
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["url"] == "http://testserver/fhir-r4/metadata"
    resources = statement["rest"][0]["resource"]
    assert [r["type"] for r in resources] == [
        "MedicinalProduct",
        "MedicinalProductPackaged",
        "MedicinalProductManufactured",
        "MedicinalProductPharmaceutical",
        "MedicinalProductIngredient",
        "SubstanceSpecification",
        "CodeSystem",
    ]
    assert resources[1]["profile"] == PROFILES[MPP]
    assert [i["code"] for i in resources[1]["interaction"]] == [
        "read",
        "vread",
        "search-type",
        "history-instance",
        "history-type",
    ]
    assert statement["rest"][0]["interaction"] == [{"code": "history-system"}]
    assert "profile" not in resources[6]  # SAFEST has no CodeSystem profile
    assert [p["name"] for p in resources[6]["searchParam"]] == [
        "url",
        "_id",
        "identifier",
        "name",
        "version",
        "status",
    ]
    assert [p["name"] for p in resources[1]["searchParam"]] == PACKAGED_PARAMS
    assert [p["name"] for p in resources[2]["searchParam"]] == [
        "identifier",
        "_id",
        "_lastUpdated",
        "_tag",
        "barcode",
    ]
    assert [p["name"] for p in resources[0]["searchParam"]][2:] == [
        "_lastUpdated",
        "_tag",
        "name",
        "name-language",
    ]
    assert resources[1]["searchInclude"] == [f"{MPP}:subject"]


def test_a_package_read_as_r4_is_the_r5_package_made_r4(api: TestClient) -> None:
    r5 = _get(api, f"/fhir/PackagedProductDefinition/{CERTICAN_PACKAGE}")
    answer = api.get(f"{R4}/{MPP}/{CERTICAN_PACKAGE}")
    assert answer.status_code == 200
    assert answer.headers["etag"] == 'W/"1"'
    r4 = answer.json()
    assert r4 == to_r4(r5)
    assert r4["resourceType"] == MPP and r4["id"] == CERTICAN_PACKAGE
    assert r4["meta"]["profile"] == [PROFILES[MPP]]
    assert r4["meta"]["versionId"] == "1"
    assert r4["subject"] == [{"reference": f"MedicinalProduct/{CERTICAN_BRAND}"}]
    again = api.get(f"{R4}/{MPP}/{CERTICAN_PACKAGE}")  # made once, then from the cache
    assert again.content == answer.content
    assert api.get(f"{R4}/{MPP}/{CERTICAN_PACKAGE}", headers={"If-None-Match": 'W/"1"'}).status_code == 304


def test_what_is_served_as_r4_comes_back_as_the_served_r5(api: TestClient) -> None:
    """Every package, product and substance read over R4 and converted back by the SAFEST importer's
    conversion is the R5 resource /fhir serves, meta included (SAFEST's profile aside)."""
    for r4_type, r5_type in (
        (MPP, "PackagedProductDefinition"),
        ("MedicinalProduct", "MedicinalProductDefinition"),
        ("SubstanceSpecification", "SubstanceDefinition"),
        ("MedicinalProductIngredient", "Ingredient"),
    ):
        bundle = _get(api, f"/fhir/{r5_type}?_count=1000")
        assert bundle["entry"]
        for entry in bundle["entry"]:
            r5 = entry["resource"]
            r4 = _get(api, f"{R4}/{r4_type}/{r5['id']}")
            conversion = to_r5([r4])
            assert conversion.errors == []
            (back,) = conversion.resources
            back = served_identifiers(back)
            back["meta"]["profile"].remove(PROFILES[r4_type])
            if not back["meta"]["profile"]:
                del back["meta"]["profile"]
            assert back == r5, r5["id"]


def test_vread_and_instance_history(api: TestClient) -> None:
    r4 = _get(api, f"{R4}/{MPP}/{CERTICAN_PACKAGE}/_history/1")
    assert r4["resourceType"] == MPP and r4["meta"]["versionId"] == "1"
    for accept in ("application/fhir+json; fhirVersion=4.0", "*/*; fhirVersion=4.0.1"):  # as R4 says
        named = api.get(f"{R4}/{MPP}/{CERTICAN_PACKAGE}/_history/1", headers={"Accept": accept})
        assert named.status_code == 200 and named.json() == r4, accept
    missing = _get(api, f"{R4}/{MPP}/{CERTICAN_PACKAGE}/_history/2", 404)
    assert missing["issue"][0]["diagnostics"] == f"{MPP}/{CERTICAN_PACKAGE} has no version 2"
    assert _get(api, f"{R4}/{MPP}/{CERTICAN_PACKAGE}/_history/x1", 400)["resourceType"] == "OperationOutcome"
    history = _get(api, f"{R4}/{MPP}/{CERTICAN_PACKAGE}/_history")
    assert history["type"] == "history"
    (entry,) = history["entry"]
    assert entry["fullUrl"] == f"http://testserver/fhir-r4/{MPP}/{CERTICAN_PACKAGE}"
    assert entry["request"] == {"method": "POST", "url": f"{MPP}/{CERTICAN_PACKAGE}"}
    assert entry["resource"] == r4
    unknown = _get(api, f"{R4}/{MPP}/nope/_history", 404)
    assert unknown["issue"][0]["diagnostics"] == f"{MPP}/nope is not known"
    assert all(urlsplit(link["url"]).path.startswith(f"{R4}/{MPP}/") for link in history["link"])


def test_search_by_varenr_gtin_fest_id_and_id(api: TestClient) -> None:
    for value in (
        "014884",
        f"{VARENR}|014884",
        f"{GTIN}|7046260148840",
        f"http://dmp.no/fhir/NamingSystem/festLegemiddelPakning|ID_{CERTICAN_PACKAGE}",
    ):
        bundle = _get(api, f"{R4}/{MPP}?identifier={value}")
        assert _ids(bundle) == [CERTICAN_PACKAGE], value
        assert bundle["entry"][0]["resource"]["resourceType"] == MPP
        assert bundle["entry"][0]["fullUrl"] == f"http://testserver/fhir-r4/{MPP}/{CERTICAN_PACKAGE}"
    assert _ids(_get(api, f"{R4}/{MPP}?_id={CERTICAN_PACKAGE},nope")) == [CERTICAN_PACKAGE]
    assert _ids(_get(api, f"{R4}/{MPP}?identifier=http://example.org|014884")) == []
    product = _get(api, f"{R4}/MedicinalProduct?_id={CERTICAN_BRAND}")
    assert product["entry"][0]["resource"]["resourceType"] == "MedicinalProduct"


def test_paging_stays_on_r4(api: TestClient) -> None:
    seen: list[str] = []
    page = _get(api, f"{R4}/{MPP}?_count=40&_total=accurate")
    assert page["total"] == 107
    while True:
        seen += _ids(page)
        assert {e["resource"]["resourceType"] for e in page["entry"]} == {MPP}
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not following:
            break
        assert urlsplit(following[0]).path == f"{R4}/{MPP}"
        page = _get(api, following[0].removeprefix("http://testserver"))
    assert len(seen) == len(set(seen)) == 107


def test_types_only_r5_has_and_bad_requests_are_clear(api: TestClient) -> None:
    for r5_only in ("RegulatedAuthorization", "ClinicalUseDefinition", "PackagedProductDefinition", "Basic"):
        outcome = _get(api, f"{R4}/{r5_only}/{CERTICAN_BRAND}", 404)
        assert outcome["issue"][0]["diagnostics"].startswith(f"{r5_only!r} is not served as R4")
    assert _get(api, f"{R4}/{MPP}/nope", 404)["issue"][0]["diagnostics"] == f"{MPP}/nope is not known"
    assert _get(api, f"{R4}/{MPP}/bad%20id", 400)["resourceType"] == "OperationOutcome"
    assert api.get(f"{R4}/{MPP}/{CERTICAN_PACKAGE}?_format=ttl").status_code == 406  # XML: test_r4_xml.py
    strict = _get(api, f"{R4}/{MPP}?colour=blue", 400, Prefer="handling=strict")
    assert "colour" in strict["issue"][0]["diagnostics"]
    lenient = _get(api, f"{R4}/{MPP}?identifier=014884&colour=blue")
    assert _ids(lenient) == [CERTICAN_PACKAGE]
    assert lenient["entry"][-1]["search"]["mode"] == "outcome"  # it says what it ignored


def test_a_search_parameter_r4_does_not_answer_is_said_and_a_modifier_is_never_dropped(
    api: TestClient,
) -> None:
    """Left out without a word, `identifier:missing=true` answered every package as a match and
    300 unknown parameters passed the bounds R5 keeps (probe)."""
    outcome = _get(api, "/fhir-r4/MedicinalProductPackaged?identifier:text=x", status=400)
    assert outcome["resourceType"] == "OperationOutcome"
    outcome = _get(api, "/fhir-r4/MedicinalProductPackaged?_id:contains=x", status=400)
    assert outcome["issue"][0]["severity"] == "error"
    bundle = _get(api, f"/fhir-r4/MedicinalProductPackaged?identifier={VARENR}|014884&foo=bar&_elements=id")
    assert [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"] == [
        CERTICAN_PACKAGE
    ]
    (note,) = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert [i["diagnostics"] for i in note["issue"]] == [
        "ignored search parameter '_elements' (unknown for MedicinalProductPackaged over R4)",
        "ignored search parameter 'foo' (unknown for MedicinalProductPackaged over R4)",
    ]
    many = "&".join(f"p{n}=1" for n in range(300))
    outcome = _get(api, f"/fhir-r4/MedicinalProductPackaged?{many}", status=400)
    assert "GRUNNDATA_SEARCH_MAX_PARAMS" in outcome["issue"][0]["diagnostics"]


def test_r4s_own_parameters_are_answered_by_the_r5_ones(api: TestClient) -> None:
    """R4's parameters of the SAFEST types (MedicinalProduct name and name-language,
    MedicinalProductPackaged subject), _lastUpdated, _tag, _summary=count, _sort and the includes
    R4 names, in R4's names and types: in the query and in the links the answer gives."""
    packages = _ids(_get(api, f"/fhir/PackagedProductDefinition?package-for={CERTICAN_BRAND}&_count=50"))
    assert CERTICAN_PACKAGE in packages
    for query in (
        f"subject=MedicinalProduct/{CERTICAN_BRAND}",
        f"subject:MedicinalProduct={CERTICAN_BRAND}",
        f"subject={CERTICAN_BRAND}",
    ):
        assert sorted(_ids(_get(api, f"{R4}/{MPP}?{query}&_count=50"))) == sorted(packages), query
    name = _get(api, f"/fhir/MedicinalProductDefinition/{CERTICAN_BRAND}")["name"][0]["productName"]
    assert _ids(_get(api, f"{R4}/MedicinalProduct?name={name}")) == [CERTICAN_BRAND]
    assert _get(api, f"{R4}/MedicinalProduct?_summary=count")["total"] == 78
    assert _get(api, f"{R4}/{MPP}?_summary=count&_lastUpdated=gt2000-01-01")["total"] == 107
    # the package and the product it is for, in one R4 Bundle
    bundle = _get(api, f"{R4}/{MPP}?_id={CERTICAN_PACKAGE}&_include={MPP}:subject")
    assert [
        (e["resource"]["resourceType"], e["resource"]["id"], e["search"]["mode"]) for e in bundle["entry"]
    ] == [
        (MPP, CERTICAN_PACKAGE, "match"),
        ("MedicinalProduct", CERTICAN_BRAND, "include"),
    ]
    reverse = _get(api, f"{R4}/MedicinalProduct?_id={CERTICAN_BRAND}&_revinclude={MPP}:subject")
    assert sorted(
        e["resource"]["id"] for e in reverse["entry"] if e["search"]["mode"] == "include"
    ) == sorted(packages)
    # the next link is R4's: following it pages the same search (a product with several packs)
    by_product: dict[str, list[str]] = {}
    for e in _get(api, "/fhir/PackagedProductDefinition?_count=200")["entry"]:
        for ref in e["resource"].get("packageFor", []):
            by_product.setdefault(ref["reference"].split("/")[1], []).append(e["resource"]["id"])
    product, packs = min((p, ids) for p, ids in by_product.items() if len(ids) > 1)
    url = f"{R4}/{MPP}?subject=MedicinalProduct/{product}&_include={MPP}:subject&_count=1"
    paged: list[str] = []
    while url:
        page = _get(api, url.replace("http://testserver", ""))
        paged += [e["resource"]["id"] for e in page["entry"] if e["search"]["mode"] == "match"]
        url = {link["relation"]: link["url"] for link in page["link"]}.get("next", "")
        assert not url or (f"subject=MedicinalProduct/{product}" in url and f"_include={MPP}:subject" in url)
    assert sorted(paged) == sorted(packs)
    # what R4 does not name here is ignored with a note, or a 400 when strict
    ignored = _get(api, f"{R4}/{MPP}?_summary=true&_count=1")
    assert [e["resource"]["resourceType"] for e in ignored["entry"]][-1] == "OperationOutcome"
    unsortable = _get(api, f"{R4}/{MPP}?_sort=name", status=400)  # MedicinalProduct's, not this type's
    assert (
        unsortable["issue"][0]["diagnostics"]
        == "_sort: 'name' is not a sort key here; sort by _id, _lastUpdated"
    )
    strict = api.get(f"{R4}/{MPP}?package-for={CERTICAN_BRAND}", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400 and "'package-for'" in strict.json()["issue"][0]["diagnostics"]
    assert len(_ids(_get(api, f"{R4}/MedicinalProduct?_sort=name,-_lastUpdated&_count=3"))) == 3
    sorted_ids = _ids(_get(api, f"{R4}/{MPP}?_sort=-_lastUpdated,_id&_count=3"))
    assert len(sorted_ids) == 3


# -- the R4 bodies made at import and stored beside the R5 versions ---------------------------------


def test_every_version_of_a_safest_type_has_its_r4_body_stored_at_import(api: TestClient) -> None:
    """The stored body is what the R4 read made per request before: to_r4 of the version as served
    (meta, lastUpdated the activation's, included); the other types have none."""
    engine: Engine = api.app.state.served.engine  # type: ignore[attr-defined]
    stored: Counter[str] = Counter()
    with engine.connect() as conn:
        for version in store.served(conn):
            body = store.r4_body(conn, version.pk)
            if version.type in R4_OF_R5:
                assert body == r4_json(version.body()), f"{version.type}/{version.id}"
                stored[version.type] += 1
            else:
                assert body is None, f"{version.type}/{version.id}"
    assert stored == {
        "Ingredient": 139,
        "PackagedProductDefinition": 107,
        "MedicinalProductDefinition": 78,
        "AdministrableProductDefinition": 75,
        "ManufacturedItemDefinition": 75,
        "SubstanceDefinition": 71,
    }


def _plant(engine: Engine, pk: int, body: bytes) -> None:
    with engine.begin() as conn:
        conn.execute(update(R4_BODIES).where(R4_BODIES.c.resource_pk == pk).values(data=body))


def test_an_r4_read_sends_the_stored_body_on_both_bases(fresh_api: tuple[Engine, TestClient]) -> None:
    """Planted bytes in the stored R4 body are what both R4 reads send: it is read, not made again."""
    engine, api = fresh_api
    with engine.connect() as conn:
        version = store.read(
            conn, store.current_snapshot(conn), "PackagedProductDefinition", CERTICAN_PACKAGE
        )
    assert version is not None
    made = r4_json(version.body())
    assert made is not None
    planted = made.replace(
        b'"resourceType":"MedicinalProductPackaged",',
        b'"resourceType":"MedicinalProductPackaged","language":"nb",',
        1,
    )
    assert planted != made
    _plant(engine, version.pk, planted)
    for path in (
        f"/fhir/PackagedProductDefinition/{CERTICAN_PACKAGE}",
        f"/fhir/PackagedProductDefinition/{CERTICAN_PACKAGE}/_history/1",
    ):
        on_r5 = api.get(path, headers={"Accept": "application/fhir+json; fhirVersion=4.0"})
        assert on_r5.content == planted  # fhirVersion=4.0 on /fhir: the stored body
    assert api.get(f"{R4}/{MPP}/{CERTICAN_PACKAGE}").content == planted  # /fhir-r4, by the fast path


def test_a_store_made_before_r4_bodies_were_kept_still_serves_r4(
    fresh_api: tuple[Engine, TestClient],
) -> None:
    """A store imported before the resource_r4 table existed, served as it is (no import has added
    the table): an R4 read makes the body as it did before (to_r4 of the served version), never a
    500; opening it to import adds the table."""
    engine, _ = fresh_api
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE resource_r4"))
    url = engine.url.render_as_string(hide_password=False)
    older = connect(url, create=False)
    try:
        with older.connect() as conn:
            assert not store.keeps_r4_bodies(conn)
            version = store.read(
                conn, store.current_snapshot(conn), "PackagedProductDefinition", CERTICAN_PACKAGE
            )
        assert version is not None
        with TestClient(create_app(older)) as api:
            for path, accept in (
                (f"{R4}/{MPP}/{CERTICAN_PACKAGE}", "application/fhir+json"),
                (
                    f"/fhir/PackagedProductDefinition/{CERTICAN_PACKAGE}",
                    "application/fhir+json; fhirVersion=4.0",
                ),
            ):
                answer = api.get(path, headers={"Accept": accept})
                assert answer.status_code == 200, answer.text
                assert answer.content == r4_json(version.body())
    finally:
        older.dispose()
    reopened = connect(url)
    try:
        with reopened.connect() as conn:
            assert store.keeps_r4_bodies(conn)
            assert conn.execute(text("SELECT count(*) FROM resource_r4")).scalar() == 0
    finally:
        reopened.dispose()
