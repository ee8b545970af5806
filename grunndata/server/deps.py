"""What a route receives besides the request, as annotated dependencies (FastAPI's `Depends`).

The app factory hangs the long-lived state on `app.state` (`served`, `settings`, `listers`,
`terminology`, `catalogue`, `m30`, `limits`); these fetch it from `request.app.state`. The checks a route makes of its path (a served
type, a valid id) are dependencies too, so a handler's parameters say, in order, what it checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request

from grunndata.fhir import SERVED_TYPES
from grunndata.server.access import access_of
from grunndata.server.auth import Access
from grunndata.server.catalog import CatalogueView
from grunndata.server.fhir_io.openapi import Gives
from grunndata.server.fhir_io.params import ID_PATTERN, Limits, bad
from grunndata.server.fhir_io.responses import FhirError, negotiate
from grunndata.server.m30 import M30Files
from grunndata.server.state import Served
from grunndata.server.terminology import Terminology
from grunndata.settings import Settings
from grunndata.store import SEARCHED_TYPES, STORE, Snapshot, sources_of

Resource = dict[str, Any]
Lister = Callable[[Request, str], Awaitable[list[Resource]]]
"""A source's resources of a type, as this client may see them (store/searchparams.py SOURCES)."""


async def get_served(request: Request) -> Served:
    served: Served = request.app.state.served
    return served


ServedDep = Annotated[Served, Depends(get_served)]


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def limits_of(request: Request) -> Limits:
    """The bounds of a request's parameters (GRUNNDATA_SEARCH_MAX_*), its query string and the body
    it declares measured against them before anything reads either (a longer body than declared
    is stopped while it is read: `form_items`)."""
    limits: Limits = request.app.state.limits
    declared = request.headers.get("content-length", "") if request.method == "POST" else ""
    body = 0
    if declared.isascii() and declared.isdigit():
        body = int(declared) if len(declared) <= 18 else 10**18  # no 5,000-digit int() either
    limits.check_size(len(request.scope["query_string"]) + body)
    return limits


async def get_limits(request: Request) -> Limits:
    return limits_of(request)


LimitsDep = Annotated[Limits, Depends(get_limits)]


async def get_terminology(request: Request) -> Terminology:
    terms: Terminology = request.app.state.terminology
    return terms


TerminologyDep = Annotated[Terminology, Depends(get_terminology)]


async def get_catalogue(request: Request) -> CatalogueView:
    view: CatalogueView = request.app.state.catalogue
    return view


CatalogueDep = Annotated[CatalogueView, Depends(get_catalogue)]


async def get_m30(request: Request) -> M30Files:
    files: M30Files = request.app.state.m30
    return files


M30Dep = Annotated[M30Files, Depends(get_m30)]


async def get_access(request: Request, served: ServedDep) -> Access:
    """What the client may read and import (server/access.py): a bad token is its 401 or 503."""
    return access_of(request, served.auth)


AccessDep = Annotated[Access, Depends(get_access)]


async def get_snapshot(served: ServedDep, access: AccessDep) -> Snapshot:
    """The releases served now that this client may read."""
    return served.snapshot(access)


SnapshotDep = Annotated[Snapshot, Depends(get_snapshot)]


async def get_format(request: Request) -> str:
    """The response format the client asked for (a 406 when none is ours)."""
    return negotiate(request)


FormatDep = Annotated[str, Depends(get_format)]


def _route_type(request: Request) -> str:
    """The type a FHIR route is about: the generic routes' `{rtype}`, or the type a documented
    route was made for (its path is /fhir/<type>/...)."""
    rtype = request.path_params.get("rtype")
    if rtype is None:
        rtype = request.scope["route"].path_format.split("/")[2]
    return str(rtype)


async def stored_type(request: Request) -> str:
    """A type read, vread and history serve; others are 404."""
    rtype = _route_type(request)
    if rtype not in SERVED_TYPES:
        raise FhirError(404, "not-supported", f"{rtype!r} is not a resource type served here")
    return rtype


async def searched_type(request: Request) -> str:
    """A type searched here (from the store, or only listed by other sources); others are 404."""
    rtype = _route_type(request)
    if rtype not in SEARCHED_TYPES:
        raise FhirError(404, "not-supported", f"{rtype!r} is not a resource type served here")
    return rtype


StoredTypeDep = Annotated[str, Depends(stored_type)]
SearchedTypeDep = Annotated[str, Depends(searched_type)]


async def resource_id(rid: str) -> str:
    if not ID_PATTERN.fullmatch(rid):
        raise bad(f"{rid!r} is not a valid resource id")
    return rid


IdDep = Annotated[str, Depends(resource_id)]


async def listed(request: Request, rtype: str) -> list[Resource]:
    """The resources of `rtype` its sources other than the store hold, in source order (the
    listers the app factory put on `app.state.listers`, by source name)."""
    listers: Mapping[str, Lister] = getattr(request.app.state, "listers", {})
    found: list[Resource] = []
    for source in sources_of(rtype):
        lister = None if source == STORE else listers.get(source)
        if lister is not None:
            found += await lister(request, rtype)
    return found


OPENAPI: dict[Callable[..., Any], Gives] = {
    get_access: Gives((401, 503), token=True),  # a token that does not verify; keys out of reach
    get_format: Gives((406,), fhir=True),
    stored_type: Gives((404,)),
    searched_type: Gives((404,)),
    resource_id: Gives((400,)),
    get_limits: Gives((400,)),  # parameters past a bound, or holding text no FHIR string can hold
}
"""What each dependency answers instead of the route, for the OpenAPI document (fhir_io/openapi.py)."""
