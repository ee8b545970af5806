"""Write FEST entries as an M30 document, streaming, in XSD catalogue order.

Namespaces are declared as DMP's own deliveries do: m30 as the default namespace on the root,
and each forskrivning payload redeclaring the default namespace on itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO
from xml.sax.saxutils import escape, quoteattr

from grunndata.m30.records import FS_NS, M30_NS, FestEntry, Node, catalogue
from grunndata.m30.schema import FS_INSIDE_M30

ROOT_OPEN = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<FEST xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    f'xmlns="{M30_NS}">'
)


def _write_node(out: list[str], node: Node, xmlns: str | None = None, in_fs: bool = False) -> None:
    """Append `node` as XML; `xmlns` redeclares the default namespace, `in_fs` says we are inside fs."""
    name, attrs, text, children = node
    out.append("<" + name)
    if xmlns:
        out.append(f' xmlns="{xmlns}"')
    if attrs:
        for k, v in attrs.items():
            out.append(f" {k}={quoteattr(v)}")
    if children:
        out.append(">")
        for c in children:
            into_fs = not in_fs and (name, c[0]) in FS_INSIDE_M30
            _write_node(out, c, FS_NS if into_fs else None, in_fs or into_fs)
        out.append(f"</{name}>")
    elif text is not None and text != "":
        out.append(f">{escape(text)}</{name}>")
    else:
        out.append("/>")


def entry_xml(entry: FestEntry) -> str:
    """One `Oppf*` element as text."""
    cat = catalogue(entry.catalogue)
    out: list[str] = [f"<{cat.oppf}>"]
    for node in entry.envelope():
        _write_node(out, node)
    for node in entry.payload:
        ns = cat.payloads.get(node[0], M30_NS)
        _write_node(out, node, None if ns == M30_NS else ns, ns != M30_NS)
    out.append(f"</{cat.oppf}>")
    return "".join(out)


def document_start(hentet_dato: str, gyldig_fradato_helfo: str | None = None) -> str:
    """The root element's start and the delivery header, up to the first catalogue."""
    head = f"{ROOT_OPEN}<HentetDato>{escape(hentet_dato)}</HentetDato>"
    if gyldig_fradato_helfo:
        head += f"<GyldigFradatoHelfo>{escape(gyldig_fradato_helfo)}</GyldigFradatoHelfo>"
    return head


DOCUMENT_END = "\n</FEST>\n"


def write_delivery(
    out: TextIO,
    hentet_dato: str,
    entries: Iterable[FestEntry],
    gyldig_fradato_helfo: str | None = None,
) -> int:
    """Write a whole FEST document; `entries` must come grouped by catalogue in XSD order.

    Returns the number of entries written. Raises ValueError on a catalogue out of order,
    since the XSD fixes the sequence of `Kat*` elements.
    """
    out.write(document_start(hentet_dato, gyldig_fradato_helfo))
    current = None
    count = 0
    for entry in entries:
        cat = catalogue(entry.catalogue)
        if current is None or cat.name != current.name:
            if current is not None:
                if cat.order < current.order:
                    raise ValueError(f"catalogue {cat.name} comes after {current.name}; XSD order is fixed")
                out.write(f"</{current.kat}>\n")
            out.write(f"\n<{cat.kat}>")
            current = cat
        out.write("\n" + entry_xml(entry))
        count += 1
    if current is not None:
        out.write(f"\n</{current.kat}>")
    out.write(DOCUMENT_END)
    return count


__all__ = ["DOCUMENT_END", "document_start", "entry_xml", "write_delivery"]
