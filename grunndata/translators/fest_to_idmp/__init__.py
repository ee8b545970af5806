"""FEST entries -> FHIR R5 IDMP resources, by one declarative mapping table per FEST payload kind.

Pure functions, no I/O. `translate` makes the resources of one entry; `coverage` reports, from the
same tables, where every element of the M30 XSD goes (FHIR element, extension, or dropped and why).
Read tables.py for the mapping itself; values.py says how each FEST data type becomes FHIR.
"""

from grunndata.translators.fest_to_idmp.coverage import CoverageReport, coverage, coverage_json
from grunndata.translators.fest_to_idmp.rules import Lookup
from grunndata.translators.fest_to_idmp.translate import LOOKUP_KINDS, translate
from grunndata.translators.fest_to_idmp.values import fhir_id

__all__ = [
    "LOOKUP_KINDS",
    "CoverageReport",
    "Lookup",
    "coverage",
    "coverage_json",
    "fhir_id",
    "translate",
]
