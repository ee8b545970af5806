"""M30 files as DMP ships them: plain .xml, .xml.gz, or a .zip holding one fest251.xml.

The generator and the M30 export both write through `open_delivery`, so a written file is
replaced only once complete: a reader never sees half a delivery.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import BinaryIO

ZIP_ENTRY_NAME = "fest251.xml"  # what DMP's fest251.zip holds


class TextSink:
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


def _day(hentet_dato: str) -> date:
    """The date of an xs:dateTime (its first ten characters); 1980-01-01 if it has none."""
    try:
        return date.fromisoformat(hentet_dato.strip()[:10])
    except ValueError:
        return date(1980, 1, 1)


def _zip_time(hentet_dato: str) -> tuple[int, int, int, int, int, int]:
    day = _day(hentet_dato)
    return (max(day.year, 1980), day.month, day.day, 3, 0, 0)


def _mtime(hentet_dato: str) -> int:
    day = _day(hentet_dato)
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())  # noqa: UP017


@contextlib.contextmanager
def open_delivery(path: Path, hentet_dato: str, compresslevel: int = 6) -> Iterator[TextSink]:
    """A text sink for a delivery at `path`, compressed by suffix, replaced atomically on success.

    Timestamps inside .gz and .zip come from HentetDato, so equal content gives equal bytes.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    name = path.name.lower()
    try:
        with open(tmp, "wb") as raw:
            if name.endswith(".zip"):
                with zipfile.ZipFile(
                    raw, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel
                ) as zf:
                    info = zipfile.ZipInfo(ZIP_ENTRY_NAME, date_time=_zip_time(hentet_dato))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = 0o644 << 16
                    with zf.open(info, "w", force_zip64=True) as entry:
                        sink = TextSink(entry)  # type: ignore[arg-type]
                        yield sink
                        sink.flush()
            elif name.endswith(".gz"):
                with gzip.GzipFile(
                    filename="",
                    mode="wb",
                    fileobj=raw,
                    compresslevel=compresslevel,
                    mtime=_mtime(hentet_dato),
                ) as gz:
                    sink = TextSink(gz)  # type: ignore[arg-type]
                    yield sink
                    sink.flush()
            else:
                sink = TextSink(raw)
                yield sink
                sink.flush()
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
