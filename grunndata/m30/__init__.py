"""The FEST M30 2014-12-01 message both ways: its catalogues, typed entries, the files and an
order-keeping writer.

FEST files are opened (`open_xml`: xml, gzip or zip, capped, the prolog checked) and read
(`FestReader`: one entry at a time, types and content models checked) here and nowhere else:
importers, validation and the generator use them; translators and the generator write with it.
"""

from grunndata.m30.codes import KNOWN_CODE_SYSTEMS, VOLVEN
from grunndata.m30.files import open_delivery
from grunndata.m30.reader import EntryFacts, FestReader, xml_error_sentence
from grunndata.m30.records import (
    CATALOGUE_BY_OPPF,
    FS_NS,
    M30_NS,
    Catalogue,
    FestEntry,
    Node,
    catalogue,
    catalogues,
    child,
    child_text,
)
from grunndata.m30.schema import IDREF_ELEMENTS
from grunndata.m30.source import DOCTYPE_REFUSED, XmlStream, check_file, open_xml, safe_parser
from grunndata.m30.structure import child_order
from grunndata.m30.writer import DOCUMENT_END, document_start, entry_xml, write_delivery

__all__ = [
    "CATALOGUE_BY_OPPF",
    "DOCTYPE_REFUSED",
    "DOCUMENT_END",
    "FS_NS",
    "IDREF_ELEMENTS",
    "KNOWN_CODE_SYSTEMS",
    "M30_NS",
    "VOLVEN",
    "Catalogue",
    "EntryFacts",
    "FestEntry",
    "FestReader",
    "xml_error_sentence",
    "Node",
    "XmlStream",
    "catalogue",
    "catalogues",
    "check_file",
    "child",
    "child_order",
    "child_text",
    "document_start",
    "entry_xml",
    "open_delivery",
    "open_xml",
    "safe_parser",
    "write_delivery",
]
