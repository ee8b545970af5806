"""Who may read what: national data is open to all, sector data to the entitled, supplementary
data per owner; in Python (`may_read`) and as SQL (`readable`), one rule for both."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, and_, or_, select

from grunndata.store.models import REL, R

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
    """SQL: the resource versions `entitled` may read (for what is not read through a snapshot): of
    its lines, and made by a release that was served (a staged one's versions are no client's)."""
    return and_(_of_lines(entitled, R.c.tier, R.c.owner_id), R.c.release_id.not_in(unserved_releases()))


def unserved_releases() -> Select[tuple[int]]:
    """SQL: the releases never served (staged ones; a building one's rows are not committed): what
    they wrote is read through no snapshot, and nothing read across releases may show it."""
    return select(REL.c.id).where(REL.c.activated_at.is_(None))


def readable_release(entitled: Entitled) -> ColumnElement[bool]:
    """SQL: the releases whose data `entitled` may read (as `readable`, on the release's line)."""
    return _of_lines(entitled, REL.c.tier, REL.c.owner_id)


def _of_lines(entitled: Entitled, tier: Any, owner: Any) -> ColumnElement[bool]:
    """`may_read` in SQL, on a table's tier and owner columns."""
    terms = [tier == NATIONAL]
    if entitled.sector:
        terms.append(tier == SECTOR)
    if ALL_OWNERS in entitled.supplementary:
        terms.append(tier == SUPPLEMENTARY)
    elif entitled.supplementary:
        terms.append(and_(tier == SUPPLEMENTARY, owner.in_(sorted(entitled.supplementary))))
    return or_(*terms)
