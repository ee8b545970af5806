"""`POST /import/{source}`: a delivery imported over HTTP, with the import scope (the work:
server/imports.py); a staged one's review and fate: `GET /releases/{a}/diff/{b}`,
`POST /releases/{n}/activate` and `/discard`."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from grunndata.errors import (
    DeliveryError,
    GrunndataError,
    ReleaseConflict,
    StoreBusy,
    StoreError,
    UnknownRelease,
    UnknownType,
)
from grunndata.server.auth import Access
from grunndata.server.deps import AccessDep, CatalogueDep, ServedDep, SettingsDep
from grunndata.server.fhir_io.openapi import errors
from grunndata.server.fhir_io.responses import FhirError
from grunndata.server.imports import (
    check_scope,
    file_name,
    importer,
    line,
    may_see_content,
    may_see_release,
    receive,
    refused,
)
from grunndata.store import DISCARDED, STAGED, discard, release_json, release_row

router = APIRouter(prefix="/import", tags=["Imports"])
releases = APIRouter(prefix="/releases", tags=["Imports"])
MAX_DIFF_PAGE = 500  # entries of a diff page (each changed one with up to store/diff.py MAX_ELEMENTS)
ReleaseNumber = Annotated[str, PathParam(pattern=r"^[1-9][0-9]{0,9}$", description="A release number")]
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
    stage: bool = False,
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
            "stage": stage,
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
    if result.staged:
        outcome = "staged"
    return JSONResponse({"outcome": outcome, "release_id": result.release_id, "report": result.as_report()})


def _release_for(served: Any, access: Access, release: str, *, restricted_exist: bool = False) -> Any:
    """The release row, or 404 when there is none or the client may not know of it (a staged one
    without the line's import right; with `restricted_exist`, a served release of a line the
    client may not read is known to exist, as a diff tells its dates)."""
    row = release_row(served.engine, int(release))  # None beyond what the store numbers
    if row is None:
        raise FhirError(404, "not-found", f"there is no release {release}")
    never_served = row.status in (STAGED, DISCARDED)
    if not (may_see_release(access, row) or (restricted_exist and not never_served)):
        raise FhirError(404, "not-found", f"there is no release {release}")
    return row


def _store_failure(e: StoreError) -> FhirError:
    if isinstance(e, UnknownRelease):
        return FhirError(404, "not-found", str(e))
    if isinstance(e, (StoreBusy, ReleaseConflict)):
        return FhirError(409, "conflict", str(e))
    return FhirError(503, "transient", str(e))


async def _staged_step(
    request: Request, release: str, access: Access, served: Any, step: Callable[[Any, int], Any]
) -> Any:
    """`step` (activate, discard) done to a staged release by a client with its line's import
    scope; the store's refusals as HTTP answers. Returns the release's row after the step."""
    row = _release_for(served, access, release)
    check_scope(access, row.tier, row.owner_id, "authorization" in request.headers)
    try:
        return await run_in_threadpool(step, served.engine, row.id)
    except StoreError as e:
        raise _store_failure(e) from None


@releases.post(
    "/{release}/activate",
    summary="Make a staged release active (as an import's end does)",
    openapi_extra={"security": [{"helseid": []}], "responses": errors(400, 401, 403, 404, 409, 503)},
)
async def activate_release(
    request: Request, release: ReleaseNumber, access: AccessDep, served: ServedDep
) -> dict[str, Any]:
    """A staged release becomes its line's active one, with the import scope of its line; 409 when
    it is not staged, or the release it was staged against is no longer the active one."""
    from grunndata.importers.run import activate_staged

    row = await _staged_step(request, release, access, served, activate_staged)
    await run_in_threadpool(served.serve_newest)  # served from the next request on, as after an import
    return {"outcome": "activated", "release": release_json(row, report=False)}


@releases.post(
    "/{release}/discard",
    summary="Drop a staged release unserved",
    openapi_extra={"security": [{"helseid": []}], "responses": errors(400, 401, 403, 404, 409, 503)},
)
async def discard_release(
    request: Request, release: ReleaseNumber, access: AccessDep, served: ServedDep
) -> dict[str, Any]:
    """A staged release's data is removed (its record stays, discarded), with the import scope of
    its line; 409 when it is not staged."""
    row = await _staged_step(request, release, access, served, discard)
    return {"outcome": "discarded", "release": release_json(row, report=False)}


@releases.get(
    "/{base}/diff/{target}",
    summary="What changed between two releases of a line",
    openapi_extra={"responses": errors(400, 404, 409)},
)
async def release_diff(
    request: Request,
    base: ReleaseNumber,
    target: ReleaseNumber,
    access: AccessDep,
    served: ServedDep,
    rtype: Annotated[
        str | None,
        Query(
            alias="type",
            pattern=r"^[A-Za-z][A-Za-z.]{0,63}$",
            description="Only entries of this FEST catalogue or FHIR type",
        ),
    ] = None,
    count: Annotated[int, Query(alias="_count", ge=0, le=MAX_DIFF_PAGE, description="Entries per page")] = 50,
    offset: Annotated[int, Query(alias="_offset", ge=0, le=10_000_000, description="Entries skipped")] = 0,
) -> dict[str, Any]:
    """Per FEST catalogue and FHIR type the new, changed and expired entries, and a page of them
    with each changed one's elements (path, old value, new value). Of a sector or supplementary
    line, a client without its scope sees only the two releases' existence and dates; a staged
    release is seen only with its line's import scope."""
    from grunndata.store.diff import diff_json

    for name in ("type", "_count", "_offset"):  # the framework takes the last of a repeated one
        if len(request.query_params.getlist(name)) > 1:
            raise FhirError(400, "invalid", f"{name} is given more than once; give it once")
    a = _release_for(served, access, base, restricted_exist=True)
    b = _release_for(served, access, target, restricted_exist=True)
    withheld = None
    if not (may_see_content(access, a) and may_see_content(access, b)):
        withheld = "what a release of this line holds is withheld: " + access.scopes_missing_message(
            a.tier, a.owner_id
        )

    def work() -> dict[str, Any]:
        with served.engine.connect() as conn:
            return diff_json(conn, a.id, b.id, rtype=rtype, offset=offset, count=count, withheld=withheld)

    try:
        diff = await run_in_threadpool(work)
    except UnknownType as e:  # a type neither release holds: nothing of it to show (a typo, likely)
        raise FhirError(404, "not-found", str(e)) from None
    except ReleaseConflict as e:
        raise FhirError(400, "invalid", str(e)) from None
    except StoreError as e:
        raise _store_failure(e) from None
    if withheld is None and offset + count < diff["total"]:
        diff["next"] = str(request.url.include_query_params(_offset=offset + count, _count=count))
    return diff
