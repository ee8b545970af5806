"""`/legemidler`: find a drug, `/legemidler/{id}`: its product card, `/legemidler/virkestoff/{id}`:
a substance; `/leveranser`: the releases, one release's report and two releases compared
(server/pages/). Pages for people: the drug pages over the national data only (the anonymous view,
whatever a valid token allows); the release pages know of the releases `/releases` tells the same
client of (a staged one only with its line's import right), and show only the national line's
content. Every route takes `PageDep` (pages/guard.py): a token that does not verify is a 401 page,
a repeated query parameter a 400 page; a trailing slash is a 308 to the page without it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from grunndata.errors import ReleaseConflict, UnknownRelease, UnknownType
from grunndata.server.auth import ANONYMOUS, Access
from grunndata.server.deps import PageDep, ServedDep
from grunndata.server.imports import may_see_release
from grunndata.server.pages import MAX_QUERY, STATIC, QueryError, find, product_card, product_of, render
from grunndata.server.pages import releases as rel
from grunndata.server.pages.guard import problem_page
from grunndata.server.pages.substance import substance_page
from grunndata.server.state import Served
from grunndata.store import release_number as _number  # a release number as written, or None
from grunndata.store.releases import active_release

router = APIRouter()
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._")
_TYPE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.")
_SCRIPT = (STATIC / "sok.js").read_bytes()


def _problem(status: int, heading: str, message: str, back: tuple[str, str] | None = None) -> HTMLResponse:
    return problem_page(status, heading, message, back)


def _find(served: Served, q: str, fragment: bool) -> Response:
    snapshot = served.snapshot(ANONYMOUS)  # national data only
    try:
        with served.engine.connect() as conn:
            found = find(conn, snapshot, q)
    except QueryError as e:
        return _problem(400, "Søket kan ikke brukes", str(e))
    if fragment:
        return HTMLResponse(render("results.html", found=found))
    return HTMLResponse(render("find.html", found=found, max_query=MAX_QUERY))


# pages for people, as the landing page: not in the API document (the FHIR routes they read are)
@router.get("/legemidler", response_class=HTMLResponse, include_in_schema=False)
async def find_page(served: ServedDep, _: PageDep, q: str = "", fragment: str = "") -> Response:
    # fragment=1: the results alone, for the as-you-type script; any other value: the whole page
    return await run_in_threadpool(_find, served, q, fragment == "1")


@router.get("/legemidler/sok.js", include_in_schema=False)
def script() -> Response:
    return Response(
        _SCRIPT, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "max-age=3600"}
    )


def _card(served: Served, rid: str) -> Response:
    if not rid or len(rid) > 64 or not set(rid) <= _ID_CHARS:
        return _problem(404, "Fant ikke legemidlet", "Det finnes ikke noe produkt med denne id-en.")
    snapshot = served.snapshot(ANONYMOUS)
    with served.engine.connect() as conn:
        card = product_card(conn, snapshot, rid)
        if card is None:  # a FEST id as FEST writes it (ID_, any case), or a package's id: its product
            bare = rid[3:].upper() if rid[:3].upper() == "ID_" else rid.upper()
            product = product_of(conn, snapshot, bare)
            if product is not None:
                return RedirectResponse(f"/legemidler/{product}", status_code=303)
    if card is None:
        return _problem(404, "Fant ikke legemidlet", f"Aktiv leveranse har ikke noe produkt med id {rid}.")
    return HTMLResponse(render("card.html", card=card))


@router.get("/legemidler/{rid}", response_class=HTMLResponse, include_in_schema=False)
async def card_page(served: ServedDep, _: PageDep, rid: str) -> Response:
    return await run_in_threadpool(_card, served, rid)


def _substance(served: Served, sid: str) -> Response:
    if not sid or len(sid) > 64 or not set(sid) <= _ID_CHARS:
        return _problem(404, "Fant ikke virkestoffet", "Det finnes ikke noe virkestoff med denne id-en.")
    with served.engine.connect() as conn:
        found = substance_page(conn, served.snapshot(ANONYMOUS), sid)
    if found is None:
        return _problem(
            404, "Fant ikke virkestoffet", f"Aktiv leveranse har ikke noe virkestoff med id {sid}."
        )
    return HTMLResponse(render("substance.html", s=found))


@router.get("/legemidler/virkestoff/{sid}", response_class=HTMLResponse, include_in_schema=False)
async def substance_page_route(served: ServedDep, _: PageDep, sid: str) -> Response:
    return await run_in_threadpool(_substance, served, sid)


@router.get("/legemidler/{rest:path}", response_class=HTMLResponse, include_in_schema=False)
def no_card(request: Request, _: PageDep, rest: str) -> Response:
    """Anything else under /legemidler (an id with a slash, `a%2Fb`): the page's 404, not FHIR's."""
    return _elsewhere(request) or _problem(
        404, "Fant ikke legemidlet", "Det finnes ikke noe produkt med denne id-en."
    )


def _elsewhere(request: Request) -> Response | None:
    """A page's path with a trailing slash: a redirect to the page without it (the app makes none
    itself, app.py), its query kept; None for any other path."""
    path: str = request.url.path
    bare = path.rstrip("/")
    if bare == path or not bare or bare.startswith("//"):  # "//host" would be another site
        return None
    query = request.url.query
    return RedirectResponse(bare + (f"?{query}" if query else ""), status_code=308)


# -- the releases ------------------------------------------------------------------------------------

_BACK = ("/leveranser", "Til leveransene")


def _may_see(access: Access) -> rel.MaySee:
    return lambda release: may_see_release(access, release)


def _releases(served: Served, access: Access) -> Response:
    lines = rel.lines(served.engine, _may_see(access))
    national = next((line.releases for line in lines if line.tier == "national"), [])
    choices = [r for r in national if r.has_data]
    page = render(
        "releases.html",
        lines=lines,
        choices=choices,
        pair=rel.default_pair(national),
        can_see_staged=access.can_import("national", "dmp"),
    )
    return HTMLResponse(page)


@router.get("/leveranser", response_class=HTMLResponse, include_in_schema=False)
async def releases_page(served: ServedDep, access: PageDep) -> Response:
    return await run_in_threadpool(_releases, served, access)


def _compare(served: Served, access: Access, fra: str, til: str, rtype: str, start: str) -> Response:
    may_see = _may_see(access)
    national = next((ln.releases for ln in rel.lines(served.engine, may_see) if ln.tier == "national"), [])
    if not fra and not til:
        pair = rel.default_pair(national)
        if pair is None:
            return _problem(
                404,
                "Ingenting å sammenligne",
                "Den nasjonale linjen har ikke to leveranser å sammenligne.",
                _BACK,
            )
        base, target = pair
    else:
        target_n = _number(til) if til else None
        if til and target_n is None:
            return _problem(
                400, "Sammenligningen kan ikke vises", f"«{til}» er ikke et leveransenummer.", _BACK
            )
        if target_n is None:  # only `fra`: against the active release
            target_n = next((r.id for r in national if r.status == "active"), None)
        base_n = _number(fra) if fra else None
        if fra and base_n is None:
            return _problem(
                400, "Sammenligningen kan ikke vises", f"«{fra}» er ikke et leveransenummer.", _BACK
            )
        if base_n is None and target_n is not None:  # only `til`: what it changes from the one it is built on
            row = next((r for r in national if r.id == target_n), None)
            base_n = row.based_on if row is not None else None
        if base_n is None or target_n is None:
            return _problem(404, "Ingenting å sammenligne", "Velg to leveranser å sammenligne.", _BACK)
        base, target = base_n, target_n
    known = {r.id: r for r in national}
    for n in (base, target):
        if n not in known:  # not national, unknown, or a staged one the asker may not know of
            return _problem(
                404, "Fant ikke leveransen", _not_national(served, may_see, n, base, target), _BACK
            )
        if not known[n].has_data:  # a pruned one's manifest is gone: everything would look new
            why = f"Leveranse {n} er {known[n].status_text} og har ingen data å sammenligne."
            return _problem(400, "Sammenligningen kan ikke vises", why, _BACK)
    if rtype and (len(rtype) > 64 or not set(rtype) <= _TYPE_CHARS):
        return _problem(
            400, "Sammenligningen kan ikke vises", "Typen er ikke en FEST-katalog eller FHIR-type.", _BACK
        )
    offset = _number(start) if start not in ("", "0") else 0
    if offset is None:
        return _problem(
            400, "Sammenligningen kan ikke vises", f"«{start}» er ikke et gyldig sidetall.", _BACK
        )
    try:
        with served.engine.connect() as conn:
            c = rel.compare(conn, base, target, rtype or None, offset)
    except (UnknownRelease, ReleaseConflict) as e:
        return _problem(400, "Sammenligningen kan ikke vises", _conflict(e, base, target), _BACK)
    return HTMLResponse(render("compare.html", c=c, page=rel.SHOWN_ENTRIES))


def _not_national(served: Served, may_see: rel.MaySee, n: int, base: int, target: int) -> str:
    """Why release `n` cannot be compared here: unknown (to this asker), or of a sector or
    supplementary line, whose content the pages never show (the API's diff does, with its scope)."""
    found = rel.one_release(served.engine, n, may_see)
    if found is None:
        return f"Det finnes ingen nasjonal leveranse {n}."
    return (
        f"Leveranse {n} hører til linjen {found.line}. Sidene sammenligner bare nasjonale leveranser: "
        "innholdet i sektor- og tilleggslinjer vises ikke her. Med tilgang til linjen viser API-et "
        f"forskjellen: GET /releases/{base}/diff/{target} med token."
    )


def _conflict(e: Exception, base: int, target: int) -> str:
    if isinstance(e, UnknownType):
        held = ", ".join(e.held) if e.held else "ingen"
        return (
            f"Verken leveranse {base} eller {target} har oppføringer av typen «{e.rtype}». "
            f"Typene de har: {held}."
        )
    if isinstance(e, UnknownRelease):
        return f"Det finnes ingen leveranse {base} eller {target}."
    return f"Leveranse {base} og {target} kan ikke sammenlignes: én av dem har ingen data (forkastet, beskåret eller feilet)."


@router.get("/leveranser/sammenlign", response_class=HTMLResponse, include_in_schema=False)
async def compare_page(
    served: ServedDep, access: PageDep, fra: str = "", til: str = "", type: str = "", start: str = ""
) -> Response:
    # fra/til: release numbers (none: the newest staged release against the active one, or the
    # active one against the one it replaced); type: one FEST catalogue or FHIR type; start: the page
    return await run_in_threadpool(_compare, served, access, fra, til, type, start)


def _release(served: Served, access: Access, number: str) -> Response:
    n = _number(number)
    found = rel.one_release(served.engine, n, _may_see(access)) if n is not None else None
    if found is None:
        return _problem(404, "Fant ikke leveransen", f"Det finnes ingen leveranse {number}.", _BACK)
    comparison: Any = None
    if found.status == "staged":  # what it would change, against the active release it was checked against
        with served.engine.connect() as conn:
            active = active_release(conn, found.tier, found.owner)
            if active is not None and active.id == found.based_on:
                comparison = rel.compare(conn, active.id, found.id, entries=False)
    return HTMLResponse(render("release.html", r=found, comparison=comparison))


@router.get("/leveranser/{number}", response_class=HTMLResponse, include_in_schema=False)
async def release_page(served: ServedDep, access: PageDep, number: str) -> Response:
    return await run_in_threadpool(_release, served, access, number)


@router.get("/leveranser/{rest:path}", response_class=HTMLResponse, include_in_schema=False)
@router.get("/migration/{rest:path}", response_class=HTMLResponse, include_in_schema=False)
def no_page(request: Request, _: PageDep, rest: str) -> Response:
    """Any other path under /leveranser or /migration: a page's 404 (or, with a trailing slash,
    the page without it), never FHIR's JSON."""
    found = _elsewhere(request)
    if found is not None:
        return found
    back = ("/migration", "Til overgangen") if request.url.path.startswith("/migration") else _BACK
    return _problem(404, "Fant ikke siden", "Det finnes ingen side med denne adressen.", back)
