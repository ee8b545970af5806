"""The FEST M30 2014-12-01 message: its catalogues, typed entries and an order-keeping writer.

Pure data and functions, no I/O of its own: importers read with it, translators and the
generator write with it.
"""

from grunndata.m30.records import (
    CATALOGUE_BY_OPPF,
    FS_NS,
    M30_NS,
    Catalogue,
    FestEntry,
    Node,
    catalogue,
    catalogues,
)
from grunndata.m30.writer import write_delivery

__all__ = [
    "CATALOGUE_BY_OPPF",
    "FS_NS",
    "M30_NS",
    "Catalogue",
    "FestEntry",
    "Node",
    "catalogue",
    "catalogues",
    "write_delivery",
]
