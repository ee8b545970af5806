"""What the server keeps between requests: the snapshot being served and recently read versions."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC
from typing import Generic, TypeVar

from sqlalchemy.engine import Connection, Engine

from grunndata.server.auth import ANONYMOUS, Authenticator, AuthSettings
from grunndata.server.observe import READ_HIT, READ_MISS, SEARCH_HIT, SEARCH_MISS
from grunndata.settings import Settings
from grunndata.store import (
    Entitled,
    Snapshot,
    Version,
    current_snapshot,
    may_read,
    read,
    read_with_r4,
    release_lines,
    served_pks,
    versions_by_pk,
)

JSON_CONTENT_TYPE = b"application/fhir+json; charset=utf-8"
log = logging.getLogger("grunndata.server")
T = TypeVar("T")
_DEFAULTS = Settings.load({})  # the defaults alone, no environment


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(version: Version) -> str:
    """Last-Modified: `email.utils.format_datetime(t, usegmt=True)`'s text, made directly (it was
    a third of preparing a version, and a first-time search prepares each one it finds)."""
    t = version.last_updated
    t = (t.replace(tzinfo=UTC) if t.tzinfo is None else t).astimezone(UTC)
    return (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT"
    )


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


@dataclass(frozen=True, slots=True)
class _Current:
    """One snapshot with what belongs to it: whose each release is, and each entitlement's view."""

    snapshot: Snapshot
    lines: dict[int, tuple[str, str]]  # release -> (tier, owner)
    views: dict[str, Snapshot]  # entitlement key -> the releases it may read


class Pace:
    """Called in the loops of a long build in a thread of its own (a new snapshot's indexes): keeps
    the build to `share` of the wall time, so the threads answering requests find the interpreter
    free.

    A build that held the interpreter lock for ~3 s at full size gave it up only when forced, every
    switch interval (5 ms): each time a request's handling released the lock (a SQLite step, a
    socket write) it waited up to that long to get it back, and a read's p99 during a release
    switch was 2.6x the quiet one (issue 23, item 4). Paced, the build works for at most SLICE
    seconds of its thread's CPU time (holding the lock is using the CPU; time the others held it
    is not counted), then sleeps for as long as keeps it to its share; at 1 it never sleeps.
    """

    SLICE = 0.001  # seconds of work between two pauses: what a waiting request may wait at most
    CHECK = 16  # calls between two looks at the clock (each call is a loop step of microseconds)

    def __init__(
        self,
        share: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.thread_time,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"a build's share of the wall time is more than 0 and at most 1, not {share!r}")
        self.share = share
        self.sleep, self.clock = sleep, clock
        self.calls = 0
        self.pauses = 0
        self.slept = 0.0
        self._since = self.clock()

    def __call__(self) -> None:
        if self.share >= 1:
            return
        self.calls += 1
        if self.calls % self.CHECK:
            return
        now = self.clock()
        worked = now - self._since
        if worked >= self.SLICE:
            pause = worked * (1 - self.share) / self.share
            self.sleep(pause)
            self.pauses += 1
            self.slept += pause
            self._since = self.clock()


def give_back_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's malloc_trim; nothing elsewhere):
    a swapped-out snapshot's indexes, freed, otherwise stayed in the server's resident memory."""
    if _TRIM is not None:
        _TRIM(0)  # ctypes releases the interpreter lock meanwhile


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc
        return None
    return trim


_TRIM = _malloc_trim()


def _entitlement_key(entitled: Entitled) -> str:
    return f"{int(entitled.sector)}:{','.join(sorted(entitled.supplementary))}"


@dataclass
class Served:
    """The engine and the authenticator, plus two caches that make a read by id a dictionary lookup.

    A newly activated release is picked up within `snapshot_seconds`; cached versions belong to
    one snapshot, so they can never be served from a newer one. The defaults are `Settings`'; the
    app factory passes the configured values (GRUNNDATA_SNAPSHOT_SECONDS, _READ_CACHE,
    _SEARCH_CACHE_MB).
    """

    engine: Engine
    auth: Authenticator = field(default_factory=lambda: Authenticator(AuthSettings()))
    snapshot_seconds: float = _DEFAULTS.snapshot_seconds
    prepare_share: float = _DEFAULTS.prepare_share  # of a new snapshot's builds' wall time (Pace)
    cache_size: int = _DEFAULTS.read_cache
    _served: _Current | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _checked: float = 0.0
    _reads: dict[tuple[str, str], Prepared] = field(default_factory=dict)
    _reads_lock: threading.Lock = field(default_factory=threading.Lock)
    search_cache_bytes: int = _DEFAULTS.search_cache_bytes  # 0 turns it off
    r4_stored: bool = True  # the store has R4 bodies (resource_r4); False: read_r4 reads the version alone
    _searches: dict[tuple[bytes, ...], tuple[list[tuple[bytes, bytes]], bytes]] = field(default_factory=dict)
    _searches_size: int = 0
    # run on a new snapshot before it is served (the terminology indexes), given its part that
    # anyone may read: meanwhile the previous one is served whole, so no request waits for them
    # and every answer is of one snapshot
    preparers: list[Callable[[Snapshot], None]] = field(default_factory=list)
    _preparing: str | None = None  # the token of the snapshot being prepared
    # told the national part's token once a snapshot is swapped in: each drops what it kept of others
    forgetters: list[Callable[[str], None]] = field(default_factory=list)

    def pace(self) -> Callable[[], None]:
        """What a new snapshot's builds call in their loops: they take `prepare_share` of the wall
        time (GRUNNDATA_PREPARE_SHARE)."""
        return Pace(self.prepare_share)

    def snapshot(self, entitled: Entitled | None = None) -> Snapshot:
        """The releases served now; with `entitled`, only those whose data it may read.

        `None` means every release (for the server's own bookkeeping, never for answering a client).
        Called from the event loop and worker threads alike: a new snapshot is swapped in whole,
        under a lock, with the lines and views that belong to it.
        """
        now = time.monotonic()
        if self._served is None or now - self._checked >= self.snapshot_seconds:
            with self._lock:
                if self._served is None or now - self._checked >= self.snapshot_seconds:
                    self._refresh_locked()
                    self._checked = now
        served = self._served
        assert served is not None
        if entitled is None:
            return served.snapshot
        key = _entitlement_key(entitled)
        view = served.views.get(key)
        if view is None:
            view = Snapshot(
                tuple(r for r in served.snapshot.releases if may_read(entitled, *served.lines[r]))
            )
            served.views[key] = view
        return view

    def _refresh_locked(self) -> None:
        with self.engine.connect() as conn:
            snapshot = current_snapshot(conn)
            if self._served is not None and snapshot == self._served.snapshot:
                self._preparing = None  # back to what is served (a rollback): swap nothing in
                return
            lines = release_lines(conn, snapshot.releases)
        if self._served is None or not self.preparers:
            self._swap(snapshot, lines)
        elif self._preparing != snapshot.token:
            self._preparing = snapshot.token
            threading.Thread(
                target=self._prepare_then_swap, args=(snapshot, lines), name="prepare", daemon=True
            ).start()

    def _prepare_then_swap(self, snapshot: Snapshot, lines: dict[int, tuple[str, str]]) -> None:
        public = self._prepare(snapshot, lines)
        carried = self._still_served(snapshot)
        with self._lock:
            swapped = self._preparing == snapshot.token  # still the newest
            if swapped:
                self._swap(snapshot, lines, carried)
                self._preparing = None
        if swapped:
            self._forget_others(public)

    def _prepare(self, snapshot: Snapshot, lines: dict[int, tuple[str, str]]) -> Snapshot:
        public = Snapshot(tuple(r for r in snapshot.releases if may_read(ANONYMOUS, *lines[r])))
        for prepare in self.preparers:
            try:
                prepare(public)
            except Exception:  # served anyway; what failed is made at its first request instead
                log.exception("could not prepare snapshot %s", snapshot.token)
        return public

    def _still_served(self, snapshot: Snapshot) -> dict[tuple[str, str], Prepared]:
        """The cached reads `snapshot` serves unchanged (the same stored version, the only one under
        its id), to carry over: emptied at a swap, the cache sent every read of the next seconds to
        the store at once (on PostgreSQL a round trip each), and a read's p99 in a release switch's
        window with it."""
        with self._reads_lock:
            reads = dict(self._reads)
        if not reads:
            return {}
        try:
            with self.engine.connect() as conn:
                now = served_pks(conn, snapshot, reads)
        except Exception:  # the store gone for a moment: the new snapshot starts with an empty cache
            log.exception("could not carry the read cache over to snapshot %s", snapshot.token)
            return {}
        return {key: p for key, p in reads.items() if now.get(key) == [p.version.pk]}

    def _forget_others(self, public: Snapshot) -> None:
        """After a swap: the previous snapshot's indexes go at once (they kept ~300 MB alive until
        the next release's build), and the freed memory back to the system."""
        for forget in self.forgetters:
            forget(public.token)
        give_back_memory()

    def _swap(
        self,
        snapshot: Snapshot,
        lines: dict[int, tuple[str, str]],
        carried: dict[tuple[str, str], Prepared] | None = None,
    ) -> None:
        with self._reads_lock:
            self._reads, self._searches, self._searches_size = carried or {}, {}, 0
            self._served = _Current(snapshot, lines, {})

    def serve_newest(self) -> None:
        """Serve the newest snapshot now, prepared in this thread (after an import through the API,
        so its answer is true of the next request). Nothing changes if it is served already, and
        nothing is swapped in that another import has overtaken meanwhile."""
        with self.engine.connect() as conn:
            snapshot = current_snapshot(conn)
            if self._served is not None and snapshot == self._served.snapshot:
                return
            lines = release_lines(conn, snapshot.releases)
        public = self._prepare(snapshot, lines)
        carried = self._still_served(snapshot)
        with self._lock, self.engine.connect() as conn:
            swapped = current_snapshot(conn) == snapshot and (
                self._served is None or self._served.snapshot != snapshot
            )
            if swapped:
                self._swap(snapshot, lines, carried)
                self._preparing = None
                self._checked = time.monotonic()
        if swapped:
            self._forget_others(public)

    @property
    def _snapshot(self) -> Snapshot | None:
        return None if self._served is None else self._served.snapshot

    def visible(self, entitled: Entitled, snapshot: Snapshot) -> Snapshot | None:
        """`snapshot` (from a paging link, perhaps old) if `entitled` may read every release it
        names; None when it names one that does not exist or one of a line `entitled` may not read:
        the two look alike (a 410), so a client cannot learn by trying numbers when a restricted
        line had a release."""
        with self.engine.connect() as conn:
            lines = release_lines(conn, snapshot.releases)
        if len(lines) != len(snapshot.releases):
            return None
        if not all(may_read(entitled, *lines[r]) for r in snapshot.releases):
            return None
        return snapshot

    def read(self, rtype: str, rid: str, entitled: Entitled) -> Prepared | None:
        """The served version of (rtype, rid) if `entitled` may read it, ready to send, cached."""
        found = self._read(rtype, rid)
        if found is None or not may_read(entitled, found.version.tier, found.version.owner):
            return None
        return found

    def _read(self, rtype: str, rid: str) -> Prepared | None:
        snapshot = self.snapshot()
        key = (rtype, rid)
        found = self._reads.get(key)
        if found is not None:
            READ_HIT.inc()
            return found
        READ_MISS.inc()
        with self.engine.connect() as conn:
            version = read(conn, snapshot, rtype, rid)
        return None if version is None else self._keep(snapshot, key, Prepared.of(version))

    def read_r4(self, rtype: str, rid: str, entitled: Entitled) -> tuple[Prepared, bytes | None] | None:
        """As `read`, for an R4 answer (server/r4view.py): when the version is not cached, its R4 body
        stored at import comes in the same query (None: cached, or none stored)."""
        snapshot = self.snapshot()
        key = (rtype, rid)
        found, r4 = self._reads.get(key), None
        if found is not None:
            READ_HIT.inc()
        else:
            READ_MISS.inc()
            with self.engine.connect() as conn:
                if self.r4_stored:
                    got = read_with_r4(conn, snapshot, rtype, rid)
                else:
                    version = read(conn, snapshot, rtype, rid)
                    got = None if version is None else (version, None)
            if got is None:
                return None
            found, r4 = self._keep(snapshot, key, Prepared.of(got[0])), got[1]
        if not may_read(entitled, found.version.tier, found.version.owner):
            return None
        return found, r4

    def cached(self, rtype: str, pks: list[int], ids: list[str]) -> dict[int, Prepared]:
        """Those of the stored versions `pks` (of `rtype`, ids `ids`) the read cache holds, by pk."""
        reads, found = self._reads, {}
        for pk, rid in zip(pks, ids, strict=True):
            cached = reads.get((rtype, rid))
            if cached is not None and cached.version.pk == pk:
                found[pk] = cached
        return found

    def prepared(
        self, rtype: str, pks: list[int], ids: list[str], whole: Snapshot, cached: dict[int, Prepared]
    ) -> list[Prepared]:
        """The stored versions `pks` (of `rtype`, ids `ids`) in that order, ready to send: those in
        `cached` (what `cached()` gave), the rest read in one query and kept in the read cache, for
        reads and searches alike (a search's page from the in-memory index). `whole` is the served
        snapshot the pks were found in (`snapshot()` taken before the view they were searched in):
        what was read is kept only while that is still the snapshot served."""
        found = dict(cached)
        missing = [pk for pk in pks if pk not in found]
        if missing:
            for pk, version in versions_by_pk(self.engine, missing).items():
                found[pk] = self._keep(whole, (rtype, version.id), Prepared.of(version))
        return [found[pk] for pk in pks]

    def _keep(self, snapshot: Snapshot, key: tuple[str, str], prepared: Prepared) -> Prepared:
        if self.cache_size <= 0:  # GRUNNDATA_READ_CACHE=0: no cache
            return prepared
        # worker threads keep what they read (routes, a search's page on a database server): two
        # evicting the same oldest entry at once would raise, and a swap between the check of the
        # snapshot and the keeping would keep an old version in the new snapshot's cache
        with self._reads_lock:
            if snapshot is self._snapshot:
                reads = self._reads
                if len(reads) >= self.cache_size:
                    del reads[next(iter(reads))]  # the oldest entry
                reads[key] = prepared
        return prepared

    def cached_search(self, key: tuple[bytes, ...]) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
        """A search answer given before in this snapshot (the key starts with its token)."""
        found = self._searches.get(key)
        (SEARCH_MISS if found is None else SEARCH_HIT).inc()
        return found

    def keep_search(self, key: tuple[bytes, ...], headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        if len(body) > self.search_cache_bytes // 16:
            return
        while self._searches and self._searches_size + len(body) > self.search_cache_bytes:
            oldest = next(iter(self._searches))
            self._searches_size -= len(self._searches.pop(oldest)[1])
        self._searches[key] = (headers, body)
        self._searches_size += len(body)


class PerSnapshot(Generic[T]):
    """A value made once for each snapshot served (the terminology indexes, the search index), in a
    thread of its own: before the snapshot is served (`prepare`, one of Served.preparers) or, for
    the first snapshot after start, at its first request (`future`), whose waiters share one build.

    Kept: the served snapshot's and the KEEP newest (a late build of an older snapshot must not
    push out the one about to be served). A build that fails is forgotten, so the next request tries
    again. The futures handed out are running from the start: a waiter that goes away (a request,
    the warm-up task at shutdown) cannot cancel the build the others wait for.
    """

    KEEP = 2  # the served snapshot's and one being prepared

    def __init__(self, served: Served, name: str, make: Callable[[Snapshot], T]) -> None:
        self.served = served
        self.name = name  # the build thread's name, and the logs'
        self.make = make
        self._built: dict[str, T] = {}
        self._building: dict[str, Future[T]] = {}
        self._lock = threading.Lock()
        served.preparers.append(self.prepare)
        served.forgetters.append(self.forget)

    def forget(self, token: str) -> None:
        """Drop the values made before that of `token`'s snapshot (just swapped in): the one served
        until now among them. Those made since (a newer snapshot's, being prepared) stay."""
        with self._lock:
            tokens = list(self._built)
            if token in tokens:
                self._built = {t: self._built[t] for t in tokens[tokens.index(token) :]}

    def prepare(self, snapshot: Snapshot) -> None:
        """Make `snapshot`'s value (the national part, as `served.snapshot(ANONYMOUS)` gives it),
        waiting in this thread."""
        self.future(snapshot).result()

    def built(self, token: str) -> T | None:
        """The value of the snapshot of `token` if it is made."""
        return self._built.get(token)

    def future(self, snapshot: Snapshot) -> Future[T]:
        """`snapshot`'s value: made, or being made (started here if need be)."""
        with self._lock:
            future: Future[T] | None
            built = self._built.get(snapshot.token)
            if built is not None:
                future = Future()
                future.set_result(built)
                return future
            future = self._building.get(snapshot.token)
            if future is None:
                future = self._building[snapshot.token] = Future()
                future.set_running_or_notify_cancel()  # from now on cancel() is refused
                threading.Thread(
                    target=self._make_into, args=(snapshot, future), name=self.name, daemon=True
                ).start()
            return future

    def _make_into(self, snapshot: Snapshot, future: Future[T]) -> None:
        """Make, keep, and always settle `future` (its waiters must never hang)."""
        try:
            made = self.make(snapshot)
            served = self.served.snapshot(ANONYMOUS).token  # may query the store: not under the lock
        except BaseException as e:  # the store gone for a moment: the next request tries again
            log.exception("could not make the %s of snapshot %s", self.name, snapshot.token)
            with self._lock:
                self._building.pop(snapshot.token, None)
            future.set_exception(e)
            return
        with self._lock:
            kept = {t: v for t, v in self._built.items() if t != snapshot.token}
            kept[snapshot.token] = made  # newest last
            newest = list(kept)[-self.KEEP :]
            self._built = {t: v for t, v in kept.items() if t == served or t in newest}
            self._building.pop(snapshot.token, None)
        future.set_result(made)


class SnapshotMemo(Generic[T]):
    """A value made once per store and snapshot, in the thread that first asks for it, with the
    caller's connection (the pages' indexes of notices, disagreements and salts: made at a page's
    first request, and only pages wait for them). One is kept: the last snapshot's."""

    def __init__(self, make: Callable[[Connection, Snapshot], T]) -> None:
        self.make = make
        self._lock = threading.Lock()
        self._made: tuple[tuple[int, str], T] | None = None

    def get(self, conn: Connection, snapshot: Snapshot) -> T:
        key = (id(conn.engine), snapshot.token)  # one store's snapshot: tests serve several stores
        made = self._made
        if made is not None and made[0] == key:
            return made[1]
        with self._lock:
            if self._made is None or self._made[0] != key:
                self._made = (key, self.make(conn, snapshot))
            return self._made[1]
