"""Compare M30 documents as trees: namespace-qualified names, attributes, trimmed text and element
order inside each entry; the order of entries inside a catalogue may differ (the issue's rule)."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from grunndata.m30 import open_xml


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def canonical(el: Any) -> str:
    attrs = ",".join(f"{k}={v}" for k, v in sorted(el.attrib.items()))
    children = "".join(canonical(c) for c in el if isinstance(c.tag, str))
    return f"<{el.tag}|{attrs}|{(el.text or '').strip()}|{children}>"


@dataclass
class Document:
    header: dict[str, str] = field(default_factory=dict)  # HentetDato, GyldigFradatoHelfo
    catalogues: dict[str, Counter[str]] = field(default_factory=dict)  # Kat tag -> entry digests
    ids: dict[str, str] = field(default_factory=dict)  # digest -> Oppf Id, to name a difference
    order: list[str] = field(default_factory=list)  # Kat tags in document order


def read(path: Path) -> Document:
    doc = Document()
    with open_xml(path) as f:
        depth = 0
        for event, el in etree.iterparse(f, events=("start", "end"), resolve_entities=False, no_network=True):
            if event == "start":
                depth += 1
                if depth == 2 and _local(el.tag).startswith("Kat"):
                    doc.order.append(el.tag)
                    doc.catalogues[el.tag] = Counter()
                continue
            depth -= 1
            if depth == 1 and not _local(el.tag).startswith("Kat"):
                doc.header[el.tag] = (el.text or "").strip()
            elif depth == 2:
                digest = hashlib.sha256(canonical(el).encode()).hexdigest()
                doc.catalogues[el.getparent().tag][digest] += 1
                doc.ids[digest] = el[0].text
                el.clear()
                parent = el.getparent()
                while el.getprevious() is not None:
                    del parent[0]
    return doc


def differences(expected: Path, actual: Path, limit: int = 5) -> list[str]:
    """Sentences naming what differs; [] when the documents are equal as trees."""
    a, b = read(expected), read(actual)
    found = []
    if a.header != b.header:
        found.append(f"header {a.header} != {b.header}")
    if a.order != b.order:
        found.append(f"catalogues {a.order} != {b.order}")
    for kat in sorted(set(a.catalogues) | set(b.catalogues)):
        left, right = a.catalogues.get(kat, Counter()), b.catalogues.get(kat, Counter())
        missing, extra = left - right, right - left
        if missing or extra:
            found.append(
                f"{kat}: {sum(missing.values())} entries only in {expected.name} "
                f"(e.g. {[a.ids[d] for d in list(missing)[:limit]]}), {sum(extra.values())} only in "
                f"{actual.name} (e.g. {[b.ids[d] for d in list(extra)[:limit]]})"
            )
    return found
