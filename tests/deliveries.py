"""Build test deliveries from the real extract: read it, change entries, write it back as M30."""

from __future__ import annotations

import dataclasses
import gzip
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from grunndata.m30 import FestEntry, FestReader, write_delivery
from grunndata.m30.records import FS_NS, catalogue, child
from grunndata.m30.writer import DOCUMENT_END, document_start, entry_xml


def real_entries(path: Path) -> tuple[str, list[FestEntry]]:
    reader = FestReader(path)
    entries = [entry for entry, _ in reader.entries()]
    assert reader.hentet_dato is not None
    return reader.hentet_dato, entries


def write(path: Path, hentet_dato: str, entries: Iterable[FestEntry]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as f:  # type: ignore[operator]
        write_delivery(f, hentet_dato, entries)
    return path


def write_as_it_comes(
    path: Path, hentet_dato: str, entries: Iterable[FestEntry], order: Sequence[str]
) -> Path:
    """A delivery shaped like the 2026 extract FAR reads (reference/fest-m30.md §6.1): catalogues in
    `order` rather than the XSD's, and payloads in the m30 namespace (no forskrivning xmlns)."""
    by_catalogue: dict[str, list[FestEntry]] = {}
    for entry in entries:
        by_catalogue.setdefault(entry.catalogue, []).append(entry)
    assert sorted(order) == sorted(by_catalogue), "name every catalogue of the entries once"
    parts = [document_start(hentet_dato)]
    for name in order:
        kat = catalogue(name).kat
        parts.append(f"\n<{kat}>")
        parts += ["\n" + entry_xml(e).replace(f' xmlns="{FS_NS}"', "") for e in by_catalogue[name]]
        parts.append(f"\n</{kat}>")
    parts.append(DOCUMENT_END)
    path.write_text("".join(parts), encoding="utf-8")
    return path


def relisted(entry: FestEntry, oppf_id: str, change: Callable[[list], None] | None = None) -> FestEntry:
    """The entry as DMP lists a change: a new Oppf Id and Tidspunkt, same inner Id, new content."""
    import copy

    payload = copy.deepcopy(list(entry.payload))
    if change:
        change(payload)
    return dataclasses.replace(
        entry, oppf_id=oppf_id, tidspunkt="2017-04-20T10:00:00", payload=tuple(payload)
    )


def expiry(entry: FestEntry) -> FestEntry:
    """A Status U entry naming `entry` by its Oppf Id, as incremental deliveries carry them."""
    return FestEntry(entry.catalogue, entry.oppf_id, "2017-04-20T10:00:00", "U", "Utgått oppføring", ())


def set_text(node: list, name: str, value: str) -> None:
    found = child(node, name)
    assert found is not None, name
    found[2] = value
