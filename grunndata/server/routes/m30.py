"""`/fest/m30`: the national data as a FEST/M30 delivery, written once per snapshot (server/m30.py) by a child process (exporters/runner.py)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from grunndata.errors import ExportError, ExportFailed
from grunndata.server.deps import LimitsDep, M30Dep, get_access
from grunndata.server.fhir_io.openapi import errors
from grunndata.server.fhir_io.responses import FhirError
from grunndata.server.m30 import M30_TYPE, GzipFile, accepts_gzip, unpacked

# national data: open, but a bad token is still a 401
router = APIRouter(tags=["FEST/M30"], dependencies=[Depends(get_access)])


@router.get(
    "/fest/m30",
    summary="The national data as a FEST/M30 delivery",
    response_class=Response,
    responses={
        200: {"content": {"application/xml": {"schema": {"type": "string"}}}},
        304: {"description": "Not modified (If-None-Match with the ETag of the same export)"},
    },
    openapi_extra={"responses": errors(400, 503)},
)
async def fest_m30(request: Request, files: M30Dep, limits: LimitsDep, since: str | None = None) -> Response:
    """A full delivery, or with `since` (the HentetDato of a delivery you had from here, exactly
    as it was) only what changed since: new and changed entries in full, Status U for expired
    listings. Valid against the M30 2014-12-01 XSD; gzip when the client accepts it."""
    if since is not None and not since.strip():
        raise FhirError(400, "invalid", "since is empty; give the HentetDato of your last delivery")
    if since is not None:
        limits.check([("since", since)])  # a NUL would be PostgreSQL's error, not a 400
    key = files.key(since)
    etag = f'"m30-{key}"'
    headers = {
        "ETag": etag,
        "Content-Disposition": 'attachment; filename="fest251.xml"',
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    try:
        path = await files.file(key, since)
    except ExportError as e:
        raise FhirError(400, "invalid", str(e)) from None
    except ExportFailed as e:
        raise FhirError(503, "transient", str(e)) from None
    if accepts_gzip(request):
        return GzipFile(path, M30_TYPE, headers)
    return StreamingResponse(unpacked(path), media_type=M30_TYPE, headers=headers)
