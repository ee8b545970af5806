"""Reading what the store serves: snapshots, read and vread, and the rows they are made from.

A *snapshot* is the set of releases being served at one moment (one per source, tier and
owner). Releases are immutable once active and their manifests are never deleted, so a search
repeated against the same snapshot gives the same answer even after a newer release became
active: paging links carry the snapshot and stay correct.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, case, func, inspect, select
from sqlalchemy.engine import Connection

from grunndata.fhir import SERVED_TYPES
from grunndata.store.access import NATIONAL, Entitled, readable
from grunndata.store.models import PRUNED, R4, REL, M, R
from grunndata.store.searchparams import TIER_SYSTEM

OWNER_SOURCE = "https://grunndata.no/owner/"  # meta.source: who published the data


def release_lines(conn: Connection, release_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Release id -> (tier, owner): whose data each release holds."""
    rows = conn.execute(
        select(REL.c.id, REL.c.tier, REL.c.owner_id).where(REL.c.id.in_(list(release_ids) or [-1]))
    )
    return {i: (t, o) for i, t, o in rows}


def release_reports(conn: Connection, release_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The import reports of the releases, in release order."""
    rows = conn.execute(
        select(REL.c.report).where(REL.c.id.in_(list(release_ids) or [-1])).order_by(REL.c.id)
    )
    return [dict(r[0] or {}) for r in rows]


def release_disagreements(conn: Connection, release_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Where FEST and SAFEST disagree, from the releases' import reports (their reconciliation),
    taken out by the database: a full delivery's whole report is megabytes of JSON."""
    found = REL.c.report["reconciliation"]["disagreements"]
    rows = conn.execute(select(found).where(REL.c.id.in_(list(release_ids) or [-1])).order_by(REL.c.id))
    return [dict(d) for (listed,) in rows for d in (listed or ()) if isinstance(d, dict)]


class SearchError(ValueError):
    """A search the store cannot answer as asked: the server says 400 with this sentence."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    releases: tuple[int, ...]

    @property
    def token(self) -> str:
        return ".".join(map(str, self.releases)) or "0"

    @classmethod
    def parse(cls, token: str) -> Snapshot:
        parts = token.split(".")
        if not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts):
            raise SearchError(f"_snapshot must be release numbers joined by '.', not {token!r}")
        releases = sorted(int(p) for p in parts if int(p) != 0)
        if len(set(releases)) != len(releases):
            raise SearchError(f"_snapshot names a release twice: {token!r}")
        return cls(tuple(releases))


def current_snapshot(conn: Connection) -> Snapshot:
    rows = conn.execute(select(REL.c.id).where(REL.c.status == "active").order_by(REL.c.id))
    return Snapshot(tuple(r[0] for r in rows))


def snapshot_exists(conn: Connection, snapshot: Snapshot) -> bool:
    """Whether every release of the snapshot still holds data (it was activated once, and not pruned)."""
    if not snapshot.releases:
        return True
    n = conn.execute(
        select(func.count())
        .select_from(REL)
        .where(REL.c.id.in_(snapshot.releases), REL.c.activated_at.is_not(None), REL.c.status != PRUNED)
    ).scalar()
    return n == len(snapshot.releases)


def snapshot_one_per_line(conn: Connection, snapshot: Snapshot) -> bool:
    """Whether the snapshot names at most one release of each line (tier and owner), as every
    snapshot the server gives out does: two of one line would serve a resource twice."""
    if len(snapshot.releases) < 2:
        return True
    rows = conn.execute(select(REL.c.tier, REL.c.owner_id).where(REL.c.id.in_(snapshot.releases))).all()
    return len(set(rows)) == len(rows)


def instant(t: datetime) -> str:
    """A stored time as a FHIR instant, in UTC to the millisecond."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Version:
    """One stored version, with what the server needs to answer for it."""

    pk: int
    type: str
    id: str
    version: int
    last_updated: datetime
    tier: str
    owner: str
    data: bytes  # the resource's JSON without meta, as stored

    def meta(self) -> dict[str, Any]:
        return {
            "versionId": str(self.version),
            "lastUpdated": instant(self.last_updated),
            "source": OWNER_SOURCE + self.owner,
            "tag": [{"system": TIER_SYSTEM, "code": self.tier}],
        }

    def body(self) -> bytes:
        """The resource as sent: the stored bytes with `meta` spliced in after the id, never re-serialised."""
        meta = b',"meta":' + orjson.dumps(self.meta())
        start = self.data.find(b'"id":"')
        if start < 0:
            return b"{" + meta[1:] + b"," + self.data[1:]
        end = self.data.index(b'"', start + 6) + 1  # an id never holds a quote
        return self.data[:end] + meta + self.data[end:]

    def resource(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body())
        return parsed


COLUMNS = (R.c.pk, R.c.type, R.c.id, R.c.version, R.c.last_updated, R.c.tier, R.c.owner_id, R.c.data)


def version_of(row: Any) -> Version:
    pk, rtype, rid, version, last_updated, tier, owner, data = row
    return Version(pk, rtype, rid, version, last_updated, tier, owner, bytes(data))


def visible(snapshot: Snapshot) -> Any:
    """Resource joined to the manifests of the snapshot's releases."""
    return R.join(M, and_(M.c.resource_pk == R.c.pk, M.c.release_id.in_(snapshot.releases or (-1,))))


def _by_id(*columns: Any, r4: bool = False) -> Any:
    """The statement of a read by id, built once: building a select per read cost three times the
    query (SQLAlchemy's construction and cache key; 1.7 M instructions a read against 0.4 M)."""
    served = R.join(
        M, and_(M.c.resource_pk == R.c.pk, M.c.release_id.in_(bindparam("releases", expanding=True)))
    )
    return (
        select(*columns)
        .select_from(served.outerjoin(R4, R4.c.resource_pk == R.c.pk) if r4 else served)
        .where(R.c.type == bindparam("rtype"), R.c.id == bindparam("rid"))
        .order_by(case((R.c.tier == NATIONAL, 0), else_=1))  # national data first, should another
    )  # line have taken the same id


_READ = _by_id(*COLUMNS)
_READ_WITH_R4 = _by_id(*COLUMNS, R4.c.data, r4=True)


def _by_id_row(conn: Connection, statement: Any, snapshot: Snapshot, rtype: str, rid: str) -> Any:
    return conn.execute(
        statement, {"releases": list(snapshot.releases or (-1,)), "rtype": rtype, "rid": rid}
    ).first()


def read(conn: Connection, snapshot: Snapshot, rtype: str, rid: str) -> Version | None:
    """The served version; national data first, should another line have taken the same id."""
    row = _by_id_row(conn, _READ, snapshot, rtype, rid)
    return None if row is None else version_of(row)


def read_with_r4(
    conn: Connection, snapshot: Snapshot, rtype: str, rid: str
) -> tuple[Version, bytes | None] | None:
    """As `read`, with the version's R4 body made at import (None: none stored) in the same query:
    a first R4 read then costs what a first R5 read does."""
    row = _by_id_row(conn, _READ_WITH_R4, snapshot, rtype, rid)
    if row is None:
        return None
    return version_of(row[:-1]), None if row[-1] is None else bytes(row[-1])


def keeps_r4_bodies(conn: Connection) -> bool:
    """Whether the store has the table of R4 bodies (a store no import of this version has opened
    has not: its R4 bodies are made at the first R4 read)."""
    return inspect(conn).has_table("resource_r4")


_R4_OF = select(R4.c.data).where(R4.c.resource_pk == bindparam("pk"))  # built once: a read is hot


def r4_body(conn: Connection, pk: int) -> bytes | None:
    """The R4 body made at import for stored version `pk`; None when it has none (a type SAFEST
    has not, or a version stored before the store kept R4 bodies)."""
    row = conn.execute(_R4_OF, {"pk": pk}).first()
    return None if row is None else bytes(row[0])


def _by_type_batches(keys: Iterable[tuple[str, str]], size: int = 500) -> Iterator[tuple[str, list[str]]]:
    """`keys` (type, id) as (type, up to `size` ids), types and ids sorted: one IN list per query."""
    by_type: dict[str, set[str]] = {}
    for rtype, rid in keys:
        by_type.setdefault(rtype, set()).add(rid)
    for rtype, ids in sorted(by_type.items()):
        id_list = sorted(ids)
        for i in range(0, len(id_list), size):
            yield rtype, id_list[i : i + size]


def read_many(conn: Connection, snapshot: Snapshot, keys: Iterable[tuple[str, str]]) -> list[Version]:
    """The served versions of `keys` (type, id); missing ones are left out."""
    found: list[Version] = []
    for rtype, ids in _by_type_batches(keys):
        rows = conn.execute(
            select(*COLUMNS)
            .select_from(visible(snapshot))
            .where(R.c.type == rtype, R.c.id.in_(ids))
            .order_by(R.c.id)
        )
        found.extend(version_of(r) for r in rows)
    return found


def served_pks(
    conn: Connection, snapshot: Snapshot, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], list[int]]:
    """The pks of the versions `snapshot` serves under each of `keys` (type, id): one, or more where
    lines share an id; keys it does not serve are left out. Reads no bodies (a server carries its
    read cache over to a new snapshot by this)."""
    found: dict[tuple[str, str], list[int]] = {}
    for rtype, ids in _by_type_batches(keys):
        rows = conn.execute(
            select(R.c.id, R.c.pk).select_from(visible(snapshot)).where(R.c.type == rtype, R.c.id.in_(ids))
        )
        for rid, pk in rows:
            found.setdefault((rtype, rid), []).append(pk)
    return found


def served(conn: Connection) -> Iterator[Version]:
    """Every resource the active releases hold and serve, by type and id (for validation): the searchable
    types, and the ConceptMaps a delivery brought (served by the terminology routes beside the maps
    the server derives, which are not stored)."""
    snapshot = current_snapshot(conn)
    for rtype in (*SERVED_TYPES, "ConceptMap"):
        rows = conn.execution_options(stream_results=True, yield_per=500).execute(
            select(*COLUMNS).select_from(visible(snapshot)).where(R.c.type == rtype).order_by(R.c.id)
        )
        for row in rows:
            yield version_of(row)


def ever_served(conn: Connection, rtype: str, rid: str, entitled: Entitled) -> bool:
    """Whether (rtype, rid) existed once for `entitled`: a read of it now answers 410 Gone, not 404."""
    where = (R.c.type == rtype, R.c.id == rid, readable(entitled))
    return conn.execute(select(R.c.pk).where(*where).limit(1)).first() is not None


def vread(conn: Connection, rtype: str, rid: str, version: int, entitled: Entitled) -> Version | None:
    row = conn.execute(
        select(*COLUMNS).where(R.c.type == rtype, R.c.id == rid, R.c.version == version, readable(entitled))
    ).first()
    return None if row is None else version_of(row)


def utc(t: datetime) -> datetime:
    return t.astimezone(UTC)


def all_of_type(conn: Connection, snapshot: Snapshot, rtype: str) -> list[Version]:
    """Every served version of `rtype` (for the few, small types a server keeps in memory)."""
    rows = conn.execute(
        select(*COLUMNS).select_from(visible(snapshot)).where(R.c.type == rtype).order_by(R.c.id)
    )
    return [version_of(r) for r in rows]


def fest_made_ids(conn: Connection, snapshot: Snapshot, rtype: str) -> set[str]:
    """The ids of the served `rtype` resources made from a FEST entry (they carry its Oppf Id)."""
    rows = conn.execute(
        select(R.c.id).select_from(visible(snapshot)).where(R.c.type == rtype, R.c.source_id.is_not(None))
    )
    return {str(r[0]) for r in rows}
