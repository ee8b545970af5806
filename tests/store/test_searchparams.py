"""Search parameters are data: the index rows they give for the official R5 examples, exactly."""

from __future__ import annotations

import json

from grunndata.fhir import SERVED_TYPES
from grunndata.store.searchparams import (
    SEARCH_PARAMS,
    SEARCHED_TYPES,
    SOURCES,
    STORE,
    IndexRow,
    index_rows,
    normalise,
    sources_of,
)
from tests.conftest import SHARED, require

EXAMPLES = SHARED / "data" / "fhir-r5-idmp-examples"


def example(name: str) -> dict:
    return json.loads(require(EXAMPLES / name).read_text())


def test_product_name_language_and_classification_are_indexed() -> None:
    rows = index_rows(example("MedicinalProductDefinition-example.json"))
    mpd = "MedicinalProductDefinition."
    assert IndexRow(mpd + "identifier", "http://ema.europa.eu/example/MPID", "{mpid}") in rows
    assert (
        IndexRow(
            mpd + "name", "", "equilidem 2.5 mg film-coated tablets", "Equilidem 2.5 mg film-coated tablets"
        )
        in rows
    )
    assert IndexRow(mpd + "name-language", "urn:ietf:bcp:47", "en") in rows
    atc = "http://ema.europa.eu/example/WHOAnatomicalTherapeuticChemicalATCClassificationSystem"
    assert IndexRow(mpd + "product-classification", atc, "B01AF02") in rows
    assert all(r.param.startswith(mpd) for r in rows)


def test_ingredient_substance_code_and_role() -> None:
    rows = index_rows(example("Ingredient-example.json"))
    assert (
        IndexRow("Ingredient.substance-code", "http://ema.europa.eu/example/substance", "Wizzohaler") in rows
    )
    assert IndexRow("Ingredient.role", "http://ema.europa.eu/example/ingredientRole", "ActiveBase") in rows


def test_references_keep_only_their_target_types() -> None:
    rows = index_rows(
        {
            "resourceType": "ClinicalUseDefinition",
            "id": "x",
            "type": "interaction",
            "subject": [
                {"reference": "MedicinalProductDefinition/a"},
                {"reference": "SubstanceDefinition/b"},
            ],
        }
    )
    refs = {(r.param, r.value) for r in rows if r.param.endswith(("subject", "product"))}
    assert refs == {
        ("ClinicalUseDefinition.subject", "MedicinalProductDefinition/a"),
        ("ClinicalUseDefinition.subject", "SubstanceDefinition/b"),
        ("ClinicalUseDefinition.product", "MedicinalProductDefinition/a"),
    }
    assert IndexRow("ClinicalUseDefinition.type", "", "interaction") in rows


def test_strings_are_searched_without_case_or_accents() -> None:
    assert normalise("  Paracet Ömega Løsning ") == "paracet omega løsning"  # ø is a letter, not ó
    assert normalise("PÅ") == "pa"


def test_every_parameter_names_a_searched_type_and_a_known_kind() -> None:
    for p in SEARCH_PARAMS:
        assert p.resource in (*SEARCHED_TYPES, "Resource"), p
        assert p.type in ("token", "string", "reference", "uri", "date"), p
        from_columns = p.resource == "Resource" or p.code == "tier"  # tier: as _tag
        assert bool(p.path) == (not from_columns), p
        assert p.type != "reference" or p.targets, p


def test_a_date_is_indexed_as_the_instants_it_covers() -> None:
    leaflet = {"resourceType": "Composition", "id": "x", "date": "2025-03-14", "title": "Pakningsvedlegg"}
    assert IndexRow("Composition.date", "", "2025-03-14T00:00:00.000000Z", "2025-03-15T00:00:00.000000Z") in (
        index_rows(leaflet)
    )
    edited = index_rows(leaflet | {"date": "2025-03-14T09:30:00+01:00"})
    assert (
        IndexRow("Composition.date", "", "2025-03-14T08:30:00.000000Z", "2025-03-14T08:30:01.000000Z")
        in edited
    )
    assert [r for r in index_rows(leaflet | {"date": "14.03.2025"}) if r.param == "Composition.date"] == []


def test_every_searched_type_has_parameters_and_a_source_and_the_store_types_are_stored() -> None:
    for rtype in SEARCHED_TYPES:
        assert any(p.resource == rtype for p in SEARCH_PARAMS), rtype
        assert (STORE in sources_of(rtype)) == (rtype in SERVED_TYPES), rtype
    assert set(SOURCES) == {"Organization", "Endpoint", "ConceptMap"}


def test_a_concept_maps_group_systems_are_indexed_as_canonical_urls() -> None:
    form = "urn:oid:2.16.578.1.12.4.1.1.7448"
    rows = index_rows(
        {
            "resourceType": "ConceptMap",
            "id": "m",
            "url": "https://grunndata.no/fhir/ConceptMap/m",
            "name": "Legemiddelform",
            "status": "active",
            "group": [{"source": form, "target": "http://standardterms.edqm.eu|2"}],
        }
    )
    assert rows == [
        IndexRow("ConceptMap.name", "", "legemiddelform", "Legemiddelform"),
        IndexRow("ConceptMap.source-group-system", "", form),
        IndexRow("ConceptMap.status", "", "active"),
        IndexRow("ConceptMap.target-group-system", "", "http://standardterms.edqm.eu"),
        IndexRow("ConceptMap.url", "", "https://grunndata.no/fhir/ConceptMap/m"),
    ]
