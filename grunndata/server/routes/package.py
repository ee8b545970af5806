"""GET /fhir/package.tgz: our FHIR package (no.grunndata.fhir), built once per process, for vendors and validators.

Public like the specification it extends: it holds definitions, no data.
"""

from __future__ import annotations

import hashlib
from functools import cache

from fastapi import APIRouter, Request
from starlette.responses import Response

from grunndata.fhirpackage import NAME, build_tgz

PACKAGE_PATH = "/fhir/package.tgz"

router = APIRouter(tags=["FHIR package"])


@cache
def package_bytes() -> tuple[bytes, str]:
    """The package and its ETag (its digest: the same code gives the same bytes, so the same tag)."""
    data = build_tgz()
    return data, f'"{hashlib.sha256(data).hexdigest()[:32]}"'


@router.get(
    PACKAGE_PATH,
    summary=f"Our FHIR package ({NAME}): extensions, search parameters, naming and code systems",
    response_class=Response,
    responses={
        200: {"content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}}},
        304: {"description": "Not modified (If-None-Match with the package's ETag)"},
    },
)
def fhir_package(request: Request) -> Response:
    data, etag = package_bytes()
    headers = {"ETag": etag, "Content-Disposition": f'attachment; filename="{NAME}.tgz"'}
    if any(tag.strip() in (etag, "*") for tag in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="application/gzip", headers=headers)
