"""What the server keeps between requests: the snapshot being served and recently read versions."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from grunndata.store.reads import Snapshot, Version, current_snapshot, read

SNAPSHOT_SECONDS = float(os.environ.get("GRUNNDATA_SNAPSHOT_SECONDS", "1.0"))
READ_CACHE_SIZE = int(os.environ.get("GRUNNDATA_READ_CACHE", "20000"))


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
    _reads: dict[tuple[str, str], Version] = field(default_factory=dict)

    def snapshot(self) -> Snapshot:
        now = time.monotonic()
        if self._snapshot is None or now - self._checked >= self.snapshot_seconds:
            with self.engine.connect() as conn:
                snapshot = current_snapshot(conn)
            if snapshot != self._snapshot:
                self._reads = {}
                self._snapshot = snapshot
            self._checked = now
        assert self._snapshot is not None
        return self._snapshot

    def read(self, rtype: str, rid: str) -> tuple[Snapshot, Version | None]:
        """The served version of (rtype, rid), from the cache when it is there."""
        snapshot = self.snapshot()
        key = (rtype, rid)
        found = self._reads.get(key)
        if found is not None:
            return snapshot, found
        with self.engine.connect() as conn:
            found = read(conn, snapshot, rtype, rid)
        if found is not None and snapshot is self._snapshot:
            if len(self._reads) >= self.cache_size:
                del self._reads[next(iter(self._reads))]  # the oldest entry
            self._reads[key] = found
        return snapshot, found
