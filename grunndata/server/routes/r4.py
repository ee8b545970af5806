"""The national data as FHIR R4 in DMP's SAFEST shape at /fhir-r4, beside R5 at /fhir, from one store.

A SAFEST client changes only its base URL. The same routes answer at /fhir-r4-hresept with DMP's
H-resept content filters applied (translators/content_filters.py; each switchable by a setting):
a search leaves out what the view excludes, a read of an excluded resource is a 404 there. The answers are the R5 interactions' (routes/fhir.py: the
same store, snapshots, paging and access rules), each resource made R4 by translators/safest/to_r4.py
on the way out; a made R4 body is kept per stored version (server/r4view.py), and a plain read of
one is answered by the fast path, as an R5 read is. JSON or XML: the R5 interactions answer in JSON,
and the R4 made of it is written as XML by the R4 definitions (fhir_io/fhirxml.py) when asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import quote, unquote_plus

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from grunndata import store
from grunndata.server.access import access_of
from grunndata.server.deps import Asked, limits_of
from grunndata.server.fhir_io import bundles
from grunndata.server.fhir_io.params import ID_PATTERN, INCLUDES, bad, strict
from grunndata.server.fhir_io.responses import FhirError, answer_in_r4, fhir_version, negotiate, send
from grunndata.server.r4view import R5_OF_R4, R4Cache
from grunndata.server.routes import fhir as r5
from grunndata.store.searchparams import R4_BARCODE_TYPES, r4_barcode_param
from grunndata.translators.content_filters import H_RESEPT, enabled
from grunndata.translators.safest.to_r4 import PROFILES, R4_OF_R5, SAFEST_TYPES, to_r4

SEARCH_PARAMS = ("identifier", "_id")
"""The R4 search parameters: the R5 ones of the same name (a varenr, GTIN or FEST id in any form)."""
KEPT_PARAMS = frozenset((*SEARCH_PARAMS, "_count", "_offset", "_snapshot", "_total", "_format", "_pretty"))
BARCODE_PARAMS = {
    "MedicinalProductPackaged": (
        "package-item-level-one",
        "package-item-level-two",
        "package-item-level-three",
    ),
    "MedicinalProductManufactured": ("barcode",),
}
"""DMP's product-code parameters per R4 type (and our `barcode` on the item), each answered by the
R5 parameter `searchparams.r4_barcode_param` names; an entry says where the code was found."""
assert set(BARCODE_PARAMS) <= set(R4_BARCODE_TYPES)

R4_PARAMS: dict[str, dict[str, str]] = {
    "MedicinalProduct": {"name": "name", "name-language": "name-language"},
    "MedicinalProductPackaged": {"subject": "package-for"},
}
"""R4's own search parameters of the SAFEST types (the R4 specification; MedicinalProductManufactured
has none) and the R5 parameter that answers each."""
COMMON_PARAMS = ("_lastUpdated", "_tag")
"""Parameters of every type (as Azure API for FHIR, DMP's platform, offers them), as in R5."""
SORTS = frozenset(("_id", "_lastUpdated"))
"""What an R4 `_sort` may name (besides the R4 string and token parameters of the type)."""
R4_RESULT_PARAMS = ("_summary", "_sort", "_include", "_revinclude")
"""Result parameters translated to R5 (`_summary=count` only: the other summaries are R5's elements)."""

R4_PREFIX, HRESEPT_PREFIX = "/fhir-r4", "/fhir-r4-hresept"
VIEWS = {R4_PREFIX: None, HRESEPT_PREFIX: H_RESEPT}
"""Each R4 base and the content-filter view (translators/content_filters.py VIEWS) it serves."""
CONTENT_FILTER = "content-filter"

router = APIRouter(prefix=R4_PREFIX, tags=["FHIR R4 (SAFEST)"])
hresept_router = APIRouter(prefix=HRESEPT_PREFIX, tags=["FHIR R4 (SAFEST), H-resept view"])


def _prefix(request: Request) -> str:
    """The R4 base the request came by (/fhir-r4 or /fhir-r4-hresept): its route's prefix."""
    route = request.scope.get("route")
    path = getattr(route, "path", "")
    return HRESEPT_PREFIX if path.startswith(HRESEPT_PREFIX + "/") else R4_PREFIX


def _excluded(request: Request) -> tuple[str, ...]:
    """The content-filter codes the base applies (none on /fhir-r4; the settings' switches respected)."""
    return enabled(VIEWS[_prefix(request)], request.app.state.settings.content_filters_on())


def _check_view(asked: Asked, request: Request, pk: int, name: str) -> None:
    """A 404 for a version the base's view leaves out (as if it were not there)."""
    codes = _excluded(request)
    if not codes:
        return
    with asked.served.engine.connect() as conn:
        out = store.excluded_of(conn, asked.served.snapshot(), [pk], codes)
    if out:
        raise FhirError(
            404, "not-found", f"{name} is not in the H-resept view (left out by {', '.join(sorted(out[pk]))})"
        )


def _cache(request: Request) -> R4Cache:
    cache: R4Cache = request.app.state.r4_cache
    return cache


async def asked_r4(request: Request) -> Asked:
    """As the R5 routes' dependency: the type (an R4 SAFEST type; 404 otherwise), id, bounds,
    format, token; `rtype` is the R5 type it is served from. `fmt` is JSON, the R5 interactions'
    answer: the R4 made of it is sent in the format asked (`negotiate` again) by `send`."""
    answer_in_r4(request)  # its XML, an error's too, by the R4 definitions
    served = request.app.state.served
    r4_type = request.path_params.get("rtype")
    rtype = ""
    if r4_type is not None:
        if r4_type not in R5_OF_R4:
            raise FhirError(
                404,
                "not-supported",
                f"{r4_type[:100]!r} is not served as R4; the SAFEST types are {', '.join(SAFEST_TYPES)} "
                "(the rest of the data is R5 only, at /fhir)",
            )
        rtype = R5_OF_R4[r4_type]
    rid = request.path_params.get("rid")
    if rid is not None and not ID_PATTERN.fullmatch(rid):
        raise bad(f"{rid!r} is not a valid resource id")
    limits = limits_of(request)
    negotiate(request)  # a format not served is a 406 here, before any work
    if fhir_version(request) == "5.0":
        raise FhirError(406, "not-supported", f"{_prefix(request)} answers in FHIR R4 (4.0); R5 is at /fhir")
    return Asked(served, access_of(request, served.auth), limits, "json", rtype)


R4Asked = Annotated[Asked, Depends(asked_r4)]


# -- the handlers ---------------------------------------------------------------------------


async def metadata(request: Request, asked: R4Asked) -> Response:
    return send(request, negotiate(request), capability_statement(_base(request), VIEWS[_prefix(request)]))


async def read(request: Request, asked: R4Asked, rtype: str, rid: str) -> Response:
    return await run_in_threadpool(_read, request, asked, rid)


async def vread(request: Request, asked: R4Asked, rtype: str, rid: str, vid: str) -> Response:
    try:
        # the R5 interaction itself, not its route: that one answers R4 already when the Accept
        # header names fhirVersion=4.0, and making R4 of R4 gave `null`
        answer = await r5._vread(request, asked, rid, vid)
    except FhirError as error:
        raise _in_r4_words(error, asked.rtype) from None
    if _excluded(request):
        await run_in_threadpool(_check_current, request, asked, rid)
    return await run_in_threadpool(_resource_answer, request, answer)


async def search(request: Request, asked: R4Asked, rtype: str) -> Response:
    barcodes = {code for code in BARCODE_PARAMS.get(rtype, ()) if r4_barcode_param(rtype, code) is not None}
    kept = KEPT_PARAMS | barcodes
    given = request.query_params.multi_items()
    asked.limits.check(given)  # every parameter counts against the bounds, also one left unanswered
    # a search parameter with a modifier goes on, so that R5's parse answers it or refuses it with a
    # 400 (`identifier:missing` left out would answer every package as if it matched)
    searched = {*SEARCH_PARAMS, *barcodes, *COMMON_PARAMS}
    items, unknown_names = [], set()
    for k, v in given:
        if k in kept or k.split(":", 1)[0] in searched:
            items.append((k, v))
            continue
        translated = _r5_item(rtype, k, v)
        if translated is None:
            unknown_names.add(k)
        else:
            items.append(translated)
    unknown = sorted(unknown_names)
    if unknown and strict(request.headers.get("prefer", "")):
        known = ", ".join((*SEARCH_PARAMS, *R4_PARAMS.get(rtype, {}), *COMMON_PARAMS, *sorted(barcodes)))
        raise bad(f"unknown R4 search parameter {unknown[0][:100]!r}; {_prefix(request)} searches by {known}")
    if VIEWS[_prefix(request)] is not None:
        items.append((CONTENT_FILTER, str(VIEWS[_prefix(request)])))
    answer = await run_in_threadpool(r5._search, request, asked, items, [])
    return _bundle_answer(request, asked, answer, unknown)


async def instance_history(request: Request, asked: R4Asked, rtype: str, rid: str) -> Response:
    if _excluded(request):
        await run_in_threadpool(_check_current, request, asked, rid)
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
    _check_view(asked, request, prepared.version.pk, f"{R4_OF_R5[rtype]}/{rid}")
    body = _cache(request).prepared(prepared).body
    return r5._read_response(request, negotiate(request), prepared.version, None, body)


def _check_current(request: Request, asked: Asked, rid: str) -> None:
    """In a filtered view: a 404 for a resource whose served version the view leaves out (its
    history and versions with it: the view is judged on what the release serves)."""
    prepared = asked.served.read(asked.rtype, rid, asked.access)
    if prepared is not None:
        _check_view(asked, request, prepared.version.pk, f"{R4_OF_R5[asked.rtype]}/{rid}")


def _resource_answer(request: Request, answer: Response) -> Response:
    """An R5 read answer made R4 (a 304 as it is)."""
    if answer.status_code != 200:
        return answer
    made = to_r4(orjson.loads(bytes(answer.body)))
    return _sent(request, answer, orjson.dumps(made))


def _bundle_answer(request: Request, asked: Asked, answer: Response, ignored: Sequence[str] = ()) -> Response:
    """An R5 Bundle answer made R4: each entry's resource (and fullUrl), and the links, on /fhir-r4;
    a warning outcome for each parameter the R4 search `ignored` (as the R5 search gives one)."""
    bundle = orjson.loads(bytes(answer.body))
    if ignored and answer.status_code == 200:
        issues = [
            {
                "severity": "warning",
                "code": "not-supported",
                "diagnostics": f"ignored search parameter {name[:100]!r} (unknown for {R4_OF_R5.get(asked.rtype, asked.rtype)} over R4)",
            }
            for name in ignored
        ]
        outcome = {"resourceType": "OperationOutcome", "issue": issues}
        bundle.setdefault("entry", []).append(
            {"fullUrl": "urn:grunndata:r4-search-outcome", "resource": outcome, "search": {"mode": "outcome"}}
        )
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
        url = _without_view(str(link.get("url", "")))
        head, question, query = url.partition("?")
        if question and asked.rtype:
            url = f"{head}?{_r4_query(asked.rtype, query)}"
        link["url"] = _r4_url(url, r5_base, r4_base)
    return _sent(request, answer, orjson.dumps(bundle))


def _sent(request: Request, answer: Response, body: bytes) -> Response:
    """The R4 `body` in the format asked, with the R5 answer's status and headers."""
    headers = {k: v for k, v in answer.headers.items() if k.lower() not in ("content-length", "content-type")}
    return send(request, negotiate(request), body, status=answer.status_code, headers=headers)


def _r5_ref(value: str) -> str:
    """``MedicinalProduct/x`` -> ``MedicinalProductDefinition/x`` (a reference value or a type)."""
    head, slash, tail = value.partition("/")
    return R5_OF_R4.get(head, head) + slash + tail


def _r5_item(rtype: str, name: str, value: str) -> tuple[str, str] | None:
    """An R4 search parameter (R4_PARAMS, R4_RESULT_PARAMS) as the R5 search asks it; None for
    one the R4 view does not answer (ignored, or a 400 with handling=strict)."""
    code, colon, modifier = name.partition(":")
    own = R4_PARAMS.get(rtype, {})
    if code in own:
        r5_modifier = _r5_ref(modifier) if modifier in R5_OF_R4 else modifier
        r5_value = ",".join(_r5_ref(v) for v in value.split(",")) if code == "subject" else value
        return own[code] + (colon + r5_modifier), r5_value
    if name == "_summary":
        return (name, value) if value == "count" else None
    if name == "_sort":
        keys = [k.lstrip("-") for k in value.split(",")]
        if not all(k in SORTS or k in own for k in keys):
            return None
        return name, ",".join(
            ("-" if k.startswith("-") else "") + own.get(k.lstrip("-"), k.lstrip("-"))
            for k in value.split(",")
        )
    if name in INCLUDES:
        source, _, rest = value.partition(":")
        param, _, target = rest.partition(":")
        r5_param = R4_PARAMS.get(source, {}).get(param)
        if r5_param is None or (target and target not in R5_OF_R4):
            return None
        return name, ":".join((R5_OF_R4[source], r5_param, *((R5_OF_R4[target],) if target else ())))
    return None


_R4_OF_R5_PARAM = {
    (R5_OF_R4[r4_type], r5): r4 for r4_type, params in R4_PARAMS.items() for r4, r5 in params.items()
}


def _r4_query(rtype: str, query: str) -> str:
    """A link's query (written by the R5 search) in R4's parameter names and types again."""
    out = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        name_decoded, value_decoded = unquote_plus(name), unquote_plus(value)
        code, colon, modifier = name_decoded.partition(":")
        r4 = _R4_OF_R5_PARAM.get((rtype, code))
        if r4 is not None:
            modifier = R4_OF_R5.get(modifier, modifier)
            value_decoded = (
                ",".join(_r4_path(v) for v in value_decoded.split(",")) if r4 == "subject" else value_decoded
            )
            out.append(f"{quote(r4 + colon + modifier, safe=':')}{eq}{quote(value_decoded, safe=',:/')}")
        elif name_decoded in INCLUDES:
            parts = value_decoded.split(":")
            source = R4_OF_R5.get(parts[0], parts[0])
            param = _R4_OF_R5_PARAM.get((parts[0], parts[1]), parts[1]) if len(parts) > 1 else ""
            target = [R4_OF_R5.get(p, p) for p in parts[2:]]
            out.append(f"{name}={quote(':'.join([source, param, *target]), safe=':')}")
        elif name_decoded == "_sort":
            keys = [
                ("-" if k.startswith("-") else "")
                + _R4_OF_R5_PARAM.get((rtype, k.lstrip("-")), k.lstrip("-"))
                for k in value_decoded.split(",")
            ]
            out.append(f"_sort={quote(','.join(keys), safe=',')}")
        else:
            out.append(pair)
    return "&".join(out)


def _without_view(url: str) -> str:
    """A link without the content-filter parameter the base added (its base says the view)."""
    head, _, query = url.partition("?")
    if not query:
        return url
    parts = [p for p in query.split("&") if not p.startswith(CONTENT_FILTER + "=")]
    return f"{head}?{'&'.join(parts)}"


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
    return str(request.base_url).rstrip("/") + _prefix(request)


def capability_statement(base: str, view: str | None = None) -> bytes:
    """What an R4 base serves, in R4: the SAFEST types, read, vread, history of an instance, search by
    identifier and _id (and DMP's product-code parameters); each resource in its SAFEST profile.
    `view`: the content-filter view the base applies (/fhir-r4-hresept: h-resept)."""
    resources: list[dict[str, Any]] = [
        {
            "type": r4_type,
            "profile": PROFILES[r4_type],
            "interaction": [{"code": c} for c in ("read", "vread", "search-type", "history-instance")],
            **({"searchInclude": [f"{r4_type}:subject"]} if r4_type == "MedicinalProductPackaged" else {}),
            **(
                {"searchRevInclude": ["MedicinalProductPackaged:subject"]}
                if r4_type == "MedicinalProduct"
                else {}
            ),
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
                {"name": "_lastUpdated", "type": "date"},
                {
                    "name": "_tag",
                    "type": "token",
                    "documentation": "the tier (national, sector, supplementary)",
                },
                *(
                    {
                        "name": code,
                        "type": {"subject": "reference", "name": "string"}.get(code, "token"),
                        "documentation": f"answered by the R5 parameter {r5_code}",
                    }
                    for code, r5_code in R4_PARAMS.get(r4_type, {}).items()
                ),
                *(
                    {
                        "name": code,
                        "type": "token",
                        "documentation": (
                            "a product code (GTIN) at this packaging level; the entry's search "
                            "extension says where it was found"
                            if code.startswith("package-item-level-")
                            else "the item's product code (GTIN)"
                        ),
                    }
                    for code in BARCODE_PARAMS.get(r4_type, ())
                ),
            ],
        }
        for r4_type in SAFEST_TYPES
    ]
    viewed = (
        f" DMP's {view} content filters applied (docs/h-resept-filters.md): what they exclude is "
        "neither found nor read here."
        if view
        else ""
    )
    statement = {
        "resourceType": "CapabilityStatement",
        "id": "grunndata-r4" + (f"-{view}" if view else ""),
        "url": f"{base}/metadata",
        "name": "GrunndataR4",
        "title": "Grunndata: the national data as FHIR R4 in DMP's SAFEST profiles",
        "status": "active",
        "date": "2026-12-07",
        "publisher": "Grunndata",
        "description": "The SAFEST R4 types made from the same store the R5 API at /fhir serves; read-only."
        + viewed,
        "kind": "instance",
        "software": {"name": "grunndata"},
        "implementation": {"description": "Grunndata FHIR R4 (SAFEST) view", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Read-only. The same data, snapshots and access rules as the R5 API at /fhir: "
                    "sector and supplementary data only with their scopes. R5 elements R4 has no place "
                    "for travel as extensions https://grunndata.no/fhir/StructureDefinition/r5-<R5 path>."
                    + viewed
                ),
                "resource": resources,
            }
        ],
    }
    return orjson.dumps(statement)


# not in the OpenAPI document yet (its answers are not described per SAFEST type); the
# CapabilityStatement at <base>/metadata lists what is served. The same handlers on both bases:
# each asks `_prefix` which it was reached by.
for _router in (router, hresept_router):
    for _path, _endpoint in (
        ("/metadata", metadata),
        ("/{rtype}", search),
        ("/{rtype}/{rid}", read),
        ("/{rtype}/{rid}/_history", instance_history),
        ("/{rtype}/{rid}/_history/{vid}", vread),
    ):
        _router.add_api_route(_path, _endpoint, methods=["GET"], include_in_schema=False)
