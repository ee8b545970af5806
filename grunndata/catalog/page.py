"""The catalogue as a page for people (`/catalog`): one card per service, its status at a glance.

Server-rendered HTML with no JavaScript: filtering by tier and owner is plain links
(`?tier=sector&owner=vendor-a`), so it works in any browser and behind any proxy. Phones get a
single column; long URLs wrap instead of scrolling sideways. Everything a catalogue file says is
escaped: those files come from other organisations.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

from grunndata.catalog.model import FHIR_INTERFACES, TIERS, Availability, Service
from grunndata.catalog.ours import search

INTERFACE_LABELS = {
    "fhir-r5": "FHIR R5 REST",
    "fhir-r4": "FHIR R4 REST",
    "m30-file": "M30 file",
    "soap": "SOAP (M30)",
    "rest": "REST",
}
STATES = ("up", "down", "unknown")

_STYLE = """
:root{--up:#1a7f37;--down:#cf222e;--unknown:#6e7781;--line:#d0d7de;--ink:#1f2328;--soft:#59636e;--accent:#0969da}
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.45;color:var(--ink);
background:#f6f8fa;-webkit-text-size-adjust:100%}
header,main{max-width:72rem;margin:0 auto;padding:.9rem 1rem}
header{padding-bottom:0}
h1{font-size:1.35rem;margin:.1rem 0 .3rem}
h2{font-size:1.05rem;margin:1.2rem 0 .5rem;color:var(--soft);text-transform:capitalize}
h3{font-size:1.05rem;margin:0;overflow-wrap:anywhere}
p{margin:.3rem 0}
a{color:var(--accent)}
.muted{color:var(--soft);font-size:.9rem}
.summary{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.6rem 0}
.filters{margin:.4rem 0}
.filters p{display:flex;flex-wrap:wrap;gap:.35rem;align-items:center;margin:.35rem 0}
.filters span{color:var(--soft);font-size:.9rem;min-width:3.2rem}
.filters a{padding:.3rem .75rem;border:1px solid var(--line);border-radius:1rem;background:#fff;color:var(--ink);
text-decoration:none;font-size:.9rem}
.filters a[aria-current]{background:var(--accent);border-color:var(--accent);color:#fff}
.cards{display:grid;gap:.8rem;align-items:start;grid-template-columns:repeat(auto-fill,minmax(min(100%,22rem),1fr))}
.card{background:#fff;border:1px solid var(--line);border-left:.5rem solid var(--unknown);border-radius:.5rem;
padding:.75rem .9rem;min-width:0}
.card.up{border-left-color:var(--up)}.card.down{border-left-color:var(--down)}
.head{display:flex;justify-content:space-between;align-items:flex-start;gap:.6rem}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:1rem;color:#fff;font-weight:600;font-size:.85rem;
background:var(--unknown);white-space:nowrap}
.badge.up{background:var(--up)}.badge.down{background:var(--down)}
.declared{display:inline-block;padding:.05rem .5rem;border:1px solid var(--soft);border-radius:1rem;font-size:.8rem;
color:var(--soft)}
.state,.who{font-size:.9rem}.state.down{color:var(--down)}
.url{display:block;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem;overflow-wrap:anywhere;
margin:.35rem 0}
dl{margin:.5rem 0 0;font-size:.9rem}
dt{color:var(--soft);font-size:.75rem;text-transform:uppercase;letter-spacing:.04em;margin-top:.45rem}
dd{margin:0;overflow-wrap:anywhere}
code{font-size:.8rem;background:#eff2f5;border-radius:.25rem;padding:0 .3rem;display:inline-block;margin:.1rem 0}
details summary{cursor:pointer}details ul{margin:.2rem 0;padding-left:1.1rem}
@media(max-width:40rem){header,main{padding:.7rem .75rem}.cards{grid-template-columns:1fr}}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def state_of(service: Service, availability: Availability | None) -> str:
    """'up', 'down' or 'unknown' (never probed, or not a FHIR interface)."""
    return "unknown" if availability is None else availability.state


def render_page(
    services: Sequence[Service],
    availability: Mapping[str, Availability],
    *,
    tier: str | None = None,
    owner: str | None = None,
    base: str = "",
) -> str:
    """The whole page: `services` is the full catalogue (the filter links need every tier and
    owner), `tier` and `owner` choose what is shown; `base` is the path the app is mounted at."""
    shown = search(services, tier=tier, owner=owner)
    states = [state_of(s, availability.get(s.id)) for s in shown]
    counts = " ".join(
        f"<span class='badge {state}'>{states.count(state)} {state}</span>"
        for state in STATES
        if states.count(state)
    )
    noun = "service" if len(shown) == 1 else "services"
    parts = [
        _head("Grunndata service catalogue"),
        "<header><h1>Grunndata service catalogue</h1>",
        "<p class='muted'>Where each kind of Norwegian medicinal-product data is served, by whom, under which "
        "terms, and whether it answered the last probe.</p>",
        f"<div class='summary' id='summary'><strong>{len(shown)} {noun}</strong> {counts}</div>",
        _filters(services, tier, owner, base),
        "</header><main>",
    ]
    if not shown:
        parts.append("<p id='none'>No service matches these filters.</p>")
    for group in TIERS:
        cards = [_card(s, availability.get(s.id)) for s in shown if s.tier == group]
        if cards:
            parts.append(f"<section id='tier-{group}'><h2>{group}</h2><div class='cards'>")
            parts.extend(cards)
            parts.append("</div></section>")
    parts.append(
        f"<p class='muted'>Also as <a href='{_e(base)}/catalog.json'>JSON</a> and as FHIR "
        f"<a href='{_e(base)}/fhir/Endpoint'>Endpoint</a> and "
        f"<a href='{_e(base)}/fhir/Organization'>Organization</a> resources.</p></main></body></html>"
    )
    return "".join(parts)


def render_error(message: str, *, base: str = "") -> str:
    """A page saying what was wrong with the request, with the way back to the whole catalogue."""
    return (
        _head("Grunndata service catalogue: bad request")
        + "<main><h1>Grunndata service catalogue</h1>"
        + f"<p id='error'>{_e(message)}</p>"
        + f"<p><a href='{_e(base)}/catalog'>All services</a></p></main></body></html>"
    )


def _head(title: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
    )


def _filters(services: Sequence[Service], tier: str | None, owner: str | None, base: str) -> str:
    """Two rows of links; each keeps the other filter, 'all' drops its own."""

    def link(label: str, new_tier: str | None, new_owner: str | None, current: bool) -> str:
        query = urlencode([(k, v) for k, v in (("tier", new_tier), ("owner", new_owner)) if v])
        href = f"{base}/catalog" + (f"?{query}" if query else "")
        mark = " aria-current='page'" if current else ""
        return f"<a href='{_e(href)}'{mark}>{_e(label)}</a>"

    tiers = [link("all", None, owner, tier is None)]
    tiers += [link(t, t, owner, t == tier) for t in TIERS if any(s.tier == t for s in services)]
    owners: dict[str, str] = {}
    for s in services:
        owners.setdefault(s.owner, s.owner_name or s.owner)  # the first name given, as in Organization
    by_name = sorted(owners.items(), key=lambda item: item[1].casefold())
    who = [link("all", tier, None, owner is None)]
    who += [link(name, tier, oid, oid == owner) for oid, name in by_name]
    return (
        "<nav class='filters' aria-label='filters'>"
        f"<p id='tier-filter'><span>Tier</span>{''.join(tiers)}</p>"
        f"<p id='owner-filter'><span>Owner</span>{''.join(who)}</p></nav>"
    )


def _card(service: Service, availability: Availability | None) -> str:
    state = state_of(service, availability)
    declared = f" <span class='declared'>{_e(service.status)}</span>" if service.status != "active" else ""
    rows = [
        ("Resource types", " ".join(f"<code>{_e(t)}</code>" for t in service.resource_types)),
        ("Operations", " ".join(f"<code>{_e(o)}</code>" for o in service.operations)),
        ("Code systems", _code_systems(service.code_systems)),
        ("Licence", _e(service.licence)),
        ("Cadence", _e(service.cadence)),
        ("Latest release", _e(service.latest_release or "")),
    ]
    listed = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows if value)
    return (
        f"<article class='card {state}' id='service-{_e(service.id)}' data-state='{state}'>"
        f"<div class='head'><h3>{_e(service.name)}{declared}</h3>"
        f"<span class='badge {state}'>{state}</span></div>"
        f"<p class='state {state}'>{_e(_measured(service, availability))}</p>"
        f"<p class='who'>{_e(service.owner_name or service.owner)} &middot; {_e(service.tier)} &middot; "
        f"{_e(INTERFACE_LABELS.get(service.interface, service.interface))}</p>"
        + (f"<p class='muted'>{_e(service.description)}</p>" if service.description else "")
        + _address(service.base_url)
        + (f"<dl>{listed}</dl>" if listed else "")
        + "</article>"
    )


def _address(url: str) -> str:
    """The base URL, a link only when it is http(s): a file cannot smuggle in javascript: links."""
    if urlsplit(url).scheme in ("http", "https"):
        return f"<a class='url' href='{_e(url)}'>{_e(url)}</a>"
    return f"<span class='url'>{_e(url)}</span>"


def _code_systems(urls: Sequence[str]) -> str:
    if not urls:
        return ""
    if len(urls) <= 3:
        return "<br>".join(_e(u) for u in urls)
    items = "".join(f"<li>{_e(u)}</li>" for u in urls)
    return f"<details><summary>{len(urls)} code systems</summary><ul>{items}</ul></details>"


def _measured(service: Service, availability: Availability | None) -> str:
    """One line: the share of probes that found it up, the last latency and what the last probe said."""
    if availability is None or availability.share is None:
        if service.interface not in FHIR_INTERFACES:
            return "not probed (only FHIR interfaces are)"
        return "not probed yet"
    checks = "1 check" if availability.checks == 1 else f"{availability.checks} checks"
    parts = [f"{_percent(availability.share)} up over {checks}"]
    if availability.last_latency_ms is not None:
        parts.append(f"{availability.last_latency_ms:.0f} ms")
    if availability.last_message and availability.last_message != "ok":
        parts.append(availability.last_message)
    if availability.last_checked is not None:
        parts.append(f"checked {_when(availability.last_checked)}")
    return " · ".join(parts)


def _percent(share: float) -> str:
    text = f"{share * 100:.1f}".removesuffix(".0")
    return f"{text} %"


def _when(moment: datetime) -> str:
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M UTC")
