"""Open a FEST file as a stream of XML bytes: plain, gzip or DMP's zip holding one XML.

The format is told by the first bytes, not the name. Every source is capped at `limit` bytes
of XML (GRUNNDATA_MAX_XML_BYTES, passed down from the edge), so a zip or gzip bomb stops with a clear error instead of filling the disk or memory.
"""

from __future__ import annotations

import gzip
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from grunndata.errors import DeliveryError
from grunndata.settings import DEFAULT_MAX_XML_BYTES

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first entry, or the end of an empty one
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_GZIP_MAGIC = b"\x1f\x8b"
_PROLOG_LIMIT = 1 << 16  # a FEST prolog is an XML declaration and perhaps a comment
DOCTYPE_REFUSED = (
    "the file declares a DOCTYPE; FEST deliveries have none, and entity declarations are refused "
    "(no entity is expanded and nothing external is read)"
)


class XmlStream:
    """A read-only byte stream that counts, caps the XML size and turns codec errors into ours."""

    def __init__(self, inner: BinaryIO, raw: BinaryIO, total: int, limit: int, what: str) -> None:
        self._inner, self._raw, self._limit, self._what = inner, raw, limit, what
        self.total = total  # size of the file on disk, for progress
        self.read_bytes = 0
        self.at_end = False  # the whole file was read: a parse error now means it was cut short
        self._prolog: bytes | None = b""  # the bytes before the root element, until it is seen

    @property
    def position(self) -> int:
        """How far into the file on disk we are, for a progress bar."""
        try:
            return min(self._raw.tell(), self.total)
        except (OSError, ValueError):
            return 0

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._inner.read(size if size and size > 0 else 1 << 16)
        except (EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile) as e:
            raise DeliveryError(f"the {self._what} is damaged or truncated: {e}") from None
        self.read_bytes += len(data)
        self.at_end = not data
        if self._prolog is not None:
            self._check_prolog(data)
        if self.read_bytes > self._limit:
            raise DeliveryError(
                f"the {self._what} expands beyond {self._limit:,} bytes of XML, more than any real "
                "delivery; refusing it (set GRUNNDATA_MAX_XML_BYTES to raise the limit)"
            )
        return data

    def without_prolog_check(self) -> XmlStream:
        """The same stream, its first bytes not checked (to see what a file is before refusing it)."""
        self._prolog = None
        return self

    def _check_prolog(self, data: bytes) -> None:
        """Refuse what is no UTF-8 XML, and a DOCTYPE, before the parser sees it, so that no XML
        library decides what we say (it would call the first odd byte of a binary file a control
        character)."""
        if not self._prolog and data:  # the first bytes of the file
            if data.startswith(_UTF16_BOMS):
                raise DeliveryError(
                    "the file is UTF-16 (it starts with a UTF-16 byte order mark); FEST is always UTF-8"
                )
            start = data.removeprefix(b"\xef\xbb\xbf").lstrip()
            if start and not start.startswith(b"<"):
                raise DeliveryError("the file is not XML: it does not begin with <")
        prolog = (self._prolog or b"") + data
        root = re.search(rb"<[A-Za-z_:]", prolog)
        head = prolog[: root.start()] if root else prolog
        if b"<!DOCTYPE" in head.upper():
            raise DeliveryError(DOCTYPE_REFUSED, line=head.count(b"\n") + 1)
        self._prolog = None if root or len(prolog) > _PROLOG_LIMIT else prolog


def safe_parser(huge_tree: bool = False) -> etree.XMLParser:
    """A parser that expands no entity and reads nothing from the network, for every XML we read
    whole (FHIR XML, the M30 XSD, a FEST delivery checked against it). `huge_tree` lifts libxml2's
    limits on one text node and on depth, as the FEST reader does: the input's size is capped apart."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=huge_tree)


def check_file(path: Path) -> int:
    """The size of `path`; DeliveryError if it is missing, a folder or empty."""
    if not path.exists():
        raise DeliveryError(f"no such file: {path}")
    if path.is_dir():
        raise DeliveryError(f"{path} is a directory, not a FEST file")
    total = path.stat().st_size
    if total == 0:
        raise DeliveryError(f"{path.name} is empty")
    return total


@contextmanager
def open_xml(path: Path, limit: int = DEFAULT_MAX_XML_BYTES) -> Iterator[XmlStream]:
    """Yield at most `limit` bytes of XML from `path`, whatever its packaging; DeliveryError if it
    has none (or more)."""
    total = check_file(path)
    with open(path, "rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        if magic.startswith(_ZIP_MAGIC):
            yield from _open_zip(path, raw, total, limit)
        elif magic.startswith(_GZIP_MAGIC):
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield XmlStream(gz, raw, total, limit, "gzip file")  # type: ignore[arg-type]
        else:
            yield XmlStream(raw, raw, total, limit, "file")


def _open_zip(path: Path, raw: BinaryIO, total: int, limit: int) -> Iterator[XmlStream]:
    try:
        archive = zipfile.ZipFile(raw)
    except zipfile.BadZipFile as e:
        raise DeliveryError(f"{path.name} is not a readable zip file (truncated or damaged?): {e}") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) != 1:
            names = ", ".join(m.filename for m in members[:5]) or "nothing"
            raise DeliveryError(f"a FEST zip holds exactly one XML file; {path.name} holds {names}")
        member = members[0]
        if member.file_size > limit:
            raise DeliveryError(
                f"{member.filename} in {path.name} expands to {member.file_size:,} bytes, beyond the "
                f"limit of {limit:,}; refusing it (set GRUNNDATA_MAX_XML_BYTES to raise the limit)"
            )
        try:
            inner = archive.open(member)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as e:
            raise DeliveryError(f"cannot open {member.filename} in {path.name}: {e}") from None
        with inner:
            yield XmlStream(inner, raw, total, limit, "zip file")  # type: ignore[arg-type]
