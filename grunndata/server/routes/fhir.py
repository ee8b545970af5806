"""The FHIR R5 REST interactions at /fhir: thin handlers that parse, ask the store, send bytes.

read, vread, search (GET and POST), history (instance, type, system), $everything and the
CapabilityStatement. Reads send the stored bytes; only `_summary`, `_elements`, `_pretty` and
XML make the server touch a resource's content (server/fhir_io/bundles.py). A search goes: `search` here
-> `parse` (server/fhir_io/params.py) -> `search` (store/search.py) -> SQL, back through `searchset`
(server/fhir_io/bundles.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from grunndata import store
from grunndata.fhir import SERVED_TYPES
from grunndata.fhirpackage import capability_statement
from grunndata.server.auth import ALL_OWNERS, SCOPE_SECTOR_READ, SCOPE_SUPPLEMENTARY_READ, Access
from grunndata.server.conventions import AUDIENCE, EVERYONE
from grunndata.server.deps import Asked, HistoryAsked, PlainAsked, ReadAsked, Resource, SearchAsked, listed
from grunndata.server.fhir_io import bundles
from grunndata.server.fhir_io.openapi import (
    NEGOTIATION,
    answers,
    fhir_content,
    history_doc,
    read_doc,
    resource_schema,
    search_doc,
)
from grunndata.server.fhir_io.params import (
    CONTENT_FILTER,
    Limits,
    Query,
    bad,
    form_items,
    parse,
    strict,
    whole_number,
)
from grunndata.server.fhir_io.responses import (
    FhirError,
    answer_in_r4,
    bundle,
    entry,
    fhir_version,
    send,
)
from grunndata.server.r4view import R4Cache
from grunndata.server.state import Prepared, Served, http_date
from grunndata.store import SEARCHED_TYPES, STORE, SearchError, Snapshot, Version, index_rows, sources_of
from grunndata.store.access import NATIONAL
from grunndata.store.barcodes import Match
from grunndata.store.searchparams import MPD
from grunndata.translators.content_filters import VIEWS, enabled, unknown_view_sentence
from grunndata.translators.safest.to_r4 import R4_OF_R5, SAFEST_TYPES

HISTORY_OFFSET_LIMIT = 100_000
MAX_NUMBER = 2**31 - 1  # release and version numbers are INTEGER columns: PostgreSQL takes no more
_VERSION = re.compile(r"[0-9]+")
# the scopes that read more than national data, as the CapabilityStatement lists them
READ_SCOPES = (SCOPE_SECTOR_READ, f"{SCOPE_SUPPLEMENTARY_READ}<owner>", SCOPE_SUPPLEMENTARY_READ + ALL_OWNERS)

router = APIRouter(prefix="/fhir", tags=["FHIR R5"])
# included before every other router of /fhir: their reads would take "_search" for an id
first = APIRouter(prefix="/fhir")


# -- the handlers ---------------------------------------------------------------------------


async def metadata(request: Request, asked: PlainAsked) -> Response:
    asked.limits.check(list(request.query_params.multi_items()))  # as every route: no text FHIR cannot hold
    auth = asked.served.auth.settings  # rest.security names the token service and scopes
    cors = bool(request.app.state.settings.cors_origins)
    limits = asked.limits  # the bounds of chains and iterated includes are said with the grammar
    body = capability_statement(
        bundles.base_url(request), auth.issuer, READ_SCOPES, cors, limits.chain, limits.iterate
    )
    return send(request, asked.fmt, body)


async def system_history(request: Request, asked: PlainAsked) -> Response:
    return await run_in_threadpool(_history, request, asked, None, None)


async def search(request: Request, asked: SearchAsked) -> Response:
    items = list(request.query_params.multi_items())
    resources = await listed(request, asked.rtype)
    return await run_in_threadpool(_search, request, asked, items, resources)


async def search_post(request: Request, asked: SearchAsked) -> Response:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise FhirError(415, "not-supported", "POST _search takes application/x-www-form-urlencoded")
    items = list(request.query_params.multi_items()) + await form_items(request, asked.limits)
    resources = await listed(request, asked.rtype)
    return await run_in_threadpool(_search, request, asked, items, resources)


async def type_history(request: Request, asked: HistoryAsked) -> Response:
    return await run_in_threadpool(_history, request, asked, asked.rtype, None)


async def read(request: Request, asked: ReadAsked, rid: str) -> Response:
    if fhir_version(request) == "4.0":
        _check_r4(request, asked)
        return _as_r4(request, asked.fmt, await _read(request, replace(asked, fmt="json"), rid, r4=True))
    return await _read(request, asked, rid)


async def _read(request: Request, asked: ReadAsked, rid: str, *, r4: bool = False) -> Response:
    rtype, served, access = asked.rtype, asked.served, asked.access
    for resource in await listed(request, rtype):  # the catalogue's ids are reserved: it goes first
        if resource["id"] == rid:
            return send(
                request, asked.fmt, bundles.listed_bytes(resource, _shaping(request, rtype, asked.limits))
            )
    prepared = served.read(rtype, rid, access)
    if prepared is None:
        with served.engine.connect() as conn:
            gone = store.ever_served(conn, rtype, rid, access)
        if gone:
            raise FhirError(410, "deleted", f"{rtype}/{rid} is no longer served (it expired)")
        raise FhirError(404, "not-found", f"{rtype}/{rid} is not known")
    if r4:  # the R4 body /fhir-r4 sends, stored at import (server/r4view.py)
        prepared = _r4_cache(request).prepared(prepared)
    return _read_response(
        request, asked.fmt, prepared.version, _shaping(request, rtype, asked.limits), prepared.body
    )


async def instance_history(request: Request, asked: HistoryAsked, rid: str) -> Response:
    return await run_in_threadpool(_history, request, asked, asked.rtype, rid)


async def vread(request: Request, asked: ReadAsked, rid: str, vid: str) -> Response:
    if fhir_version(request) == "4.0":
        _check_r4(request, asked)
        return _as_r4(
            request, asked.fmt, await _vread(request, replace(asked, fmt="json"), rid, vid, r4=True)
        )
    return await _vread(request, asked, rid, vid)


async def _vread(request: Request, asked: Asked, rid: str, vid: str, *, r4: bool = False) -> Response:
    if not _VERSION.fullmatch(vid):  # digits only: int() would take " 1", "+1" and "1_0" too
        raise bad(f"{vid!r} is not a version id")
    number = whole_number("version", vid, 1, MAX_NUMBER)
    rtype = asked.rtype
    with asked.served.engine.connect() as conn:
        version = store.vread(conn, rtype, rid, number, asked.access)
        known = version is not None or store.ever_served(conn, rtype, rid, asked.access)
    if version is None:
        raise FhirError(
            404,
            "not-found",
            f"{rtype}/{rid} has no version {vid}" if known else f"{rtype}/{rid} is not known",
        )
    body = _r4_cache(request).prepared(Prepared.of(version)).body if r4 else None
    return _read_response(request, asked.fmt, version, _shaping(request, rtype, asked.limits), body)


EVERYTHING_PARAMS = frozenset(("_format", "_pretty", CONTENT_FILTER))
"""What `$everything` reads: one Bundle holds a product and all it names (no paging: `_count`
is no parameter of it), in a content-filter view when one is asked."""


async def everything(request: Request, asked: PlainAsked, rid: str) -> Response:
    given = request.query_params.multi_items()
    asked.limits.check(given)
    unknown = sorted({k for k, _ in given} - EVERYTHING_PARAMS)
    if unknown and strict(request.headers.get("prefer", "")):
        raise bad(
            f"unknown $everything parameter {unknown[0][:100]!r}; it reads content-filter, _format and _pretty"
        )
    views = [v for k, v in given if k == CONTENT_FILTER]
    if len(views) > 1 or any(v not in VIEWS for v in views):
        bad_view = next((v for v in views if v not in VIEWS), None)
        raise bad(unknown_view_sentence(bad_view) if bad_view is not None else "give content-filter once")
    return await run_in_threadpool(_everything, request, asked, rid, views[0] if views else None)


def _check_r4(request: Request, asked: Asked) -> None:
    """`Accept: application/fhir+json; fhirVersion=4.0` (or `+xml`) on a read (FHIR's versioning
    page) is answered for the SAFEST types, whole resources; anything else is a 406, before the read.
    From here on the request is answered in R4 (its XML, an error's too, by the R4 definitions)."""
    if asked.rtype not in R4_OF_R5:
        raise FhirError(
            406,
            "not-supported",
            f"{asked.rtype} has no R4 form; the SAFEST types are served as R4 ({', '.join(SAFEST_TYPES)})",
        )
    if "_summary" in request.query_params or "_elements" in request.query_params:
        raise FhirError(406, "not-supported", "fhirVersion=4.0 is answered with whole resources only")
    answer_in_r4(request)


def _r4_cache(request: Request) -> R4Cache:
    cache: R4Cache = request.app.state.r4_cache
    return cache


def _as_r4(request: Request, fmt: str, answer: Response) -> Response:
    """A read's JSON answer of the R4 body /fhir-r4 serves (stored at import: server/r4view.py), in
    `fmt`, the Content-Type naming the version; a 304 as it is."""
    if answer.status_code != 200:
        return answer
    made = bytes(answer.body)
    headers = {k: v for k, v in answer.headers.items() if k.lower() not in ("content-length", "content-type")}
    return send(request, fmt, made, headers=headers, name_version=True)


# -- the routes, in the order they are matched ----------------------------------------------


async def search_get_refused(rtype: str) -> Response:
    """[type]/_search takes POST alone: a search is GET [type] or POST [type]/_search."""
    message = f"search by GET /fhir/{rtype}?... or by POST /fhir/{rtype}/_search"
    raise FhirError(405, "not-supported", message, {"Allow": "POST"})


first.add_api_route(  # every method but POST: a full match here, so the 405 names POST alone
    "/{rtype}/_search",
    search_get_refused,
    methods=["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"],
    include_in_schema=False,
)
for _own in ("ConceptMap", "Endpoint"):  # their read routes (terminology, catalogue) would take
    # `_history` for an id: the type's history says, as its instances' does, that none is kept
    first.add_api_route(f"/{_own}/_history", type_history, methods=["GET"], include_in_schema=False)


router.add_api_route(
    "/metadata",
    metadata,
    methods=["GET"],
    summary="CapabilityStatement",
    operation_id="metadata",
    openapi_extra={
        "parameters": NEGOTIATION,
        **answers(fhir_content(resource_schema("CapabilityStatement"))),
    },
)
router.add_api_route(
    "/_history",
    system_history,
    methods=["GET"],
    summary="System history: what changed since _since",
    operation_id="history-system",
    openapi_extra=history_doc(),
)


def _typed_routes(rtype: str) -> None:
    """The documented routes of one type, so the OpenAPI document lists each type's parameters:
    search (GET and POST) and, for a type the store serves, history, read and vread (the others
    are read by their own routes: catalogue, terminology)."""
    routes: list[tuple[str, Callable[..., Any], str, str, dict[str, Any]]] = [
        ("", search, "GET", "search", search_doc(rtype)),
        ("/_search", search_post, "POST", "search-form", search_doc(rtype, post=True)),
    ]
    if rtype in SERVED_TYPES:
        routes += [
            ("/_history", type_history, "GET", "history-type", history_doc()),
            ("/{rid}", read, "GET", "read", read_doc(rtype)),
            ("/{rid}/_history", instance_history, "GET", "history-instance", history_doc()),
            ("/{rid}/_history/{vid}", vread, "GET", "vread", read_doc(rtype, version=True)),
        ]
    for suffix, endpoint, method, interaction, doc in routes:
        router.add_api_route(
            f"/{rtype}{suffix}",
            endpoint,
            methods=[method],
            summary=f"{rtype}: {interaction}",
            operation_id=f"{rtype}-{interaction}",
            openapi_extra=doc,
        )


for _rtype in SEARCHED_TYPES:
    _typed_routes(_rtype)
# the generic routes after them answer unknown types with 404
for _path, _endpoint, _method in (
    ("/{rtype}", search, "GET"),
    ("/{rtype}/_search", search_post, "POST"),
    ("/{rtype}/_history", type_history, "GET"),
    ("/{rtype}/{rid}", read, "GET"),
    ("/{rtype}/{rid}/_history", instance_history, "GET"),
    ("/{rtype}/{rid}/_history/{vid}", vread, "GET"),
):
    router.add_api_route(_path, _endpoint, methods=[_method], include_in_schema=False)
router.add_api_route(
    "/MedicinalProductDefinition/{rid}/$everything",
    everything,
    methods=["GET"],
    summary="A product with all that belongs to it",
    operation_id="MedicinalProductDefinition-everything",
    openapi_extra={
        "parameters": NEGOTIATION,
        **answers(fhir_content(resource_schema("Bundle")), 404, 410, description="A searchset Bundle"),
    },
)


# -- the work, off the event loop -----------------------------------------------------------


def _search(
    request: Request, asked: Asked, items: list[tuple[str, str]], resources: list[Resource]
) -> Response:
    """Every search: the listed `resources` (sources besides the store) matched first, then the
    store's, one list paged as one. A type with no store part is answered without the store:
    its total is always given (it costs nothing) and its links name no snapshot."""
    fmt, served, access, rtype, limits = asked.fmt, asked.served, asked.access, asked.rtype, asked.limits
    query = parse(rtype, items, strict(request.headers.get("prefer", "")), limits)
    stored = STORE in sources_of(rtype)
    if stored:
        _check_tags(query, access)
    try:
        matched = _listed_matches(resources, query)
    except SearchError as e:
        raise bad(str(e)) from None
    first = matched[query.offset : query.offset + query.count]
    excluded = enabled(query.content_filter, request.app.state.settings.content_filters_on())
    count_only = query.summary == "count" or query.count == 0
    page: list[Version] = []
    included: list[Version] = []
    snapshot: Snapshot | None = None
    found: dict[int, list[Match]] = {}
    more = not count_only and query.offset + query.count < len(matched)
    total: int | None = len(matched)
    if stored:
        with served.engine.connect() as conn:
            snapshot = _snapshot_for(conn, served, access, query.snapshot)
            try:
                page, more_stored, total_stored = store.search(
                    conn,
                    snapshot,
                    rtype,
                    query.clauses,
                    sort=query.sort,
                    count=query.count - len(first),  # 0 still says whether there are more
                    offset=max(0, query.offset - len(matched)),
                    with_total=count_only or query.total != "none",
                    with_page=not count_only,
                    excluded=excluded,
                )
            except SearchError as e:
                raise bad(str(e)) from None
            more = more or more_stored
            total = None if total_stored is None else total_stored + len(matched)
            if not count_only:
                keys = [(r["resourceType"], r["id"]) for r in first]
                included = store.included(
                    conn, snapshot, page, query.includes, query.revincludes, keys, query.include_rounds
                )
                if excluded:  # what the view leaves out is not brought back by an _include
                    out = store.excluded_of(conn, snapshot, [v.pk for v in included], excluded)
                    included = [v for v in included if v.pk not in out]
                found = store.barcode_matches(conn, snapshot, rtype, query.clauses, page)
    shown = [] if count_only else first
    body = bundles.searchset(request, query, shown, page, included, snapshot, more, total, found)
    return send(request, fmt, body)


def _history(
    request: Request,
    asked: Asked,
    rtype: str | None,
    rid: str | None,
    types: Sequence[str] | None = None,
    excluded: Sequence[str] = (),
) -> Response:
    """A history (`types`: of a system history, every served type when None; `excluded`: content
    filter codes whose versions it leaves out: the R4 views, routes/r4.py)."""
    fmt, served, access, limits = asked.fmt, asked.served, asked.access, asked.limits
    params = request.query_params
    limits.check(list(params.multi_items()))
    known = {"_since", "_count", "_offset", "_cursor", "_snapshot", "_format", "_pretty"}
    for standard in ("_at", "_list", "_sort"):  # R5's history parameters this server does not answer:
        if standard in params:  # ignored, the answer would look like theirs
            raise bad(
                f"{standard} is not supported on a history here; it reads _since, _count and the paging links"
            )
    if CONTENT_FILTER in params:  # ignoring it would answer the whole history as if filtered
        raise bad(
            f"{CONTENT_FILTER} selects what a search finds; a history lists every version served and "
            "is not filtered (search with it, or read the R4 view /fhir-r4-hresept)"
        )
    unknown = [k for k in params if k not in known]
    if strict(request.headers.get("prefer", "")) and unknown:
        raise bad(f"unknown history parameter {unknown[0]!r}")
    count = whole_number("_count", params.get("_count", "100"), 1, 1000)
    offset = whole_number("_offset", params.get("_offset", "0"), 0, 10_000_000)
    if offset > HISTORY_OFFSET_LIMIT and "_cursor" not in params:
        # skipping by _offset reads every item before the page: the next links' _cursor does not
        raise bad(
            f"_offset above {HISTORY_OFFSET_LIMIT:,} in a history needs the _cursor of the "
            "next link that led there; follow the next links"
        )
    since = None
    if "_since" in params:
        try:
            _, since, _ = store.date_range(params["_since"])
        except SearchError as e:
            raise bad(f"_since: {e}") from None
    after = None
    if "_cursor" in params:
        try:
            after = store.parse_cursor(params["_cursor"])
        except SearchError as e:
            raise bad(str(e)) from None
    with served.engine.connect() as conn:
        newest = store.newest_release(conn, access)
        upto = (
            whole_number("_snapshot", params["_snapshot"], 0, MAX_NUMBER) if "_snapshot" in params else newest
        )
        if upto > newest:  # a page of a release still to come would change under its link
            raise bad(f"_snapshot: no release {upto} has been served (the newest is {newest})")
        if rid is not None and not store.ever_served(conn, rtype or "", rid, access):
            raise FhirError(404, "not-found", f"{rtype}/{rid} is not known")
        untold = store.since_untold(conn, since, access) if since is not None else None
        if untold is not None:
            raise FhirError(
                410,
                "expired",
                f"{untold}; read the data again (a search, or $export without _since) and follow the "
                "history from then",
            )
        items, more = store.history(
            conn,
            rtype=rtype,
            rid=rid,
            since=since,
            upto_release=upto,
            count=count,
            offset=offset,
            entitled=access,
            after=after,
            types=types,
            excluded=excluded,
        )
    return send(request, fmt, bundles.history(request, rtype, rid, items, more, count, offset, upto))


def _everything(request: Request, asked: Asked, rid: str, view: str | None = None) -> Response:
    fmt, served, access = asked.fmt, asked.served, asked.access
    snapshot = served.snapshot(access)
    codes = enabled(view, request.app.state.settings.content_filters_on())
    with served.engine.connect() as conn:
        product = store.read(conn, snapshot, MPD, rid)
        if product is None:
            if store.ever_served(conn, MPD, rid, access):
                raise FhirError(410, "deleted", f"{MPD}/{rid} is no longer served (it expired)")
            raise FhirError(404, "not-found", f"{MPD}/{rid} is not known")
        related = store.everything_of(conn, snapshot, product)
        if codes:  # the view leaves out what it excludes, the product first
            out = store.excluded_of(conn, snapshot, [product.pk, *(v.pk for v in related)], codes)
            if product.pk in out:
                raise FhirError(
                    404,
                    "not-found",
                    f"{MPD}/{rid} is not in the {view} view (left out by {', '.join(sorted(out[product.pk]))})",
                )
            related = [v for v in related if v.pk not in out]
    base = bundles.base_url(request)
    entries = [entry(f"{base}/{MPD}/{rid}", product.body(), {"search": {"mode": "match"}})]
    entries += [entry(f"{base}/{v.type}/{v.id}", v.body(), {"search": {"mode": "include"}}) for v in related]
    return send(request, fmt, bundle("searchset", entries, [("self", str(request.url))], total=1))


# -- helpers --------------------------------------------------------------------------------


def _snapshot_for(conn: Any, served: Served, access: Access, asked: Snapshot | None) -> Snapshot:
    """The releases to answer from: those served now, or a paging link's; never more than the
    client may read (a link's `_snapshot` is the client's to edit)."""
    if asked is None:
        return served.snapshot(access)
    if any(r > MAX_NUMBER for r in asked.releases):  # no release ever had such a number
        raise FhirError(410, "expired", "the releases this page belongs to are gone; start the search again")
    visible = served.visible(access, asked)  # a release it may not read: as if it never was
    if visible is None or not store.snapshot_exists(conn, visible):
        raise FhirError(410, "expired", "the releases this page belongs to are gone; start the search again")
    if not store.snapshot_one_per_line(conn, visible):
        raise bad("_snapshot names two releases of one line; use the links a search gives")
    return visible


def _listed_matches(resources: list[Resource], query: Query) -> list[Resource]:
    """The listed resources a query matches, by the same table and rules as the store's, in the
    order their source lists them (`_sort` orders the store's part only)."""
    matched = []
    for resource in resources:
        rows = index_rows(resource)
        if all(store.clause_matches(c, resource, rows) for c in query.clauses):
            matched.append(resource)
    return matched


def _check_tags(query: Query, access: Access) -> None:
    """A search that asks by `_tag` for a tier the client may read none of is a 403, not an empty
    answer: the client learns which scope it lacks (tier names are public; the data is not)."""
    for clause in query.clauses:
        if clause.param.code != "_tag":
            continue
        for value in clause.values:
            tier = value.rpartition("|")[2]
            if tier == "sector" and not access.sector:
                raise FhirError(403, "forbidden", access.scopes_missing_message("sector", ""))
            if tier == "supplementary" and not access.supplementary:
                raise FhirError(403, "forbidden", access.scopes_missing_message("supplementary", "<owner>"))


def _shaping(request: Request, rtype: str, limits: Limits) -> Query | None:
    """_summary/_elements on a read; everything else on a read is ignored."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k in ("_summary", "_elements")]
    return parse(rtype, items, strict=False, limits=limits) if items else None


def _read_response(
    request: Request, fmt: str, version: Version, query: Query | None, body: bytes | None = None
) -> Response:
    headers = {"ETag": f'W/"{version.version}"', "Last-Modified": http_date(version)}
    if version.tier == NATIONAL:  # the same for every client: a proxy may keep it (server/conventions.py)
        request.scope[AUDIENCE] = EVERYONE
    if _not_modified(request, version):
        return Response(status_code=304, headers=headers)
    return send(request, fmt, bundles.resource_bytes(version, query, body), headers=headers)


def _not_modified(request: Request, version: Version) -> bool:
    etag = f'W/"{version.version}"'
    match = request.headers.get("if-none-match")
    if match is not None:
        return any(tag.strip() in (etag, f'"{version.version}"', "*") for tag in match.split(","))
    since = request.headers.get("if-modified-since")
    if since is not None:
        try:
            when = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        modified = (
            version.last_updated.replace(tzinfo=UTC)
            if version.last_updated.tzinfo is None
            else version.last_updated
        )
        return modified.replace(microsecond=0) <= when
    return False
