"""`/legemidler`: find a drug, and `/legemidler/{id}`: its product card (server/pages/). Pages for
people over the national data only (the anonymous view, whatever token comes along)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from grunndata.server.auth import ANONYMOUS
from grunndata.server.deps import ServedDep
from grunndata.server.pages import MAX_QUERY, STATIC, QueryError, find, product_card, product_of, render
from grunndata.server.state import Served

router = APIRouter()
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._")
_SCRIPT = (STATIC / "sok.js").read_bytes()


def _problem(status: int, heading: str, message: str) -> HTMLResponse:
    return HTMLResponse(render("problem.html", heading=heading, message=message), status_code=status)


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
async def find_page(served: ServedDep, q: str = "", fragment: str = "") -> Response:
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
            bare = rid.removeprefix("ID_").removeprefix("id_").upper()
            product = product_of(conn, snapshot, bare)
            if product is not None:
                return RedirectResponse(f"/legemidler/{product}", status_code=303)
    if card is None:
        return _problem(404, "Fant ikke legemidlet", f"Aktiv leveranse har ikke noe produkt med id {rid}.")
    return HTMLResponse(render("card.html", card=card))


@router.get("/legemidler/{rid}", response_class=HTMLResponse, include_in_schema=False)
async def card_page(served: ServedDep, rid: str) -> Response:
    return await run_in_threadpool(_card, served, rid)
