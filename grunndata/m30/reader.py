"""A streaming reader of FEST deliveries: one `Oppf*` entry at a time, in constant memory.

The root must be `FEST` in the m30 namespace; inside it elements are matched by local name,
because real files redeclare namespaces on payloads and some published extracts lost them.
Catalogues are read in the order they come (real extracts do not always keep the XSD's); the
reader remembers that order so the import can say so. As entries stream past, leaf values are
checked against their XSD types and each element's children against its XSD content model (which
and how many, not in what order: see structure.py). Anything that is not a FEST document, or is
malformed, raises DeliveryError naming what was expected, and catalogue, Id and line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from grunndata.errors import DeliveryError
from grunndata.fhir import MAX_STRING_CHARS, unfit_in_xml, unfit_sentence, xml_element_before
from grunndata.m30 import types
from grunndata.m30.records import (
    CATALOGUE_BY_KAT,
    CATALOGUE_BY_OPPF,
    M30_NS,
    Catalogue,
    FestEntry,
    Node,
    catalogues,
)
from grunndata.m30.schema import IDREF_ELEMENTS, QUANTITY_ELEMENTS, TEXT_TYPES
from grunndata.m30.source import DOCTYPE_REFUSED, XmlStream, open_xml
from grunndata.m30.structure import MODELS, Model, listed, missing, too_many, unknown
from grunndata.settings import DEFAULT_MAX_XML_BYTES

STATUSES = {"A", "U"}
HEADER = ("HentetDato", "GyldigFradatoHelfo")  # before the catalogues, each at most once
HEADER_TYPES = {"HentetDato": "dateTime", "GyldigFradatoHelfo": "date"}
ENVELOPE = ("Id", "Tidspunkt", "Status")  # every Oppf* starts with these
OPPF_MODELS = {c.name: MODELS[f"m30:{c.kat}/{c.oppf}"] for c in catalogues()}  # the XSD's Oppf* models


FEST_HOLDS = (
    "FEST holds HentetDato, an optional GyldigFradatoHelfo, then the catalogues "
    f"{listed([c.kat for c in catalogues()])}, each at most once"
)


@dataclass(frozen=True, slots=True)
class OrderDifference:
    """Catalogues that came in another order than the XSD's: the first out of place, and all as they came."""

    catalogue: Catalogue  # the first catalogue that came after one the XSD puts behind it
    line: int
    after: Catalogue  # the catalogue it came after
    delivered: tuple[Catalogue, ...]

    @property
    def message(self) -> str:
        return (
            f"the catalogues are not in XSD order: {self.catalogue.kat} comes after {self.after.kat}, "
            f"though the XSD puts {self.catalogue.kat} first; they came as {', '.join(c.kat for c in self.delivered)}; "
            "all were read, and M30 exports keep the XSD order"
        )


@dataclass(slots=True)
class EntryFacts:
    """What the delivery-level checks need from one entry, gathered in the same walk."""

    ids: list[str] = field(default_factory=list)  # xs:ID values (inner Ids at any depth)
    refs: list[tuple[str, str, int]] = field(default_factory=list)  # (element, target Id, line)
    codes: list[tuple[str, str, int]] = field(default_factory=list)  # (code system OID, code, line)


def _local(tag: Any) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


class _Walk:
    """Turns one Oppf subtree into Nodes, checking types and collecting ids, refs and codes."""

    def __init__(self, catalogue: str, entry_id: str | None) -> None:
        self.catalogue, self.entry_id = catalogue, entry_id
        self.facts = EntryFacts()

    def fail(self, message: str, line: int | None) -> DeliveryError:
        return DeliveryError(message, catalogue=self.catalogue, entry_id=self.entry_id, line=line)

    def children(
        self, name: str, model: Model | None, kids: list[Any], line: int, counts: dict[str, int]
    ) -> list[Node]:
        """The Nodes of `name`'s child elements, refused where its content model does not allow them."""
        nodes = []
        for c in kids:
            child = _local(c.tag)
            spec = model.children.get(child) if model is not None else None
            if spec is None:
                if child:
                    raise self.fail(unknown(name, model, child), c.sourceline)
                nodes.append(self.node(c, child, None))  # refuses what is not an element
                continue
            high, child_model = spec
            count = counts[child] = counts.get(child, 0) + 1
            if high is not None and count > high:
                raise self.fail(too_many(name, child, count, high), c.sourceline)
            nodes.append(self.node(c, child, child_model, name == "Info"))
        if (
            model is not None
            and (model.required or model.groups)
            and (problem := missing(name, model, counts))
        ):
            raise self.fail(problem, line)
        return nodes

    def node(self, el: Any, name: str, model: Model | None, in_kodeverk_info: bool = False) -> Node:
        if not name:
            raise self.fail(
                "unexpected XML content (an entity reference or a processing instruction) where FEST "
                "holds only elements, attributes and text",
                el.sourceline,
            )
        attrs = dict(el.attrib) or None
        for attr, value in (attrs or {}).items():
            if len(value) > MAX_STRING_CHARS:
                raise self.fail(unfit_sentence(f"{name}/@{attr}", value), el.sourceline)
        kids = [c for c in el if isinstance(c.tag, str) or c.tag is etree.Entity]
        if kids or model is not None:
            children = self.children(name, model, kids, el.sourceline, {})
            if children:
                return [name, attrs, None, children]
        text = el.text
        if text is not None:
            if len(text) > MAX_STRING_CHARS:  # nothing made of it could be served as FHIR
                raise self.fail(unfit_sentence(name, text), el.sourceline)
            xsd_type = TEXT_TYPES.get(name)
            if xsd_type is not None and not types.valid(xsd_type, text):
                raise self.fail(
                    f"{name} must be {types.NAMES[xsd_type]}, not {text.strip()!r}", el.sourceline
                )
            if name == "Id" and not in_kodeverk_info:
                self.facts.ids.append(text)
            elif name in IDREF_ELEMENTS:
                self.facts.refs.append((name, text, el.sourceline))
        if attrs:
            if "S" in attrs and "V" in attrs:
                self.facts.codes.append((attrs["S"], attrs["V"], el.sourceline))
            if name in QUANTITY_ELEMENTS and "V" in attrs and not types.valid("decimal", attrs["V"]):
                raise self.fail(f"{name}/@V must be a decimal number, not {attrs['V']!r}", el.sourceline)
        return [name, attrs, text, None]


@dataclass(slots=True)
class FestReader:
    """Reads one delivery: `hentet_dato` once the header is read, then `entries()`."""

    path: Path
    max_xml_bytes: int = DEFAULT_MAX_XML_BYTES  # GRUNNDATA_MAX_XML_BYTES
    hentet_dato: str | None = None
    gyldig_fradato_helfo: str | None = None
    current_catalogue: str | None = None
    stream: XmlStream | None = None
    delivered: list[tuple[Catalogue, int]] = field(
        default_factory=list
    )  # catalogues as they came, with lines

    def order_difference(self) -> OrderDifference | None:
        """How the catalogues read so far depart from the XSD's order; None when they follow it."""
        furthest: Catalogue | None = None
        for cat, line in self.delivered:
            if furthest is not None and cat.order < furthest.order:
                return OrderDifference(cat, line, furthest, tuple(c for c, _ in self.delivered))
            if furthest is None or cat.order > furthest.order:
                furthest = cat
        return None

    def entries(self) -> Iterator[tuple[FestEntry, EntryFacts]]:
        with open_xml(self.path, self.max_xml_bytes) as stream:
            self.stream = stream
            parser = etree.iterparse(
                stream,
                events=("start", "end"),
                resolve_entities=False,
                no_network=True,
                load_dtd=False,
                huge_tree=True,
                remove_comments=True,
                remove_pis=True,
                encoding="utf-8",
            )
            try:
                yield from self._walk(parser)
            except etree.XMLSyntaxError as e:
                message = xml_error_sentence(self.path, e, stream.at_end, self.max_xml_bytes)
                raise DeliveryError(message, catalogue=self.current_catalogue) from None

    def _walk(self, parser: Any) -> Iterator[tuple[FestEntry, EntryFacts]]:
        depth = 0
        cat: Catalogue | None = None
        first_line: dict[str, int] = {}  # header element or Kat* -> the line it first came on
        seen_any = False
        for event, el in parser:
            if event == "start":
                depth += 1
                if depth == 1:
                    seen_any = True
                    _check_root(el)
                elif depth == 2:
                    name = _local(el.tag)
                    if name in HEADER:
                        _once(name, el.sourceline, first_line)
                        continue
                    cat = CATALOGUE_BY_KAT.get(name)
                    if cat is None:
                        raise DeliveryError(_unknown_in_fest(name), line=el.sourceline)
                    _once(name, el.sourceline, first_line)
                    if self.hentet_dato is None:
                        raise DeliveryError(
                            f"the delivery has no HentetDato before its first catalogue {name}; "
                            "FEST starts with HentetDato",
                            line=el.sourceline,
                        )
                    self.delivered.append((cat, el.sourceline))
                    self.current_catalogue = cat.name
                continue
            depth -= 1
            if depth == 2 and cat is not None:
                yield self._entry(cat, el)
                el.clear()
                parent = el.getparent()
                while el.getprevious() is not None:
                    del parent[0]
            elif depth == 1:
                name = _local(el.tag)
                if name in HEADER:
                    value = (el.text or "").strip()
                    xsd_type = HEADER_TYPES[name]
                    if not types.valid(xsd_type, value):
                        raise DeliveryError(
                            f"{name} must be {types.NAMES[xsd_type]}, not {value!r}", line=el.sourceline
                        )
                    if name == "HentetDato":
                        self.hentet_dato = el.text  # verbatim: the next incremental request needs it exactly
                    else:
                        self.gyldig_fradato_helfo = el.text
                el.clear()
                cat = None
        if not seen_any:
            raise DeliveryError("the file holds no XML element")
        if self.hentet_dato is None:
            raise DeliveryError("the delivery has no HentetDato; FEST starts with HentetDato")

    def _entry(self, cat: Catalogue, el: Any) -> tuple[FestEntry, EntryFacts]:
        name = _local(el.tag)
        if name != cat.oppf:
            raise DeliveryError(
                f"{cat.kat} may hold only {cat.oppf}, not {name}", catalogue=cat.name, line=el.sourceline
            )
        kids = [c for c in el if isinstance(c.tag, str)]
        head = tuple(_local(c.tag) for c in kids[:3])
        if head != ENVELOPE:
            raise DeliveryError(
                f"{cat.oppf} must start with {listed(ENVELOPE)}, not {listed(head) if head else 'nothing'}",
                catalogue=cat.name,
                line=el.sourceline,
            )
        oppf_id = (kids[0].text or "").strip()
        walk = _Walk(cat.name, oppf_id)
        tidspunkt = kids[1].text or ""
        if not types.valid("dateTime", tidspunkt):
            raise walk.fail(
                f"Tidspunkt must be a date and time, not {tidspunkt.strip()!r}", kids[1].sourceline
            )
        status = kids[2].get("V")
        if status not in STATUSES:
            raise walk.fail(f"Status must be A (active) or U (expired), not {status!r}", kids[2].sourceline)
        for c in kids[3:]:
            if _local(c.tag) not in cat.payloads:
                raise walk.fail(
                    f"{cat.oppf} cannot hold {_local(c.tag)}; after {listed(ENVELOPE)} it holds "
                    f"{'only ' if len(cat.payloads) == 1 else ''}{listed(list(cat.payloads), 'or')}",
                    c.sourceline,
                )
        envelope = dict.fromkeys(ENVELOPE, 1)
        payload = walk.children(cat.oppf, OPPF_MODELS[cat.name], kids[3:], el.sourceline, envelope)
        entry = FestEntry(
            cat.name, oppf_id, tidspunkt, status, kids[2].get("DN"), tuple(payload), el.sourceline
        )
        walk.entry_id = entry.key
        walk.facts.ids.append(oppf_id)
        return entry, walk.facts


def _once(name: str, line: int, first_line: dict[str, int]) -> None:
    """Refuse a header element or catalogue that came before: a delivery holds each once."""
    if name in first_line:
        rule = "each catalogue once" if name in CATALOGUE_BY_KAT else f"one {name}"
        raise DeliveryError(
            f"{name} appears twice: at line {first_line[name]} and again at line {line}; "
            f"a delivery holds {rule}"
        )
    first_line[name] = line


def _unknown_in_fest(name: str) -> str:
    """The sentence for an element FEST cannot hold, naming what it can."""
    cat = CATALOGUE_BY_OPPF.get(name)
    if cat is not None:
        return f"{name} belongs inside {cat.kat}, not directly inside FEST"
    return f"unknown element {name} inside FEST; {FEST_HOLDS}"


def _check_root(el: Any) -> None:
    tree = el.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise DeliveryError(DOCTYPE_REFUSED, line=el.sourceline)
    ns, _, local = el.tag.rpartition("}")
    ns = ns.lstrip("{")
    if local != "FEST":
        raise DeliveryError(
            f"this is not a FEST delivery: the root element is {local}, not FEST", line=el.sourceline
        )
    if ns != M30_NS:
        found = f"namespace {ns}" if ns else "no namespace"
        raise DeliveryError(
            f"this FEST root is in {found}, not the M30 namespace {M30_NS}", line=el.sourceline
        )


def _unfit_message(path: Path, number: int | None, limit: int) -> str | None:
    """Our sentence when the line lxml stopped at holds text no FHIR string or XML can hold.

    lxml names the line but not the character (not at all inside an attribute) nor the element, in
    its own words; the line is read again (only for a file refused anyway) to name both.
    """
    if not number:
        return None
    try:
        with open_xml(path, limit) as stream:
            line = _line(stream, number)
    except DeliveryError:
        return None
    found = next(unfit_in_xml(line), None)
    if found is None:
        return None
    start, _, char = found
    return f"{path.name} line {number}: {unfit_sentence(xml_element_before(line, start) or 'the text', char)}"


def _line(stream: XmlStream, number: int) -> bytes:
    """Line `number` (from 1) of the stream, without its line break, read in constant memory."""
    at, start = 1, b""  # the line the next chunk begins in, and what of it came before
    while chunk := stream.read(1 << 16):
        breaks = chunk.count(b"\n")
        if at + breaks >= number:
            return (start + chunk).split(b"\n")[number - at]
        at += breaks
        start = chunk[chunk.rfind(b"\n") + 1 :] if breaks else start + chunk
    return start if at == number else b""


def xml_error_sentence(path: Path, e: etree.XMLSyntaxError, at_end: bool, max_xml_bytes: int) -> str:
    """Our sentence for a FEST file lxml could not parse (`at_end`: the whole file had been read)."""
    return _unfit_message(path, e.lineno, max_xml_bytes) or _syntax_message(e, at_end)


def _syntax_message(e: etree.XMLSyntaxError, at_end: bool) -> str:
    msg = (e.msg or str(e)).strip()
    line = e.lineno
    if (
        "not proper UTF-8" in msg
        or "Invalid bytes in character encoding" in msg
        or "Input is not proper" in msg
    ):
        return f"the file holds bytes that are not UTF-8 (line {line}); FEST is always UTF-8"
    if "Document is empty" in msg or "Start tag expected" in msg:
        return "the file is not XML"
    if at_end or "Premature end" in msg:
        return f"the XML ends too early (truncated?) at line {line}: {msg}"
    if "Entity" in msg or "entity" in msg:
        return f"entity references are not allowed in FEST (line {line}): {msg}"
    return f"the file is not well-formed XML (line {line}): {msg}"
