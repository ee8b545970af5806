"""Operations: `/health` (up, and which releases are served), `/livez` and `/readyz` for the
load balancer and the orchestrator, `/metrics` for Prometheus, `/releases` and one release's whole
report, and the FEST->IDMP coverage report."""

from __future__ import annotations

import os
import struct
from typing import Annotated, Any

from fastapi import APIRouter, Path
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from grunndata import __version__
from grunndata.server.auth import NATIONAL
from grunndata.server.deps import AccessDep, ServedDep, SettingsDep
from grunndata.server.fhir_io.responses import FhirError
from grunndata.server.imports import may_see_release
from grunndata.server.observe import exposition
from grunndata.settings import prometheus_multiproc_dir
from grunndata.store import active_releases, list_releases, release_json, release_row

router = APIRouter()


@router.get("/health")
def health(served: ServedDep, access: AccessDep) -> dict[str, Any]:
    """Up, and which releases are being served (those whose data the client may read)."""
    with served.engine.connect() as conn:
        active = [r for r in active_releases(conn) if access.can_read(r.tier, r.owner_id)]
    settings = served.auth.settings
    return {
        "status": "ok",
        "version": __version__,
        "pid": os.getpid(),  # which server process answered (several may serve one store)
        "auth": "DEVELOPMENT MODE: every client reads every tier"
        if settings.dev
        else ("bearer tokens (HelseID)" if settings.jwks else "national data only, no tokens accepted"),
        "active_releases": [
            {
                "id": r.id,
                "source": r.source,
                "tier": r.tier,
                "owner": r.owner_id,
                "hentet_dato": r.hentet_dato,
            }
            for r in active
        ],
    }


@router.get("/releases")
def releases(served: ServedDep, access: AccessDep) -> list[dict[str, Any]]:
    """Every release of the lines the client may read: national for all, the rest by scope; a staged
    release (not served yet) only to a client that may import its line."""
    return [
        {
            "id": r.id,
            "source": r.source,
            "kind": r.kind,
            "tier": r.tier,
            "owner": r.owner_id,
            "status": r.status,
            "hentet_dato": r.hentet_dato,
            "started_at": r.started_at,
            "ended_at": r.ended_at,
            "counts": r.counts,
            "message": r.message,
        }
        for r in list_releases(served.engine, with_report=False)
        if may_see_release(access, r)  # a staged (or discarded) one only with its line's import right
    ]


@router.get("/livez")
def livez() -> dict[str, str]:
    """The process answers (it touches nothing: a busy or empty store is /readyz's business)."""
    return {"status": "alive"}


@router.get(
    "/readyz",
    responses={503: {"description": "Not ready: the checks that failed say why"}},
)
def readyz(served: ServedDep, settings: SettingsDep) -> Response:
    """Ready for traffic: the store answers and a national release is active (GRUNNDATA_READY_CHECKS
    chooses which); 503 with the failed checks otherwise, so a load balancer sends nothing to a
    server that has no data to give."""
    checks: dict[str, str] = {}
    active: list[Any] = []
    try:
        with served.engine.connect() as conn:
            active = active_releases(conn)
        checks["store"] = "ok"
    except SQLAlchemyError as e:
        checks["store"] = f"the store does not answer: {type(e).__name__}"
    if "national" in settings.ready_checks and checks["store"] == "ok":
        national = [r.id for r in active if r.tier == NATIONAL]
        checks["national"] = (
            f"ok: release {national[0]}" if national else "no national release is active: import one"
        )
    asked = {
        name: checks.get(name, "not checked: the store does not answer") for name in settings.ready_checks
    }
    ready = all(text.startswith("ok") for text in asked.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": asked}, 200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(served: ServedDep) -> Response:
    """Requests, latencies and cache lookups of every server process, and the store's releases."""
    folder = prometheus_multiproc_dir()
    try:
        body, media_type = await run_in_threadpool(exposition, served.engine, folder)
    except (OSError, ValueError, struct.error) as e:  # a process's file there cut short or not the library's
        raise FhirError(
            503, "transient", f"the metrics files in PROMETHEUS_MULTIPROC_DIR cannot be read ({e})"
        ) from None
    return Response(body, media_type=media_type)


@router.get(
    "/releases/{release}",
    responses={404: {"description": "No such release, or one of a line the client may not read"}},
)
def release_report(
    # digits as written: an int would also take "1.0", "01", "+1" and "1 " for release 1
    release: Annotated[str, Path(pattern=r"^[1-9][0-9]{0,9}$", description="A release number")],
    served: ServedDep,
    access: AccessDep,
) -> dict[str, Any]:
    """One release's whole report, refused and failed ones included: every problem and warning with
    its place, and the counts (what `grunndata releases show N --json` prints). A sector or
    supplementary line's release is 404 to a client not entitled to that line, exactly as one that
    does not exist, so its existence does not leak."""
    row = release_row(served.engine, int(release))  # None beyond what the store numbers, as a diff's
    if row is None or not may_see_release(access, row):
        raise FhirError(404, "not-found", f"there is no release {release}")
    return release_json(row, report=True)


@router.get("/coverage/fest-idmp")
def coverage() -> dict[str, Any]:
    """Where every element of the M30 XSD goes in FHIR: mapped, carried in an extension, or dropped."""
    from grunndata.translators.fest_to_idmp import coverage_json

    report: dict[str, Any] = coverage_json()
    return report
