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
from grunndata.server.fhir_io.openapi import NEGOTIATION, answers, fhir_content, resource_schema
from grunndata.server.fhir_io.responses import FhirError, send
from grunndata.server.terminology import Indexes, Json, Terminology

# national data: open, but a bad token is still a 401
router = APIRouter(prefix="/fhir", tags=["Terminology"], dependencies=[Depends(get_access)])
PARAMETERS = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {
        "resourceType": {"const": "Parameters"},
        "parameter": {
            "type": "array",
            "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
        },
    },
}


async def translate(request: Request, terms: TerminologyDep, fmt: FormatDep) -> Response:
    return await _answer(request, terms, fmt, partial(ops.translate, map_id=None))


async def translate_with(request: Request, terms: TerminologyDep, fmt: FormatDep, cid: str) -> Response:
    return await _answer(request, terms, fmt, partial(ops.translate, map_id=cid))


async def read_map(request: Request, terms: TerminologyDep, fmt: FormatDep, cid: str) -> Response:
    indexes = await terms.ready()
    if cid not in indexes.map_bytes:
        raise FhirError(404, "not-found", f"there is no ConceptMap/{cid}")
    return send(request, fmt, indexes.map_bytes[cid])


async def lookup(request: Request, terms: TerminologyDep, fmt: FormatDep) -> Response:
    return await _answer(request, terms, fmt, ops.lookup)


async def validate_code(request: Request, terms: TerminologyDep, fmt: FormatDep) -> Response:
    return await _answer(request, terms, fmt, ops.validate_code)


async def expand(request: Request, terms: TerminologyDep, fmt: FormatDep) -> Response:
    return await _answer(request, terms, fmt, ops.expand)


_TRANSLATE = (
    "url",
    "conceptMap",
    "system",
    "sourceCode",
    "code",
    "sourceCoding",
    "coding",
    "targetCode",
    "targetCoding",
    "targetSystem",
    "targetsystem",
    "target",
    "reverse",
)
# path, handler, summary, operationId, the inputs (query, form or Parameters) as FHIR names them
_OPERATIONS: list[tuple[str, Callable[..., Any], str, str, tuple[str, ...]]] = [
    (
        "/ConceptMap/$translate",
        translate,
        "Translate a code with the maps",
        "ConceptMap-translate",
        _TRANSLATE,
    ),
    (
        "/ConceptMap/{cid}/$translate",
        translate_with,
        "Translate with one map",
        "ConceptMap-translate-instance",
        _TRANSLATE,
    ),
    (
        "/CodeSystem/$lookup",
        lookup,
        "Look up a code of a code system",
        "CodeSystem-lookup",
        ("system", "code", "coding", "version"),
    ),
    (
        "/CodeSystem/$validate-code",
        validate_code,
        "Is this code in the code system?",
        "CodeSystem-validate-code",
        ("url", "system", "code", "display", "coding", "version", "systemVersion"),
    ),
    (
        "/ValueSet/$expand",
        expand,
        "Expand a ValueSet, or the implicit value set of a code system (url = its url)",
        "ValueSet-expand",
        ("url", "filter", "offset", "count", "valueSetVersion"),
    ),
]


def _operation_routes(
    path: str, handler: Callable[..., Any], summary: str, operation_id: str, inputs: tuple[str, ...]
) -> None:
    """An operation by GET (inputs in the query) and by POST (a Parameters resource or a form)."""
    query = [{"name": n, "in": "query", "schema": {"type": "string"}} for n in inputs]
    content = fhir_content({"type": "object"})
    router.add_api_route(
        path,
        handler,
        methods=["GET"],
        summary=summary,
        operation_id=operation_id,
        openapi_extra={"parameters": [*query, *NEGOTIATION], **answers(content, 400, 404)},
    )
    form = {"type": "object", "properties": {n: {"type": "string"} for n in inputs}}
    body = {
        "application/fhir+json": {"schema": PARAMETERS},
        "application/x-www-form-urlencoded": {"schema": form},
    }
    router.add_api_route(
        path,
        handler,
        methods=["POST"],
        summary=summary + " (a Parameters resource or a form)",
        operation_id=operation_id + "-post",
        openapi_extra={
            "parameters": NEGOTIATION,
            "requestBody": {"required": True, "content": body},
            **answers(content, 400, 404, 415),
        },
    )


for _operation in _OPERATIONS:
    _operation_routes(*_operation)
router.add_api_route(
    "/ConceptMap/{cid}",
    read_map,
    methods=["GET"],
    summary="Read a ConceptMap",
    operation_id="ConceptMap-read",
    openapi_extra={"parameters": NEGOTIATION, **answers(fhir_content(resource_schema("ConceptMap")), 404)},
)


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
