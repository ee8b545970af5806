"""FHIR Bulk Data `$export`: the jobs (one row each, the state every server process shares) and
the reads an export makes (the versions a snapshot serves, the resources it stopped serving).

A job is keyed on what makes two requests the same export (entitlement, snapshot, types,
`_since`): the key is unique, so when two processes are asked at once one insert wins and both
join it. Each kick-off gets a ticket of its own (its status URL names it), so a client's cancel
removes its ticket only; the job's row goes with its last ticket, and the child writing it sees
the row gone at its next word and stops. A ticket is joined and left with the job's row locked
(PostgreSQL: FOR UPDATE; SQLite: one writer at a time), so a kick-off never joins a job that
its last ticket's cancel is removing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from grunndata.store.access import Entitled, may_read, readable
from grunndata.store.models import BT, REL, B, M, R, T
from grunndata.store.read import (
    Snapshot,
    Version,
    current_snapshot,
    release_lines,
    utc,
    visible,
)

ACCEPTED, RUNNING, DONE, FAILED = "accepted", "running", "done", "failed"


@dataclass(frozen=True, slots=True)
class Entitlement:
    """What an export may hold and who may fetch it: the restricted data its client may read, and
    whether it came with a token (then its files need one too). Two requests share an export only
    when their entitlements are equal."""

    sector: bool = False
    supplementary: frozenset[str] = field(default_factory=frozenset)
    token: bool = False

    @property
    def key(self) -> str:
        return f"{'t' if self.token else 'a'}:{int(self.sector)}:{','.join(sorted(self.supplementary))}"

    @classmethod
    def of(cls, entitled: Entitled, token: bool) -> Entitlement:
        return cls(entitled.sector, frozenset(entitled.supplementary), token)

    @classmethod
    def parse(cls, key: str) -> Entitlement:
        token, sector, owners = key.split(":", 2)
        return cls(sector == "1", frozenset(o for o in owners.split(",") if o), token == "t")


@dataclass(frozen=True, slots=True)
class Job:
    """A job's row, as the status poll and the child read it."""

    id: str
    entitlement: Entitlement
    request: str
    snapshot: Snapshot
    types: tuple[str, ...]
    since: datetime | None
    status: str
    done: int
    total: int
    created_at: datetime
    updated_at: datetime
    transaction_time: datetime | None
    expires_at: datetime | None
    output: list[dict[str, Any]]
    deleted: list[dict[str, Any]]
    error: str | None


def _aware(t: datetime | None) -> datetime | None:
    """A stored time as aware UTC (SQLite gives it back without a zone)."""
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _now() -> datetime:
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _job(row: Any) -> Job:
    return Job(
        row.id,
        Entitlement.parse(row.entitlement),
        row.request,
        Snapshot.parse(row.snapshot),
        tuple(t for t in row.types.split(",") if t),
        _aware(row.since),
        row.status,
        row.done,
        row.total,
        _aware(row.created_at),  # type: ignore[arg-type]
        _aware(row.updated_at),  # type: ignore[arg-type]
        _aware(row.transaction_time),
        _aware(row.expires_at),
        list(row.output or []),
        list(row.deleted or []),
        row.error,
    )


class TooManyJobs(Exception):
    """As many exports are waiting or being written as the server takes at once, in all or for one
    entitlement; the message says which, in one sentence."""


@dataclass(frozen=True, slots=True)
class Caps:
    """How many exports may wait or be written at once: in all, and for one entitlement (so one
    client cannot take every turn)."""

    most: int = 1_000_000
    per_entitlement: int = 1_000_000


def job_key(
    entitlement: Entitlement, snapshot: Snapshot, types: Sequence[str], since: datetime | None
) -> str:
    """What makes two requests the same export."""
    asked = (
        f"{entitlement.key}|{snapshot.token}|{','.join(sorted(types))}|{since.isoformat() if since else ''}"
    )
    return hashlib.sha256(asked.encode()).hexdigest()


def _new_ticket(conn: Connection, job_id: str, request: str, now: datetime) -> str:
    ticket = secrets.token_hex(16)
    conn.execute(insert(BT).values(id=ticket, job_id=job_id, request=request, created_at=now))
    return ticket


def _check_caps(conn: Connection, entitlement: Entitlement, caps: Caps, counted: int = 0) -> None:
    """TooManyJobs when the unfinished jobs, less the `counted` new one already among them, are at a cap."""
    unfinished = B.c.status.in_((ACCEPTED, RUNNING))
    mine = (
        conn.execute(
            select(func.count()).select_from(B).where(unfinished, B.c.entitlement == entitlement.key)
        ).scalar()
        or 0
    ) - counted
    if mine >= caps.per_entitlement:
        raise TooManyJobs(
            f"{mine} exports asked with your entitlement (your scopes) are waiting or being written, "
            f"the most one entitlement may have at once; ask again when one is done, or cancel one"
        )
    everyone = (conn.execute(select(func.count()).select_from(B).where(unfinished)).scalar() or 0) - counted
    if everyone >= caps.most:
        raise TooManyJobs(
            f"the server writes at most {caps.most} exports at once, and as many are waiting or being "
            "written; ask again in a minute"
        )


class _Gone(Exception):
    """The job was removed (its last ticket cancelled) as this kick-off joined it."""


def _join(conn: Connection, key: str, request: str) -> tuple[Job, str] | None:
    """A new ticket to the job `key` names, unless there is none (a failed one is removed)."""
    row = conn.execute(select(B).where(B.c.key == key).with_for_update()).first()
    if row is not None and row.status == FAILED:
        conn.execute(delete(BT).where(BT.c.job_id == row.id))
        conn.execute(delete(B).where(B.c.id == row.id))
        return None
    if row is None:
        return None
    ticket = _new_ticket(conn, row.id, request, _now())
    # SQLite takes no row lock, but the insert made this connection the one writer: is the job
    # still there, or did its last ticket's cancel remove it since it was read?
    if conn.execute(select(B.c.id).where(B.c.id == row.id)).first() is None:
        raise _Gone  # the ticket is rolled back with the transaction
    return dataclasses.replace(_job(row), request=request), ticket


def _insert_within_caps(
    conn: Connection,
    key: str,
    entitlement: Entitlement,
    snapshot: Snapshot,
    types: Sequence[str],
    since: datetime | None,
    request: str,
    caps: Caps,
) -> str:
    """Insert the job `key` names, unless `caps` are reached (TooManyJobs; the caller's transaction
    is rolled back). The count and the insert are one step for concurrent kick-offs on any number
    of processes: on PostgreSQL an advisory lock is taken for the transaction before counting;
    SQLite serialises writes, so the row is inserted first (the transaction holds the write lock
    from then on) and counted with the others after."""
    now = _now()
    values: dict[str, Any] = {
        "id": secrets.token_hex(16),
        "key": key,
        "entitlement": entitlement.key,
        "request": request,
        "snapshot": snapshot.token,
        "types": ",".join(types),
        "since": None if since is None else utc(since),
        "status": ACCEPTED,
        "created_at": now,
        "updated_at": now,
        "output": [],
        "deleted": [],
    }
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended("grunndata-export-start", 0))))
        _check_caps(conn, entitlement, caps)
        conn.execute(insert(B).values(**values))
    else:
        conn.execute(insert(B).values(**values))
        _check_caps(conn, entitlement, caps, counted=1)
    return str(values["id"])


def start_job(
    engine: Engine,
    entitlement: Entitlement,
    snapshot: Snapshot,
    types: Sequence[str],
    since: datetime | None,
    request: str,
    caps: Caps = Caps(),
) -> tuple[Job, str, bool]:
    """A ticket of this kick-off's own to the job for this export: the one already asked for by
    the same entitlement, or a new one (then True: the caller starts its child); a failed one is
    replaced. TooManyJobs when a new one is needed and `caps` are reached."""
    key = job_key(entitlement, snapshot, types, since)
    for _ in range(5):  # a failed job removed, a job removed as it was joined, a race lost: again
        try:
            with engine.begin() as conn:
                joined = _join(conn, key, request)
                if joined is not None:
                    return (*joined, False)
                job_id = _insert_within_caps(conn, key, entitlement, snapshot, types, since, request, caps)
                ticket = _new_ticket(conn, job_id, request, _now())
                job = _job(conn.execute(select(B).where(B.c.id == job_id)).one())
            return job, ticket, True
        except _Gone:
            continue
        except IntegrityError:  # another process inserted the same export first: join it
            continue
    raise RuntimeError("could not record the export job")  # pragma: no cover - five lost races


def get_job(conn: Connection, job_id: str) -> Job | None:
    row = conn.execute(select(B).where(B.c.id == job_id)).first()
    return None if row is None else _job(row)


def ticket_job(conn: Connection, ticket: str) -> Job | None:
    """The job `ticket` shares, its `request` the ticket's own kick-off; None once the ticket was
    cancelled or its job removed."""
    row = conn.execute(
        select(B, BT.c.request.label("asked"))
        .select_from(BT.join(B, B.c.id == BT.c.job_id))
        .where(BT.c.id == ticket)
    ).first()
    return None if row is None else dataclasses.replace(_job(row), request=row.asked)


def cancel_ticket(conn: Connection, ticket: str) -> tuple[bool, str | None]:
    """Remove `ticket`: (False, None) when there was none; else True, and the id of its job when
    that was its last ticket, so the job's row went too (its child stops; the caller removes its
    files)."""
    with conn.begin():
        job_id = conn.execute(select(BT.c.job_id).where(BT.c.id == ticket)).scalar()
        if job_id is None:
            return False, None
        # the job's row locked first (PostgreSQL), as a kick-off that joins it locks it
        conn.execute(select(B.c.id).where(B.c.id == job_id).with_for_update())
        if not conn.execute(delete(BT).where(BT.c.id == ticket)).rowcount:
            return False, None  # another cancel of the same ticket came first
        left = conn.execute(select(func.count()).select_from(BT).where(BT.c.job_id == job_id)).scalar()
        if left:
            return True, None
        conn.execute(delete(B).where(B.c.id == job_id))
        return True, job_id


def report_progress(conn: Connection, job_id: str, done: int, total: int) -> bool:
    """The child's word that it works on; False when the job is gone (cancelled): it stops."""
    found = conn.execute(
        update(B)
        .where(B.c.id == job_id, B.c.status.in_((ACCEPTED, RUNNING)))
        .values(status=RUNNING, done=done, total=total, updated_at=_now())
    )
    conn.commit()
    return bool(found.rowcount)


def finish_job(
    conn: Connection,
    job_id: str,
    transaction_time: datetime,
    output: list[dict[str, Any]],
    deleted: list[dict[str, Any]],
    keep_seconds: float,
) -> bool:
    """The job done, its files kept `keep_seconds`; False when it was cancelled meanwhile."""
    now = _now()
    found = conn.execute(
        update(B)
        .where(B.c.id == job_id, B.c.status.in_((ACCEPTED, RUNNING)))
        .values(
            status=DONE,
            done=B.c.total,
            transaction_time=utc(transaction_time),
            output=output,
            deleted=deleted,
            updated_at=now,
            expires_at=now + timedelta(seconds=keep_seconds),
        )
    )
    conn.commit()
    return bool(found.rowcount)


def fail_job(conn: Connection, job_id: str, message: str, keep_seconds: float) -> None:
    """The job failed: its status says why until it expires (asking again starts it anew)."""
    now = _now()
    conn.execute(
        update(B)
        .where(B.c.id == job_id)
        .values(
            status=FAILED, error=message, updated_at=now, expires_at=now + timedelta(seconds=keep_seconds)
        )
    )
    conn.commit()


def expired_jobs(conn: Connection, silent_seconds: float) -> list[str]:
    """Remove the jobs whose files expired, and those whose child fell silent longer than
    `silent_seconds` (it died with its server); their ids, so their files go too."""
    now = _now()
    gone = or_(
        B.c.expires_at < now,
        and_(B.c.status.in_((ACCEPTED, RUNNING)), B.c.updated_at < now - timedelta(seconds=silent_seconds)),
    )
    ids = [r[0] for r in conn.execute(select(B.c.id).where(gone))]
    if ids:
        conn.execute(delete(BT).where(BT.c.job_id.in_(ids)))
        conn.execute(delete(B).where(B.c.id.in_(ids)))
        conn.commit()
    return ids


def job_ids(conn: Connection) -> set[str]:
    return {r[0] for r in conn.execute(select(B.c.id))}


# -- what an export reads ------------------------------------------------------------------


def transaction_time(conn: Connection, snapshot: Snapshot) -> datetime:
    """When the newest release of the snapshot was served: every version it serves was last
    updated then or before, and every later change after it (the next `_since`)."""
    found = conn.execute(
        select(func.max(REL.c.activated_at)).where(REL.c.id.in_(snapshot.releases or (-1,)))
    ).scalar()
    return _aware(found) or datetime(1970, 1, 1, tzinfo=UTC)


def _changed(rtype: str, since: datetime | None) -> Any:
    where = [R.c.type == rtype]
    if since is not None:
        where.append(R.c.last_updated > utc(since))
    return where


def count_served(
    conn: Connection, snapshot: Snapshot, rtypes: Sequence[str], since: datetime | None
) -> dict[str, int]:
    """Per type of `rtypes`, how many versions the snapshot serves (last updated after `since`):
    one query, one pass over the snapshot's manifests (a count per type cost a pass each)."""
    where = [R.c.type.in_(list(rtypes))]
    if since is not None:
        where.append(R.c.last_updated > utc(since))
    rows = conn.execute(
        select(R.c.type, func.count()).select_from(visible(snapshot)).where(*where).group_by(R.c.type)
    )
    found = {t: int(n) for t, n in rows}
    return {t: found.get(t, 0) for t in rtypes}


def _served(snapshot: Snapshot, rtype: str, since: datetime | None) -> Any:
    """The versions of `rtype` the snapshot serves, by id: what a body is made of."""
    return (
        select(R.c.version, R.c.last_updated, R.c.tier, R.c.owner_id, R.c.data)
        .select_from(visible(snapshot))
        .where(*_changed(rtype, since))
        .order_by(R.c.id, R.c.pk)
    )


def served_bodies(
    conn: Connection, snapshot: Snapshot, rtype: str, since: datetime | None
) -> Generator[bytes, None, None]:
    """The versions of `rtype` the snapshot serves (last updated after `since`), by id, each as a
    read sends it (`Version.body`), streamed.

    An export's cost is per row, so a row is made in as few steps as can be: the columns a body
    needs and no more, its `meta` made once per (version, lastUpdated, line) and spliced in as
    `Version.body` does. On PostgreSQL the rows come by `COPY ... TO STDOUT` in binary: the
    server sends them as fast as this process takes them, with no cursor round trip per 500 rows
    and no text escaping of the bytes, and its backend (which the child's low priority does not
    reach) works less for them."""
    statement = _served(snapshot, rtype, since)
    metas: dict[tuple[Any, ...], bytes] = {}
    for version, last_updated, tier, owner, data in _rows(conn, statement, whole=since is None):
        key = (version, last_updated, tier, owner)
        meta = metas.get(key)
        if meta is None:
            made = Version(0, rtype, "", version, last_updated, tier, owner, b"").meta()
            meta = metas[key] = b',"meta":' + orjson.dumps(made)
        start = data.find(b'"id":"')
        bare = memoryview(data)  # sliced without a copy: join copies each byte once
        if start < 0:
            yield b"".join((b"{", meta[1:], b",", bare[1:]))
        else:
            end = data.index(b'"', start + 6) + 1  # an id never holds a quote
            yield b"".join((bare[:end], meta, bare[end:]))


_COPY_TYPES = ("int4", "timestamptz", "text", "text", "bytea")  # the columns of `_served`, in order
# For the export's query only (SET LOCAL, reset after it): one backend, no parallel workers beside
# it; the type's rows read by index in id order, each probed in the manifests' key, not the
# planner's choice of a hash of every manifest row and a sort of the type's rows with their
# bytes, which cost the backend a sixth more CPU (0.92 against 0.78 s on the full-size store).
_PLAN = (
    "SELECT set_config('max_parallel_workers_per_gather', '0', true),"
    " set_config('enable_hashjoin', 'off', true), set_config('enable_sort', 'off', true)"
)
_ONE_BACKEND = "SELECT set_config('max_parallel_workers_per_gather', '0', true)"
_PLAN_DONE = "RESET max_parallel_workers_per_gather; RESET enable_hashjoin; RESET enable_sort"


def _rows(conn: Connection, statement: Any, whole: bool) -> Iterator[tuple[Any, ...]]:
    """The rows of `statement`, streamed: PostgreSQL by binary COPY, else a cursor. `whole`: every
    row of the type is read (no `_since`), so by index in id order; a `_since` export's few rows
    are left to the planner (found by last_updated, then sorted)."""
    if conn.dialect.name != "postgresql":
        rows = conn.execution_options(stream_results=True, yield_per=500).execute(statement)
        for row in rows:
            yield row[0], row[1], row[2], row[3], bytes(row[4])
        return
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    driver = conn.connection.driver_connection  # psycopg's, in this connection's transaction
    assert driver is not None
    with driver.cursor() as cursor:
        cursor.execute(_PLAN if whole else _ONE_BACKEND)
        with cursor.copy(f"COPY ({compiled}) TO STDOUT (FORMAT BINARY)", compiled.params) as copy:
            copy.set_types(list(_COPY_TYPES))
            yield from copy.rows()
        cursor.execute(_PLAN_DONE)  # (a cancel leaves mid-way: the caller's rollback undoes it too)


def removed_since(
    conn: Connection, snapshot: Snapshot, rtypes: Sequence[str], since: datetime, entitled: Entitled
) -> list[tuple[str, str]]:
    """(type, id) of the resources a release after `since` stopped serving and the snapshot does
    not serve again: the deletions `_history` lists for the same instant, once each."""
    now_r, now_m = R.alias("now_r"), M.alias("now_m")
    served_again = (
        select(now_r.c.pk)
        .select_from(now_r.join(now_m, now_m.c.resource_pk == now_r.c.pk))
        .where(
            now_r.c.type == T.c.type,
            now_r.c.id == T.c.id,
            now_m.c.release_id.in_(snapshot.releases or (-1,)),
        )
        .exists()
    )
    rows = conn.execute(
        select(T.c.type, T.c.id)
        .select_from(T.join(REL, REL.c.id == T.c.release_id).join(R, R.c.pk == T.c.resource_pk))
        .where(
            T.c.type.in_(list(rtypes)),
            T.c.release_id <= max(snapshot.releases, default=0),
            REL.c.activated_at > utc(since),
            readable(entitled),
            ~served_again,
        )
        .distinct()
        .order_by(T.c.type, T.c.id)
    )
    return [(t, i) for t, i in rows]


def entitled_snapshot(conn: Connection, entitled: Entitled) -> Snapshot:
    """The releases served now whose data `entitled` may read (what a server's `snapshot(access)`
    gives, for a command without a server)."""
    snapshot = current_snapshot(conn)
    lines = release_lines(conn, snapshot.releases)
    return Snapshot(tuple(r for r in snapshot.releases if may_read(entitled, *lines[r])))
