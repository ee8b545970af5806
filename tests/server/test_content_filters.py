"""DMP's H-resept content filters as a view of the R5 API (`content-filter=h-resept`): a planted
delivery with one product or package in each filter class, HentetDato as now, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.importers.fest import import_fest
from grunndata.importers.national import OWNER, OWNER_NAME, TIER, derive, fest_type
from grunndata.m30 import FestEntry
from grunndata.m30.records import child, child_text
from grunndata.server import create_app
from grunndata.settings import Settings
from grunndata.store import ReleaseBuilder
from grunndata.translators.fest_to_idmp.values import fhir_id
from tests.conftest import REAL_FEST, REAL_HENTET_DATO, require
from tests.deliveries import real_entries, write

PPD, MPD = "PackagedProductDefinition", "MedicinalProductDefinition"
VIEW = "content-filter=h-resept"


def _packages_by_product(entries: list[FestEntry]) -> dict[str, list[str]]:
    """Merkevare Id -> the Ids of the packages with it as their only product, in delivery order."""
    found: dict[str, list[str]] = {}
    for e in entries:
        if e.catalogue != "Legemiddelpakning":
            continue
        infos = [c for c in e.payload[0][3] or () if c[0] == "Pakningsinfo"]
        if len(infos) == 1:
            found.setdefault(child_text(infos[0], "RefLegemiddelMerkevare") or "", []).append(e.key)
    return found


def _changed(entry: FestEntry, change: Any) -> FestEntry:
    payload = copy.deepcopy(list(entry.payload))
    change(payload[0])
    return FestEntry(
        entry.catalogue, entry.oppf_id, entry.tidspunkt, entry.status, entry.status_dn, tuple(payload)
    )


def _atc_q(node: list) -> None:
    atc = child(node, "Atc")
    assert atc is not None
    atc[1] = {"V": "QJ01CA04", "S": "2.16.578.1.12.4.1.1.7180", "DN": "Amoksicillin (vet)"}


def _homeopathic(node: list) -> None:
    kind = child(node, "Preparattype")
    assert kind is not None
    kind[1] = {"V": "99", "DN": "HOMØOPATISK HUMAN"}  # matched by its text, whatever its case


def _deregistered(node: list) -> None:  # AvregDato more than three months before HentetDato
    info = child(node, "Markedsforingsinfo")
    assert info is not None
    info[3] = [["Markedsforingsdato", None, "2010-01-01", None], ["AvregDato", None, "2017-01-11", None]]


def _no_varenr(node: list) -> None:  # the XSD requires the element: an empty one is no number
    varenr = child(node, "Varenr")
    assert varenr is not None
    varenr[2] = ""


def planted(tmp_path: Path) -> tuple[Path, dict[str, set[tuple[str, str]]]]:
    """The real extract with: a product whose ATC starts with Q, a homeopathic product (each with
    its packages), a package deregistered a day before the three months, one without varenr.
    Returns the delivery and, per filter, the resources it must leave out."""
    hentet, entries = real_entries(require(REAL_FEST))
    by_product = _packages_by_product(entries)
    products = sorted(p for p, packages in by_product.items() if packages)
    q, homeo, marketed, varenr = products[:4]
    changes = {
        q: _atc_q,
        homeo: _homeopathic,
        by_product[marketed][0]: _deregistered,
        by_product[varenr][0]: _no_varenr,
    }
    out = [_changed(e, changes[e.key]) if e.key in changes else e for e in entries]
    product = {(MPD, fhir_id(q))} | {(PPD, fhir_id(p)) for p in by_product[q]}
    homeopathic = {(MPD, fhir_id(homeo))} | {(PPD, fhir_id(p)) for p in by_product[homeo]}
    expected = {
        "atc-q": product,
        "homeopathic": homeopathic,
        "not-marketed": {(PPD, fhir_id(by_product[marketed][0]))},
        "no-varenr": {(PPD, fhir_id(by_product[varenr][0]))},
    }
    return write(tmp_path / "planted.xml", hentet, out), expected


def ids(client: TestClient, url: str) -> set[str]:
    """Every id a search finds, following its next links."""
    found: set[str] = set()
    while url:
        bundle = client.get(url).json()
        assert bundle["resourceType"] == "Bundle", bundle
        found |= {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), "")
    return found


def total(client: TestClient, rtype: str, query: str = "") -> int:
    bundle = client.get(f"/fhir/{rtype}?_summary=count&{query}").json()
    return int(bundle["total"])


@pytest.fixture
def planted_api(engine: Engine, tmp_path: Path) -> Iterator[tuple[Engine, TestClient, dict[str, Any]]]:
    delivery, expected = planted(tmp_path)
    result = import_fest(engine, delivery)
    assert result.content_filters is not None
    with TestClient(create_app(engine)) as client:
        yield engine, client, {"expected": expected, "report": result.content_filters}


def test_each_planted_class_is_absent_from_the_view_and_present_without_it(planted_api: Any) -> None:
    _, client, found = planted_api
    expected: dict[str, set[tuple[str, str]]] = found["expected"]
    gone = set().union(*expected.values())
    assert all(len(keys) >= 1 for keys in expected.values())
    for rtype in (MPD, PPD):
        everything = ids(client, f"/fhir/{rtype}?_count=200")
        view = ids(client, f"/fhir/{rtype}?{VIEW}&_count=7")  # paged: each next link keeps the view
        left_out = {(rtype, i) for i in everything - view}
        assert left_out == {key for key in gone if key[0] == rtype}
        assert view <= everything
        assert total(client, rtype, VIEW) == len(view) == len(everything) - len(left_out)
    assert (total(client, MPD), total(client, MPD, VIEW)) == (78, 76)
    assert total(client, PPD) == 107


def test_what_belongs_to_a_left_out_product_is_left_out_too(planted_api: Any) -> None:
    _, client, found = planted_api
    product = next(i for t, i in found["expected"]["atc-q"] if t == MPD)
    for rtype, param in (
        ("AdministrableProductDefinition", "form-of"),
        ("Ingredient", "for"),
        ("RegulatedAuthorization", "subject"),
        (PPD, "package-for"),
    ):
        unfiltered = client.get(f"/fhir/{rtype}?{param}=MedicinalProductDefinition/{product}").json()
        filtered = client.get(f"/fhir/{rtype}?{param}=MedicinalProductDefinition/{product}&{VIEW}").json()
        assert unfiltered["total"] if "total" in unfiltered else unfiltered.get("entry"), rtype
        assert filtered.get("entry", []) == [], rtype
    item = client.get(f"/fhir/ManufacturedItemDefinition?_id={product}&{VIEW}&_summary=count").json()
    assert item["total"] == 0
    assert client.get(f"/fhir/ManufacturedItemDefinition?_id={product}&_summary=count").json()["total"] == 1
    # an _include does not bring back what the view leaves out
    package = next(i for t, i in found["expected"]["atc-q"] if t == PPD)
    bundle = client.get(f"/fhir/{PPD}?_id={package}&_include={PPD}:package-for").json()
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == [PPD, MPD]
    assert (
        client.get(f"/fhir/{PPD}?_id={package}&_include={PPD}:package-for&{VIEW}").json().get("entry", [])
        == []
    )


def test_everything_in_the_view_leaves_out_what_the_view_excludes(planted_api: Any) -> None:
    _, client, found = planted_api
    q_product = next(i for t, i in found["expected"]["atc-q"] if t == MPD)
    whole = client.get(f"/fhir/{MPD}/{q_product}/$everything")
    assert whole.status_code == 200 and len(whole.json()["entry"]) > 1
    left_out = client.get(f"/fhir/{MPD}/{q_product}/$everything?{VIEW}")
    assert left_out.status_code == 404
    assert left_out.json()["issue"][0]["diagnostics"] == (
        f"{MPD}/{q_product} is not in the h-resept view (left out by atc-q)"
    )
    # a product kept whose one package is not marketed: everything but that package
    package = next(i for _, i in found["expected"]["not-marketed"])
    product = client.get(f"/fhir/{PPD}/{package}").json()["packageFor"][0]["reference"].split("/")[1]
    everything = {
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in client.get(f"/fhir/{MPD}/{product}/$everything").json()["entry"]
    }
    viewed = {
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in client.get(f"/fhir/{MPD}/{product}/$everything?{VIEW}").json()["entry"]
    }
    assert everything - viewed == {(PPD, package)}
    for query, status in (("content-filter=nope", 400), (f"{VIEW}&{VIEW}", 400), ("_count=1", 200)):
        assert client.get(f"/fhir/{MPD}/{product}/$everything?{query}").status_code == status, query
    strict = client.get(f"/fhir/{MPD}/{product}/$everything?_count=1", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400 and "'_count'" in strict.json()["issue"][0]["diagnostics"]


def test_a_history_is_not_filtered_and_says_so(planted_api: Any) -> None:
    _, client, found = planted_api
    package = next(i for _, i in found["expected"]["not-marketed"])
    for path in (f"{PPD}/{package}/_history", f"{PPD}/_history", "_history"):
        response = client.get(f"/fhir/{path}?{VIEW}")
        assert response.status_code == 400, path
        assert response.json()["issue"][0]["diagnostics"].startswith(
            "content-filter selects what a search finds"
        )
        assert client.get(f"/fhir/{path}").status_code == 200


def test_the_counts_each_filter_removes_are_reported(planted_api: Any) -> None:
    engine, client, found = planted_api
    report = found["report"]
    expected: dict[str, set[tuple[str, str]]] = found["expected"]
    q_packages = sum(1 for t, _ in expected["atc-q"] if t == PPD)
    h_packages = sum(1 for t, _ in expected["homeopathic"] if t == PPD)
    assert (report["view"], report["now"], report["cutoff"]) == ("h-resept", "2017-04-12", "2017-01-12")
    assert report["excluded"]["atc-q"] == {
        "AdministrableProductDefinition": 1,
        "Ingredient": report["excluded"]["atc-q"]["Ingredient"],
        "ManufacturedItemDefinition": 1,
        MPD: 1,
        PPD: q_packages,
        "RegulatedAuthorization": 1,
    }
    assert report["excluded"]["homeopathic"][PPD] == h_packages
    assert report["excluded"]["not-marketed"] == {PPD: 1}
    assert report["excluded"]["no-varenr"] == {PPD: 1}
    assert report["excluded"]["varenr-expired"] == report["excluded"]["unit-dose-expired"] == {}
    migration = client.get("/migration", headers={"Accept": "application/json"}).json()
    assert migration["releases"][0]["content_filters"] == report
    assert "content-filter=h-resept" in client.get("/migration").text


def test_a_filter_switched_off_by_its_setting_lets_its_class_through(planted_api: Any) -> None:
    engine, _, found = planted_api
    expected: dict[str, set[tuple[str, str]]] = found["expected"]
    settings = Settings.load({"GRUNNDATA_HRESEPT_ATC_Q": "0", "GRUNNDATA_HRESEPT_VARENR": "off"})
    with TestClient(create_app(engine, settings=settings)) as client:
        view = {(PPD, i) for i in ids(client, f"/fhir/{PPD}?{VIEW}&_count=200")}
    assert expected["atc-q"] & {k for k in expected["atc-q"] if k[0] == PPD} <= view
    assert expected["no-varenr"] <= view
    assert not (expected["homeopathic"] | expected["not-marketed"]) & view


def test_the_export_and_the_unfiltered_api_are_untouched(planted_api: Any) -> None:
    _, client, found = planted_api
    varenr_less = next(iter(found["expected"]["no-varenr"]))[1]
    assert client.get(f"/fhir/{PPD}/{varenr_less}").status_code == 200
    assert total(client, PPD, "") == 107


@pytest.mark.parametrize("modifier", ["not", "missing", "exact"])
def test_content_filter_takes_no_modifier(planted_api: Any, modifier: str) -> None:
    _, client, _ = planted_api
    response = client.get(f"/fhir/{PPD}?content-filter:{modifier}=h-resept")
    assert response.status_code == 400
    assert response.json()["issue"][0]["diagnostics"].startswith("content-filter takes no modifier")


@pytest.mark.parametrize("value", ["nope", "H-RESEPT", ""])
def test_an_unknown_content_filter_is_a_400_that_says_which_there_are(planted_api: Any, value: str) -> None:
    _, client, _ = planted_api
    response = client.get(f"/fhir/{PPD}?content-filter={value}")
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "invalid"
    assert outcome["issue"][0]["diagnostics"] == f"content-filter must be one of h-resept, not {value!r}"


# -- the two classes a FEST delivery cannot bring: a served listing that has expired ------------------

DOSE_ID = "ID_0D05E000-0000-4000-8000-000000000001"


def _expired_unit_dose(product: str, package: str) -> FestEntry:
    node = [
        "Legemiddeldose",
        None,
        None,
        [
            ["NavnFormStyrke", None, "Certican Disperg tab 0,1 mg, endose", None],
            ["Reseptgruppe", {"V": "C", "DN": "Reseptgruppe C"}, None, None],
            ["Id", None, DOSE_ID, None],
            ["Mengde", {"V": "1", "U": "stk"}, None, None],
            ["RefLegemiddelMerkevare", None, product, None],
            ["RefPakning", None, package, None],
        ],
    ]
    return FestEntry(
        "Legemiddeldose",
        "ID_0D05E000-0000-4000-8000-0000000000AA",
        "2017-04-01T10:00:00",
        "U",
        "Utgått",
        (node,),
    )


def test_a_served_expired_listing_is_left_out_a_unit_dose_at_once_a_package_after_three_months(
    engine: Engine,
) -> None:
    """FEST stops the store serving an expired listing (Status U), so these two classes reach the
    store only as data that says it expired (e.g. SAFEST's): planted here through the release
    builder, which the importers use, with derive classifying them as at any import."""
    hentet, entries = real_entries(require(REAL_FEST))
    packages = [e for e in entries if e.catalogue == "Legemiddelpakning"]
    long_ago = FestEntry(
        "Legemiddelpakning", packages[0].oppf_id, "2017-01-11T23:00:00", "U", "Utgått", packages[0].payload
    )
    lately = FestEntry(
        "Legemiddelpakning", packages[1].oppf_id, "2017-01-12T08:00:00", "U", "Utgått", packages[1].payload
    )
    product = child_text(child(packages[2].payload[0], "Pakningsinfo") or [], "RefLegemiddelMerkevare")
    dose = _expired_unit_dose(product or "", packages[2].key)
    planted_entries = [
        long_ago,
        lately,
        dose,
        *(e for e in entries if e.key not in (long_ago.key, lately.key)),
    ]
    with ReleaseBuilder(engine, "fest", "full", TIER, OWNER, OWNER_NAME, "planted.xml") as builder:
        for e in planted_entries:
            data = orjson.dumps(e.to_json())
            builder.put(fest_type(e.catalogue), e.key, data, hashlib.sha256(data).hexdigest(), e.oppf_id)
        derived = derive(builder, None, None, REAL_HENTET_DATO)
        builder.finish(hentet, {"content_filters": derived.content_filters})
    assert derived.content_filters["excluded"]["varenr-expired"] == {PPD: 1}
    assert derived.content_filters["excluded"]["unit-dose-expired"] == {"ManufacturedItemDefinition": 1}
    with TestClient(create_app(engine)) as client:
        everything = ids(client, f"/fhir/{PPD}?_count=200")
        view = ids(client, f"/fhir/{PPD}?{VIEW}&_count=200")
        assert everything - view == {fhir_id(long_ago.key)}  # expired a day before the three months
        dose_search = f"/fhir/ManufacturedItemDefinition?_id={fhir_id(DOSE_ID)}&_summary=count"
        assert client.get(dose_search).json()["total"] == 1
        assert client.get(dose_search + f"&{VIEW}").json()["total"] == 0


def test_a_version_the_view_kept_stays_readable_after_a_newer_one_is_left_out(
    engine: Engine, tmp_path: Path
) -> None:
    """The R4 H-resept histories list a version no release's view left out; its vread agrees (it
    was judged by the current version, a 404 for an entry the delta lists; probe)."""
    hentet, entries = real_entries(require(REAL_FEST))
    import_fest(engine, write(tmp_path / "one.xml", hentet, entries))
    by_product = _packages_by_product(entries)
    product = sorted(p for p, packages in by_product.items() if packages)[0]
    import_fest(
        engine,
        write(
            tmp_path / "two.xml", hentet, [_changed(e, _atc_q) if e.key == product else e for e in entries]
        ),
    )
    base = f"/fhir-r4-hresept/MedicinalProduct/{fhir_id(product)}"
    with TestClient(create_app(engine)) as client:
        assert client.get(f"{base}/_history/1").status_code == 200
        newer = client.get(f"{base}/_history/2")
        assert newer.status_code == 404 and "left out by atc-q" in newer.json()["issue"][0]["diagnostics"]
        assert client.get(base).status_code == 404
        history = client.get(f"{base}/_history").json()
        assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["1"]
        delta = client.get("/fhir-r4-hresept/delta/MedicinalProduct?_count=1000").json()
        assert [
            e["resource"]["meta"]["versionId"]
            for e in delta["entry"]
            if e["resource"]["id"] == fhir_id(product)
        ] == ["1"]
        assert client.get(f"/fhir-r4/MedicinalProduct/{fhir_id(product)}/_history/2").status_code == 200
