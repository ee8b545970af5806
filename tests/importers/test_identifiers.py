"""A search in every accepted form of an identifier finds the one resource served for it, whichever
source gave it: the real 2017 extract, a SAFEST-shaped delivery describing products of that extract
(safest_data/aliases.json: FEST ids without ``ID_``, in lower case, under ehelse.no, hl7.no and
DMP's old festVirkestoff systems; the GTIN as 14 digits under Farmalogg's NTIN system; the varenr
in SAFEST's nested itemnumber extension), or both imported together.

Token search semantics (FHIR R5 3.2.1.5.4): a value is a code to match. A value that is not well
formed for its kind (a GTIN with a wrong check digit, a FEST id that is not a GUID) is searched as
given: it finds what carries it so (a SAFEST value kept as sent), nothing else, and is never a 400.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources import get_fhir_model_class

from grunndata.fhir import identifiers
from grunndata.importers.fest import import_fest
from grunndata.importers.identifiers import served_identifiers
from grunndata.importers.safest import import_safest
from grunndata.server import create_app
from grunndata.store import connect
from tests.conftest import REAL_FEST, fresh_pg_database, require
from tests.server.conftest import CERTICAN_BRAND, CERTICAN_PACKAGE

ALIASES = Path(__file__).parent / "safest_data" / "aliases.json"
MPD, PPD, MID = "MedicinalProductDefinition", "PackagedProductDefinition", "ManufacturedItemDefinition"
SD, ING = "SubstanceDefinition", "Ingredient"
KLARITROMYCIN = "3E2A7C4C-4027-449E-BFF7-68D1E6700A12"  # LegemiddelVirkestoff
EVEROLIMUS = "82BF10B1-2FF0-4F26-8392-1C74748EC9A2"  # Virkestoff, Certican's substance
DOSE = "7A1D0C2E-5B3F-4E8A-9C6D-0E1F2A3B4C5D"  # a Legemiddeldose of SAFEST's only: the extract has none
GENERIC = "http://ehelse.no/fhir/CodeSystem/FEST"


def fest_id_forms(kind: identifiers.IdentifierKind, guid: str) -> list[str]:
    """Every accepted form of one FEST id: each system of its kind (served, aliases, the served one
    in other case, the generic FEST system) with the id with and without ``ID_``, in either case;
    and the id alone in each of those forms."""
    values = ["ID_" + guid, guid, guid.lower(), "id_" + guid.lower()]
    systems = [kind.served, *kind.aliases, kind.served.upper(), GENERIC]
    return [f"{s}|{v}" for s in systems for v in values] + values


GTIN, VARENR = identifiers.GTIN, identifiers.VARENR
GTIN_FORMS = [
    f"{s}|{v}"
    for s in (GTIN.served, *GTIN.aliases, "HTTPS://FARMALOGG.NO/produktkode/ntin")
    for v in ("7046260148840", "07046260148840")
] + ["7046260148840", "07046260148840"]
VARENR_FORMS = [f"{s}|{v}" for s in (VARENR.served, *VARENR.aliases) for v in ("014884", "14884")] + [
    "014884",
    "14884",
]

# (kind, type searched, forms, the id found in a store of the real extract, in one of SAFEST's alone)
KINDS: list[tuple[str, str, list[str], str | None, str]] = [
    (
        "LegemiddelMerkevare",
        MPD,
        fest_id_forms(identifiers.MERKEVARE, CERTICAN_BRAND),
        CERTICAN_BRAND,
        "al-certican",
    ),
    (
        "LegemiddelVirkestoff",
        MPD,
        fest_id_forms(identifiers.LEGEMIDDELVIRKESTOFF, KLARITROMYCIN),
        KLARITROMYCIN,
        "al-klaritromycin",
    ),
    (
        "Legemiddelpakning",
        PPD,
        fest_id_forms(identifiers.PAKNING, CERTICAN_PACKAGE),
        CERTICAN_PACKAGE,
        "al-certican-60",
    ),
    ("Legemiddeldose", MID, fest_id_forms(identifiers.DOSE, DOSE), None, "al-certican-tablet"),
    ("Virkestoff", SD, fest_id_forms(identifiers.VIRKESTOFF, EVEROLIMUS), EVEROLIMUS, "al-everolimus"),
    ("varenr", PPD, VARENR_FORMS, CERTICAN_PACKAGE, "al-certican-60"),
    ("GTIN", PPD, GTIN_FORMS, CERTICAN_PACKAGE, "al-certican-60"),
]


def _store(url: str, sources: set[str]) -> Any:
    engine = connect(url)
    if "fest" in sources:
        import_fest(engine, require(REAL_FEST))
    if "safest" in sources:
        import_safest(engine, ALIASES)
    return engine


@pytest.fixture(
    scope="module",
    params=[
        "fest",
        "safest",
        "fest+safest",
        pytest.param("fest+safest on postgres", marks=pytest.mark.postgres),
    ],
)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[set[str], TestClient]]:
    """(what it holds, a client of it): the real extract, the SAFEST delivery alone, or both."""
    sources = set(str(request.param).split(" ")[0].split("+"))
    if request.param.endswith("postgres"):
        with fresh_pg_database() as url:
            engine = _store(url, sources)
            with TestClient(create_app(engine)) as client:
                yield sources, client
            engine.dispose()
        return
    engine = _store(f"sqlite:///{tmp_path_factory.mktemp('ids') / 'store.db'}", sources)
    with TestClient(create_app(engine)) as client:
        yield sources, client
    engine.dispose()


def total(client: TestClient, value: str) -> int:
    r = client.get(f"/fhir/{PPD}", params={"identifier": value, "_total": "accurate", "_count": 0})
    assert r.status_code == 200, (value, r.text)
    count: int = r.json()["total"]
    return count


def found(client: TestClient, rtype: str, value: str) -> list[str]:
    r = client.get(f"/fhir/{rtype}", params={"identifier": value})
    assert r.status_code == 200, (value, r.text)
    return [e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"]


@pytest.mark.parametrize(
    ("kind", "rtype", "forms", "fest_made", "safest_made"), KINDS, ids=[k[0] for k in KINDS]
)
def test_a_search_in_every_accepted_form_finds_the_one_resource(
    store: tuple[set[str], TestClient],
    kind: str,
    rtype: str,
    forms: list[str],
    fest_made: str | None,
    safest_made: str,
) -> None:
    sources, client = store
    # linked, FEST's id wins (importers/national.py); SAFEST's alone where FEST has no such entry
    expected = fest_made if "fest" in sources and fest_made is not None else safest_made
    if "safest" not in sources and fest_made is None:
        expected = None
    assert len(forms) >= 6
    for form in forms:
        assert found(client, rtype, form) == ([expected] if expected else []), form


def test_the_resource_both_sources_describe_carries_each_identifier_once_in_its_served_form(
    store: tuple[set[str], TestClient],
) -> None:
    sources, client = store
    if sources != {"fest", "safest"}:
        pytest.skip("the merged resource is made from both sources")
    package = client.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}").json()
    get_fhir_model_class(PPD).model_validate(package)
    phpids = [i for i in package["identifier"] if i["system"] == identifiers.PHPID.served]
    assert [i["value"][:3] for i in phpids] == ["L1A", "L2A", "L3A", "L4A"]  # computed, last (docs/phpid.md)
    assert package["identifier"][: -len(phpids)] == [
        {"system": identifiers.PAKNING.served, "value": "ID_" + CERTICAN_PACKAGE},
        {"system": VARENR.served, "value": "014884"},
        {"system": GTIN.served, "value": "7046260148840"},
        {
            "system": "http://legemiddelverket.no/fhir/SAFEST/MedicinalProductPackaged",
            "value": "al-certican-60",
        },
    ]
    # SAFEST's packaging wins; its NTIN is served as FEST's GTIN; "someValue" is no GTIN: as sent
    assert package["packaging"]["identifier"] == [
        {"system": GTIN.served, "value": "7046260148840"},
        {"system": "https://farmalogg.no/produktkode", "value": "someValue"},
    ]
    substance = client.get(f"/fhir/{SD}/{EVEROLIMUS}").json()
    assert substance["identifier"] == [{"system": identifiers.VIRKESTOFF.served, "value": "ID_" + EVEROLIMUS}]


def test_safest_ids_and_a_value_kept_as_sent_are_found_as_sent(store: tuple[set[str], TestClient]) -> None:
    sources, client = store
    package = CERTICAN_PACKAGE if "fest" in sources else "al-certican-60"
    expected = [package] if "safest" in sources else []
    for form in (
        "http://legemiddelverket.no/fhir/SAFEST/MedicinalProductPackaged|al-certican-60",
        "http://LEGEMIDDELVERKET.no/fhir/SAFEST/MedicinalProductPackaged|al-certican-60",
        "al-certican-60",
        "https://farmalogg.no/produktkode|someValue",
    ):
        assert found(client, PPD, form) == expected, form
    assert found(client, PPD, f"{GTIN.served}|someValue") == []
    # a system alone: what is served in it, and what was kept as sent in the alias
    every_gtin = total(client, f"{GTIN.served}|")
    assert every_gtin == (105 if "fest" in sources else 1)  # 105 of the extract's packages have an Ean
    assert total(client, "https://farmalogg.no/produktkode|") == every_gtin
    assert total(client, "https://farmalogg.no/produktkode/NTIN|") == every_gtin


def test_the_generic_fest_system_finds_a_fest_id_of_any_catalogue(store: tuple[set[str], TestClient]) -> None:
    """An Ingredient carries its VirkestoffMedStyrke Id under our system; the generic one finds it."""
    sources, client = store
    with_strength = "85C16063-FEAE-401D-8631-67C2407E5730"
    expected = [with_strength, f"{CERTICAN_BRAND}-1"] if "fest" in sources else []
    assert found(client, ING, f"{GENERIC}|{with_strength}") == expected
    assert found(client, ING, f"{GENERIC}|id_{with_strength.lower()}") == expected
    assert found(client, ING, with_strength) == expected


@pytest.mark.parametrize(
    "value",
    [
        f"{GTIN.served}|7046260148841",  # wrong check digit
        "https://farmalogg.no/produktkode/NTIN|07046260148841",
        "07046260148841",
        f"{identifiers.PAKNING.served}|ID_CE0BBADB-DDC1-4713-AC09",  # not a GUID
        f"{identifiers.PAKNING.served}|ID_{CERTICAN_PACKAGE}X",
        f"{GENERIC}|not-a-guid",
        "ID_zzzz",
        f"{VARENR.served}|0148840",  # seven digits
    ],
)
def test_a_value_not_well_formed_finds_nothing_and_is_no_error(
    store: tuple[set[str], TestClient], value: str
) -> None:
    _, client = store
    assert found(client, PPD, value) == []


def test_the_pass_serves_every_identifier_and_keeps_each_once() -> None:
    resource: dict[str, Any] = {
        "resourceType": PPD,
        "id": "p",
        "identifier": [
            {
                "system": "http://dmp.no/fhir/NamingSystem/festLegemiddelPakning",
                "value": "ID_" + CERTICAN_PACKAGE,
            },
            {"system": GENERIC, "value": CERTICAN_PACKAGE.lower()},  # the same id, SAFEST's way
            {"system": GENERIC, "value": "TBA"},  # not a FEST id: as sent
        ],
        "packageFor": [{"identifier": {"system": GENERIC, "value": CERTICAN_BRAND}}],  # a logical reference
        "packaging": {
            "identifier": [{"system": "https://farmalogg.no/produktkode/NTIN", "value": "07046260148840"}],
            "packaging": [
                {
                    "identifier": [
                        {"system": "https://farmalogg.no/produktkode/GTIN", "value": "07612345678900"}
                    ]
                }
            ],
        },
        "contained": [{"resourceType": MID, "id": "d", "identifier": [{"system": GENERIC, "value": DOSE}]}],
        "extension": [
            {"url": "x", "valueIdentifier": {"system": "https://farmalogg.no/varenummer", "value": "14884"}}
        ],
    }
    assert served_identifiers(resource) is resource
    assert resource["identifier"] == [
        {"system": identifiers.PAKNING.served, "value": "ID_" + CERTICAN_PACKAGE},
        {"system": GENERIC, "value": "TBA"},
    ]
    # not the resource's own: the generic system names any FEST id there
    assert resource["packageFor"][0]["identifier"] == {
        "system": identifiers.FEST_ID.served,
        "value": "ID_" + CERTICAN_BRAND,
    }
    assert resource["packaging"]["identifier"] == [{"system": GTIN.served, "value": "7046260148840"}]
    assert resource["packaging"]["packaging"][0]["identifier"] == [
        {"system": GTIN.served, "value": "7612345678900"}
    ]
    assert resource["contained"][0]["identifier"] == [
        {"system": identifiers.DOSE.served, "value": "ID_" + DOSE}
    ]
    assert resource["extension"][0]["valueIdentifier"] == {"system": VARENR.served, "value": "014884"}
