"""Building, activating, listing and rolling back releases.

An import runs inside one `ReleaseBuilder`: it takes the store's import lock, records a
`building` release, writes new resource versions and the new manifest in one transaction, and
activates the release in that same commit. A crash or `kill -9` before the commit leaves the
previous release active and nothing of the new one but its `building` row, which the next
import marks `failed`.

A *staged* release (`stage=True`) is written and committed the same way but not activated: no
client sees it until `activate` makes it active with the same switch an import ends with (or
`discard` removes its data). Its versions' rows exist meanwhile; everything that reads versions
outside a snapshot keeps to released ones (store/access.py `readable`).
"""

from __future__ import annotations

import fcntl
import itertools
import os
import socket
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, null, select, text, update
from sqlalchemy.engine import Connection, Engine

from grunndata.errors import DeliveryError, ReleaseConflict, StoreBusy, StoreError, UnknownRelease
from grunndata.store.db import open_connection
from grunndata.store.models import (
    OWN,
    R4,
    REL,
    C,
    M,
    N,
    R,
    S,
    T,
    X,
)
from grunndata.store.read import COLUMNS, version_of
from grunndata.store.searchparams import INDEXED_TYPES, IndexRow, index_rows

_PG_IMPORT_LOCK = 0x6772756E  # "grun": one import at a time per database
_BATCH = 2000

Key = tuple[str, str]  # (resource type, resource id)
_RESOURCE_COLUMNS = (
    "pk",
    "type",
    "id",
    "version",
    "tier",
    "owner_id",
    "release_id",
    "content_hash",
    "source_id",
    "data",
    "last_updated",
)


def now() -> datetime:
    """The current time in UTC, to the millisecond (FHIR instants: what we store is what we send)."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class StoredVersion:
    pk: int
    version: int
    content_hash: str
    source_id: str | None


@dataclass(frozen=True, slots=True)
class _Served:
    """What a builder keeps of a version the release it follows serves: as StoredVersion, but the
    content hash as its 32 bytes (65 bytes an object, not a 113-byte hex string: ~8 MB less over a
    full-size release)."""

    pk: int
    version: int
    digest: bytes | str  # (a hash that is not hex, kept as it is: never equal to bytes)
    source_id: str | None


def _digest(content_hash: str) -> bytes | str:
    try:
        return bytes.fromhex(content_hash)
    except ValueError:
        return content_hash


@dataclass(slots=True)
class Tally:
    """What a release did to one resource type."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    expired: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "expired": self.expired,
        }


class _ImportLock:
    """One importer per store: a file lock beside a SQLite file, an advisory lock on PostgreSQL.

    Both are released by the operating system or the server when the process dies, so a killed
    import never blocks the next one.
    """

    def __init__(self, engine: Engine, conn: Connection) -> None:
        self.engine, self.conn = engine, conn
        self._fd: int | None = None

    def acquire(self) -> None:
        busy = StoreBusy("another import or reindex is running on this store; try again when it has finished")
        if self.engine.dialect.name == "postgresql":
            got = self.conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_IMPORT_LOCK}).scalar()
            self.conn.commit()
            if not got:
                raise busy
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            return
        self._fd = os.open(f"{database}.import-lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise busy from None

    def release(self) -> None:
        if self.engine.dialect.name == "postgresql":
            try:
                self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_IMPORT_LOCK})
                self.conn.commit()
            except Exception:  # noqa: BLE001  the session ending releases it anyway
                pass
        elif self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _insert_rows(conn: Connection, table: Any, columns: tuple[str, ...], rows: Iterable[Any]) -> None:
    """Insert plain rows (tuples of str and int) through the driver's executemany: parameterised SQL
    without SQLAlchemy's per-row work, which costs more than the insert itself for the index tables.
    `rows` may be a generator: they are taken a batch at a time (a release's manifest is never held
    whole as rows)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    taken = iter(rows)
    while batch := list(itertools.islice(taken, 10 * _BATCH)):
        conn.exec_driver_sql(sql, batch)


def _refresh_statistics(conn: Connection) -> None:
    """Let the query planner see the new data: without statistics SQLite walks every resource of a
    type for a search that the index answers in a millisecond (0.7 s for a full-size release)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("ANALYZE")
    else:
        for table in (R, M, X, S, T, C):
            conn.exec_driver_sql(f"ANALYZE {table.name}")
    conn.commit()


def ensure_owner(conn: Connection, owner: str, name: str, tier: str) -> None:
    if conn.execute(select(OWN.c.id).where(OWN.c.id == owner)).first() is None:
        conn.execute(insert(OWN).values(id=owner, name=name, tier=tier))


def active_release(conn: Connection, tier: str, owner: str) -> Any:
    """The release a line serves now. A line is one owner's data in one tier: DMP's national line
    takes FEST and SAFEST deliveries alike, each release holding both as they stood."""
    return conn.execute(
        select(REL).where(REL.c.status == "active", REL.c.tier == tier, REL.c.owner_id == owner)
    ).first()


@dataclass
class ReleaseBuilder:
    """Writes one release. Use as a context manager; call `put`/`expire`, then `finish` or `fail`."""

    engine: Engine
    source: str
    kind: str  # full: the manifest is exactly what was put; incremental: the active one, amended
    tier: str
    owner: str
    owner_name: str
    file_name: str | None = None
    dry_run: bool = False
    r4: R4Bodies | None = None  # the R4 bodies of new versions, made and stored at activation
    stage: bool = False  # finish writes the release as `staged`: checked and kept, not served

    release_id: int | None = None
    based_on: Any = None  # the active release row when we started
    active: dict[Key, _Served] = field(default_factory=dict)
    tallies: dict[str, Tally] = field(default_factory=dict)
    # the newest version number of every resource of this line stored before this release where
    # `active` does not give it (all that `put` needs of the past); it does not grow with what is put
    _latest: dict[Key, int] = field(default_factory=dict)
    # the version number of each version this release writes, by pk - _first_pk: four bytes a
    # version, where a dict entry cost ~60 (a release's ~171,000 versions: 0.7 MB, not 10)
    _new_versions: array[int] = field(default_factory=lambda: array("l"))
    _manifest: dict[Key, int] = field(default_factory=dict)
    # new versions waiting for the next batch insert, as the columns of _RESOURCE_COLUMNS less last_updated
    _resources: list[tuple[Any, ...]] = field(default_factory=list)
    _index: list[tuple[str, str, int]] = field(default_factory=list)
    _fhir_index: list[tuple[int, str, str, str, str | None]] = field(default_factory=list)
    _dry_data: dict[int, bytes] = field(default_factory=dict)  # a dry run's new versions, for served_data
    _is_derived: Callable[[str], bool] | None = None
    _expired: set[Key] = field(default_factory=set)
    _notices: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)
    _filtered: dict[Key, frozenset[str]] = field(default_factory=dict)  # content filters per resource
    _next_pk: int = 1
    _first_pk: int = 1  # this release's versions are numbered from here on
    # a first import into an empty SQLite store: the secondary indexes it drops after its first batch
    # and builds again once all its rows are in (still in its one transaction)
    _deferred: list[Any] | None = None
    _conn: Connection | None = None
    _lock: _ImportLock | None = None
    _by_source: dict[tuple[str, str | None], Key] | None = None
    _others: dict[Key, tuple[int, str, str]] = field(
        default_factory=dict
    )  # other lines: newest version, tier, owner
    _settled: bool = False
    _started: datetime = field(default_factory=now)

    # -- life cycle --------------------------------------------------------------------------

    def __enter__(self) -> ReleaseBuilder:
        conn = self._conn = open_connection(self.engine)
        self._lock = _ImportLock(self.engine, conn)
        self._lock.acquire()
        conn.execute(
            update(REL)
            .where(REL.c.status == "building")
            .values(status="failed", ended_at=now(), message="interrupted before it finished (process ended)")
        )
        ensure_owner(conn, self.owner, self.owner_name, self.tier)
        self.based_on = active_release(conn, self.tier, self.owner)
        if not self.dry_run:
            inserted = conn.execute(
                insert(REL).values(
                    source=self.source,
                    kind=self.kind,
                    tier=self.tier,
                    owner_id=self.owner,
                    status="building",
                    based_on=self.based_on.id if self.based_on else None,
                    file_name=self.file_name,
                    started_at=self._started,
                    counts={},
                    report={},
                    pid=os.getpid(),
                    host=socket.gethostname(),
                )
            ).inserted_primary_key
            assert inserted is not None
            self.release_id = int(inserted[0])
        conn.commit()  # the building row is visible from here on; everything else is one transaction
        self._load_state(conn)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        conn = self._conn
        assert conn is not None
        try:
            if conn.in_transaction():
                conn.rollback()
            if exc is not None and self.release_id is not None:
                self._mark_failed(conn, str(exc) or exc_type.__name__, {})
        finally:
            if self._lock:
                self._lock.release()
            conn.close()

    def _load_state(self, conn: Connection) -> None:
        self._next_pk = self._first_pk = (conn.execute(select(func.max(R.c.pk))).scalar() or 0) + 1
        if self._next_pk == 1 and conn.dialect.name == "sqlite" and not self.dry_run:
            self._deferred = []
        # the newest version of every resource of this owner and tier, active or not
        newest = (
            select(R.c.type, R.c.id, func.max(R.c.version))
            .where(R.c.owner_id == self.owner, R.c.tier == self.tier)
            .group_by(R.c.type, R.c.id)
        )
        # The served versions first, their type strings interned: with ~180,000 resources a follow-up
        # holds them all. `_latest` then keeps only what they do not say: the newest version of a
        # resource not served now, or served at an older version (after a rollback), so the two
        # dicts do not both hold every resource. The Oppf Id (source_id) is needed only to apply an
        # incremental delivery's Status U.
        if self.based_on is not None:
            by_source = self.kind == "incremental"
            source = R.c.source_id if by_source else null()
            cols = (R.c.type, R.c.id, R.c.pk, R.c.version, R.c.content_hash, source)
            for t, i, pk, v, h, s in conn.execute(
                select(*cols).join(M, M.c.resource_pk == R.c.pk).where(M.c.release_id == self.based_on.id)
            ):
                self.active[(sys.intern(t), i)] = _Served(pk, v, _digest(h), s)
        active = self.active
        for t, i, v in conn.execute(newest):
            served = active.get((t, i))
            if served is None or served.version != v:
                self._latest[(sys.intern(t), i)] = v
        if self.kind == "incremental":
            self._manifest = {k: sv.pk for k, sv in self.active.items()}
        # what other lines ever stored: versions are numbered per (type, id) across the store, and
        # a sector or supplementary line may not take an id another line has used
        theirs = (
            select(R.c.type, R.c.id, func.max(R.c.version), func.min(R.c.tier), func.min(R.c.owner_id))
            .where((R.c.owner_id != self.owner) | (R.c.tier != self.tier))
            .group_by(R.c.type, R.c.id)
        )
        for t, i, v, tier, owner in conn.execute(theirs):
            self._others[(t, i)] = (v, tier, owner)

    # -- writing -----------------------------------------------------------------------------

    def tally(self, rtype: str) -> Tally:
        return self.tallies.setdefault(rtype, Tally())

    def put(
        self,
        rtype: str,
        rid: str,
        data: bytes,
        content_hash: str,
        source_id: str | None = None,
        index: Iterable[tuple[str, str]] = (),
        fhir_index: Iterable[IndexRow] = (),
        key: Key | None = None,
    ) -> str:
        """Serve `data` as (rtype, rid) in this release; returns new, changed or unchanged.

        A new version is written only when the content differs from the newest stored one. `key`:
        (rtype, rid) as the caller already holds it, kept instead of a copy of its own.
        """
        key = (rtype, rid) if key is None else key
        other = self._others.get(key)
        if other is not None and self.tier != "national":
            raise DeliveryError(
                f"{rtype}/{rid} is an id {other[2]}'s {other[1]} data has used; ids are never shared "
                "between owners, so choose another"
            )
        tally = self.tally(rtype)
        current = self.active.get(key)
        if current is not None and current.digest == _digest(content_hash):
            self._keep_version(key)
            self._manifest[key] = current.pk
            tally.unchanged += 1
            return "unchanged"
        outcome = "new" if current is None else "changed"
        if outcome == "new":
            tally.new += 1
        else:
            tally.changed += 1
        latest = self._version_before(key)
        # content served before (by a release before a rollback, or before the resource expired)
        # is written again as a new version, not served as the old one: the history, and every
        # client that follows it by _since, must see the resource come back (the old version's
        # instant is in the past, before the removal a client has applied)
        pk = self._next_pk
        self._next_pk += 1
        version = max(latest or 0, other[0] if other else 0) + 1
        self._new_versions.append(version)
        self._manifest[key] = pk
        if self.dry_run:
            self._dry_data[pk] = data
            return outcome
        self._resources.append(
            (pk, rtype, rid, version, self.tier, self.owner, self.release_id, content_hash, source_id, data)
        )
        self._index.extend((p, v, pk) for p, v in set(index))
        self._fhir_index.extend((pk, r.param, r.system, r.value, r.exact) for r in fhir_index)
        if len(self._resources) >= _BATCH:
            self._flush()
        return outcome

    def _version_before(self, key: Key) -> int | None:
        """The newest version number of `key` before this put: one this release wrote, or stored."""
        pk = self._manifest.get(key)
        if pk is not None and pk >= self._first_pk:
            return self._new_versions[pk - self._first_pk]
        stored = self._latest.get(key)
        if stored is None and (served := self.active.get(key)) is not None:
            return served.version  # (`_latest` holds only what `active` does not say)
        return stored

    def _keep_version(self, key: Key) -> None:
        """Before the manifest stops naming a version this release wrote for `key`: count that
        version in `_latest`, so that a later put of the same key numbers its version after it."""
        pk = self._manifest.get(key)
        if pk is not None and pk >= self._first_pk:
            self._latest[key] = self._new_versions[pk - self._first_pk]

    def _unlist(self, key: Key) -> int | None:
        """Take `key` out of the manifest (its version, if this release wrote it, stays counted)."""
        self._keep_version(key)
        return self._manifest.pop(key, None)

    def expire(self, key: Key) -> bool:
        """Stop serving `key` (incremental deliveries); False if it was not being served."""
        if self._unlist(key) is None:
            return False
        self.tally(key[0]).expired += 1
        if key in self.active:
            self._expired.add(key)
        return True

    def notice_expiry(self, catalogue: str, oppf_id: str, tidspunkt: str, status_dn: str | None) -> None:
        """Keep a delivery's expiry notice (FEST Status U) with the release, as it came."""
        self._notices[(catalogue, oppf_id)] = (tidspunkt, status_dn)

    def exclude(self, classes: dict[Key, frozenset[str]]) -> None:
        """The content filters that exclude each resource this release serves (translators/
        content_filters.py), replacing what was said before; kept with the release at `finish`."""
        self._filtered = dict(classes)

    def keep(self, types: Callable[[str], bool]) -> None:
        """Serve on, unchanged, what the active release serves of the types `types` picks.

        A full FEST delivery replaces the FEST entries but not the SAFEST data beside them in the
        national line, and the other way round.
        """
        for key, sv in self.active.items():
            if types(key[0]):
                self._manifest.setdefault(key, sv.pk)

    def replace_derived(self, is_derived: Callable[[str], bool]) -> None:
        """From here on, resources of the types `is_derived` picks are rebuilt in full by the caller.

        Derived resources (FHIR made from FEST) are remade from the whole release, also for an
        incremental delivery: whatever is not put again expires.
        """
        self._is_derived = is_derived
        for key in [k for k in self._manifest if is_derived(k[0])]:
            self._unlist(key)

    def _left_out(self) -> list[Key]:
        """Active resources this release stops serving without an explicit `expire`."""
        derived = self._is_derived
        return [
            key
            for key in self.active
            if key not in self._manifest
            and (self.kind == "full" or (derived is not None and derived(key[0])))
        ]

    def settle(self) -> dict[str, Tally]:
        """Close the manifest: count every active resource left out as expired.

        Call once everything is put; the tallies are then final, for guards and the report.
        """
        if not self._settled:
            for key in self._left_out():
                self.tally(key[0]).expired += 1
        self._settled = True
        return self.tallies

    def served_data(self, types: Callable[[str], bool]) -> Iterator[tuple[Key, bytes]]:
        """The bytes of every resource this release serves (so far) whose type `types` picks."""
        conn = self._conn
        assert conn is not None
        self._flush()
        wanted = sorted((pk, key) for key, pk in self._manifest.items() if types(key[0]))
        for i in range(0, len(wanted), _BATCH):
            batch = wanted[i : i + _BATCH]
            stored: dict[int, bytes] = dict(
                conn.execute(select(R.c.pk, R.c.data).where(R.c.pk.in_([pk for pk, _ in batch]))).all()
            )
            for pk, key in batch:
                data = self._dry_data.get(pk) or stored.get(pk)
                if data is None:
                    raise StoreError(f"the store lost the data of {key[0]}/{key[1]} (version {pk})")
                yield key, bytes(data)

    def active_counts(self) -> dict[str, int]:
        return dict(Counter(k[0] for k in self.active))

    def active_keys(self) -> list[Key]:
        """What this release serves so far."""
        return list(self._manifest)

    def served(self, key: Key) -> bool:
        return key in self._manifest

    def find_active_by_source_id(self, rtype: str, source_id: str) -> Key | None:
        """The active resource listed under `source_id` (a FEST Oppf Id), if any."""
        if self._by_source is None:
            self._by_source = {(k[0], sv.source_id): k for k, sv in self.active.items() if sv.source_id}
        return self._by_source.get((rtype, source_id))

    def active_index_values(self, param: str) -> list[tuple[Key, str]]:
        """(resource, value) of index `param` over the release this one is based on."""
        if self.based_on is None:
            return []
        conn = self._conn
        assert conn is not None
        rows = conn.execute(
            select(R.c.type, R.c.id, S.c.value)
            .select_from(M.join(S, S.c.resource_pk == M.c.resource_pk).join(R, R.c.pk == M.c.resource_pk))
            .where(M.c.release_id == self.based_on.id, S.c.param == param)
        )
        return [((t, i), v) for t, i, v in rows]

    def _flush(self) -> None:
        conn = self._conn
        assert conn is not None
        if self._resources:
            # through the driver, as the index rows: SQLAlchemy's per-row work on dicts cost more than
            # the insert. lastUpdated is the builder's start (the activation replaces it), bound once
            # as the dialect stores a datetime
            bind = R.c.last_updated.type.bind_processor(conn.dialect)
            started = bind(self._started) if bind is not None else self._started
            _insert_rows(conn, R, _RESOURCE_COLUMNS, (row + (started,) for row in self._resources))
            self._resources = []
        if self._index:
            _insert_rows(conn, S, ("param", "value", "resource_pk"), self._index)
            self._index = []
        if self._fhir_index:
            _insert_rows(conn, X, ("resource_pk", "param", "system", "value", "exact"), self._fhir_index)
            self._fhir_index = []
        if self._deferred == [] and conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            self._deferred = _drop_secondary_indexes(conn)

    def _build_deferred(self, *, versions: bool = True) -> None:
        """Build the indexes a first import dropped, from the rows all in: sorting them once costs a
        fraction of keeping each index in order row by row. `versions=False` leaves the version
        table's (by lastUpdated) for after the activation has set it."""
        conn = self._conn
        assert conn is not None
        deferred = self._deferred or []
        for index in deferred:
            if versions or index.table is not R:
                index.create(conn)
        self._deferred = None if versions else [index for index in deferred if index.table is R] or None

    def finish(self, hentet_dato: str | None, report: dict[str, Any]) -> int | None:
        """Activate the release (with `stage`, keep it staged), or return None when it would change
        nothing (or on a dry run)."""
        conn = self._conn
        assert conn is not None
        counts = {t: tally.as_dict() for t, tally in sorted(self.settle().items())}
        unchanged = all(c["new"] == c["changed"] == c["expired"] == 0 for c in counts.values())
        same_date = self.based_on is not None and self.based_on.hentet_dato == hentet_dato
        if self.dry_run or (unchanged and same_date):
            conn.rollback()
            if self.release_id is not None:
                conn.execute(delete(REL).where(REL.c.id == self.release_id))
                conn.commit()
                self.release_id = None
            return None
        self._flush()
        release = self.release_id
        _insert_rows(
            conn, M, ("release_id", "resource_pk"), ((release, pk) for pk in self._manifest.values())
        )
        gone = [(release, t, i, self.active[(t, i)].pk) for t, i in set(self._left_out()) | self._expired]
        _insert_rows(conn, T, ("release_id", "type", "id", "resource_pk"), gone)
        excluded = [
            (release, self._manifest[key], code)
            for key, codes in self._filtered.items()
            if key in self._manifest
            for code in sorted(codes)
        ]
        _insert_rows(conn, C, ("release_id", "resource_pk", "code"), excluded)
        notices = [(release, c, o, t, dn) for (c, o), (t, dn) in sorted(self._notices.items())]
        _insert_rows(conn, N, ("release_id", "catalogue", "oppf_id", "tidspunkt", "status_dn"), notices)
        done = {"hentet_dato": hentet_dato, "counts": counts, "report": report}
        self._build_deferred(versions=self.stage)
        if self.stage:
            conn.execute(update(REL).where(REL.c.id == release).values(status=STAGED, ended_at=now(), **done))
            conn.commit()
            return release
        previous = self.based_on.id if self.based_on else None
        _switch(
            conn,
            release,
            previous,
            self.r4,
            done,
            ends=True,
            first_pk=self._first_pk,
            then=self._build_deferred,
        )
        return release

    def fail(self, message: str, report: dict[str, Any]) -> None:
        """Throw away everything this release wrote and record why."""
        conn = self._conn
        assert conn is not None
        conn.rollback()
        if self.release_id is not None:
            self._mark_failed(conn, message, report)
            self.release_id = None

    def _mark_failed(self, conn: Connection, message: str, report: dict[str, Any]) -> None:
        counts = {t: tally.as_dict() for t, tally in sorted(self.tallies.items())}
        conn.execute(
            update(REL)
            .where(REL.c.id == self.release_id)
            .values(status="failed", ended_at=now(), message=message[:2000], counts=counts, report=report)
        )
        conn.commit()


STAGED, DISCARDED = "staged", "discarded"


def _drop_secondary_indexes(conn: Connection) -> list[Any]:
    """Drop the secondary indexes of the version, manifest and search tables, inside the open
    transaction (SQLite's DDL is transactional: a failed import rolls the drop back with its rows,
    and readers keep the committed schema meanwhile); returns them, to be built again. Only for a
    first import into an empty SQLite store: nobody has anything to read through them yet. Unique
    constraints stay (they check what is written)."""
    dropped = [index for table in (R, M, S, X) for index in sorted(table.indexes, key=lambda i: str(i.name))]
    for index in dropped:
        index.drop(conn)
    return dropped


def _switch(
    conn: Connection,
    release: int | None,
    previous: int | None,
    r4: R4Bodies | None,
    values: dict[str, Any],
    *,
    ends: bool,
    previous_status: str = "superseded",
    first_pk: int | None = None,
    then: Callable[[], None] | None = None,
) -> None:
    """Make `release` the active one of its line in one commit: its versions' lastUpdated is the
    activation, their R4 bodies are made, `previous` is superseded; then the planner's statistics.
    The end of every import, and `activate` of a staged release: one switch, so they cannot differ.
    `ends`: the import ends with it (a staged release's ended when it was staged). `previous_status`:
    what `previous` becomes (a rollback's is rolled-back). `first_pk`: no
    version of the release is numbered below it (the builder knows; else it is looked up), so its
    versions are found by a range of the primary key, not by reading every version stored. `then`:
    called once their lastUpdated is set (a first import builds the version table's indexes there)."""
    activated = now()
    if first_pk is None:
        first_pk = conn.execute(select(func.min(R.c.pk)).where(R.c.release_id == release)).scalar() or 0
    own = (R.c.pk >= first_pk, R.c.release_id == release)
    conn.execute(update(R).where(*own).values(last_updated=activated))
    if then is not None:
        then()
    if r4 is not None:
        _store_r4(conn, release, r4, first_pk)
    if previous is not None:
        conn.execute(update(REL).where(REL.c.id == previous).values(status=previous_status))
    ended = {"ended_at": activated} if ends else {}
    conn.execute(
        update(REL)
        .where(REL.c.id == release)
        .values(status="active", activated_at=activated, **ended, **values)
    )
    conn.commit()
    _refresh_statistics(conn)


def _staged(conn: Connection, release_id: int, step: str) -> Any:
    """The staged release `release_id`, or why `step` (activated, discarded) cannot be done to it."""
    row = release_by_number(conn, release_id)
    if row is None:
        raise UnknownRelease(f"there is no release {release_id}")
    if row.status != STAGED:
        served_before = row.status in ("superseded", "rolled-back")
        hint = "; `grunndata rollback` makes a superseded release active again" if served_before else ""
        raise ReleaseConflict(
            f"release {release_id} is {row.status}, not staged; only a staged release can be {step}{hint}"
        )
    return row


@contextmanager
def under_import_lock(engine: Engine) -> Iterator[Connection]:
    """A connection holding the import lock: no import, reindex, prune, activation, discard or
    rollback runs beside the work done on it (StoreBusy at once if one does). What the work left
    uncommitted is rolled back, and the lock let go, however it ends."""
    conn = open_connection(engine)
    lock = _ImportLock(engine, conn)
    try:
        lock.acquire()
        yield conn
    finally:
        if conn.in_transaction():
            conn.rollback()
        lock.release()
        conn.close()


def activate(engine: Engine, release_id: int, r4: R4Bodies | None) -> Any:
    """Make staged release `release_id` the active one of its line, as an import's end does (under
    the import lock, the same switch); returns its row. Refused (ReleaseConflict) when the release
    it was checked against is no longer the active one: what it would change was reviewed against
    that one, so it is not rebased silently; import the delivery again with `--stage`."""

    def work(conn: Connection) -> Any:
        target = _staged(conn, release_id, "activated")
        current = active_release(conn, target.tier, target.owner_id)
        current_id = current.id if current is not None else None
        if current_id != target.based_on:
            base = f"release {target.based_on}" if target.based_on is not None else "an empty line"
            now_active = (
                f"release {current_id} is active now" if current_id is not None else "none is active now"
            )
            raise ReleaseConflict(
                f"release {release_id} was staged against {base}, but {now_active}; what it changes was "
                f"reviewed against a release no longer served, so it is not activated: import the delivery "
                f"again with --stage (or discard release {release_id})"
            )
        _switch(conn, release_id, current_id, r4, {}, ends=False)
        return conn.execute(select(REL).where(REL.c.id == release_id)).first()

    with under_import_lock(engine) as conn:
        return work(conn)


def discard(engine: Engine, release_id: int) -> Any:
    """Drop staged release `release_id` unserved: its versions, their index rows and R4 bodies, and
    its manifest, removals, notices and filters go; its record stays, `discarded`, for the history
    of the line. Returns the record."""

    def work(conn: Connection) -> Any:
        _staged(conn, release_id, "discarded")
        own = select(R.c.pk).where(R.c.release_id == release_id)
        for table, column in ((X, X.c.resource_pk), (S, S.c.resource_pk), (R4, R4.c.resource_pk)):
            conn.execute(delete(table).where(column.in_(own)))
        for table in (M, T, C, N):
            conn.execute(delete(table).where(table.c.release_id == release_id))
        conn.execute(delete(R).where(R.c.release_id == release_id))
        conn.execute(
            update(REL)
            .where(REL.c.id == release_id)
            .values(status=DISCARDED, message="staged, then discarded; its data was removed unserved")
        )
        conn.commit()
        return conn.execute(select(REL).where(REL.c.id == release_id)).first()

    with under_import_lock(engine) as conn:
        return work(conn)


# -- release administration ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class R4Bodies:
    """How an importer has the R4 body of each new version of `types` made (`make`: the version's
    body as served -> its R4 body, None for none) and stored beside it (resource_r4), so that a
    first R4 read costs what a first R5 read does. The store does not convert: it is handed how."""

    types: frozenset[str]
    make: Callable[[bytes], bytes | None]


def _store_r4(conn: Connection, release_id: int | None, r4: R4Bodies, first_pk: int) -> None:
    """The R4 bodies of the release's new versions of r4.types, made once their lastUpdated (the
    activation) is known, in the release's transaction, in batches read back from the table."""
    last = first_pk - 1
    while True:
        # the release's versions in pk order, their types picked here: with a condition on the type
        # in the query, SQLite without statistics (a first import) reads every version of those types
        # through the type index and sorts them, for each batch (38 s of a full-size import)
        listed = conn.execute(
            select(R.c.pk, R.c.type)
            .where(R.c.release_id == release_id, R.c.pk > last)
            .order_by(R.c.pk)
            .limit(_BATCH)
        ).all()
        if not listed:
            return
        last = listed[-1][0]
        wanted = [pk for pk, rtype in listed if rtype in r4.types]
        if not wanted:
            continue
        rows = conn.execute(select(*COLUMNS).where(R.c.pk.in_(wanted)).order_by(R.c.pk)).all()
        made = [(row[0], r4.make(version_of(row).body())) for row in rows]
        _insert_rows(conn, R4, ("resource_pk", "data"), [(pk, body) for pk, body in made if body is not None])


def reindex(engine: Engine, progress: Callable[[int, int], None] | None = None) -> int:
    """Rebuild the search-index rows of every stored FHIR resource version (every release kept) from
    its stored JSON, by the search parameters declared now (store/searchparams.py), the same `index_rows` an
    import writes; returns the versions indexed. After a parameter is added or changed.

    One transaction, under the import lock: searches see the old rows or the new ones, never a
    mix, and no import writes meanwhile. `progress(done, total)` after each batch.
    """
    with under_import_lock(engine) as conn:
        indexed = R.c.type.in_(sorted(INDEXED_TYPES))  # not the FEST entries kept beside them
        total = conn.execute(select(func.count()).select_from(R).where(indexed)).scalar() or 0
        conn.execute(delete(X))
        done, last = 0, -1
        while True:
            batch = conn.execute(
                select(R.c.pk, R.c.data).where(indexed, R.c.pk > last).order_by(R.c.pk).limit(_BATCH)
            ).all()
            if not batch:
                break
            rows = [
                (pk, r.param, r.system, r.value, r.exact)
                for pk, data in batch
                for r in index_rows(orjson.loads(bytes(data)))
            ]
            _insert_rows(conn, X, ("resource_pk", "param", "system", "value", "exact"), rows)
            done, last = done + len(batch), batch[-1][0]
            if progress is not None:
                progress(done, total)
        conn.commit()
        _refresh_statistics(conn)
        return done


def list_releases(engine: Engine, *, with_report: bool = True) -> list[Any]:
    """Every release, oldest first; a listing leaves the reports out (a refused delivery's can be large)."""
    columns = list(REL.c) if with_report else [c for c in REL.c if c.name != "report"]
    with engine.connect() as conn:
        return list(conn.execute(select(*columns).order_by(REL.c.id)))


def release_row(engine: Engine, release_id: int) -> Any:
    """One release with its whole report, or None."""
    with engine.connect() as conn:
        return release_by_number(conn, release_id)


def served_totals(counts: dict[str, Any]) -> dict[str, int]:
    """Entries (FEST) and FHIR resources a release serves, from its per-type counts."""
    return {
        kind: sum(
            c.get("new", 0) + c.get("changed", 0) + c.get("unchanged", 0)
            for t, c in counts.items()
            if isinstance(c, dict) and t.startswith("FEST.") == (kind == "entries")
        )
        for kind in ("entries", "fhir")
    }


def _utc(t: datetime | None) -> str | None:
    """A stored time in UTC with a Z, as SQLite (naive, UTC) and PostgreSQL (aware) both hold it."""
    if t is None:
        return None
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return t.isoformat() + "Z"


def item_text(item: Any) -> str:
    """A problem or warning of a release's report as one line, its place (when the importer gave
    one) first: what `grunndata releases show N` prints and the release's page lists."""
    if not isinstance(item, dict):
        return str(item)
    place = ", ".join(f"{k} {v}" for k, v in item.items() if k not in ("message", "text") and v is not None)
    text = item.get("message") or item.get("text") or ""
    return f"{place}: {text}" if place and text else (text or place)


def release_json(r: Any, *, report: bool) -> dict[str, Any]:
    """A release as JSON: the row of `grunndata releases --json`, and with `report` its whole
    report and counts, as `grunndata releases show N --json` and `GET /releases/{N}` give it (one
    function, so the two cannot differ)."""
    row: dict[str, Any] = {
        "id": r.id,
        "status": r.status,
        "source": r.source,
        "kind": r.kind,
        "tier": r.tier,
        "owner": r.owner_id,
        "hentet_dato": r.hentet_dato,
        "file": r.file_name,
        "based_on": r.based_on,
        "started": _utc(r.started_at),
        "ended": _utc(r.ended_at),
        "activated": _utc(r.activated_at),
        "served": served_totals(r.counts or {}) if r.counts else None,
        "message": r.message,
    }
    if report:
        row["counts"] = r.counts or {}
        row["report"] = r.report or {}
    return row


MAX_RELEASE = 2**31 - 1  # the largest release number the store's integer column holds


def release_number(text: str) -> int | None:
    """A release number as written (digits only, no leading zero, 1 to MAX_RELEASE), or None: the
    rule of the HTTP routes' paths, which the CLI keeps too (an int would also take "004", " 4",
    "+4" and "4_0" as a release)."""
    if not text.isascii() or not text.isdigit() or text.startswith("0") or len(text) > 10:
        return None
    n = int(text)
    return n if n <= MAX_RELEASE else None


def release_by_number(conn: Connection, release_id: int) -> Any:
    """The release row numbered `release_id`, or None; a number no release can have (0, negative,
    beyond the column) is one that does not exist, not an error of the database driver."""
    if not 1 <= release_id <= MAX_RELEASE:
        return None
    return conn.execute(select(REL).where(REL.c.id == release_id)).first()


def rollback(engine: Engine, release_id: int, r4: R4Bodies | None = None) -> Any:
    """Serve an earlier release's data again, as a new release of its line (kind `rollback`, under
    the import lock, as every switch); returns the new release's row. The release being served
    becomes rolled-back; the earlier one keeps its status and its activation.

    The history is append-only: what a rollback changes is written as what an import writes, at
    the rollback's own time. Each resource whose served content changes back is a new version
    (the earlier bytes, numbered on), each one the earlier release did not serve a removal. No
    time already told moves, so `_history` agrees with reads, and a paging cursor or `_since`
    taken before the rollback stays good. `r4`: how the new versions' R4 bodies are made (None:
    at their first R4 read)."""
    with under_import_lock(engine) as conn:
        target = release_by_number(conn, release_id)
        if target is None:
            raise UnknownRelease(f"there is no release {release_id}")
        if target.status == "active":
            raise StoreError(f"release {release_id} is already the active one")
        if target.status not in ("superseded", "rolled-back"):
            raise StoreError(
                f"release {release_id} is {target.status} and holds no data to serve; only a superseded or rolled-back release can be made active"
            )
        current = active_release(conn, target.tier, target.owner_id)
        wanted = _manifest_of(conn, target.id)
        served = _manifest_of(conn, current.id) if current is not None else {}
        kept = {
            key: served[key].pk
            for key, sv in wanted.items()
            if key in served and served[key].content_hash == sv.content_hash
        }
        again = sorted((sv.pk, key) for key, sv in wanted.items() if key not in kept)
        gone = sorted(key for key in served if key not in wanted)
        if current is not None and not again and not gone and current.hentet_dato == target.hentet_dato:
            raise StoreError(
                f"release {release_id} serves what release {current.id}, the active one, serves; there is nothing to roll back"
            )
        started = now()
        inserted = conn.execute(
            insert(REL).values(
                source=target.source,
                kind="rollback",
                tier=target.tier,
                owner_id=target.owner_id,
                hentet_dato=target.hentet_dato,
                status="building",
                based_on=current.id if current is not None else None,
                file_name=target.file_name,
                started_at=started,
                message=f"a rollback: serves release {release_id}'s data again",
                counts={},
                report={"restores": release_id},
                pid=os.getpid(),
                host=socket.gethostname(),
            )
        ).inserted_primary_key
        assert inserted is not None
        release = int(inserted[0])
        made = _copy_versions(conn, again, release, started)
        pks = {**kept, **made}
        _insert_rows(conn, M, ("release_id", "resource_pk"), ((release, pk) for pk in pks.values()))
        removed = ((release, t, i, served[(t, i)].pk) for t, i in gone)
        _insert_rows(conn, T, ("release_id", "type", "id", "resource_pk"), removed)
        keys = {sv.pk: key for key, sv in wanted.items()}
        filters = conn.execute(select(C.c.resource_pk, C.c.code).where(C.c.release_id == target.id))
        excluded = sorted({(release, pks[keys[pk]], code) for pk, code in filters if pk in keys})
        _insert_rows(conn, C, ("release_id", "resource_pk", "code"), excluded)
        tallies: dict[str, Tally] = {}
        for key in wanted:
            tally = tallies.setdefault(key[0], Tally())
            if key in kept:
                tally.unchanged += 1
            elif key in served:
                tally.changed += 1
            else:
                tally.new += 1
        for key in gone:
            tallies.setdefault(key[0], Tally()).expired += 1
        counts = {t: tally.as_dict() for t, tally in sorted(tallies.items())}
        previous = current.id if current is not None else None
        _switch(conn, release, previous, r4, {"counts": counts}, ends=True, previous_status="rolled-back")
        return conn.execute(select(REL).where(REL.c.id == release)).first()


def _manifest_of(conn: Connection, release_id: int) -> dict[Key, StoredVersion]:
    """What a release serves: (type, id) -> the version."""
    rows = conn.execute(
        select(R.c.type, R.c.id, R.c.pk, R.c.version, R.c.content_hash, R.c.source_id)
        .select_from(M.join(R, R.c.pk == M.c.resource_pk))
        .where(M.c.release_id == release_id)
    )
    return {(t, i): StoredVersion(pk, v, h, s) for t, i, pk, v, h, s in rows}


def _copy_versions(
    conn: Connection, old: list[tuple[int, Key]], release: int, at: datetime
) -> dict[Key, int]:
    """Write the stored versions `old` (pk, key) again as new versions of `release`: the same bytes
    and search-index rows, a new pk, numbered after the newest version of their resource in any
    line. Returns key -> the new pk."""
    next_pk = (conn.execute(select(func.max(R.c.pk))).scalar() or 0) + 1
    made: dict[Key, int] = {}
    for i in range(0, len(old), _BATCH):
        batch = dict(old[i : i + _BATCH])
        newest: dict[Key, int] = {}
        for rtype in sorted({key[0] for key in batch.values()}):
            ids = [key[1] for key in batch.values() if key[0] == rtype]
            rows = conn.execute(
                select(R.c.id, func.max(R.c.version))
                .where(R.c.type == rtype, R.c.id.in_(ids))
                .group_by(R.c.id)
            )
            newest.update(((rtype, rid), v) for rid, v in rows)
        mapping: dict[int, int] = {}
        versions = []
        for row in conn.execute(select(R).where(R.c.pk.in_(list(batch))).order_by(R.c.pk)):
            key = (row.type, row.id)
            mapping[row.pk] = made[key] = next_pk
            versions.append(
                {
                    **row._asdict(),
                    "pk": next_pk,
                    "version": newest[key] + 1,
                    "release_id": release,
                    "last_updated": at,
                }
            )
            next_pk += 1
        conn.execute(insert(R), versions)
        fhir = conn.execute(
            select(X.c.resource_pk, X.c.param, X.c.system, X.c.value, X.c.exact).where(
                X.c.resource_pk.in_(list(batch))
            )
        ).all()
        _insert_rows(
            conn,
            X,
            ("resource_pk", "param", "system", "value", "exact"),
            ((mapping[pk], *rest) for pk, *rest in fhir),
        )
        raw = conn.execute(
            select(S.c.param, S.c.value, S.c.resource_pk).where(S.c.resource_pk.in_(list(batch)))
        ).all()
        _insert_rows(conn, S, ("param", "value", "resource_pk"), ((p, v, mapping[pk]) for p, v, pk in raw))
    return made


def active_releases(conn: Connection) -> list[Any]:
    return list(conn.execute(select(REL).where(REL.c.status == "active").order_by(REL.c.id)))


def served_counts(engine: Engine, release_id: int) -> dict[str, int]:
    """Resources served by a release, per type."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(R.c.type, func.count())
            .select_from(M.join(R, M.c.resource_pk == R.c.pk))
            .where(M.c.release_id == release_id)
            .group_by(R.c.type)
        )
        return {t: n for t, n in rows}


def read_active(engine: Engine, rtype: str, rid: str) -> bytes | None:
    """The bytes of (rtype, rid) as served by any active release, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            select(R.c.data)
            .select_from(R.join(M, M.c.resource_pk == R.c.pk).join(REL, REL.c.id == M.c.release_id))
            .where(REL.c.status == "active", R.c.type == rtype, R.c.id == rid)
        ).first()
        return None if row is None else bytes(row[0])
