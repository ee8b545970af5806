"""The national data as FHIR R4 in DMP's SAFEST shape at /fhir-r4, beside R5 at /fhir, from one store.

A SAFEST client changes only its base URL. The same routes answer at /fhir-r4-hresept with DMP's
H-resept content filters applied (translators/content_filters.py; each switchable by a setting):
a search leaves out what the view excludes, a read of an excluded resource is a 404 there. The answers are the R5 interactions' (routes/fhir.py: the
same store, snapshots, paging and access rules), each resource made R4 by translators/safest/to_r4.py
(a CodeSystem by translators/safest/codesystem.py) on the way out; a made R4 body is kept per stored
version (server/r4view.py), and a plain read of one is answered by the fast path, as an R5 read is.
JSON or XML: the R5 interactions answer in JSON, and the R4 made of it is written as XML by the R4
definitions (fhir_io/fhirxml.py) when asked.

DMP's `delta/` (`<base>/delta[/<type>[/<id>[/_history[/<vid>]]]]`, docs/r4-view.md) is the R5
history: every version the store keeps, expiries as DELETE entries, paged by the same links.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from grunndata.server.fhir_io.openapi import (
    NEGOTIATION,
    Gives,
    answers,
    fhir_content,
    history_doc,
    r4_read_doc,
    r4_search_doc,
    r4_type_parameter,
    resource_schema,
)
from grunndata.server.fhir_io.params import ID_PATTERN, INCLUDES, bad, form_items, strict
from grunndata.server.fhir_io.responses import FhirError, answer_in_r4, fhir_version, negotiate, send
from grunndata.server.r4view import R4_OF_SERVED, R5_OF_R4, R4Cache, r4_of
from grunndata.server.routes import fhir as r5
from grunndata.store import instant
from grunndata.store.searchparams import R4_BARCODE_TYPES, params_for, r4_barcode_param
from grunndata.translators.content_filters import H_RESEPT, enabled
from grunndata.translators.safest.codesystem import CODE_SYSTEM
from grunndata.translators.safest.to_r4 import PROFILES, R4_OF_R5, SAFEST_TYPES

R4_TYPES = (*SAFEST_TYPES, CODE_SYSTEM)
"""What /fhir-r4 serves, as DMP's service does: the SAFEST types and CodeSystem."""
SEARCH_PARAMS = ("identifier", "_id")
"""The R4 search parameters: the R5 ones of the same name (a varenr, GTIN or FEST id in any form)."""
TYPE_SEARCH_PARAMS = {CODE_SYSTEM: ("url", "_id", "identifier", "name", "version", "status")}
"""A type's own R4 search parameters where they are not SEARCH_PARAMS (R5's, which R4 has too)."""
assert all(set(codes) <= set(params_for(t)) for t, codes in TYPE_SEARCH_PARAMS.items())
KEPT_PARAMS = frozenset(("_count", "_offset", "_snapshot", "_total", "_format", "_pretty"))
DELTA = "delta"
DELTA_START = "https://grunndata.no/fhir/StructureDefinition/delta-starts-at-release"
"""A delta Bundle's meta extension: the oldest release the store keeps, where the delta begins."""
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


def _route_type(request: Request) -> str | None:
    """The R4 type a route is about: the generic routes' `{rtype}`, or the type a documented route
    was made for (its path is <base>[/delta]/<type>/...); None for metadata and system histories."""
    r4_type = request.path_params.get("rtype")
    if r4_type is not None:
        return str(r4_type)
    parts = request.scope["route"].path_format.split("/")[2:]
    if parts[:1] == [DELTA]:
        parts = parts[1:]
    return parts[0] if parts and parts[0] in R5_OF_R4 else None


async def asked_r4(request: Request) -> Asked:
    """As the R5 routes' dependency: the type (an R4 type served here; 404 otherwise), id, bounds,
    format, token; `rtype` is the R5 type it is served from. `fmt` is JSON, the R5 interactions'
    answer: the R4 made of it is sent in the format asked (`negotiate` again) by `send`."""
    answer_in_r4(request)  # its XML, an error's too, by the R4 definitions
    served = request.app.state.served
    r4_type = _route_type(request)
    rtype = ""
    if r4_type is not None:
        _check_path(request, r4_type)
        if r4_type not in R5_OF_R4:
            raise FhirError(
                404,
                "not-supported",
                f"{r4_type[:100]!r} is not served as R4; the SAFEST types are {', '.join(R4_TYPES)} "
                "(the rest of the data is R5 only, at /fhir)",
            )
        rtype = R5_OF_R4[r4_type]
    rid = request.path_params.get("rid")
    if rid is not None and not ID_PATTERN.fullmatch(rid):
        raise bad(f"{rid!r} is not a valid resource id")
    limits = limits_of(request)
    limits.check(list(request.query_params.multi_items()))  # as every route: no text FHIR cannot hold
    negotiate(request)  # a format not served is a 406 here, before any work
    if fhir_version(request) == "5.0":
        raise FhirError(406, "not-supported", f"{_prefix(request)} answers in FHIR R4 (4.0); R5 is at /fhir")
    return Asked(served, access_of(request, served.auth), limits, "json", rtype)


def _check_path(request: Request, r4_type: str) -> None:
    """A path the R4 routes took for another pattern is answered by what it was meant to be: DMP's
    delta malformed (`delta/<type>/_history/1` reaches vread with `delta` as the type) or an
    operation (`<type>/$export` reaches read with `$export` as the id)."""
    base = _prefix(request)
    if r4_type == DELTA:
        raise FhirError(
            404,
            "not-found",
            f"DMP's delta is {base}/{DELTA}[/<type>[/<id>[/_history[/<vid>]]]]; "
            f"{request.url.path[:200]!r} is none of these",
        )
    operation = r4_type if r4_type.startswith("$") else request.path_params.get("rid", "")
    if str(operation).startswith("$"):
        raise FhirError(
            404,
            "not-supported",
            f"{str(operation)[:100]!r} is not an operation of {base}: the R4 view serves read, vread, "
            "search, history and delta; the operations ($export, $everything, $translate, ...) are at /fhir",
        )


R4Asked = Annotated[Asked, Depends(asked_r4)]


# -- the handlers ---------------------------------------------------------------------------


async def metadata(request: Request, asked: R4Asked) -> Response:
    return send(request, negotiate(request), capability_statement(_base(request), VIEWS[_prefix(request)]))


async def read(request: Request, asked: R4Asked, rid: str) -> Response:
    return await run_in_threadpool(_read, request, asked, rid)


async def vread(request: Request, asked: R4Asked, rid: str, vid: str) -> Response:
    try:
        # the R5 interaction itself, not its route: that one answers R4 already when the Accept
        # header names fhirVersion=4.0, and making R4 of R4 gave `null`
        answer = await r5._vread(request, asked, rid, vid)
    except FhirError as error:
        raise _in_r4_words(error, asked.rtype) from None
    if _excluded(request) and answer.status_code == 200:
        await run_in_threadpool(_check_version, request, asked, rid, int(vid))
    return await run_in_threadpool(_resource_answer, request, answer)


async def search(request: Request, asked: R4Asked) -> Response:
    return await _search(request, asked, request.query_params.multi_items())


async def search_post(request: Request, asked: R4Asked) -> Response:
    """A FHIR search by POST [type]/_search with a form body: answered as the GET search (R5's too)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise FhirError(415, "not-supported", "POST _search takes application/x-www-form-urlencoded")
    given = request.query_params.multi_items() + await form_items(request, asked.limits)
    return await _search(request, asked, given)


async def _search(request: Request, asked: Asked, given: list[tuple[str, str]]) -> Response:
    rtype = R4_OF_SERVED[asked.rtype]
    barcodes = {code for code in BARCODE_PARAMS.get(rtype, ()) if r4_barcode_param(rtype, code) is not None}
    own = TYPE_SEARCH_PARAMS.get(rtype, SEARCH_PARAMS)
    kept = KEPT_PARAMS | barcodes | set(own)
    asked.limits.check(given)  # every parameter counts against the bounds, also one left unanswered
    # a search parameter with a modifier goes on, so that R5's parse answers it or refuses it with a
    # 400 (`identifier:missing` left out would answer every package as if it matched)
    searched = {*own, *barcodes, *COMMON_PARAMS}
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
        known = ", ".join((*own, *R4_PARAMS.get(rtype, {}), *COMMON_PARAMS, *sorted(barcodes)))
        raise bad(f"unknown R4 search parameter {unknown[0][:100]!r}; {_prefix(request)} searches by {known}")
    if VIEWS[_prefix(request)] is not None:
        items.append((CONTENT_FILTER, str(VIEWS[_prefix(request)])))
    answer = await run_in_threadpool(r5._search, request, asked, items, [])
    return _bundle_answer(request, asked, answer, unknown)


async def instance_history(request: Request, asked: R4Asked, rid: str) -> Response:
    return await run_in_threadpool(_history, request, asked, rid, False)


async def type_history(request: Request, asked: R4Asked) -> Response:
    return await run_in_threadpool(_history, request, asked, None, False)


async def system_history(request: Request, asked: R4Asked) -> Response:
    """The history of every type served as R4 (and of nothing else: R5's ClinicalUseDefinition,
    Basic, ... are not in it)."""
    return await run_in_threadpool(_history, request, asked, None, False)


# DMP's delta/: the version history of everything ever published and still kept (docs/r4-view.md)


async def delta_system(request: Request, asked: R4Asked) -> Response:
    return await run_in_threadpool(_history, request, asked, None, True)


async def delta_type(request: Request, asked: R4Asked) -> Response:
    return await run_in_threadpool(_history, request, asked, None, True)


async def delta_read(request: Request, asked: R4Asked, rid: str) -> Response:
    """The latest version published: the served one, or for an expired resource its deletion (a
    410 saying when, and where its versions are)."""
    return await run_in_threadpool(_delta_read, request, asked, rid)


async def delta_instance_history(request: Request, asked: R4Asked, rid: str) -> Response:
    return await run_in_threadpool(_history, request, asked, rid, True)


async def search_refused(request: Request) -> Response:
    """[type]/_search takes POST alone (as on /fhir): a search is GET [type] or POST [type]/_search."""
    base, r4_type = _prefix(request), str(request.path_params["rtype"])[:100]
    message = f"search by GET {base}/{r4_type}?... or by POST {base}/{r4_type}/_search"
    raise FhirError(405, "not-supported", message, {"Allow": "POST"})


def _in_r4_words(error: FhirError, rtype: str) -> FhirError:
    """The R5 interaction's error, naming the resource by its R4 type."""
    message = error.message.replace(f"{rtype}/", f"{R4_OF_SERVED.get(rtype, rtype)}/")
    return FhirError(error.status, error.code, message, error.headers, error.details)


# -- the work -------------------------------------------------------------------------------


def _read(request: Request, asked: Asked, rid: str) -> Response:
    rtype = asked.rtype
    prepared = asked.served.read(rtype, rid, asked.access)
    if prepared is None:
        with asked.served.engine.connect() as conn:
            gone = store.ever_served(conn, rtype, rid, asked.access)
        r4_name = f"{R4_OF_SERVED[rtype]}/{rid}"
        if gone:
            raise FhirError(410, "deleted", f"{r4_name} is no longer served (it expired)")
        raise FhirError(404, "not-found", f"{r4_name} is not known")
    _check_view(asked, request, prepared.version.pk, f"{R4_OF_SERVED[rtype]}/{rid}")
    body = _cache(request).prepared(prepared).body
    return r5._read_response(request, negotiate(request), prepared.version, None, body)


def _check_current(request: Request, asked: Asked, rid: str) -> None:
    """In a filtered view: a 404 for a resource whose served version the view leaves out (its
    history and versions with it: the view is judged on what the release serves)."""
    prepared = asked.served.read(asked.rtype, rid, asked.access)
    if prepared is not None:
        _check_view(asked, request, prepared.version.pk, f"{R4_OF_SERVED[asked.rtype]}/{rid}")


def _check_version(request: Request, asked: Asked, rid: str, version: int) -> None:
    """In a filtered view: a 404 for a version any release's view left out, as its histories and
    delta/ leave it out (a version of a resource whose newer one the view excludes can be in it)."""
    with asked.served.engine.connect() as conn:
        out = store.ever_excluded(conn, asked.rtype, rid, version, _excluded(request))
    if out:
        raise FhirError(
            404,
            "not-found",
            f"{R4_OF_SERVED[asked.rtype]}/{rid}/_history/{version} is not in the H-resept view "
            f"(left out by {', '.join(sorted(out))})",
        )


def _history(request: Request, asked: Asked, rid: str | None, delta: bool) -> Response:
    """The R5 history of the asked type (every R4 type without one), or of instance `rid`, made R4;
    in the H-resept view without the versions its filters exclude. `delta`: links under delta/,
    and the Bundle says from which release the delta starts."""
    excluded = _excluded(request)  # the versions any release's view left out are not listed
    rtype = asked.rtype or None
    types = None if rtype else list(R5_OF_R4.values())
    try:
        answer = r5._history(request, asked, rtype, rid, types, excluded)
    except FhirError as error:
        raise _in_r4_words(error, asked.rtype) from None
    if rid is not None and excluded and answer.status_code == 200 and b'"entry"' not in bytes(answer.body):
        _check_current(request, asked, rid)  # none of its versions in the view: as if it were not there
    start = None
    if delta and answer.status_code == 200:
        with asked.served.engine.connect() as conn:
            start = store.oldest_release(conn, asked.access)
    return _bundle_answer(request, asked, answer, delta_start=start)


def _delta_read(request: Request, asked: Asked, rid: str) -> Response:
    try:
        return _read(request, asked, rid)
    except FhirError as error:
        if error.status != 410:
            raise
    with asked.served.engine.connect() as conn:
        newest = store.newest_release(conn, asked.access)
        items, _ = store.history(
            conn, rtype=asked.rtype, rid=rid, since=None, upto_release=newest, count=1, offset=0,
            entitled=asked.access,
        )  # fmt: skip
    name = f"{R4_OF_SERVED[asked.rtype]}/{rid}"
    when = f" at {instant(items[0].at)}" if items and items[0].version is None else ""
    raise FhirError(
        410,
        "deleted",
        f"{name} is no longer published: it expired{when}; its versions are at "
        f"{_base(request)}/{DELTA}/{name}/_history",
    )


def _resource_answer(request: Request, answer: Response) -> Response:
    """An R5 read answer made R4 (a 304 as it is)."""
    if answer.status_code != 200:
        return answer
    made = r4_of(orjson.loads(bytes(answer.body)))
    return _sent(request, answer, orjson.dumps(made))


def _bundle_answer(
    request: Request,
    asked: Asked,
    answer: Response,
    ignored: Sequence[str] = (),
    delta_start: int | None = None,
) -> Response:
    """An R5 Bundle answer made R4: each entry's resource (and fullUrl), and the links, on /fhir-r4;
    a warning outcome for each parameter the R4 search `ignored` (as the R5 search gives one).
    `delta_start`: a delta's Bundle, its links under delta/ and its meta naming the release it
    starts at."""
    bundle = orjson.loads(bytes(answer.body))
    if ignored and answer.status_code == 200:
        issues = [
            {
                "severity": "warning",
                "code": "not-supported",
                "diagnostics": f"ignored search parameter {name[:100]!r} (unknown for {R4_OF_SERVED.get(asked.rtype, asked.rtype)} over R4)",
            }
            for name in ignored
        ]
        outcome = {"resourceType": "OperationOutcome", "issue": issues}
        bundle.setdefault("entry", []).append(
            {"fullUrl": "urn:grunndata:r4-search-outcome", "resource": outcome, "search": {"mode": "outcome"}}
        )
    r5_base, r4_base = bundles.base_url(request), _base(request)
    links_base = r4_base
    if delta_start is not None:
        links_base = f"{r4_base}/{DELTA}"
        meta = bundle.setdefault("meta", {})
        meta["extension"] = [{"url": DELTA_START, "valueInteger": delta_start}]
    for entry in bundle.get("entry", []):
        resource = entry.get("resource")
        if isinstance(resource, dict) and resource.get("resourceType") in R4_OF_SERVED:
            entry["resource"] = r4_of(resource)
        entry["fullUrl"] = _r4_url(str(entry.get("fullUrl", "")), r5_base, r4_base)
        request_part = entry.get("request")
        if isinstance(request_part, dict) and isinstance(request_part.get("url"), str):
            request_part["url"] = _r4_path(request_part["url"])
    for link in bundle.get("link", []):
        url = str(link.get("url", ""))
        head, question, query = url.partition("?")
        if question:
            url = f"{head}?{_r4_query(asked.rtype, query)}"
        link["url"] = _r4_url(url, r5_base, links_base)
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
        sortable = [k for k in own if k != "subject"]  # a reference is no sort key (R5's rule)
        wrong = next((k for k in keys if k not in SORTS and k not in sortable), None)
        if wrong is not None:  # as the R5 search refuses a key it cannot sort by
            known = ", ".join((*sorted(SORTS), *sortable))
            raise bad(f"_sort: {wrong[:100]!r} is not a sort key here; sort by {known}")
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
    """A link's query (written by the R5 search) in R4's parameter names and types again, without
    the content-filter parameter the base added (its base says the view)."""
    out = []
    for pair in query.split("&"):
        if pair.startswith(CONTENT_FILTER + "="):
            continue
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


def _r4_path(path: str) -> str:
    """``PackagedProductDefinition/x...`` (or ``...?query``) -> ``MedicinalProductPackaged/x...``."""
    end = min((i for i in (path.find("/"), path.find("?")) if i >= 0), default=len(path))
    head = path[:end]
    return R4_OF_SERVED.get(head, head) + path[end:]


def _r4_url(url: str, r5_base: str, r4_base: str) -> str:
    if not url.startswith(r5_base + "/"):
        return url
    return f"{r4_base}/{_r4_path(url[len(r5_base) + 1 :])}"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + _prefix(request)


def _search_params(r4_type: str) -> list[dict[str, Any]]:
    """An R4 type's search parameters as the CapabilityStatement lists them."""
    if r4_type in TYPE_SEARCH_PARAMS:
        described = params_for(r4_type)
        return [
            {"name": code, "type": described[code].type, "documentation": described[code].description}
            for code in TYPE_SEARCH_PARAMS[r4_type]
        ]
    return [
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
    ]


def capability_statement(base: str, view: str | None = None) -> bytes:
    """What an R4 base serves, in R4: the SAFEST types and CodeSystem, read, vread, history
    (instance, type, system), search by identifier and _id (and DMP's product-code parameters;
    CodeSystem by url, ...); each SAFEST resource in its SAFEST profile.
    `view`: the content-filter view the base applies (/fhir-r4-hresept: h-resept)."""
    interactions = ("read", "vread", "search-type", "history-instance", "history-type")
    resources: list[dict[str, Any]] = [
        {
            "type": r4_type,
            **({"profile": PROFILES[r4_type]} if r4_type in PROFILES else {}),
            "interaction": [{"code": c} for c in interactions],
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
            "searchParam": _search_params(r4_type),
        }
        for r4_type in R4_TYPES
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
        "description": "The SAFEST R4 types and CodeSystem made from the same store the R5 API at /fhir "
        "serves; read-only." + viewed,
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
                    "for travel as extensions https://grunndata.no/fhir/StructureDefinition/r5-<R5 path>. "
                    f"DMP's delta: {base}/{DELTA}[/<type>[/<id>[/_history[/<vid>]]]] gives every version "
                    "the store keeps, expiries as DELETE entries, as a history Bundle whose meta says "
                    "from which release it starts (docs/r4-view.md)." + viewed
                ),
                "resource": resources,
                "interaction": [{"code": "history-system"}],
            }
        ],
    }
    return orjson.dumps(statement)


OPENAPI = {asked_r4: Gives((400, 401, 404, 406, 503), fhir=True, token=True)}
"""What the R4 routes' dependency answers instead of them (deps.OPENAPI's, for fhir_io/openapi.py)."""


def _codes(r4_type: str) -> dict[str, str]:
    """An R4 type's search parameters and what each finds (as the CapabilityStatement says)."""
    return {p["name"]: p.get("documentation", "Logical id of the resource") for p in _search_params(r4_type)}


def _r4_history_doc() -> dict[str, Any]:
    return history_doc()


# The same handlers on both bases: each asks `_prefix` which it was reached by. delta/ goes first:
# its paths would otherwise be read as a type "delta". Documented (/fhir-r4 only: /fhir-r4-hresept
# answers the same routes): the system-wide ones, each type's own, and a few once for every type.
GENERAL: tuple[tuple[str, Callable[..., Any], str, str, Callable[[], dict[str, Any]]], ...] = (
    (
        "/metadata",
        metadata,
        "GET",
        "metadata",
        lambda: {
            "parameters": NEGOTIATION,
            **answers(fhir_content(resource_schema("CapabilityStatement"))),
        },
    ),
    ("/_history", system_history, "GET", "history-system", _r4_history_doc),
    (f"/{DELTA}", delta_system, "GET", "delta-system", _r4_history_doc),
    (f"/{DELTA}/_history", delta_system, "GET", "delta-system-history", _r4_history_doc),
)
TYPED: tuple[tuple[str, Callable[..., Any], str, Callable[[str], dict[str, Any]]], ...] = (
    ("/{type}", search, "search", lambda t: r4_search_doc(_codes(t))),
    ("/{type}/_history", type_history, "history-type", lambda t: _r4_history_doc()),
    ("/{type}/{{rid}}", read, "read", lambda t: r4_read_doc([t])),
    ("/{type}/{{rid}}/_history", instance_history, "history-instance", lambda t: _r4_history_doc()),
    ("/{type}/{{rid}}/_history/{{vid}}", vread, "vread", lambda t: r4_read_doc([t], version=True)),
    (f"/{DELTA}/{{type}}", delta_type, "delta-type", lambda t: _r4_history_doc()),
    (f"/{DELTA}/{{type}}/{{{{rid}}}}", delta_read, "delta-read", lambda t: r4_read_doc([t])),
)
"""Each R4 type's documented routes (GET): path (`{type}` filled in), handler, interaction, its doc."""
ONCE: tuple[tuple[str, Callable[..., Any], str, str, Callable[[], dict[str, Any]]], ...] = (
    (f"/{DELTA}/{{rtype}}/_history", delta_type, "GET", "delta-type-history", _r4_history_doc),
    (f"/{DELTA}/{{rtype}}/{{rid}}/_history", delta_instance_history, "GET", "delta-history", _r4_history_doc),
    (
        f"/{DELTA}/{{rtype}}/{{rid}}/_history/{{vid}}",
        vread,
        "GET",
        "delta-vread",
        lambda: r4_read_doc(R4_TYPES, version=True),
    ),
    (
        "/{rtype}/_search",
        search_post,
        "POST",
        "search-form",
        lambda: r4_search_doc(_common_codes(), post=True),
    ),
)
"""Routes for any R4 type (`{rtype}`; 404 for another) documented once, `{rtype}` listing the
types; before the types' own (a type's delta read would take `_history` for an id)."""
ANY_TYPE: tuple[tuple[str, Callable[..., Any]], ...] = (
    (f"/{DELTA}/{{rtype}}", delta_type),
    (f"/{DELTA}/{{rtype}}/{{rid}}", delta_read),
    ("/{rtype}", search),
    ("/{rtype}/_history", type_history),
    ("/{rtype}/{rid}", read),
    ("/{rtype}/{rid}/_history", instance_history),
    ("/{rtype}/{rid}/_history/{vid}", vread),
)
"""The other routes for any R4 type (GET), undocumented: the types' own routes document them."""


def _common_codes() -> dict[str, str]:
    """The search parameters every R4 type has (a POST _search documented once lists these; each
    type's own are in its GET search's document)."""
    return {
        code: what
        for code, what in _codes(SAFEST_TYPES[0]).items()
        if all(code in _codes(t) for t in R4_TYPES)
    }


def _add_routes(to: APIRouter, documented: bool) -> None:
    def add(path: str, endpoint: Callable[..., Any], method: str, op: str, doc: dict[str, Any]) -> None:
        if not documented:
            to.add_api_route(path, endpoint, methods=[method], include_in_schema=False)
            return
        to.add_api_route(
            path,
            endpoint,
            methods=[method],
            summary=f"R4: {op}",
            operation_id=f"r4-{op}",
            openapi_extra=doc,
        )

    for path, endpoint, method, op, make in GENERAL:
        add(path, endpoint, method, op, make())
    for path, endpoint, method, op, make in ONCE:
        doc = make()
        doc["parameters"] = [r4_type_parameter(R4_TYPES), *doc["parameters"]]
        add(path, endpoint, method, op, doc)
    to.add_api_route(  # every method but POST: a full match here, so the 405 names POST alone
        "/{rtype}/_search",
        search_refused,
        methods=["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"],
        include_in_schema=False,
    )
    if documented:
        for r4_type in R4_TYPES:
            for template, endpoint, op, make_typed in TYPED:
                path = template.format(type=r4_type)
                to.add_api_route(
                    path,
                    endpoint,
                    methods=["GET"],
                    summary=f"{r4_type} (R4): {op}",
                    operation_id=f"r4-{r4_type}-{op}",
                    openapi_extra=make_typed(r4_type),
                )
    for path, endpoint in ANY_TYPE:
        to.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)


_add_routes(router, documented=True)
_add_routes(hresept_router, documented=False)
