"""`/migration`: the FEST -> IDMP migration status per release, as a page or JSON (the report:
server/migration.py), and its drill-downs: `/migration/{N}/{type}?del=...` the resources behind a
count, `/migration/{N}/uenigheter[/{i}]` the disagreements with both values. National data only:
the pages are open to all."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, Response

from grunndata.fhir import SERVED_TYPES
from grunndata.server.deps import PageDep, ServedDep
from grunndata.server.fhir_io.openapi import page_answers
from grunndata.server.migration import (
    PARTS,
    SHOWN_BEHIND,
    behind,
    disagreements,
    migration_page,
    migration_report,
    national_release,
)
from grunndata.server.pages import render
from grunndata.server.state import Served
from grunndata.store import release_number as _number  # a release number as written, or None

router = APIRouter(tags=["Migration"])


@router.get(
    "/migration",
    summary="FEST -> IDMP migration status per release (HTML, or JSON)",
    response_class=HTMLResponse,
    openapi_extra={
        "parameters": [
            {"name": "_format", "in": "query", "schema": {"type": "string"}, "description": "json: JSON"}
        ],
        "responses": {
            **page_answers(400, 401, 503, fhir=True),
            "200": {
                "description": "The page, or the report as JSON (Accept: application/json or _format=json)",
                "content": {
                    "text/html": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "object"}},
                },
            },
        },
    },
)
def migration(request: Request, served: ServedDep, _: PageDep) -> Response:
    # PageDep: national data, open, but a bad token is still a 401 (a page, or JSON when JSON was asked)
    report = migration_report(served)
    accept = request.headers.get("accept", "")
    if "application/json" in accept or request.query_params.get("_format") == "json":
        return JSONResponse(report)
    return HTMLResponse(migration_page(report))


# -- the drill-downs: pages for people, not in the API document ------------------------------------


def _not_found(message: str, status: int = 404) -> HTMLResponse:
    page = render(
        "problem.html",
        heading="Fant ikke siden",
        message=message,
        back="/migration",
        back_label="Til overgangen",
    )
    return HTMLResponse(page, status_code=status)


def _release(served: Served, release: str) -> Any:
    n = _number(release)
    return national_release(served.engine, n) if n is not None else None


def _disagreements(served: Served, release: str, number: str | None) -> Response:
    row = _release(served, release)
    if row is None:
        return _not_found(f"Det finnes ingen nasjonal leveranse {release}.")
    items = disagreements(served.engine, row.id)
    if number is None:
        return HTMLResponse(render("migration_disagreements.html", release=row, items=items, one=None))
    n = _number(number)
    if n is None or n > len(items):
        return _not_found(f"Leveranse {row.id} har ingen uenighet nr. {number}.")
    page = render("migration_disagreements.html", release=row, items=items, one=items[n - 1], number=n)
    return HTMLResponse(page)


@router.get("/migration/{release}/uenigheter", response_class=HTMLResponse, include_in_schema=False)
async def disagreements_page(served: ServedDep, _: PageDep, release: str) -> Response:
    return await run_in_threadpool(_disagreements, served, release, None)


@router.get("/migration/{release}/uenigheter/{number}", response_class=HTMLResponse, include_in_schema=False)
async def disagreement_page(served: ServedDep, _: PageDep, release: str, number: str) -> Response:
    return await run_in_threadpool(_disagreements, served, release, number)


def _behind(served: Served, release: str, rtype: str, part: str, start: str) -> Response:
    row = _release(served, release)
    if row is None:
        return _not_found(f"Det finnes ingen nasjonal leveranse {release}.")
    if rtype not in SERVED_TYPES:
        return _not_found("Det er ikke en FHIR-ressurstype denne tjenesten har.")
    if part not in PARTS:
        return _not_found(f"del må være en av {', '.join(PARTS)}.", 400)
    offset = _number(start) if start not in ("", "0") else 0
    if offset is None:
        return _not_found(f"«{start}» er ikke et gyldig sidetall.", 400)
    total, items = behind(served.engine, row.id, rtype, part, offset)
    page = render(
        "migration_behind.html",
        release=row,
        rtype=rtype,
        part=part,
        part_text=PARTS[part],
        parts=PARTS,
        total=total,
        items=items,
        start=offset,
        page=SHOWN_BEHIND,
    )
    return HTMLResponse(page)


@router.get("/migration/{release}/{rtype}", response_class=HTMLResponse, include_in_schema=False)
async def behind_page(
    served: ServedDep,
    _: PageDep,
    release: str,
    rtype: str,
    start: str = "",
    part: str = Query("fra-fest", alias="del"),
) -> Response:
    # del: which of the type's resources (fra-fest, med-idmp, bare-fest, bare-idmp); start: the page
    return await run_in_threadpool(_behind, served, release, rtype, part, start)
