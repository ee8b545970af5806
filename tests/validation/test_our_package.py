"""Our own package (no.grunndata.fhir) is valid R5 by the core definitions alone, and says what we serve."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from grunndata.catalog.fhir import endpoint_resource, organization_resource
from grunndata.catalog.model import Availability, Service
from grunndata.fhirpackage import package_resources
from grunndata.importers.fest import import_fest
from grunndata.store import connect, served
from grunndata.translators.fest_to_idmp import translate
from grunndata.translators.safest import to_r5
from grunndata.validation import Definitions, Report, Validator
from tests.conftest import REAL_FEST, require

OURS = "https://grunndata.no/fhir/StructureDefinition/"


def test_every_resource_of_our_package_is_valid_r5(r5: Definitions) -> None:
    validator, report = Validator(r5), Report()
    resources = package_resources()
    for resource in resources:
        validator.validate(resource, "our package", report)
    assert [p.sentence() for p in report.problems] == []
    # 226, the conceptmap-verified extension, a ninth NamingSystem, the packaging-property CodeSystem;
    # the barcode search: its six SearchParameters and the barcode-match extension; PhPID's NamingSystem;
    # the substitution-group SearchParameter (the pages' substitution groups)
    assert report.resources == len(resources) == 239


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
        f"{ours}PackagedProductDefinition-barcode": (
            "barcode",
            ["PackagedProductDefinition"],
            "token",
            "PackagedProductDefinition.identifier | PackagedProductDefinition.packaging.identifier"
            " | PackagedProductDefinition.packaging.repeat(packaging).identifier",
        ),
        **{
            f"{ours}PackagedProductDefinition-package-item-level-{word}": (
                f"package-item-level-{word}",
                ["PackagedProductDefinition"],
                "token",
                "PackagedProductDefinition" + ".packaging" * depth + ".identifier",
            )
            for depth, word in enumerate(("one", "two", "three"), 1)
        },
        f"{ours}PackagedProductDefinition-any-level-item": (
            "any-level-item",
            ["PackagedProductDefinition"],
            "reference",
            "PackagedProductDefinition.packaging.containedItem.item.reference"
            " | PackagedProductDefinition.packaging.repeat(packaging).containedItem.item.reference",
        ),
        f"{ours}PackagedProductDefinition-substitution-group": (
            "substitution-group",
            ["PackagedProductDefinition"],
            "reference",
            "PackagedProductDefinition.extension('https://grunndata.no/fhir/StructureDefinition/"
            "fest-PakningByttegruppe').extension('RefByttegruppe').value.ofType(Reference)",
        ),
        f"{ours}ManufacturedItemDefinition-barcode": (
            "barcode",
            ["ManufacturedItemDefinition"],
            "token",
            "ManufacturedItemDefinition.identifier",
        ),
        f"{ours}Organization-tier": ("tier", ["Organization"], "token", None),  # from the store's columns
        f"{ours}Endpoint-owner": ("owner", ["Endpoint"], "reference", "Endpoint.managingOrganization"),
        f"{ours}Endpoint-tier": ("tier", ["Endpoint"], "token", None),  # its meta.tag, as _tag
        f"{ours}Endpoint-resource-type": (
            "resource-type",
            ["Endpoint"],
            "token",
            "Endpoint.payload.type.text",
        ),
        # not a row of the table: a view the search reads (docs/h-resept-filters.md), on the
        # types the store holds (not the catalogue's Endpoint, the terminology's ConceptMap)
        f"{ours}Resource-content-filter": (
            "content-filter",
            [
                "MedicinalProductDefinition",
                "PackagedProductDefinition",
                "ManufacturedItemDefinition",
                "AdministrableProductDefinition",
                "Ingredient",
                "SubstanceDefinition",
                "ClinicalUseDefinition",
                "CodeSystem",
                "Basic",
                "RegulatedAuthorization",
                "ValueSet",
                "Composition",
                "Organization",
            ],
            "special",
            None,
        ),
    }


def test_the_naming_systems_are_ours_only_never_dmps() -> None:
    by_url = {r["url"]: r for r in package_resources() if r["resourceType"] == "NamingSystem"}
    assert len(by_url) == 10
    phpid = by_url.pop("https://grunndata.no/fhir/NamingSystem/phpid")
    assert phpid["experimental"] is True and phpid["kind"] == "identifier"
    assert all(u.startswith("https://grunndata.no/fhir/NamingSystem/fest") for u in by_url)
    assert not any(r.get("experimental") for r in by_url.values())
    # LMDI publishes no Virkestoff system: ours, with the dmp.no one we minted before as an alias
    substance = by_url["https://grunndata.no/fhir/NamingSystem/festVirkestoff"]
    assert [(u["value"], u["preferred"]) for u in substance["uniqueId"]] == [
        ("https://grunndata.no/fhir/NamingSystem/festVirkestoff", True),
        ("http://dmp.no/fhir/NamingSystem/festVirkestoff", False),
    ]
    assert substance["usage"].startswith("ID_ and an uppercase GUID")


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


def test_one_of_our_extensions_in_a_place_its_context_does_not_allow_is_an_error(r5: Definitions) -> None:
    """fest-Pakningsstr belongs on a package's packaging (its Pakningsinfo), not on the package itself."""
    url = "https://grunndata.no/fhir/StructureDefinition/fest-Pakningsstr"
    package = {
        "resourceType": "PackagedProductDefinition",
        "id": "p1",
        "packaging": {"extension": [{"url": url, "valueString": "10 stk"}]},
    }
    report = Report()
    Validator(r5).validate(package, "planted", report)
    assert report.problems == []
    package["extension"] = [{"url": url, "valueString": "10 stk"}]
    report = Report()
    Validator(r5).validate(package, "planted", report)
    assert [(p.path, p.rule, p.message) for p in report.problems] == [
        (
            "PackagedProductDefinition.extension[0]",
            "extension context",
            f"{url} may appear on PackagedProductDefinition.packaging, "
            "PackagedProductDefinition.packaging.packaging, not on PackagedProductDefinition",
        )
    ]
    assert dict(report.not_checked) == {}


def _urls(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("url"), str) and (
            "extension" in node or any(k.startswith("value") for k in node)
        ):
            yield node["url"]
        for value in node.values():
            yield from _urls(value)
    elif isinstance(node, list):
        for value in node:
            yield from _urls(value)


def test_every_extension_of_ours_the_real_extract_carries_has_a_definition_in_the_package(
    tmp_path: Path,
) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'fest.db'}")
    import_fest(engine, require(REAL_FEST))
    with engine.connect() as conn:
        used = {u for version in served(conn) for u in _urls(version.resource()) if u.startswith(OURS)}
    defined = {r["url"] for r in package_resources() if r["resourceType"] == "StructureDefinition"}
    assert len(used) == 61
    assert sorted(used - defined) == []


def test_the_catalogues_endpoint_and_organization_extensions_are_defined_and_in_their_place(
    r5: Definitions,
) -> None:
    service = Service(
        "fest", "FEST", "d", "dmp", "DMP", "national", "fhir-r5", "https://example.org/fhir", ("Basic",),
        ("read",), ("urn:oid:1",), "NLOD 2.0", "every 14 days", "release 12", "test",
    )  # fmt: skip
    probed = Availability("fest", 3, 2, datetime(2026, 11, 1, tzinfo=UTC), False, 12.5, "timed out after 5 s")
    validator, report = Validator(r5), Report()
    validator.validate(endpoint_resource(service, probed), "catalogue", report)
    validator.validate(organization_resource("dmp", "DMP", ["national", "sector"]), "catalogue", report)
    assert [p.sentence() for p in report.problems] == []
    assert [k for k in report.not_checked if "grunndata.no" in k] == []


def _empty_denominator(payload: Any) -> None:
    payload[3].insert(2, ["StyrkeNevner", None, None, None])  # no V, no U: no Quantity can hold it


def test_values_fhir_cannot_hold_are_kept_in_extensions_our_package_defines(r5: Definitions) -> None:
    """The entries the lossless test edits (numbers that print otherwise, a date FHIR has no form for,
    empty elements) and a denominator with no value: every extension they get is ours, defined, and
    where its context allows."""
    from tests.translators.conftest import lookup_of, read
    from tests.translators.test_lossless import _brand, _edit, _interaction, _package, _strength

    entries = read(require(REAL_FEST))
    by_key = {e.key: e for e in entries}
    strength = by_key["ID_85C16063-FEAE-401D-8631-67C2407E5730"]
    edited = [
        _edit(by_key["ID_CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A"], _package, tidspunkt="2017-01-01T00:54:56Z"),
        _edit(by_key["ID_F2CEF840-A295-4A7A-9CCD-5873D846C3BD"], _brand, tidspunkt="2017-03-26T02:30:00"),
        _edit(strength, _strength),
        _edit(strength, _empty_denominator),
        _edit(next(e for e in entries if e.kind == "Interaksjon"), _interaction),
    ]
    lookup = lookup_of(entries)
    made = [resource for entry in edited for resource in translate(entry, lookup)]
    used = {u for resource in made for u in _urls(resource) if u.startswith(OURS)}
    validator, report = Validator(r5), Report()
    for resource in made:
        validator.validate(resource, "edited", report)
    assert [p.sentence() for p in report.problems] == []
    assert [k for k in report.not_checked if "grunndata.no" in k] == []
    assert f"{OURS}fest-StyrkeNevner" in used
    assert f"{OURS}fest-lexical" in used and f"{OURS}fest-empty" in used
    assert len(made) == 8  # the merkevare also makes its MID, APD and Ingredients


def test_r4_elements_kept_at_any_depth_or_on_a_primitive_have_a_definition_in_our_package(
    r5: Definitions,
) -> None:
    """A count that is no whole number two package levels down is kept under the same URL as one
    level down (the R4 definition path), and the extensions on a primitive R5 renames differently
    (`_specialMeasures`) are kept as r4-MedicinalProduct._specialMeasures: both defined."""
    from tests.translators.test_safest import r4_delivery

    resources = r4_delivery()
    product = next(r for r in resources if r["resourceType"] == "MedicinalProduct")
    product["specialMeasures"] = ["Kjøleskap"]
    product["_specialMeasures"] = [{"extension": [{"url": "https://example.org/note", "valueString": "x"}]}]
    package = next(r for r in resources if r["resourceType"] == "MedicinalProductPackaged")
    package["packageItem"][0]["packageItem"][0]["quantity"] = {"value": 2.5}
    conversion = to_r5(resources)
    assert conversion.errors == []
    used = {u for resource in conversion.resources for u in _urls(resource) if u.startswith(OURS)}
    assert {
        f"{OURS}r4-MedicinalProduct._specialMeasures",
        f"{OURS}r4-MedicinalProductPackaged.packageItem.quantity",
    } <= used
    validator, report = Validator(r5), Report()
    for resource in conversion.resources:
        validator.validate(resource, "converted", report)
    assert [p.sentence() for p in report.problems] == []
    assert [k for k in report.not_checked if "grunndata.no" in k] == []


def test_the_built_package_from_a_cache_with_the_core_package_alone_validates_what_we_serve(
    fhir_packages: Path, tmp_path: Path
) -> None:
    """What a vendor does: install our package.tgz beside hl7.fhir.r5.core in a package cache and
    validate what we serve with those two only (no code of ours making definitions)."""
    from grunndata import __version__
    from grunndata.fhirpackage import NAME, build_tgz
    from grunndata.importers.safest import import_safest
    from grunndata.validation import install_tgz, load_definitions, validate_store
    from tests.validation.test_served import SAFEST_EXAMPLES

    install_tgz(build_tgz(), tmp_path, NAME, __version__)
    definitions = Definitions(load_definitions(fhir_packages) + load_definitions(tmp_path, NAME, __version__))
    engine = connect(f"sqlite:///{tmp_path / 'served.db'}")
    import_fest(engine, require(REAL_FEST))
    import_safest(engine, require(SAFEST_EXAMPLES), force=True)
    report = validate_store(definitions, engine)
    assert [p.sentence() for p in report.problems] == []
    assert report.resources == 724
    assert [k for k in report.not_checked if "grunndata.no" in k] == []
