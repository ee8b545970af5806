"""Every entry of the ConceptMaps we make says whether it is verified, and says it truly: verified
exactly when the real FEST extract (or the reference list of codes seen in real data) has the code
with its display. `$translate` says so for an unverified code, not for a verified one. The issue-20
changes: FEST 8/55 Boks only related to EDQM Box, counted units to EDQM units of presentation, 101
with the emulsion target."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from fhir.resources import get_fhir_model_class
from lxml import etree

from grunndata.fhir import systems as s
from grunndata.terminology import (
    ConceptMapIndex,
    concept_map_files,
    id_maps,
    observed_maps,
    translate_parameters,
)
from grunndata.terminology.engine import UNVERIFIED_NO_MAP, unverified_note
from grunndata.terminology.verification import (
    EXT_VERIFIED,
    PROPERTY_VERIFIED,
    entries,
    evidence,
    mark,
    mark_no_map,
    target_verified,
    unmarked,
)
from grunndata.translators.idmp_to_fest import fest_codes
from tests.conftest import REAL_FEST, require

VOLVEN = "urn:oid:2.16.578.1.12.4.1.1."
FORM, ROUTE, PACK_TYPE, PACK_UNIT, DOSE_UNIT = (VOLVEN + c for c in ("7448", "7477", "7449", "7452", "7480"))
EDQM = "http://standardterms.edqm.eu"
UCUM = "http://unitsofmeasure.org"
MAPS = "https://grunndata.no/fhir/ConceptMap/"
DOSE_FORM_MAP = MAPS + "fest-legemiddelform-edqm-doseform|2"
DOSE_UNIT_MAP = MAPS + "fest-enhet-dosering-ucum|2"
BROADER = "source-is-broader-than-target"

STAND_INS = {  # SOURCES.md: the codes of the sample generator not in the 2017 extract (120 is in the reference)
    FORM: {"28", "51", "60", "57", "13", "56", "438", "40", "92", "73", "103", "104", "71", "59"},
    ROUTE: {"54", "46", "48", "61", "9"},
    PACK_TYPE: {"3", "72", "110", "115"},
    PACK_UNIT: {"dose"},
    DOSE_UNIT: {"14", "5", "4", "22", "20"},
}


@pytest.fixture(scope="module")
def in_extract() -> set[tuple[str, str, str]]:
    """(system, code, display) of every coded value of the five code systems in the real extract."""
    seen = set()
    with gzip.open(require(REAL_FEST)) as f:
        for _, el in etree.iterparse(f):
            system = el.get("S")
            if system and system.rsplit(".", 1)[-1] in ("7448", "7449", "7477", "7452", "7480"):
                seen.add(("urn:oid:" + system, el.get("V"), el.get("DN")))
    return seen


@pytest.fixture(scope="module")
def fest_maps() -> ConceptMapIndex:
    return ConceptMapIndex(concept_map_files())


def by_id() -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in concept_map_files()}


def test_every_entry_of_the_reviewed_maps_is_marked_and_the_maps_stay_valid_r5() -> None:
    maps = concept_map_files()
    assert len(maps) == 5
    for conceptmap in maps:
        get_fhir_model_class("ConceptMap").model_validate(conceptmap)
        assert unmarked(conceptmap) == [], conceptmap["id"]
        assert [p["uri"] for p in conceptmap["property"]] == [
            PROPERTY_VERIFIED,
            "https://grunndata.no/fhir/conceptmap-property/evidence",
        ]
    counts = {m["id"]: (len(list(entries(m))), sum(e[3] is False for e in entries(m))) for m in maps}
    assert counts == {  # (entries, unverified entries)
        "fest-administrasjonsvei-edqm-route": (14, 5),
        "fest-enhet-dosering-ucum": (26, 11),
        "fest-enhet-pakning-ucum": (6, 1),
        "fest-legemiddelform-edqm-doseform": (70, 30),
        "fest-pakningstype-edqm-container": (25, 4),
    }


def test_verified_is_exactly_what_the_real_extract_or_the_reference_list_confirms(
    in_extract: set[tuple[str, str, str]],
) -> None:
    reference = {
        (PACK_TYPE, "120", "Flaske av mørkt glass")
    }  # shared/reference/fest-m30.md, real FAR/CPP data
    unverified: dict[str, set[str]] = {}
    for conceptmap in concept_map_files():
        for group in conceptmap["group"]:
            for element in group["element"]:
                known = (group["source"], element["code"], element["display"]) in in_extract | reference
                marks = [target_verified(t) for t in element.get("target", [])]
                if element.get("noMap"):
                    marks = [e["valueBoolean"] for e in element["extension"] if e["url"] == EXT_VERIFIED]
                assert marks and set(marks) == {known}, (group["source"], element["code"])
                for t in element.get("target", []):
                    said = evidence(t)
                    assert said is not None
                    assert said.startswith("source: shared/" if known else "source: stand-in from"), said
                if not known:
                    unverified.setdefault(group["source"], set()).add(element["code"])
    assert unverified == STAND_INS
    assert sum(len(codes) for codes in unverified.values()) == 29


def test_maps_with_unverified_entries_are_draft_not_active() -> None:
    assert {i: (m["status"], m["experimental"]) for i, m in by_id().items()} == {
        i: ("draft", False) for i in by_id()
    }


def test_translate_of_a_verified_code_has_no_message_and_marks_each_match_verified(fest_maps):
    matches, message = fest_maps.translate("53", FORM)
    answer = translate_parameters(matches, message)
    assert [p["name"] for p in answer["parameter"]] == ["result", "match", "match", "match"]
    assert {m.verified for m in matches} == {True}
    for match in answer["parameter"][1:]:
        assert match["part"][2] == {
            "name": "property",
            "part": [{"name": "uri", "valueUri": PROPERTY_VERIFIED}, {"name": "value", "valueBoolean": True}],
        }


def test_translate_of_an_unverified_code_says_so_in_its_message_and_per_match(fest_maps):
    matches, message = fest_maps.translate("28", FORM)  # Enterotablett: a stand-in code
    assert message is None
    answer = get_fhir_model_class("Parameters").model_validate(translate_parameters(matches, message))
    parameters = answer.model_dump()["parameter"]
    assert parameters[1] == {
        "name": "message",
        "valueString": f"unverified: 1 of 1 match ({EDQM}|10225000) rest on entries of {DOSE_FORM_MAP} whose "
        "codes are not confirmed by real data or an official list (a stand-in code); check them before "
        "relying on them",
    }
    assert parameters[2]["part"][2]["part"][1] == {"name": "value", "valueBoolean": False}


def test_translate_reverse_to_an_unverified_fest_code_says_so_too(fest_maps):
    matches, _ = fest_maps.translate("15051000", EDQM, reverse=True)  # Suppository <- FEST 14 stikkpille
    assert [(m.concept.code, m.verified) for m in matches] == [("14", False)]
    assert unverified_note(matches) == (
        f"unverified: 1 of 1 match ({DOSE_UNIT}|14) rest on entries of {DOSE_UNIT_MAP} whose codes are not "
        "confirmed by real data or an official list (a stand-in code); check them before relying on them"
    )


def test_a_mixed_answer_names_only_the_unverified_matches():
    verified = ConceptMapIndex(concept_map_files()).translate("53", FORM)[0][0]
    doubtful = ConceptMapIndex(concept_map_files()).translate("28", FORM)[0][0]
    note = unverified_note([verified, doubtful])
    assert note is not None and note.startswith(f"unverified: 1 of 2 matches ({EDQM}|10225000) rest on")
    assert unverified_note([verified]) is None
    assert unverified_note([]) is None


def test_an_unverified_no_map_code_says_so(fest_maps):
    conceptmap = {
        "resourceType": "ConceptMap",
        "url": "https://example.org/m",
        "status": "draft",
        "group": [
            {
                "source": "urn:s",
                "target": "urn:t",
                "element": [{"code": "x", "noMap": True, "extension": mark_no_map(False)}],
            }
        ],
    }
    get_fhir_model_class("ConceptMap").model_validate(conceptmap)
    assert ConceptMapIndex([conceptmap]).translate("x", "urn:s") == (
        [],
        "'x' is in ConceptMap https://example.org/m but explicitly not mapped (noMap)" + UNVERIFIED_NO_MAP,
    )
    assert fest_maps.translate("136", FORM)[1] == (
        f"'136' is in ConceptMap {DOSE_FORM_MAP} but explicitly not mapped (noMap)"  # verified: nothing more
    )


def test_boks_and_boks_av_plast_are_only_related_to_edqm_box(fest_maps):
    for code in ("8", "55"):
        matches, _ = fest_maps.translate(code, PACK_TYPE)
        assert [(m.relationship, m.concept.code, m.verified) for m in matches] == [
            ("related-to", "30009000", True)
        ]
    # so an IDMP package typed EDQM Box no longer becomes FEST 8 Boks in an M30 export
    codes = fest_codes(concept_map_files())
    assert codes(PACK_TYPE, EDQM, "30009000") is None
    assert codes(PACK_TYPE, EDQM, "30007000") == ("169", "Blisterpakning")


def test_counted_units_map_to_edqm_units_of_presentation_and_ucum_annotations_are_only_related(fest_maps):
    def forward(code: str, system: str = DOSE_UNIT) -> list[tuple[str, str | None, str]]:
        return [
            (m.relationship, m.concept.system, m.concept.code) for m in fest_maps.translate(code, system)[0]
        ]

    assert forward("13") == [("equivalent", EDQM, "15054000"), ("related-to", UCUM, "{tablet}")]
    assert forward("6") == [("equivalent", EDQM, "15012000"), ("related-to", UCUM, "{capsule}")]
    assert forward("16") == [
        (BROADER, EDQM, "15036000"),
        (BROADER, EDQM, "15042000"),
        ("related-to", UCUM, "{patch}"),
    ]
    assert forward("11") == [("equivalent", EDQM, "15052000"), ("related-to", UCUM, "{syringe}")]
    assert forward("8") == [("equivalent", UCUM, "mL")]  # a measurable unit stays UCUM's
    assert forward("stk", PACK_UNIT) == [("related-to", UCUM, "{piece}")]  # EDQM has no unit for a piece
    every_annotation = {
        t["relationship"]
        for m in concept_map_files()
        for g in m["group"]
        if g["target"] == UCUM
        for e in g["element"]
        for t in e.get("target", [])
        if t["code"].startswith("{")
    }
    assert every_annotation == {"related-to"}
    edqm_units = {
        (e["code"], t["code"], t["display"])
        for g in by_id()["fest-enhet-dosering-ucum"]["group"]
        if g["target"] == EDQM
        for e in g["element"]
        for t in e["target"]
    }
    assert edqm_units == {
        ("13", "15054000", "Tablet"),
        ("6", "15012000", "Capsule"),
        ("16", "15036000", "Patch"),
        ("16", "15042000", "Plaster"),
        ("11", "15052000", "Syringe"),
        ("14", "15051000", "Suppository"),
        ("5", "15022000", "Drop"),
        ("22", "15024000", "Chewing gum"),
        ("20", "15005000", "Bag"),
        ("20", "15045000", "Sachet"),
    }


def test_injeksjonsvaeske_has_the_emulsion_target(fest_maps):
    matches, _ = fest_maps.translate("101", FORM)
    assert [(m.relationship, m.concept.code, m.concept.display) for m in matches] == [
        (BROADER, "11201000", "Solution for injection"),
        (BROADER, "11203000", "Emulsion for injection"),
    ]


def test_the_generated_maps_mark_every_target_verified():
    ppd = "PackagedProductDefinition"
    rows = [
        (ppd, "p1", f"{ppd}.identifier", s.NS_PAKNING, "ID_1", None),
        (ppd, "p1", f"{ppd}.identifier", s.NS_VARENR, "123456", None),
        (ppd, "p1", f"{ppd}.name", "", "Paracet tab 500 mg", None),
    ]
    pairs = [
        {
            "element": "dose-form",
            "fest": [FORM, "53", "Tablett"],
            "safest": [EDQM, "10219000", "Tablet"],
            "products": 2,
        }
    ]
    made = id_maps(rows, "t1") + observed_maps(pairs, "t1")
    assert sum(len(list(entries(m))) for m in made) > 0
    for conceptmap in made:
        get_fhir_model_class("ConceptMap").model_validate(conceptmap)
        assert unmarked(conceptmap) == [], conceptmap["id"]
        assert {flag for *_, flag in entries(conceptmap)} <= {True}


def test_unmarked_names_every_entry_without_a_mark():
    conceptmap: dict[str, Any] = {
        "property": [{"code": "verified", "uri": PROPERTY_VERIFIED, "type": "boolean"}],
        "group": [
            {
                "source": "urn:s",
                "element": [
                    {"code": "a", "target": [{"code": "1", "property": mark(True)}, {"code": "2"}]},
                    {"code": "b", "noMap": True},
                    {"code": "c"},
                    {
                        "code": "d",
                        "target": [{"code": "4", "property": [{"code": "verified", "valueString": "yes"}]}],
                    },
                ],
            }
        ],
    }
    assert unmarked(conceptmap) == [
        "urn:s|a -> 2",
        "urn:s|b -> noMap",
        "urn:s|d -> 4",
        "urn:s|c -> (no target, no noMap)",
    ]
    undeclared = {
        **conceptmap,
        "property": [],
    }  # marks whose property the map does not declare count for nothing
    assert "urn:s|a -> 1" in unmarked(undeclared)


def test_our_package_defines_the_no_map_extension():
    from grunndata.fhirpackage import package_resources
    from grunndata.fhirpackage.extensions import CONCEPTMAP_VERIFIED

    assert CONCEPTMAP_VERIFIED == EXT_VERIFIED
    [definition] = [r for r in package_resources() if r.get("url") == EXT_VERIFIED]
    assert definition["context"] == [{"type": "element", "expression": "ConceptMap.group.element"}]
    value = [e for e in definition["snapshot"]["element"] if e["path"] == "Extension.value[x]"]
    assert [t["code"] for t in value[0]["type"]] == ["boolean"]


def test_an_m30_export_takes_no_fest_code_from_an_unverified_entry():
    """A stand-in FEST code nobody has checked goes to no e-prescription chain: read in reverse, an
    entry marked unverified gives no FEST code, while the verified ones still do."""
    codes = fest_codes(concept_map_files())
    refused = given = 0
    for conceptmap in concept_map_files():
        rows = [
            (group.get("source"), group.get("target"), element.get("code"), target)
            for group in conceptmap.get("group", [])
            for element in group.get("element", [])
            for target in element.get("target", [])
        ]
        for source, system, code, target in rows:
            if target.get("relationship") not in ("equivalent", BROADER) or system not in (EDQM, UCUM):
                continue
            sources = {c for s_, t_, c, t in rows if t_ == system and t.get("code") == target["code"]}
            if len(sources) != 1:  # several FEST codes fit: none is taken anyway
                continue
            flagged = [p for p in target.get("property", []) if p.get("code") == "verified"]
            found = codes(source, system, target["code"])
            if flagged and flagged[0]["valueBoolean"] is False:
                refused += 1
                assert found is None, (source, code, target["code"])
            elif flagged:
                given += 1
                assert found is not None and found[0] == code, (source, code, target["code"])
    assert refused > 0 and given > 0, (refused, given)
