"""Generate a complete, realistic FEST M30 delivery (all entries Status A) of any size.

The delivery is built as a linked model first (so every Ref* resolves), then streamed through
`grunndata.m30.write_delivery` entry by entry into .xml, .xml.gz or .zip.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from grunndata.m30 import FestEntry, catalogues, write_delivery

from .emit import all_entries
from .model import World, scaled_counts
from .util import parse_hentet_dato

DEFAULT_HENTET_DATO = "2026-11-14T03:12:45.1234567+01:00"
ZIP_ENTRY_NAME = "fest251.xml"  # what DMP's fest251.zip holds
PROGRESS_EVERY = 1000

Progress = Callable[[str, int], None]


class _TextSink:
    """A text stream over a binary one that encodes in ~1 MB chunks (gzip and zip like few writes)."""

    def __init__(self, raw: BinaryIO, chunk: int = 1 << 20) -> None:
        self._raw = raw
        self._parts: list[str] = []
        self._size = 0
        self._chunk = chunk

    def write(self, text: str) -> int:
        self._parts.append(text)
        self._size += len(text)
        if self._size >= self._chunk:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self._parts:
            self._raw.write("".join(self._parts).encode("utf-8"))
            self._parts.clear()
            self._size = 0


def _zip_time(hentet_dato: str) -> tuple[int, int, int, int, int, int]:
    day, _ = parse_hentet_dato(hentet_dato)
    return (max(day.year, 1980), day.month, day.day, 3, 0, 0)


def _mtime(hentet_dato: str) -> int:
    day, _ = parse_hentet_dato(hentet_dato)
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())  # noqa: UP017


@contextlib.contextmanager
def open_delivery(path: Path, hentet_dato: str) -> Iterator[_TextSink]:
    """A text sink for a delivery at `path`, compressed by suffix, replaced atomically on success.

    Timestamps inside .gz and .zip come from HentetDato, so equal content gives equal bytes.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    name = path.name.lower()
    try:
        with open(tmp, "wb") as raw:
            if name.endswith(".zip"):
                with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                    info = zipfile.ZipInfo(ZIP_ENTRY_NAME, date_time=_zip_time(hentet_dato))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = 0o644 << 16
                    with zf.open(info, "w", force_zip64=True) as entry:
                        sink = _TextSink(entry)  # type: ignore[arg-type]
                        yield sink
                        sink.flush()
            elif name.endswith(".gz"):
                with gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=_mtime(hentet_dato)
                ) as gz:
                    sink = _TextSink(gz)  # type: ignore[arg-type]
                    yield sink
                    sink.flush()
            else:
                sink = _TextSink(raw)
                yield sink
                sink.flush()
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def open_delivery_input(path: Path) -> Iterator[BinaryIO]:
    """The XML bytes of a delivery in .xml, .xml.gz or .zip (the first .xml entry)."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist() if m.lower().endswith(".xml")] or zf.namelist()
            with zf.open(members[0]) as f:
                yield f  # type: ignore[misc]
    elif name.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            yield f  # type: ignore[misc]
    else:
        with open(path, "rb") as f:
            yield f


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
