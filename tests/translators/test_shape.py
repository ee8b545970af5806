"""One shape for both sources: the codes added beside a source's own come from our reviewed map's
equivalent entries and the fixed pairs only, and can be told from what the source gave."""

from __future__ import annotations

import copy
from typing import Any

from grunndata.translators.shape import (
    DMP_MARKETING_STATUS,
    DOSE_FORM_MAP,
    EDQM_SYSTEMS,
    LEGEMIDDELFORM,
    PER_ONE,
    dose_form_pairs,
    one_shape,
    pairs_of,
    restated,
    strength_as_ratio,
    with_package_levels,
)

EDQM, MPD_NOMA = EDQM_SYSTEMS[0], "https://mpd.noma.no/codesystem/pharmaceutical-dose-form"
OURS = "https://grunndata.no/fhir/CodeSystem/fest-marketing-status"


def product(*codings: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "MedicinalProductDefinition",
        "combinedPharmaceuticalDoseForm": {"coding": list(codings)},
    }


def test_only_equivalent_one_to_one_entries_of_the_dose_form_map_pair_codes() -> None:
    forward, reverse = dose_form_pairs()
    assert forward["58"] == {"system": EDQM, "code": "10519000", "display": "Transdermal patch"}
    assert reverse["10519000"] == {"system": LEGEMIDDELFORM, "code": "58", "display": "Depotplaster"}
    assert "53" not in forward  # Tablett is broader than EDQM Tablet (film-coated, coated too)
    assert "136" not in forward  # Oppløsning: noMap
    assert "101" not in forward  # Injeksjonsvæske: broader
    assert all(reverse[edqm["code"]]["code"] == fest for fest, edqm in forward.items())  # one to one


def test_an_entry_marked_unverified_pairs_nothing() -> None:
    """The terminology's marks (property verified false: a stand-in FEST code) are heeded."""

    def element(code: str, verified: bool | None) -> dict[str, Any]:
        target: dict[str, Any] = {"code": f"E{code}", "relationship": "equivalent"}
        if verified is not None:
            target["property"] = [{"code": "verified", "valueBoolean": verified}]
        return {"code": code, "target": [target]}

    group = {
        "source": LEGEMIDDELFORM,
        "target": EDQM,
        "element": [element("1", True), element("2", False), element("3", None)],
    }
    forward, reverse = pairs_of([{"url": DOSE_FORM_MAP, "group": [group]}])
    assert sorted(forward) == ["1", "3"] and sorted(reverse) == ["E1", "E3"]


def test_a_fest_dose_form_gets_edqms_and_an_edqm_one_fests_each_once() -> None:
    fest = product({"system": LEGEMIDDELFORM, "code": "46", "display": "Salve"})
    one_shape(fest)
    one_shape(fest)  # twice is once
    assert fest["combinedPharmaceuticalDoseForm"]["coding"] == [
        {"system": LEGEMIDDELFORM, "code": "46", "display": "Salve"},
        {"system": EDQM, "code": "10504000", "display": "Ointment"},
    ]
    dmp = product({"system": MPD_NOMA, "code": "10504000"})
    one_shape(dmp)
    assert dmp["combinedPharmaceuticalDoseForm"]["coding"] == [
        {"system": MPD_NOMA, "code": "10504000"},
        {"system": EDQM, "code": "10504000"},
        {"system": LEGEMIDDELFORM, "code": "46", "display": "Salve"},
    ]
    broader = product({"system": LEGEMIDDELFORM, "code": "53"})
    one_shape(broader)
    assert broader["combinedPharmaceuticalDoseForm"]["coding"] == [{"system": LEGEMIDDELFORM, "code": "53"}]


def test_what_was_added_is_told_from_what_the_source_gave_by_its_place() -> None:
    dmp = product({"system": MPD_NOMA, "code": "10504000"})
    one_shape(dmp)
    assert restated(dmp["combinedPharmaceuticalDoseForm"]["coding"]) == {1, 2}
    fest = product({"system": LEGEMIDDELFORM, "code": "46"})
    one_shape(fest)
    assert restated(fest["combinedPharmaceuticalDoseForm"]["coding"]) == {1}


def test_marketing_statuses_and_name_parts_say_both_codes_and_unpaired_ones_stay_alone() -> None:
    package = {
        "resourceType": "PackagedProductDefinition",
        "marketingStatus": [
            {"status": {"coding": [{"system": OURS, "code": "midlertidig-utgatt"}]}},
            {"status": {"coding": [{"system": DMP_MARKETING_STATUS, "code": "0"}]}},
            {"status": {"coding": [{"system": OURS, "code": "avregistrert"}]}},
        ],
        "name": "not a product's name list: left alone",
    }
    before = copy.deepcopy(package)
    one_shape(package)
    statuses = [m["status"]["coding"] for m in package["marketingStatus"]]
    assert statuses == [
        [
            {"system": OURS, "code": "midlertidig-utgatt"},
            {"system": DMP_MARKETING_STATUS, "code": "6", "display": "Temporarily unavailable"},
        ],
        before["marketingStatus"][1]["status"]["coding"],
        before["marketingStatus"][2]["status"]["coding"],
    ]
    named = {
        "resourceType": "MedicinalProductDefinition",
        "name": [{"productName": "X", "part": [{"part": "X", "type": {"text": "no coding"}}]}],
    }
    one_shape(named)
    assert named["name"][0]["part"][0]["type"] == {"text": "no coding"}


def test_a_strength_per_unit_becomes_a_ratio_over_one_and_fests_units_get_ucum_beside_them() -> None:
    strength: dict[str, Any] = {"presentationQuantity": {"value": 8, "unit": "mg"}}
    strength_as_ratio(strength)
    assert strength == {
        "presentationRatio": {
            "numerator": {"value": 8, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
            "denominator": PER_ONE,
        }
    }
    odd: dict[str, Any] = {"presentationQuantity": {"value": 720, "unit": "ELISA E"}}
    strength_as_ratio(odd)
    assert odd["presentationRatio"]["numerator"] == {"value": 720, "unit": "ELISA E"}  # no certain UCUM unit
    kept_apart: dict[str, Any] = {
        "extension": [{"url": "https://grunndata.no/fhir/StructureDefinition/fest-StyrkeNevner"}],
        "presentationQuantity": {"value": 1, "unit": "mg"},
    }
    strength_as_ratio(kept_apart)  # FEST's denominator is kept in an extension: no ratio over one
    assert "presentationQuantity" in kept_apart


# --- package levels ----------------------------------------------------------------------------------

LEVELS = "http://legemiddelverket.no/fhir/CodeSystem/PackageLevel"
ITEM = {"item": {"reference": {"reference": "ManufacturedItemDefinition/x"}}}


def stated(level: dict[str, Any]) -> list[str]:
    return [
        c["code"]
        for p in level.get("property", [])
        for c in p.get("valueCodeableConcept", {}).get("coding", [])
        if c["system"] == LEVELS
    ]


def test_levels_count_from_the_items_outwards() -> None:
    box = {
        "type": {"text": "Eske"},
        "packaging": [{"packaging": [{"containedItem": [ITEM]}]}, {"containedItem": [ITEM]}],
    }
    assert with_package_levels(box) == 3
    assert stated(box) == ["3"]
    assert [stated(level) for level in box["packaging"]] == [["2"], ["1"]]
    assert stated(box["packaging"][0]["packaging"][0]) == ["1"]


def test_a_level_holding_nothing_known_and_the_levels_around_it_say_no_level() -> None:
    box = {"type": {"text": "Eske"}, "packaging": [{"type": {"text": "Flaske"}}, {"containedItem": [ITEM]}]}
    assert with_package_levels(box) == 0
    assert "property" not in box and "property" not in box["packaging"][0]
    assert stated(box["packaging"][1]) == ["1"]


def test_the_one_outer_wrapper_r5_needs_around_several_packages_says_no_level() -> None:
    wrapper = {"packaging": [{"containedItem": [ITEM]}, {"containedItem": [ITEM]}]}
    assert with_package_levels(wrapper) == 2
    assert "property" not in wrapper
    assert [stated(level) for level in wrapper["packaging"]] == [["1"], ["1"]]


def test_a_level_the_source_states_is_kept_and_levels_beyond_four_are_not_named() -> None:
    given = {"system": LEVELS, "code": "2", "display": "Secondary"}
    kind = {"system": "https://grunndata.no/fhir/CodeSystem/packaging-property", "code": "package-level"}
    level = {
        "containedItem": [ITEM],
        "property": [{"type": {"coding": [kind]}, "valueCodeableConcept": {"coding": [given]}}],
    }
    with_package_levels(level)
    assert stated(level) == ["2"]  # as sent, not recounted
    deep: dict[str, Any] = {"containedItem": [ITEM]}
    for _ in range(4):
        deep = {"type": {"text": "Eske"}, "packaging": [deep]}
    assert with_package_levels(deep) == 5
    assert stated(deep) == [] and stated(deep["packaging"][0]) == ["4"]
