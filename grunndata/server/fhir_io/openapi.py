"""The OpenAPI document at /openapi.json: every status, media type and parameter a route uses.

FastAPI sees the routes, but not the FHIR search parameters (the handlers read the query string
themselves, as FHIR search needs), nor that errors are OperationOutcomes in JSON or XML, nor that
its validation errors are answered 400 here. Those are declared here: the search parameters from the
search-parameter table (as the CapabilityStatement has them), the OperationOutcome answers once in
`components`, and the answers a dependency gives (a bad token, a format not served) on every route
that uses it. `tests/server/test_openapi.py` holds the server to the document with schemathesis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from grunndata.server.fhir_io.params import (
    CONTENT_FILTER,
    ID_PATTERN,
    MAX_COUNT,
    SUMMARY_VALUES,
    TOTAL_VALUES,
)
from grunndata.server.fhir_io.responses import FORMATS, JSON_TYPE, XML_TYPE
from grunndata.store import SEARCHED_TYPES, STORE, params_for, sources_of
from grunndata.store.searchparams import CONTENT_FILTER_PARAM
from grunndata.translators.content_filters import VIEWS

REF = "#/components/responses/"
# status -> (component name, what it means here); every one an OperationOutcome in JSON or XML
ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "A parameter, value or body this server cannot process"),
    401: ("Unauthorized", "The bearer token is missing where one is needed, or does not verify"),
    403: ("Forbidden", "The token lacks the scope this needs (the OperationOutcome names it)"),
    404: ("NotFound", "No such resource, type, code system or import"),
    406: ("NotAcceptable", "Neither Accept nor _format names a format served here"),
    409: ("Conflict", "Another import or a reindex is running"),
    410: ("Gone", "The resource expired, or the releases a page belongs to are no longer kept"),
    413: ("ContentTooLarge", "The body is larger than GRUNNDATA_MAX_UPLOAD_BYTES"),
    415: ("UnsupportedMediaType", "The body is not in a media type this route takes"),
    422: ("Unprocessable", "The delivery was refused: one issue per problem"),
    500: ("ServerError", "A fault of ours (issue code exception; the log has it under the X-Request-ID)"),
    503: ("Unavailable", "The token issuer's keys, the store or the export cannot be reached now"),
}
REQUEST_ID_HEADER = {
    "X-Request-ID": {
        "description": "The request's id in the server log: the client's own if it sent a sane one",
        "schema": {"type": "string"},
    }
}
ID_SCHEMA = {"type": "string", "pattern": f"^{ID_PATTERN.pattern}$"}
IDS_SCHEMA = {"type": "string", "pattern": f"^{ID_PATTERN.pattern}(,{ID_PATTERN.pattern})*$"}
VERSION_SCHEMA = {"type": "string", "pattern": "^0*[1-9][0-9]{0,8}$"}  # at most 2**31 - 1, as stored
# A FHIR date/dateTime/instant with an optional prefix; the days stop at 28 so every match is a date.
DATE_SCHEMA = {
    "type": "string",
    "pattern": r"^(eq|ne|gt|lt|ge|le|sa|eb)?(19|20)[0-9]{2}(-(0[1-9]|1[0-2])(-(0[1-9]|1[0-9]|2[0-8])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]))?)?)?$",
}
CURSOR_SCHEMA = {
    "type": "string",
    "pattern": r"^(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]"
    r"\.[0-9]{6}-[dp]-[0-9]{1,18}$",
}
# Search values: one or more comma-separated values, none empty; a backslash escapes a comma.
VALUES_SCHEMA = {"type": "string", "pattern": r"^(\\[\s\S]|[^,\\])+(,(\\[\s\S]|[^,\\])+)*\\?$"}
OPERATION_OUTCOME = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"enum": ["fatal", "error", "warning", "information"]},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                },
            },
        },
    },
}
HELSEID = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "A HelseID access token; national data needs none, sector and supplementary data "
    "and imports need the scopes README's Access section lists. A token bound to the client's key "
    "is sent as `Authorization: DPoP <token>` with a `DPoP` proof header (RFC 9449), and with "
    "GRUNNDATA_DPOP=required every token must be",
}


def fhir_content(schema: dict[str, Any]) -> dict[str, Any]:
    """A FHIR answer: JSON by default, XML by Accept or _format (the same resource, as text)."""
    return {JSON_TYPE: {"schema": schema}, XML_TYPE: {"schema": {"type": "string"}}}


PAGE_ANSWERS = {
    400: "A page naming a query parameter given more than once",
    401: "A page saying the token does not verify (the page needs none)",
    503: "A page saying the token cannot be checked now",
}


def page_answers(*statuses: int, fhir: bool = False) -> dict[str, Any]:
    """A page's refusals (server/pages/guard.py) as HTML; `fhir`: the route also answers JSON, and
    asked for JSON it refuses with the OperationOutcome."""
    content: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
    if fhir:
        content |= fhir_content({"$ref": "#/components/schemas/OperationOutcome"})
    return {str(s): {"description": PAGE_ANSWERS[s], "content": content} for s in statuses}


def resource_schema(rtype: str) -> dict[str, Any]:
    return {"type": "object", "required": ["resourceType"], "properties": {"resourceType": {"const": rtype}}}


def errors(*statuses: int) -> dict[str, Any]:
    """The OperationOutcome answers `statuses`, as references to the one description of each."""
    return {str(s): {"$ref": REF + ERRORS[s][0]} for s in statuses}


def answers(content: dict[str, Any], *statuses: int, description: str = "OK") -> dict[str, Any]:
    """A route's `openapi_extra`: its 200 with `content`, and the errors it gives itself (the ones
    its dependencies give are added by `document`)."""
    return {"responses": {"200": {"description": description, "content": content}, **errors(*statuses)}}


# -- the FHIR interactions' parameters --------------------------------------------------------


FHIR_TEXT = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F]*$"
"""No character a FHIR string cannot hold: every parameter holding one is a 400 (params.Limits.check)."""


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    if schema.get("type") == "string" and "enum" not in schema:
        if "pattern" not in schema:
            schema = {**schema, "pattern": FHIR_TEXT}
        else:  # both: the parameter's own grammar, and FHIR text
            schema = {"allOf": [schema, {"type": "string", "pattern": FHIR_TEXT}]}
    return {"name": name, "in": "query", "schema": schema, "description": description}


def _header(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "schema": schema, "description": description}


NEGOTIATION = [
    _query("_format", {"type": "string", "enum": list(FORMATS)}, "The format; wins over Accept"),
    _query("_pretty", {"type": "string"}, "true: indented; any other value: as stored"),
    _header("Accept", {"type": "string"}, "The format by media type, with q-values; _format wins over it"),
]
_PREFER = _header(
    "Prefer", {"type": "string"}, "handling=strict: an unknown parameter is a 400 (otherwise ignored)"
)
_SHAPING = [
    _query("_summary", {"type": "string", "enum": list(SUMMARY_VALUES)}),
    _query("_elements", {"type": "string", "pattern": r"[^,\s]"}, "Elements to keep, comma-separated"),
]


def _value_schema(kind: str) -> dict[str, Any]:
    return DATE_SCHEMA if kind == "date" else VALUES_SCHEMA


def _includes(rtype: str) -> tuple[list[str], list[str]]:
    """What `_include` and `_revinclude` take for `rtype` (the rules of params.py's `_include`)."""

    def followable(t: str) -> Iterator[tuple[str, Any]]:
        for p in params_for(t).values():
            if p.type == "reference" and p.resource != "Resource":
                yield t, p

    includes = [f"{t}:{p.code}" for t, p in followable(rtype)]
    revincludes = sorted(
        f"{t}:{p.code}"
        for t in SEARCHED_TYPES
        if STORE in sources_of(t)
        for _, p in followable(t)
        if rtype in p.targets
    )
    return includes, revincludes


def _paging() -> list[dict[str, Any]]:
    """The paging parameters every search's links carry (R5's and R4's searches alike)."""
    return [
        _query("_count", {"type": "integer", "minimum": 0, "maximum": MAX_COUNT}),
        _query("_offset", {"type": "integer", "minimum": 0, "maximum": 10_000_000}),
        _query(
            "_snapshot",
            {"type": "string", "pattern": r"^[0-9]{1,18}(\.[0-9]{1,18})*$"},
            "The releases a page belongs to (from a next link)",
        ),
    ]


def search_parameters(rtype: str) -> list[dict[str, Any]]:
    """Every search and result parameter of `rtype`, from the search-parameter table."""
    params = []
    for p in params_for(rtype).values():
        schema = IDS_SCHEMA if p.code == "_id" else _value_schema(p.type)
        params.append(_query(p.code, schema, p.description))
        if p.type == "string":
            params += [
                _query(f"{p.code}:{m}", schema, f"{p.description} ({m})") for m in ("exact", "contains")
            ]
        if p.type == "reference" and not p.canonical and p.resource != "Resource":
            params += [_query(f"{p.code}:{t}", schema, f"{p.description} (a {t})") for t in p.targets]
    params += [*_paging(), *_SHAPING, _query("_total", {"type": "string", "enum": list(TOTAL_VALUES)})]
    if STORE in sources_of(rtype):  # a type searched only in a list cannot sort or include
        params.append(
            _query(
                CONTENT_FILTER,
                {"type": "string", "enum": list(VIEWS)},
                CONTENT_FILTER_PARAM.description,
            )
        )
        sortable = [p.code for p in params_for(rtype).values() if p.type in ("string", "token", "date")]
        sortable = [c for c in sortable if c != "_tag"]
        includes, revincludes = _includes(rtype)
        params.append(_query("_sort", {"type": "string", "enum": sortable + [f"-{c}" for c in sortable]}))
        if includes:
            params.append(_query("_include", {"type": "string", "enum": includes}))
        if revincludes:
            params.append(_query("_revinclude", {"type": "string", "enum": revincludes}))
    return params


def search_doc(rtype: str, *, post: bool = False) -> dict[str, Any]:
    """A search's parameters (as a form body for POST _search) and answers."""
    params = search_parameters(rtype)
    statuses = (400, 403, 410, 415) if post else (400, 403, 410)
    doc = answers(fhir_content(resource_schema("Bundle")), *statuses, description="A searchset Bundle")
    if not post:
        return {"parameters": [*params, *NEGOTIATION, _PREFER], **doc}
    form = {"type": "object", "properties": {p["name"]: p["schema"] for p in params}}
    return {
        "parameters": [*NEGOTIATION, _PREFER],
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form}}},
        **doc,
    }


def history_doc() -> dict[str, Any]:
    params = [
        _query("_since", DATE_SCHEMA),
        _query("_count", {"type": "integer", "minimum": 1, "maximum": 1000}),
        _query(
            "_offset", {"type": "integer", "minimum": 0, "maximum": 100_000}, "Above 100,000 with _cursor"
        ),
        _query("_cursor", CURSOR_SCHEMA, "Where the previous page ended (from a next link)"),
        _query("_snapshot", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}),
    ]
    doc = answers(fhir_content(resource_schema("Bundle")), 400, description="A history Bundle")
    return {"parameters": [*params, *NEGOTIATION, _PREFER], **doc}


def read_doc(rtype: str, *, version: bool = False) -> dict[str, Any]:
    """A read (a vread with `version`): the resource, or 304; 404, or 410 for a read of an expired one."""
    params = [
        *_SHAPING,
        *NEGOTIATION,
        _header("If-None-Match", {"type": "string"}, "An ETag from an earlier read: 304 if unchanged"),
        _header("If-Modified-Since", {"type": "string"}, "An HTTP date: 304 if not changed since"),
    ]
    doc = answers(fhir_content(resource_schema(rtype)), 400, 404, *(() if version else (410,)))
    doc["responses"]["304"] = {"description": "Not modified"}
    return {"parameters": params, **doc}


# -- the R4 view (/fhir-r4, routes/r4.py): its own search parameters -------------------


def r4_search_doc(codes: Mapping[str, str], *, post: bool = False) -> dict[str, Any]:
    """An R4 search (routes/r4.py): `codes` its search parameters (code -> what it finds), the
    paging and total parameters R5's search reads; as a form body for POST _search."""
    params = [
        _query(code, IDS_SCHEMA if code == "_id" else VALUES_SCHEMA, what) for code, what in codes.items()
    ]
    params += [*_paging(), _query("_total", {"type": "string", "enum": list(TOTAL_VALUES)})]
    doc = answers(fhir_content(resource_schema("Bundle")), 400, 410, description="A searchset Bundle")
    if not post:
        return {"parameters": [*params, *NEGOTIATION, _PREFER], **doc}
    doc["responses"].update(errors(415))
    form = {"type": "object", "properties": {p["name"]: p["schema"] for p in params}}
    return {
        "parameters": [*NEGOTIATION, _PREFER],
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form}}},
        **doc,
    }


def r4_read_doc(r4_types: Sequence[str], *, version: bool = False) -> dict[str, Any]:
    """An R4 read of one of `r4_types` (a vread with `version`; also delta/'s read, whose 410 says
    when it expired)."""
    params = [
        *NEGOTIATION,
        _header("If-None-Match", {"type": "string"}, "An ETag from an earlier read: 304 if unchanged"),
        _header("If-Modified-Since", {"type": "string"}, "An HTTP date: 304 if not changed since"),
    ]
    schema = {
        "type": "object",
        "required": ["resourceType"],
        "properties": {"resourceType": {"enum": list(r4_types)}},
    }
    doc = answers(fhir_content(schema), 400, 404, *(() if version else (410,)))
    doc["responses"]["304"] = {"description": "Not modified"}
    return {"parameters": params, **doc}


def r4_type_parameter(types: Sequence[str]) -> dict[str, Any]:
    """The `{rtype}` of an R4 route documented once for every type."""
    return {
        "name": "rtype",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": list(types)},
    }


# -- the document ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Gives:
    """What a dependency answers instead of the route (server/deps.py `OPENAPI` lists them)."""

    statuses: tuple[int, ...] = ()
    fhir: bool = False  # the route answers in FHIR's formats, JSON or XML
    token: bool = False  # the route reads a bearer token if there is one


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _validation_error(response: dict[str, Any]) -> bool:
    return "HTTPValidationError" in str(response.get("content", {}))


def _complete(op: dict[str, Any], route: RouteContext, given: Mapping[Callable[..., Any], Gives]) -> None:
    """Add to `op` what FastAPI cannot know of `route`: its dependencies' answers, 400 for what
    FastAPI's validation refuses (app.py answers it so), FHIR's formats, 500, the request id."""
    gives = [given[c] for c in _calls(route.dependant) if c in given]
    responses: dict[str, Any] = op.setdefault("responses", {})
    statuses = {s for g in gives for s in g.statuses} | {500}
    if _validation_error(responses.get("422", {})):
        del responses["422"]
        statuses.add(400)
    for status in sorted(statuses):
        responses.setdefault(str(status), {"$ref": REF + ERRORS[status][0]})
    if any(g.fhir for g in gives):  # FHIR's formats only (FastAPI put its application/json there)
        for code, response in responses.items():
            content = response.get("content", {})
            if code.startswith("2") and content:
                response["content"] = fhir_content(
                    content.get(JSON_TYPE, {}).get("schema", {"type": "object"})
                )
    if any(g.token for g in gives):
        op.setdefault("security", [{}, {"helseid": []}])  # national data needs no token
    for response in responses.values():
        if "$ref" not in response:
            response.setdefault("headers", {}).update(REQUEST_ID_HEADER)
    for param in op.get("parameters", ()):
        if param.get("in") == "path" and param["name"] in ("rid", "cid"):
            param["schema"] = ID_SCHEMA
        elif param.get("in") == "path" and param["name"] == "vid":
            param["schema"] = VERSION_SCHEMA


def document(app: FastAPI, given: Mapping[Callable[..., Any], Gives]) -> dict[str, Any]:
    """The OpenAPI document of `app`; `given` says what each dependency answers instead of a route."""
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    routes = {  # the routes as included (prefixes and the routers' dependencies applied)
        (route.path_format, method.lower()): route
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute) and route.include_in_schema
        for method in route.methods or ()
    }
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            _complete(op, routes[(path, method)], given)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["OperationOutcome"] = OPERATION_OUTCOME
    components["responses"] = {
        name: {
            "description": f"OperationOutcome: {meaning}",
            "headers": REQUEST_ID_HEADER,
            "content": fhir_content({"$ref": "#/components/schemas/OperationOutcome"}),
        }
        for name, meaning in ERRORS.values()
    }
    components["securitySchemes"] = {"helseid": HELSEID}
    return doc
