"""Who may read what: national data is open to all, sector data to the entitled, supplementary
data per owner; in Python (`may_read`) and as SQL (`readable`), one rule for both."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import ColumnElement, and_, or_

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
    """SQL: the resource versions `entitled` may read (for what is not read through a snapshot)."""
    terms = [R.c.tier == NATIONAL]
    if entitled.sector:
        terms.append(R.c.tier == SECTOR)
    if ALL_OWNERS in entitled.supplementary:
        terms.append(R.c.tier == SUPPLEMENTARY)
    elif entitled.supplementary:
        terms.append(and_(R.c.tier == SUPPLEMENTARY, R.c.owner_id.in_(sorted(entitled.supplementary))))
    return or_(*terms)


def readable_release(entitled: Entitled) -> ColumnElement[bool]:
    """SQL: the releases whose data `entitled` may read (as `readable`, on the release's line)."""
    terms = [REL.c.tier == NATIONAL]
    if entitled.sector:
        terms.append(REL.c.tier == SECTOR)
    if ALL_OWNERS in entitled.supplementary:
        terms.append(REL.c.tier == SUPPLEMENTARY)
    elif entitled.supplementary:
        terms.append(and_(REL.c.tier == SUPPLEMENTARY, REL.c.owner_id.in_(sorted(entitled.supplementary))))
    return or_(*terms)
