"""History: the versions releases made and the resources they stopped serving, newest first,
paged by a cursor so that every page costs the same."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.engine import Connection

from grunndata.fhir import SERVED_TYPES
from grunndata.store.access import Entitled, readable, readable_release, unserved_releases
from grunndata.store.models import PRUNED, REL, C, R, T
from grunndata.store.read import COLUMNS, SearchError, Version, instant, utc, version_of


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
    types: Sequence[str] | None = None,
    excluded: Sequence[str] = (),
) -> tuple[list[HistoryItem], bool]:
    """Newest first: versions made and resources expired by releases up to `upto_release`.

    Each kind is read newest first on its own, only as far as the page reaches, and the two are
    merged here: one query over their union had to sort every change since `_since` (all of a
    full delivery, ~100 ms) to give the newest hundred. Ties on the instant put removals first,
    then the newest version.

    `after` (a parsed `_cursor`) starts the page just after that item, read from the index as the
    first page is; `offset` (ignored with `after`) has to read and skip every item before it.
    `types`: those of a history without `rtype` (every served type when None). `excluded`: content
    filter codes (the R4 H-resept view) that leave out a version any release excluded by one of
    them, and its removal.
    """
    types = [rtype] if rtype else list(SERVED_TYPES if types is None else types)
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
        select(T.c.resource_pk, T.c.type, T.c.id)
        .select_from(T.join(R, R.c.pk == T.c.resource_pk))
        .where(T.c.type.in_(types), readable(entitled))
        .order_by(T.c.resource_pk.desc())
    )
    if rid is not None:
        made = made.where(R.c.id == rid)
        gone = gone.where(T.c.id == rid)
    if excluded:
        out = select(C.c.resource_pk).where(
            C.c.code.in_(list(excluded)), C.c.release_id.not_in(unserved_releases())
        )
        made = made.where(R.c.pk.not_in(out))
        gone = gone.where(T.c.resource_pk.not_in(out))
    if since is not None:
        made = made.where(R.c.last_updated > utc(since))
    if after is not None:  # at the cursor's instant removals come first, then versions newest first
        at, removed, pk = after
        made = made.where(tuple_(R.c.last_updated, R.c.pk) < tuple_(at, 2**62 if removed else pk))
    changes: list[tuple[datetime, bool, int, str, str]] = [  # (at, removed, pk, type, id)
        (at, True, pk, t, i) for at, pk, t, i in _removals(conn, gone, since, upto_release, after, reach)
    ]
    changes += [(at, False, pk, t, i) for pk, at, t, i in conn.execute(made)]
    changes.sort(key=lambda c: (c[0], c[1], c[2]), reverse=True)
    page = changes[offset : offset + count]
    puts = [pk for _, removed, pk, _, _ in page if not removed]
    versions: dict[int, Version] = {}
    for i in range(0, len(puts), 500):  # only the page's versions are read whole
        for r in conn.execute(select(*COLUMNS).where(R.c.pk.in_(puts[i : i + 500]))):
            versions[r[0]] = version_of(r)
    items = [HistoryItem(t, i, at, None if removed else versions[pk], pk) for at, removed, pk, t, i in page]
    return items, len(changes) > offset + count


def _removals(
    conn: Connection,
    gone: Select[Any],
    since: datetime | None,
    upto_release: int,
    after: tuple[datetime, bool, int] | None,
    reach: int,
) -> list[tuple[datetime, int, str, str]]:
    """The first `reach` removals newest first (the release's activation, then resource_pk), read
    release by release: one query over every tombstone ever written had to sort them all (a temp
    B-tree growing with the history) to give the newest few; a release's own are few, and the
    releases are read from the newest only until the page is full. Releases activated at the same
    instant are read together, so the order is exact."""
    releases = select(REL.c.id, REL.c.activated_at).where(
        REL.c.id <= upto_release, REL.c.activated_at.is_not(None)
    )
    if since is not None:
        releases = releases.where(REL.c.activated_at > utc(since))
    if after is not None:
        releases = releases.where(REL.c.activated_at <= _naive_utc(after[0]).replace(tzinfo=UTC))
    instants: dict[datetime, list[int]] = {}
    for rel, at in conn.execute(releases.order_by(REL.c.activated_at.desc())):
        instants.setdefault(at, []).append(rel)
    found: list[tuple[datetime, int, str, str]] = []
    for at, rels in instants.items():
        query = gone.where(T.c.release_id.in_(rels)).limit(reach - len(found))
        if after is not None and _naive_utc(at) == _naive_utc(after[0]):  # past the cursor's removal
            query = query.where(T.c.resource_pk < (after[2] if after[1] else -1))
        found += [(at, pk, t, i) for pk, t, i in conn.execute(query)]
        if len(found) >= reach:
            break
    return found


def _naive_utc(t: datetime) -> datetime:
    """An instant as SQLite gives it (naive, UTC), whichever store or cursor it came from."""
    return t if t.tzinfo is None else t.astimezone(UTC).replace(tzinfo=None)


def rolled_back_since(conn: Connection, since: datetime, entitled: Entitled) -> tuple[int, datetime] | None:
    """A release (of a line `entitled` may read) made active again by a rollback after `since`, and
    when: (release id, instant), the newest such. A rollback made before rollbacks were written as
    releases (store/releases.py `rollback`) switched what a line serves without a version or a
    removal of its own, and moved the release's activation past that of the later release it
    rolled back: a history since before it does not show the switch, so the client has to read
    the data again. A rollback written as a release tells its changes, and moves no activation."""
    rolled = REL.alias("rolled")
    found = conn.execute(
        select(REL.c.id, REL.c.activated_at)
        .where(
            # made active after `since` (a rollback sets the time), whatever it is now: a release
            # imported after the rollback builds on it, and does not tell the switch either
            REL.c.activated_at > utc(since),
            readable_release(entitled),
            select(rolled.c.id)
            .where(
                rolled.c.status == "rolled-back",
                rolled.c.tier == REL.c.tier,
                rolled.c.owner_id == REL.c.owner_id,
                rolled.c.id > REL.c.id,
                rolled.c.activated_at < REL.c.activated_at,  # activated again after it: the old way
            )
            .exists(),
        )
        .order_by(REL.c.activated_at.desc())
        .limit(1)
    ).first()
    return None if found is None else (found[0], found[1])


def newest_release(conn: Connection, entitled: Entitled | None = None) -> int:
    """The newest release that was ever activated (of those whose data `entitled` may read): history
    pages stop there, so they stay put. A client's links name no release of a line it may not read
    (an anonymous client's `_snapshot` would otherwise tell when a sector release came out)."""
    query = select(func.coalesce(func.max(REL.c.id), 0)).where(REL.c.activated_at.is_not(None))
    if entitled is not None:
        query = query.where(readable_release(entitled))
    return conn.execute(query).scalar() or 0


def oldest_release(conn: Connection, entitled: Entitled | None = None) -> int:
    """The oldest release ever activated that the store still keeps (of those whose data `entitled`
    may read): a history (DMP's delta) reaches back to it; `grunndata prune` moves it on."""
    query = select(func.coalesce(func.min(REL.c.id), 0)).where(
        REL.c.activated_at.is_not(None), REL.c.status != PRUNED
    )
    if entitled is not None:
        query = query.where(readable_release(entitled))
    return conn.execute(query).scalar() or 0


def history_gap(conn: Connection, since: datetime, entitled: Entitled) -> tuple[int, datetime] | None:
    """When releases were pruned and `since` is before the complete history of the lines `entitled`
    may read starts: (the oldest release kept after a pruned one, its activation). Changes before it
    are partly gone (`grunndata prune`), so a history since then cannot be told truly: the client
    reloads. None when the history since `since` is whole.

    Per pruned release, the first activation in its line after its own (when it stopped being
    served; a rollback only moves activations later, so never too early); the newest of those.
    """
    after = REL.alias("after")
    stopped = (
        select(func.min(after.c.activated_at))
        .where(
            after.c.tier == REL.c.tier,
            after.c.owner_id == REL.c.owner_id,
            after.c.activated_at > REL.c.activated_at,
        )
        .scalar_subquery()
    )
    found = conn.execute(
        select(REL.c.tier, REL.c.owner_id, stopped.label("stopped"))
        .where(REL.c.status == PRUNED, readable_release(entitled))
        .order_by(stopped.desc().nulls_last())
        .limit(1)
    ).first()
    if found is None or found.stopped is None:
        return None
    start = found.stopped if found.stopped.tzinfo else found.stopped.replace(tzinfo=UTC)
    if utc(since) >= start:
        return None
    first = conn.execute(
        select(func.min(REL.c.id)).where(
            REL.c.tier == found.tier, REL.c.owner_id == found.owner_id, REL.c.activated_at == found.stopped
        )
    ).scalar()
    return int(first or 0), start


def since_untold(conn: Connection, since: datetime, entitled: Entitled) -> str | None:
    """Why what changed since `since` cannot be told as changes, or None: a rollback after it
    switched what a line serves without versions, or the history kept starts after it (older
    releases were pruned). Each caller (`_history`, R4 delta, `$export`) adds what the client does."""
    rolled = rolled_back_since(conn, since, entitled)
    if rolled is not None:
        return (
            f"release {rolled[0]} was made active again by a rollback at {instant(rolled[1])}, after "
            "_since; what it serves is not told as changes"
        )
    gap = history_gap(conn, since, entitled)
    if gap is not None:
        return (
            f"_since reaches before the history this server keeps: it starts at release {gap[0]}, "
            f"served from {instant(gap[1])} (older releases were pruned)"
        )
    return None
