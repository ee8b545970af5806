"""FHIR Bulk Data `$export` (system and type level): kick-off, status polling, cancel, the files.

The asynchronous pattern of Bulk Data 2.0: a kick-off (GET with the parameters in the query, or
POST with a Parameters resource) with `Prefer: respond-async` is answered 202 with the status
URL in Content-Location; the status is 202 (X-Progress, Retry-After) while the
export is written, then 200 with the manifest; DELETE cancels it. The status URL names the
kick-off's own ticket to the (shared) job, so a DELETE cancels that kick-off alone. The work and
its state: server/bulk.py. Only the entitlement that asked sees a job; to any other it does not
exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from grunndata.errors import ExportError
from grunndata.exporters import export_types, not_exported, since_instant
from grunndata.fhir import SERVED_TYPES
from grunndata.server.auth import Access
from grunndata.server.bulk import BulkExports
from grunndata.server.deps import AccessDep, PlainAsked
from grunndata.server.fhir_io import bundles
from grunndata.server.fhir_io.openapi import DATE_SCHEMA, NEGOTIATION, errors, fhir_content, resource_schema
from grunndata.server.fhir_io.params import Limits, bad, posted_parameters, split_values, strict
from grunndata.server.fhir_io.responses import FhirError, outcome, send
from grunndata.server.m30 import GzipFile, accepts_gzip, unpacked
from grunndata.store import SEARCHED_TYPES, instant, since_untold
from grunndata.store.bulk import ACCEPTED, DONE, FAILED, Entitlement, TooManyJobs

NDJSON_TYPE = "application/fhir+ndjson"
# `_outputFormat` values meaning ndjson (Bulk Data lists the three; a "+" left unencoded in a
# query string arrives as a space)
OUTPUT_FORMATS = frozenset((NDJSON_TYPE, "application/ndjson", "ndjson", "application/fhir ndjson"))
KICK_OFF_PARAMS = frozenset(("_type", "_since", "_outputFormat", "_format", "_pretty"))
TYPE_FILTER = "_typeFilter"
RETRY_AFTER = "1"  # seconds: the real extract takes about one, a full-size store some ten
STATUS, FILE = "$export-status", "$export-file"

router = APIRouter(prefix="/fhir", tags=["FHIR Bulk Data"])


def _bulk(request: Request) -> BulkExports:
    bulk: BulkExports = request.app.state.bulk
    return bulk


def _entitlement(request: Request, access: Access) -> Entitlement:
    """The client's entitlement; a token that verified (or none) was checked by the dependency."""
    return Entitlement.of(access, token="authorization" in request.headers)


async def system_export(request: Request, asked: PlainAsked) -> Response:
    """All the resources served here, one ndjson file per type."""
    return await _kick_off(request, asked.access, asked.limits, asked.fmt, None)


async def type_export(request: Request, asked: PlainAsked, rtype: str) -> Response:
    """The resources of one type."""
    if rtype not in SERVED_TYPES:
        if rtype in SEARCHED_TYPES:
            raise FhirError(404, "not-supported", not_exported(rtype))
        raise FhirError(404, "not-supported", f"{rtype[:100]!r} is not a resource type served here")
    return await _kick_off(request, asked.access, asked.limits, asked.fmt, rtype)


async def _kick_off(
    request: Request, access: Access, limits: Limits, fmt: str, rtype: str | None
) -> Response:
    items: list[tuple[str, Any]] = list(request.query_params.multi_items())
    limits.check(items)
    # RFC 7240: preferences in one header or several, each with parameters (`respond-async; wait=10`)
    prefer = ", ".join(request.headers.getlist("prefer"))
    if "respond-async" not in {p.split(";")[0].strip().lower() for p in prefer.split(",")}:
        raise bad("$export is asynchronous: send the header Prefer: respond-async")
    if request.method == "POST":  # Bulk Data's POST: the same parameters in a Parameters resource
        posted = await posted_parameters(request, limits)
        limits.check([(k, v) for k, v in posted if isinstance(v, str)])
        items += posted
    unknown = sorted({k for k, _ in items} - KICK_OFF_PARAMS)
    if unknown and strict(prefer):
        if TYPE_FILTER in unknown:
            raise bad(
                "_typeFilter is not supported here: an export holds every resource of the types asked; "
                "ask without it (or without Prefer: handling=strict to have it ignored)"
            )
        raise bad(f"$export does not take {unknown[0][:100]!r}; it takes _type, _since and _outputFormat")
    types = _types(_strings(items, "_type"), rtype)
    since = _since(_strings(items, "_since"))
    formats = _strings(items, "_outputFormat")
    if len(formats) > 1 or any(f not in OUTPUT_FORMATS for f in formats):
        shown = next((f for f in formats if f not in OUTPUT_FORMATS), formats[-1] if formats else "")
        raise bad(f"_outputFormat {shown[:100]!r} is not made here; ask for {NDJSON_TYPE}")
    served = request.app.state.served
    snapshot = served.snapshot(access)
    if since is not None:
        with served.engine.connect() as conn:
            untold = since_untold(conn, since, access)
        if untold is not None:
            raise FhirError(410, "expired", f"{untold}; export without _since")
    try:
        ticket = await _bulk(request).kick_off(
            _entitlement(request, access), snapshot, types, since, str(request.url)
        )
    except TooManyJobs as e:
        raise FhirError(429, "throttled", str(e), {"Retry-After": "60"}) from None
    written = {
        "severity": "information",
        "code": "informational",
        "diagnostics": "the export is being written; poll the URL in Content-Location",
    }
    body = orjson.dumps({"resourceType": "OperationOutcome", "issue": [written, *map(_ignored, unknown)]})
    return send(
        request,
        fmt,
        body,
        status=202,
        headers={"Content-Location": f"{bundles.base_url(request)}/{STATUS}/{ticket}"},
    )


def _strings(items: list[tuple[str, Any]], name: str) -> list[str]:
    """The values of `name`, each a string (a POSTed Parameters resource could give anything)."""
    found = [v for k, v in items if k == name]
    if not all(isinstance(v, str) for v in found):
        raise bad(f"{name} takes a string (valueString, valueInstant); the Parameters resource gave another")
    return found


def _ignored(name: str) -> dict[str, str]:
    """The kick-off's note on a parameter it does not take (without Prefer: handling=strict)."""
    if name == TYPE_FILTER:
        said = (
            "_typeFilter is not supported here and was ignored: the export holds every resource of the "
            "types asked (with Prefer: handling=strict it is refused)"
        )
    else:
        said = f"{name[:100]!r} is not a parameter of $export here and was ignored"
    return {"severity": "warning", "code": "not-supported", "diagnostics": said}


def _types(given: list[str], rtype: str | None) -> list[str]:
    """The types `_type` names (or all served here, or the route's): 400 for one not exported."""
    named = [t for value in given for t in split_values(value)]
    if any(not t for t in named):
        raise bad(
            "_type names an empty type; give the types separated by commas, e.g. _type=Basic,Ingredient"
        )
    try:
        return export_types(named, rtype)
    except ExportError as e:
        raise bad(f"_type: {e}") from None


def _since(given: list[str]) -> datetime | None:
    if not given:
        return None
    if len(given) > 1:
        raise bad("give _since once")
    try:
        return since_instant(given[0])
    except ExportError as e:
        raise bad(f"_since: {e}") from None


async def status(request: Request, access: AccessDep, ticket: str) -> Response:
    """202 while it is written, 200 with the manifest when done; 404 for no such ticket (cancelled,
    expired, or another entitlement's)."""
    bulk = _bulk(request)
    job = await run_in_threadpool(bulk.job, ticket, _entitlement(request, access))
    if job is None:
        raise _no_job(ticket)
    if job.status == FAILED:
        raise FhirError(503, "exception", f"the export failed: {job.error}")
    if job.status != DONE:
        progress = (
            "waiting for its turn"
            if job.status == ACCEPTED
            else f"{job.done:,} of {job.total:,} resources written"
        )
        return Response(
            status_code=202,
            headers={"X-Progress": progress, "Retry-After": RETRY_AFTER, "Cache-Control": "no-store"},
        )
    base = bundles.base_url(request)
    manifest: dict[str, Any] = {
        "transactionTime": instant(job.transaction_time or job.created_at),
        "request": job.request,
        "requiresAccessToken": job.entitlement.token,
        "output": [_item(base, ticket, item) for item in job.output],
        "error": [],
    }
    if job.since is not None:
        manifest["deleted"] = [_item(base, ticket, item) for item in job.deleted]
    expires = job.expires_at or datetime.now(UTC)
    return Response(
        orjson.dumps(manifest),
        200,
        media_type="application/json",
        headers={"Expires": format_datetime(expires, usegmt=True), "Cache-Control": "no-store"},
    )


def _item(base: str, ticket: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": item["type"], "url": f"{base}/{FILE}/{ticket}/{item['file']}", "count": item["count"]}


async def cancel(request: Request, access: AccessDep, ticket: str) -> Response:
    """Cancel this kick-off's export: 202, and later polls of its URLs are 404. The export goes on
    for the other kick-offs that asked for it; with the last one it stops and its files go."""
    if not await run_in_threadpool(_bulk(request).cancel, ticket, _entitlement(request, access)):
        raise _no_job(ticket)
    body = outcome(202, "informational", f"the export {ticket} was cancelled", "information")
    return send(request, "json", body, status=202)


async def export_file(request: Request, access: AccessDep, ticket: str, name: str) -> Response:
    """One file of a finished export: gzip as it is kept, to a client that accepts it."""
    bulk = _bulk(request)
    job = await run_in_threadpool(bulk.job, ticket, _entitlement(request, access))
    path = None if job is None else bulk.file(job, name)
    if path is None:
        raise FhirError(
            404, "not-found", f"the export {ticket[:64]!r} has no file {name[:100]!r} (here, for you)"
        )
    headers = {"Vary": "Accept-Encoding"}
    if accepts_gzip(request):
        return GzipFile(path, NDJSON_TYPE, headers)
    return StreamingResponse(unpacked(path), media_type=NDJSON_TYPE, headers=headers)


def _no_job(ticket: str) -> FhirError:
    return FhirError(
        404,
        "not-found",
        f"there is no export {ticket[:64]!r} for you: it expired, was cancelled, or was never asked for "
        "with your entitlement",
    )


def _param(
    where: str, name: str, schema: dict[str, Any], description: str, required: bool = False
) -> dict[str, Any]:
    return {"name": name, "in": where, "schema": schema, "description": description, "required": required}


_TYPES = "(" + "|".join(SERVED_TYPES) + ")"
_INSTANT = {"type": "string", "pattern": DATE_SCHEMA["pattern"].replace("(eq|ne|gt|lt|ge|le|sa|eb)?", "")}
_PREFER_ASYNC = _param(
    "header",
    "Prefer",
    {"type": "string", "enum": ["respond-async", "respond-async, handling=strict"]},
    "respond-async (required); handling=strict: an unknown parameter is a 400",
    required=True,
)
_ACCEPTED = {
    "202": {
        "description": "Accepted: the status URL is in Content-Location",
        "content": fhir_content(resource_schema("OperationOutcome")),
    }
}


def _kick_off_doc(system: bool, post: bool = False) -> dict[str, Any]:
    params = [
        _param("query", "_since", _INSTANT, "Only what changed after this instant, and what was deleted"),
        _param("query", "_outputFormat", {"type": "string", "enum": sorted(OUTPUT_FORMATS)}, NDJSON_TYPE),
        *NEGOTIATION,
        _PREFER_ASYNC,
    ]
    if system:
        params.insert(
            0,
            _param(
                "query", "_type", {"type": "string", "pattern": f"^{_TYPES}(,{_TYPES})*$"}, "Comma-separated"
            ),
        )
    busy = {
        "description": "Too many exports are being written; Retry-After says when to ask again",
        "content": fhir_content(resource_schema("OperationOutcome")),
    }
    doc: dict[str, Any] = {"parameters": params, "responses": {**_ACCEPTED, **errors(400, 404), "429": busy}}
    if post:  # the same parameters in a Parameters resource (or the query)
        body = {"application/fhir+json": {"schema": resource_schema("Parameters")}}  # not XML: a 415
        doc["requestBody"] = {"required": True, "content": body}
        doc["responses"].update(errors(415))
    return doc


_MANIFEST = {
    "type": "object",
    "required": ["transactionTime", "request", "requiresAccessToken", "output", "error"],
}
router.add_api_route(
    "/$export",
    system_export,
    methods=["GET"],
    summary="Bulk Data export of every type",
    operation_id="export-system",
    status_code=202,
    openapi_extra=_kick_off_doc(system=True),
)
router.add_api_route(
    "/$export",
    system_export,
    methods=["POST"],
    summary="Bulk Data export of every type (the parameters in a Parameters resource)",
    operation_id="export-system-post",
    status_code=202,
    openapi_extra=_kick_off_doc(system=True, post=True),
)
router.add_api_route(
    f"/{STATUS}/{{ticket}}",
    status,
    methods=["GET"],
    summary="Bulk Data export status: 202 while written, 200 with the manifest",
    operation_id="export-status",
    openapi_extra={
        "responses": {
            "200": {"description": "The manifest", "content": {"application/json": {"schema": _MANIFEST}}},
            "202": {"description": "In progress (X-Progress, Retry-After)"},
            **errors(404, 503),
        },
    },
)
router.add_api_route(
    f"/{STATUS}/{{ticket}}",
    cancel,
    methods=["DELETE"],
    summary="Cancel a Bulk Data export",
    operation_id="export-cancel",
    status_code=202,
    openapi_extra={"responses": {**_ACCEPTED, **errors(404)}},
)
router.add_api_route(
    f"/{FILE}/{{ticket}}/{{name}}",
    export_file,
    methods=["GET"],
    summary="A file of a finished Bulk Data export (ndjson)",
    operation_id="export-file",
    response_class=Response,
    openapi_extra={
        "responses": {
            "200": {"description": "The file", "content": {NDJSON_TYPE: {"schema": {"type": "string"}}}},
            **errors(404),
        }
    },
)
router.add_api_route(
    "/{rtype}/$export",
    type_export,
    methods=["GET"],
    summary="Bulk Data export of one type",
    operation_id="export-type",
    status_code=202,
    openapi_extra=_kick_off_doc(system=False),
)
router.add_api_route(
    "/{rtype}/$export",
    type_export,
    methods=["POST"],
    summary="Bulk Data export of one type (the parameters in a Parameters resource)",
    operation_id="export-type-post",
    status_code=202,
    openapi_extra=_kick_off_doc(system=False, post=True),
)
