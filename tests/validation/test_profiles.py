"""Profiles checked by their differentials (grunndata/validation/profiles.py): slices found by their
discriminators, slice cardinalities, fixed and pattern values, choice types, required bindings,
extension definitions and contexts; on DMP's own SAFEST examples, and on a planted profile that
breaks each rule once.

DMP's examples do not all keep DMP's profiles: each problem found below was looked up in the files
(the example, not the checker, is at odds with the profile), see the comments."""

from __future__ import annotations

import copy
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from grunndata.fhir.r4_elements import ELEMENTS as R4_ELEMENTS
from grunndata.importers.resources import read_resources
from grunndata.validation import ProfileValidator, Report, read_folder
from tests.conftest import SHARED, require

Json = dict[str, Any]
SAFEST = SHARED / "data" / "safest-r4"
SD = "http://legemiddelverket.no/fhir/StructureDefinition/"


@pytest.fixture(scope="module")
def safest() -> ProfileValidator:
    require(SAFEST)
    return ProfileValidator(
        read_folder(SAFEST / "StructureDefinition") + read_folder(SAFEST / "CodeSystem"), R4_ELEMENTS
    )


def test_the_safest_profiles_and_extensions_are_read_from_their_xml(safest: ProfileValidator) -> None:
    assert sorted(u.removeprefix(SD) for u in safest.profiles) == [
        "safest-DeviceDefinition",
        "safest-MarketingStatus",
        "safest-MedicinalProduct",
        "safest-MedicinalProductIngredient",
        "safest-MedicinalProductManufactured",
        "safest-MedicinalProductPackaged",
        "safest-MedicinalProductPharmaceutical",
        "safest-substanceSpecification",
    ]
    assert len(safest.extensions) == 14
    assert safest.extensions[SD + "containedItem"].contexts == ("MedicinalProductPackaged.packageItem",)
    packaged = safest.profiles[SD + "safest-MedicinalProductPackaged"].root
    item_ids = packaged.children["packageItem"].children["identifier:safestIdentifier"]
    assert (item_ids.raw["min"], item_ids.raw["max"]) == ("1", "1")
    assert item_ids.children["system"].fixed == (
        "fixedUri",
        "http://legemiddelverket.no/fhir/SAFEST/MedicinalProductPackaged/PackageItem",
    )


def _generic(path: str) -> str:
    return re.sub(r"\[[0-9]+\]", "", path)


def test_dmps_examples_break_dmps_profiles_only_where_the_files_disagree(safest: ProfileValidator) -> None:
    report = Report()
    for example in sorted((SAFEST / "Examples").iterdir()):
        for found in read_resources(example):
            safest.validate(found.resource, example.name, report)
    assert report.resources == 12
    found = Counter((p.where.removeprefix("safest-"), _generic(p.path), p.rule) for p in report.problems)
    packaged = [
        "MedicinalProductPackaged-example-kloramfenikol.xml",
        "MedicinalProductPackaged-example-metadon.xml",
        "MedicinalProductPackaged_Advate.xml",
        "MedicinalProductPackaged_Canesten.xml",
        "MedicinalProductPackaged_Klexane.xml",
        "MedicinalProductPackaged_Metronidazole.xml",
        "MedicinalProductPackaged_Paracet.xml",
    ]
    two_items = ("MedicinalProductPackaged_Advate.xml", "MedicinalProductPackaged_Canesten.xml")
    expected: Counter[tuple[str, str, str]] = Counter(
        {
            # safest-characteristics says value[x] 0..0 (its value is in a part "elem"); the example
            # gives valueCodeableConcept on the extension itself
            (
                "MedicinalProduct-Paracet.json",
                "MedicinalProduct.extension.value[x]",
                "profile cardinality 0..0",
            ): 1,
            # the profile fixes legemiddeldoseID's system as .../FEST/KatLegemiddeldose; the examples
            # give the generic http://ehelse.no/fhir/CodeSystem/FEST
            **{
                (
                    f"MedicinalProductManufactured_Canesten_{form}.xml",
                    "MedicinalProductManufactured.extension:legemiddeldoseID.valueIdentifier.system",
                    "profile fixedUri",
                ): 1
                for form in ("lotion", "tablet")
            },
            # the packageItem:safestIdentifier slice (1..1) is .../MedicinalProductPackaged/PackageItem;
            # every example's package item identifier is in .../MedicinalProductPackaged
            **{
                (
                    name,
                    "MedicinalProductPackaged.packageItem.identifier:safestIdentifier",
                    "profile cardinality 1..1",
                ): 1
                for name in packaged
            },
            # containedItem's parts item and quantity are 1..1, found by url; the examples' parts have none
            **{
                (
                    name,
                    "MedicinalProductPackaged.packageItem"
                    + ("" if name.endswith("Paracet.xml") else ".packageItem")  # where each has it
                    + f".extension.extension:{part}",
                    "profile cardinality 1..1",
                ): 2 if name in two_items else 1
                for name in packaged
                for part in ("item", "quantity")
            },
            # NutritionProperties has EnergyContentKj and EnergyContentKcal, not EnergyContent
            (
                "MedicinalProductPharmaceutical-fromFhirInstance.json",
                "MedicinalProductPharmaceutical.extension.extension.valueCodeableConcept.coding",
                "code",
            ): 1,
        }
    )
    assert found == expected
    assert dict(report.not_checked) == {
        # DMP defines safest-property and safest-ModifiedDate (the examples write -Property, -modifiedDate)
        f"extension {SD}safest-Property (no definition)": 6,
        f"extension {SD}safest-modifiedDate (no definition)": 10,
        f"extension {SD}safest-energyContent (no definition)": 2,
        f"extension {SD}safest-itemnumber (no definition)": 7,
        f"extension {SD}safest-retailPack (no definition)": 15,
        f"extension {SD}safest-singleUnit (no definition)": 15,
        # slices that fix no value at their discriminator, so nothing can be recognised as them
        # (per holder: each example's top package item; safest-characteristics' part "elem")
        "slice identifier:dataCarrierIdentifier (discriminator system not fixed)": 7,
        "slice extension:elem (discriminator url not fixed)": 1,
    }


# --- a planted profile (not SAFEST's): each rule broken once ---------------------------------------

PROFILE = "urn:planted:profile"
FLAG = "urn:planted:flag"
PLANTED: list[Json] = [
    {
        "resourceType": "StructureDefinition",
        "url": PROFILE,
        "type": "MedicinalProductPackaged",
        "differential": {
            "element": [
                {
                    "id": "MedicinalProductPackaged.identifier",
                    "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "closed"},
                },
                {"id": "MedicinalProductPackaged.identifier:ours", "sliceName": "ours", "min": 1, "max": "1"},
                {"id": "MedicinalProductPackaged.identifier:ours.system", "fixedUri": "urn:ours"},
                {"id": "MedicinalProductPackaged.identifier:gtin", "sliceName": "gtin", "max": "*"},
                {"id": "MedicinalProductPackaged.identifier:gtin.system", "fixedUri": "urn:gtin"},
                {"id": "MedicinalProductPackaged.description", "max": "0"},
                {
                    "id": "MedicinalProductPackaged.legalStatusOfSupply",
                    "patternCodeableConcept": {"coding": [{"system": "urn:status"}]},
                },
                {
                    "id": "MedicinalProductPackaged.packageItem.type",
                    "binding": {"strength": "required", "valueSet": "urn:planted:types|1"},
                },
                {
                    "id": "MedicinalProductPackaged.packageItem.device",
                    "slicing": {"discriminator": [{"type": "type", "path": "$this"}], "rules": "open"},
                },
                {"id": "MedicinalProductPackaged.packageItem.device:one", "sliceName": "one", "min": 1},
                {
                    "id": "MedicinalProductPackaged.extension",
                    "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"},
                },
                {
                    "id": "MedicinalProductPackaged.extension:flag",
                    "sliceName": "flag",
                    "max": "1",
                    "type": [{"code": "Extension", "profile": [FLAG]}],
                },
            ]
        },
    },
    {
        "resourceType": "StructureDefinition",
        "url": FLAG,
        "type": "Extension",
        "context": [{"type": "element", "expression": "MedicinalProductPackaged"}],
        "differential": {
            "element": [
                {"id": "Extension.url", "fixedUri": FLAG},
                {"id": "Extension.value[x]", "min": 1, "type": [{"code": "boolean"}]},
            ]
        },
    },
    {
        "resourceType": "ValueSet",
        "url": "urn:planted:types",
        "compose": {"include": [{"system": "urn:types"}]},
    },
    {
        "resourceType": "CodeSystem",
        "url": "urn:types",
        "content": "complete",
        "concept": [{"code": "box"}, {"code": "blister", "concept": [{"code": "strip"}]}],
    },
]
GOOD: Json = {
    "resourceType": "MedicinalProductPackaged",
    "id": "good",
    "meta": {"profile": [PROFILE]},
    "extension": [{"url": FLAG, "valueBoolean": True}],
    "identifier": [{"system": "urn:gtin", "value": "1"}, {"system": "urn:ours", "value": "2"}],
    "legalStatusOfSupply": {"coding": [{"system": "urn:status", "code": "x"}], "text": "x"},
    "packageItem": [
        {
            "type": {"coding": [{"system": "urn:types", "code": "strip"}]},
            "quantity": {"value": 1},
            "device": [{"reference": "DeviceDefinition/1"}],
        }
    ],
}


@pytest.fixture(scope="module")
def planted() -> ProfileValidator:
    return ProfileValidator(PLANTED, R4_ELEMENTS)


def test_a_resource_keeping_a_planted_profile_passes(planted: ProfileValidator) -> None:
    report = Report()
    planted.validate(copy.deepcopy(GOOD), "planted", report)
    assert report.problems == []
    assert dict(report.not_checked) == {"discriminator type $this": 1}  # said, not passed silently


def test_each_rule_of_a_planted_profile_broken_once_is_found_once(planted: ProfileValidator) -> None:
    bad = copy.deepcopy(GOOD)
    bad["identifier"] = [{"system": "urn:gtin", "value": "1"}, {"system": "urn:other", "value": "3"}]
    bad["description"] = "a package"
    bad["legalStatusOfSupply"] = {"coding": [{"system": "urn:elsewhere", "code": "x"}]}
    bad["packageItem"][0]["type"] = {"coding": [{"system": "urn:types", "code": "bottle"}]}
    bad["extension"] = [{"url": FLAG, "valueBoolean": True}, {"url": FLAG, "valueString": "yes"}]
    bad["packageItem"][0]["extension"] = [{"url": FLAG, "valueBoolean": False}]
    report = Report()
    planted.validate(bad, "planted", report)
    assert [(p.path, p.rule, p.message) for p in report.problems] == [
        ("MedicinalProductPackaged.identifier:ours", "profile cardinality 1..1", "0 values, at least 1"),
        ("MedicinalProductPackaged.identifier[1]", "slicing closed", "identifier[1] matches no slice"),
        (
            "MedicinalProductPackaged.description",
            "profile cardinality 0..0",
            "1 values (description), at most 0",
        ),
        (
            "MedicinalProductPackaged.legalStatusOfSupply",
            "profile patternCodeableConcept",
            "{'coding': [{'system': 'urn:elsewhere', 'code': 'x'}]} is not {'coding': [{'system': 'urn:status'}]}",
        ),
        (
            "MedicinalProductPackaged.packageItem[0].type",
            "profile binding urn:planted:types|1",
            "{'coding': [{'system': 'urn:types', 'code': 'bottle'}]} is not in the value set",
        ),
        (
            "MedicinalProductPackaged.extension:flag",
            "profile cardinality 0..1",
            "2 values (extension), at most 1",
        ),
        (
            "MedicinalProductPackaged.extension[1].valueString",
            "profile type",
            "valueString is not one of boolean",
        ),
        (
            "MedicinalProductPackaged.packageItem[0].extension[0]",
            "extension context",
            f"{FLAG} may appear on MedicinalProductPackaged, not MedicinalProductPackaged.packageItem",
        ),
        (
            "MedicinalProductPackaged.packageItem[0].type.coding[0]",
            "code",
            "code 'bottle' is not in code system urn:types",
        ),
    ]


def test_a_profile_claimed_for_another_type_or_not_given_is_said(planted: ProfileValidator) -> None:
    report = Report()
    planted.validate(
        {"resourceType": "MedicinalProduct", "id": "p", "meta": {"profile": [PROFILE]}}, "x", report
    )
    planted.validate(
        {"resourceType": "MedicinalProduct", "id": "q", "meta": {"profile": ["urn:unknown"]}}, "x", report
    )
    assert [(p.resource, p.rule, p.message) for p in report.problems] == [
        ("MedicinalProduct/p", "profile", f"claims {PROFILE}, a profile of MedicinalProductPackaged")
    ]
    assert dict(report.not_checked) == {"profile urn:unknown (not given)": 1}


def test_a_structure_definition_in_xml_reads_as_its_json(tmp_path: Path) -> None:
    from grunndata.validation import read_xml

    (tmp_path / "flag.xml").write_text(
        '<StructureDefinition xmlns="http://hl7.org/fhir"><url value="urn:x"/><type value="Extension"/>'
        '<context><type value="element"/><expression value="Identifier"/></context>'
        '<differential><element id="Extension.value[x]"><path value="Extension.value[x]"/>'
        '<min value="1"/><type><code value="Reference"/><targetProfile value="urn:t"/></type>'
        "</element></differential></StructureDefinition>",
        "utf-8",
    )
    assert read_xml(tmp_path / "flag.xml") == {
        "resourceType": "StructureDefinition",
        "url": "urn:x",
        "type": "Extension",
        "context": [{"type": "element", "expression": "Identifier"}],
        "differential": {
            "element": [
                {
                    "id": "Extension.value[x]",
                    "path": "Extension.value[x]",
                    "min": "1",
                    "type": [{"code": "Reference", "targetProfile": ["urn:t"]}],
                }
            ]
        },
    }


@pytest.mark.parametrize(
    "resource",
    [
        None,
        "MedicinalProductPackaged",
        {"resourceType": "MedicinalProductPackaged", "meta": "x"},
        {"resourceType": "MedicinalProductPackaged", "meta": {"profile": PROFILE}},  # not a list
        {"resourceType": 5, "meta": {"profile": [None, 3]}},
    ],
    ids=["null", "a string", "meta a string", "profile a string", "odd types"],
)
def test_what_is_not_a_resource_claiming_a_profile_is_left_to_the_base_validator(
    planted: ProfileValidator, resource: Any
) -> None:
    report = Report()
    planted.validate(resource, "x", report)
    assert (report.resources, report.problems, dict(report.not_checked)) == (1, [], {})


def test_odd_values_inside_a_profiled_resource_are_problems_not_crashes(planted: ProfileValidator) -> None:
    odd: Json = {
        "resourceType": "MedicinalProductPackaged",
        "id": "odd",
        "meta": {"profile": [PROFILE]},
        "identifier": "urn:ours",
        "extension": [{"url": FLAG, "valueBoolean": True, "extension": "x"}, "q", {"url": 5}],
        "legalStatusOfSupply": [1],
        "packageItem": [
            "s",
            {"type": {"coding": "x"}},
            {"type": {"coding": [1, {"system": "urn:types", "code": [1]}]}},
        ],
    }
    report = Report()
    planted.validate(odd, "x", report)
    assert [(p.path, p.rule) for p in report.problems] == [
        ("MedicinalProductPackaged.identifier:ours", "profile cardinality 1..1"),
        ("MedicinalProductPackaged.identifier", "slicing closed"),
        ("MedicinalProductPackaged.legalStatusOfSupply[0]", "profile patternCodeableConcept"),
        ("MedicinalProductPackaged.packageItem[1].type", "profile binding urn:planted:types|1"),
        ("MedicinalProductPackaged.packageItem[2].type", "profile binding urn:planted:types|1"),
    ]
