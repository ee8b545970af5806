"""The migration from FEST to IDMP, release by release: `/migration` (HTML, or JSON on Accept).

For every national release: how much of what FEST describes SAFEST/IDMP describes too, where the
two disagree, and what IDMP gives that FEST does not. Beside it, once, what IDMP has no element
for at all (the FEST content carried in extensions), from the FEST->IDMP coverage table.
National data only: the page is open to all.
"""

from __future__ import annotations

import html
from typing import Any

from grunndata.server.state import Served
from grunndata.store import list_releases

MAX_SHOWN_DISAGREEMENTS = 200


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


def _filters_html(filters: dict[str, Any] | None) -> str:
    """What each H-resept content filter leaves out of the release (`content-filter=h-resept`)."""
    if not filters:
        return "<p class='muted'>No H-resept content filters were judged for this release.</p>"
    rows = "".join(
        f"<tr><td>{_e(code)}</td><td>{_e(', '.join(f'{t} {n:,}' for t, n in by_type.items()) or 'none')}</td></tr>"
        for code, by_type in filters["excluded"].items()
    )
    when = (
        f"now = HentetDato {_e(filters['now'])}, three months back to {_e(filters['cutoff'])}"
        if filters.get("now")
        else "no HentetDato: the time-dependent filters were not judged"
    )
    return (
        f"<p>H-resept view (<code>content-filter={_e(filters['view'])}</code>; {when}): "
        f"{filters['resources']:,} resources left out.</p>"
        f"<table><tr><th>filter</th><th>leaves out</th></tr>{rows}</table>"
    )


# -- the page ---------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;line-height:1.4;color:#1b1b1b}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem}table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid #ddd;padding:.3rem .4rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
td.n{text-align:right;font-variant-numeric:tabular-nums}.bar{background:#e6eef7;height:.6rem;min-width:4rem}
.bar span{display:block;height:100%;background:#2b6cb0}.card{border:1px solid #ccc;border-radius:.4rem;padding:.6rem .8rem;margin:.8rem 0}
.muted{color:#666}@media(max-width:40rem){th,td{font-size:.85rem}}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def migration_page(report: dict[str, Any]) -> str:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>FEST to IDMP migration</title><style>{_STYLE}</style></head><body>",
        "<h1>FEST &rarr; IDMP migration</h1>",
        "<p class='muted'>For each national release: how much of what FEST describes SAFEST/IDMP describes "
        "too, where the two disagree, and what only IDMP gives. JSON: <code>Accept: application/json</code>.</p>",
    ]
    compared = "; ".join(f"{_e(t)}: {_e(', '.join(elements))}" for t, elements in report["compared"].items())
    parts.append(
        f"<p class='muted'>Compared where both give a value: {compared}. Any other element whose FEST "
        "value SAFEST's replaces is listed under its FHIR name.</p>"
    )
    if not report["releases"]:
        parts.append("<p>No national release has been imported yet.</p>")
    for release in report["releases"]:
        parts.append(_release_card(release))
    parts.append("<h2>What IDMP has no element for</h2>")
    parts.append(
        "<p class='muted'>FEST elements per catalogue that the FHIR R5 IDMP resources cannot hold: carried in "
        "documented extensions (so M30 can be written again), or dropped.</p>"
    )
    parts.append(
        "<table><tr><th>Catalogue</th><th>IDMP elements</th><th>extensions</th><th>dropped</th></tr>"
    )
    for row in report["not_in_idmp"]:
        parts.append(
            f"<tr><td>{_e(row['catalogue'])}</td><td class='n'>{row['fhir']}</td>"
            f"<td class='n'>{row['extension']}</td><td class='n'>{row['dropped']}</td></tr>"
        )
    parts.append("</table></body></html>")
    return "".join(parts)


def _release_card(release: dict[str, Any]) -> str:
    share = release["share_with_idmp"]
    rows = "".join(
        f"<tr><td>{_e(t)}</td><td class='n'>{c['fest']:,}</td><td class='n'>{c['with_idmp']:,}</td>"
        f"<td><div class='bar'><span style='width:{c['share'] * 100:.1f}%'></span></div>{c['share']:.0%}</td></tr>"
        for t, c in release["coverage"].items()
    )
    only = ", ".join(f"{_e(t)} {n:,}" for t, n in release["idmp_only"].items()) or "none"
    disagreements = "".join(
        f"<tr><td>{_e(d['resource'])}</td><td>{_e(d['element'])}</td><td>{_e(d['fest'])}</td><td>{_e(d['safest'])}</td></tr>"
        for d in release["disagreements"]
    )
    head = (
        f"<div class='card'><h2>Release {release['id']} ({_e(release['source'])}, {_e(release['status'])})</h2>"
        f"<p>Activated {_e(release['activated_at'])}; HentetDato {_e(release['hentet_dato'])}. "
        f"<strong>{share:.1%}</strong> of the FEST-made resources have an IDMP counterpart.</p>"
        "<table><tr><th>Resource type</th><th>from FEST</th><th>also in IDMP</th><th>share</th></tr>"
        f"{rows}</table><p>Only in IDMP: {only}.</p>"
    )
    head += _filters_html(release["content_filters"])
    if release["disagreement_count"]:
        head += (
            f"<p><strong>{release['disagreement_count']:,} disagreements</strong> "
            f"(the first {len(release['disagreements'])}):</p>"
            "<table><tr><th>Resource</th><th>element</th><th>FEST</th><th>SAFEST</th></tr>"
            f"{disagreements}</table>"
        )
    else:
        head += "<p>No disagreements.</p>"
    return head + _phpid_section(release["phpid"]) + "</div>"


def _phpid_section(phpid: dict[str, Any]) -> str:
    """PhPID groups against FEST's LegemiddelVirkestoff groups (terminology/phpid.py), per level."""
    if not phpid:
        return ""
    parts = ["<h3>PhPID groups and FEST's LegemiddelVirkestoff</h3>"]
    for key in ("level4", "level2"):
        c = phpid.get(key)
        if not c:
            continue
        parts.append(
            f"<p>Level {c['level']} ({_e(c['stratum'])} stratum): <strong>{c['agreeing']:,} of "
            f"{c['fest_groups']:,}</strong> LegemiddelVirkestoff groups ({c['share']:.1%}) hold exactly the "
            f"packages of one PhPID; {c['packages_with_phpid']:,} of {c['packages']:,} packages have a "
            f"level {c['level']} PhPID, in {c['phpid_groups']:,} groups.</p>"
        )
        rows = "".join(
            f"<tr><td>{_e(d['name'])}<br><span class='muted'>{_e(d['legemiddelvirkestoff'])}</span></td>"
            f"<td>{_e(d['why'])}</td><td>{_e(', '.join(d['phpids']) or '-')}</td>"
            f"<td>{_e(', '.join(d['phpid_group_beyond']) or '-')}</td></tr>"
            for d in c["differing"][:MAX_SHOWN_DISAGREEMENTS]
        )
        if rows:
            parts.append(
                "<table><tr><th>LegemiddelVirkestoff</th><th>why they differ</th><th>PhPIDs</th>"
                f"<th>packages of the PhPID beyond it</th></tr>{rows}</table>"
            )
    return "".join(parts)
