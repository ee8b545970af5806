"""Terminology: the ConceptMaps we publish, the engine that answers with them, and the id maps.

`files` reads the reviewed FEST -> EDQM/UCUM ConceptMaps (conceptmaps/*.json, their sources in
conceptmaps/SOURCES.md); `engine` indexes ConceptMaps and CodeSystems for $translate, $lookup,
$validate-code and $expand; `idmaps` makes the FEST id <-> IDMP maps from a release's identifiers;
`verification` says how every entry of a map of ours is marked verified or not (and reads the marks).
Pure, no I/O but reading the files: the server loads the resources and hands them in
(server/terminology.py).
"""

from grunndata.terminology.engine import (
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
from grunndata.terminology.files import concept_map_files
from grunndata.terminology.idmaps import IDENTIFIER_PARAMS, NAME_PARAMS, IdMap, id_maps, observed_maps

__all__ = [
    "IDENTIFIER_PARAMS",
    "NAME_PARAMS",
    "CannotExpand",
    "CodeSystemIndex",
    "Coding",
    "ConceptMapIndex",
    "IdMap",
    "Match",
    "Replacement",
    "concept_map_files",
    "id_maps",
    "observed_maps",
    "replace_ours",
    "translate_parameters",
    "version_order",
]
