"""Reading what the store serves: snapshots, read/vread, search, includes and history.

A *snapshot* is the set of releases being served at one moment (one per source, tier and
owner). Releases are immutable once active and their manifests are never deleted, so a search
repeated against the same snapshot gives the same answer even after a newer release became
active: paging links carry the snapshot and stay correct.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import ColumnElement, and_, case, false, func, or_, select, tuple_
from sqlalchemy.engine import Connection

from grunndata.store.models import Release, ReleaseEntry, Resource, ResourceIndex, Tombstone
from grunndata.store.searchparams import (
    SERVED_TYPES,
    TIER_SYSTEM,
    IndexRow,
    SearchParam,
    date_span,
    normalise,
    stamp,
)

R = Resource.__table__  # type: ignore[attr-defined]
M = ReleaseEntry.__table__  # type: ignore[attr-defined]
X = ResourceIndex.__table__  # type: ignore[attr-defined]
T = Tombstone.__table__  # type: ignore[attr-defined]
REL = Release.__table__  # type: ignore[attr-defined]

OWNER_SOURCE = "https://grunndata.no/owner/"  # meta.source: who published the data


NATIONAL, SECTOR, SUPPLEMENTARY = "national", "sector", "supplementary"
ALL_OWNERS = "*"


class Entitled(Protocol):
    """Who is asking, as far as the store cares: which restricted data they may read.

    National data is open to all; sector data to those entitled to it; supplementary data per
    owner (ALL_OWNERS for every owner). The server's Access is one.
    """

    @property
    def sector(self) -> bool: ...

    @property
    def supplementary(self) -> frozenset[str]: ...


def may_read(entitled: Entitled, tier: str, owner: str) -> bool:
    if tier == NATIONAL:
        return True
    if tier == SECTOR:
        return entitled.sector
    return tier == SUPPLEMENTARY and (ALL_OWNERS in entitled.supplementary or owner in entitled.supplementary)


def readable(entitled: Entitled) -> ColumnElement[bool]:
    """SQL: the resource versions `entitled` may read (for what is not read through a snapshot)."""
    terms = [R.c.tier == NATIONAL]
    if entitled.sector:
        terms.append(R.c.tier == SECTOR)
    if ALL_OWNERS in entitled.supplementary:
        terms.append(R.c.tier == SUPPLEMENTARY)
    elif entitled.supplementary:
        terms.append(and_(R.c.tier == SUPPLEMENTARY, R.c.owner_id.in_(sorted(entitled.supplementary))))
    return or_(*terms)


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
        return cls(tuple(sorted(int(p) for p in parts if int(p) != 0)))


def current_snapshot(conn: Connection) -> Snapshot:
    rows = conn.execute(select(REL.c.id).where(REL.c.status == "active").order_by(REL.c.id))
    return Snapshot(tuple(r[0] for r in rows))


def snapshot_exists(conn: Connection, snapshot: Snapshot) -> bool:
    """Whether every release of the snapshot still holds data (it was activated once)."""
    if not snapshot.releases:
        return True
    n = conn.execute(
        select(func.count())
        .select_from(REL)
        .where(REL.c.id.in_(snapshot.releases), REL.c.activated_at.is_not(None))
    ).scalar()
    return n == len(snapshot.releases)


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


_COLUMNS = (R.c.pk, R.c.type, R.c.id, R.c.version, R.c.last_updated, R.c.tier, R.c.owner_id, R.c.data)


def _version(row: Any) -> Version:
    pk, rtype, rid, version, last_updated, tier, owner, data = row
    return Version(pk, rtype, rid, version, last_updated, tier, owner, bytes(data))


def _visible(snapshot: Snapshot) -> Any:
    """Resource joined to the manifests of the snapshot's releases."""
    return R.join(M, and_(M.c.resource_pk == R.c.pk, M.c.release_id.in_(snapshot.releases or (-1,))))


def read(conn: Connection, snapshot: Snapshot, rtype: str, rid: str) -> Version | None:
    """The served version; national data first, should another line have taken the same id."""
    row = conn.execute(
        select(*_COLUMNS)
        .select_from(_visible(snapshot))
        .where(R.c.type == rtype, R.c.id == rid)
        .order_by(case((R.c.tier == NATIONAL, 0), else_=1))
    ).first()
    return None if row is None else _version(row)


def read_many(conn: Connection, snapshot: Snapshot, keys: Iterable[tuple[str, str]]) -> list[Version]:
    """The served versions of `keys` (type, id); missing ones are left out."""
    found: list[Version] = []
    by_type: dict[str, set[str]] = {}
    for rtype, rid in keys:
        by_type.setdefault(rtype, set()).add(rid)
    for rtype, ids in sorted(by_type.items()):
        id_list = sorted(ids)
        for i in range(0, len(id_list), 500):
            rows = conn.execute(
                select(*_COLUMNS)
                .select_from(_visible(snapshot))
                .where(R.c.type == rtype, R.c.id.in_(id_list[i : i + 500]))
                .order_by(R.c.id)
            )
            found.extend(_version(r) for r in rows)
    return found


def served(conn: Connection) -> Iterator[Version]:
    """Every resource the active releases hold and serve, by type and id (for validation): the searchable
    types, and the ConceptMaps a delivery brought (served by the terminology routes beside the maps
    the server derives, which are not stored)."""
    snapshot = current_snapshot(conn)
    for rtype in (*SERVED_TYPES, "ConceptMap"):
        rows = conn.execution_options(stream_results=True, yield_per=500).execute(
            select(*_COLUMNS).select_from(_visible(snapshot)).where(R.c.type == rtype).order_by(R.c.id)
        )
        for row in rows:
            yield _version(row)


def ever_served(conn: Connection, rtype: str, rid: str, entitled: Entitled) -> bool:
    """Whether (rtype, rid) existed once for `entitled`: a read of it now answers 410 Gone, not 404."""
    where = (R.c.type == rtype, R.c.id == rid, readable(entitled))
    return conn.execute(select(R.c.pk).where(*where).limit(1)).first() is not None


def vread(conn: Connection, rtype: str, rid: str, version: int, entitled: Entitled) -> Version | None:
    row = conn.execute(
        select(*_COLUMNS).where(R.c.type == rtype, R.c.id == rid, R.c.version == version, readable(entitled))
    ).first()
    return None if row is None else _version(row)


# -- search -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clause:
    """One search parameter of a query: its values are OR-ed, clauses are AND-ed."""

    param: SearchParam
    modifier: str | None
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SortKey:
    param: str  # a search parameter code, _id or _lastUpdated
    descending: bool


@dataclass(frozen=True, slots=True)
class Include:
    """One `_include` or `_revinclude` of a search."""

    source: str  # the resource type holding the reference
    param: SearchParam
    target: str | None  # only resources of this type, when given


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _token(value: str) -> tuple[str | None, str | None]:
    """system|code, |code, system|, code -> (system or None for any, code or None for any)."""
    if "|" not in value:
        return None, value
    system, code = value.split("|", 1)
    return system, (code or None)


def _index_condition(param: SearchParam, modifier: str | None, value: str) -> ColumnElement[bool]:
    name = f"{param.resource}.{param.code}"
    if param.type == "token":
        if modifier not in (None,):
            raise SearchError(f"the modifier :{modifier} is not supported on token parameter {param.code}")
        system, code = _token(value)
        conds = [X.c.param == name]
        if system is not None:
            conds.append(X.c.system == system)
        if code is not None:
            conds.append(X.c.value == code)
        if system is None and code is None:
            raise SearchError(f"{param.code}: '|' alone is not a token")
        return and_(*conds)
    if param.type == "string":
        if modifier == "exact":
            return and_(X.c.param == name, X.c.exact == value)
        if not normalise(value):
            raise SearchError(f"{param.code}: give some text to search for")
        if modifier == "contains":
            return and_(
                X.c.param == name, X.c.value.like("%" + _escape_like(normalise(value)) + "%", escape="\\")
            )
        if modifier is None:
            return and_(X.c.param == name, X.c.value.like(_escape_like(normalise(value)) + "%", escape="\\"))
        raise SearchError(f"the modifier :{modifier} is not supported on string parameter {param.code}")
    if param.type == "reference":
        return and_(X.c.param == name, X.c.value.in_(_reference_values(param, modifier, value)))
    if param.type == "uri":
        if modifier is not None:
            raise SearchError(f"the modifier :{modifier} is not supported on uri parameter {param.code}")
        return and_(X.c.param == name, X.c.value == value)
    if param.type == "date":
        if modifier is not None:
            raise SearchError(f"the modifier :{modifier} is not supported on date parameter {param.code}")
        return and_(X.c.param == name, _indexed_date_condition(value))
    raise SearchError(f"{param.code}: {param.type} parameters are not supported")


def _reference_values(param: SearchParam, modifier: str | None, value: str) -> list[str]:
    """The stored forms ("Type/id", or a canonical URL) a reference search value can mean."""
    if param.canonical:
        if modifier is not None:
            raise SearchError(f"the modifier :{modifier} is not supported on {param.code} (a canonical URL)")
        return [value.partition("|")[0]]
    parts = [p for p in value.rstrip("/").split("/") if p]
    if modifier is not None:
        if modifier not in param.targets:
            raise SearchError(
                f"{param.code} cannot point at {modifier}; it points at {', '.join(param.targets)}"
            )
        if len(parts) != 1:
            raise SearchError(f"{param.code}:{modifier} takes a plain id, not {value!r}")
        return [f"{modifier}/{parts[0]}"]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return [f"{parts[-2]}/{parts[-1]}"]
    if len(parts) == 1:
        return [f"{t}/{parts[0]}" for t in param.targets]
    raise SearchError(f"{param.code}: {value!r} is not a reference (use Type/id or an id)")


_DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")


def date_range(value: str) -> tuple[str, datetime, datetime]:
    """A date search value -> (prefix, start, end): the instants it covers, end exclusive."""
    try:
        return _date_range(value)
    except (ValueError, OverflowError) as e:
        if isinstance(e, SearchError):
            raise
        raise SearchError(f"{value!r} is outside the dates this server can compare") from None


def _date_range(value: str) -> tuple[str, datetime, datetime]:
    prefix = value[:2] if value[:2] in _DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] in _DATE_PREFIXES else value
    try:
        start, end = date_span(text)
    except ValueError as e:
        if "time zone" in str(e):
            raise SearchError(str(e)) from None
        raise SearchError(
            f"not a date or time: {value!r} (e.g. 2026-11-21 or 2026-11-21T10:00:00Z)"
        ) from None
    return prefix, start, end


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC)


def _date_condition(column: Any, value: str) -> ColumnElement[bool]:
    prefix, start, end = date_range(value)
    lo, hi = _utc(start), _utc(end)
    conditions: dict[str, ColumnElement[bool]] = {
        "eq": and_(column >= lo, column < hi),
        "ne": or_(column < lo, column >= hi),
        "gt": column >= hi,
        "sa": column >= hi,
        "ge": column >= lo,
        "lt": column < lo,
        "eb": column < lo,
        "le": column < hi,
    }
    return conditions[prefix]


def _indexed_date_condition(value: str) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = _date_test(value, X.c.value, X.c.exact, and_, or_)
    return condition


def _date_test(value: str, first: Any, after: Any, both: Any, either: Any) -> Any:
    """An indexed date's range [first, after) against the search value's (R5 3.2.1.5.9), as SQL
    (columns, and_, or_) or in memory (strings, and, or): one rule for both."""
    prefix, start, end = date_range(value)
    lo, hi = stamp(start), stamp(end)
    if prefix == "eq":
        return both(first >= lo, after <= hi)
    if prefix == "ne":
        return either(first < lo, after > hi)
    return {
        "gt": lambda: after > hi,
        "lt": lambda: first < lo,
        "ge": lambda: after > lo,
        "le": lambda: first < hi,
        "sa": lambda: first >= hi,
        "eb": lambda: after <= lo,
    }[prefix]()


def _clause_condition(clause: Clause) -> ColumnElement[bool]:
    code = clause.param.code
    if code.startswith("_") and clause.modifier is not None:
        raise SearchError(f"the modifier :{clause.modifier} is not supported on {code}")
    if code == "_id":
        ids: ColumnElement[bool] = R.c.id.in_(clause.values)
        return ids
    if code == "_lastUpdated":
        return or_(*(_date_condition(R.c.last_updated, v) for v in clause.values))
    if code in ("_tag", "tier"):  # Organization's tier is its _tag (searchparams.py)
        tiers = []
        for v in clause.values:
            system, tier = _token(v)
            if system not in (None, TIER_SYSTEM) or tier is None:
                return false()  # a tag we never set matches nothing
            tiers.append(tier)
        tier_match: ColumnElement[bool] = R.c.tier.in_(tiers)
        return tier_match
    matching = select(X.c.resource_pk).where(
        or_(*(_index_condition(clause.param, clause.modifier, v) for v in clause.values))
    )
    indexed: ColumnElement[bool] = R.c.pk.in_(matching)
    return indexed


def clause_matches(clause: Clause, resource: dict[str, Any], rows: Sequence[IndexRow]) -> bool:
    """Whether a resource that is not in the store (the service catalogue's, the terminology
    service's maps) matches `clause` as a stored one would: `rows` are its `index_rows`, its tiers
    are in meta.tag. No last-updated time is known for such a resource, so `_lastUpdated` never
    matches it."""
    code = clause.param.code
    if code.startswith("_") and clause.modifier is not None:
        raise SearchError(f"the modifier :{clause.modifier} is not supported on {code}")
    if code == "_id":
        return resource.get("id") in clause.values
    if code == "_lastUpdated":
        for v in clause.values:
            date_range(v)  # a bad value is a 400 here as well
        return False
    if code in ("_tag", "tier"):
        tiers = {
            t.get("code") for t in resource.get("meta", {}).get("tag", []) if t.get("system") == TIER_SYSTEM
        }
        return any(_token(v)[0] in (None, TIER_SYSTEM) and _token(v)[1] in tiers for v in clause.values)
    name = f"{clause.param.resource}.{code}"
    mine = [r for r in rows if r.param == name]
    return any(_row_matches(clause.param, clause.modifier, v, r) for v in clause.values for r in mine)


def _row_matches(param: SearchParam, modifier: str | None, value: str, row: IndexRow) -> bool:
    """`_index_condition`, for one index row in memory."""
    _index_condition(param, modifier, value)  # the same SearchError for a value or modifier it refuses
    if param.type == "token":
        system, code = _token(value)
        return (system is None or row.system == system) and (code is None or row.value == code)
    if param.type == "string":
        if modifier == "exact":
            return row.exact == value
        if modifier == "contains":
            return normalise(value) in row.value
        return row.value.startswith(normalise(value))
    if param.type == "reference":
        return row.value in _reference_values(param, modifier, value)
    if param.type == "date":
        return bool(_date_test(value, row.value, row.exact or "", lambda a, b: a and b, lambda a, b: a or b))
    return row.value == value  # uri


def _sort_column(rtype: str, key: SortKey) -> Any:
    if key.param == "_id":
        return R.c.id
    if key.param == "_lastUpdated":
        return R.c.last_updated
    return (
        select(func.min(X.c.value))
        .where(X.c.resource_pk == R.c.pk, X.c.param == f"{rtype}.{key.param}")
        .scalar_subquery()
    )


def search(
    conn: Connection,
    snapshot: Snapshot,
    rtype: str,
    clauses: Sequence[Clause],
    *,
    sort: Sequence[SortKey] = (),
    count: int = 20,
    offset: int = 0,
    with_total: bool = False,
    with_page: bool = True,
) -> tuple[list[Version], bool, int | None]:
    """One page of matches, whether there are more, and (when asked) how many match in all."""
    where = [_clause_condition(c) for c in clauses]
    if not any(c.param.path for c in clauses):
        # an indexed parameter names its type already; saying it again makes SQLite walk every
        # resource of the type in id order instead of looking up the few that match
        where.append(R.c.type == rtype)
    total = None
    if with_total:
        total = conn.execute(select(func.count()).select_from(_visible(snapshot)).where(*where)).scalar() or 0
    if not with_page:
        return [], False, total
    order = []
    for key in sort:
        column = _sort_column(rtype, key)
        order.append(column.desc() if key.descending else column.asc())
    order.append(R.c.id.asc())
    # pick the page by key first, then fetch its bytes: sorting thousands of matches with their
    # data attached costs ten times more than sorting their keys
    pks = [
        pk
        for (pk,) in conn.execute(
            select(R.c.pk)
            .select_from(_visible(snapshot))
            .where(*where)
            .order_by(*order)
            .limit(count + 1)
            .offset(offset)
        )
    ]
    page = pks[:count]
    stored = (
        {r[0]: _version(r) for r in conn.execute(select(*_COLUMNS).where(R.c.pk.in_(page)))} if page else {}
    )
    return [stored[pk] for pk in page], len(pks) > count, total


def references_from(conn: Connection, versions: Sequence[Version], param: str) -> list[tuple[str, str]]:
    """The (type, id) the `param` ("Type.code") values of `versions` point at, in order."""
    pks = [v.pk for v in versions]
    found: list[tuple[str, str]] = []
    for i in range(0, len(pks), 500):
        rows = conn.execute(
            select(X.c.value).where(X.c.param == param, X.c.resource_pk.in_(pks[i : i + 500])).distinct()
        )
        for (value,) in rows:
            rtype, _, rid = value.partition("/")
            found.append((rtype, rid))
    return sorted(set(found))


def _served_matching(conn: Connection, snapshot: Snapshot, matching: Any, limit: int) -> list[Version]:
    """Served versions whose pk `matching` (a subquery on the index) selects, by id.

    No type condition: an index parameter's name holds its type, and naming the type again
    makes SQLite walk every resource of it (see `search`).
    """
    rows = conn.execute(
        select(*_COLUMNS)
        .select_from(_visible(snapshot))
        .where(R.c.pk.in_(matching))
        .order_by(R.c.id)
        .limit(limit)
    )
    return [_version(r) for r in rows]


def referring(
    conn: Connection, snapshot: Snapshot, rtype: str, param: str, targets: Sequence[str], limit: int = 1000
) -> list[Version]:
    """Served resources of `rtype` whose reference parameter `param` points at one of `targets`."""
    if not targets:
        return []
    matching = select(X.c.resource_pk).where(X.c.param == f"{rtype}.{param}", X.c.value.in_(list(targets)))
    return _served_matching(conn, snapshot, matching, limit)


def with_tokens(
    conn: Connection,
    snapshot: Snapshot,
    rtype: str,
    param: str,
    tokens: Sequence[tuple[str, str]],
    limit: int = 1000,
) -> list[Version]:
    """Served resources of `rtype` with a (system, code) of token parameter `param` in `tokens`."""
    if not tokens:
        return []
    matching = select(X.c.resource_pk).where(
        X.c.param == f"{rtype}.{param}",
        or_(*(and_(X.c.system == s, X.c.value == c) for s, c in tokens)),
    )
    return _served_matching(conn, snapshot, matching, limit)


def index_tokens(conn: Connection, version: Version, param: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(X.c.system, X.c.value).where(
            X.c.resource_pk == version.pk, X.c.param == f"{version.type}.{param}"
        )
    )
    return sorted((s, v) for s, v in rows)


def included(
    conn: Connection,
    snapshot: Snapshot,
    page: Sequence[Version],
    includes: Sequence[Include],
    revincludes: Sequence[Include],
    listed: Sequence[tuple[str, str]] = (),
) -> list[Version]:
    """What `_include` and `_revinclude` add to a page: the store's matches, and those pointing at
    the (type, id) `listed` by other sources (they can be pointed at, but point at nothing the
    store serves)."""
    if not page and not listed:
        return []
    seen = {(v.type, v.id) for v in page} | set(listed)
    found: list[Version] = []
    for inc in includes:
        keys = references_from(conn, page, f"{inc.source}.{inc.param.code}") if page else []
        keys = [k for k in keys if (inc.target is None or k[0] == inc.target) and k not in seen]
        for v in read_many(conn, snapshot, keys):
            seen.add((v.type, v.id))
            found.append(v)
    for inc in revincludes:
        targets = [f"{v.type}/{v.id}" for v in page] + [f"{t}/{i}" for t, i in listed]
        for v in referring(conn, snapshot, inc.source, inc.param.code, targets):
            if (v.type, v.id) not in seen:
                seen.add((v.type, v.id))
                found.append(v)
    return found


# -- history ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """A version that became served, or (version is None) a resource that stopped being served."""

    type: str
    id: str
    at: datetime
    version: Version | None
    pk: int  # the version's, or the last version served of a removed resource

    @property
    def cursor(self) -> str:
        """Where the history goes on after this item (`_cursor` of a next link): its place in the
        order (instant, removals first, newest version first), in URL-safe characters."""
        kind = "d" if self.version is None else "p"
        return f"{self.at:%Y%m%dT%H%M%S.%f}-{kind}-{self.pk}"


_CURSOR = re.compile(r"(\d{8}T\d{6}\.\d{6})-([dp])-(\d{1,18})")


def parse_cursor(text: str) -> tuple[datetime, bool, int]:
    """A `_cursor` back into (instant, removed, pk); SearchError for anything we did not write."""
    found = _CURSOR.fullmatch(text)
    if found is None:
        raise SearchError(f"_cursor {text!r} is not one this server wrote; start again from the first page")
    try:
        at = datetime.strptime(found[1], "%Y%m%dT%H%M%S.%f")
    except ValueError:
        raise SearchError(
            f"_cursor {text!r} is not one this server wrote; start again from the first page"
        ) from None
    return at, found[2] == "d", int(found[3])


def history(
    conn: Connection,
    *,
    rtype: str | None,
    rid: str | None,
    since: datetime | None,
    upto_release: int,
    count: int,
    offset: int,
    entitled: Entitled,
    after: tuple[datetime, bool, int] | None = None,
) -> tuple[list[HistoryItem], bool]:
    """Newest first: versions made and resources expired by releases up to `upto_release`.

    Each kind is read newest first on its own, only as far as the page reaches, and the two are
    merged here: one query over their union had to sort every change since `_since` (all of a
    full delivery, ~100 ms) to give the newest hundred. Ties on the instant put removals first,
    then the newest version.

    `after` (a parsed `_cursor`) starts the page just after that item, read from the index as the
    first page is; `offset` (ignored with `after`) has to read and skip every item before it.
    """
    types = [rtype] if rtype else list(SERVED_TYPES)
    if after is not None:
        offset = 0
    reach = offset + count + 1
    made = (
        select(R.c.pk, R.c.last_updated, R.c.type, R.c.id)
        .where(R.c.type.in_(types), R.c.release_id <= upto_release, readable(entitled))
        .order_by(R.c.last_updated.desc(), R.c.pk.desc())
        .limit(reach)
    )
    gone = (
        select(T.c.resource_pk, REL.c.activated_at, T.c.type, T.c.id)
        .select_from(T.join(REL, REL.c.id == T.c.release_id).join(R, R.c.pk == T.c.resource_pk))
        .where(T.c.type.in_(types), T.c.release_id <= upto_release, readable(entitled))
        .order_by(REL.c.activated_at.desc(), T.c.resource_pk.desc())
        .limit(reach)
    )
    if rid is not None:
        made = made.where(R.c.id == rid)
        gone = gone.where(T.c.id == rid)
    if since is not None:
        made = made.where(R.c.last_updated > _utc(since))
        gone = gone.where(REL.c.activated_at > _utc(since))
    if after is not None:  # at the cursor's instant removals come first, then versions newest first
        at, removed, pk = after
        made = made.where(tuple_(R.c.last_updated, R.c.pk) < tuple_(at, 2**62 if removed else pk))
        gone = gone.where(tuple_(REL.c.activated_at, T.c.resource_pk) < tuple_(at, pk if removed else -1))
    changes: list[tuple[datetime, bool, int, str, str]] = [  # (at, removed, pk, type, id)
        (at, True, pk, t, i) for pk, at, t, i in conn.execute(gone)
    ]
    changes += [(at, False, pk, t, i) for pk, at, t, i in conn.execute(made)]
    changes.sort(key=lambda c: (c[0], c[1], c[2]), reverse=True)
    page = changes[offset : offset + count]
    puts = [pk for _, removed, pk, _, _ in page if not removed]
    versions: dict[int, Version] = {}
    for i in range(0, len(puts), 500):  # only the page's versions are read whole
        for r in conn.execute(select(*_COLUMNS).where(R.c.pk.in_(puts[i : i + 500]))):
            versions[r[0]] = _version(r)
    items = [HistoryItem(t, i, at, None if removed else versions[pk], pk) for at, removed, pk, t, i in page]
    return items, len(changes) > offset + count


def newest_release(conn: Connection) -> int:
    """The newest release that was ever activated: history pages stop there, so they stay put."""
    return (
        conn.execute(
            select(func.coalesce(func.max(REL.c.id), 0)).where(REL.c.activated_at.is_not(None))
        ).scalar()
        or 0
    )


# -- terminology --------------------------------------------------------------------------------


def index_values(
    conn: Connection, snapshot: Snapshot, params: Sequence[str]
) -> list[tuple[str, str, str, str, str, str | None]]:
    """(type, id, param, system, value, exact) of every index row of `params` the snapshot serves.

    The terminology service builds its FEST id <-> IDMP maps from these, once per snapshot.
    """
    rows = conn.execute(
        select(R.c.type, R.c.id, X.c.param, X.c.system, X.c.value, X.c.exact)
        .select_from(_visible(snapshot).join(X, X.c.resource_pk == R.c.pk))
        .where(X.c.param.in_(list(params)))
        .order_by(R.c.type, R.c.id, X.c.id)
    )
    return [(t, i, p, s, v, e) for t, i, p, s, v, e in rows]


def all_of_type(conn: Connection, snapshot: Snapshot, rtype: str) -> list[Version]:
    """Every served version of `rtype` (for the few, small types a server keeps in memory)."""
    rows = conn.execute(
        select(*_COLUMNS).select_from(_visible(snapshot)).where(R.c.type == rtype).order_by(R.c.id)
    )
    return [_version(r) for r in rows]


def fest_made_ids(conn: Connection, snapshot: Snapshot, rtype: str) -> set[str]:
    """The ids of the served `rtype` resources made from a FEST entry (they carry its Oppf Id)."""
    rows = conn.execute(
        select(R.c.id).select_from(_visible(snapshot)).where(R.c.type == rtype, R.c.source_id.is_not(None))
    )
    return {str(r[0]) for r in rows}
