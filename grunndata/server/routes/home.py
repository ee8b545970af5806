"""`/`: a plain page that says what this service is and where to go from here, in Norwegian and
English. No script, no outside assets: it renders where the health network reaches nothing else."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from starlette.responses import HTMLResponse

from grunndata import __version__
from grunndata.server.deps import PageAccessDep

router = APIRouter()

# (path, Norwegian, English): where a visitor goes next
LINKS = (
    ("/legemidler", "Finn legemiddel: søk og produktkort", "Find a drug: search and product card"),
    (
        "/leveranser",
        "Leveransene: historikk, hva hver endret, rapporten fra en avvist import",
        "The releases: history, what each changed, a refused import's report",
    ),
    (
        "/fhir/metadata",
        "FHIR R5-API: hva serveren kan (CapabilityStatement)",
        "The FHIR R5 API: what it can do",
    ),
    ("/docs", "API-dokumentasjon (OpenAPI, prøv kallene)", "API documentation (OpenAPI, try the calls)"),
    (
        "/catalog",
        "Tjenestekatalogen: alle grunndatatjenester",
        "The service catalogue: every grunndata service",
    ),
    ("/migration", "Overgangen fra FEST til IDMP, per leveranse", "The move from FEST to IDMP, per release"),
    ("/releases", "Leveransene som er lest inn (JSON)", "The releases imported (JSON)"),
    ("/fest/m30", "FEST M30 for e-reseptkjeden", "FEST M30 for the e-prescription chain"),
    ("/health", "Driftsstatus", "Service status"),
)


def landing_page() -> str:
    items = "\n".join(
        f'    <li><a href="{path}">{escape(no)}</a> <span lang="en">({escape(en)})</span></li>'
        for path, no, en in LINKS
    )
    return f"""<!DOCTYPE html>
<html lang="nb">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Grunndata: legemiddelgrunndata over FHIR R5</title>
  <style>
    body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem;
           line-height: 1.5; color: #1a1a1a; background: #fff; }}
    a {{ color: #0b4f9c; }}
    li {{ margin: 0.4rem 0; }}
    code {{ background: #f2f2f2; padding: 0 0.2rem; }}
  </style>
</head>
<body>
<main>
  <h1>Grunndata</h1>
  <p>Legemiddelgrunndata for Norge: FEST-leveransene og SAFEST/IDMP-data som FHIR R5-ressurser
  (IDMP), med sektor- og tilleggsdata for klienter som har tilgang. Nasjonale data er åpne;
  FHIR-basen er <code>/fhir</code>.</p>
  <p lang="en">Norwegian medicinal-product master data: the FEST deliveries and SAFEST/IDMP data
  served as FHIR R5 (IDMP) resources, with sector and supplementary data for entitled clients.
  National data is open; the FHIR base is <code>/fhir</code>.</p>
  <nav aria-label="Innhold / Contents">
  <ul>
{items}
  </ul>
  </nav>
  <p><small>grunndata {escape(__version__)}</small></p>
</main>
</body>
</html>
"""


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(_: PageAccessDep) -> HTMLResponse:
    # PageAccessDep: open to all, but a token that does not verify is a page saying so, as on every page
    return HTMLResponse(landing_page())
