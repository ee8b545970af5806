"""R5 subscriptions as the store keeps them: the subscriptions, their numbered events, how far
delivery got, and the lease that makes one server process the sender.

Events are made once: the notifier advances a line's `notifier_line` row by compare-and-set in the
same transaction that inserts the line's events and counts them into each subscription's
`events`, so two processes that both tried would leave one set of events (the other's update
finds the row moved, and it rolls back). The lease is a row taken by compare-and-set as well: the
same UPDATE ... WHERE on SQLite and PostgreSQL, no locking statement either lacks.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from grunndata.store.models import EV, LEASE, NL, REL, SUB, SUBR, WS, R

REQUESTED, ACTIVE, ERROR, OFF = "requested", "active", "error", "off"
NOTIFIER = "notifier"  # the one lease's name
_SERVED = ("active", "superseded", "rolled-back")  # statuses of a release that was served (a staged one
# is not: its events wait for its activation, which gives it activated_at and the status active)


def now() -> datetime:
    """The current time, aware UTC, to the millisecond (as the store's other times)."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _aware(t: datetime | None) -> datetime | None:
    """A stored time as aware UTC (SQLite gives it back without a zone)."""
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class New:
    """What a new subscription is made of (the routes check it first)."""

    owner: str
    topic: str
    channel: str
    endpoint: str | None
    base_url: str
    content: str
    heartbeat_seconds: int | None
    timeout_seconds: int | None
    sector: bool
    supplementary: frozenset[str]
    filters: tuple[tuple[str, str], ...]
    resource: dict[str, Any]
    headers: tuple[tuple[str, str], ...]
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Subscription(New):
    """A subscription's row, as the routes and the notifier read it: what it was made of, and its state."""

    id: str
    status: str
    created_at: datetime
    updated_at: datetime
    events: int
    delivered: int
    lost_through: int
    attempts: int
    next_attempt: datetime | None
    last_sent: datetime | None
    error: str | None


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        owner=row.owner,
        status=row.status,
        topic=row.topic,
        channel=row.channel,
        endpoint=row.endpoint,
        base_url=row.base_url,
        content=row.content,
        heartbeat_seconds=row.heartbeat_seconds,
        timeout_seconds=row.timeout_seconds,
        sector=bool(row.sector),
        supplementary=frozenset(o for o in row.supplementary.split(",") if o),
        filters=tuple((str(n), str(v)) for n, v in row.filters or ()),
        resource=dict(row.resource or {}),
        headers=tuple((str(n), str(v)) for n, v in row.headers or ()),
        end=_aware(row.end),
        created_at=_aware(row.created_at),  # type: ignore[arg-type]
        updated_at=_aware(row.updated_at),  # type: ignore[arg-type]
        events=row.events,
        delivered=row.delivered,
        lost_through=row.lost_through,
        attempts=row.attempts,
        next_attempt=_aware(row.next_attempt),
        last_sent=_aware(row.last_sent),
        error=row.error,
    )


class TooManySubscriptions(Exception):
    """The owner has as many subscriptions as one owner may keep."""


def create(conn: Connection, new: New, most_per_owner: int, status: str = REQUESTED) -> Subscription:
    """Record a new subscription (status requested); TooManySubscriptions when its owner already
    keeps `most_per_owner` that are not off (nothing is left written then). The caller commits.

    The count and the insert are one step for concurrent creates on any number of processes: on
    PostgreSQL the owner's advisory lock is taken for the transaction before counting; SQLite
    serialises writes, so the row is inserted first (the transaction holds the write lock from
    then on) and counted with the others after."""
    made = now()
    values = {
        "id": secrets.token_hex(16),
        "owner": new.owner,
        "status": status,
        "topic": new.topic,
        "channel": new.channel,
        "endpoint": new.endpoint,
        "base_url": new.base_url,
        "content": new.content,
        "heartbeat_seconds": new.heartbeat_seconds,
        "timeout_seconds": new.timeout_seconds,
        "sector": new.sector,
        "supplementary": ",".join(sorted(new.supplementary)),
        "filters": [list(f) for f in new.filters],
        "resource": new.resource,
        "headers": [list(h) for h in new.headers],
        "end": new.end,
        "created_at": made,
        "updated_at": made,
    }
    counted = select(func.count()).select_from(SUB).where(SUB.c.owner == new.owner, SUB.c.status != OFF)
    if conn.dialect.name == "postgresql":
        key = func.hashtextextended(f"grunndata-subscription-owner:{new.owner}", 0)
        conn.execute(select(func.pg_advisory_xact_lock(key)))
        if (conn.execute(counted).scalar() or 0) >= most_per_owner:
            raise TooManySubscriptions
        conn.execute(insert(SUB).values(**values))
    else:
        conn.execute(insert(SUB).values(**values))
        if (conn.execute(counted).scalar() or 0) > most_per_owner:
            conn.execute(delete(SUB).where(SUB.c.id == values["id"]))  # whether or not the caller rolls back
            raise TooManySubscriptions
    return _subscription(conn.execute(select(SUB).where(SUB.c.id == values["id"])).one())


def get(conn: Connection, sub_id: str, owner: str | None = None) -> Subscription | None:
    """The subscription `sub_id`; with `owner`, only if it is that owner's (to others it does not
    exist)."""
    where = [SUB.c.id == sub_id]
    if owner is not None:
        where.append(SUB.c.owner == owner)
    row = conn.execute(select(SUB).where(*where)).first()
    return None if row is None else _subscription(row)


def find(
    conn: Connection,
    owner: str,
    ids: Sequence[str] = (),
    statuses: Sequence[str] = (),
    topics: Sequence[str] = (),
) -> list[Subscription]:
    """The owner's subscriptions, oldest first; each non-empty list narrows to its values (OR)."""
    where = [SUB.c.owner == owner]
    if ids:
        where.append(SUB.c.id.in_(list(ids)))
    if statuses:
        where.append(SUB.c.status.in_(list(statuses)))
    if topics:
        where.append(SUB.c.topic.in_(list(topics)))
    rows = conn.execute(select(SUB).where(*where).order_by(SUB.c.created_at, SUB.c.id))
    return [_subscription(r) for r in rows]


def remove(conn: Connection, sub_id: str, owner: str) -> bool:
    """Delete the owner's subscription and its events; False when it has none of that id."""
    gone = conn.execute(delete(SUB).where(SUB.c.id == sub_id, SUB.c.owner == owner))
    if gone.rowcount:
        conn.execute(delete(EV).where(EV.c.subscription_id == sub_id))
        conn.execute(delete(WS).where(WS.c.subscription_id == sub_id))
    return bool(gone.rowcount)


def live(conn: Connection) -> list[Subscription]:
    """Every subscription not off, of every owner (the notifier's work list)."""
    rows = conn.execute(select(SUB).where(SUB.c.status != OFF).order_by(SUB.c.created_at, SUB.c.id))
    return [_subscription(r) for r in rows]


# -- what the owner may read now -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seen:
    """An owner's entitlement as the last token it used on the subscription routes showed it."""

    sector: bool
    supplementary: frozenset[str]
    at: datetime


def seen(conn: Connection, owner: str, sector: bool, supplementary: frozenset[str]) -> None:
    """Record what the owner's token read now (each request of the owner to the subscription routes
    does): what its notifications carry from now on. The caller commits."""
    from sqlalchemy.dialects import postgresql, sqlite

    values = {"sector": sector, "supplementary": ",".join(sorted(supplementary)), "seen_at": now()}
    upsert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = upsert(SUBR).values(owner=owner, **values)
    conn.execute(statement.on_conflict_do_update(index_elements=[SUBR.c.owner], set_=values))


def last_seen(conn: Connection, owner: str) -> Seen | None:
    """The owner's entitlement as last seen, or None (no token of it seen since the store had the
    table)."""
    row = conn.execute(select(SUBR).where(SUBR.c.owner == owner)).first()
    if row is None:
        return None
    owners = frozenset(o for o in row.supplementary.split(",") if o)
    return Seen(bool(row.sector), owners, _aware(row.seen_at))  # type: ignore[arg-type]


# -- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    subscription_id: str
    number: int
    release_id: int
    tier: str
    owner: str
    created_at: datetime
    total: int  # changed resources the subscriber may read, before the cap
    changes: tuple[tuple[str, str, int, str], ...]  # (type, id, version, action), capped


def _event(row: Any) -> Event:
    return Event(
        row.subscription_id,
        row.number,
        row.release_id,
        row.tier,
        row.owner,
        _aware(row.created_at),  # type: ignore[arg-type]
        row.total,
        tuple((str(t), str(i), int(v), str(a)) for t, i, v, a in row.changes or ()),
    )


@dataclass(frozen=True, slots=True)
class Pending:
    """The next release of a line to make events for, and the one its changes are counted from
    (None: nothing before it). `previous_at` is None when the line was never notified: then the
    line's mark is made, not moved."""

    tier: str
    owner: str
    release_id: int
    activated_at: datetime
    previous_id: int | None
    previous_at: datetime | None


@dataclass(frozen=True, slots=True)
class Draft:
    """One subscription's event for a release: the changes it may read (all of them: capped here)."""

    subscription_id: str
    changes: tuple[tuple[str, str, int, str], ...]


def pending_releases(conn: Connection) -> list[Pending]:
    """Per line, the first release activated after the one its events were last made for (by time,
    then id): a new release (a rollback is one), or an older one a rollback by an older version made
    active again (its activation is new). A line never
    notified starts at the release it serves now, its changes counted from the release it was
    built on."""
    done = {(r.tier, r.owner): r for r in conn.execute(select(NL))}
    found: list[Pending] = []
    rows = conn.execute(
        select(REL.c.id, REL.c.tier, REL.c.owner_id, REL.c.status, REL.c.activated_at, REL.c.based_on)
        .where(REL.c.status.in_(_SERVED), REL.c.activated_at.is_not(None))
        .order_by(REL.c.tier, REL.c.owner_id, REL.c.activated_at, REL.c.id)
    )
    lines: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        lines.setdefault((row.tier, row.owner_id), []).append(row)
    for line, releases in lines.items():
        last = done.get(line)
        if last is None:
            first = next((r for r in releases if r.status == "active"), None)
            if first is not None:
                found.append(Pending(*line, first.id, _aware(first.activated_at), first.based_on, None))  # type: ignore[arg-type]
            continue
        last_at = _aware(last.activated_at)
        assert last_at is not None
        # in order of (activation, id): releases activated in the same millisecond (several served
        # between two ticks) are each one event, in the order they were made, none skipped
        done_through = (last_at, last.release_id)
        later = next(
            (r for r in releases if (at := _aware(r.activated_at)) is not None and (at, r.id) > done_through),
            None,
        )
        if later is not None:
            found.append(
                Pending(*line, later.id, _aware(later.activated_at), last.release_id, last_at)  # type: ignore[arg-type]
            )
    return found


def recipients(conn: Connection, pending: Pending) -> list[Subscription]:
    """The subscriptions that may get an event for `pending`: not off, made before it was served."""
    rows = conn.execute(
        select(SUB)
        .where(SUB.c.status != OFF, SUB.c.created_at <= pending.activated_at)
        .order_by(SUB.c.created_at, SUB.c.id)
    )
    return [_subscription(r) for r in rows]


class LineMoved(Exception):
    """Another process made the events of this release first (nothing was written: roll back)."""


def record(
    conn: Connection, pending: Pending, drafts: Sequence[Draft], keep: int, most_changes: int
) -> list[Event]:
    """Advance the line past `pending` and insert its events, numbered on in each subscription
    (`keep` events kept per subscription, `most_changes` changes per event). LineMoved when another
    process advanced the line first: the caller rolls back. The caller commits: the advance and
    the events are one transaction."""
    line = (NL.c.tier == pending.tier, NL.c.owner == pending.owner)
    if pending.previous_at is None:
        if conn.execute(select(NL.c.tier).where(*line)).first() is not None:
            raise LineMoved
        try:  # two at once: one insert fails, and its transaction is rolled back by the caller
            conn.execute(
                insert(NL).values(
                    tier=pending.tier,
                    owner=pending.owner,
                    release_id=pending.release_id,
                    activated_at=pending.activated_at,
                )
            )
        except IntegrityError:
            raise LineMoved from None
    else:
        moved = conn.execute(
            update(NL)
            .where(*line, NL.c.release_id == pending.previous_id, NL.c.activated_at == pending.previous_at)
            .values(release_id=pending.release_id, activated_at=pending.activated_at)
        )
        if moved.rowcount != 1:
            raise LineMoved
    made = now()
    events: list[Event] = []
    for draft in drafts:
        counted = conn.execute(
            update(SUB)
            .where(SUB.c.id == draft.subscription_id, SUB.c.status != OFF)
            .values(events=SUB.c.events + 1)
        )
        if not counted.rowcount:  # deleted meanwhile
            continue
        number = conn.execute(select(SUB.c.events).where(SUB.c.id == draft.subscription_id)).scalar_one()
        values = {
            "subscription_id": draft.subscription_id,
            "number": number,
            "release_id": pending.release_id,
            "tier": pending.tier,
            "owner": pending.owner,
            "created_at": made,
            "total": len(draft.changes),
            "changes": [list(c) for c in draft.changes[:most_changes]],
        }
        conn.execute(insert(EV).values(**values))
        conn.execute(
            delete(EV).where(EV.c.subscription_id == draft.subscription_id, EV.c.number <= number - keep)
        )
        events.append(
            Event(
                draft.subscription_id,
                number,
                pending.release_id,
                pending.tier,
                pending.owner,
                made,
                len(draft.changes),
                tuple(draft.changes[:most_changes]),
            )
        )
    return events


def events(
    conn: Connection, sub_id: str, since: int = 1, until: int | None = None, limit: int | None = None
) -> list[Event]:
    """The kept events of a subscription numbered from `since` to `until`, in order."""
    query = select(EV).where(EV.c.subscription_id == sub_id, EV.c.number >= since)
    if until is not None:
        query = query.where(EV.c.number <= until)
    query = query.order_by(EV.c.number)
    if limit is not None:
        query = query.limit(limit)
    return [_event(r) for r in conn.execute(query)]


def undelivered(
    conn: Connection, sub: Subscription, after: int, limit: int
) -> tuple[list[Event], dict[tuple[str, str, int], bytes]]:
    """The next kept events of `sub` numbered after `after` (at most `limit`), with the bodies
    full-resource content needs; those dropped before they were sent (the kept events are
    bounded) are marked lost. For every channel's sender: the caller commits."""
    first = first_kept(conn, sub.id)
    if first is None or first > after + 1:
        lost(conn, sub.id, sub.events if first is None else first - 1)
    found = events(conn, sub.id, after + 1, None, limit)
    keys = [(t, i, v) for e in found for t, i, v, a in e.changes if a != "delete"]
    return found, bodies(conn, keys) if sub.content == "full-resource" else {}


def first_kept(conn: Connection, sub_id: str) -> int | None:
    """The lowest event number still kept, or None."""
    found = conn.execute(select(func.min(EV.c.number)).where(EV.c.subscription_id == sub_id)).scalar()
    return None if found is None else int(found)


def bodies(conn: Connection, keys: Sequence[tuple[str, str, int]]) -> dict[tuple[str, str, int], bytes]:
    """The stored bytes of resource versions by (type, id, version), for full-resource content."""
    found: dict[tuple[str, str, int], bytes] = {}
    wanted = list(dict.fromkeys(keys))
    for start in range(0, len(wanted), 200):
        chunk = wanted[start : start + 200]
        rows = conn.execute(
            select(R.c.type, R.c.id, R.c.version, R.c.data).where(
                or_(*(and_(R.c.type == t, R.c.id == i, R.c.version == v) for t, i, v in chunk))
            )
        )
        found.update({(t, i, v): bytes(d) for t, i, v, d in rows})
    return found


def lines_of(
    conn: Connection, keys: Sequence[tuple[str, str, int]]
) -> dict[tuple[str, str, int], tuple[str, str]]:
    """The line (tier, owner) of resource versions by (type, id, version): who may read them."""
    found: dict[tuple[str, str, int], tuple[str, str]] = {}
    wanted = list(dict.fromkeys(keys))
    for start in range(0, len(wanted), 200):
        chunk = wanted[start : start + 200]
        rows = conn.execute(
            select(R.c.type, R.c.id, R.c.version, R.c.tier, R.c.owner_id).where(
                or_(*(and_(R.c.type == t, R.c.id == i, R.c.version == v) for t, i, v in chunk))
            )
        )
        found.update({(t, i, v): (tier, owner) for t, i, v, tier, owner in rows})
    return found


def lines(conn: Connection) -> list[tuple[str, str]]:
    """The lines (tier, owner) that serve a release now: each has a release topic."""
    rows = conn.execute(
        select(REL.c.tier, REL.c.owner_id)
        .where(REL.c.status == "active")
        .distinct()
        .order_by(REL.c.tier, REL.c.owner_id)
    )
    return [(t, o) for t, o in rows]


# -- delivery bookkeeping ------------------------------------------------------------------------


def sent(conn: Connection, sub_id: str, through: int | None = None) -> None:
    """A notification went through (the handshake, a heartbeat, events up to `through`): active,
    no error, no back-off."""
    values: dict[str, Any] = {
        "status": ACTIVE,
        "attempts": 0,
        "next_attempt": None,
        "error": None,
        "last_sent": now(),
        "updated_at": now(),
    }
    conn.execute(update(SUB).where(SUB.c.id == sub_id, SUB.c.status != OFF).values(**values))
    if through is not None:  # never backwards
        conn.execute(
            update(SUB).where(SUB.c.id == sub_id, SUB.c.delivered < through).values(delivered=through)
        )


def failed(
    conn: Connection, sub_id: str, error: str, retry_in: float, error_after: int, give_up: float | None = None
) -> None:
    """A send failed: one more attempt counted, the next no sooner than `retry_in` seconds, and
    status error once `error_after` sends in a row failed. With `give_up`, a subscription that
    has had no send go through for that many seconds (since the last that did, or since it was
    made) is off, its error saying so: R5's off, "no longer active", and nothing more is tried."""
    row = conn.execute(
        select(SUB.c.attempts, SUB.c.status, SUB.c.last_sent, SUB.c.created_at).where(SUB.c.id == sub_id)
    ).first()
    if row is None or row.status == OFF:
        return
    attempts = row.attempts + 1
    at = now()
    status = ERROR if attempts >= error_after else row.status
    since = _aware(row.last_sent) or _aware(row.created_at)
    assert since is not None
    if give_up is not None and status == ERROR and at - since >= timedelta(seconds=give_up):
        status = OFF
        error = (
            f"no notification went through since {since.isoformat(timespec='seconds')} "
            f"({attempts} tries in a row failed; the server gives up after {give_up:g} s): the "
            f"subscription is off and nothing more is sent; delete it and subscribe again. The last "
            f"failure: {error}"
        )
    conn.execute(
        update(SUB)
        .where(SUB.c.id == sub_id)
        .values(
            attempts=attempts,
            next_attempt=None if status == OFF else at + timedelta(seconds=retry_in),
            error=error[:1000],
            status=status,
            updated_at=at,
        )
    )


def withheld(conn: Connection, sub_id: str, through: int) -> None:
    """Events up to `through` were read and not sent: the subscriber may not read them now
    (nothing else changes: no send went through)."""
    conn.execute(update(SUB).where(SUB.c.id == sub_id, SUB.c.delivered < through).values(delivered=through))


def lost(conn: Connection, sub_id: str, through: int) -> None:
    """Events up to `through` were dropped before they were sent (the kept events are bounded)."""
    conn.execute(
        update(SUB)
        .where(SUB.c.id == sub_id, SUB.c.delivered < through)
        .values(delivered=through, lost_through=through)
    )


def end_expired(conn: Connection) -> int:
    """Subscriptions whose `end` has passed are off; how many."""
    done = conn.execute(
        update(SUB).where(SUB.c.status != OFF, SUB.c.end.is_not(None), SUB.c.end <= now()).values(status=OFF)
    )
    return int(done.rowcount or 0)


# -- websocket bindings --------------------------------------------------------------------------


def _hashed(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bind_token(
    conn: Connection,
    sub_ids: Sequence[str],
    seconds: float,
    sector: bool = False,
    supplementary: frozenset[str] = frozenset(),
) -> tuple[str, datetime]:
    """A new token binding a websocket to the subscriptions `sub_ids` for `seconds`, once, and when
    it expires (expired tokens are removed here); `sector` and `supplementary` are what the token
    that asked for it may read. The caller commits."""
    at = now()
    conn.execute(delete(WS).where(WS.c.expires_at < at))
    token = secrets.token_urlsafe(32)
    expires = at + timedelta(seconds=seconds)
    digest = _hashed(token)
    owners = ",".join(sorted(supplementary))
    conn.execute(
        insert(WS),
        [
            {
                "token_hash": digest,
                "subscription_id": s,
                "expires_at": expires,
                "sector": sector,
                "supplementary": owners,
            }
            for s in dict.fromkeys(sub_ids)
        ],
    )
    return token, expires


class NotBound(Exception):
    """A binding token binds nothing; str(e) says why, in one sentence for the client."""


@dataclass(frozen=True, slots=True)
class Binding:
    """What a binding token bound: the subscriptions still on, and what the token that asked for
    it may read."""

    subscriptions: list[Subscription]
    sector: bool
    supplementary: frozenset[str]


def bound(conn: Connection, token: str) -> Binding:
    """Use up `token`: the subscriptions it binds to, those not off. NotBound when the token is
    unknown, was used already (by another socket, maybe on another process: its rows are deleted
    here, and only one deletion finds them), has expired, or binds none that is still on. The
    caller commits."""
    digest = _hashed(token)
    rows = conn.execute(
        select(WS.c.subscription_id, WS.c.expires_at, WS.c.sector, WS.c.supplementary)
        .where(WS.c.token_hash == digest)
        .order_by(WS.c.subscription_id)
    ).all()
    if not rows:
        raise NotBound("the binding token is not known here: get one by $get-ws-binding-token")
    used = conn.execute(delete(WS).where(WS.c.token_hash == digest)).rowcount
    if not used:  # another socket bound it meanwhile
        raise NotBound("the binding token was used already: get a new one by $get-ws-binding-token")
    expires = _aware(rows[0].expires_at)
    if expires is None or expires < now():
        raise NotBound("the binding token has expired: get a new one by $get-ws-binding-token")
    subs = [get(conn, r.subscription_id) for r in rows]
    live = [s for s in subs if s is not None and s.status != OFF]
    if not live:
        raise NotBound("the binding token's subscriptions were deleted or have ended")
    owners = frozenset(o for o in str(rows[0].supplementary or "").split(",") if o)
    return Binding(live, bool(rows[0].sector), owners)


# -- the lease -----------------------------------------------------------------------------------


def take_lease(
    engine: Engine, holder: str, seconds: float, name: str = NOTIFIER, *, at: datetime | None = None
) -> bool:
    """Take or renew the lease `name` for `seconds` from `at` (now): True when `holder` has it now.
    Compare-and-set: it is renewed by its holder, or taken over once it ran out; the first to insert
    the row holds it when there is none."""
    at = now() if at is None else at
    until = at + timedelta(seconds=seconds)
    with engine.begin() as conn:
        taken = conn.execute(
            update(LEASE)
            .where(LEASE.c.name == name, or_(LEASE.c.holder == holder, LEASE.c.expires_at < at))
            .values(holder=holder, expires_at=until)
        )
        if taken.rowcount == 1:
            return True
        if conn.execute(select(LEASE.c.name).where(LEASE.c.name == name)).first() is not None:
            return False
    try:
        with engine.begin() as conn:
            conn.execute(insert(LEASE).values(name=name, holder=holder, expires_at=until))
    except IntegrityError:  # another process made the row first: it holds the lease
        return False
    return True


def drop_lease(conn: Connection, holder: str, name: str = NOTIFIER) -> None:
    """Give the lease up (the process stops), so another takes it at once."""
    conn.execute(
        update(LEASE)
        .where(and_(LEASE.c.name == name, LEASE.c.holder == holder))
        .values(expires_at=datetime(1970, 1, 1, tzinfo=UTC))
    )


def lease_holder(conn: Connection, name: str = NOTIFIER) -> str | None:
    """Who holds the lease now (None: nobody, or it ran out)."""
    row = conn.execute(select(LEASE.c.holder, LEASE.c.expires_at).where(LEASE.c.name == name)).first()
    if row is None:
        return None
    expires = _aware(row.expires_at)
    return row.holder if expires is not None and expires > now() else None
