"""The terminology operations' routes at /fhir: ConceptMap read and `$translate`, CodeSystem
`$lookup` and `$validate-code`, ValueSet `$expand` (the work: server/terminology.py).

Included before the FHIR routes: /fhir/CodeSystem/$lookup is no read of a CodeSystem.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from grunndata.server import terminology as ops
from grunndata.server.deps import FormatDep, TerminologyDep, get_access, limits_of
from grunndata.server.fhir_io.responses import FhirError, send
from grunndata.server.terminology import Indexes, Json, Terminology

# national data: open, but a bad token is still a 401
router = APIRouter(prefix="/fhir", tags=["Terminology"], dependencies=[Depends(get_access)])


@router.api_route("/ConceptMap/$translate", methods=["GET", "POST"], summary="Translate a code with the maps")
async def translate(request: Request, terms: TerminologyDep, fmt: FormatDep) -> Response:
    return await _answer(request, terms, fmt, partial(ops.translate, map_id=None))


@router.api_route("/ConceptMap/{cid}/$translate", methods=["GET", "POST"], summary="Translate with one map")
async def translate_with(request: Request, terms: TerminologyDep, fmt: FormatDep, cid: str) -> Response:
    return await _answer(request, terms, fmt, partial(ops.translate, map_id=cid))


@router.get("/ConceptMap/{cid}", summary="Read a ConceptMap")
async def read_map(request: Request, terms: TerminologyDep, fmt: FormatDep, cid: str) -> Response:
    indexes = await terms.ready()
    if cid not in indexes.map_bytes:
        raise FhirError(404, "not-found", f"there is no ConceptMap/{cid}")
    return send(request, fmt, indexes.map_bytes[cid])


@router.api_route("/CodeSystem/$lookup", methods=["GET", "POST"], summary="Look up a code of a code system")
async def lookup(request: Request, terms: TerminologyDep, fmt: FormatDep) -> Response:
    return await _answer(request, terms, fmt, ops.lookup)


@router.api_route(
    "/CodeSystem/$validate-code", methods=["GET", "POST"], summary="Is this code in the code system?"
)
async def validate_code(request: Request, terms: TerminologyDep, fmt: FormatDep) -> Response:
    return await _answer(request, terms, fmt, ops.validate_code)


@router.api_route(
    "/ValueSet/$expand",
    methods=["GET", "POST"],
    summary="Expand a ValueSet, or the implicit value set of a code system (url = its url)",
)
async def expand(request: Request, terms: TerminologyDep, fmt: FormatDep) -> Response:
    return await _answer(request, terms, fmt, ops.expand)


async def _answer(
    request: Request,
    terms: Terminology,
    fmt: str,
    work: Callable[[Indexes, list[tuple[str, Any]]], Json | None],
) -> Response:
    """The operation's parameters read (query, form or Parameters, within the bounds of a search),
    the snapshot's indexes asked."""
    items = await ops.inputs(request, limits_of(request))
    indexes = await terms.ready()
    result = work(indexes, items)
    if result is None:
        raise FhirError(404, "not-found", "no such code system")
    return send(request, fmt, orjson.dumps(result))
