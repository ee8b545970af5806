"""FHIR R5 IDMP resources -> FEST entries, by reading the FEST -> IDMP mapping tables backwards.

Pure functions, no I/O. `entry_from` gives back the FEST entry a group of resources was made of;
grunndata.m30 writes the entries as an M30 document.
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

__all__ = ["CATALOGUE_OF", "EXPIRED", "entry_from", "expiry_listing", "kind_of", "listing_of", "oslo_local"]
