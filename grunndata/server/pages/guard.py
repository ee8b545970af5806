"""What every page for people checks before its route runs, and answers as a page (Norwegian, on
the base template) rather than FHIR's OperationOutcome:

- the token: none is fine (the pages show national, open data), but one that does not verify is
  a 401 page on every page, as the API's 401 (with its WWW-Authenticate); keys out of reach a 503;
- each query parameter at most once: `?fra=1&fra=2` is a 400 naming it, not the last one silently.

Routes take it as a dependency (server/deps.py `PageDep`, `PageAccessDep`), which raises
`PageProblem`; the app answers that with `.response()` (app.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.responses import HTMLResponse

from grunndata.server.fhir_io.responses import FhirError
from grunndata.server.pages.render import render

HOME = ("/legemidler", "Til søket")
PAGE_PREFIXES = ("/legemidler/", "/leveranser/", "/migration/")
"""Paths under these are pages: one no route takes is the pages' 404 (app.py), never FHIR's."""

_REFUSED = {
    401: (
        "Tokenet gjelder ikke",
        "Forespørselen kom med et token som ikke kan godtas (ugyldig eller utløpt). Sidene viser "
        "nasjonale, åpne data og trenger ikke innlogging: prøv igjen uten token, eller med et gyldig.",
    ),
    403: ("Ingen tilgang", "Tokenet gir ikke tilgang til dette."),
    503: (
        "Innloggingen kan ikke sjekkes nå",
        "Tjenesten får ikke kontrollert tokenet akkurat nå. Prøv igjen om litt, eller uten token.",
    ),
    400: ("Forespørselen kan ikke brukes", "Forespørselen har mer enn én Authorization-header."),
}


class PageProblem(Exception):
    """A page's refusal: its status, heading and sentence, the way back, and headers to send."""

    def __init__(
        self,
        status: int,
        heading: str,
        message: str,
        back: tuple[str, str] = HOME,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.heading, self.message, self.back = status, heading, message, back
        self.headers = dict(headers or {})
        self.name = ""  # the parameter a 400 for a repeated one names

    def response(self) -> HTMLResponse:
        return problem_page(self.status, self.heading, self.message, self.back, self.headers)


def problem_page(
    status: int,
    heading: str,
    message: str,
    back: tuple[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    where, label = back or HOME
    page = render("problem.html", heading=heading, message=message, back=where, back_label=label)
    return HTMLResponse(page, status_code=status, headers=dict(headers or {}))


def refused(e: FhirError) -> PageProblem:
    """The API's refusal of a token (server/access.py `refusal`) as a page, its headers kept."""
    heading, message = _REFUSED.get(e.status, ("Forespørselen kan ikke brukes", e.message))
    return PageProblem(e.status, heading, message, headers=e.headers)


def repeated(items: Iterable[tuple[str, str]], back: tuple[str, str] = HOME) -> PageProblem | None:
    """A 400 naming the first query parameter given more than once, or None."""
    seen: set[str] = set()
    for key, _ in items:
        if key in seen:
            name = key if len(key) <= 40 else key[:40] + "…"
            problem = PageProblem(
                400,
                "Forespørselen kan ikke brukes",
                f"Parameteren «{name}» er oppgitt mer enn én gang; oppgi den én gang.",
                back,
            )
            problem.name = name
            return problem
        seen.add(key)
    return None
