"""Operations: `/health` (up, and which releases are served), `/releases`, and the FEST->IDMP
coverage report."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter

from grunndata import __version__
from grunndata.server.deps import AccessDep, ServedDep
from grunndata.store import active_releases, list_releases

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
    """Every release of the lines the client may read: national for all, the rest by scope."""
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
        if access.can_read(r.tier, r.owner_id)
    ]


@router.get("/coverage/fest-idmp")
def coverage() -> dict[str, Any]:
    """Where every element of the M30 XSD goes in FHIR: mapped, carried in an extension, or dropped."""
    from grunndata.translators.fest_to_idmp import coverage_json

    report: dict[str, Any] = coverage_json()
    return report
