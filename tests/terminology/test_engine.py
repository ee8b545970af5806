"""$translate, $lookup, $validate-code and $expand answer exactly, on the official R5 example maps,
our FEST -> EDQM/UCUM maps and FEST-shaped code systems; every answer is valid R5."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources import get_fhir_model_class

from grunndata.terminology import (
    CannotExpand,
    CodeSystemIndex,
    Coding,
    ConceptMapIndex,
    Match,
    Replacement,
    replace_ours,
    translate_parameters,
    version_order,
)
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
R5_EXAMPLES = ROOT.parent / "shared" / "data" / "fhir-r5-idmp-examples"
FEST_MAPS = ROOT / "grunndata" / "terminology" / "conceptmaps"

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ADDRESS_USE = "http://hl7.org/fhir/address-use"
V3_ADDRESS_USE = "http://terminology.hl7.org/CodeSystem/v3-AddressUse"
V2_0487 = "http://terminology.hl7.org/CodeSystem/v2-0487"
MAP_101 = "http://hl7.org/fhir/ConceptMap/101|5.0.0"
MAP_102 = "http://hl7.org/fhir/ConceptMap/102|5.0.0"
MAP_103 = "http://hl7.org/fhir/ConceptMap/103|5.0.0"

LEGEMIDDELFORM = "urn:oid:2.16.578.1.12.4.1.1.7448"  # FEST dose form (legemiddelform)
EDQM = "http://standardterms.edqm.eu"
DOSE_FORM_MAP = "https://grunndata.no/fhir/ConceptMap/fest-legemiddelform-edqm-doseform|2"
ATC = "http://www.whocc.no/atc"
BROADER = "source-is-broader-than-target"


def valid(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource, after fhir.resources R5 has accepted it."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


@pytest.fixture(scope="module")
def examples() -> ConceptMapIndex:
    files = sorted(require(R5_EXAMPLES).glob("ConceptMap-*.json"))
    return ConceptMapIndex(json.loads(f.read_text(encoding="utf-8")) for f in files)


@pytest.fixture(scope="module")
def fest_maps() -> ConceptMapIndex:
    files = sorted(FEST_MAPS.glob("*.json"))
    assert len(files) == 5
    return ConceptMapIndex(json.loads(f.read_text(encoding="utf-8")) for f in files)


# --- $translate on the official R5 examples ---------------------------------------------------------


def test_a_snomed_fracture_maps_to_both_icd10cm_encounter_codes(examples):
    matches, message = examples.translate("263204007", SNOMED)
    assert message is None
    assert [(m.relationship, m.concept, m.origin_map) for m in matches] == [
        (BROADER, Coding(ICD10CM, "S52.209A"), MAP_103),
        (BROADER, Coding(ICD10CM, "S52.209D"), MAP_103),
    ]
    assert matches[0].comment is not None
    assert matches[0].comment.startswith("The target mapping to ICD-10-CM is 'source-is-broader-than-target'")


def test_address_use_home_is_v3_h(examples):
    assert examples.translate("home", ADDRESS_USE) == (
        [Match("equivalent", Coding(V3_ADDRESS_USE, "H", "home address"), MAP_101)],
        None,
    )


def test_a_code_the_address_map_does_not_list_gets_its_fixed_unmapped_code(examples):
    assert examples.translate("billing", ADDRESS_USE) == (
        [Match("related-to", Coding(V3_ADDRESS_USE, "temp", "temp"), MAP_101)],
        None,
    )


def test_unmapped_rules_need_the_source_system(examples):
    assert examples.translate("billing", None) == ([], "no map knows code 'billing'")


def test_v3_h_translates_back_to_home(examples):
    assert examples.translate("H", V3_ADDRESS_USE, reverse=True) == (
        [Match("equivalent", Coding(ADDRESS_USE, "home", "Home"), MAP_101)],
        None,
    )


def test_a_reverse_translation_keeps_the_maps_own_relationship(examples):
    matches, _ = examples.translate("S52.209D", ICD10CM, reverse=True)
    assert [(m.relationship, m.concept) for m in matches] == [(BROADER, Coding(SNOMED, "263204007"))]


def test_a_specimen_with_three_elements_gives_three_snomed_matches_and_only_for_snomed(examples):
    expected = [
        Match("equivalent", Coding(SNOMED, "119401005"), MAP_102),
        Match("equivalent", Coding(SNOMED, "128160006"), MAP_102),
        Match("equivalent", Coding(SNOMED, "258498002"), MAP_102),
    ]
    assert examples.translate("CNJT", V2_0487, target_system=SNOMED) == (expected, None)
    assert examples.translate("CNJT", V2_0487, target_system="http://loinc.org") == (
        [],
        f"no map knows code 'CNJT' of system '{V2_0487}' with target system 'http://loinc.org'",
    )


def test_a_no_map_specimen_says_so(examples):
    assert examples.translate("ASERU", V2_0487) == (
        [],
        f"'ASERU' is in ConceptMap {MAP_102} but explicitly not mapped (noMap)",
    )


def test_a_code_both_mapped_and_no_map_keeps_its_mapping(examples):
    matches, message = examples.translate("CSITE", V2_0487)
    assert [m.concept for m in matches] == [Coding(SNOMED, "258507003")]
    assert message is None


def test_unknown_codes_and_systems_find_nothing_and_say_why(examples):
    assert examples.translate("999999", SNOMED) == ([], f"no map knows code '999999' of system '{SNOMED}'")
    assert examples.translate("home", "http://example.org/nowhere") == (
        [],
        "no map knows code 'home' of system 'http://example.org/nowhere'",
    )
    assert examples.translate("nowhere", ICD10CM, reverse=True) == (
        [],
        f"no map has code 'nowhere' of system '{ICD10CM}' as a target",
    )


def test_a_url_restricts_the_translation_to_that_map(examples):
    home = examples.translate("home", None, url="http://hl7.org/fhir/ConceptMap/101")
    assert [m.concept.code for m in home[0]] == ["H"]
    assert examples.translate("home", None, url=MAP_102) == (
        [],
        f"no map with url '{MAP_102}' knows code 'home'",
    )
    assert examples.translate("home", None, url="http://example.org/ConceptMap/none") == (
        [],
        "no ConceptMap has url 'http://example.org/ConceptMap/none'",
    )


def test_an_other_map_that_is_not_offered_gives_nothing(examples):
    assert examples.translate("elsewhere", "http://example.org/fhir/example1") == (
        [],
        "'elsewhere' is not in ConceptMap http://hl7.org/fhir/ConceptMap/example2|5.0.0, "
        "and its other map http://example.org/fhir/ConceptMap/map2 is not known",
    )


def test_maps_are_offered_as_given_and_found_by_url(examples):
    assert [m["id"] for m in examples.maps] == ["101", "102", "103", "example2"]
    assert examples.find("http://hl7.org/fhir/ConceptMap/103|5.0.0") is examples.maps[2]
    assert examples.find("http://hl7.org/fhir/ConceptMap/104") is None


# --- $translate on our FEST maps --------------------------------------------------------------------


def test_fest_tablett_maps_to_the_three_edqm_tablets(fest_maps):
    matches, message = fest_maps.translate("53", LEGEMIDDELFORM)
    assert message is None
    assert [(m.relationship, m.concept, m.origin_map) for m in matches] == [
        (BROADER, Coding(EDQM, "10219000", "Tablet"), DOSE_FORM_MAP),
        (BROADER, Coding(EDQM, "10221000", "Film-coated tablet"), DOSE_FORM_MAP),
        (BROADER, Coding(EDQM, "10220000", "Coated tablet"), DOSE_FORM_MAP),
    ]
    assert (
        matches[1].comment
        == "EDQM Norwegian 'Tablett, filmdrasjert'; seen as LegemiddelformLang under FEST 53"
    )


def test_fest_opplosning_is_explicitly_not_mapped(fest_maps):
    assert fest_maps.translate("136", LEGEMIDDELFORM) == (
        [],
        f"'136' is in ConceptMap {DOSE_FORM_MAP} but explicitly not mapped (noMap)",
    )


def test_edqm_prolonged_release_tablet_translates_back_to_fest_depottablett(fest_maps):
    assert fest_maps.translate("10226000", EDQM, reverse=True, target_system=LEGEMIDDELFORM) == (
        [
            Match(
                "equivalent",
                Coding(LEGEMIDDELFORM, "25", "Depottablett"),
                DOSE_FORM_MAP,
                "EDQM's own Norwegian term is 'Depottablett'",
                verified=True,
            )
        ],
        None,
    )


def test_translate_parameters_are_the_r5_answer(fest_maps):
    answer = valid(translate_parameters(*fest_maps.translate("25", LEGEMIDDELFORM)))
    assert answer == {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "result", "valueBoolean": True},
            {
                "name": "match",
                "part": [
                    {"name": "relationship", "valueCode": "equivalent"},
                    {
                        "name": "concept",
                        "valueCoding": {
                            "system": EDQM,
                            "code": "10226000",
                            "display": "Prolonged-release tablet",
                        },
                    },
                    {
                        "name": "property",
                        "part": [
                            {
                                "name": "uri",
                                "valueUri": "https://grunndata.no/fhir/conceptmap-property/verified",
                            },
                            {"name": "value", "valueBoolean": True},
                        ],
                    },
                    {"name": "originMap", "valueCanonical": DOSE_FORM_MAP},
                    {"name": "message", "valueString": "EDQM's own Norwegian term is 'Depottablett'"},
                ],
            },
        ],
    }


def test_translate_parameters_without_a_match_carry_the_message(fest_maps):
    answer = valid(translate_parameters(*fest_maps.translate("136", LEGEMIDDELFORM)))
    assert answer["parameter"] == [
        {"name": "result", "valueBoolean": False},
        {
            "name": "message",
            "valueString": f"'136' is in ConceptMap {DOSE_FORM_MAP} but explicitly not mapped (noMap)",
        },
    ]


def test_only_not_related_matches_are_a_false_result(examples):
    matches, message = examples.translate("old", ADDRESS_USE)
    answer = valid(translate_parameters(matches, message))
    assert [m.relationship for m in matches] == ["not-related-to"]
    assert answer["parameter"][0] == {"name": "result", "valueBoolean": False}
    assert answer["parameter"][1]["part"][1] == {
        "name": "concept",
        "valueCoding": {"system": V3_ADDRESS_USE, "code": "BAD", "display": "bad address"},
    }


# --- unmapped rules and scale, on small built maps --------------------------------------------------


def conceptmap(
    url: str, source: str, target: str, elements: list[Any], unmapped: Any = None
) -> dict[str, Any]:
    group: dict[str, Any] = {"source": source, "target": target, "element": elements}
    if unmapped:
        group["unmapped"] = unmapped
    return {"resourceType": "ConceptMap", "url": url, "status": "active", "group": [group]}


def element(code: str, target: str, relationship: str = "equivalent") -> dict[str, Any]:
    return {"code": code, "target": [{"code": target, "relationship": relationship}]}


def test_use_source_code_and_other_map_rules():
    first = conceptmap(
        "http://example.org/cm/a",
        "urn:s",
        "urn:t",
        [element("1", "one")],
        {"mode": "other-map", "otherMap": "http://example.org/cm/b|2"},
    )
    second = conceptmap(
        "http://example.org/cm/b", "urn:s", "urn:t", [element("2", "two")], {"mode": "use-source-code"}
    )
    index = ConceptMapIndex([first, second])
    assert index.translate("2", "urn:s", url="http://example.org/cm/a") == (
        [Match("equivalent", Coding("urn:t", "two"), "http://example.org/cm/b")],
        None,
    )
    assert index.translate("3", "urn:s", url="http://example.org/cm/a") == (
        [Match("equivalent", Coding("urn:t", "3"), "http://example.org/cm/b")],
        None,
    )


def test_other_maps_that_point_at_each_other_stop():
    first = conceptmap(
        "urn:cm:a", "urn:s", "urn:t", [element("1", "one")], {"mode": "other-map", "otherMap": "urn:cm:b"}
    )
    second = conceptmap(
        "urn:cm:b", "urn:s", "urn:t", [element("2", "two")], {"mode": "other-map", "otherMap": "urn:cm:a"}
    )
    index = ConceptMapIndex([first, second])
    assert index.translate("3", "urn:s", url="urn:cm:a") == (
        [],
        "'3' is not in ConceptMap urn:cm:b, whose other map urn:cm:a loops back",
    )


def test_duplicate_targets_are_given_once():
    twice = conceptmap("urn:cm:twice", "urn:s", "urn:t", [element("1", "one"), element("1", "one")])
    assert ConceptMapIndex([twice]).translate("1", "urn:s")[0] == [
        Match("equivalent", Coding("urn:t", "one"), "urn:cm:twice")
    ]


def test_a_map_of_fifty_thousand_elements_finds_its_code():
    elements = [element(f"c{i}", f"t{i}") for i in range(50_000)]
    big = conceptmap("urn:cm:big", "urn:s", "urn:t", elements)
    index = ConceptMapIndex([big])
    assert index.translate("c31337", "urn:s") == (
        [Match("equivalent", Coding("urn:t", "t31337"), "urn:cm:big")],
        None,
    )
    assert index.translate("t49999", "urn:t", reverse=True) == (
        [Match("equivalent", Coding("urn:s", "c49999"), "urn:cm:big")],
        None,
    )


# --- CodeSystems: $lookup, $validate-code, $expand --------------------------------------------------

LEGEMIDDELFORM_CS: dict[str, Any] = {
    "resourceType": "CodeSystem",
    "id": "2.16.578.1.12.4.1.1.7448",
    "url": LEGEMIDDELFORM,
    "name": "Legemiddelform",
    "title": "Legemiddelform",
    "status": "active",
    "content": "complete",
    "count": 3,
    "concept": [
        {"id": "ID_7B83", "code": "53", "display": "Tablett", "designation": [{"value": "Tablett"}]},
        {
            "id": "ID_B38E",
            "code": "28",
            "display": "Enterotablett",
            "designation": [{"value": "Enterotablett"}],
        },
        {
            "id": "ID_05B5",
            "code": "25",
            "display": "Depottablett",
            "designation": [{"value": "Depottablett"}],
        },
    ],
}

ATC_CS: dict[str, Any] = {
    "resourceType": "CodeSystem",
    "url": ATC,
    "version": "2024",
    "name": "ATC",
    "status": "active",
    "content": "complete",
    "date": "2024-01-01",
    "property": [{"code": "parent", "uri": "http://hl7.org/fhir/concept-properties#parent", "type": "code"}],
    "concept": [
        {"code": "A", "display": "Alimentary tract and metabolism"},
        {
            "code": "A02",
            "display": "Drugs for acid related disorders",
            "designation": [
                {
                    "language": "nb",
                    "use": {"system": SNOMED, "code": "900000000000013009", "display": "Synonym"},
                    "value": "Midler mot syrerelaterte lidelser",
                }
            ],
            "property": [{"code": "parent", "valueCode": "A"}],
        },
        {
            "code": "A02B",
            "display": "Drugs for peptic ulcer and GORD",
            "property": [{"code": "parent", "valueCode": "A02"}],
        },
    ],
}


@pytest.fixture(scope="module")
def code_systems() -> CodeSystemIndex:
    return CodeSystemIndex([LEGEMIDDELFORM_CS, ATC_CS])


def prop(code: str, value: str) -> dict[str, Any]:
    return {
        "name": "property",
        "part": [{"name": "code", "valueCode": code}, {"name": "value", "valueCode": value}],
    }


def test_looking_up_a_fest_dose_form(code_systems):
    assert code_systems.get(LEGEMIDDELFORM) is LEGEMIDDELFORM_CS
    assert valid(code_systems.lookup(LEGEMIDDELFORM, "25")) == {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "name", "valueString": "Legemiddelform"},
            {"name": "display", "valueString": "Depottablett"},
            {"name": "designation", "part": [{"name": "value", "valueString": "Depottablett"}]},
        ],
    }


def test_looking_up_an_atc_group_gives_its_parent_and_children(code_systems):
    assert valid(code_systems.lookup(ATC, "A02")) == {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "name", "valueString": "ATC"},
            {"name": "version", "valueString": "2024"},
            {"name": "display", "valueString": "Drugs for acid related disorders"},
            {
                "name": "designation",
                "part": [
                    {"name": "language", "valueCode": "nb"},
                    {
                        "name": "use",
                        "valueCoding": {"system": SNOMED, "code": "900000000000013009", "display": "Synonym"},
                    },
                    {"name": "value", "valueString": "Midler mot syrerelaterte lidelser"},
                ],
            },
            prop("parent", "A"),
            prop("child", "A02B"),
        ],
    }
    assert code_systems.lookup(ATC, "A")["parameter"][-1] == prop("child", "A02")
    assert [p["name"] for p in code_systems.lookup(ATC, "A02B")["parameter"]] == [
        "name",
        "version",
        "display",
        "property",
    ]


def test_unknown_lookups_are_none(code_systems):
    assert code_systems.lookup(ATC, "a02") is None
    assert code_systems.lookup("urn:oid:0.0", "25") is None


def test_nested_concepts_are_found_and_know_their_parents():
    nested = {
        "resourceType": "CodeSystem",
        "url": "urn:example:nested",
        "name": "Nested",
        "status": "active",
        "content": "complete",
        "caseSensitive": False,
        "concept": [
            {"code": "A", "display": "Top", "concept": [{"code": "A1", "display": "Inner"}]},
            {"code": "B"},
        ],
    }
    index = CodeSystemIndex([nested])
    assert valid(index.lookup("urn:example:nested", "a1")) == {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "name", "valueString": "Nested"},
            {"name": "display", "valueString": "Inner"},
            prop("parent", "A"),
        ],
    }
    assert index.lookup("urn:example:nested", "A")["parameter"][-1] == prop("child", "A1")
    assert [c["code"] for c in index.expand("urn:example:nested")["expansion"]["contains"]] == [
        "A",
        "A1",
        "B",
    ]


def test_validating_codes_and_displays(code_systems):
    assert valid(code_systems.validate_code(LEGEMIDDELFORM, "53")) == {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "result", "valueBoolean": True},
            {"name": "display", "valueString": "Tablett"},
        ],
    }
    designation = code_systems.validate_code(ATC, "A02", "Midler mot syrerelaterte lidelser")
    assert designation["parameter"][0] == {"name": "result", "valueBoolean": True}
    assert valid(code_systems.validate_code(LEGEMIDDELFORM, "53", "Kapsel")) == {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "result", "valueBoolean": False},
            {
                "name": "message",
                "valueString": "the display 'Kapsel' is not the display of code '53' ('Tablett')",
            },
            {"name": "display", "valueString": "Tablett"},
        ],
    }


def test_validating_unknown_codes_and_systems(code_systems):
    assert valid(code_systems.validate_code(LEGEMIDDELFORM, "999"))["parameter"] == [
        {"name": "result", "valueBoolean": False},
        {"name": "message", "valueString": f"code '999' is not in code system '{LEGEMIDDELFORM}'"},
    ]
    assert valid(code_systems.validate_code("urn:oid:0.0", "53"))["parameter"] == [
        {"name": "result", "valueBoolean": False},
        {"name": "message", "valueString": "the code system 'urn:oid:0.0' is not known to this server"},
    ]


def test_expanding_all_fest_dose_forms(code_systems):
    expansion = valid(code_systems.expand(LEGEMIDDELFORM))
    identifier = expansion["expansion"].pop("identifier")
    assert identifier.startswith("urn:uuid:")
    assert identifier == code_systems.expand(LEGEMIDDELFORM)["expansion"]["identifier"]
    assert expansion == {
        "resourceType": "ValueSet",
        "status": "active",
        "url": LEGEMIDDELFORM,
        "expansion": {
            "timestamp": "1970-01-01T00:00:00Z",
            "total": 3,
            "offset": 0,
            "parameter": [{"name": "offset", "valueInteger": 0}],
            "contains": [
                {"system": LEGEMIDDELFORM, "code": "53", "display": "Tablett"},
                {"system": LEGEMIDDELFORM, "code": "28", "display": "Enterotablett"},
                {"system": LEGEMIDDELFORM, "code": "25", "display": "Depottablett"},
            ],
        },
    }


def test_filtering_depot_finds_only_depottablett(code_systems):
    expansion = valid(code_systems.expand(LEGEMIDDELFORM, filter="depot"))["expansion"]
    assert expansion["total"] == 1
    assert expansion["parameter"] == [
        {"name": "filter", "valueString": "depot"},
        {"name": "offset", "valueInteger": 0},
    ]
    assert expansion["contains"] == [{"system": LEGEMIDDELFORM, "code": "25", "display": "Depottablett"}]
    assert [c["code"] for c in code_systems.expand(ATC, filter="drugs ulc")["expansion"]["contains"]] == [
        "A02B"
    ]
    assert [c["code"] for c in code_systems.expand(ATC, filter="a02")["expansion"]["contains"]] == [
        "A02",
        "A02B",
    ]


def test_paging_an_expansion(code_systems):
    page = valid(code_systems.expand(LEGEMIDDELFORM, offset=1, count=1))["expansion"]
    assert (page["total"], page["offset"]) == (3, 1)
    assert page["parameter"] == [{"name": "offset", "valueInteger": 1}, {"name": "count", "valueInteger": 1}]
    assert page["contains"] == [{"system": LEGEMIDDELFORM, "code": "28", "display": "Enterotablett"}]
    assert page["identifier"] != code_systems.expand(LEGEMIDDELFORM)["expansion"]["identifier"]
    empty = valid(code_systems.expand(LEGEMIDDELFORM, offset=3))["expansion"]
    assert (empty["total"], "contains" in empty) == (3, False)
    assert valid(code_systems.expand(ATC, count=0))["expansion"]["timestamp"] == "2024-01-01"


def test_expanding_an_unknown_code_system_is_none(code_systems):
    assert code_systems.expand("urn:oid:0.0") is None


# --- versions, replacement, ValueSets ---------------------------------------------------------------


def versioned(resource: dict[str, Any], version: str | None, rid: str) -> dict[str, Any]:
    out = {**resource, "id": rid}
    if version is not None:
        out["version"] = version
    return out


def test_every_version_of_a_map_is_kept_and_a_bare_url_gets_the_newest():
    maps = [
        versioned(conceptmap("urn:cm:v", "urn:s", "urn:t", [element("1", "old")]), version, f"v{n}")
        for n, version in enumerate(["1.9.0", "1.10.0", None, "1.2.0"])
    ]
    index = ConceptMapIndex(maps)
    newest = [Match("equivalent", Coding("urn:t", "old"), "urn:cm:v|1.10.0")]
    assert index.translate("1", "urn:s") == (newest, None)  # no url: only the newest of each map answers
    assert index.translate("1", "urn:s", url="urn:cm:v") == (newest, None)
    assert index.translate("1", "urn:s", url="urn:cm:v|1.2.0")[0] == [
        Match("equivalent", Coding("urn:t", "old"), "urn:cm:v|1.2.0")
    ]
    assert index.find("urn:cm:v")["id"] == "v1"
    assert index.find("urn:cm:v|1.9.0")["id"] == "v0"
    assert index.find("urn:cm:v|3") is None
    assert [
        version_order(v) < version_order(w)
        for v, w in [(None, "0"), ("2", "10"), ("2024-01-31", "2024-02-01")]
    ] == [True, True, True]


def test_a_code_system_of_another_version_is_kept_and_found_by_it():
    v2 = {**LEGEMIDDELFORM_CS, "version": "2", "concept": [{"code": "53", "display": "Tablett, ny"}]}
    index = CodeSystemIndex([LEGEMIDDELFORM_CS, v2])
    display = lambda answer: [p["valueString"] for p in answer["parameter"] if p["name"] == "display"]  # noqa: E731
    assert display(index.lookup(LEGEMIDDELFORM, "53")) == ["Tablett, ny"]  # the newest: 2 over none
    assert display(index.lookup(LEGEMIDDELFORM, "28", "2") or {"parameter": []}) == []
    assert index.lookup(LEGEMIDDELFORM, "28", "2") is None
    assert index.validate_code(f"{LEGEMIDDELFORM}|2", "53")["parameter"][0] == {
        "name": "result",
        "valueBoolean": True,
    }


def test_what_is_delivered_replaces_ours_of_the_same_url_and_version_only():
    ours = [
        versioned(conceptmap("urn:cm:ours", "urn:s", "urn:t", []), "1", "ours"),
        versioned(conceptmap("urn:cm:kept", "urn:s", "urn:t", []), "1", "kept"),
    ]
    theirs = [
        versioned(conceptmap("urn:cm:ours", "urn:s", "urn:t", []), "1", "theirs"),
        versioned(conceptmap("urn:cm:kept", "urn:s", "urn:t", []), "2", "newer"),
    ]
    served, replaced = replace_ours(ours, theirs)
    assert [m["id"] for m in served] == ["theirs", "kept", "newer"]
    assert replaced == [Replacement("urn:cm:ours|1", "ConceptMap/theirs", "ConceptMap/ours")]


def test_a_value_set_expands_by_its_compose_and_refuses_what_it_cannot():
    value_set = {
        "resourceType": "ValueSet",
        "url": "urn:vs:forms",
        "status": "active",
        "compose": {
            "include": [
                {"valueSet": [LEGEMIDDELFORM]},
                {"system": ATC, "concept": [{"code": "A02", "display": "Syre"}]},
            ],
            "exclude": [{"system": LEGEMIDDELFORM, "concept": [{"code": "28"}]}],
        },
    }
    index = CodeSystemIndex([LEGEMIDDELFORM_CS, ATC_CS], [value_set])
    expansion = valid(index.expand("urn:vs:forms"))["expansion"]
    assert [(c["code"], c.get("display")) for c in expansion["contains"]] == [
        ("53", "Tablett"),
        ("25", "Depottablett"),
        ("A02", "Syre"),
    ]
    refusals = {
        "filter": {
            "include": [{"system": ATC, "filter": [{"property": "concept", "op": "is-a", "value": "A"}]}]
        },
        "unknown": {"include": [{"system": "urn:oid:0.0"}]},
        "absent code": {"include": [{"system": ATC, "concept": [{"code": "Z99"}]}]},
        "loop": {"include": [{"valueSet": ["urn:vs:bad"]}]},
    }
    messages = {}
    for name, compose in refusals.items():
        bad = CodeSystemIndex(
            [ATC_CS],
            [{"resourceType": "ValueSet", "url": "urn:vs:bad", "status": "active", "compose": compose}],
        )
        with pytest.raises(CannotExpand) as refused:
            bad.expand("urn:vs:bad")
        messages[name] = str(refused.value)
    assert messages == {
        "filter": "ValueSet urn:vs:bad compose.include[0] selects codes by filter, which this server does not expand",
        "unknown": "ValueSet urn:vs:bad compose.include[0] names code system urn:oid:0.0, which this server does not have",
        "absent code": f"ValueSet urn:vs:bad compose.include[0].concept[0] code 'Z99' is not in code system {ATC}|2024",
        "loop": "ValueSet urn:vs:bad includes itself through compose.include.valueSet",
    }
