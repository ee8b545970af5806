"""The R4 view: every national resource of the real FEST extract served in SAFEST's R4 shape, and
read back by our SAFEST importer's conversion, gives the R5 resource it came from, exactly.

R4 made by reading the R4 -> R5 tables backwards (translators/safest/to_r4.py); what R4 has no place
for travels as ``r5-`` extensions, so the comparison is whole resources, not chosen fields.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from grunndata.fhir import NS_LMR, NS_VARENR
from grunndata.fhir.r4_elements import ELEMENTS as R4_ELEMENTS
from grunndata.importers.identifiers import served_identifiers
from grunndata.importers.resources import read_resources
from grunndata.translators.safest import CS_R4_CHARACTERISTIC, to_r5
from grunndata.translators.safest.rules import R5_KEPT_BASE
from grunndata.translators.safest.to_r4 import PROFILES, R4_OF_R5, coverage, to_r4
from tests.conftest import SHARED, require

Json = dict[str, Any]


@pytest.fixture(scope="module")
def national(real_resources: list[Json]) -> list[Json]:
    return [r for r in real_resources if r["resourceType"] in R4_OF_R5]


@pytest.fixture(scope="module")
def served_r4(national: list[Json]) -> list[Json]:
    made = [to_r4(r) for r in national]
    assert all(r is not None for r in made)
    return [r for r in made if r is not None]


def _without_profile(resource: Json) -> Json:
    """The source-profile marker the import keeps (meta.profile, SAFEST's) left out."""
    out = copy.deepcopy(resource)
    meta = out.get("meta", {})
    meta["profile"] = [p for p in meta.get("profile", []) if p not in PROFILES.values()]
    if not meta["profile"]:
        del meta["profile"]
    if not meta:
        out.pop("meta", None)
    return out


def test_every_national_resource_of_the_real_extract_comes_back_exactly(
    national: list[Json], served_r4: list[Json]
) -> None:
    conversion = to_r5(served_r4)
    assert conversion.errors == []
    back = {
        (r["resourceType"], r["id"]): _without_profile(served_identifiers(r)) for r in conversion.resources
    }
    assert set(back) == {(r["resourceType"], r["id"]) for r in national}
    differing = [
        f"{r['resourceType']}/{r['id']}" for r in national if back[(r["resourceType"], r["id"])] != r
    ]
    assert differing == []
    assert Counter(r["resourceType"] for r in served_r4) == {
        "MedicinalProductIngredient": 139,
        "MedicinalProductPackaged": 107,
        "MedicinalProduct": 78,
        "MedicinalProductPharmaceutical": 75,
        "MedicinalProductManufactured": 75,
        "SubstanceSpecification": 71,
    }


R4_OF_THE_REAL_EXTRACT = "1fea339c9488ab4caf70efbf88546c891b6aec677deee8dc743fcfbb73d81d64"
"""SHA-256 of the R4 JSON of every national resource of the real extract, one per line, in import
order: computed by main's to_r4 before its mechanics were made faster (rules found once per table,
a JSON copy for deepcopy, one copy per value; main at 3e058d9, with the profile conformance fixes),
so a change of speed cannot change what is served. A deliberate change of the R4 output updates it."""


def test_the_r4_of_the_real_extract_is_byte_for_byte_what_it_was(national: list[Json]) -> None:
    made = b"\n".join(orjson.dumps(to_r4(r)) for r in national)
    assert len(national) == 545
    assert hashlib.sha256(made).hexdigest() == R4_OF_THE_REAL_EXTRACT


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "reference" and isinstance(child, str):
                yield child
            else:
                yield from _references(child)
    elif isinstance(value, list):
        for child in value:
            yield from _references(child)


def test_every_reference_the_r4_gives_names_an_r4_type(national: list[Json]) -> None:
    """A reference to a SAFEST type names its R4 type wherever it is, FEST's own extensions
    included (fest-RefPakning named PackagedProductDefinition/..., which /fhir-r4 does not serve)."""
    heads = Counter(ref.split("/")[0] for r in national for ref in _references(to_r4(r)))
    assert not set(heads) & set(R4_OF_R5), heads
    assert heads["MedicinalProductPackaged"] == 5 and heads["MedicinalProduct"] == 107


def test_to_r4_leaves_its_r5_input_as_it_was(national: list[Json]) -> None:
    """The rules' values are copied, never shared with or changed in the R5 resource given."""
    for resource in national:
        before = orjson.dumps(resource)
        made = to_r4(resource)
        assert orjson.dumps(resource) == before
        _empty(made)  # every dict and list of the output emptied: none of them is the input's
        assert orjson.dumps(resource) == before


def _empty(value: Any) -> None:
    children = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else []
    for child in list(children):
        _empty(child)
    if isinstance(value, dict | list):
        value.clear()


def test_r5_only_types_are_not_served_as_r4(real_resources: list[Json]) -> None:
    others = {r["resourceType"] for r in real_resources if to_r4(r) is None}
    assert others == {"RegulatedAuthorization", "Basic", "ClinicalUseDefinition"}


def test_a_package_in_safest_shape(served_r4: list[Json]) -> None:
    """Certican 0,1 mg, varenr 014884: same id, SAFEST profile, subject, itemnumber, retailPack."""
    package = next(r for r in served_r4 if r["id"] == "CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A")
    assert package["resourceType"] == "MedicinalProductPackaged"
    assert package["meta"]["profile"] == [
        "http://legemiddelverket.no/fhir/StructureDefinition/safest-MedicinalProductPackaged"
    ]
    assert package["subject"] == [{"reference": "MedicinalProduct/F2CEF840-A295-4A7A-9CCD-5873D846C3BD"}]
    assert {"system": NS_VARENR, "value": "014884"} in package["identifier"]
    safest = [e for e in package["extension"] if e["url"].startswith("http://legemiddelverket.no/")]
    assert safest == [
        {
            "url": "http://legemiddelverket.no/fhir/StructureDefinition/safest-itemnumber",
            "valueString": "014884",
        }
    ]
    (item,) = package["packageItem"]
    assert item["type"]["coding"][0]["code"] == "169"
    flags = [e for e in item["extension"] if e["url"].startswith("http://legemiddelverket.no/")]
    assert flags == [
        {
            "url": "http://legemiddelverket.no/fhir/StructureDefinition/safest-retailPack",
            "valueBoolean": True,
        },
        {
            "url": "http://legemiddelverket.no/fhir/StructureDefinition/safest-singleUnit",
            "valueBoolean": False,
        },
        {
            "url": "http://legemiddelverket.no/fhir/StructureDefinition/containedItem",
            "extension": [
                {
                    "url": "item",
                    "valueReference": {
                        "reference": "MedicinalProductManufactured/F2CEF840-A295-4A7A-9CCD-5873D846C3BD"
                    },
                },
                {"url": "quantity", "valueInteger": 60},
            ],
        },
    ]
    assert "manufacturedItem" not in item  # NOMA: max 0, the containedItem extension says it


def test_a_product_says_its_dose_form_in_the_noma_extension(served_r4: list[Json]) -> None:
    product = next(
        r
        for r in served_r4
        if r["resourceType"] == "MedicinalProduct" and r["id"] == "F2CEF840-A295-4A7A-9CCD-5873D846C3BD"
    )
    assert "combinedPharmaceuticalDoseForm" not in product
    (form,) = [
        e for e in product["extension"] if e["url"].endswith("safest-authorizedPharmaceuticalDoseForm")
    ]
    assert [c["code"] for c in form["valueCodeableConcept"]["coding"]] == ["5", "10121000"]
    assert product["name"][0]["namePart"][0]["type"] == {
        "system": "http://hl7.org/fhir/medicinal-product-name-part-type",
        "code": "InventedNamePart",
        "display": "Invented name part",
    }
    carried = sorted(
        e["url"].removeprefix(R5_KEPT_BASE) for e in product["extension"] if e["url"].startswith(R5_KEPT_BASE)
    )
    assert carried == ["MedicinalProductDefinition.comprisedOf", "MedicinalProductDefinition.status"]


def _r4_problems(value: Any, owner: str, path: str, found: list[str]) -> None:
    """Every element named as R4 defines it, a list exactly where R4 repeats (FHIR.js's R4 definitions)."""
    for name, child in value.items():
        if name in ("resourceType",) or name.startswith("_"):
            continue
        definition = R4_ELEMENTS.get(f"{owner}.{name}")
        if definition is None:
            found.append(f"{path}.{name} is not an R4 element")
            continue
        kind, repeats = definition
        if repeats != isinstance(child, list):
            found.append(f"{path}.{name} repeats: {repeats}, given {type(child).__name__}")
        for item in child if isinstance(child, list) else [child]:
            if isinstance(item, dict) and kind not in ("Extension", "Resource") and kind[:1].isupper():
                _r4_problems(item, kind, f"{path}.{name}", found)


def test_every_r4_resource_has_only_r4_elements(served_r4: list[Json]) -> None:
    found: list[str] = []
    for resource in served_r4:
        _r4_problems(resource, resource["resourceType"], resource["resourceType"], found)
    assert found == []


def test_the_fest_ids_in_safest_extensions_are_in_the_system_the_profile_fixes(served_r4: list[Json]) -> None:
    items = [r for r in served_r4 if r["resourceType"] == "MedicinalProductManufactured"]
    systems = Counter(
        e["valueIdentifier"]["system"]
        for r in items
        for e in r.get("extension", [])
        if e["url"].endswith("safest-legemiddelMerkevareId")
    )
    assert systems == {"http://ehelse.no/fhir/CodeSystem/FEST/KatLegemiddelMerkevare": 75}


def test_an_r5_extension_that_is_not_json_is_kept_with_a_warning(served_r4: list[Json]) -> None:
    resource = copy.deepcopy(
        next(r for r in served_r4 if r["resourceType"] == "MedicinalProductManufactured")
    )
    resource["extension"] = [
        {"url": R5_KEPT_BASE + "ManufacturedItemDefinition.status", "valueString": "{not json"}
    ]
    conversion = to_r5([resource])
    (made,) = conversion.resources
    assert made["status"] == "active"  # derived, as for any SAFEST item
    assert made["extension"] == resource["extension"]
    assert [w.message for w in conversion.warnings] == [
        f"MedicinalProductManufactured.extension ({R5_KEPT_BASE}ManufacturedItemDefinition.status) holds no JSON; kept as it is"
    ]


def test_the_coverage_names_every_table_rule() -> None:
    rows = list(coverage())
    by_r5 = {row.r5: row.how for row in rows}
    assert by_r5["PackagedProductDefinition.packageFor"] == "element MedicinalProductPackaged.subject"
    assert (
        by_r5["MedicinalProductDefinition.classification"] == "element MedicinalProduct.productClassification"
    )
    assert (
        by_r5["ManufacturedItemDefinition.identifier"]
        == "extension http://legemiddelverket.no/fhir/StructureDefinition/safest-lmrNumber"
    )


def test_an_ingredient_names_its_substance_by_safests_substance_reference(served_r4: list[Json]) -> None:
    ingredient = next(r for r in served_r4 if r["id"] == "F2CEF840-A295-4A7A-9CCD-5873D846C3BD-1")
    assert ingredient["resourceType"] == "MedicinalProductIngredient"
    assert ingredient["substance"]["code"] == {
        "extension": [
            {
                "url": "http://legemiddelverket.no/fhir/StructureDefinition/safest-substanceReference",
                "valueReference": {
                    "reference": "SubstanceSpecification/82BF10B1-2FF0-4F26-8392-1C74748EC9A2"
                },
            }
        ]
    }
    assert ingredient["substance"]["strength"][0]["presentation"]["numerator"]["value"] == 0.1


def _r4_model_problems(resource: Json) -> str | None:
    """What fhirclient's R4 model class (types and required elements of R4 4.0.1) says of it."""
    from fhirclient.models import fhirabstractbase
    from fhirclient.models.fhirelementfactory import FHIRElementFactory

    try:
        FHIRElementFactory.instantiate(resource["resourceType"], resource)
    except fhirabstractbase.FHIRValidationError as error:
        return re.sub(r" object at 0x[0-9a-f]+", "", str(error).splitlines()[-1].strip())
    return None


def test_every_r4_resource_is_r4_by_fhirclients_models(served_r4: list[Json]) -> None:
    """Every resource holds R4's required elements and types. MedicinalProductManufactured's
    quantity, which R4 requires and FEST gives per package (R5 containedItem.amount), not per item,
    says it is unknown (data-absent-reason), and the way back makes nothing of that."""
    problems = Counter((r["resourceType"], p) for r in served_r4 if (p := _r4_model_problems(r)) is not None)
    assert problems == {}
    items = [r for r in served_r4 if r["resourceType"] == "MedicinalProductManufactured"]
    assert len(items) == 75
    assert {orjson.dumps(r["quantity"]) for r in items} == {
        b'{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]}'
    }


PLANTED: list[Json] = [
    {  # a flag before a characteristic: the way back puts R4 elements' items first, so r5- says it
        "resourceType": "PackagedProductDefinition",
        "id": "planted-1",
        "packaging": {
            "type": {"coding": [{"system": "urn:oid:2.16.578.1.12.4.1.1.7449", "code": "169"}]},
            "quantity": 2,
            "property": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": "https://grunndata.no/fhir/CodeSystem/packaging-property",
                                "code": "unit-dose",
                                "display": "Unit dose",
                            }
                        ]
                    },
                    "valueBoolean": True,
                },
                {
                    "type": {"coding": [{"system": CS_R4_CHARACTERISTIC, "code": "otherCharacteristics"}]},
                    "valueCodeableConcept": {"text": "child-proof cap"},
                },
            ],
        },
    },
    {  # a strength range (two R4 elements) and an R5-only element
        "resourceType": "Ingredient",
        "id": "planted-2",
        "status": "draft",
        "role": {"coding": [{"system": "http://hl7.org/fhir/ingredient-role", "code": "100000072072"}]},
        "substance": {
            "code": {"concept": {"text": "paracetamol"}},
            "strength": [
                {
                    "presentationRatioRange": {
                        "lowNumerator": {"value": 1, "unit": "mg"},
                        "highNumerator": {"value": 2, "unit": "mg"},
                        "denominator": {"value": 1},
                    }
                }
            ],
        },
        "group": {"text": "tablet core"},
    },
]


PLANTED += [
    {  # a level FEST names no packaging type for: R4 requires one, says it is unknown
        "resourceType": "PackagedProductDefinition",
        "id": "planted-3",
        "packaging": {"identifier": [{"system": "https://www.gs1.org/gtin", "value": "7046260148840"}]},
    },
    {  # two identifiers, where safest-MedicinalProduct allows one
        "resourceType": "MedicinalProductDefinition",
        "id": "planted-4",
        "identifier": [
            {"system": "http://dmp.no/fhir/NamingSystem/festLegemiddelVirkestoff", "value": "ID_1"},
            {"system": "https://grunndata.no/fhir/NamingSystem/phpid", "value": "L1A-1"},
        ],
        "name": [{"productName": "x"}],
    },
    {  # an LMR number: safest-lmrNumber holds a string
        "resourceType": "ManufacturedItemDefinition",
        "id": "planted-5",
        "identifier": [{"system": NS_LMR, "value": "123456"}],
        "status": "active",
        "manufacturedDoseForm": {"text": "tablett"},
    },
]


def test_what_the_safest_profiles_allow_is_what_the_planted_shapes_get() -> None:
    package, product, item = (to_r4(r) for r in PLANTED[2:5])
    assert package is not None and product is not None and item is not None
    assert package["packageItem"][0]["type"] == {
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}
        ]
    }
    assert product["identifier"] == PLANTED[3]["identifier"][:1]
    assert [e for e in item["extension"] if e["url"].endswith("lmrNumber")] == [
        {
            "url": "http://legemiddelverket.no/fhir/StructureDefinition/safest-lmrNumber",
            "valueString": "123456",
        }
    ]


@pytest.mark.parametrize("resource", PLANTED, ids=[r["id"] for r in PLANTED])
def test_planted_shapes_come_back_exactly(resource: Json) -> None:
    made = to_r4(resource)
    assert made is not None
    conversion = to_r5([made])
    assert conversion.errors == []
    (back,) = conversion.resources
    assert _without_profile(back) == resource


def test_two_levels_of_one_item_keep_two_pack_sizes_through_r4() -> None:
    """R5 counts an item per level it is in; the way back would sum them, so the r5- form stands."""
    amount = {"value": 10, "unit": "stykk", "system": "urn:oid:2.16.578.1.12.4.1.1.7452", "code": "stk"}
    item = {"item": {"reference": {"reference": "ManufacturedItemDefinition/m"}}, "amount": amount}
    level = {
        "type": {"coding": [{"system": "urn:oid:2.16.578.1.12.4.1.1.7449", "code": "169"}]},
        "quantity": 1,
    }
    package = {
        "resourceType": "PackagedProductDefinition",
        "id": "two-levels",
        "containedItemQuantity": [amount, amount],
        "packaging": {
            **level,
            "packaging": [{**level, "containedItem": [item]}, {**level, "containedItem": [item]}],
        },
    }
    made = to_r4(package)
    assert made is not None
    (back,) = to_r5([made]).resources
    assert back["containedItemQuantity"] == [amount, amount]


def test_a_kits_package_of_another_products_item_adds_no_product_to_the_ingredient() -> None:
    """A package of product B holding product A's item: the ingredient of A's item is for A only,
    as its R5 says (the way back would add B, as it does for SAFEST's own R4)."""
    ingredient = {
        "resourceType": "Ingredient",
        "id": "a-1",
        "status": "active",
        "for": [
            {"reference": "ManufacturedItemDefinition/a"},
            {"reference": "MedicinalProductDefinition/a"},
        ],
        "role": {"coding": [{"system": "http://hl7.org/fhir/ingredient-role", "code": "100000072072"}]},
        "substance": {"code": {"concept": {"text": "paracetamol"}}},
    }
    item = {
        "resourceType": "ManufacturedItemDefinition",
        "id": "a",
        "status": "active",
        "manufacturedDoseForm": {"text": "tablett"},
    }
    kit = {
        "resourceType": "PackagedProductDefinition",
        "id": "b-kit",
        "packageFor": [{"reference": "MedicinalProductDefinition/b"}],
        "packaging": {
            "type": {"coding": [{"system": "urn:oid:2.16.578.1.12.4.1.1.7449", "code": "169"}]},
            "quantity": 1,
            "containedItem": [{"item": {"reference": {"reference": "ManufacturedItemDefinition/a"}}}],
        },
    }
    made = [to_r4(r) for r in (ingredient, item, kit)]
    back = {r["id"]: r for r in to_r5([r for r in made if r is not None]).resources}
    assert back["a-1"]["for"] == ingredient["for"]


def test_dmps_contained_item_by_identifier_is_given_back_as_dmp_gave_it() -> None:
    """DMP's examples name the item a packaging level holds by identifier (a logical reference);
    the R4 view gave it only as an r5- extension, so a SAFEST client saw no containedItem (probe)."""
    path = require(SHARED / "data" / "safest-r4" / "Examples" / "safest-MedicinalProductPackaged_Paracet.xml")
    sent = [found.resource for found in read_resources(path, 10**7)]
    (package,) = [r for r in to_r5(sent).resources if r["resourceType"] == "PackagedProductDefinition"]
    (level,) = to_r4(package)["packageItem"]
    (contained,) = [e for e in level["extension"] if e["url"].endswith("/containedItem")]
    assert contained["extension"] == [
        {"url": "item", "valueReference": {"identifier": {"value": "ManufacturedItem/2148"}}},
        {"url": "quantity", "valueInteger": 2},
    ]
    assert not [e for e in level["extension"] if e["url"].endswith("packaging.containedItem")]
    (again,) = [
        r for r in to_r5([to_r4(package)]).resources if r["resourceType"] == "PackagedProductDefinition"
    ]
    assert again["packaging"]["containedItem"] == package["packaging"]["containedItem"]


def test_every_served_type_is_r4_or_said_to_be_r5_only() -> None:
    from grunndata.fhir import SERVED_TYPES
    from grunndata.translators.safest.to_r4 import R5_ONLY

    assert set(R5_ONLY) == set(SERVED_TYPES) - set(R4_OF_R5) - {"CodeSystem"}
    assert not set(R5_ONLY) & set(R4_OF_R5)
