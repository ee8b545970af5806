"""The FHIR R5 REST interactions at /fhir: thin handlers that parse, ask the store, send bytes.

read, vread, search (GET and POST), history (instance, type, system), $everything and the
CapabilityStatement. Reads send the stored bytes; only `_summary`, `_elements`, `_pretty` and
XML make the server touch a resource's content.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from grunndata.fhir import SERVED_TYPES
from grunndata.server.access import access_of
from grunndata.server.auth import Access
from grunndata.server.capability import capability_statement
from grunndata.server.openapi import read_doc, search_doc
from grunndata.server.params import ID_PATTERN, Query, bad, parse, strict, whole_number
from grunndata.server.responses import FhirError, bundle, entry, negotiate, send
from grunndata.server.state import Served, http_date
from grunndata.store import (
    SEARCHED_TYPES,
    STORE,
    SearchError,
    Snapshot,
    Version,
    index_rows,
    reads,
    sources_of,
)
from grunndata.store.searchparams import MPD

Resource = dict[str, Any]
Lister = Callable[[Request, str], Awaitable[list[Resource]]]
"""A source's resources of a type, as this client may see them (store/searchparams.py SOURCES)."""

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
EVERYTHING_LIMIT = 1000


HISTORY_OFFSET_LIMIT = 100_000


def _check_type(rtype: str) -> None:
    if rtype not in SERVED_TYPES:
        raise FhirError(404, "not-supported", f"{rtype!r} is not a resource type served here")


def _check_searched(rtype: str) -> None:
    if rtype not in SEARCHED_TYPES:
        raise FhirError(404, "not-supported", f"{rtype!r} is not a resource type served here")


def _check_id(rid: str) -> None:
    if not ID_PATTERN.fullmatch(rid):
        raise bad(f"{rid!r} is not a valid resource id")


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


@cache
def _summary_elements(rtype: str) -> frozenset[str]:
    from fhir.resources import get_fhir_model_class

    model: Any = get_fhir_model_class(rtype)
    return frozenset(model.summary_elements_sequence())


def _shape(resource: dict[str, Any], summary: str | None, elements: Sequence[str] | None) -> dict[str, Any]:
    """Apply _summary / _elements to one resource (the only place a resource is re-serialised)."""
    keep: Callable[[str], bool] | None = None
    if summary == "true":
        allowed = _summary_elements(resource["resourceType"])
        keep = lambda k: k in allowed or k.lstrip("_") in allowed  # noqa: E731
    elif summary == "text":
        keep = lambda k: k in ("id", "meta", "text")  # noqa: E731
    elif summary == "data":
        keep = lambda k: k != "text"  # noqa: E731
    elif elements is not None:
        wanted = set(elements) | {"id", "meta"}
        keep = lambda k: k.lstrip("_") in wanted  # noqa: E731
    if keep is None:
        return resource
    shaped = {k: v for k, v in resource.items() if k == "resourceType" or keep(k)}
    if summary != "data":
        meta = shaped["meta"] = dict(shaped.get("meta", {}))
        meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    return shaped


def _resource_bytes(version: Version, query: Query | None, body: bytes | None = None) -> bytes:
    """The resource as `query` shapes it; `body` is its prepared bytes, when the caller has them."""
    if query is None or (query.summary in (None, "false") and query.elements is None):
        return version.body() if body is None else body
    return orjson.dumps(_shape(version.resource(), query.summary, query.elements))


def _shaping_of(query: Query | None) -> tuple[str | None, Sequence[str] | None]:
    return (None, None) if query is None else (query.summary, query.elements)


def _listed_matches(resources: list[Resource], query: Query) -> list[Resource]:
    """The listed resources a query matches, by the same table and rules as the store's, in the
    order their source lists them (`_sort` orders the store's part only)."""
    matched = []
    for resource in resources:
        rows = index_rows(resource)
        if all(reads.clause_matches(c, resource, rows) for c in query.clauses):
            matched.append(resource)
    return matched


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def fhir_router(served: Served, listers: Mapping[str, Lister] | None = None) -> APIRouter:
    """The FHIR routes; `listers` give the resources of the sources besides the store, by source
    name (the service catalogue's, the terminology service's maps; store/searchparams.py SOURCES)."""
    router = APIRouter(prefix="/fhir", tags=["FHIR R5"])
    engine = served.engine

    async def listed(request: Request, rtype: str) -> list[Resource]:
        """The resources of `rtype` its sources other than the store hold, in source order."""
        found: list[Resource] = []
        for source in sources_of(rtype):
            lister = None if source == STORE or listers is None else listers.get(source)
            if lister is not None:
                found += await lister(request, rtype)
        return found

    def read_response(
        request: Request, fmt: str, version: Version, query: Query | None, body: bytes | None = None
    ) -> Response:
        headers = {"ETag": f'W/"{version.version}"', "Last-Modified": http_date(version)}
        if _not_modified(request, version):
            return Response(status_code=304, headers=headers)
        return send(request, fmt, _resource_bytes(version, query, body), headers=headers)

    def shaping(request: Request, rtype: str) -> Query | None:
        """_summary/_elements on a read; everything else on a read is ignored."""
        items = [(k, v) for k, v in request.query_params.multi_items() if k in ("_summary", "_elements")]
        return parse(rtype, items, strict=False) if items else None

    def who(request: Request) -> Access:
        return access_of(request, served.auth)

    @router.get("/metadata", summary="CapabilityStatement")
    async def metadata(request: Request) -> Response:
        who(request)
        fmt = negotiate(request)
        return send(request, fmt, capability_statement(_base(request)))

    @router.get("/_history", summary="System history: what changed since _since")
    async def system_history(request: Request) -> Response:
        who(request)
        fmt = negotiate(request)
        return await run_in_threadpool(_history, request, fmt, None, None)

    async def search_get(request: Request, rtype: str) -> Response:
        who(request)
        _check_searched(rtype)
        fmt = negotiate(request)
        items = list(request.query_params.multi_items())
        resources = await listed(request, rtype)
        return await run_in_threadpool(_search, request, fmt, rtype, items, resources)

    async def search_post(request: Request, rtype: str) -> Response:
        who(request)
        _check_searched(rtype)
        fmt = negotiate(request)
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "application/x-www-form-urlencoded":
            raise FhirError(415, "not-supported", "POST _search takes application/x-www-form-urlencoded")
        form = await request.form()
        items = list(request.query_params.multi_items()) + [(k, str(v)) for k, v in form.multi_items()]
        resources = await listed(request, rtype)
        return await run_in_threadpool(_search, request, fmt, rtype, items, resources)

    async def type_history(request: Request, rtype: str) -> Response:
        who(request)
        _check_type(rtype)
        fmt = negotiate(request)
        return await run_in_threadpool(_history, request, fmt, rtype, None)

    async def read(request: Request, rtype: str, rid: str) -> Response:
        _check_type(rtype)
        _check_id(rid)
        fmt = negotiate(request)
        access = who(request)
        for resource in await listed(request, rtype):  # the catalogue's ids are reserved: it goes first
            if resource["id"] == rid:
                shaped = _shape(resource, *_shaping_of(shaping(request, rtype)))
                return send(request, fmt, orjson.dumps(shaped))
        prepared = served.read(rtype, rid, access)
        if prepared is None:
            with engine.connect() as conn:
                gone = reads.ever_served(conn, rtype, rid, access)
            if gone:
                raise FhirError(410, "deleted", f"{rtype}/{rid} is no longer served (it expired)")
            raise FhirError(404, "not-found", f"{rtype}/{rid} is not known")
        return read_response(request, fmt, prepared.version, shaping(request, rtype), prepared.body)

    async def instance_history(request: Request, rtype: str, rid: str) -> Response:
        who(request)
        _check_type(rtype)
        _check_id(rid)
        fmt = negotiate(request)
        return await run_in_threadpool(_history, request, fmt, rtype, rid)

    async def vread(request: Request, rtype: str, rid: str, vid: str) -> Response:
        _check_type(rtype)
        _check_id(rid)
        fmt = negotiate(request)
        access = who(request)
        number = whole_number("version", vid, 1, 2**62) if vid.isascii() else None
        if number is None:
            raise bad(f"{vid!r} is not a version id")
        with engine.connect() as conn:
            version = reads.vread(conn, rtype, rid, number, access)
            known = version is not None or reads.ever_served(conn, rtype, rid, access)
        if version is None:
            raise FhirError(
                404,
                "not-found",
                f"{rtype}/{rid} has no version {vid}" if known else f"{rtype}/{rid} is not known",
            )
        return read_response(request, fmt, version, shaping(request, rtype))

    # One documented route per served type, so the OpenAPI document lists each type's parameters;
    # the generic routes after them answer unknown types with 404.
    for rtype in SEARCHED_TYPES:
        stored = rtype in SERVED_TYPES  # the others are read by their own routes (catalogue, terminology)
        handlers = (search_get, search_post, type_history, read, instance_history, vread)
        _typed_routes(router, rtype, *(handlers if stored else handlers[:2]))
    for path, endpoint, method in (
        ("/{rtype}", search_get, "GET"),
        ("/{rtype}/_search", search_post, "POST"),
        ("/{rtype}/_history", type_history, "GET"),
        ("/{rtype}/{rid}", read, "GET"),
        ("/{rtype}/{rid}/_history", instance_history, "GET"),
        ("/{rtype}/{rid}/_history/{vid}", vread, "GET"),
    ):
        router.add_api_route(path, endpoint, methods=[method], include_in_schema=False)

    @router.get(
        "/MedicinalProductDefinition/{rid}/$everything", summary="A product with all that belongs to it"
    )
    async def everything(request: Request, rid: str) -> Response:
        who(request)
        _check_id(rid)
        fmt = negotiate(request)
        return await run_in_threadpool(_everything, request, fmt, rid)

    # -- the work, off the event loop -------------------------------------------------------

    def _snapshot_for(conn: Any, request: Request, query_snapshot: Snapshot | None) -> Snapshot:
        """The releases to answer from: those served now, or a paging link's; never more than the
        client may read (a link's `_snapshot` is the client's to edit)."""
        access = who(request)
        if query_snapshot is None:
            return served.snapshot(access)
        visible = served.visible(
            access, query_snapshot
        )  # first: releases it may not read are not asked about
        if visible is None or not reads.snapshot_exists(conn, visible):
            raise FhirError(
                410, "expired", "the releases this page belongs to are gone; start the search again"
            )
        return visible

    def _search(
        request: Request, fmt: str, rtype: str, items: list[tuple[str, str]], resources: list[Resource]
    ) -> Response:
        """Every search: the listed `resources` (sources besides the store) matched first, then the
        store's, one list paged as one. A type with no store part is answered without the store:
        its total is always given (it costs nothing) and its links name no snapshot."""
        query = parse(rtype, items, strict(request.headers.get("prefer", "")))
        stored = STORE in sources_of(rtype)
        if stored:
            _check_tags(query, who(request))
        try:
            listed = _listed_matches(resources, query)
        except SearchError as e:
            raise bad(str(e)) from None
        first = listed[query.offset : query.offset + query.count]
        count_only = query.summary == "count" or query.count == 0
        page: list[Version] = []
        included: list[Version] = []
        snapshot: Snapshot | None = None
        more = not count_only and query.offset + query.count < len(listed)
        total: int | None = len(listed)
        if stored:
            with engine.connect() as conn:
                snapshot = _snapshot_for(conn, request, query.snapshot)
                try:
                    page, more_stored, total_stored = reads.search(
                        conn,
                        snapshot,
                        rtype,
                        query.clauses,
                        sort=query.sort,
                        count=query.count - len(first),  # 0 still says whether there are more
                        offset=max(0, query.offset - len(listed)),
                        with_total=count_only or query.total != "none",
                        with_page=not count_only,
                    )
                except SearchError as e:
                    raise bad(str(e)) from None
                more = more or more_stored
                total = None if total_stored is None else total_stored + len(listed)
                included = [] if count_only else _included(conn, snapshot, query, page, first)
        base = _base(request)
        links = _links(request, query, snapshot, more)
        entries = (
            []
            if count_only
            else [
                entry(
                    f"{base}/{rtype}/{r['id']}",
                    orjson.dumps(_shape(r, query.summary, query.elements)),
                    {"search": {"mode": "match"}},
                )
                for r in first
            ]
        )
        entries += [
            entry(f"{base}/{v.type}/{v.id}", _resource_bytes(v, query), {"search": {"mode": "match"}})
            for v in page
        ]
        entries += [
            entry(f"{base}/{v.type}/{v.id}", _resource_bytes(v, query), {"search": {"mode": "include"}})
            for v in included
        ]
        if query.ignored:
            note = {
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "warning",
                        "code": "not-supported",
                        "diagnostics": f"ignored search parameter {name!r} (unknown for {rtype})",
                    }
                    for name in query.ignored
                ],
            }
            entries.append(
                entry("urn:grunndata:search-outcome", orjson.dumps(note), {"search": {"mode": "outcome"}})
            )
        return send(request, fmt, bundle("searchset", entries, links, total))

    def _included(
        conn: Any, snapshot: Snapshot, query: Query, page: list[Version], listed: Sequence[Resource] = ()
    ) -> list[Version]:
        """What `_include` and `_revinclude` add to a page: the store's matches, and the catalogue's
        (`listed`; they can be pointed at, but point at nothing the store serves)."""
        if not page and not listed:
            return []
        seen = {(v.type, v.id) for v in page} | {(r["resourceType"], r["id"]) for r in listed}
        found: list[Version] = []
        for inc in query.includes:
            keys = reads.references_from(conn, page, f"{inc.source}.{inc.param.code}") if page else []
            keys = [k for k in keys if (inc.target is None or k[0] == inc.target) and k not in seen]
            for v in reads.read_many(conn, snapshot, keys):
                seen.add((v.type, v.id))
                found.append(v)
        for inc in query.revincludes:
            targets = [f"{v.type}/{v.id}" for v in page] + [f"{r['resourceType']}/{r['id']}" for r in listed]
            for v in reads.referring(conn, snapshot, inc.source, inc.param.code, targets):
                if (v.type, v.id) not in seen:
                    seen.add((v.type, v.id))
                    found.append(v)
        return found

    def _links(
        request: Request, query: Query, snapshot: Snapshot | None, more: bool
    ) -> list[tuple[str, str]]:
        kept = [(k, v) for k, v in request.query_params.multi_items() if k in ("_format", "_pretty")]
        shaping_params: list[tuple[str, str]] = []
        for name in ("_sort", "_include", "_revinclude", "_summary", "_elements", "_total"):
            shaping_params += [(k, v) for k, v in request.query_params.multi_items() if k == name]
        url = f"{_base(request)}/{query.rtype}?"

        def at(offset: int) -> str:
            paging = [("_count", str(query.count)), ("_offset", str(offset))]
            if snapshot is not None:  # the releases the page was read from (none for a listed-only type)
                paging.append(("_snapshot", snapshot.token))
            return url + urlencode(query.used + shaping_params + kept + paging)

        links = [("self", at(query.offset)), ("first", at(0))]
        if more:
            links.append(("next", at(query.offset + query.count)))
        if query.offset > 0:
            links.append(("previous", at(max(0, query.offset - query.count))))
        return links

    def _history(request: Request, fmt: str, rtype: str | None, rid: str | None) -> Response:
        params = request.query_params
        known = {"_since", "_count", "_offset", "_cursor", "_snapshot", "_format", "_pretty"}
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
                _, since, _ = reads.date_range(params["_since"])
            except SearchError as e:
                raise bad(f"_since: {e}") from None
        after = None
        if "_cursor" in params:
            try:
                after = reads.parse_cursor(params["_cursor"])
            except SearchError as e:
                raise bad(str(e)) from None
        with engine.connect() as conn:
            upto = (
                whole_number("_snapshot", params["_snapshot"], 0, 2**62)
                if "_snapshot" in params
                else reads.newest_release(conn)
            )
            access = who(request)
            if rid is not None and not reads.ever_served(conn, rtype or "", rid, access):
                raise FhirError(404, "not-found", f"{rtype}/{rid} is not known")
            items, more = reads.history(
                conn,
                rtype=rtype,
                rid=rid,
                since=since,
                upto_release=upto,
                count=count,
                offset=offset,
                entitled=access,
                after=after,
            )
        base = _base(request)
        entries = []
        for item in items:
            at = reads.instant(item.at)
            url = f"{item.type}/{item.id}"
            if item.version is None:
                extra = {
                    "request": {"method": "DELETE", "url": url},
                    "response": {"status": "410", "lastModified": at},
                }
                entries.append(entry(f"{base}/{url}", None, extra))
            else:
                v = item.version
                extra = {
                    "request": {"method": "POST" if v.version == 1 else "PUT", "url": url},
                    "response": {
                        "status": "201" if v.version == 1 else "200",
                        "etag": f'W/"{v.version}"',
                        "lastModified": at,
                    },
                }
                entries.append(entry(f"{base}/{url}", v.body(), extra))
        path = "/".join(p for p in (base, rtype, rid, "_history") if p)
        kept = [(k, v) for k, v in params.multi_items() if k in ("_since", "_format", "_pretty")]

        def at_offset(n: int, cursor: str | None = None) -> str:
            """A page link: `_offset` says where it is; `_cursor` (next links) lets it be read from
            the index instead of skipping `_offset` items, so paging through a whole release costs
            the same per page."""
            pairs = [("_count", str(count)), ("_offset", str(n))]
            if cursor is not None:
                pairs.append(("_cursor", cursor))
            return path + "?" + urlencode(kept + pairs + [("_snapshot", str(upto))])

        links = [("self", at_offset(offset, params.get("_cursor")))]
        if more:
            links.append(("next", at_offset(offset + count, items[-1].cursor)))
        if offset > 0:
            links.append(("previous", at_offset(max(0, offset - count))))
        return send(request, fmt, bundle("history", entries, links))

    def _everything(request: Request, fmt: str, rid: str) -> Response:
        access = who(request)
        with engine.connect() as conn:
            snapshot = served.snapshot(access)
            product = reads.read(conn, snapshot, MPD, rid)
            if product is None:
                if reads.ever_served(conn, MPD, rid, access):
                    raise FhirError(410, "deleted", f"{MPD}/{rid} is no longer served (it expired)")
                raise FhirError(404, "not-found", f"{MPD}/{rid} is not known")
            related = everything_of(conn, snapshot, product)
        base = _base(request)
        entries = [entry(f"{base}/{MPD}/{rid}", product.body(), {"search": {"mode": "match"}})]
        entries += [
            entry(f"{base}/{v.type}/{v.id}", v.body(), {"search": {"mode": "include"}}) for v in related
        ]
        return send(request, fmt, bundle("searchset", entries, [("self", str(request.url))], total=1))

    return router


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


def _typed_routes(router: APIRouter, rtype: str, *handlers: Any) -> None:
    """The documented routes of one type: search (GET and POST), and, given their handlers, history,
    read and vread."""
    search_get, search_post, *stored = handlers

    async def search_typed(request: Request) -> Response:
        return await search_get(request, rtype)  # type: ignore[no-any-return]

    async def search_post_typed(request: Request) -> Response:
        return await search_post(request, rtype)  # type: ignore[no-any-return]

    routes: list[tuple[str, Any, str, str, dict[str, Any]]] = [
        ("", search_typed, "GET", "search", search_doc(rtype)),
        ("/_search", search_post_typed, "POST", "search-form", search_doc(rtype, post=True)),
    ]
    if stored:
        type_history, read, instance_history, vread = stored

        async def history_typed(request: Request) -> Response:
            return await type_history(request, rtype)  # type: ignore[no-any-return]

        async def read_typed(request: Request, rid: str) -> Response:
            return await read(request, rtype, rid)  # type: ignore[no-any-return]

        async def instance_history_typed(request: Request, rid: str) -> Response:
            return await instance_history(request, rtype, rid)  # type: ignore[no-any-return]

        async def vread_typed(request: Request, rid: str, vid: str) -> Response:
            return await vread(request, rtype, rid, vid)  # type: ignore[no-any-return]

        routes += [
            ("/_history", history_typed, "GET", "history-type", read_doc(history=True)),
            ("/{rid}", read_typed, "GET", "read", read_doc(version=True)),
            ("/{rid}/_history", instance_history_typed, "GET", "history-instance", read_doc(history=True)),
            ("/{rid}/_history/{vid}", vread_typed, "GET", "vread", read_doc(version=True)),
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


def everything_of(conn: Any, snapshot: Snapshot, product: Version) -> list[Version]:
    """What belongs to a product: packages, items, administrable forms, ingredients, substances,
    interactions, the documents about it (ePI Compositions) and their authors (Organizations)."""
    ref = f"{product.type}/{product.id}"
    packages = reads.referring(
        conn, snapshot, "PackagedProductDefinition", "package-for", [ref], EVERYTHING_LIMIT
    )
    forms = reads.referring(
        conn, snapshot, "AdministrableProductDefinition", "form-of", [ref], EVERYTHING_LIMIT
    )
    parts = [product, *packages, *forms]
    item_keys = set(reads.references_from(conn, [product], "MedicinalProductDefinition.comprised-of"))
    item_keys |= set(reads.references_from(conn, packages, "PackagedProductDefinition.manufactured-item"))
    item_keys |= set(reads.references_from(conn, forms, "AdministrableProductDefinition.manufactured-item"))
    items = reads.read_many(conn, snapshot, sorted(item_keys))
    owners = [f"{v.type}/{v.id}" for v in (*parts, *items)]
    ingredients = reads.referring(conn, snapshot, "Ingredient", "for", owners, EVERYTHING_LIMIT)
    substance_keys = reads.references_from(conn, ingredients, "Ingredient.substance")
    substances = reads.read_many(conn, snapshot, substance_keys)
    atc = [t for t in reads.index_tokens(conn, product, "product-classification")]
    interactions = reads.with_tokens(
        conn, snapshot, "ClinicalUseDefinition", "interactant", atc, EVERYTHING_LIMIT
    )
    by_substance = reads.referring(
        conn,
        snapshot,
        "ClinicalUseDefinition",
        "interactant-reference",
        [f"{v.type}/{v.id}" for v in substances],
        EVERYTHING_LIMIT,
    )
    documents = reads.referring(conn, snapshot, "Composition", "subject", owners, EVERYTHING_LIMIT)
    authors = reads.read_many(conn, snapshot, reads.references_from(conn, documents, "Composition.author"))
    notes = [
        v  # sector and supplementary notes about the product or its packages, for entitled clients
        for v in reads.referring(conn, snapshot, "Basic", "subject", owners, EVERYTHING_LIMIT)
        if v.tier != "national"
    ]
    out: list[Version] = []
    seen = {(product.type, product.id)}
    related = (*packages, *forms, *items, *ingredients, *substances, *interactions, *by_substance)
    for v in (*related, *documents, *authors, *notes):
        if (v.type, v.id) not in seen:
            seen.add((v.type, v.id))
            out.append(v)
    return out
