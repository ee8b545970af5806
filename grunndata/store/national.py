"""What the national tier serves, as the keys sector and supplementary data are checked against.

Sector and supplementary data must be keyed on national ids and use the national code systems
(DESIGN.md, the three tiers). This module reads, from the *active* national releases, the
resources served, the identifiers they carry (varenr, FEST ids: the values as the search index
holds them, "ID_" prefix included) and the codes of every served CodeSystem; and it tells which
other line serves an id, so that no id is ever served twice.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, not_, select
from sqlalchemy.engine import Connection

from grunndata.fhir import SERVED_TYPES
from grunndata.store.models import OWN, REL, M, R, X

NATIONAL = "national"
_CHUNK = 500  # ids per IN (...) list: well under every driver's parameter limit

Key = tuple[str, str]  # (resource type, resource id)


@dataclass(frozen=True, slots=True)
class NationalCodeSystem:
    """A code system the national tier serves: its codes (with their display) and its name."""

    url: str
    name: str
    codes: Mapping[str, str | None]  # code -> display


@dataclass(frozen=True, slots=True)
class Line:
    """One owner's data in one tier: the unit that has its own releases."""

    tier: str
    owner: str


@dataclass(frozen=True, slots=True)
class NationalKeys:
    """The national resources served now, their identifiers, and the national code systems."""

    served: frozenset[Key]
    identifiers: Mapping[tuple[str, str], Key]  # (system, value) -> the resource carrying it
    code_systems: Mapping[str, NationalCodeSystem]  # CodeSystem.url -> its codes

    @classmethod
    def load(cls, conn: Connection, *, identifier_systems: Collection[str] | None = None) -> NationalKeys:
        """Read the active national releases; `identifier_systems` limits which identifiers are kept."""
        identifiers: dict[tuple[str, str], Key] = {}
        for named, key in _identifiers(conn, identifier_systems):
            identifiers.setdefault(named, key)  # the first in (type, id) order when several share one
        return cls(frozenset(_served(conn)), identifiers, {cs.url: cs for cs in _code_systems(conn)})

    def exists(self, key: Key) -> bool:
        return key in self.served

    def identified(self, system: str, value: str) -> Key | None:
        """The national resource whose identifier is `value` in `system`, exactly as indexed."""
        return self.identifiers.get((system, value))


def _national_manifest() -> Any:
    """Resource joined to the manifests of the active national releases."""
    return R.join(M, M.c.resource_pk == R.c.pk).join(
        REL, and_(REL.c.id == M.c.release_id, REL.c.status == "active", REL.c.tier == NATIONAL)
    )


def _served(conn: Connection) -> Iterator[Key]:
    rows = conn.execute(
        select(R.c.type, R.c.id).select_from(_national_manifest()).where(R.c.type.in_(SERVED_TYPES))
    )
    for rtype, rid in rows:
        yield str(rtype), str(rid)


def _identifiers(conn: Connection, systems: Collection[str] | None) -> Iterator[tuple[tuple[str, str], Key]]:
    """Identifier values from the search index: what a client searching by identifier finds."""
    query = (
        select(X.c.system, X.c.value, R.c.type, R.c.id)
        .select_from(_national_manifest().join(X, X.c.resource_pk == R.c.pk))
        .where(X.c.param.like("%.identifier"), R.c.type.in_(SERVED_TYPES))
        .order_by(R.c.type, R.c.id)
    )
    if systems is not None:
        query = query.where(X.c.system.in_(sorted(systems)))
    for system, value, rtype, rid in conn.execute(query):
        yield (system, value), (rtype, rid)


def _code_systems(conn: Connection) -> Iterator[NationalCodeSystem]:
    rows = conn.execute(select(R.c.data).select_from(_national_manifest()).where(R.c.type == "CodeSystem"))
    for (data,) in rows:
        resource = orjson.loads(bytes(data))
        url = resource.get("url")
        if isinstance(url, str):
            codes = dict(_concepts(resource.get("concept")))
            yield NationalCodeSystem(url, str(resource.get("title") or resource.get("name") or url), codes)


def _concepts(concepts: Any) -> Iterator[tuple[str, str | None]]:
    """Every (code, display) of a CodeSystem's concept list, nested concepts included."""
    for concept in concepts if isinstance(concepts, list) else ():
        if isinstance(concept, dict) and isinstance(concept.get("code"), str):
            display = concept.get("display")
            yield concept["code"], display if isinstance(display, str) else None
            yield from _concepts(concept.get("concept"))


def served_elsewhere(conn: Connection, keys: Iterable[Key], line: Line) -> dict[Key, Line]:
    """Which other line (national or another owner's) serves each of `keys` in its active release.

    Keys no other line serves are left out. A line's own active release does not count: an
    import replaces it.
    """
    by_type: dict[str, set[str]] = {}
    for rtype, rid in keys:
        by_type.setdefault(rtype, set()).add(rid)
    other = not_(and_(REL.c.tier == line.tier, REL.c.owner_id == line.owner))
    visible = R.join(M, M.c.resource_pk == R.c.pk).join(
        REL, and_(REL.c.id == M.c.release_id, REL.c.status == "active", other)
    )
    found: dict[Key, Line] = {}
    for rtype, ids in sorted(by_type.items()):
        id_list = sorted(ids)
        for i in range(0, len(id_list), _CHUNK):
            rows = conn.execute(
                select(R.c.type, R.c.id, REL.c.tier, REL.c.owner_id)
                .select_from(visible)
                .where(R.c.type == rtype, R.c.id.in_(id_list[i : i + _CHUNK]))
            )
            for t, rid, tier, owner in rows:
                found[(t, rid)] = Line(tier, owner)
    return found


def registered_tier(conn: Connection, owner: str) -> str | None:
    """The tier an owner was registered in, or None for an owner the store does not know."""
    tier = conn.execute(select(OWN.c.tier).where(OWN.c.id == owner)).scalar()
    return None if tier is None else str(tier)


def reserved_organization_ids(conn: Connection, catalogue_owners: Iterable[str] = ()) -> set[str]:
    """The ids of the service catalogue's Organizations, which no imported Organization may take:
    every owner the store knows (each line is a feed of its owner in the catalogue, DMP's too) and
    the owners the catalogue files name (`catalogue_owners`)."""
    return {str(o) for o in conn.execute(select(OWN.c.id)).scalars()} | {"dmp", *catalogue_owners}


def reserved_organization_sentence(rid: str) -> str:
    return (
        f"the id {rid} is reserved: the service catalogue serves the owner {rid} as Organization/{rid} "
        "at the same /fhir/Organization; give this Organization another id"
    )
