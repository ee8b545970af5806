"""The ConceptMaps we serve but do not store are valid R5 by the core definitions and ours: the
reviewed files (with their verification properties and the noMap extension) and the maps made
from a release's identifiers and code pairs."""

from __future__ import annotations

from grunndata.terminology import concept_map_files, id_maps, observed_maps
from grunndata.terminology.idmaps import IDENTIFIER_PARAMS, NAME_PARAMS
from grunndata.validation import Definitions, Report, Validator

FORM = "urn:oid:2.16.578.1.12.4.1.1.7448"
EDQM = "http://standardterms.edqm.eu"


def test_every_conceptmap_we_make_is_valid_r5(r5: Definitions) -> None:
    rows = [
        ("PackagedProductDefinition", "p1", IDENTIFIER_PARAMS[1], "http://dmp.no/fhir/NamingSystem/festLegemiddelPakning", "ID_1", None),
        ("PackagedProductDefinition", "p1", IDENTIFIER_PARAMS[1], "https://grunndata.no/fhir/NamingSystem/varenr", "123456", None),
        ("PackagedProductDefinition", "p1", NAME_PARAMS[1], "", "Paracet tab 500 mg", None),
    ]  # fmt: skip
    pairs = [
        {
            "element": "dose-form",
            "fest": [FORM, "53", "Tablett"],
            "safest": [EDQM, "10219000", "Tablet"],
            "products": 2,
        }
    ]
    maps = [*concept_map_files(), *id_maps(rows, "t1"), *observed_maps(pairs, "t1")]
    validator, report = Validator(r5), Report()
    for conceptmap in maps:
        validator.validate(conceptmap, "served ConceptMap", report)
    assert [p.sentence() for p in report.problems] == []
    assert report.resources == len(maps) == 9
    assert not [what for what in report.not_checked if "conceptmap-verified" in what]
