"""A barcode at every packaging level: one token search finds the package (or item) whose product
code is given, at whatever level it is printed, and says where it matched.

The store holds the real 2017 FEST extract, a planted SAFEST R4 delivery (barcode_data/: a carton,
a blister card in it and a unit-dose blister in that, each with its GTIN, the unit dose's tablet
with an LMR number), and a hospital pharmacy's sector data: a unit-dose repack of Certican with its
own GTIN and a unit-dose item with one. DMP's package-item-level-one|two|three count from the top.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.importers.safest import import_safest
from grunndata.server import create_app
from tests.conftest import REAL_FEST, fresh_pg_database, require
from tests.server.conftest import CERTICAN_BRAND, CERTICAN_PACKAGE, publish, served_store
from tests.server.tokens import Issuer

PLANTED = Path(__file__).parent / "barcode_data" / "safest-three-levels.json"
PPD, MID = "PackagedProductDefinition", "ManufacturedItemDefinition"
GTIN = "https://www.gs1.org/gtin"
LMR = "http://dmp.no/fhir/NamingSystem/lmrLopenummer"
MATCH = "https://grunndata.no/fhir/StructureDefinition/barcode-match"
LEVEL_SYSTEM = "http://legemiddelverket.no/fhir/CodeSystem/PackageLevel"
PACKAGING_PROPERTY = "https://grunndata.no/fhir/CodeSystem/packaging-property"
CARTON, CARD, UNIT_DOSE = "7046261999014", "7046261999021", "7046261999038"  # levels 1, 2, 3 (outer first)
TABLET_LMR = "99001"
SECTOR_GTIN, SECTOR_ITEM_GTIN = "7046261999045", "7046261999052"
CERTICAN_GTIN = "7046260148840"
SECTOR_OWNER = "sykehusapotek-vest"

SECTOR_REPACK = {
    "resourceType": PPD,
    "id": "sector-certican-unit-dose",
    "name": "Certican 0,1 mg endose (sykehusapotekets ompakning)",
    "packageFor": [{"reference": f"MedicinalProductDefinition/{CERTICAN_BRAND}"}],
    "packaging": {
        "identifier": [{"system": GTIN, "value": SECTOR_GTIN}],
        "quantity": 1,
        "property": [
            {
                "type": {"coding": [{"system": PACKAGING_PROPERTY, "code": "unit-dose"}]},
                "valueBoolean": True,
            }
        ],
        "containedItem": [{"item": {"reference": {"reference": f"{MID}/{CERTICAN_BRAND}"}}}],
    },
}
SECTOR_ITEM = {
    "resourceType": MID,
    "id": "sector-certican-tablet",
    "status": "active",
    "identifier": [{"system": GTIN, "value": SECTOR_ITEM_GTIN}],
    "manufacturedDoseForm": {"text": "Dispergerbar tablett"},
}


def _publish_sector(engine: Engine) -> None:
    publish(engine, [("sector", SECTOR_OWNER, r) for r in (SECTOR_REPACK, SECTOR_ITEM)])


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return Issuer(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, issuer: Issuer
) -> Iterator[TestClient]:
    def serve(url: str) -> Iterator[TestClient]:
        engine = served_store(url)
        result = import_safest(engine, PLANTED)
        assert result.problems == []
        _publish_sector(engine)
        with TestClient(create_app(engine, issuer.authenticator())) as client:
            yield client
        engine.dispose()

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{tmp_path_factory.mktemp('barcodes') / 'store.db'}")
        return
    with fresh_pg_database() as url:
        yield from serve(url)


def _search(api: TestClient, query: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = api.get(f"/fhir/{query}", headers=headers or {})
    assert response.status_code == 200, response.text
    return [e for e in response.json().get("entry", []) if e["search"]["mode"] == "match"]


def _found(entries: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(id, [each match as {sub-extension url: value}]) of every match."""
    out = []
    for e in entries:
        matches = []
        for ext in e["search"].get("extension", []):
            assert ext["url"] == MATCH
            matches.append(
                {p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in ext["extension"]}
            )
        out.append((e["resource"]["id"], matches))
    return out


def _level(code: str) -> dict[str, str]:
    names = {"1": "Primary", "2": "Secondary", "3": "Tertiary"}
    return {"system": LEVEL_SYSTEM, "code": code, "display": names[code]}


# -- the planted SAFEST delivery: one code at each level -------------------------------------------


@pytest.mark.parametrize(
    ("code", "depth", "package_level", "unit_dose"),
    [(CARTON, 1, "3", False), (CARD, 2, "2", False), (UNIT_DOSE, 3, "1", True)],
)
def test_a_code_at_each_packaging_level_is_found_and_says_its_level(
    api: TestClient, code: str, depth: int, package_level: str, unit_dose: bool
) -> None:
    match: dict[str, Any] = {"where": "packaging", "level": depth, "packageLevel": _level(package_level)}
    if unit_dose:
        match["unitDose"] = True
    match["identifier"] = {"system": GTIN, "value": code}
    assert _found(_search(api, f"{PPD}?barcode={code}")) == [("mpp-barcode-test", [match])]
    words = ("one", "two", "three")
    for n, word in enumerate(words, 1):  # DMP's parameters: only the level the code is at finds it
        found = _found(_search(api, f"{PPD}?package-item-level-{word}={code}"))
        assert found == ([("mpp-barcode-test", [match])] if n == depth else []), word


def test_every_gtin_form_and_alias_system_finds_the_level(api: TestClient) -> None:
    """GTIN-13 or -14, no system, GS1's, Farmalogg's NTIN/GTIN/produktkode, HL7's OID: one answer."""
    forms = [
        UNIT_DOSE,
        "0" + UNIT_DOSE,
        f"{GTIN}|{UNIT_DOSE}",
        f"https://farmalogg.no/produktkode/NTIN|0{UNIT_DOSE}",
        f"https://farmalogg.no/produktkode/GTIN|{UNIT_DOSE}",
        f"https://farmalogg.no/produktkode|{UNIT_DOSE}",
        f"urn:oid:1.3.160|{UNIT_DOSE}",
    ]
    for form in forms:
        found = _search(api, f"{PPD}?package-item-level-three={form.replace('|', '%7C')}")
        assert [e["resource"]["id"] for e in found] == ["mpp-barcode-test"], form
    assert (
        _search(api, f"{PPD}?barcode={GTIN}%7C7046261999039") == []
    )  # wrong check digit: as given, no match


def test_the_items_code_finds_the_item_and_the_package_holding_it(api: TestClient) -> None:
    identifier = {"system": LMR, "value": TABLET_LMR}
    assert _found(_search(api, f"{MID}?barcode={TABLET_LMR}")) == [
        ("mpm-barcode-test", [{"where": "item", "identifier": identifier}])
    ]
    item = {"reference": f"{MID}/mpm-barcode-test"}
    assert _found(_search(api, f"{PPD}?barcode={TABLET_LMR}")) == [
        ("mpp-barcode-test", [{"where": "item", "item": item, "identifier": identifier}])
    ]
    assert _search(api, f"{PPD}?package-item-level-three={TABLET_LMR}") == []  # a level's own codes only


def test_several_codes_or_ed_each_say_where(api: TestClient) -> None:
    found = _found(_search(api, f"{PPD}?barcode={CARTON},{UNIT_DOSE}"))
    assert [(rid, [(m["where"], m.get("level")) for m in ms]) for rid, ms in found] == [
        ("mpp-barcode-test", [("packaging", 1), ("packaging", 3)])
    ]


def test_a_search_without_a_barcode_says_nothing_of_levels(api: TestClient) -> None:
    entries = _search(api, f"{PPD}?_id=mpp-barcode-test")
    assert [e["search"] for e in entries] == [{"mode": "match"}]


def test_any_level_item_finds_a_package_by_an_item_at_any_depth(api: TestClient) -> None:
    found = _search(api, f"{PPD}?any-level-item={MID}/mpm-barcode-test")
    assert [e["resource"]["id"] for e in found] == ["mpp-barcode-test"]
    assert _search(api, f"{PPD}?contained-item={MID}/mpm-barcode-test") == []  # R5's: the outer level only


# -- the real extract: every FEST Ean --------------------------------------------------------------


def _real_eans() -> dict[str, set[str]]:
    """Ean -> the Legemiddelpakning ids that carry it, read from the XML itself."""
    text = gzip.decompress(require(REAL_FEST).read_bytes()).decode("utf-8")
    found: dict[str, set[str]] = {}
    for block in re.findall(r"<Legemiddelpakning\b.*?</Legemiddelpakning>", text, re.S):
        ean = re.search(r"<Ean>([0-9]+)</Ean>", block)
        if ean is not None:
            rid = re.search(r"<Id>ID_([0-9A-F-]+)</Id>", block)
            assert rid is not None
            found.setdefault(ean[1], set()).add(rid[1])
    return found


def test_every_gtin_of_the_real_extract_finds_exactly_its_package_at_level_one(api: TestClient) -> None:
    eans = _real_eans()
    assert len(eans) == 105
    assert eans[CERTICAN_GTIN] == {CERTICAN_PACKAGE}
    for ean, packages in eans.items():
        by_barcode = _search(api, f"{PPD}?barcode={ean}&_count=50")
        assert {e["resource"]["id"] for e in by_barcode} == packages, ean
        by_level = _search(api, f"{PPD}?package-item-level-one=0{ean}&_count=50")  # as GTIN-14
        assert {e["resource"]["id"] for e in by_level} == packages, ean
        assert _search(api, f"{PPD}?package-item-level-two={ean}") == []


def test_the_real_certican_pack_says_where_its_gtin_is(api: TestClient) -> None:
    identifier = {"system": GTIN, "value": CERTICAN_GTIN}
    assert _found(_search(api, f"{PPD}?barcode={CERTICAN_GTIN}")) == [
        (
            CERTICAN_PACKAGE,
            [
                {"where": "package", "identifier": identifier},  # PackagedProductDefinition.identifier
                {"where": "packaging", "level": 1, "packageLevel": _level("1"), "identifier": identifier},
            ],
        )
    ]


@pytest.mark.parametrize(
    "scanned",
    [
        f"010{CERTICAN_GTIN}17280131\x1d10LOT7",  # the pack's DataMatrix as a scanner sends it
        f"(01)0{CERTICAN_GTIN}(17)280131(10)LOT7",  # bracketed, as printed under it
        f"https://id.gs1.org/01/0{CERTICAN_GTIN}/21/S1",  # a GS1 Digital Link
    ],
)
def test_a_scanned_gs1_code_finds_the_pack_by_the_gtin_it_carries(api: TestClient, scanned: str) -> None:
    expected = {"where": "package", "identifier": {"system": GTIN, "value": CERTICAN_GTIN}}
    for parameter in ("barcode", f"barcode={GTIN}|", "package-item-level-one"):
        name, _, system = parameter.partition("=")
        response = api.get(f"/fhir/{PPD}", params={name: f"{system}{scanned}"})
        assert response.status_code == 200, response.text
        matches = [e for e in response.json().get("entry", []) if e["search"]["mode"] == "match"]
        assert [m[0] for m in _found(matches)] == [CERTICAN_PACKAGE], parameter
        if name == "barcode":
            assert expected in _found(matches)[0][1]
    # over R4 as DMP's parameter, and not on the identifier parameter (no scanned code is an id)
    r4 = api.get("/fhir-r4/MedicinalProductPackaged", params={"package-item-level-one": scanned})
    assert [e["resource"]["id"] for e in r4.json()["entry"]] == [CERTICAN_PACKAGE]
    by_id = api.get(f"/fhir/{PPD}", params={"identifier": scanned})
    if "\x1d" in scanned:  # only a barcode parameter takes a scanner's group separator
        assert by_id.status_code == 400 and "U+001D" in by_id.text
    else:
        assert by_id.status_code == 200 and "entry" not in by_id.json()


@pytest.mark.parametrize(
    "scanned",
    [
        f"(01)0{CERTICAN_GTIN}(21)AB,482109",  # a serial number holding a comma (and a real varenr)
        f"010{CERTICAN_GTIN}1728013121AB,482109",
        f"https://id.gs1.org/01/0{CERTICAN_GTIN}/21/AB%2C482109",
    ],
)
def test_a_comma_in_a_scanned_code_is_part_of_it_not_an_or(api: TestClient, scanned: str) -> None:
    assert _search(api, f"{PPD}?identifier=482109") != []  # the varenr after the comma is a real one
    found = api.get(f"/fhir/{PPD}", params={"barcode": scanned.replace("%2C", ",")}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [CERTICAN_PACKAGE]
    level = api.get("/fhir-r4/MedicinalProductPackaged", params={"package-item-level-one": scanned}).json()
    assert [e["resource"]["id"] for e in level["entry"]] == [CERTICAN_PACKAGE]


# -- sector data: a unit-dose barcode, for entitled clients only ------------------------------------


@pytest.mark.parametrize(
    ("scopes", "entitled"),
    [((), False), (("grunndata:supplementary.read:vendor-a",), False), (("grunndata:sector.read",), True)],
)
def test_a_sector_unit_dose_barcode_is_found_only_by_entitled_clients(
    api: TestClient, issuer: Issuer, scopes: tuple[str, ...], entitled: bool
) -> None:
    headers = issuer.headers(*scopes) if scopes else {}
    repack = _found(_search(api, f"{PPD}?barcode={SECTOR_GTIN}", headers))
    match = {
        "where": "packaging",
        "level": 1,
        "unitDose": True,
        "identifier": {"system": GTIN, "value": SECTOR_GTIN},
    }
    assert repack == ([("sector-certican-unit-dose", [match])] if entitled else [])
    level_one = _search(api, f"{PPD}?package-item-level-one={SECTOR_GTIN}", headers)
    assert [e["resource"]["id"] for e in level_one] == (["sector-certican-unit-dose"] if entitled else [])
    item = _found(_search(api, f"{MID}?barcode={SECTOR_ITEM_GTIN}", headers))
    item_match = {"where": "item", "identifier": {"system": GTIN, "value": SECTOR_ITEM_GTIN}}
    assert item == ([("sector-certican-tablet", [item_match])] if entitled else [])
    # the national package is found by its own code for everyone, the sector repack never shown with it
    national = _search(api, f"{PPD}?barcode={CERTICAN_GTIN}", headers)
    assert [e["resource"]["id"] for e in national] == [CERTICAN_PACKAGE]


# -- bad input: a clear 400, never a 500 -----------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        f"{PPD}?barcode:text={CARTON}",
        f"{PPD}?package-item-level-one:exact={CARTON}",
        f"{PPD}?barcode:missing=maybe",
        f"{MID}?barcode:below={CARTON}",  # a GTIN has no hierarchy to follow
        f"{PPD}?any-level-item=not%20a%20reference/x/y",
    ],
)
def test_bad_barcode_searches_are_400(api: TestClient, query: str) -> None:
    response = api.get(f"/fhir/{query}")
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_level_dmp_does_not_define_is_unknown(api: TestClient) -> None:
    strict = api.get(f"/fhir/{PPD}?package-item-level-four={CARTON}", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert "package-item-level-four" in strict.text


def test_the_capability_statement_lists_the_barcode_parameters(api: TestClient) -> None:
    rest = api.get("/fhir/metadata").json()["rest"][0]
    params = {r["type"]: {p["name"]: p for p in r.get("searchParam", [])} for r in rest["resource"]}
    for code in ("barcode", "package-item-level-one", "package-item-level-two", "package-item-level-three"):
        assert params[PPD][code]["type"] == "token"
        assert params[PPD][code]["definition"] == f"https://grunndata.no/fhir/SearchParameter/{PPD}-{code}"
    assert params[PPD]["any-level-item"]["type"] == "reference"
    assert params[MID]["barcode"]["type"] == "token"


def test_the_match_is_said_in_xml_too(api: TestClient) -> None:
    response = api.get(f"/fhir/{PPD}?package-item-level-three={UNIT_DOSE}&_format=xml&_elements=id")
    assert response.status_code == 200
    search = response.text[response.text.index("<search>") : response.text.index("</search>") + 9]
    assert search == (
        f'<search><extension url="{MATCH}">'
        '<extension url="where"><valueCode value="packaging"/></extension>'
        '<extension url="level"><valueInteger value="3"/></extension>'
        f'<extension url="packageLevel"><valueCoding><system value="{LEVEL_SYSTEM}"/><code value="1"/>'
        '<display value="Primary"/></valueCoding></extension>'
        '<extension url="unitDose"><valueBoolean value="true"/></extension>'
        f'<extension url="identifier"><valueIdentifier><system value="{GTIN}"/><value value="{UNIT_DOSE}"/>'
        "</valueIdentifier></extension></extension>"
        '<mode value="match"/></search>'
    )


def test_one_search_answers_with_the_package_and_the_item_whose_code_it_is(api: TestClient) -> None:
    """`_include` of any-level-item brings the items of the packages found: the item's code gives
    the package (a match) and the item itself (an include) in one answer."""
    response = api.get(f"/fhir/{PPD}?barcode={TABLET_LMR}&_include={PPD}:any-level-item")
    assert response.status_code == 200
    entries = [
        (e["search"]["mode"], e["resource"]["resourceType"], e["resource"]["id"])
        for e in response.json()["entry"]
    ]
    assert entries == [("match", PPD, "mpp-barcode-test"), ("include", MID, "mpm-barcode-test")]
