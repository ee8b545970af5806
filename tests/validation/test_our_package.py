"""Our own package (no.grunndata.fhir) is valid R5 by the core definitions alone, and says what we serve."""

from __future__ import annotations

from grunndata.fhirpackage import package_resources
from grunndata.validation import Definitions, Report, Validator


def test_every_resource_of_our_package_is_valid_r5(r5: Definitions) -> None:
    validator, report = Validator(r5), Report()
    resources = package_resources()
    for resource in resources:
        validator.validate(resource, "our package", report)
    assert [p.sentence() for p in report.problems] == []
    assert report.resources == len(resources) == 185


def test_our_search_parameters_are_the_rows_of_the_search_table_that_are_ours() -> None:
    found = {
        r["url"]: (r["code"], r["base"], r["type"], r.get("expression"))
        for r in package_resources()
        if r["resourceType"] == "SearchParameter"
    }
    ours = "https://grunndata.no/fhir/SearchParameter/"
    assert found == {
        f"{ours}MedicinalProductDefinition-comprised-of": (
            "comprised-of",
            ["MedicinalProductDefinition"],
            "reference",
            "MedicinalProductDefinition.comprisedOf",
        ),
        f"{ours}ClinicalUseDefinition-interactant": (
            "interactant",
            ["ClinicalUseDefinition"],
            "token",
            "ClinicalUseDefinition.interaction.interactant.item.ofType(CodeableConcept)",
        ),
        f"{ours}ClinicalUseDefinition-interactant-reference": (
            "interactant-reference",
            ["ClinicalUseDefinition"],
            "reference",
            "ClinicalUseDefinition.interaction.interactant.item.ofType(Reference)",
        ),
        f"{ours}Organization-tier": ("tier", ["Organization"], "token", None),  # from the store's columns
    }


def test_the_naming_systems_are_ours_only_never_dmps() -> None:
    urls = sorted(r["url"] for r in package_resources() if r["resourceType"] == "NamingSystem")
    assert len(urls) == 8
    assert all(u.startswith("https://grunndata.no/fhir/NamingSystem/fest") for u in urls)


def test_an_extension_says_where_it_may_appear_and_what_it_holds() -> None:
    by_url = {r["url"]: r for r in package_resources() if r["resourceType"] == "StructureDefinition"}
    atc = by_url["https://grunndata.no/fhir/StructureDefinition/fest-Atc"]
    assert [c["expression"] for c in atc["context"]] == [
        "ClinicalUseDefinition.interaction",
        "ManufacturedItemDefinition",
        "MedicinalProductDefinition",
        "PackagedProductDefinition",
    ]
    assert atc["differential"]["element"][2]["type"] == [{"code": "Coding"}]
    kept = by_url["https://grunndata.no/fhir/StructureDefinition/r4-MedicinalProduct.specialDesignation"]
    assert [c["expression"] for c in kept["context"]] == ["MedicinalProductDefinition"]
    assert kept["differential"]["element"][2]["type"] == [{"code": "string"}]
    source = by_url["https://grunndata.no/fhir/StructureDefinition/source-profile"]
    assert [c["expression"] for c in source["context"]] == ["Resource"]
    assert source["differential"]["element"][2]["type"] == [{"code": "canonical"}]
