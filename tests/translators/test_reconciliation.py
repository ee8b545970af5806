"""The reconciliation, element by element: a real difference is found, an apparent one is not.

One case per row of COMPARED: what FEST made, a SAFEST value that only looks different (other
system, 1.0 for 1, GTIN-14 for GTIN-13, ...) and one that differs. The planted delivery
(tests/importers/test_safest.py) does the same through a whole import, where the 2017 extract allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from grunndata.importers.national import code_equivalents
from grunndata.translators.reconciliation import COMPARED, Disagreement, compare

Json = dict[str, Any]
MPD, PPD, MID = "MedicinalProductDefinition", "PackagedProductDefinition", "ManufacturedItemDefinition"
ING, SD = "Ingredient", "SubstanceDefinition"
UCUM, EDQM = "http://unitsofmeasure.org", "http://standardterms.edqm.eu"
ATC, R7421 = "http://www.whocc.no/atc", "urn:oid:2.16.578.1.12.4.1.1.7421"
R7448, R7449, R7452 = (f"urn:oid:2.16.578.1.12.4.1.1.{n}" for n in (7448, 7449, 7452))
GTIN, NTIN = "https://www.gs1.org/gtin", "https://farmalogg.no/produktkode/NTIN"
PAKNING = "http://dmp.no/fhir/NamingSystem/festLegemiddelPakning"
DOSE = "http://dmp.no/fhir/NamingSystem/festLegemiddelDose"
EQUIVALENTS = code_equivalents()


def concept(system: str, code: str, display: str | None = None) -> Json:
    return {"coding": [{"system": system, "code": code, **({"display": display} if display else {})}]}


def quantity(value: float, unit: str, system: str | None = None, code: str | None = None) -> Json:
    return {"value": value, "unit": unit, **({"system": system, "code": code} if system and code else {})}


def strength(numerator: Json, denominator: Json | None = None) -> Json:
    if denominator is None:
        return {"substance": {"strength": [{"presentationQuantity": numerator}]}}
    return {
        "substance": {
            "strength": [{"presentationRatio": {"numerator": numerator, "denominator": denominator}}]
        }
    }


def marketing(status: Json, start: str | None = None) -> Json:
    return {"marketingStatus": [{"status": status, **({"dateRange": {"start": start}} if start else {})}]}


@dataclass(frozen=True)
class Case:
    resource: str
    element: str
    fest: Json
    agrees: Json  # SAFEST: other form, same meaning
    differs: Json  # SAFEST: another value


CASES = (
    Case(
        MPD,
        "name",
        {"name": [{"productName": "Certican Disperg tab 0,1 mg"}]},
        {"name": [{"productName": "CERTICAN  Disperg tab 0,1 mg"}]},
        {"name": [{"productName": "Certican 0,1 mg dispergerbar tablett"}]},
    ),
    Case(
        MPD,
        "atc",
        {"classification": [concept(ATC, "L04AA18", "Everolimus")]},
        {"classification": [concept(ATC, "L04AA18", "everolimus")]},
        {"classification": [concept(ATC, "L04AA10")]},
    ),
    Case(
        MPD,
        "dose-form",
        {"combinedPharmaceuticalDoseForm": concept(R7448, "5", "Dispergerbar tablett")},
        {"combinedPharmaceuticalDoseForm": concept(EDQM, "10121000")},
        {"combinedPharmaceuticalDoseForm": concept(EDQM, "10219000")},
    ),
    Case(
        MPD,
        "legal-status",
        {"legalStatusOfSupply": concept(R7421, "C", "Reseptgruppe C")},
        {"legalStatusOfSupply": concept(R7421, "C")},
        {"legalStatusOfSupply": concept(R7421, "A")},
    ),
    Case(
        MPD,
        "fest-id",
        {
            "identifier": [
                {"system": "http://dmp.no/fhir/NamingSystem/festLegemiddelMerkevare", "value": "ID_AB-1"}
            ]
        },
        {"identifier": [{"system": "http://ehelse.no/fhir/CodeSystem/FEST", "value": "ab-1"}]},
        {
            "identifier": [
                {"system": "http://legemiddelverket.no/FEST/LegemiddelMerkevareID", "value": "ID_AB-2"}
            ]
        },
    ),
    Case(
        PPD,
        "name",
        {"name": "Paracet tab 500 mg"},
        {"name": "paracet tab  500 mg"},
        {"name": "Paracet 500 mg"},
    ),
    Case(
        PPD,
        "gtin",
        {"identifier": [{"system": GTIN, "value": "7046260148840"}]},
        {
            "packaging": {
                "identifier": [
                    {"system": NTIN, "value": "07046260148840"},
                    {"system": "https://farmalogg.no/produktkode/GTIN", "value": "07612345678906"},
                ]
            }
        },
        {"packaging": {"identifier": [{"system": NTIN, "value": "07046260148857"}]}},
    ),
    Case(
        PPD,
        "varenr",
        {"identifier": [{"system": "http://dmp.no/fhir/NamingSystem/fest-varenummer", "value": "014884"}]},
        {"identifier": [{"system": "https://farmalogg.no/varenummer", "value": "14884"}]},
        {"identifier": [{"system": "https://farmalogg.no/varenummer", "value": "014885"}]},
    ),
    Case(
        PPD,
        "fest-id",
        {"identifier": [{"system": PAKNING, "value": "ID_CE0B"}]},
        {
            "identifier": [
                {"system": "http://legemiddelverket.no/FEST/LegemiddelPakningID", "value": "ID_CE0B"}
            ]
        },
        {"identifier": [{"system": PAKNING, "value": "ID_0000"}]},
    ),
    Case(
        PPD,
        "pack-size",
        {"containedItemQuantity": [quantity(60, "stykk", R7452, "stk")]},
        {"containedItemQuantity": [quantity(60.0, "tablet", UCUM, "{tablet}")]},
        {"containedItemQuantity": [quantity(60, "mL", UCUM, "mL")]},
    ),
    Case(
        PPD,
        "package-type",
        {"packaging": {"type": concept(R7449, "169", "Blisterpakning")}},
        {"packaging": {"type": concept(EDQM, "30007000", "Blister")}},
        {"packaging": {"type": concept(EDQM, "30069000", "Vial")}},
    ),
    Case(
        PPD,
        "atc",
        {
            "extension": [
                {
                    "url": "https://grunndata.no/fhir/StructureDefinition/fest-Atc",
                    "valueCoding": {"system": ATC, "code": "N01AB08"},
                }
            ]
        },
        {"packageFor": [{"reference": f"{MPD}/same"}]},
        {"packageFor": [{"reference": f"{MPD}/other"}]},
    ),
    Case(
        PPD,
        "legal-status",
        {"legalStatusOfSupply": [{"code": concept(R7421, "C")}]},
        {"legalStatusOfSupply": [{"code": concept(R7421, "C", "Reseptgruppe C")}]},
        {"legalStatusOfSupply": [{"code": concept(R7421, "F")}]},
    ),
    Case(
        PPD,
        "marketing-status",
        marketing(
            concept("https://grunndata.no/fhir/CodeSystem/fest-marketing-status", "markedsfort", "Marketed")
        ),
        marketing(concept("https://spor.ema.europa.eu/v1/lists/100000072052", "100000072083", "Marketed")),
        marketing(
            concept("https://spor.ema.europa.eu/v1/lists/100000072052", "100000072081", "Not marketed")
        ),
    ),
    Case(
        PPD,
        "marketing-dates",
        marketing(concept("s", "x"), "2004-07-15"),
        marketing(concept("s", "x"), "2004-07-15T00:00:00+02:00"),
        marketing(concept("s", "x"), "2004-08-01"),
    ),
    Case(
        MID, "name", {"name": "Paracet tab 500 mg"}, {"name": "PARACET TAB 500 MG"}, {"name": "Paracet 1 g"}
    ),
    Case(
        MID,
        "dose-form",
        {"manufacturedDoseForm": concept(R7448, "53", "Tablett")},
        {"manufacturedDoseForm": concept(EDQM, "10221000", "Film-coated tablet")},
        {"manufacturedDoseForm": concept(EDQM, "10210000", "Capsule, hard")},
    ),
    Case(
        MID,
        "fest-id",
        {"identifier": [{"system": DOSE, "value": "ID_D1"}]},
        {
            "identifier": [
                {"system": "http://ehelse.no/fhir/CodeSystem/FEST/KatLegemiddeldose", "value": "D1"}
            ]
        },
        {"identifier": [{"system": DOSE, "value": "ID_D2"}]},
    ),
    Case(
        SD,
        "name",
        {"name": [{"name": "Sevofluran", "preferred": True}, {"name": "Sevoflurane"}]},
        {"name": [{"name": "Sevoflurane", "preferred": True}]},
        {"name": [{"name": "Desflurane", "preferred": True}]},
    ),
    Case(
        SD,
        "fest-id",
        {
            "identifier": [
                {"system": "https://grunndata.no/fhir/NamingSystem/festVirkestoff", "value": "ID_V1"}
            ]
        },
        {"identifier": [{"system": "http://ehelse.no/fhir/CodeSystem/FEST", "value": "ID_V1"}]},
        {
            "identifier": [
                {"system": "https://grunndata.no/fhir/NamingSystem/festVirkestoff", "value": "ID_V2"}
            ]
        },
    ),
    Case(
        ING,
        "substance",
        {"substance": {"code": {"reference": {"reference": f"{SD}/V1"}}}},
        {
            "substance": {
                "code": {"reference": {"reference": f"{SD}/V1"}, "concept": concept("sms", "100000090")}
            }
        },
        {"substance": {"code": {"reference": {"reference": f"{SD}/V2"}}}},
    ),
    Case(
        ING,
        "strength",
        strength(quantity(0.1, "mg")),
        strength(quantity(0.10, "mg", UCUM, "mg"), quantity(1, "tablet", UCUM, "{tablet}")),
        strength(quantity(0.1, "g", UCUM, "g")),
    ),
    Case(
        ING,
        "strength-denominator",
        strength(quantity(5, "mg"), quantity(1, "ml")),
        strength(quantity(5, "mg", UCUM, "mg"), quantity(1.0, "mL", UCUM, "mL")),
        strength(quantity(5, "mg", UCUM, "mg"), quantity(5, "mL", UCUM, "mL")),
    ),
)
SAFEST_PRODUCTS = {  # what a package's ATC is read from on the SAFEST side: its product
    f"{MPD}/same": {"resourceType": MPD, "classification": [concept(ATC, "N01AB08")]},
    f"{MPD}/other": {"resourceType": MPD, "classification": [concept(ATC, "N01AB99")]},
}


def found(case: Case, safest: Json) -> list[Disagreement]:
    fest = {"resourceType": case.resource, "id": "x", **case.fest}
    return compare(fest, {"resourceType": case.resource, **safest}, "X/x", EQUIVALENTS, SAFEST_PRODUCTS.get)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.resource}.{c.element}")
def test_a_real_difference_is_found_and_an_apparent_one_is_not(case: Case) -> None:
    assert found(case, case.agrees) == []
    assert [d.element for d in found(case, case.differs)] == [case.element]


def test_every_compared_element_has_a_case() -> None:
    assert sorted((c.resource, c.element) for c in CASES) == sorted((r.resource, r.element) for r in COMPARED)


def test_what_the_reconciliation_shows() -> None:
    by_element = {c.element + "@" + c.resource: c for c in CASES}
    assert [
        d.as_dict() for d in found(by_element[f"pack-size@{PPD}"], by_element[f"pack-size@{PPD}"].differs)
    ] == [{"resource": "X/x", "element": "pack-size", "fest": "60 (stykk)", "safest": "60 (mL)"}]
    assert [
        (d.fest, d.safest) for d in found(by_element[f"gtin@{PPD}"], by_element[f"gtin@{PPD}"].differs)
    ] == [("07046260148840", "07046260148857")]


def test_a_value_safest_replaces_that_no_row_compares_is_reported_too() -> None:
    fest = {
        "resourceType": MPD,
        "id": "x",
        "status": concept("http://hl7.org/fhir/publication-status", "active"),
    }
    retired = {"resourceType": MPD, "status": concept("http://hl7.org/fhir/publication-status", "retired")}
    assert [d.as_dict() for d in compare(fest, retired, "X/x", EQUIVALENTS)] == [
        {
            "resource": "X/x",
            "element": "status",
            "fest": '{"coding":[{"system":"http://hl7.org/fhir/publication-status","code":"active"}]}',
            "safest": '{"coding":[{"system":"http://hl7.org/fhir/publication-status","code":"retired"}]}',
        }
    ]
    # more detail, the same number, an element only FEST fills: nothing FEST said is replaced
    fest["route"] = [concept("urn:oid:2.16.578.1.12.4.1.1.7477", "53")]
    fest["packaging"] = {"quantity": 1, "shelfLifeStorage": [{"type": concept("x", "y")}]}
    richer = {
        "resourceType": MPD,
        "status": concept("http://hl7.org/fhir/publication-status", "active", "Active"),
        "route": [concept("urn:oid:2.16.578.1.12.4.1.1.7477", "53"), concept(EDQM, "20053000")],
        "packaging": {"quantity": 1.0},
    }
    assert compare(fest, richer, "X/x", EQUIVALENTS) == []


def test_only_norwegian_marketing_is_compared_and_a_flag_is_not_a_number() -> None:
    spor = "https://spor.ema.europa.eu/v1/lists/100000072052"
    fest = {
        "resourceType": PPD,
        "copackagedIndicator": True,
        **marketing(
            concept("https://grunndata.no/fhir/CodeSystem/fest-marketing-status", "markedsfort", "Marketed")
        ),
    }
    fest["marketingStatus"][0]["country"] = concept("urn:iso:std:iso:3166", "NO")
    safest = {
        "resourceType": PPD,
        "copackagedIndicator": False,
        "marketingStatus": [
            {
                "country": concept("urn:iso:std:iso:3166", "SE"),
                "status": concept(spor, "100000072081", "Not marketed"),
            },
            {
                "country": concept("urn:iso:std:iso:3166", "NO"),
                "status": concept(spor, "100000072083", "Marketed"),
            },
        ],
    }
    assert [(d.element, d.fest, d.safest) for d in compare(fest, safest, "X/x", EQUIVALENTS)] == [
        ("copackagedIndicator", "true", "false")
    ]
