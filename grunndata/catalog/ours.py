"""Grunndata's own services, registered from what the store serves now, and the whole catalogue.

Nobody writes our own entries by hand: the FHIR API lists the resource types its active
releases serve, each sector and supplementary line becomes a feed of its owner, and the latest
release is the one being served. Catalogue files add the services of others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from grunndata.catalog.files import CatalogueError, check_unique, load_catalogue
from grunndata.catalog.model import Service
from grunndata.fhir import SERVED_TYPES
from grunndata.store import OWNER_SOURCE, active_releases, all_of_type, current_snapshot, instant
from grunndata.store.models import OWN

NATIONAL_OWNER, NATIONAL_OWNER_NAME = (
    "dmp",
    "Direktoratet for medisinske produkter (DMP)",
)  # as imports register it

NATIONAL_LICENCE = "NLOD 2.0"  # Norwegian Licence for Open Government Data
NATIONAL_CADENCE = "every 14 days (FEST), twice a month (SAFEST)"
FHIR_OPERATIONS = ("read", "vread", "search-type", "history")


def feed_id(tier: str, owner: str) -> str:
    """An owner's feed: `<tier>-<owner>`, within FHIR's 64 characters (a long one ends in a hash of
    the owner, so two long owner ids that share a beginning never share a feed id)."""
    plain = f"{tier}-{owner}"
    if len(plain) <= 64:
        return plain
    return f"{plain[:55].rstrip('-')}-{hashlib.sha256(owner.encode()).hexdigest()[:8]}"


def own_services(engine: Engine, base_url: str) -> list[Service]:
    """Our services as the store serves them now, at `base_url` (where the server is reached)."""
    base = base_url.rstrip("/")
    with engine.connect() as conn:
        releases = active_releases(conn)
        names = {row.id: row.name for row in conn.execute(select(OWN.c.id, OWN.c.name))}
        served = all_of_type(conn, current_snapshot(conn), "CodeSystem")
        urls = (v.resource().get("url") for v in served if v.tier == "national")
        code_systems = sorted({url for url in urls if isinstance(url, str)})
    national = [r for r in releases if r.tier == "national"]
    sector = sorted((r for r in releases if r.tier == "sector"), key=lambda r: r.owner_id)
    supplementary = sorted((r for r in releases if r.tier == "supplementary"), key=lambda r: r.owner_id)
    owner_name = names.get(NATIONAL_OWNER, NATIONAL_OWNER_NAME)
    newest = max(national, key=lambda r: r.id, default=None)

    def ours(service_id: str, name: str, description: str, **fields: Any) -> Service:
        """A service of ours: DMP's national data at the FHIR base unless `fields` say otherwise."""
        fields = {"owner": NATIONAL_OWNER, "owner_name": owner_name, "tier": "national"} | fields
        fields.setdefault("interface", "fhir-r5")
        fields.setdefault("base_url", f"{base}/fhir")
        if fields["tier"] == "national":
            fields = {"licence": NATIONAL_LICENCE, "cadence": NATIONAL_CADENCE} | fields
        return Service(id=service_id, name=name, description=description, **fields)

    services = [
        ours(
            "fhir",
            "Grunndata FHIR R5 API",
            "The national medicinal-product data (FEST and SAFEST/IDMP) as FHIR R5: read, history and "
            "the change feed, search with paging and includes, $everything for a product. Open to all.",
            resource_types=_types(national),
            operations=(*FHIR_OPERATIONS, "$everything"),
            latest_release=_latest(newest),
        )
    ]
    if sector:
        services.append(
            ours(
                "fhir-sector",
                "Grunndata FHIR R5 API, sector data",
                "Value-added data of the health sector's data owners, linked to the national ids, served "
                "beside the national data in the same FHIR R5 API to clients entitled to sector data.",
                tier="sector",
                resource_types=_types(sector),
                operations=FHIR_OPERATIONS,
                licence="as agreed with each sector data owner",
                cadence="as agreed with each sector data owner",
                latest_release=_latest(max(sector, key=lambda r: r.id)),
            )
        )
    for release in (*sector, *supplementary):
        name = names.get(release.owner_id, release.owner_id)
        services.append(
            ours(
                feed_id(release.tier, release.owner_id),
                f"{name}: {release.tier} data",
                f"{name}'s {release.tier} data, keyed on the national ids, served in the FHIR R5 API "
                f"(meta.source {OWNER_SOURCE}{release.owner_id}) to the clients entitled to it.",
                owner=release.owner_id,
                owner_name=name,
                tier=release.tier,
                resource_types=_types([release]),
                operations=FHIR_OPERATIONS,
                licence=f"as agreed with {name}",
                cadence=f"as agreed with {name}",
                latest_release=_latest(release),
            )
        )
    services += [
        ours(
            "m30",
            "FEST M30 export",
            "The national data written back as a FEST M30 delivery, valid against the XSD: the whole "
            "catalogue, or only what changed since a HentetDato (?since=).",
            interface="m30-file",
            base_url=f"{base}/fest/m30",
            latest_release=newest.hentet_dato if newest is not None else None,
        ),
        ours(
            "translate",
            "FEST and IDMP code translation",
            "ConceptMap/$translate between FEST ids and codes and their IDMP counterparts, with the maps "
            "themselves to read and search.",
            resource_types=("ConceptMap",),
            operations=("read", "search-type", "$translate"),
            latest_release=_latest(newest),
        ),
        ours(
            "code-systems",
            "National code systems",
            "The FEST code systems (Kodeverk) as CodeSystem resources, with CodeSystem/$lookup, "
            "$validate-code and ValueSet/$expand.",
            resource_types=("CodeSystem",),
            operations=("read", "search-type", "$lookup", "$validate-code", "$expand"),
            code_systems=tuple(code_systems),
            latest_release=_latest(newest),
        ),
        ours(
            "catalog",
            "Grunndata service catalogue",
            "Every grunndata service, ours and others', in all three tiers: FHIR Endpoint and Organization "
            "resources, /catalog.json, and a page for people at /catalog.",
            resource_types=("Endpoint", "Organization"),
            operations=("read", "search-type"),
            cadence="live: changes with every release and catalogue file",
        ),
    ]
    return services


def all_services(engine: Engine, base_url: str, files: Sequence[Path]) -> list[Service]:
    """Ours, then every file's services in order; CatalogueError naming every problem, loading nothing."""
    services = own_services(engine, base_url)
    problems: list[str] = []
    for path in files:
        try:
            services += load_catalogue(path)
        except CatalogueError as e:
            problems += e.problems
    if problems:
        raise CatalogueError(problems)
    check_unique(services)
    return services


def search(
    services: Iterable[Service],
    *,
    tier: str | None = None,
    owner: str | None = None,
    resource_type: str | None = None,
    status: str | None = None,
) -> list[Service]:
    """The services matching every criterion given (None: any), in catalogue order."""
    return [
        s
        for s in services
        if (tier is None or s.tier == tier)
        and (owner is None or s.owner == owner)
        and (resource_type is None or resource_type in s.resource_types)
        and (status is None or s.status == status)
    ]


def _types(releases: Iterable[Any]) -> tuple[str, ...]:
    """The FHIR resource types the releases serve, from their counts (every served type is tallied)."""
    served = {
        rtype
        for release in releases
        for rtype, tally in (release.counts or {}).items()
        if rtype in SERVED_TYPES and tally.get("new", 0) + tally.get("changed", 0) + tally.get("unchanged", 0)
    }
    return tuple(sorted(served))


def _latest(release: Any) -> str | None:
    if release is None:
        return None
    if release.hentet_dato:
        return f"release {release.id}, HentetDato {release.hentet_dato}"
    when = f", activated {instant(release.activated_at)}" if release.activated_at else ""
    return f"release {release.id}{when}"
