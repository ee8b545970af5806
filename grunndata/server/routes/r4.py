"""The national data as FHIR R4 in DMP's SAFEST shape at /fhir-r4, beside R5 at /fhir, from one store.

A SAFEST client changes only its base URL. The answers are the R5 interactions' (routes/fhir.py: the
same store, snapshots, paging and access rules), each resource made R4 by translators/safest/to_r4.py
on the way out; a made R4 body is kept per stored version (server/r4view.py), and a plain read of
one is answered by the fast path, as an R5 read is. JSON only for now: the XML writer orders elements by R5's definitions.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from grunndata import store
from grunndata.server.access import access_of
from grunndata.server.deps import Asked, limits_of
from grunndata.server.fhir_io import bundles
from grunndata.server.fhir_io.params import ID_PATTERN, bad, strict
from grunndata.server.fhir_io.responses import FhirError, negotiate, send
from grunndata.server.r4view import R5_OF_R4, R4Cache
from grunndata.server.routes import fhir as r5
from grunndata.translators.safest.to_r4 import PROFILES, R4_OF_R5, SAFEST_TYPES, to_r4

SEARCH_PARAMS = ("identifier", "_id")
"""The R4 search parameters: the R5 ones of the same name (a varenr, GTIN or FEST id in any form)."""
KEPT_PARAMS = frozenset((*SEARCH_PARAMS, "_count", "_offset", "_snapshot", "_total", "_format", "_pretty"))

router = APIRouter(prefix="/fhir-r4", tags=["FHIR R4 (SAFEST)"])


def _cache(request: Request) -> R4Cache:
    cache: R4Cache = request.app.state.r4_cache
    return cache


async def asked_r4(request: Request) -> Asked:
    """As the R5 routes' dependency: the type (an R4 SAFEST type; 404 otherwise), id, bounds,
    format (JSON), token; `rtype` is the R5 type it is served from."""
    served = request.app.state.served
    r4_type = request.path_params.get("rtype")
    rtype = ""
    if r4_type is not None:
        if r4_type not in R5_OF_R4:
            raise FhirError(
                404,
                "not-supported",
                f"{r4_type!r} is not served as R4; the SAFEST types are {', '.join(SAFEST_TYPES)} "
                "(the rest of the data is R5 only, at /fhir)",
            )
        rtype = R5_OF_R4[r4_type]
    rid = request.path_params.get("rid")
    if rid is not None and not ID_PATTERN.fullmatch(rid):
        raise bad(f"{rid!r} is not a valid resource id")
    limits = limits_of(request)
    if negotiate(request) != "json":
        raise FhirError(
            406, "not-supported", "/fhir-r4 answers in application/fhir+json only (R4 XML is to come)"
        )
    return Asked(served, access_of(request, served.auth), limits, "json", rtype)


R4Asked = Annotated[Asked, Depends(asked_r4)]


# -- the handlers ---------------------------------------------------------------------------


async def metadata(request: Request, asked: R4Asked) -> Response:
    return send(request, "json", capability_statement(_base(request)))


async def read(request: Request, asked: R4Asked, rtype: str, rid: str) -> Response:
    return await run_in_threadpool(_read, request, asked, rid)


async def vread(request: Request, asked: R4Asked, rtype: str, rid: str, vid: str) -> Response:
    try:
        answer = await r5.vread(request, asked, rid, vid)
    except FhirError as error:
        raise _in_r4_words(error, asked.rtype) from None
    return await run_in_threadpool(_resource_answer, request, asked, answer)


async def search(request: Request, asked: R4Asked, rtype: str) -> Response:
    items = [(k, v) for k, v in request.query_params.multi_items() if k in KEPT_PARAMS]
    unknown = sorted({k for k, _ in request.query_params.multi_items()} - KEPT_PARAMS)
    if unknown and strict(request.headers.get("prefer", "")):
        raise bad(
            f"unknown R4 search parameter {unknown[0]!r}; /fhir-r4 searches by {', '.join(SEARCH_PARAMS)}"
        )
    answer = await run_in_threadpool(r5._search, request, asked, items, [])
    return _bundle_answer(request, asked, answer)


async def instance_history(request: Request, asked: R4Asked, rtype: str, rid: str) -> Response:
    try:
        answer = await run_in_threadpool(r5._history, request, asked, asked.rtype, rid)
    except FhirError as error:
        raise _in_r4_words(error, asked.rtype) from None
    return _bundle_answer(request, asked, answer)


def _in_r4_words(error: FhirError, rtype: str) -> FhirError:
    """The R5 interaction's error, naming the resource by its R4 type."""
    message = error.message.replace(f"{rtype}/", f"{R4_OF_R5[rtype]}/")
    return FhirError(error.status, error.code, message, error.headers, error.details)


# -- the work -------------------------------------------------------------------------------


def _read(request: Request, asked: Asked, rid: str) -> Response:
    rtype = asked.rtype
    prepared = asked.served.read(rtype, rid, asked.access)
    if prepared is None:
        with asked.served.engine.connect() as conn:
            gone = store.ever_served(conn, rtype, rid, asked.access)
        r4_name = f"{R4_OF_R5[rtype]}/{rid}"
        if gone:
            raise FhirError(410, "deleted", f"{r4_name} is no longer served (it expired)")
        raise FhirError(404, "not-found", f"{r4_name} is not known")
    body = _cache(request).prepared(prepared).body
    return r5._read_response(request, "json", prepared.version, None, body)


def _resource_answer(request: Request, asked: Asked, answer: Response) -> Response:
    """An R5 read answer made R4 (a 304 as it is)."""
    if answer.status_code != 200:
        return answer
    made = to_r4(orjson.loads(bytes(answer.body)))
    return _sent(answer, orjson.dumps(made))


def _bundle_answer(request: Request, asked: Asked, answer: Response) -> Response:
    """An R5 Bundle answer made R4: each entry's resource (and fullUrl), and the links, on /fhir-r4."""
    bundle = orjson.loads(bytes(answer.body))
    r5_base, r4_base = bundles.base_url(request), _base(request)
    for entry in bundle.get("entry", []):
        resource = entry.get("resource")
        if isinstance(resource, dict) and resource.get("resourceType") in R4_OF_R5:
            entry["resource"] = to_r4(resource)
        entry["fullUrl"] = _r4_url(str(entry.get("fullUrl", "")), r5_base, r4_base)
        request_part = entry.get("request")
        if isinstance(request_part, dict) and isinstance(request_part.get("url"), str):
            request_part["url"] = _r4_path(request_part["url"])
    for link in bundle.get("link", []):
        link["url"] = _r4_url(str(link.get("url", "")), r5_base, r4_base)
    return _sent(answer, orjson.dumps(bundle))


def _sent(answer: Response, body: bytes) -> Response:
    headers = {k: v for k, v in answer.headers.items() if k.lower() not in ("content-length", "content-type")}
    return Response(
        body, answer.status_code, headers=headers, media_type="application/fhir+json; charset=utf-8"
    )


def _r4_path(path: str) -> str:
    """``PackagedProductDefinition/x...`` (or ``...?query``) -> ``MedicinalProductPackaged/x...``."""
    end = min((i for i in (path.find("/"), path.find("?")) if i >= 0), default=len(path))
    head = path[:end]
    return R4_OF_R5.get(head, head) + path[end:]


def _r4_url(url: str, r5_base: str, r4_base: str) -> str:
    if not url.startswith(r5_base + "/"):
        return url
    return f"{r4_base}/{_r4_path(url[len(r5_base) + 1 :])}"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir-r4"


def capability_statement(base: str) -> bytes:
    """What /fhir-r4 serves, in R4: the SAFEST types, read, vread, history of an instance, search by
    identifier and _id; each resource in its SAFEST profile."""
    resources: list[dict[str, Any]] = [
        {
            "type": r4_type,
            "profile": PROFILES[r4_type],
            "interaction": [{"code": c} for c in ("read", "vread", "search-type", "history-instance")],
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": False,
            "conditionalRead": "full-support",
            "searchParam": [
                {
                    "name": "identifier",
                    "type": "token",
                    "documentation": "varenr, GTIN or FEST id, in any of its forms",
                },
                {"name": "_id", "type": "token"},
            ],
        }
        for r4_type in SAFEST_TYPES
    ]
    statement = {
        "resourceType": "CapabilityStatement",
        "id": "grunndata-r4",
        "url": f"{base}/metadata",
        "name": "GrunndataR4",
        "title": "Grunndata: the national data as FHIR R4 in DMP's SAFEST profiles",
        "status": "active",
        "date": "2026-12-07",
        "publisher": "Grunndata",
        "description": "The SAFEST R4 types made from the same store the R5 API at /fhir serves; read-only.",
        "kind": "instance",
        "software": {"name": "grunndata"},
        "implementation": {"description": "Grunndata FHIR R4 (SAFEST) view", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Read-only. The same data, snapshots and access rules as the R5 API at /fhir: "
                    "sector and supplementary data only with their scopes. R5 elements R4 has no place "
                    "for travel as extensions https://grunndata.no/fhir/StructureDefinition/r5-<R5 path>."
                ),
                "resource": resources,
            }
        ],
    }
    return orjson.dumps(statement)


# not in the OpenAPI document yet (its answers are not described per SAFEST type); the
# CapabilityStatement at /fhir-r4/metadata lists what is served
for _path, _endpoint in (
    ("/metadata", metadata),
    ("/{rtype}", search),
    ("/{rtype}/{rid}", read),
    ("/{rtype}/{rid}/_history", instance_history),
    ("/{rtype}/{rid}/_history/{vid}", vread),
):
    router.add_api_route(_path, _endpoint, methods=["GET"], include_in_schema=False)
