"""What the OpenAPI document says about the FHIR routes, generated from the search-parameter table.

FastAPI cannot see these parameters (the handlers read the query string themselves, as FHIR
search needs), so they are declared here, once, from the same rows that drive indexing.
"""

from __future__ import annotations

from typing import Any

from grunndata.server.fhir_io.params import SUMMARY_VALUES, TOTAL_VALUES
from grunndata.store import params_for

ID_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9\\-.]{1,64}$"}
_FORMAT = {
    "name": "_format",
    "in": "query",
    "schema": {"type": "string", "enum": ["json", "xml", "application/fhir+json", "application/fhir+xml"]},
}
_PRETTY = {"name": "_pretty", "in": "query", "schema": {"type": "string", "enum": ["true", "false"]}}
_ACCEPT = {
    "name": "Accept",
    "in": "header",
    "schema": {"type": "string", "enum": ["application/fhir+json", "application/fhir+xml", "*/*"]},
}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def _responses() -> dict[str, Any]:
    resource = {"schema": {"type": "object"}}
    return {
        "200": {"description": "FHIR resource or Bundle", "content": {"application/fhir+json": resource}},
        "400": {"description": "OperationOutcome: a bad parameter"},
        "404": {"description": "OperationOutcome: not known"},
        "406": {"description": "OperationOutcome: format not served"},
    }


def search_doc(rtype: str, *, post: bool = False) -> dict[str, Any]:
    """Every search and result parameter of `rtype`; as a form body for POST _search."""
    params = []
    for p in params_for(rtype).values():
        schema: dict[str, Any] = {"type": "string"}
        params.append(_query(p.code, schema, p.description))
        if p.type == "string":
            params += [
                _query(f"{p.code}:{m}", schema, f"{p.description} ({m})") for m in ("exact", "contains")
            ]
    params += [
        _query("_count", {"type": "integer", "minimum": 0, "maximum": 1000}),
        _query("_offset", {"type": "integer", "minimum": 0}),
        _query("_snapshot", {"type": "string"}, "The releases a page belongs to (from a next link)"),
        _query("_sort", {"type": "string"}),
        _query("_include", {"type": "string"}),
        _query("_revinclude", {"type": "string"}),
        _query("_summary", {"type": "string", "enum": list(SUMMARY_VALUES)}),
        _query("_elements", {"type": "string"}),
        _query("_total", {"type": "string", "enum": list(TOTAL_VALUES)}),
    ]
    headers = [
        _ACCEPT,
        {
            "name": "Prefer",
            "in": "header",
            "schema": {"type": "string", "enum": ["handling=strict", "handling=lenient"]},
        },
    ]
    if not post:
        return {"parameters": [*params, _FORMAT, _PRETTY, *headers], "responses": _responses()}
    form = {
        "type": "object",
        "properties": {p["name"]: p["schema"] for p in params},
    }
    return {
        "parameters": [_FORMAT, _PRETTY, *headers],
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form}}},
        "responses": _responses(),
    }


def read_doc(*, version: bool = False, history: bool = False) -> dict[str, Any]:
    params: list[dict[str, Any]] = [_FORMAT, _PRETTY, _ACCEPT]
    if history:
        params += [
            _query("_since", {"type": "string", "format": "date-time"}),
            _query("_count", {"type": "integer", "minimum": 1, "maximum": 1000}),
            _query("_offset", {"type": "integer", "minimum": 0}),
            _query("_cursor", {"type": "string", "pattern": r"^\d{8}T\d{6}\.\d{6}-[dp]-\d{1,18}$"}),
        ]
    else:
        params += [
            _query("_summary", {"type": "string", "enum": list(SUMMARY_VALUES)}),
            _query("_elements", {"type": "string"}),
            {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
            {"name": "If-Modified-Since", "in": "header", "schema": {"type": "string"}},
        ]
    doc: dict[str, Any] = {"parameters": params, "responses": _responses()}
    if version:
        doc["responses"]["304"] = {"description": "Not modified"}
        doc["responses"]["410"] = {"description": "OperationOutcome: expired"}
    return doc
