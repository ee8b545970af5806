"""Build test deliveries from the real extract: read it, change entries, write it back as M30."""

from __future__ import annotations

import dataclasses
import gzip
from collections.abc import Callable, Iterable
from pathlib import Path

from grunndata.importers.fest import FestReader
from grunndata.m30 import FestEntry, write_delivery
from grunndata.m30.records import child


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
