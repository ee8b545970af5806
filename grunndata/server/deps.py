"""What a route receives besides the request, as annotated dependencies (FastAPI's `Depends`).

The app factory hangs the long-lived state on `app.state` (`served`, `settings`, `listers`,
`terminology`, `catalogue`, `m30`, `limits`); these fetch it from `request.app.state`. The FHIR
interactions take one dependency each (`Asked`: the token, the route's type and id, the bounds
of the parameters and the format, checked in that order); FastAPI solves every sub-dependency
per request, so the hot routes do not list five.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from grunndata.fhir import SERVED_TYPES
from grunndata.server.access import access_of
from grunndata.server.auth import Access
from grunndata.server.catalog import CatalogueView
from grunndata.server.fhir_io.openapi import Gives
from grunndata.server.fhir_io.params import ID_PATTERN, Limits, bad
from grunndata.server.fhir_io.responses import FhirError, fhir_version, negotiate
from grunndata.server.m30 import M30Files
from grunndata.server.pages.guard import HOME, refused, repeated
from grunndata.server.state import Served
from grunndata.server.terminology import Terminology
from grunndata.settings import Settings
from grunndata.store import SEARCHED_TYPES, STORE, sources_of

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


def _wants_json(request: Request) -> bool:
    """A page route that also answers as JSON (/migration's report) was asked for JSON."""
    return (
        "application/json" in request.headers.get("accept", "")
        or request.query_params.get("_format") == "json"
    )


_BACKS = (("/leveranser", "Til leveransene"), ("/migration", "Til overgangen"), ("/catalog", "Til katalogen"))


def _back(request: Request) -> tuple[str, str]:
    path = request.url.path
    return next(((p, label) for p, label in _BACKS if path == p or path.startswith(p + "/")), HOME)


async def get_page_access(request: Request, served: ServedDep) -> Access:
    """As `get_access`, for a page for people: a token that does not verify is a page saying so
    (401, or 503 when the keys are out of reach), unless the route was asked for JSON."""
    try:
        return access_of(request, served.auth)
    except FhirError as e:
        if _wants_json(request):
            raise
        raise refused(e) from None


PageAccessDep = Annotated[Access, Depends(get_page_access)]


async def get_page(request: Request, access: PageAccessDep) -> Access:
    """A page for people's checks (pages/guard.py): the token, then each query parameter at most
    once (a 400 page naming a repeated one; the FHIR OperationOutcome when JSON was asked)."""
    problem = repeated(request.query_params.multi_items(), _back(request))
    if problem is not None:
        if _wants_json(request):
            raise FhirError(400, "invalid", f"a query parameter is given more than once: {problem.name}")
        raise problem
    return access


PageDep = Annotated[Access, Depends(get_page)]


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


def _typed(request: Request, types: frozenset[str]) -> str:
    """The route's type if it is one of `types`; others are 404 (saying so when the type is served
    here, only not this way: the types made on request from other tables keep no history)."""
    rtype = _route_type(request)
    if rtype not in types:
        if rtype in SEARCHED_TYPES:
            raise FhirError(
                404,
                "not-supported",
                f"{rtype} is served here but keeps no history: its resources are made on request "
                "from the current release; read and search them",
            )
        raise FhirError(404, "not-supported", f"{rtype!r} is not a resource type served here")
    return rtype


@dataclass(frozen=True, slots=True)
class Asked:
    """What a FHIR interaction is asked with, checked by one dependency: the state it is served
    from, who asks, the bounds its parameters met, the answer's format and, for a typed route,
    the type. One dependency rather than five: FastAPI solves each sub-dependency per request
    (~12 µs each), which made a first-time search ~10% slower (benchmarks/RESULTS.md, issue 17)."""

    served: Served
    access: Access
    limits: Limits
    fmt: str
    rtype: str = ""


def _asking(
    types: frozenset[str] | None, *, access_last: bool = False, r4: bool = False
) -> Callable[[Request], Awaitable[Asked]]:
    """A dependency that makes a route's checks in the order its answer is chosen: the token
    (401 or 503; for reads last, so an unknown type or id is a 404/400 first), the route's type
    (404 unless in `types`), its id (400), the parameters' bounds (400), the format (406), the
    Accept's fhirVersion (406 unless 5.0, or 4.0 where `r4`: reads, answered in R4)."""

    async def asked(request: Request) -> Asked:
        served: Served = request.app.state.served
        access = None if access_last else access_of(request, served.auth)
        rtype = "" if types is None else _typed(request, types)
        rid = request.path_params.get("rid")
        if rid is not None and not ID_PATTERN.fullmatch(rid):
            raise bad(f"{rid!r} is not a valid resource id")
        limits = limits_of(request)
        fmt = negotiate(request)
        if fhir_version(request) == "4.0" and not r4:
            raise FhirError(
                406,
                "not-supported",
                "fhirVersion=4.0 is answered on /fhir for reads and vreads of the SAFEST types; "
                "R4 searches and history are at /fhir-r4",
            )
        if access is None:
            access = access_of(request, served.auth)
        return Asked(served, access, limits, fmt, rtype)

    return asked


asked_plain = _asking(None)
"""metadata, system history, $everything: no type in the path."""
asked_search = _asking(frozenset(SEARCHED_TYPES))
"""search by GET and POST: a type searched here (from the store or only listed by other sources)."""
asked_history = _asking(frozenset(SERVED_TYPES))
"""type and instance history: a type the store serves."""
asked_read = _asking(frozenset(SERVED_TYPES), access_last=True, r4=True)
"""read and vread: a type the store serves."""

PlainAsked = Annotated[Asked, Depends(asked_plain)]
SearchAsked = Annotated[Asked, Depends(asked_search)]
HistoryAsked = Annotated[Asked, Depends(asked_history)]
ReadAsked = Annotated[Asked, Depends(asked_read)]


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
    # the pages: a bad token (a page, or the OperationOutcome where JSON was asked), a repeated parameter
    get_page_access: Gives((401, 503), token=True),
    get_page: Gives((400, 401, 503), token=True),
    get_limits: Gives((400,)),  # parameters past a bound, or holding text no FHIR string can hold
    # the FHIR interactions' one dependency: a bad token, the limits (and a bad id), the format
    asked_plain: Gives((400, 401, 406, 503), fhir=True, token=True),
    # ... and a type not served here
    asked_search: Gives((400, 401, 404, 406, 503), fhir=True, token=True),
    asked_history: Gives((400, 401, 404, 406, 503), fhir=True, token=True),
    asked_read: Gives((400, 401, 404, 406, 503), fhir=True, token=True),
}
"""What each dependency answers instead of the route, for the OpenAPI document (fhir_io/openapi.py)."""
