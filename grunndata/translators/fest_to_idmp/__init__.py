"""FEST entries -> FHIR R5 IDMP resources, by one declarative mapping table per FEST payload kind.

Pure functions, no I/O. `translate` makes the resources of one entry; `coverage` reports, from the
same tables, where every element of the M30 XSD goes (FHIR element, extension, or dropped and why).
Read tables.py for the mapping itself; values.py says how each FEST data type becomes FHIR.
"""

from grunndata.translators.fest_to_idmp.coverage import CoverageReport, coverage, coverage_json
from grunndata.translators.fest_to_idmp.rules import Lookup
from grunndata.translators.fest_to_idmp.systems import (
    ATC,
    EXT_BASE,
    EXT_OPPFORING,
    NS_DOSE,
    NS_GTIN,
    NS_LEGEMIDDELVIRKESTOFF,
    NS_MERKEVARE,
    NS_ORDINERING_VIRKESTOFF,
    NS_PAKNING,
    NS_VARENR,
    NS_VIRKESTOFF,
    NS_VIRKESTOFF_MED_STYRKE,
)
from grunndata.translators.fest_to_idmp.translate import LOOKUP_KINDS, translate
from grunndata.translators.fest_to_idmp.values import fhir_id

__all__ = [
    "ATC",
    "EXT_BASE",
    "EXT_OPPFORING",
    "LOOKUP_KINDS",
    "NS_DOSE",
    "NS_GTIN",
    "NS_LEGEMIDDELVIRKESTOFF",
    "NS_MERKEVARE",
    "NS_ORDINERING_VIRKESTOFF",
    "NS_PAKNING",
    "NS_VARENR",
    "NS_VIRKESTOFF",
    "NS_VIRKESTOFF_MED_STYRKE",
    "CoverageReport",
    "Lookup",
    "coverage",
    "coverage_json",
    "fhir_id",
    "translate",
]
