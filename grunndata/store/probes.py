"""The availability history of catalogued services: every probe kept, counted on demand.

A row per probe (not a running tally) so that the share can later be counted over any window
and a wrong probe can be found and explained; the (service_id, checked_at) index keeps both the
count and the latest row one index range per service.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from grunndata.store.db import open_connection
from grunndata.store.models import A, P


class ProbeRow(Protocol):
    """One probe's outcome, as the catalogue's ProbeResult gives it (the store imports no catalogue)."""

    @property
    def service_id(self) -> str: ...
    @property
    def checked_at(self) -> datetime: ...
    @property
    def up(self) -> bool: ...
    @property
    def latency_ms(self) -> float | None: ...
    @property
    def status_code(self) -> int | None: ...
    @property
    def message(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ProbeTotals:
    """Per service: how many probes, how many found it up, and the last probe."""

    service_id: str
    checks: int
    up: int
    last_checked: datetime
    last_up: bool
    last_latency_ms: float | None
    last_message: str


def record(engine: Engine, results: Iterable[ProbeRow]) -> int:
    """Add one run's results to the history, all or none; the number of rows added."""
    rows = [
        {
            "service_id": r.service_id,
            "checked_at": r.checked_at,
            "up": r.up,
            "latency_ms": r.latency_ms,
            "status_code": r.status_code,
            "message": r.message,
        }
        for r in results
    ]
    if not rows:
        return 0
    with open_connection(engine) as conn:
        conn.execute(insert(P), rows)
        _tally(conn, rows)
        conn.commit()
    return len(rows)


def _tally(conn: Any, rows: list[dict[str, Any]]) -> None:
    """Add the rows to each service's running count; the newest probe becomes its last one."""
    ids = sorted({r["service_id"] for r in rows})
    known = {row.service_id: row for row in conn.execute(select(A).where(A.c.service_id.in_(ids)))}
    for row in sorted(rows, key=lambda r: r["checked_at"]):
        sid = row["service_id"]
        before = known.get(sid)
        values = {
            "checks": (before.checks if before else 0) + 1,
            "up": (before.up if before else 0) + int(row["up"]),
            "last_checked": row["checked_at"],
            "last_up": row["up"],
            "last_latency_ms": row["latency_ms"],
            "last_message": row["message"],
        }
        if before is None:
            conn.execute(insert(A).values(service_id=sid, **values))
        else:
            conn.execute(update(A).where(A.c.service_id == sid).values(**values))
        known[sid] = _Tally(sid, values["checks"], values["up"])


def totals(engine: Engine, service_ids: Sequence[str] | None = None) -> dict[str, ProbeTotals]:
    """Per probed service (of `service_ids`, or all): checks, how many found it up, the last probe.

    Read from the running counts (one row per service); a service never probed is absent: callers
    show it as unknown.
    """
    if service_ids is not None and not service_ids:
        return {}
    query = select(A).order_by(A.c.service_id)
    if service_ids is not None:
        query = query.where(A.c.service_id.in_(sorted(set(service_ids))))
    with open_connection(engine) as conn:
        return {row.service_id: _totals(row) for row in conn.execute(query)}


@dataclass(frozen=True, slots=True)
class _Tally:
    service_id: str
    checks: int
    up: int


def _totals(row: Any) -> ProbeTotals:
    return ProbeTotals(
        service_id=row.service_id,
        checks=int(row.checks),
        up=int(row.up),
        last_checked=row.last_checked,  # aware, in UTC (SQLModel's UTCDateTime)
        last_up=bool(row.last_up),
        last_latency_ms=row.last_latency_ms,
        last_message=row.last_message,
    )
