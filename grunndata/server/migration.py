"""The migration from FEST to IDMP, release by release: `/migration` (HTML, or JSON on Accept).

For every national release: how much of what FEST describes SAFEST/IDMP describes too, where the
two disagree, and what IDMP gives that FEST does not. Beside it, once, what IDMP has no element
for at all (the FEST content carried in extensions), from the FEST->IDMP coverage table.
National data only: the page is open to all.

The page (templates/migration.html, in Norwegian, on the pages' base.html) drills down from each
count to the resources behind it (`behind`: a release's manifest, FEST-made ones by their Oppf Id,
those merged with SAFEST by the index row the import gives them) and from each disagreement to
both values in full (`disagreements`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, exists, func, select
from sqlalchemy.engine import Engine

from grunndata.server.pages import render
from grunndata.server.pages.releases import STATUS, hentet, when
from grunndata.server.state import Served
from grunndata.store import list_releases, release_disagreements
from grunndata.store.models import REL, M, R, S

MAX_SHOWN_DISAGREEMENTS = 200
SHOWN_BEHIND = 500  # resources listed on one page of a drill-down
PARTS = {  # a drill-down: which of a type's resources, as the page says it
    "fra-fest": "laget fra FEST",
    "med-idmp": "laget fra FEST og også beskrevet i IDMP (SAFEST)",
    "bare-fest": "laget fra FEST, uten motpart i IDMP",
    "bare-idmp": "bare i IDMP (SAFEST)",
}
_MERGED = ("origin", "fest+safest")  # the index row of a resource FEST and SAFEST were merged into


def migration_report(served: Served) -> dict[str, Any]:
    releases = [
        r for r in list_releases(served.engine) if r.tier == "national" and r.activated_at is not None
    ]
    return {
        "releases": [_release(r) for r in reversed(releases)],
        "compared": _compared(),
        "not_in_idmp": _not_in_idmp(),
    }


def _compared() -> dict[str, list[str]]:
    """Per resource type, the elements the reconciliation compares (its one table)."""
    from grunndata.translators.reconciliation import COMPARED

    out: dict[str, list[str]] = {}
    for row in COMPARED:
        out.setdefault(row.resource, []).append(row.element)
    return out


def _release(release: Any) -> dict[str, Any]:
    rec = (release.report or {}).get("reconciliation") or {}
    linked: dict[str, int] = rec.get("linked", {})
    fest_only: dict[str, int] = rec.get("fest_only", {})
    if not rec:  # no SAFEST data in this release: nothing of FEST has an IDMP counterpart
        fest_only = {
            t: c["new"] + c["changed"] + c["unchanged"]
            for t, c in (release.report or {}).get("resources", {}).items()
        }
    types = sorted(set(linked) | set(fest_only))
    coverage = {
        t: {
            "fest": linked.get(t, 0) + fest_only.get(t, 0),
            "with_idmp": linked.get(t, 0),
            "share": round(linked.get(t, 0) / max(1, linked.get(t, 0) + fest_only.get(t, 0)), 4),
        }
        for t in types
    }
    total_fest = sum(c["fest"] for c in coverage.values())
    total_linked = sum(c["with_idmp"] for c in coverage.values())
    return {
        "id": release.id,
        "source": release.source,
        "status": release.status,
        "hentet_dato": release.hentet_dato,
        "activated_at": release.activated_at.isoformat() if release.activated_at else None,
        "share_with_idmp": round(total_linked / total_fest, 4) if total_fest else 0.0,
        "coverage": coverage,
        "idmp_only": rec.get("idmp_only", {}),
        "disagreement_count": rec.get("disagreement_count", 0),
        "disagreements": rec.get("disagreements", [])[:MAX_SHOWN_DISAGREEMENTS],
        "content_filters": (release.report or {}).get("content_filters"),
        "phpid": (release.report or {}).get("phpid") or {},
    }


def _not_in_idmp() -> list[dict[str, Any]]:
    """Per FEST catalogue: the elements IDMP has no element for (carried in extensions) or dropped."""
    from grunndata.translators.fest_to_idmp import coverage_json

    out = []
    for catalogue in coverage_json()["catalogues"]:
        counts = {"fhir": 0, "extension": 0, "dropped": 0}
        for element in catalogue["elements"]:
            if element["disposition"] in counts:
                counts[element["disposition"]] += 1
        if counts["extension"] or counts["dropped"]:
            out.append({"catalogue": catalogue["name"], **counts})
    return out


# -- the page ---------------------------------------------------------------------------------------


def _readable(iso: str | None) -> str:
    return when(datetime.fromisoformat(iso)) if iso else ""


def migration_page(report: dict[str, Any]) -> str:
    releases = [
        r
        | {
            "activated": _readable(r["activated_at"]),
            "hentet": hentet(r["hentet_dato"]),
            "status_text": STATUS.get(r["status"], r["status"]),
        }
        for r in report["releases"]
    ]
    return render(
        "migration.html",
        releases=releases,
        compared=report["compared"],
        not_in_idmp=report["not_in_idmp"],
        shown=MAX_SHOWN_DISAGREEMENTS,
    )


# -- the drill-downs ---------------------------------------------------------------------------------


def national_release(engine: Engine, number: int) -> Any:
    """A national release that has been served (the page's), or None."""
    with engine.connect() as conn:
        row = conn.execute(
            select(REL.c.id, REL.c.status, REL.c.source, REL.c.hentet_dato, REL.c.activated_at).where(
                REL.c.id == number, REL.c.tier == "national", REL.c.activated_at.is_not(None)
            )
        ).first()
    return row


@dataclass(frozen=True, slots=True)
class Behind:
    """One resource behind a count: its type, id and a name people know it by."""

    type: str
    id: str
    name: str


def _name(data: bytes) -> str:
    """A resource's name as people read it: a product's name, a name, a description, a code's text."""
    resource = orjson.loads(data)
    for name in resource.get("name") or ():
        if isinstance(name, dict) and name.get("productName"):
            return str(name["productName"])
    if isinstance(resource.get("name"), str):
        return str(resource["name"])
    for key in ("description", "title"):
        if isinstance(resource.get(key), str):
            return str(resource[key])
    for key in ("code", "substance", "type"):
        value = resource.get(key)
        if isinstance(value, dict):
            inner = value.get("concept")
            concept: dict[str, Any] = inner if isinstance(inner, dict) else value
            if concept.get("text"):
                return str(concept["text"])
            for coding in concept.get("coding") or ():
                if coding.get("display"):
                    return str(coding["display"])
    return ""


def behind(engine: Engine, release: int, rtype: str, part: str, start: int) -> tuple[int, list[Behind]]:
    """The resources of `rtype` the release serves that a count of the page counts (`part`, one of
    PARTS), sorted by id: how many in all, and one page of them from `start`."""
    merged = exists().where(S.c.resource_pk == R.c.pk, S.c.param == _MERGED[0], S.c.value == _MERGED[1])
    where = {
        "fra-fest": R.c.source_id.is_not(None),
        "med-idmp": and_(R.c.source_id.is_not(None), merged),
        "bare-fest": and_(R.c.source_id.is_not(None), ~merged),
        "bare-idmp": R.c.source_id.is_(None),
    }[part]
    served = R.join(M, and_(M.c.resource_pk == R.c.pk, M.c.release_id == release))
    chosen = (R.c.type == rtype, where)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(served).where(*chosen)).scalar() or 0
        rows = conn.execute(
            select(R.c.id, R.c.data)
            .select_from(served)
            .where(*chosen)
            .order_by(R.c.id)
            .offset(start)
            .limit(SHOWN_BEHIND)
        ).all()
    return int(total), [Behind(rtype, rid, _name(bytes(data))) for rid, data in rows]


def disagreements(engine: Engine, release: int) -> list[dict[str, Any]]:
    """Every disagreement the release's import report keeps, in its order."""
    with engine.connect() as conn:
        return release_disagreements(conn, [release])
