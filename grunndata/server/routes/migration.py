"""`/migration`: the FEST -> IDMP migration status per release, as a page or JSON
(the report: server/migration.py). National data only: the page is open to all."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from grunndata.server.deps import AccessDep, ServedDep
from grunndata.server.migration import migration_page, migration_report

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
            "200": {
                "description": "The page, or the report as JSON (Accept: application/json or _format=json)",
                "content": {
                    "text/html": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "object"}},
                },
            }
        },
    },
)
def migration(request: Request, served: ServedDep, _: AccessDep) -> Response:
    # AccessDep: national data, open, but a bad token is still a 401
    report = migration_report(served)
    accept = request.headers.get("accept", "")
    if "application/json" in accept or request.query_params.get("_format") == "json":
        return JSONResponse(report)
    return HTMLResponse(migration_page(report))
