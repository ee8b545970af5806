"""PhPIDs by hand: one substance in two strengths and two forms, a combination, a salt and its parent."""

from __future__ import annotations

from typing import Any

from grunndata.fhir.systems import EDQM, NS_PHPID, NS_VIRKESTOFF
from grunndata.terminology.phpid import (
    LEGEMIDDELFORM,
    Phpid,
    PhpidIndex,
    Substances,
    edqm_dose_form,
    phpids,
    strength_key,
    substance_identity,
    verified_dose_forms,
)

Json = dict[str, Any]
UCUM = "http://unitsofmeasure.org"
SALT_TYPE = {
    "coding": [{"system": "https://grunndata.no/fhir/CodeSystem/fest-reference", "code": "RefVirkestoff"}]
}


def substance(sid: str, *salts: str, unii: str | None = None) -> Json:
    identifiers = [{"system": NS_VIRKESTOFF, "value": f"ID_{sid}"}]
    if unii:
        identifiers.append({"system": "http://fdasis.nlm.nih.gov", "value": unii})
    return {
        "resourceType": "SubstanceDefinition",
        "id": sid,
        "identifier": identifiers,
        "relationship": [
            {"substanceDefinitionReference": {"reference": f"SubstanceDefinition/{s}"}, "type": SALT_TYPE}
            for s in salts
        ],
    }


def ingredient(sid: str, value: float, unit: str = "mg", per: tuple[float, str] = (1, "1")) -> Json:
    return {
        "resourceType": "Ingredient",
        "role": {"coding": [{"system": "http://hl7.org/fhir/ingredient-role", "code": "100000072072"}]},
        "substance": {
            "code": {"reference": {"reference": f"SubstanceDefinition/{sid}"}},
            "strength": [
                {
                    "presentationRatio": {
                        "numerator": {"value": value, "system": UCUM, "code": unit},
                        "denominator": {"value": per[0], "system": UCUM, "code": per[1]},
                    }
                }
            ],
        },
    }


def form(fest_code: str) -> Json:
    return {"coding": [{"system": LEGEMIDDELFORM, "code": fest_code}]}


TABLET_DISPERSIBLE, TABLET_PROLONGED, TABLET = form("5"), form("25"), form("53")
A, B, MOIETY, SALT = "AAAA", "BBBB", "MMMM", "SSSS"


def index() -> Substances:
    found = Substances()
    for sd in (substance(A), substance(B, unii="362O9ITL9D"), substance(MOIETY, SALT), substance(SALT)):
        found.add(sd)
    return found


def values(found: list[Phpid]) -> dict[str, str]:
    return {f"L{p.level}{p.stratum}": p.value for p in found}


def canonical(found: list[Phpid]) -> dict[str, str]:
    return {f"L{p.level}{p.stratum}": p.canonical for p in found}


def test_the_dose_forms_are_edqm_through_verified_equivalents_only() -> None:
    pairs = verified_dose_forms()
    assert pairs["5"] == "10121000" and pairs["25"] == "10226000"
    assert "53" not in pairs  # Tablett is broader than any one EDQM form
    assert edqm_dose_form(TABLET_PROLONGED) == "10226000"
    assert edqm_dose_form(TABLET) is None
    # a restated EDQM coding beside a FEST code without an equivalent does not count
    assert edqm_dose_form({"coding": [*TABLET["coding"], {"system": EDQM, "code": "10219000"}]}) is None
    assert edqm_dose_form({"coding": [{"system": EDQM, "code": "10219000"}]}) == "10219000"


def test_strengths_are_normalised_with_ucum() -> None:
    assert strength_key(ingredient(A, 0.1, "g")["substance"]["strength"][0]) == "100 mg/1 1"
    assert strength_key(ingredient(A, 100, "ug")["substance"]["strength"][0]) == "0.1 mg/1 1"
    assert strength_key(ingredient(A, 120, "mg", (24, "mL"))["substance"]["strength"][0]) == "5 mg/1 mL"
    assert strength_key({"presentationQuantity": {"value": 720, "unit": "ELISA E"}}) is None
    # SAFEST's per-tablet denominator: a UCUM annotation is the unit 1
    assert strength_key(ingredient(A, 500, "mg", (1, "{tablet}"))["substance"]["strength"][0]) == "500 mg/1 1"
    assert strength_key(ingredient(A, 500, "mg{base}")["substance"]["strength"][0]) == "500 mg/1 1"
    operator = "https://grunndata.no/fhir/StructureDefinition/fest-Styrkeoperator"
    at_most = ingredient(A, 5)["substance"]["strength"][0]
    at_most["extension"] = [{"url": operator, "valueCoding": {"code": "M"}}]
    assert strength_key(at_most) is None  # not one amount
    at_most["extension"][0]["valueCoding"]["code"] = "L"
    assert strength_key(at_most) == "5 mg/1 1"


def test_one_substance_in_two_strengths_and_two_forms() -> None:
    subs = index()
    mg10_disp = phpids([ingredient(A, 10)], TABLET_DISPERSIBLE, subs)
    mg20_disp = phpids([ingredient(A, 20)], TABLET_DISPERSIBLE, subs)
    mg10_prol = phpids([ingredient(A, 10000, "ug")], TABLET_PROLONGED, subs)
    mg20_plain = phpids([ingredient(A, 0.02, "g")], TABLET, subs)
    assert canonical(mg10_disp) == {
        "L1A": "PhPID-v1|A|L1|fest:ID_AAAA",
        "L2A": "PhPID-v1|A|L2|fest:ID_AAAA=10 mg/1 1",
        "L3A": "PhPID-v1|A|L3|fest:ID_AAAA|edqm:10121000",
        "L4A": "PhPID-v1|A|L4|fest:ID_AAAA=10 mg/1 1|edqm:10121000",
    }
    assert values(mg10_disp) == {
        "L1A": "L1A-D5371E2E0E513F759A21AB67",
        "L2A": "L2A-5E2AC2F1E7E95EED3FC72286",
        "L3A": "L3A-88F4E256FD02DC7686024482",
        "L4A": "L4A-E75D7F6CB8683C078143473F",
    }
    one = values(mg10_disp)["L1A"]
    assert {values(f)["L1A"] for f in (mg20_disp, mg10_prol, mg20_plain)} == {one}
    assert values(mg10_prol)["L2A"] == values(mg10_disp)["L2A"]  # 10,000 ug is 10 mg
    assert values(mg20_plain)["L2A"] == values(mg20_disp)["L2A"] != values(mg10_disp)["L2A"]
    assert values(mg20_disp)["L3A"] == values(mg10_disp)["L3A"] != values(mg10_prol)["L3A"]
    assert sorted(values(mg20_plain)) == ["L1A", "L2A"]  # FEST 53 Tablett has no verified EDQM form


def test_a_combination_product_names_every_substance_in_one_order() -> None:
    subs = index()
    ab = phpids([ingredient(A, 500), ingredient(B, 125)], TABLET_DISPERSIBLE, subs)
    ba = phpids([ingredient(B, 125), ingredient(A, 500)], TABLET_DISPERSIBLE, subs)
    assert values(ab) == values(ba)
    assert (
        canonical(ab)["L4A"]
        == "PhPID-v1|A|L4|fest:ID_AAAA=500 mg/1 1+unii:362O9ITL9D=125 mg/1 1|edqm:10121000"
    )
    assert values(ab)["L1A"] == "L1A-24A79B00A657CCF5E05FACA4"
    assert values(ab)["L1A"] != values(phpids([ingredient(A, 500)], TABLET_DISPERSIBLE, subs))["L1A"]


def test_a_salt_counts_as_its_parent_in_the_active_stratum_and_as_itself_in_the_specified() -> None:
    subs = index()
    salt = phpids([ingredient(SALT, 88.5)], TABLET_PROLONGED, subs)
    moiety = phpids([ingredient(MOIETY, 60)], TABLET_PROLONGED, subs)
    assert canonical(salt) == {
        "L1A": "PhPID-v1|A|L1|fest:ID_MMMM",
        "L3A": "PhPID-v1|A|L3|fest:ID_MMMM|edqm:10226000",
        "L1S": "PhPID-v1|S|L1|fest:ID_SSSS",
        "L2S": "PhPID-v1|S|L2|fest:ID_SSSS=88.5 mg/1 1",
        "L3S": "PhPID-v1|S|L3|fest:ID_SSSS|edqm:10226000",
        "L4S": "PhPID-v1|S|L4|fest:ID_SSSS=88.5 mg/1 1|edqm:10226000",
    }
    # the active stratum of the salt's product is the parent's: found by the parent's PhPID
    assert values(salt)["L1A"] == values(moiety)["L1A"] == "L1A-78428EDE06DA2A83AAD26F3F"
    assert values(salt)["L3A"] == values(moiety)["L3A"]
    # the parent named by an ingredient names no salt: no specified-substance stratum
    assert sorted(values(moiety)) == ["L1A", "L2A", "L3A", "L4A"]


def test_the_best_identifier_names_the_substance() -> None:
    assert substance_identity(substance(A)) == "fest:ID_AAAA"
    assert substance_identity(substance(B, unii="362O9ITL9D")) == "unii:362O9ITL9D"
    sms = substance(B, unii="362O9ITL9D")
    sms["identifier"].append(
        {"system": "https://spor.ema.europa.eu/v2/SubstanceDefinition", "value": "100000085259"}
    )
    assert substance_identity(sms) == "sms:100000085259"


def test_a_product_with_an_unknown_substance_has_no_phpid_and_packages_wait_for_their_product() -> None:
    subs = index()
    nameless = {"resourceType": "Ingredient", "substance": {"code": {"concept": {"text": "x"}}}}
    assert phpids([nameless, ingredient(A, 1)], TABLET_PROLONGED, subs) == []
    assert phpids([], TABLET_PROLONGED, subs) == []
    idx = PhpidIndex()
    package: Json = {
        "resourceType": "PackagedProductDefinition",
        "id": "P",
        "packageFor": [{"reference": "MedicinalProductDefinition/X"}],
    }
    idx.see([package])
    assert "identifier" not in package
    product = {
        "resourceType": "MedicinalProductDefinition",
        "id": "X",
        "combinedPharmaceuticalDoseForm": TABLET_PROLONGED,
    }
    item = ingredient(A, 10) | {"for": [{"reference": "MedicinalProductDefinition/X"}]}
    idx.see([substance(A), product, item])
    assert "identifier" not in product  # a brand: its PhPIDs are on its packages and administrable form
    assert idx.package(package) is True
    assert [i["value"][:3] for i in package["identifier"]] == ["L1A", "L2A", "L3A", "L4A"]
    assert {i["system"] for i in package["identifier"]} == {NS_PHPID}
    idx.package(package)
    assert len(package["identifier"]) == 4  # added once


def test_the_system_is_named_in_the_capability_statement_and_experimental_in_its_naming_system() -> None:
    import orjson

    from grunndata.fhirpackage.capability import capability_statement
    from grunndata.fhirpackage.content import naming_systems

    statement = orjson.loads(capability_statement("http://example.org/fhir"))
    documented = {
        r["type"] for r in statement["rest"][0]["resource"] if NS_PHPID in (r.get("documentation") or "")
    }
    assert documented == {
        "MedicinalProductDefinition",
        "AdministrableProductDefinition",
        "PackagedProductDefinition",
    }
    (phpid,) = [n for n in naming_systems() if n["url"] == NS_PHPID]
    assert phpid["experimental"] is True


def test_a_phpid_found_twice_is_added_once() -> None:
    """A package holding one item at two levels finds that item's PhPIDs twice."""
    from grunndata.terminology.phpid import add_identifiers

    package: Json = {"identifier": [{"system": "https://www.gs1.org/gtin", "value": "7046260148840"}]}
    one, two = Phpid(1, "A", "paracetamol"), Phpid(2, "A", "paracetamol|500 mg")
    add_identifiers(package, [one, two, one, two])
    assert [i["value"] for i in package["identifier"]] == ["7046260148840", one.value, two.value]
