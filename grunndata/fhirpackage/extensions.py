"""Every extension we serve, with where it may appear and what value it holds, read from the mapping tables.

The FEST ones (``fest-<element>``) come from walking the FEST->IDMP tables with the M30 XSD, as
translate() walks an entry: an `Ext` row puts ``fest-<element>`` on its FHIR path, a `To` row puts it
on the element above its path when FHIR cannot hold the value (rules.fallback_owner), an `Into` row
moves the place down. The value types are those values.tree writes for the XSD type. The SAFEST
ones (``r4-<R4 path>``) are the `Keep` rows of the R4->R5 tables, on the R5 element of the R4 parent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from grunndata.importers.resources import SOURCE_PROFILE
from grunndata.m30.records import catalogues
from grunndata.translators.fest_to_idmp import systems as s
from grunndata.translators.fest_to_idmp.rules import Custom, Ext, Into, Table, To, fallback_owner, parse_path
from grunndata.translators.fest_to_idmp.schema import oppf_xsd
from grunndata.translators.fest_to_idmp.tables import MAPPINGS
from grunndata.translators.fest_to_idmp.values import XsdNode
from grunndata.translators.safest import mapping

COMPLEX = "complex"
"""An XSD element with children: the extension holds sub-extensions (one per child), no value."""

_LEAF_TYPES: dict[str, tuple[str, ...]] = {
    "kith:CV": ("Coding",),
    "kith:CS": ("Coding",),
    "kith:PQ": ("Quantity",),
    "kith:MO": ("Money",),
    "kith:URL": ("uri",),
    "kith:TS": ("dateTime", "string"),
    "IDREF": ("Reference",),
    "boolean": ("boolean", "string"),
    "int": ("integer", "string"),
    "integer": ("integer", "string"),
    "decimal": ("decimal", "string"),
    "double": ("decimal", "string"),
    "date": ("date", "string"),
    "dateTime": ("dateTime", "string"),
    "time": ("time", "string"),
}
"""values.leaf_value: the value[x] types a FEST leaf of an XSD type becomes (valueString when FHIR's
type would not give the FEST text back); any other XSD type (string, ID, duration) is valueString."""


@dataclass(slots=True)
class ExtensionUse:
    """One extension: its url, the FHIR paths it appears on, its value types (none: sub-extensions only)."""

    url: str
    description: str
    contexts: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    complex: bool = False


def value_types(xsd_type: str) -> tuple[str, ...]:
    if xsd_type == COMPLEX:
        return ()
    return _LEAF_TYPES.get(xsd_type, ("string",))


def _path(where: str, relative: str) -> str:
    """A table's FHIR path as an element path: absolute, without list markers (``a[]``, ``a[0]``)."""
    rtype, segments = parse_path(relative)
    names = [name for name, _, _ in segments]
    return ".".join([rtype or where, *names]) if rtype else ".".join([where, *names])


def _segments_path(where: str, rtype: str | None, segments: tuple[tuple[str, int, int], ...]) -> str:
    return ".".join([rtype or where, *(name for name, _, _ in segments)])


def _walk(table: Table, where: tuple[str, ...], xsd: XsdNode) -> Iterator[tuple[str, str, str]]:
    """(url, FHIR element path, XSD type) for every extension `table` may write below `where`."""
    for rule in table.rules_in_order:
        child = xsd[1].get(rule.fest)
        if child is None:
            continue  # the coverage report lists a row the XSD does not have
        if isinstance(rule, Ext):
            for w in where:
                yield rule.url, _path(w, rule.at), child[0]
        elif isinstance(rule, To):
            rtype, segments = parse_path(rule.path)
            for w in where:  # a value FHIR cannot hold (empty, not in FHIR's format) goes above
                yield s.ext_url(rule.fest), _segments_path(w, rtype, fallback_owner(segments)), child[0]
        elif isinstance(rule, Into):
            if rule.new is not None:
                inner: tuple[str, ...] = (rule.new,)
            else:
                inner = tuple(_path(w, rule.path) for w in where)
                if rule.many is not None:
                    inner += tuple(_path(w, rule.many) for w in where)
            yield from _walk(rule.table, inner, child)
        elif isinstance(rule, Custom):
            for row in rule.covers:  # fest-Substansgruppe on each interactant
                found = re.match(r"(.*?)\.extension\[(fest-[^\]]+)\]", row.fhir)
                if found is not None and row.disposition == "extension":
                    yield s.EXT_BASE + found[2], _path(found[1], ""), COMPLEX


def _fest() -> dict[str, ExtensionUse]:
    uses: dict[str, ExtensionUse] = {}

    def add(url: str, context: str, xsd_type: str, description: str) -> None:
        use = uses.setdefault(url, ExtensionUse(url, description))
        use.contexts.add(context)
        use.types.update(value_types(xsd_type))
        use.complex = use.complex or xsd_type == COMPLEX

    for cat in catalogues():
        oppf = oppf_xsd(cat.name)
        for kind in cat.payloads:
            mapping_ = MAPPINGS.get(kind)
            if mapping_ is None:
                continue
            xsd = oppf if kind == "Info" else oppf[1][kind]
            for url, context, xsd_type in _walk(mapping_.table, (mapping_.resource,), xsd):
                element = url.removeprefix(s.EXT_BASE + "fest-")
                add(
                    url, context, xsd_type, f"FEST element {element}, which the FHIR element has no place for"
                )
            add(
                s.EXT_OPPFORING,
                mapping_.resource,
                COMPLEX,
                "The Oppf envelope (Id, Tidspunkt, Status) of the FEST entry",
            )
    generic = (
        (
            s.EXT_LEXICAL,
            ("Quantity", "Money"),
            "string",
            "The FEST text of a number whose FHIR form prints differently (1.50)",
        ),
        (s.EXT_EMPTY, ("Extension",), "boolean", "A FEST element that was present but empty"),
        # unit_coding copies a Coding's extensions onto the Quantity made from a unit CV
        (s.EXT_ORIGINAL_TEXT, ("Coding", "Quantity"), "string", "A CV's OT (original text) attribute"),
        (
            s.EXT_EMPTY_ATTRIBUTE,
            ("Coding", "Quantity", "Money"),
            "string",
            "Names an attribute FEST gave as an empty string",
        ),
    )
    for url, contexts, xsd_type, description in generic:
        for context in contexts:
            add(url, context, xsd_type, description)
    return uses


def _kept() -> dict[str, ExtensionUse]:
    """r4-<path>: valueString (the R4 JSON as text). The R5 place is the R5 element of the R4 parent.

    Kept elements that are no `Keep` row (a converter's KEEP, a second value where R5 holds one, an
    unresolved reversed reference, which is a valueReference) are not listed here.
    """
    rows = list(mapping())
    r5_of: dict[str, str] = {}
    for row in rows:
        if row.how in ("element", "custom"):
            r5_of.setdefault(row.r4, row.r5.split(" | ")[0])
    resources = {
        row.r4.split(".")[0]: row.r5.split(".")[0] for row in rows if row.how in ("element", "custom")
    }
    uses: dict[str, ExtensionUse] = {}
    for row in rows:
        if row.how != "extension":
            continue
        parent = row.r4.rsplit(".", 1)[0]
        where = r5_of.get(parent) or resources[parent]
        use = uses.setdefault(
            row.r5, ExtensionUse(row.r5, f"R4 {row.r4}, which R5 has no element for: {row.note}")
        )
        use.contexts.add(where)
        use.types.add("string")
    return uses


def extension_uses() -> list[ExtensionUse]:
    """Every extension we serve, by url."""
    found = {**_fest(), **_kept()}
    found[SOURCE_PROFILE] = ExtensionUse(
        SOURCE_PROFILE,
        "A profile the sender's resource claimed (its meta.profile)",
        {"Resource"},
        {"canonical"},
    )
    return [found[url] for url in sorted(found)]
