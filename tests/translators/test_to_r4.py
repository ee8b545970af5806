"""The R4 view: every national resource of the real FEST extract served in SAFEST's R4 shape, and
read back by our SAFEST importer's conversion, gives the R5 resource it came from, exactly.

R4 made by reading the R4 -> R5 tables backwards (translators/safest/to_r4.py); what R4 has no place
for travels as ``r5-`` extensions, so the comparison is whole resources, not chosen fields.
"""

from __future__ import annotations

import copy
import hashlib
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from grunndata.fhir import NS_VARENR
from grunndata.fhir.r4_elements import ELEMENTS as R4_ELEMENTS
from grunndata.importers.identifiers import served_identifiers
from grunndata.translators.safest import CS_R4_CHARACTERISTIC, to_r5
from grunndata.translators.safest.rules import R5_KEPT_BASE
from grunndata.translators.safest.to_r4 import PROFILES, R4_OF_R5, coverage, to_r4
from tests.conftest import require

Json = dict[str, Any]
SAFEST_SD = Path(__file__).parents[2].parent / "shared" / "data" / "safest-r4" / "StructureDefinition"
FHIR = "{http://hl7.org/fhir}"


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


R4_OF_THE_REAL_EXTRACT = "7ca9b5d0af86bb2db3e5b5888192a56750bc13f172bb1c1c729a50c2842500a4"
"""SHA-256 of the R4 JSON of every national resource of the real extract, one per line, in import
order: computed before to_r4's mechanics were made faster (cached rules, a JSON copy for deepcopy),
so a change of speed cannot change what is served. A deliberate change of the R4 output updates it."""


def test_the_r4_of_the_real_extract_is_byte_for_byte_what_it_was(national: list[Json]) -> None:
    made = b"\n".join(orjson.dumps(to_r4(r)) for r in national)
    assert len(national) == 545
    assert hashlib.sha256(made).hexdigest() == R4_OF_THE_REAL_EXTRACT


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


def _differential(path: Path) -> tuple[str, list[ET.Element]]:
    root = ET.parse(path).getroot()
    url = root.find(f"{FHIR}url")
    assert url is not None
    return str(url.get("value")), list(root.iter(f"{FHIR}element"))


def test_every_r4_resource_keeps_the_safest_profiles_constraints(served_r4: list[Json]) -> None:
    """The SAFEST differentials' element constraints that need no slicing: max 0 (absent), fixed
    values on a non-sliced path, and each NOMA extension written is one DMP defines."""
    require(SAFEST_SD)
    defined = {_differential(p)[0] for p in SAFEST_SD.glob("*extension.xml")}
    defined |= {
        "http://legemiddelverket.no/fhir/StructureDefinition/safest-itemnumber",  # in DMP's examples
        "http://legemiddelverket.no/fhir/StructureDefinition/safest-retailPack",
        "http://legemiddelverket.no/fhir/StructureDefinition/safest-singleUnit",
    }
    forbidden: dict[str, set[str]] = {}
    for path in SAFEST_SD.glob("*profile.xml"):
        url, elements = _differential(path)
        for element in elements:
            element_id = str(element.get("id"))
            maximum = element.find(f"{FHIR}max")
            if maximum is not None and maximum.get("value") == "0" and ":" not in element_id:
                forbidden.setdefault(url, set()).add(element_id)
    assert forbidden[PROFILES["MedicinalProductPackaged"]] >= {
        "MedicinalProductPackaged.packageItem.manufacturedItem"
    }
    problems = []
    for resource in served_r4:
        for element_id in forbidden.get(PROFILES[resource["resourceType"]], ()):
            if _has(resource, element_id.split(".")[1:]):
                problems.append(f"{resource['resourceType']}/{resource['id']} has {element_id}")
        for url in _extension_urls(resource):
            if url.startswith("http://legemiddelverket.no/") and url not in defined:
                problems.append(f"{resource['resourceType']}/{resource['id']} uses undefined {url}")
    assert problems == []


def _has(value: Any, names: list[str]) -> bool:
    if not names:
        return True
    items = value if isinstance(value, list) else [value]
    return any(isinstance(i, dict) and names[0] in i and _has(i[names[0]], names[1:]) for i in items)


def _extension_urls(value: Any) -> list[str]:
    found = []
    if isinstance(value, dict):
        for name, child in value.items():
            if name in ("extension", "modifierExtension"):
                found += [e["url"] for e in child]
            found += _extension_urls(child)
    elif isinstance(value, list):
        for item in value:
            found += _extension_urls(item)
    return found


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


@pytest.mark.parametrize("resource", PLANTED, ids=[r["id"] for r in PLANTED])
def test_planted_shapes_come_back_exactly(resource: Json) -> None:
    made = to_r4(resource)
    assert made is not None
    conversion = to_r5([made])
    assert conversion.errors == []
    (back,) = conversion.resources
    assert _without_profile(back) == resource
