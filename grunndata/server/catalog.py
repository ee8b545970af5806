"""The service catalogue over HTTP: `/catalog` (a page), `/catalog.json`, and FHIR Endpoint and
Organization resources at `/fhir/Endpoint` and `/fhir/Organization`.

Searches are the FHIR routes' (server/routes/fhir.py), as for every type: they ask `CatalogueView.listed`
for the catalogue's Endpoints and Organizations (store/searchparams.py names the catalogue as their
source). `/fhir/Organization` is shared: the store serves the Organizations data owners import (a
marketing authorisation holder), the catalogue its services' owners; the catalogue's ids (owner
ids) are reserved, so an import cannot take one.

The catalogue is remade from the store (our own services follow the releases served) and the
catalogue files (GRUNNDATA_CATALOG), and kept until either changes; availability is read fresh
for every answer, since `grunndata catalog probe` may have run since. The catalogue is public:
it says which services exist and how to reach them, never what data they hold, so every client
sees all of it (a bad token is still a 401, as everywhere).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from grunndata.catalog.fhir import endpoint_resource, organization_resources
from grunndata.catalog.files import CatalogueError
from grunndata.catalog.model import Availability, Service
from grunndata.catalog.ours import all_services
from grunndata.catalog.probe import availability as measured
from grunndata.server.access import access_of
from grunndata.server.auth import Access
from grunndata.server.fhir_io.responses import FhirError
from grunndata.server.state import Served

_KEEP = 8  # catalogues kept (one per base URL the server is reached at)

Resource = dict[str, Any]


# -- the catalogue, kept until the store's releases or a file change


class _Catalogue:
    """The services for one base URL, remade when a release is activated or a file changes."""

    def __init__(self, served: Served, files: Sequence[Path]) -> None:
        self.served, self.files = served, list(files)
        self._kept: dict[tuple[object, ...], list[Service]] = {}
        self._lock = threading.Lock()

    def services(self, base_url: str) -> list[Service]:
        key = (base_url, self.served.snapshot().token, *(_stamp(f) for f in self.files))
        with self._lock:
            found = self._kept.get(key)
        if found is not None:
            return found
        try:
            services = all_services(self.served.engine, base_url, self.files)
        except CatalogueError as e:
            raise FhirError(500, "exception", f"the service catalogue cannot be read: {e}") from None
        with self._lock:
            if len(self._kept) >= _KEEP:
                del self._kept[next(iter(self._kept))]
            self._kept[key] = services
        return services


def _public(service: Service, access: Access) -> Service:
    """What every client may know of a service: that a restricted feed exists, and how to reach it,
    but not when its owner last published, unless it may read that data; and a file's name, not
    where the server keeps it."""
    origin = service.origin if service.origin == "grunndata" else Path(service.origin).name
    latest = service.latest_release
    if (
        service.origin == "grunndata"
        and service.tier != "national"
        and not access.can_read(service.tier, service.owner)
    ):
        latest = None
    return replace(service, origin=origin, latest_release=latest)


def _stamp(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (str(path), -1, -1)  # gone: all_services says so, with the file's name
    return (str(path), stat.st_mtime_ns, stat.st_size)


# -- the routes


class CatalogueView:
    """The catalogue as one client may see it: its services, Endpoints and Organizations."""

    def __init__(self, served: Served, files: Sequence[Path], base_url: str | None = None) -> None:
        """Every file is read once here, so a broken catalogue file stops the server at start with
        its file and line, rather than on the first request. `base_url` is GRUNNDATA_BASE_URL."""
        self.served = served
        self.configured = base_url.rstrip("/") if base_url else None
        all_services(served.engine, self.configured or "http://127.0.0.1", files)  # ids against ours too
        self._catalogue = _Catalogue(served, files)

    def current(self, request: Request) -> tuple[list[Service], dict[str, Availability]]:
        access = access_of(request, self.served.auth)
        # our own addresses: GRUNNDATA_BASE_URL, not a Host header any client can set (else, for
        # a development server without the setting, the address the request came to)
        base = self.configured or str(request.base_url).rstrip("/")
        services = [_public(s, access) for s in self._catalogue.services(base)]
        return services, measured(self.served.engine, [s.id for s in services])

    def file_owners(self) -> set[str]:
        """The owners the catalogue files name (the rest are the store's owners)."""
        services = self._catalogue.services(self.configured or "http://127.0.0.1")
        return {s.owner for s in services if s.origin != "grunndata"}

    def endpoints(self, request: Request) -> list[Resource]:
        services, found = self.current(request)
        return [endpoint_resource(s, found.get(s.id)) for s in services]

    def organizations(self, request: Request) -> list[Resource]:
        return organization_resources(self.current(request)[0])

    async def listed(self, request: Request, rtype: str) -> list[Resource]:
        """The catalogue's resources of `rtype`, for the FHIR routes' searches and reads."""
        if rtype == "Endpoint":
            return await run_in_threadpool(self.endpoints, request)
        if rtype == "Organization":
            return await run_in_threadpool(self.organizations, request)
        return []
