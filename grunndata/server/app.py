"""The HTTP server. Until the FHIR API lands it answers health and release status only."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from grunndata import __version__
from grunndata.store.releases import active_releases, list_releases


def create_app(engine: Engine) -> FastAPI:
    app = FastAPI(title="Grunndata", version=__version__)

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Up, and which releases are being served."""
        with engine.connect() as conn:
            active = active_releases(conn)
        return {
            "status": "ok",
            "version": __version__,
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

    @app.get("/releases")
    def releases() -> list[dict[str, Any]]:
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
            for r in list_releases(engine)
        ]

    return app
