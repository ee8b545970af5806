"""What the server keeps between requests: the snapshot being served and recently read versions."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import format_datetime

from sqlalchemy.engine import Engine

from grunndata.store.reads import Snapshot, Version, current_snapshot, read

SNAPSHOT_SECONDS = float(os.environ.get("GRUNNDATA_SNAPSHOT_SECONDS", "1.0"))
READ_CACHE_SIZE = int(os.environ.get("GRUNNDATA_READ_CACHE", "50000"))
SEARCH_CACHE_MB = float(os.environ.get("GRUNNDATA_SEARCH_CACHE_MB", "256"))  # 0 turns it off
JSON_CONTENT_TYPE = b"application/fhir+json; charset=utf-8"


def http_date(version: Version) -> str:
    t = version.last_updated
    return format_datetime((t.replace(tzinfo=UTC) if t.tzinfo is None else t).astimezone(UTC), usegmt=True)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A served version with its JSON body and response headers made once, sent many times."""

    version: Version
    body: bytes
    etag: str
    last_modified: str

    @classmethod
    def of(cls, version: Version) -> Prepared:
        return cls(version, version.body(), f'W/"{version.version}"', http_date(version))

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", JSON_CONTENT_TYPE),
            (b"content-length", str(len(self.body)).encode()),
            (b"etag", self.etag.encode()),
            (b"last-modified", self.last_modified.encode()),
        ]


@dataclass
class Served:
    """The engine, plus two caches that make a read by id a dictionary lookup.

    A newly activated release is picked up within SNAPSHOT_SECONDS; cached versions belong to
    one snapshot, so they can never be served from a newer one.
    """

    engine: Engine
    snapshot_seconds: float = SNAPSHOT_SECONDS
    cache_size: int = READ_CACHE_SIZE
    _snapshot: Snapshot | None = None
    _checked: float = 0.0
    _reads: dict[tuple[str, str], Prepared] = field(default_factory=dict)
    search_cache_bytes: int = int(SEARCH_CACHE_MB * 1024 * 1024)
    _searches: dict[tuple[bytes, ...], tuple[list[tuple[bytes, bytes]], bytes]] = field(default_factory=dict)
    _searches_size: int = 0

    def snapshot(self) -> Snapshot:
        now = time.monotonic()
        if self._snapshot is None or now - self._checked >= self.snapshot_seconds:
            with self.engine.connect() as conn:
                snapshot = current_snapshot(conn)
            if snapshot != self._snapshot:
                self._reads, self._searches, self._searches_size = {}, {}, 0
                self._snapshot = snapshot
            self._checked = now
        assert self._snapshot is not None
        return self._snapshot

    def read(self, rtype: str, rid: str) -> Prepared | None:
        """The served version of (rtype, rid), ready to send, from the cache when it is there."""
        snapshot = self.snapshot()
        key = (rtype, rid)
        found = self._reads.get(key)
        if found is not None:
            return found
        with self.engine.connect() as conn:
            version = read(conn, snapshot, rtype, rid)
        if version is None:
            return None
        prepared = Prepared.of(version)
        if snapshot is self._snapshot:
            if len(self._reads) >= self.cache_size:
                del self._reads[next(iter(self._reads))]  # the oldest entry
            self._reads[key] = prepared
        return prepared

    def cached_search(self, key: tuple[bytes, ...]) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
        """A search answer given before in this snapshot (the key starts with its token)."""
        return self._searches.get(key)

    def keep_search(self, key: tuple[bytes, ...], headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        if len(body) > self.search_cache_bytes // 16:
            return
        while self._searches and self._searches_size + len(body) > self.search_cache_bytes:
            oldest = next(iter(self._searches))
            self._searches_size -= len(self._searches.pop(oldest)[1])
        self._searches[key] = (headers, body)
        self._searches_size += len(body)
