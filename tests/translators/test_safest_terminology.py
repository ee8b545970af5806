"""SAFEST's terminology made R5: an R4 ConceptMap converted element by element, what R5 cannot hold
certainly refused, and CodeSystems and ValueSets (the same in R4 and R5) passed through."""

from __future__ import annotations

from typing import Any

from fhir.resources import get_fhir_model_class

from grunndata.translators.safest import EQUIVALENCE, to_r5
from grunndata.translators.safest.terminology import EQUIVALENCE_KEPT

R4_MAP: dict[str, Any] = {
    "resourceType": "ConceptMap",
    "id": "r4-map",
    "url": "urn:example:cm",
    "identifier": {"system": "urn:example:ids", "value": "1"},
    "status": "draft",
    "sourceCanonical": "urn:example:vs-a",
    "targetUri": "urn:example:vs-b",
    "group": [
        {
            "source": "urn:example:a",
            "sourceVersion": "2",
            "target": "urn:example:b",
            "element": [
                {"code": code, "target": [{"code": code.upper(), "equivalence": code}]}
                for code in ("relatedto", "subsumes", "narrower", "disjoint")
            ],
            "unmapped": {"mode": "provided"},
        },
        {
            "source": "urn:example:a",
            "element": [{"code": "z", "target": [{"code": "Z", "equivalence": "equivalent"}]}],
            "unmapped": {"mode": "other-map", "url": "urn:example:other"},
        },
    ],
}


def converted(resource: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[str, str, bool]]]:
    conversion = to_r5([resource])
    return conversion.resources, [(p.resource, p.message, p.warning) for p in conversion.problems]


def test_an_r4_concept_map_becomes_valid_r5() -> None:
    [cm], problems = converted(R4_MAP)
    assert problems == []
    get_fhir_model_class("ConceptMap").model_validate(cm)
    assert (cm["sourceScopeCanonical"], cm["targetScopeUri"]) == ("urn:example:vs-a", "urn:example:vs-b")
    assert cm["identifier"] == [{"system": "urn:example:ids", "value": "1"}]
    first, second = cm["group"]
    assert first["source"] == "urn:example:a|2" and "sourceVersion" not in first
    assert first["unmapped"] == {"mode": "use-source-code"}
    assert second["unmapped"] == {"mode": "other-map", "otherMap": "urn:example:other"}
    assert [e["target"] for e in first["element"]] == [
        [{"code": "RELATEDTO", "relationship": "related-to"}],
        [
            {
                "code": "SUBSUMES",
                "relationship": "source-is-narrower-than-target",
                "extension": [{"url": EQUIVALENCE_KEPT, "valueString": "subsumes"}],
            }
        ],
        [{"code": "NARROWER", "relationship": "source-is-broader-than-target"}],
        [{"code": "DISJOINT", "relationship": "not-related-to"}],
    ]


def test_every_r4_equivalence_has_its_r5_relationship() -> None:
    assert {k: v[0] for k, v in EQUIVALENCE.items()} == {
        "relatedto": "related-to",
        "equivalent": "equivalent",
        "equal": "equivalent",
        "wider": "source-is-narrower-than-target",
        "subsumes": "source-is-narrower-than-target",
        "narrower": "source-is-broader-than-target",
        "specializes": "source-is-broader-than-target",
        "inexact": "related-to",
        "unmatched": "not-related-to",
        "disjoint": "not-related-to",
    }


def test_what_r5_cannot_hold_certainly_is_refused_with_its_place() -> None:
    depends = {
        **R4_MAP,
        "group": [
            {
                "source": "urn:example:a",
                "element": [
                    {
                        "code": "x",
                        "target": [
                            {
                                "code": "y",
                                "equivalence": "equivalent",
                                "dependsOn": [{"property": "urn:example:p", "value": "1"}],
                            }
                        ],
                    }
                ],
            }
        ],
    }
    assert converted(depends) == (
        [],
        [
            (
                "ConceptMap/r4-map",
                "ConceptMap.group[0].element[0].target[0].dependsOn is in R4 form (property, system, value), "
                "whose R5 form (attribute, typed value) the map would have to declare; grunndata does not "
                "guess it; not converted",
                False,
            )
        ],
    )
    both = {
        **R4_MAP,
        "group": [
            {"element": [{"code": "x", "target": [{"equivalence": "equal", "relationship": "equivalent"}]}]}
        ],
    }
    assert converted(both)[1] == [
        (
            "ConceptMap/r4-map",
            "ConceptMap.group[0].element[0].target[0] gives both R4's equivalence and R5's relationship; not converted",
            False,
        )
    ]
    unknown = {
        **R4_MAP,
        "group": [{"element": [{"code": "x", "target": [{"code": "y", "equivalence": "same"}]}]}],
    }
    assert converted(unknown)[1] == [
        (
            "ConceptMap/r4-map",
            "ConceptMap.group[0].element[0].target[0].equivalence 'same' is not an R4 ConceptMap equivalence; "
            "not converted",
            False,
        )
    ]


def test_an_r5_concept_map_and_a_code_system_pass_as_they_are_but_for_empty_values() -> None:
    r5 = {
        "resourceType": "ConceptMap",
        "id": "r5-map",
        "status": "active",
        "group": [{"element": [{"code": "x", "target": [{"code": "y", "relationship": "equivalent"}]}]}],
    }
    assert converted(r5) == ([r5], [])
    code_system = {
        "resourceType": "CodeSystem",
        "id": "cs",
        "status": "draft",
        "content": "complete",
        "concept": [{"code": "1", "display": ""}],
    }
    assert converted(code_system) == (
        [{**code_system, "concept": [{"code": "1"}]}],
        [
            (
                "CodeSystem/cs",
                "CodeSystem.concept[0].display is empty; FHIR has no empty values, so it is left out",
                True,
            )
        ],
    )
