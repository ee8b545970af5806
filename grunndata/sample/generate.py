"""Generate a complete, realistic FEST M30 delivery (all entries Status A) of any size.

The delivery is built as a linked model first (so every Ref* resolves), then streamed through
`grunndata.m30.write_delivery` entry by entry into .xml, .xml.gz or .zip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from grunndata.m30 import FestEntry, catalogues, open_delivery, write_delivery

from .emit import all_entries
from .model import World, scaled_counts
from .util import parse_hentet_dato

DEFAULT_HENTET_DATO = "2026-11-14T03:12:45.1234567+01:00"
PROGRESS_EVERY = 1000

Progress = Callable[[str, int], None]


def counted(
    entries: Iterable[FestEntry], counts: dict[str, int], progress: Progress | None
) -> Iterator[FestEntry]:
    """Pass entries through, counting them per catalogue and reporting every ~1000 and at each end."""
    current: str | None = None
    n = 0
    for entry in entries:
        if entry.catalogue != current:
            if current is not None and progress is not None and n % PROGRESS_EVERY:
                progress(current, n)
            current, n = entry.catalogue, 0
        n += 1
        counts[current] = n
        if progress is not None and n % PROGRESS_EVERY == 0:
            progress(current, n)
        yield entry
    if current is not None and progress is not None and n % PROGRESS_EVERY:
        progress(current, n)


def generate_delivery(
    path: Path,
    *,
    scale: float = 1.0,
    seed: int = 0,
    hentet_dato: str | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Write a full FEST delivery to `path` (.xml, .xml.gz or .zip) and return entries per catalogue.

    `scale` multiplies the entry counts of a real delivery (1.0 is about 69,000 entries and
    118 MB of XML); the same seed and scale always give the same bytes.
    """
    hentet = hentet_dato or DEFAULT_HENTET_DATO
    day, _ = parse_hentet_dato(hentet)
    world = World(scaled_counts(scale), seed, day)
    counts: dict[str, int] = {}
    with open_delivery(Path(path), hentet) as out:
        write_delivery(out, hentet, counted(all_entries(world), counts, progress))  # type: ignore[arg-type]
    return {cat.name: counts.get(cat.name, 0) for cat in catalogues()}
