"""`POST /import/{source}`: a delivery imported over HTTP, with the import scope (the work:
server/imports.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from grunndata.errors import DeliveryError, GrunndataError, StoreBusy, StoreError
from grunndata.server.deps import AccessDep, CatalogueDep, ServedDep, SettingsDep
from grunndata.server.fhir_io.openapi import errors
from grunndata.server.fhir_io.responses import FhirError
from grunndata.server.imports import check_scope, file_name, importer, line, receive, refused

router = APIRouter(prefix="/import", tags=["Imports"])
# what a delivery may come as (FEST is recognised by its bytes; ?filename= says what the others are)
DELIVERY_TYPES = (
    "application/octet-stream", "application/xml", "application/gzip", "application/zip",
    "application/fhir+json", "application/x-ndjson", "application/fhir+xml", "text/csv",
)  # fmt: skip


async def _line(source: str, owner: str | None = None) -> tuple[str, str]:
    """The line (tier, owner) the import is for: a bad source or owner is answered before the token."""
    return line(source, owner)


LineDep = Annotated[tuple[str, str], Depends(_line)]


@router.post(
    "/{source}",
    summary="Import a delivery (FEST, SAFEST, sector or supplementary data)",
    openapi_extra={
        "security": [{"helseid": []}],
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}} for media in DELIVERY_TYPES
            },
        },
        "responses": errors(400, 401, 403, 404, 409, 413, 415, 422, 503),
    },
)
async def post_import(
    request: Request,
    source: str,
    tier_owner: LineDep,
    access: AccessDep,
    served: ServedDep,
    settings: SettingsDep,
    catalogue: CatalogueDep,
    owner_name: str | None = None,
    filename: str | None = None,
    incremental: bool = False,
    force: bool = False,
    dry_run: bool = False,
) -> Response:
    """The body is the delivery: FEST as .xml, .xml.gz or .zip; SAFEST as a Bundle, ndjson or
    XML; sector and supplementary data as FHIR or CSV. `filename` (or Content-Type) says which."""
    tier, line_owner = tier_owner
    check_scope(access, tier, line_owner, "authorization" in request.headers)
    name = file_name(source, filename, request.headers.get("content-type", ""))
    with tempfile.TemporaryDirectory(prefix="grunndata-upload-") as folder:
        path = Path(folder) / name
        await receive(request, path, settings.max_upload_bytes)
        options = {
            "incremental": incremental,
            "force": force,
            "dry_run": dry_run,
            "owner_name": owner_name,
            "max_xml_bytes": settings.max_xml_bytes,
            "max_file_bytes": settings.max_resource_file_bytes,
        }
        # the catalogue files' owners: their Organization ids are the catalogue's, no import takes them
        run = importer(source, tier, line_owner, options | {"catalogue_owners": catalogue.file_owners()})
        try:
            result = await run_in_threadpool(run, served.engine, path)
        except StoreError as e:
            status = 409 if isinstance(e, StoreBusy) else 503
            raise FhirError(status, "conflict" if status == 409 else "transient", str(e)) from None
        except DeliveryError as e:
            raise refused(e) from None
        except GrunndataError as e:
            raise FhirError(422, "processing", str(e)) from None
    await run_in_threadpool(served.serve_newest)  # the new release is served from the next request on
    outcome = "dry-run" if dry_run else ("unchanged" if result.release_id is None else "activated")
    return JSONResponse({"outcome": outcome, "release_id": result.release_id, "report": result.as_report()})
