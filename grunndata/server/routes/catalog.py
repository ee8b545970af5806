"""The service catalogue's routes: `/catalog` (a page), `/catalog.json` and `/fhir/Endpoint/{rid}`.

Included before the FHIR routes: their /fhir/{type}/{id} would answer this read 404.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from grunndata.catalog.fhir import catalogue_json
from grunndata.catalog.model import TIERS
from grunndata.catalog.ours import search
from grunndata.catalog.page import render_error, render_page
from grunndata.server.deps import AccessDep, CatalogueDep, FormatDep, PageAccessDep, Resource
from grunndata.server.fhir_io.openapi import (
    NEGOTIATION,
    answers,
    errors,
    fhir_content,
    page_answers,
    resource_schema,
)
from grunndata.server.fhir_io.params import ID_PATTERN, bad
from grunndata.server.fhir_io.responses import FhirError, send

router = APIRouter(tags=["Service catalogue"])


_FILTERS = {
    "parameters": [
        # empty: every tier, as when it is left out
        {"name": "tier", "in": "query", "schema": {"type": "string", "enum": ["", *TIERS]}},
        {"name": "owner", "in": "query", "schema": {"type": "string"}},
    ]
}
_HTML = {"text/html": {"schema": {"type": "string"}}}


@router.get(
    "/catalog",
    summary="The service catalogue as a page (filter: tier, owner)",
    response_class=HTMLResponse,
    openapi_extra=_FILTERS
    | {
        "responses": {
            "400": {"description": "A page saying what is wrong (an unknown tier)", "content": _HTML},
            **page_answers(401, 503),
        }
    },
)
def page(request: Request, _: PageAccessDep, view: CatalogueDep) -> Response:
    base = request.scope.get("root_path", "")
    try:
        tier = _chosen_tier(request)
    except FhirError as e:
        return HTMLResponse(render_error(e.message, base=base), status_code=400)
    services, found = view.current(request)
    owner = request.query_params.get("owner") or None
    return HTMLResponse(render_page(services, found, tier=tier, owner=owner, base=base))


@router.get(
    "/catalog.json",
    summary="The service catalogue as JSON (filter: tier, owner)",
    openapi_extra=_FILTERS | {"responses": errors(400)},
)
def as_json(request: Request, _: AccessDep, view: CatalogueDep) -> Response:
    tier = _chosen_tier(request)
    services, found = view.current(request)
    shown = search(services, tier=tier, owner=request.query_params.get("owner") or None)
    return Response(orjson.dumps(catalogue_json(shown, found)), media_type="application/json")


@router.get(
    "/fhir/Endpoint/{rid}",
    summary="One service of the catalogue as a FHIR Endpoint",
    operation_id="Endpoint-read",
    openapi_extra={"parameters": NEGOTIATION, **answers(fhir_content(resource_schema("Endpoint")), 400, 404)},
)
def read_endpoint(request: Request, _: AccessDep, fmt: FormatDep, view: CatalogueDep, rid: str) -> Response:
    return _read(request, fmt, "Endpoint", rid, view.endpoints(request))


def _chosen_tier(request: Request) -> str | None:
    tier = request.query_params.get("tier") or None
    if tier is not None and tier not in TIERS:
        raise FhirError(400, "invalid", f"unknown tier {tier!r}; the tiers are {', '.join(TIERS)}")
    return tier


def _read(request: Request, fmt: str, rtype: str, rid: str, resources: list[Resource]) -> Response:
    if not ID_PATTERN.fullmatch(rid):
        raise bad(f"{rid!r} is not a valid resource id")
    for resource in resources:
        if resource["id"] == rid:
            return send(request, fmt, orjson.dumps(resource))
    raise FhirError(404, "not-found", f"{rtype}/{rid} is not known")
