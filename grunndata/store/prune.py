"""Pruning: removing the releases nobody can be served from any more, and what only they held.

A release is a manifest; its versions are shared with the releases before and after it. Pruning
a release removes its manifest, its content-filter rows and expiry notices, and every version
that no release kept still serves, with the version's search-index rows and R4 body. Kept,
whatever is asked: the active release of every line, the releases a rollback may return to, a
release that stopped being served less than the grace ago (a paging link made on it may still be
followed), the releases a running bulk export reads, and those the subscription notifier has still
to count changes from. The newest version of every resource is kept too (versions are numbered on
from it, and a read of a long-expired resource still answers 410), with the removal that expired it.

A pruned release keeps its row (status `pruned`, its report as it was): the history knows from
it that changes before the oldest kept release are incomplete, and answers a `_since` before
then with a 410 (store/history.py `history_start`). All of it runs in one transaction under the
import lock: an import, reindex or other prune waits, and readers see the store before or after.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.engine import Connection, Engine

from grunndata.errors import StoreError
from grunndata.store.models import BT, EV, NL, PRUNED, R4, REL, SUB, B, C, M, N, R, S, T, X
from grunndata.store.read import SearchError, Snapshot
from grunndata.store.releases import under_import_lock
from grunndata.store.subscriptions import OFF

_CANDIDATES = ("superseded", "rolled-back")  # served once, not now: what a prune may remove
_UNFINISHED = ("accepted", "running")  # bulk export jobs still writing (store/bulk.py)
_BATCH = 500
Line = tuple[str, str]  # (tier, owner)


@dataclass
class PruneResult:
    """What a prune removed (or, dry, would remove): the releases, why each other one is kept,
    the rows per table, the bytes of resource bodies, the bulk export jobs."""

    dry_run: bool
    pruned: list[int] = field(default_factory=list)
    kept: dict[int, str] = field(default_factory=dict)  # release -> why it is kept
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows removed
    body_bytes: int = 0  # of the removed versions' R5 and R4 bodies
    exports: list[str] = field(default_factory=list)  # bulk export jobs removed (their files go too)


def _aware(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def ceased_at(releases: Sequence[Any], release: Any) -> datetime | None:
    """When `release` stopped being served: the first activation in its line after its own (a rollback
    an older version made moved a release's activation later, so this is never earlier than the
    truth; a rollback now is a release of its own). None: still served."""
    mine = _aware(release.activated_at)
    later = [
        at
        for r in releases
        if (r.tier, r.owner_id) == (release.tier, release.owner_id)
        and (at := _aware(r.activated_at)) is not None
        and mine is not None
        and at > mine
    ]
    return min(later) if later else None


def _snapshot_releases(token: str) -> tuple[int, ...]:
    try:
        return Snapshot.parse(token).releases
    except SearchError:
        return ()


def _kept(
    conn: Connection,
    releases: list[Any],
    *,
    keep: int | None,
    older_than: timedelta | None,
    keep_rollback: int,
    grace: timedelta,
    now: datetime,
) -> dict[int, str]:
    """Why each release that holds served data is kept (those missing are pruned)."""
    why: dict[int, str] = {}

    def hold(release_id: int, reason: str) -> None:
        why.setdefault(release_id, reason)

    lines: dict[Line, list[Any]] = {}
    for r in releases:
        if r.activated_at is not None and r.status != PRUNED:
            lines.setdefault((r.tier, r.owner_id), []).append(r)
    # the notifier counts a release's changes from the manifest of the one before; with no
    # subscription it counts none (its marks just move on), so then it holds nothing
    listening = conn.execute(select(SUB.c.id).where(SUB.c.status != OFF).limit(1)).first() is not None
    marks = {(n.tier, n.owner): n for n in conn.execute(select(NL))} if listening else {}
    for line, rows in lines.items():
        rows.sort(key=lambda r: r.id)
        active = next((r for r in rows if r.status == "active"), None)
        if active is not None:
            hold(active.id, "active")
        before = [r for r in rows if r.status in _CANDIDATES and (active is None or r.id < active.id)]
        for r in before[::-1][:keep_rollback]:
            hold(r.id, "a rollback may return to it")
        if keep is not None:
            for r in rows[::-1][:keep]:
                hold(r.id, f"among the {keep} newest of its line")
        mark = marks.get(line)
        if not listening:
            pass
        elif mark is None:
            if active is not None and active.based_on is not None:
                hold(active.based_on, "the notifier counts the active release's changes from it")
        else:
            hold(mark.release_id, "the notifier counts the next release's changes from it")
            mark_at = _aware(mark.activated_at)
            for r in rows:
                at = _aware(r.activated_at)
                if at is not None and mark_at is not None and at > mark_at:
                    hold(r.id, "the notifier has still to make its events")
        for r in rows:
            if r.status not in _CANDIDATES:
                hold(r.id, r.status)
                continue
            ceased = ceased_at(releases, r) or now
            if now - ceased < grace:
                hold(r.id, "superseded less than the grace ago: a paging link may still read it")
            elif older_than is not None and now - ceased < older_than:
                hold(r.id, "superseded less than --older-than ago")
    for (token,) in conn.execute(select(B.c.snapshot).where(B.c.status.in_(_UNFINISHED))):
        for release_id in _snapshot_releases(token):
            hold(release_id, "a running bulk export reads it")
    undelivered = (
        select(EV.c.release_id)
        .select_from(EV.join(SUB, SUB.c.id == EV.c.subscription_id))
        .where(EV.c.number > SUB.c.delivered, EV.c.number > SUB.c.lost_through)
        .distinct()
    )
    for (release_id,) in conn.execute(undelivered):
        hold(release_id, "a subscription event not yet delivered names it")
    return why


def _doomed(conn: Connection, pruned: list[int]) -> list[int]:
    """The versions that go with the pruned releases: made or served by one of them, and neither
    served by a release kept, nor the last served version a kept removal names, nor the newest
    version of their resource."""
    m2, newer = M.alias("m2"), R.alias("newer")
    ours = (
        R.c.release_id.in_(pruned)
        | select(M.c.resource_pk).where(M.c.resource_pk == R.c.pk, M.c.release_id.in_(pruned)).exists()
    )
    query = select(R.c.pk).where(
        ours,
        ~select(m2.c.resource_pk).where(m2.c.resource_pk == R.c.pk, m2.c.release_id.not_in(pruned)).exists(),
        select(newer.c.pk)  # a newer version of the same resource is stored: this is not the newest
        .where(newer.c.type == R.c.type, newer.c.id == R.c.id, newer.c.version > R.c.version)
        .exists(),
    )
    # the removals are few (a release's expiries) and not indexed by version: a set, not a subquery
    named = set(conn.execute(select(T.c.resource_pk).where(T.c.release_id.not_in(pruned))).scalars())
    return sorted(pk for (pk,) in conn.execute(query) if pk not in named)


def _count(conn: Connection, table: Any, where: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table).where(where)).scalar() or 0)


def prune(
    engine: Engine,
    *,
    keep: int | None = None,
    older_than: timedelta | None = None,
    keep_rollback: int = 3,
    grace: timedelta = timedelta(days=1),
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> PruneResult:
    """Prune the releases that `keep` (the newest N of each line) and `older_than` (superseded
    longer ago) let go and nothing else holds; with `dry_run`, only say what would go.

    One transaction under the import lock; `progress(done, total)` after each batch of versions
    and each manifest (rows: versions and manifest rows).
    The caller removes the files of `result.exports` (bulk export jobs of pruned releases).
    """
    if keep is None and older_than is None:
        raise StoreError("say what to keep: --keep N (the newest releases of each line) or --older-than")
    if keep is not None and keep < 1:
        raise StoreError("--keep must be at least 1: the active release of every line is always kept")
    now = now or datetime.now(UTC)
    result = PruneResult(dry_run)
    with under_import_lock(engine) as conn:
        releases = list(conn.execute(select(*(REL.c[n] for n in _RELEASE_COLUMNS)).order_by(REL.c.id)))
        why = _kept(
            conn,
            releases,
            keep=keep,
            older_than=older_than,
            keep_rollback=keep_rollback,
            grace=grace,
            now=now,
        )
        result.pruned = [r.id for r in releases if r.status in _CANDIDATES and r.id not in why]
        result.kept = {r.id: why[r.id] for r in releases if r.id in why and r.status != PRUNED}
        pruned = result.pruned
        if not pruned:
            return result
        doomed = _doomed(conn, pruned)
        rows = result.rows
        manifests: dict[int, int] = dict(
            conn.execute(
                select(M.c.release_id, func.count())
                .where(M.c.release_id.in_(pruned))
                .group_by(M.c.release_id)
            ).all()
        )
        rows[M.name] = sum(manifests.values())
        for table in (C, N):
            rows[table.name] = _count(conn, table, table.c.release_id.in_(pruned))
        total, whole = len(doomed), len(doomed) + rows[M.name]  # the bar counts versions and manifest rows
        for table in (S, X, R4, T):
            rows[table.name] = 0
        rows[R.name] = total
        for i in range(0, total, _BATCH):
            batch = doomed[i : i + _BATCH]
            result.body_bytes += int(
                conn.execute(
                    select(func.coalesce(func.sum(func.length(R.c.data)), 0)).where(R.c.pk.in_(batch))
                ).scalar()
                or 0
            )
            result.body_bytes += int(
                conn.execute(
                    select(func.coalesce(func.sum(func.length(R4.c.data)), 0)).where(
                        R4.c.resource_pk.in_(batch)
                    )
                ).scalar()
                or 0
            )
            for table in (S, X):
                rows[table.name] += _count(conn, table, table.c.resource_pk.in_(batch))
            rows[R4.name] += _count(conn, R4, R4.c.resource_pk.in_(batch))
            rows[T.name] += _count(conn, T, and_(T.c.release_id.in_(pruned), T.c.resource_pk.in_(batch)))
            if not dry_run:
                for table in (S, X):
                    conn.execute(delete(table).where(table.c.resource_pk.in_(batch)))
                conn.execute(delete(R4).where(R4.c.resource_pk.in_(batch)))
                conn.execute(delete(T).where(T.c.release_id.in_(pruned), T.c.resource_pk.in_(batch)))
            if progress is not None:
                progress(min(i + _BATCH, total), whole)
        finished = [
            (job_id, token)
            for job_id, token in conn.execute(
                select(B.c.id, B.c.snapshot).where(B.c.status.not_in(_UNFINISHED))
            )
        ]
        result.exports = sorted(j for j, token in finished if set(_snapshot_releases(token)) & set(pruned))
        rows[B.name] = len(result.exports)
        rows[BT.name] = _count(conn, BT, BT.c.job_id.in_(result.exports)) if result.exports else 0
        done = total
        for release_id in pruned:  # a manifest is a release's ~171,000 rows: one at a time
            if not dry_run:
                conn.execute(delete(M).where(M.c.release_id == release_id))
            done += manifests.get(release_id, 0)
            if progress is not None:
                progress(done, whole)
        if not dry_run:
            for table in (C, N):
                conn.execute(delete(table).where(table.c.release_id.in_(pruned)))
            for i in range(0, total, _BATCH):  # the versions last: the index rows named them
                conn.execute(delete(R).where(R.c.pk.in_(doomed[i : i + _BATCH])))
            if result.exports:
                conn.execute(delete(BT).where(BT.c.job_id.in_(result.exports)))
                conn.execute(delete(B).where(B.c.id.in_(result.exports)))
            conn.execute(update(REL).where(REL.c.id.in_(pruned)).values(status=PRUNED))
            conn.commit()
            _analyze(conn)
        return result


_RELEASE_COLUMNS = ("id", "tier", "owner_id", "status", "activated_at", "based_on")


def _analyze(conn: Connection) -> None:
    """The planner's statistics after a good part of the tables went (as after an import)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("ANALYZE")
    else:
        for table in (R, M, X, S, T, C, R4):
            conn.exec_driver_sql(f"ANALYZE {table.name}")
    conn.commit()


# the tables a prune shrinks, which PostgreSQL's VACUUM FULL rewrites
VACUUMED = tuple(t.name for t in (R, M, X, S, T, C, R4, N))


def vacuum(engine: Engine) -> None:
    """Give the freed space back to the file system: SQLite's VACUUM rewrites the file, PostgreSQL's
    VACUUM FULL rewrites the store's tables. Both hold the tables while they work (reads wait), so
    it is asked for (`--vacuum`), not done by every prune: without it the free space is reused by
    the next imports (SQLite's free pages, PostgreSQL's free space map after autovacuum)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("VACUUM")
        else:
            for name in VACUUMED:
                conn.exec_driver_sql(f"VACUUM (FULL, ANALYZE) {name}")
