"""What an M30 export reads: the national releases, their FHIR resources grouped by the FEST entry
they stand for, and what FEST alone says about expired listings.

The store knows nothing of FEST's structure: the exporter names the search parameter that ties a
resource to the one it belongs to (a brand's Ingredients point at the brand with `for`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from grunndata.fhir import SERVED_TYPES
from grunndata.store.models import (
    PRUNED,
    REL,
    M,
    N,
    R,
    S,
    T,
    X,
)

NATIONAL = "national"
_CHUNK = 500


def active_national(conn: Connection, releases: Sequence[int] | None = None) -> list[Any]:
    """The active releases of the national tier (FEST and SAFEST), oldest first; with `releases`,
    those of them that are national (a snapshot being served, perhaps no longer the newest)."""
    chosen = REL.c.status == "active" if releases is None else REL.c.id.in_(list(releases) or [-1])
    return list(conn.execute(select(REL).where(chosen, REL.c.tier == NATIONAL).order_by(REL.c.id)))


def delivered_release(conn: Connection, source: str, hentet_dato: str) -> Any:
    """The newest national release of `source` that was served with exactly this HentetDato, or None.

    HentetDato is compared verbatim: DMP's incremental protocol hands back the value it sent.
    """
    return conn.execute(
        select(REL)
        .where(
            REL.c.source == source,
            REL.c.tier == NATIONAL,
            REL.c.hentet_dato == hentet_dato,
            REL.c.activated_at.is_not(None),
            REL.c.status != PRUNED,  # its manifest is gone
        )
        .order_by(REL.c.id.desc())
        .limit(1)
    ).first()


def delivered_hentet_datos(conn: Connection, source: str) -> list[str]:
    """The HentetDato of every national release of `source` that was served, newest first, once each."""
    rows = conn.execute(
        select(REL.c.hentet_dato, func.max(REL.c.id).label("newest"))
        .where(
            REL.c.source == source,
            REL.c.tier == NATIONAL,
            REL.c.hentet_dato.is_not(None),
            REL.c.activated_at.is_not(None),
            REL.c.status != PRUNED,  # its manifest is gone
        )
        .group_by(REL.c.hentet_dato)
        .order_by(func.max(REL.c.id).desc())
    )
    return [r.hentet_dato for r in rows]


def groups(conn: Connection, release_ids: Sequence[int], part_of: str) -> dict[str, list[int]]:
    """The FHIR resource versions the releases serve, grouped: group id -> version pks.

    A resource whose reference parameter `part_of` ("Type.code") has a value belongs to the group
    of the resource it points at; every other resource heads the group of its own id (resources
    of several types may share one id, as a brand's dose form and routes do). Only resources made
    from a FEST entry count (those with its listing's Oppf Id); `idmp_only` gives the others.
    """
    part = X.alias("part")
    rows = conn.execute(
        select(R.c.pk, R.c.id, part.c.value)
        .select_from(
            R.join(
                M, and_(M.c.resource_pk == R.c.pk, M.c.release_id.in_(list(release_ids) or [-1]))
            ).outerjoin(part, and_(part.c.resource_pk == R.c.pk, part.c.param == part_of))
        )
        .where(R.c.type.in_(SERVED_TYPES), R.c.source_id.is_not(None))
    )
    found: dict[str, list[int]] = {}
    for pk, rid, target in rows:
        found.setdefault(target.partition("/")[2] if target else rid, []).append(pk)
    return found


def idmp_only(
    conn: Connection, release_ids: Sequence[int], links: Sequence[str]
) -> list[tuple[int, str, str, datetime, str | None]]:
    """The resources the releases serve that no FEST entry made (SAFEST's alone): version pk, type,
    id, when the version was first served, and a value of one of the reference parameters `links`
    ("Type.code"), one row per value (None when it has none), so the exporter can group them."""
    link = X.alias("link")
    rows = conn.execute(
        select(R.c.pk, R.c.type, R.c.id, R.c.last_updated, link.c.value)
        .select_from(
            R.join(
                M, and_(M.c.resource_pk == R.c.pk, M.c.release_id.in_(list(release_ids) or [-1]))
            ).outerjoin(link, and_(link.c.resource_pk == R.c.pk, link.c.param.in_(list(links))))
        )
        .where(R.c.type.in_(SERVED_TYPES), R.c.source_id.is_(None))
    )
    return [(pk, rtype, rid, at, value) for pk, rtype, rid, at, value in rows]


def merged(conn: Connection, release_ids: Sequence[int]) -> set[int]:
    """Versions the releases serve that SAFEST data was merged into (the importer marks them)."""
    rows = conn.execute(
        select(S.c.resource_pk)
        .select_from(
            S.join(M, and_(M.c.resource_pk == S.c.resource_pk, M.c.release_id.in_(list(release_ids) or [-1])))
        )
        .where(S.c.param == "origin", S.c.value == "fest+safest")
    )
    return {pk for (pk,) in rows}


def raw_entry(conn: Connection, release_ids: Sequence[int], catalogue: str, oppf_id: str) -> bytes | None:
    """The FEST entry as delivered (the importer keeps it as type `FEST.<catalogue>`), by its listing."""
    row = conn.execute(
        select(R.c.data)
        .select_from(
            R.join(M, and_(M.c.resource_pk == R.c.pk, M.c.release_id.in_(list(release_ids) or [-1])))
        )
        .where(R.c.type == "FEST." + catalogue, R.c.source_id == oppf_id)
        .limit(1)
    ).first()
    return None if row is None else bytes(row[0])


def data(conn: Connection, pks: Iterable[int]) -> dict[int, bytes]:
    """The stored bytes of the versions `pks`."""
    wanted = list(pks)
    found: dict[int, bytes] = {}
    for i in range(0, len(wanted), _CHUNK):
        for pk, body in conn.execute(select(R.c.pk, R.c.data).where(R.c.pk.in_(wanted[i : i + _CHUNK]))):
            found[pk] = bytes(body)
    return found


def expiry_notices(conn: Connection, after: int, upto: int) -> dict[str, tuple[str, str | None]]:
    """Oppf Id -> (Tidspunkt, Status DN) of the expiry notices that releases after..upto came with."""
    rows = conn.execute(
        select(N.c.oppf_id, N.c.tidspunkt, N.c.status_dn)
        .select_from(N.join(REL, REL.c.id == N.c.release_id))
        .where(N.c.release_id > after, N.c.release_id <= upto, REL.c.activated_at.is_not(None))
        .order_by(N.c.release_id)
    )
    return {oppf_id: (tidspunkt, dn) for oppf_id, tidspunkt, dn in rows}


def stopped_serving(conn: Connection, pks: Iterable[int], after: int) -> dict[int, datetime]:
    """For versions `pks`: when the first release after `after` stopped serving them (activation time)."""
    wanted = list(pks)
    found: dict[int, datetime] = {}
    for i in range(0, len(wanted), _CHUNK):
        rows = conn.execute(
            select(T.c.resource_pk, REL.c.activated_at)
            .select_from(T.join(REL, REL.c.id == T.c.release_id))
            .where(
                T.c.resource_pk.in_(wanted[i : i + _CHUNK]),
                T.c.release_id > after,
                REL.c.activated_at.is_not(None),  # not a staged release's
            )
            .order_by(T.c.release_id.desc())
        )
        for pk, at in rows:
            found[pk] = at  # the earliest release wins: rows come newest first
    return found
