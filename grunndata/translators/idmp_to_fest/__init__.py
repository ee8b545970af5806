"""FHIR R5 IDMP resources -> FEST entries, by reading the FEST -> IDMP mapping tables backwards.

Pure functions, no I/O. `entry_from` gives back the FEST entry a group of resources was made of;
`entries_from_idmp` makes entries of resources SAFEST/IDMP gave alone (from_idmp.py), with a
report of what they lack; grunndata.m30 writes the entries as an M30 document.
"""

from grunndata.translators.idmp_to_fest.entry import (
    CATALOGUE_OF,
    EXPIRED,
    entry_from,
    expiry_listing,
    kind_of,
    listing_of,
    oslo_local,
)
from grunndata.translators.idmp_to_fest.from_idmp import (
    LINKS,
    REQUIRED,
    FestCode,
    FestIdOf,
    IdmpReport,
    LeftOut,
    Made,
    entries_from_idmp,
    fest_codes,
    groups,
    head_type,
)

__all__ = [
    "CATALOGUE_OF",
    "EXPIRED",
    "LINKS",
    "REQUIRED",
    "FestCode",
    "FestIdOf",
    "IdmpReport",
    "LeftOut",
    "Made",
    "entries_from_idmp",
    "entry_from",
    "expiry_listing",
    "fest_codes",
    "groups",
    "head_type",
    "kind_of",
    "listing_of",
    "oslo_local",
]
