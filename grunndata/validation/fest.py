"""A FEST delivery (M30) checked against the official XSD: `grunndata validate FILE --schemas DIR`.

The schemas are the ones DMP publishes (`ER-M30-2014-12-01.xsd` and the `felles/` folder it imports);
they are read from disk only, with no network and no entity expanded, and so is the delivery (plain,
gzip or DMP's zip, opened as the importer opens it, its size capped, a DOCTYPE refused). libxml2
(through lxml) checks the whole document: element order and cardinality, types, enumerations. It
does not check that an IDREF names an existing Id: the importer does that.

The document is parsed whole, so it needs memory for the tree: about 8 times the XML's size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from grunndata.errors import DeliveryError
from grunndata.m30 import open_xml, safe_parser, xml_error_sentence
from grunndata.settings import DEFAULT_MAX_XML_BYTES
from grunndata.validation.engine import Problem, Report

M30_XSD = "ER-M30-2014-12-01.xsd"
"""The strict schema of M30 (beside it, DMP's `-loose` variant accepts more)."""
_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)[\s/>]")
_SNIFF = 1 << 16


class SchemaError(ValueError):
    """The schemas cannot be found or read: one sentence saying which and why."""


@dataclass(slots=True)
class FestReport(Report):
    """A Report whose problems are the XSD's, one per error libxml2 gives (line and element path)."""

    schema: Path = field(default_factory=Path)


def is_fest(path: Path) -> bool:
    """Whether `path` is a file whose XML root element is FEST (whatever the packaging)."""
    if not path.is_file():
        return False
    try:
        with open_xml(path) as opened:
            stream, head = opened.without_prolog_check(), b""
            while len(head) < _SNIFF:
                data = stream.read(_SNIFF)
                if not data:
                    break
                head += data
                root = _first_element(head)
                if root is not None:
                    return root == "FEST"
    except DeliveryError:
        return False
    return False


def _first_element(head: bytes) -> str | None:
    """The local name of the first element that is no declaration, comment or processing instruction."""
    for found in _ROOT.finditer(head):
        before = head[: found.start()]
        if before.count(b"<!--") > before.count(b"-->"):
            continue  # inside a comment
        return found[1].decode("ascii", "replace")
    return None


def find_schema(schemas: Path) -> Path:
    """The strict M30 schema: `schemas` itself when it is an .xsd file, else the one file named
    ER-M30-2014-12-01.xsd below the folder."""
    if schemas.is_file():
        return schemas
    if not schemas.is_dir():
        raise SchemaError(f"no such folder of M30 schemas: {schemas}")
    found = sorted(schemas.rglob(M30_XSD))
    if len(found) != 1:
        raise SchemaError(
            f"{schemas} holds {len(found)} files named {M30_XSD}; give the folder of DMP's M30 schemas "
            "(with its felles/ folder) or the .xsd file itself"
        )
    return found[0]


_XS = "{http://www.w3.org/2001/XMLSchema}"
_M30 = "http://www.kith.no/xmlstds/eresept/m30/2014-12-01"


def load_schema(schema: Path) -> etree.XMLSchema:
    """The schema, once it is seen to declare the M30 root (m30:FEST) and to import nothing from
    the network (which is never read: a missing import would pass what it should check)."""
    try:
        document = etree.parse(str(schema), safe_parser())
        _check_schema(schema, document, set())
        return etree.XMLSchema(document)
    except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as e:
        raise SchemaError(f"cannot read the schema {schema}: {e}") from None


def _check_schema(path: Path, document: etree._ElementTree, seen: set[Path]) -> None:
    root = document.getroot()
    if not seen:  # the main schema
        declared = root.get("targetNamespace") == _M30 and any(
            e.get("name") == "FEST" for e in root.iterchildren(f"{_XS}element")
        )
        if not declared:
            raise SchemaError(
                f"{path.name} does not declare the M30 root element m30:FEST; give DMP's {M30_XSD}"
            )
    seen.add(path.resolve())
    for link in root.iterchildren(f"{_XS}import", f"{_XS}include", f"{_XS}redefine"):
        location = link.get("schemaLocation")
        if not location:
            continue
        if "://" in location:
            raise SchemaError(
                f"{path.name} imports {location} from the network, which is never read; give schemas whose "
                "imports are files beside them"
            )
        target = (path.parent / location).resolve()
        if target not in seen and target.is_file():
            _check_schema(target, etree.parse(str(target), safe_parser()), seen)


def validate_fest(path: Path, schemas: Path, max_xml_bytes: int = DEFAULT_MAX_XML_BYTES) -> FestReport:
    """Check the FEST delivery `path` against the M30 XSD found in `schemas`; write nothing.

    DeliveryError when the file cannot be read as XML at all (not FEST, damaged, a DOCTYPE), as the
    importer says it; SchemaError when the schemas cannot be found or read."""
    schema_file = find_schema(schemas)
    schema = load_schema(schema_file)
    report = FestReport(schema=schema_file)
    with open_xml(path, max_xml_bytes) as stream:
        try:
            document = etree.parse(stream, safe_parser(huge_tree=True))  # type: ignore[arg-type]
        except etree.XMLSyntaxError as e:  # said as the importer says it
            raise DeliveryError(xml_error_sentence(path, e, stream.at_end, max_xml_bytes)) from None
    root = etree.QName(document.getroot()).localname
    if root != "FEST":
        raise DeliveryError(f"{path.name} is no FEST delivery: its root element is {root}")
    report.resources = _entries(document)
    if not schema.validate(document):
        for error in schema.error_log:  # type: ignore[attr-defined]
            report.problems.append(
                Problem(
                    "",
                    f"{path.name} line {error.line}",
                    (error.path or "").lstrip("/"),
                    "xsd",
                    _message(error.message),
                )
            )
    return report


def _entries(document: etree._ElementTree) -> int:
    """The number of Oppf* entries (what the summary counts, as the importer counts them)."""
    root = document.getroot()
    return sum(
        1 for catalogue in root for entry in catalogue if etree.QName(entry).localname.startswith("Oppf")
    )


_PREFIXES = {
    "http://www.kith.no/xmlstds/eresept/m30/2014-12-01": "m30",
    "http://www.kith.no/xmlstds/eresept/forskrivning/2014-12-01": "f",
    "http://www.kith.no/xmlstds": "kith",
}
_NAMESPACE = re.compile(r"\{([^}]*)\}")


def _message(message: str) -> str:
    """libxml2's message with the M30 namespaces as the prefixes its paths use (`{http://www.kith.no/
    xmlstds/eresept/m30/2014-12-01}Id` -> `m30:Id`); a name without one is in no namespace."""
    return _NAMESPACE.sub(lambda m: f"{_PREFIXES[m[1]]}:" if m[1] in _PREFIXES else m[0], message).strip()
