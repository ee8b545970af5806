"""The service catalogue over HTTP: `/catalog` (a page), `/catalog.json`, and FHIR Endpoint and
Organization resources at `/fhir/Endpoint` and `/fhir/Organization`.

`/fhir/Organization` is shared: the store serves the Organizations data owners import (a
marketing authorisation holder), the catalogue its services' owners. The FHIR routes
(server/fhir.py) answer both, asking `CatalogueView.organizations` for the catalogue's; the
catalogue's ids (owner ids) are reserved, so an import cannot take one.

The catalogue is remade from the store (our own services follow the releases served) and the
catalogue files (GRUNNDATA_CATALOG), and kept until either changes; availability is read fresh
for every answer, since `grunndata catalog probe` may have run since. The catalogue is public:
it says which services exist and how to reach them, never what data they hold, so every client
sees all of it (a bad token is still a 401, as everywhere).
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from grunndata.catalog.fhir import catalogue_json, endpoint_resource, organization_resources
from grunndata.catalog.files import CatalogueError
from grunndata.catalog.model import TIERS, Availability, Service
from grunndata.catalog.ours import all_services, search
from grunndata.catalog.page import render_error, render_page
from grunndata.catalog.probe import availability as measured
from grunndata.server.access import access_of
from grunndata.server.auth import Access
from grunndata.server.params import DEFAULT_COUNT, ID_PATTERN, MAX_COUNT, bad, split_values, whole_number
from grunndata.server.responses import FhirError, bundle, entry, negotiate, send
from grunndata.server.state import Served

_KEEP = 8  # catalogues kept (one per base URL the server is reached at)
_PAGING = ("_count", "_offset")
_PASSED_ON = ("_format", "_pretty")

Resource = dict[str, Any]
Match = Callable[[Resource, str], bool]  # does this resource match this one value?


# -- search parameters: name -> how one value matches a resource (OR over commas, AND over names)


def _folded(text: str) -> str:
    """FHIR string matching: case- and accent-insensitive."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _string(path: Callable[[Resource], str]) -> dict[str, Match]:
    """A string parameter: starts-with, and the :contains and :exact modifiers."""
    return {
        "": lambda r, v: _folded(path(r)).startswith(_folded(v)),
        ":contains": lambda r, v: _folded(v) in _folded(path(r)),
        ":exact": lambda r, v: path(r) == v,
    }


def _owner(resource: Resource, value: str) -> bool:
    """`owner=vendor-a` or the reference form `organization=Organization/vendor-a`."""
    reference = str(resource.get("managingOrganization", {}).get("reference", ""))
    return reference == value or reference == f"Organization/{value}"


def _params(table: Mapping[str, Mapping[str, Match]]) -> dict[str, Match]:
    return {name + modifier: match for name, kinds in table.items() for modifier, match in kinds.items()}


def _tagged(resource: Resource, tier: str) -> bool:
    """Tier as every grunndata resource carries it, in meta.tag."""
    return any(tag.get("code") == tier for tag in resource.get("meta", {}).get("tag", []))


def _carries(resource: Resource, rtype: str) -> bool:
    """One of the Endpoint's payload types is `rtype`."""
    return any(t.get("text") == rtype for p in resource.get("payload", []) for t in p.get("type", []))


def _name(resource: Resource) -> str:
    return str(resource.get("name", ""))


# Both searched on the resources as served, so a search finds exactly what a read shows.
ENDPOINT_PARAMS = _params(
    {
        "_id": {"": lambda r, v: r["id"] == v},
        "name": _string(_name),
        "tier": {"": _tagged},
        "owner": {"": _owner},
        "organization": {"": _owner},
        "resource-type": {"": _carries},
        "status": {"": lambda r, v: r.get("status") == v},  # declared status and the last probe, as served
    }
)
SHARED_TYPES = ("Organization",)
"""Types both the store and the catalogue serve: the FHIR routes answer them (never from the
fast path's caches, since the catalogue's part is live)."""


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


def catalog_router(view: CatalogueView) -> APIRouter:
    """The catalogue's routes; register before the FHIR router (its /fhir/{type} would answer 404)."""
    served = view.served
    router = APIRouter(tags=["Service catalogue"])

    def chosen_tier(request: Request) -> str | None:
        tier = request.query_params.get("tier") or None
        if tier is not None and tier not in TIERS:
            raise FhirError(400, "invalid", f"unknown tier {tier!r}; the tiers are {', '.join(TIERS)}")
        return tier

    @router.get("/catalog", summary="The service catalogue as a page (filter: tier, owner)")
    def page(request: Request) -> Response:
        access_of(request, served.auth)
        base = request.scope.get("root_path", "")
        try:
            tier = chosen_tier(request)
        except FhirError as e:
            return HTMLResponse(render_error(e.message, base=base), status_code=400)
        services, found = view.current(request)
        owner = request.query_params.get("owner") or None
        return HTMLResponse(render_page(services, found, tier=tier, owner=owner, base=base))

    @router.get("/catalog.json", summary="The service catalogue as JSON (filter: tier, owner)")
    def as_json(request: Request) -> Response:
        access_of(request, served.auth)
        tier = chosen_tier(request)
        services, found = view.current(request)
        shown = search(services, tier=tier, owner=request.query_params.get("owner") or None)
        return Response(orjson.dumps(catalogue_json(shown, found)), media_type="application/json")

    @router.get("/fhir/Endpoint", summary="Search the catalogue's services as FHIR Endpoints")
    def search_endpoints(request: Request) -> Response:
        access_of(request, served.auth)
        fmt = negotiate(request)
        return _searchset(request, fmt, "Endpoint", view.endpoints(request), ENDPOINT_PARAMS)

    @router.get("/fhir/Endpoint/{rid}", summary="One service of the catalogue as a FHIR Endpoint")
    def read_endpoint(request: Request, rid: str) -> Response:
        access_of(request, served.auth)
        fmt = negotiate(request)
        return _read(request, fmt, "Endpoint", rid, view.endpoints(request))

    return router


def _fhir_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _read(request: Request, fmt: str, rtype: str, rid: str, resources: list[Resource]) -> Response:
    if not ID_PATTERN.fullmatch(rid):
        raise bad(f"{rid!r} is not a valid resource id")
    for resource in resources:
        if resource["id"] == rid:
            return send(request, fmt, orjson.dumps(resource))
    raise FhirError(404, "not-found", f"{rtype}/{rid} is not known")


def _searchset(
    request: Request, fmt: str, rtype: str, resources: list[Resource], params: Mapping[str, Match]
) -> Response:
    """Filter by `params` (unknown ones ignored with a warning, or 400 under handling=strict), page."""
    strict = "handling=strict" in request.headers.get("prefer", "").replace(" ", "")
    used: list[tuple[str, str]] = []
    ignored: list[str] = []
    for name, value in request.query_params.multi_items():
        if name in _PAGING or name in _PASSED_ON:
            continue
        match = params.get(name)
        if match is None:
            if strict:
                raise bad(f"unknown search parameter {name!r} for {rtype}")
            ignored.append(name)
            continue
        values = split_values(value)
        if any(v == "" for v in values):
            raise bad(f"{name}: empty value")
        resources = [r for r in resources if any(match(r, v) for v in values)]
        used.append((name, value))
    query = request.query_params
    count = whole_number("_count", query.get("_count", str(DEFAULT_COUNT)), 0, MAX_COUNT)
    offset = whole_number("_offset", query.get("_offset", "0"), 0, 10_000_000)
    page = resources[offset : offset + count]
    base = _fhir_base(request)
    kept = [(k, v) for k, v in query.multi_items() if k in _PASSED_ON]

    def at(n: int) -> str:
        return f"{base}/{rtype}?" + urlencode([*used, *kept, ("_count", str(count)), ("_offset", str(n))])

    links = [("self", at(offset)), ("first", at(0))]
    if count and offset + count < len(resources):
        links.append(("next", at(offset + count)))
    if offset > 0:
        links.append(("previous", at(max(0, offset - count))))
    entries = [
        entry(f"{base}/{rtype}/{r['id']}", orjson.dumps(r), {"search": {"mode": "match"}}) for r in page
    ]
    if ignored:
        note = {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "warning",
                    "code": "not-supported",
                    "diagnostics": f"ignored search parameter {name!r} (unknown for {rtype})",
                }
                for name in ignored
            ],
        }
        entries.append(
            entry("urn:grunndata:search-outcome", orjson.dumps(note), {"search": {"mode": "outcome"}})
        )
    return send(request, fmt, bundle("searchset", entries, links, len(resources)))
