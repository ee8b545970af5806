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

from sqlalchemy import case, func, insert, select
from sqlalchemy.engine import Engine

from grunndata.store.db import open_connection
from grunndata.store.models import ServiceProbe


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


P = ServiceProbe.__table__  # type: ignore[attr-defined]


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
        conn.commit()
    return len(rows)


def totals(engine: Engine, service_ids: Sequence[str] | None = None) -> dict[str, ProbeTotals]:
    """Per probed service (of `service_ids`, or all): checks, how many found it up, the last probe.

    A service that was never probed is absent: callers show it as unknown.
    """
    if service_ids is not None and not service_ids:
        return {}
    totals = select(
        P.c.service_id,
        func.count().label("checks"),
        func.sum(case((P.c.up, 1), else_=0)).label("up"),
    ).group_by(P.c.service_id)
    ranked = select(
        P.c.service_id,
        P.c.checked_at,
        P.c.up,
        P.c.latency_ms,
        P.c.message,
        func.row_number()
        .over(partition_by=P.c.service_id, order_by=(P.c.checked_at.desc(), P.c.id.desc()))
        .label("n"),
    )
    if service_ids is not None:
        wanted = sorted(set(service_ids))
        totals = totals.where(P.c.service_id.in_(wanted))
        ranked = ranked.where(P.c.service_id.in_(wanted))
    # one statement, so the counts and the last row come from the same snapshot
    last, total = ranked.subquery(), totals.subquery()
    query = (
        select(last, total.c.checks, total.c.up.label("ups"))
        .join(total, total.c.service_id == last.c.service_id)
        .where(last.c.n == 1)
        .order_by(last.c.service_id)
    )
    with open_connection(engine) as conn:
        return {row.service_id: _totals(row) for row in conn.execute(query)}


def _totals(row: Any) -> ProbeTotals:
    return ProbeTotals(
        service_id=row.service_id,
        checks=int(row.checks),
        up=int(row.ups or 0),
        last_checked=row.checked_at,  # aware, in UTC (SQLModel's UTCDateTime)
        last_up=bool(row.up),
        last_latency_ms=row.latency_ms,
        last_message=row.message,
    )
