"""First-time searches of the commonest shapes answered from memory, for the fast path.

A clinician's typed name or an EPJ's varenr is almost always a question not asked before; through
the framework and SQLAlchemy such a search cost ~2-6 ms of CPU. The served snapshot's in-memory
index (store/memsearch.py, built when the snapshot is served, as the terminology indexes are)
finds the page, and the page is sent through the same Bundle builder as the search route's, so
the answer is the same bytes. Only searches the index answers exactly are taken here (one or more
indexed token or string parameters, no chain, sort, include, content filter or paging snapshot;
JSON), and only for clients that read the national part alone, which is what the index holds;
everything else, errors included, is the route's.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from grunndata.memory import cycle_collection_paused
from grunndata.server.auth import ANONYMOUS, Access
from grunndata.server.fhir_io import bundles
from grunndata.server.fhir_io.params import Limits, parse
from grunndata.server.fhir_io.responses import FhirError, fhir_version, negotiate, pretty
from grunndata.server.state import JSON_CONTENT_TYPE, PerSnapshot, Prepared, Served
from grunndata.store import SearchError, SearchIndex, Snapshot

log = logging.getLogger("grunndata.server")
ANSWERS = Counter(
    "grunndata_search_index_answers",
    "Searches of a store type not answered from the search cache, by who answered them: the in-memory "
    "search index (index) or the search route (route).",
    ("result",),
)
BY_INDEX, BY_ROUTE = ANSWERS.labels("index"), ANSWERS.labels("route")


class SearchIndexes(PerSnapshot[SearchIndex]):
    """The in-memory search index of the national part of the served snapshot, and of one being
    prepared. A new snapshot's is built before it is served (one of Served.preparers); the first
    snapshot after start has its built in a thread at its first search, which the route answers
    meanwhile."""

    def __init__(self, served: Served) -> None:
        super().__init__(served, "search-index", self._build)

    def current(self, view: Snapshot) -> SearchIndex | None:
        """The index of `view` if it is the national part of the served snapshot and it is built;
        None otherwise (a build is started when it is that part and none is under way)."""
        built = self.built(view.token)
        if built is not None:
            return built
        if view == self.served.snapshot(ANONYMOUS):  # a client reading more: the route's
            self.future(view)
        return None

    def _build(self, snapshot: Snapshot) -> SearchIndex:
        # as the terminology indexes' build (server/terminology.py): hundreds of thousands of new
        # objects, no cycles; a full collection they set off held the interpreter for 100-300 ms
        with cycle_collection_paused(), self.served.engine.connect() as conn:
            index = SearchIndex.build(conn, snapshot, pause=self.served.pace())
            gc.freeze()
        log.info(
            "search index of snapshot %s built in %.2f s, ~%.0f MB",
            snapshot.token,
            index.build_seconds,
            index.memory_bytes() / 1e6,
        )
        return index


async def answer(
    scope: dict[str, Any], served: Served, indexes: SearchIndexes, limits: Limits, access: Access
) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
    """The headers and body the search route would send for this GET search of a store-only type
    (`/fhir/<type>?...`, JSON asked for, no conditional header), or None: the route's to answer.
    The page's versions come from the read cache, which reads and these searches share (bodies by
    version, never an answer); those not in it are read in a worker thread from a database server
    (a round trip must not hold the event loop, and every other client with it), inline from
    SQLite (a lookup in this process, cheaper than the hop), and kept there."""
    query_string: bytes = scope["query_string"]
    if not query_string:
        return None
    whole = served.snapshot()  # before the view: what is read is kept only while it is served
    view = served.snapshot(access)
    index = indexes.current(view)
    if index is None:
        return None
    rtype = scope["path"][6:]
    request = Request(scope)
    try:
        limits.check_size(len(query_string))
        # the fast path took an Accept of JSON ranges alone, with no parameter but a charset (the
        # answer is JSON, no fhirVersion named); `_format` may still say otherwise
        if "_format" in request.query_params and (
            negotiate(request) != "json" or fhir_version(request) is not None
        ):
            return None
        if pretty(request):
            return None
        query = parse(rtype, list(request.query_params.multi_items()), False, limits)
    except FhirError:
        return None  # the route says why
    if (
        query.snapshot is not None
        or query.sort
        or query.includes
        or query.revincludes
        or query.content_filter is not None
        or not index.answers(rtype, query.clauses)
    ):
        return None
    count_only = query.summary == "count" or query.count == 0
    with_total = count_only or query.total != "none"
    try:
        found = index.search(rtype, query.clauses, query.count, query.offset, with_total)
    except SearchError:
        return None
    total = found.total if with_total else None
    page: list[Prepared] = []
    if not count_only:
        cached = served.cached(rtype, found.pks, found.ids)
        if len(cached) == len(found.pks):
            page = [cached[pk] for pk in found.pks]
        elif served.engine.dialect.name == "sqlite":
            page = served.prepared(rtype, found.pks, found.ids, whole, cached)
        else:
            page = await run_in_threadpool(served.prepared, rtype, found.pks, found.ids, whole, cached)
    more = not count_only and found.more
    body = bundles.searchset(
        request, query, [], [p.version for p in page], [], view, more, total, {}, [p.body for p in page]
    )
    return [(b"content-length", str(len(body)).encode()), (b"content-type", JSON_CONTENT_TYPE)], body
