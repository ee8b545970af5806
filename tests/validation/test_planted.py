"""The validator can fail: each planted defect is flagged with exactly its rule and path, and the
valid resources it was planted in pass.

The resources are small R5 resources of the kinds we serve; each case changes one thing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from grunndata.validation import Definitions, Report, Validator, load_definitions

PPD: dict[str, Any] = {
    "resourceType": "PackagedProductDefinition",
    "id": "p1",
    "packageFor": [{"reference": "MedicinalProductDefinition/m1"}],
    "statusDate": "2024-05-01T10:00:00Z",
    "containedItemQuantity": [{"value": 10, "unit": "tablet"}],
    "copackagedIndicator": False,
    "packaging": {
        "quantity": 1,
        "containedItem": [
            {"item": {"reference": {"reference": "ManufacturedItemDefinition/i1"}}, "amount": {"value": 10}}
        ],
    },
}
ING: dict[str, Any] = {
    "resourceType": "Ingredient",
    "id": "i1",
    "status": "active",
    "role": {"coding": [{"system": "http://hl7.org/fhir/ingredient-role", "code": "100000072072"}]},
    "substance": {
        "code": {"concept": {"text": "paracetamol"}},
        "strength": [
            {
                "presentationRatio": {
                    "numerator": {
                        "value": 500,
                        "unit": "mg",
                        "system": "http://unitsofmeasure.org",
                        "code": "mg",
                    },
                    "denominator": {"value": 1},
                }
            }
        ],
    },
}
APD: dict[str, Any] = {
    "resourceType": "AdministrableProductDefinition",
    "id": "a1",
    "status": "active",
    "routeOfAdministration": [
        {"code": {"coding": [{"system": "http://standardterms.edqm.eu", "code": "20053000"}]}}
    ],
    "property": [
        {
            "type": {"text": "colour"},
            "status": {"coding": [{"system": "http://hl7.org/fhir/publication-status", "code": "active"}]},
        }
    ],
}
CUD: dict[str, Any] = {
    "resourceType": "ClinicalUseDefinition",
    "id": "c1",
    "type": "interaction",
    "interaction": {"interactant": [{"itemCodeableConcept": {"text": "warfarin"}}]},
}
PUBLICATION_STATUS = "binding required http://hl7.org/fhir/ValueSet/publication-status"
Change = Callable[[dict[str, Any]], None]


def _problems(r5: Definitions, resource: dict[str, Any]) -> tuple[list[tuple[str, str]], Report]:
    report = Report()
    Validator(r5).validate(resource, "planted.json entry 1", report)
    return [(p.path, p.rule) for p in report.problems], report


@pytest.mark.parametrize(
    ("resource", "not_checked"),
    [(PPD, {}), (ING, {}), (APD, {"invariant apd-1": 1}), (CUD, {})],  # apd-1 needs resolve()
    ids=lambda r: r.get("resourceType", ""),
)
def test_the_valid_resources_pass(
    r5: Definitions, resource: dict[str, Any], not_checked: dict[str, int]
) -> None:
    problems, report = _problems(r5, resource)
    assert problems == []
    assert report.resources == 1
    assert dict(report.not_checked) == not_checked


def _set(path: str, value: Any) -> Change:
    def change(r: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = r
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[int(last) if last.isdigit() else last] = value

    return change


def _drop(path: str) -> Change:
    def change(r: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = r
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        del node[last]

    return change


CASES: list[tuple[str, dict[str, Any], Change, list[tuple[str, str]]]] = [
    (
        "a missing required element in a backbone element",
        PPD,
        _drop("packaging.containedItem.0.item"),
        [("PackagedProductDefinition.packaging.containedItem[0].item", "cardinality 1..1")],
    ),
    ("a missing required element", ING, _drop("substance"), [("Ingredient.substance", "cardinality 1..1")]),
    (
        "a missing 1..* element",
        APD,
        _drop("routeOfAdministration"),
        [("AdministrableProductDefinition.routeOfAdministration", "cardinality 1..*")],
    ),
    (
        "a repeated 0..1 element",
        PPD,
        lambda r: r.update(packaging=[r["packaging"], r["packaging"]]),
        [("PackagedProductDefinition.packaging", "cardinality 0..1")],
    ),
    (
        "a repeating element that is no array",
        PPD,
        _set("packageFor", {"reference": "MedicinalProductDefinition/m1"}),
        [("PackagedProductDefinition.packageFor", "type")],
    ),
    (
        "an integer given as a string",
        PPD,
        _set("packaging.quantity", "1"),
        [("PackagedProductDefinition.packaging.quantity", "type")],
    ),
    (
        "a boolean given as a string",
        PPD,
        _set("copackagedIndicator", "false"),
        [("PackagedProductDefinition.copackagedIndicator", "type")],
    ),
    (
        "a dateTime with month 13",
        PPD,
        _set("statusDate", "2024-13-01"),
        [("PackagedProductDefinition.statusDate", "type")],
    ),
    ("an id with a space", PPD, _set("id", "p 1"), [("PackagedProductDefinition.id", "type")]),
    (
        "a decimal given as a string",
        ING,
        _set("substance.strength.0.presentationRatio.denominator.value", "1"),
        [("Ingredient.substance.strength[0].presentationRatio.denominator.value", "type")],
    ),
    (
        "a complex element given as a string",
        PPD,
        _set("containedItemQuantity", ["10 tablets"]),
        [("PackagedProductDefinition.containedItemQuantity[0]", "type")],
    ),
    (
        "a choice type the element does not allow",
        ING,
        lambda r: r["substance"]["strength"][0].update(
            presentationString=r["substance"]["strength"][0].pop("presentationRatio")
        ),
        [("Ingredient.substance.strength[0].presentationString", "unknown element")],
    ),
    (
        "an unknown element",
        PPD,
        _set("colour", "red"),
        [("PackagedProductDefinition.colour", "unknown element")],
    ),
    (
        "an unknown element in a backbone element",
        PPD,
        _set("packaging.containedItem.0.count", 3),
        [("PackagedProductDefinition.packaging.containedItem[0].count", "unknown element")],
    ),
    (
        "an R4 resource type",
        PPD,
        _set("resourceType", "MedicinalProductPackaged"),
        [("MedicinalProductPackaged", "type")],
    ),
    (
        "a code outside a required binding",
        ING,
        _set("status", "final"),
        [("Ingredient.status", PUBLICATION_STATUS)],
    ),
    (
        "a CodeableConcept outside a required binding",
        APD,
        _set("property.0.status.coding.0.code", "final"),
        [("AdministrableProductDefinition.property[0].status", PUBLICATION_STATUS)],
    ),
    (
        "a code of a required binding from another system",
        APD,
        _set("property.0.status.coding.0.system", "http://example.org/status"),
        [("AdministrableProductDefinition.property[0].status", PUBLICATION_STATUS)],
    ),
    (
        "a code outside a required binding of a whole code system",
        CUD,
        _set("type", "interactions"),
        [
            (
                "ClinicalUseDefinition.type",
                "binding required http://hl7.org/fhir/ValueSet/clinical-use-definition-type",
            )
        ],
    ),
    (
        "ele-1: an element with no value and no children",
        PPD,
        _set("packaging", {}),
        [("PackagedProductDefinition.packaging", "invariant ele-1")],
    ),
    (
        "ele-1: a primitive's extension part with neither value nor extension",
        PPD,
        _set("_statusDate", {}),
        [("PackagedProductDefinition.statusDate", "invariant ele-1")],
    ),
    (
        "ext-1: an extension with both a value and extensions",
        PPD,
        _set(
            "extension",
            [
                {
                    "url": "http://example.org/e",
                    "valueString": "a",
                    "extension": [{"url": "b", "valueString": "b"}],
                }
            ],
        ),
        [("PackagedProductDefinition.extension[0]", "invariant ext-1")],
    ),
    (
        "ref-1: a reference to a contained resource that is not there",
        PPD,
        _set("packageFor", [{"reference": "#m1"}]),
        [("PackagedProductDefinition.packageFor[0]", "invariant ref-1")],
    ),
    (
        "ref-2: a reference with neither reference, identifier nor display",
        PPD,
        _set("packageFor", [{"type": "MedicinalProductDefinition"}]),
        [("PackagedProductDefinition.packageFor[0]", "invariant ref-2")],
    ),
    (
        "qty-3: a quantity with a code and no system",
        PPD,
        _set("packaging.containedItem.0.amount", {"value": 10, "code": "mg"}),
        [("PackagedProductDefinition.packaging.containedItem[0].amount", "invariant qty-3")],
    ),
    (
        "per-1: a period that ends before it starts (at any precision)",
        PPD,
        _set(
            "marketingStatus",
            [{"status": {"text": "marketed"}, "dateRange": {"start": "2021", "end": "2020-05-01"}}],
        ),
        [("PackagedProductDefinition.marketingStatus[0].dateRange", "invariant per-1")],
    ),
    (
        "rat-1: a ratio without a denominator",
        ING,
        _drop("substance.strength.0.presentationRatio.denominator"),
        [("Ingredient.substance.strength[0].presentationRatio", "invariant rat-1")],
    ),
    (
        "ing-1: an allergen whose substance is a reference",
        ING,
        lambda r: (
            r.update(allergenicIndicator=True)
            or r["substance"].update(code={"reference": {"reference": "SubstanceDefinition/s1"}})
        ),
        [("Ingredient", "invariant ing-1")],
    ),
    (
        "cud-1: one ClinicalUseDefinition of two kinds",
        CUD,
        _set("warning", {"description": "take with food"}),
        [("ClinicalUseDefinition", "invariant cud-1")],
    ),
    (
        "dom-3: a contained resource nothing refers to",
        PPD,
        _set("contained", [{"resourceType": "Basic", "id": "c1", "code": {"text": "note"}}]),
        [("PackagedProductDefinition", "invariant dom-3")],
    ),
    (
        "dom-4: a contained resource with a version of its own",
        PPD,
        lambda r: r.update(
            packageFor=[{"reference": "#c1"}],
            contained=[
                {"resourceType": "Basic", "id": "c1", "meta": {"versionId": "2"}, "code": {"text": "note"}}
            ],
        ),
        [("PackagedProductDefinition", "invariant dom-4")],
    ),
    (
        "dom-5: a contained resource with a security label",
        PPD,
        lambda r: r.update(
            packageFor=[{"reference": "#c1"}],
            contained=[
                {
                    "resourceType": "Basic",
                    "id": "c1",
                    "meta": {"security": [{"system": "http://example.org/s", "code": "R"}]},
                    "code": {"text": "note"},
                }
            ],
        ),
        [("PackagedProductDefinition", "invariant dom-5")],
    ),
    (
        "dom-2 and dom-3: a contained resource that contains another",
        PPD,
        lambda r: r.update(
            packageFor=[{"reference": "#c1"}],
            contained=[
                {
                    "resourceType": "Basic",
                    "id": "c1",
                    "code": {"text": "note"},
                    "contained": [{"resourceType": "Basic", "id": "c2", "code": {"text": "inner"}}],
                }
            ],
        ),
        [
            ("PackagedProductDefinition", "invariant dom-2"),
            ("PackagedProductDefinition.contained[0]", "invariant dom-3"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("resource", "change", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_planted_defect_is_flagged_with_its_rule_and_path(
    r5: Definitions, resource: dict[str, Any], change: Change, expected: list[tuple[str, str]]
) -> None:
    planted = copy.deepcopy(resource)
    change(planted)
    assert _problems(r5, planted)[0] == expected


def test_a_problem_names_the_resource_where_it_was_read_and_says_what_is_wrong(r5: Definitions) -> None:
    planted = copy.deepcopy(PPD)
    planted["statusDate"] = "2024-13-01"
    report = Report()
    Validator(r5).validate(planted, "planted.json entry 1", report)
    assert [p.sentence() for p in report.problems] == [
        "planted.json entry 1: PackagedProductDefinition/p1 PackagedProductDefinition.statusDate: "
        "'2024-13-01' is not a valid dateTime [type]"
    ]


def test_what_cannot_be_checked_is_counted_by_name(r5: Definitions) -> None:
    """An unknown extension, a value set with a filter, an invariant fhirpathpy cannot evaluate."""
    planted = copy.deepcopy(ING)
    planted["language"] = "nb-NO"  # all-languages: a filter on BCP-47, not expandable here
    planted["extension"] = [
        {"url": "https://grunndata.no/fhir/StructureDefinition/fest-Test", "valueString": "x"}
    ]
    planted["substance"]["strength"][0]["presentationRatio"]["numerator"]["extension"] = [
        {"url": "http://example.org/range", "valueRange": {"low": {"value": 1}, "high": {"value": 2}}}
    ]
    problems, report = _problems(r5, planted)
    assert problems == []
    assert dict(report.not_checked) == {
        "binding http://hl7.org/fhir/ValueSet/all-languages (cannot expand)": 1,
        "extension https://grunndata.no/fhir/StructureDefinition/fest-Test (no definition)": 1,
        "extension http://example.org/range (no definition)": 1,
        "invariant rng-2": 1,  # lowBoundary() of a Quantity
    }


def _extension_definition(r5: Definitions) -> dict[str, Any]:
    """A made-up extension definition: its value a Coding whose system is fixed by a pattern."""
    url = "http://example.org/StructureDefinition/snomed-form"
    base = r5.types["Extension"]
    elements = [
        {"id": p, "path": p, "min": e.min, "max": e.max, "type": [{"code": t} for t in e.types]}
        for p, e in base.elements.items()
    ]
    for e in elements:
        if e["path"] == "Extension.url":
            e["fixedUri"] = url
        if e["path"] == "Extension.value[x]":
            e["type"] = [{"code": "Coding"}]
            e["min"] = 1
            e["patternCoding"] = {"system": "http://snomed.info/sct"}
    return {
        "resourceType": "StructureDefinition",
        "url": url,
        "type": "Extension",
        "kind": "complex-type",
        "derivation": "constraint",
        "snapshot": {"element": elements},
    }


def test_an_extension_with_a_definition_is_checked_by_it_fixed_and_pattern_values_included(
    r5: Definitions, fhir_packages: Path
) -> None:
    definitions = Definitions([*load_definitions(fhir_packages), _extension_definition(r5)])
    url = "http://example.org/StructureDefinition/snomed-form"
    good = {"url": url, "valueCoding": {"system": "http://snomed.info/sct", "code": "385055001"}}
    cases = {
        "valid": (good, []),
        "pattern": (
            {"url": url, "valueCoding": {"system": "http://example.org", "code": "385055001"}},
            [("PackagedProductDefinition.extension[0].valueCoding", "pattern")],
        ),
        "type": (
            {"url": url, "valueString": "tablet"},
            [
                ("PackagedProductDefinition.extension[0].valueString", "unknown element"),
                ("PackagedProductDefinition.extension[0].value", "cardinality 1..1"),
            ],
        ),
    }
    for name, (extension, expected) in cases.items():
        planted = copy.deepcopy(PPD)
        planted["extension"] = [extension]
        report = Report()
        Validator(definitions).validate(planted, "x", report)
        assert ([(p.path, p.rule) for p in report.problems], dict(report.not_checked)) == (expected, {}), name


def _places(node: Any, place: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [place] if place else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        found.extend(_places(value, (*place, key)))
    return found


def test_any_json_in_any_place_is_a_problem_or_valid_never_an_exception(r5: Definitions) -> None:
    """Every value of a malformed kind put in every place of the planted resources (found by a fuzzer:
    a Coding whose system was an object once raised TypeError)."""
    shapes: list[Any] = [None, 1, 2**40, 1.5, True, "", " ", [], {}, [None], [{}], {"a": 1}, {"url": 5}, [[]]]
    shapes += [{"resourceType": "Basic"}, {"extension": "x"}, {"system": {}, "code": []}]
    validator, report, runs = Validator(r5), Report(), 0
    for resource in (PPD, ING, APD, CUD):
        for place in _places(resource):
            for shape in shapes:
                planted = copy.deepcopy(resource)
                node: Any = planted
                for key in place[:-1]:
                    node = node[key]
                node[place[-1]] = shape
                validator.validate(planted, "fuzz", report)
                runs += 1
    assert (runs, report.resources, len(report.problems)) == (1173, 1173, 1358)


def test_a_period_within_the_precision_of_its_ends_passes_per_1(r5: Definitions) -> None:
    """per-1 compares the earliest instant the start can mean with the latest the end can."""
    for start, end in [
        ("2020", "2020-05-01"),
        ("2020-05-01T10:00:00Z", "2020-05-01"),
        ("2020-05-02", "2020-05-01T23:00:00Z"),
    ]:
        planted = copy.deepcopy(PPD)
        planted["marketingStatus"] = [
            {"status": {"text": "marketed"}, "dateRange": {"start": start, "end": end}}
        ]
        problems, report = _problems(r5, planted)
        assert (problems, dict(report.not_checked)) == ([], {}), (start, end)
