"""The hot path: plain reads and repeated searches answered straight from prepared bytes.

EPJ systems read by id and look up the same varenr thousands of times a day; through the full
framework stack an answer costs several times what the lookup does. This ASGI layer answers
- the plainest read (`GET /fhir/<Type>/<id>`, no query string, no conditional headers, JSON
  acceptable) of a served resource, with exactly the bytes and headers the route would send;
- a first-time search of the commonest shapes (by varenr, ATC, name...) from the served snapshot's
  in-memory index, through the route's own Bundle builder (server/fastsearch.py);
- a search (`GET /fhir/<Type>?...`) asked before in the same snapshot: releases never change once
  served, so the same question has the same answer until a new release is activated (the cache
  is emptied then; GRUNNDATA_SEARCH_CACHE_MB sizes it, 0 turns it off);
- `GET /fhir/ConceptMap/$translate` once the snapshot's maps are indexed (a dictionary lookup;
  the framework around it cost 95 % of the answer).
The plainest read of all (a GET with no Origin and no DPoP proof) does not even wait for the layers
around this one: `HotReads` answers it in front of them (see there).
Anything else, misses included, goes to the app; so does a request whose token does not verify
(the app answers it 401), and a `$translate` past the bounds of a search (the app answers 400). What a client may read is decided here as in the app: a read of data
it may not read, and searches, are keyed and filtered by its entitlement.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, MutableMapping
from typing import Any

from starlette.concurrency import run_in_threadpool

from grunndata.fhir import SERVED_TYPES
from grunndata.server.access import ACCESS, AUTH_ERROR, authorization_of
from grunndata.server.auth import ANONYMOUS, Access, AuthError
from grunndata.server.conventions import (
    AUDIENCE,
    EVERYONE,
    NATIONAL_ONLY,
    PREPARED,
    Compression,
    Conventions,
    Headers,
    OnlyWithOrigin,
)
from grunndata.server.fastsearch import BY_INDEX, BY_ROUTE, SearchIndexes, answer
from grunndata.server.faults import HEADER, REQUEST_ID, RequestIds, sane_or_new
from grunndata.server.fhir_io.params import DEFAULT_LIMITS, ID_PATTERN, Limits
from grunndata.server.observe import Observe
from grunndata.server.r4view import R5_OF_R4, R4Cache
from grunndata.server.state import JSON_CONTENT_TYPE, Prepared, Served
from grunndata.server.terminology import Terminology
from grunndata.store import STORE, sources_of
from grunndata.store.access import NATIONAL

# only the store's: a listed part (the catalogue's Organizations) is live, and goes first
_TYPES = frozenset(t for t in SERVED_TYPES if sources_of(t) == (STORE,))
_CONDITIONAL = (b"if-none-match", b"if-modified-since", b"prefer")
_SEARCH_CONDITIONAL = (b"if-modified-since", b"prefer")  # If-None-Match of a search is answered here
TRANSLATE = "/fhir/ConceptMap/$translate"
READ_TRIED = "grunndata.read_tried"  # scope key: HotReads asked the read cache and found nothing to send
R4_BASE = "/fhir-r4/"
R4_SEARCH_BASES = ("/fhir-r4", "/fhir-r4-hresept")
# the `_format` a read may name and still be the fast path's: the JSON it sends ("+" is a space
# in a query string, so `application/fhir+json` unencoded arrives as `application/fhir json`)
_JSON_FORMATS = frozenset(
    f"_format={f}".encode()
    for f in (
        "json",
        "application/json",
        "application/fhir+json",
        "application/fhir%2Bjson",
        "application/fhir%2bjson",
        "application/fhir%20json",
    )
)


def _plain_read(query_string: bytes) -> bool:
    """No query string, or one `_format` that asks for JSON."""
    return not query_string or query_string in _JSON_FORMATS


def _wants_json(headers: list[tuple[bytes, bytes]], conditional: tuple[bytes, ...] = _CONDITIONAL) -> bool:
    for name, value in headers:
        if name in conditional:
            return False
        if name == b"accept" and not _plain_json_accept(value):
            return False
    return True


_JSON_RANGES = frozenset((b"application/fhir+json", b"application/json", b"*/*", b"application/*"))


def _plain_json_accept(value: bytes) -> bool:
    """An Accept every one of whose media ranges is JSON or anything, with no parameter but a
    charset: the route would answer JSON. Anything else (a quality, `fhirVersion`, another type
    that may rank above JSON or be all that is asked) goes to the app's negotiation."""
    for part in value.lower().split(b","):
        media, *params = part.split(b";")
        if media.strip() not in _JSON_RANGES:
            return False
        if any(not p.strip().startswith(b"charset=") for p in params):
            return False
    return True


def search_etag(scope: dict[str, Any], served: Served, access: Access) -> str:
    """The ETag of a search of a store-only type, known before the search is run.

    Releases never change once served, so the answer is fixed by: the releases the client may
    read in the snapshot served now (a new release changes them), its entitlement (two clients
    whose answers could differ never share a tag, even when their releases are the same today),
    the URL (its links name our scheme and host), and the headers that shape it (Accept, Prefer).
    Weak: two such answers mean the same but are not the same bytes (Bundle.meta.lastUpdated is
    the moment of answering, and a cached copy keeps its own); a weak tag is all If-None-Match
    needs, and it stays true across gzip and brotli.
    """
    headers = dict(scope["headers"])  # the last of a repeated header: the key is the same for equal requests
    parts = (
        served.snapshot(access).token.encode(),
        access.key.encode(),
        scope.get("scheme", "http").encode(),
        headers.get(b"host", b""),
        scope["path"].encode(),
        scope["query_string"],
        headers.get(b"accept", b""),
        headers.get(b"prefer", b""),
    )
    digest = hashlib.sha256(b"\x00".join(parts)).hexdigest()[:24]
    return f'W/"s{digest}"'


def _r4_search(path: str) -> bool:
    """`/fhir-r4/<R4 type>` or `/fhir-r4-hresept/<R4 type>`: a search of an R4 base."""
    base, _, r4_type = path.rpartition("/")
    return base in R4_SEARCH_BASES and r4_type in R5_OF_R4


def _matches(if_none_match: bytes, etag: str) -> bool:
    """If-None-Match against our weak tag: weak comparison (RFC 9110 8.8.3.2), or `*`."""
    opaque = etag.removeprefix("W/")
    for tag in if_none_match.decode("latin-1").split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == opaque:
            return True
    return False


class FastReads:
    def __init__(
        self,
        app: Any,
        served: Served,
        terms: Terminology | None = None,
        limits: Limits = DEFAULT_LIMITS,
        r4: R4Cache | None = None,
        indexes: SearchIndexes | None = None,
    ) -> None:
        self.app, self.served, self.terms, self.limits = app, served, terms, limits
        self.r4 = r4
        self.indexes = indexes  # first-time searches of the commonest shapes (server/fastsearch.py)

    async def _access(self, scope: dict[str, Any]) -> Access | None:
        """Who asks, settled once per request for the whole app (`server/access.py` reads it).

        A token seen before costs a dictionary lookup (and a DPoP proof's check, which is CPU only);
        a new one is verified in a worker thread, since that may fetch the JWKS over the network
        and must not stall the event loop.
        """
        found = scope.get(ACCESS)
        if isinstance(found, Access):  # settled before (HotReads)
            return found
        auth = self.served.auth
        try:
            header, proof = authorization_of(scope, auth)
            access = auth.known(header, proof)  # a DPoP proof is checked here (no I/O)
            if access is None:
                access = await run_in_threadpool(auth.access, header, proof)
        except AuthError as e:
            scope[AUTH_ERROR] = e  # the app answers it (401 or 503) in its own format
            return None
        scope[ACCESS] = access
        return access

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        access = await self._access(scope)
        if access is None:
            await self.app(scope, receive, send)
            return
        if (
            scope["method"] == "GET"
            and scope["path"].startswith(R4_BASE)
            and await self._r4_read(scope, send, access)
        ):
            return
        if scope["method"] == "GET" and _r4_search(scope["path"]):  # tagged as an R5 search is
            tagged = await self._tag_search(scope, send, access)
            if tagged is None:
                return
            send = tagged
        if scope["method"] == "GET" and scope["path"].startswith("/fhir/"):
            path: str = scope["path"]
            if path.count("/") == 2 and path[6:] in _TYPES:  # a search: the fast path's or the app's
                tagged = await self._tag_search(scope, send, access)
                if tagged is None:
                    return
                send = tagged
            if path == TRANSLATE and self.terms is not None and _wants_json(scope["headers"]):
                body = self.terms.translate_now(scope["query_string"], self.limits)
                if body is not None:
                    headers = [
                        (b"content-type", JSON_CONTENT_TYPE),
                        (b"content-length", str(len(body)).encode()),
                    ]
                    await _answer(send, headers, body)
                    return
            slashes = path.count("/")
            if slashes == 3 and _plain_read(scope["query_string"]) and scope.get(READ_TRIED) is not True:
                rtype, rid = path[6:].split("/")
                if rtype in _TYPES and ID_PATTERN.fullmatch(rid) and _wants_json(scope["headers"]):
                    prepared = self.served.read(rtype, rid, access)
                    if prepared is not None:
                        if prepared.version.tier == NATIONAL:
                            scope[AUDIENCE] = EVERYONE
                        scope[PREPARED] = True  # the same bytes object each time: its gzip is kept
                        await _answer(send, prepared.raw_headers(), prepared.body)
                        return
            elif (
                slashes == 2
                and path[6:] in _TYPES
                and _wants_json(scope["headers"], _SEARCH_CONDITIONAL)  # If-None-Match: answered above
            ):
                await self._search(scope, receive, send, access)
                return
        await self.app(scope, receive, send)

    async def _tag_search(self, scope: dict[str, Any], send: Any, access: Access) -> Any:
        """A search's ETag (`search_etag`) on its answer: the `send` that adds it, or None when
        If-None-Match holds it (a 304 is sent: no need to search)."""
        audience = self._audience(scope, access)
        if audience is not None:
            scope[AUDIENCE] = audience
        etag = search_etag(scope, self.served, access)
        asked = next((v for k, v in scope["headers"] if k == b"if-none-match"), None)
        if asked is not None and _matches(asked, etag):
            await send({"type": "http.response.start", "status": 304, "headers": [(b"etag", etag.encode())]})
            await send({"type": "http.response.body", "body": b""})
            return None
        return _with_etag(send, etag.encode())

    async def _r4_read(self, scope: dict[str, Any], send: Any, access: Access) -> bool:
        """The plainest R4 read (`GET /fhir-r4/<SAFEST type>/<id>`) of a served resource, from its
        prepared R4 bytes (server/r4view.py); False: the app answers."""
        path: str = scope["path"]
        if path.count("/") != 3 or not _plain_read(scope["query_string"]) or self.r4 is None:
            return False
        r4_type, rid = path[len(R4_BASE) :].split("/")
        rtype = R5_OF_R4.get(r4_type)
        if rtype not in _TYPES or not ID_PATTERN.fullmatch(rid) or not _wants_json(scope["headers"]):
            return False
        found = self.served.read_r4(str(rtype), rid, access)  # the stored R4 body in the same query
        if found is None:
            return False
        prepared, stored = found
        if prepared.version.tier == NATIONAL:
            scope[AUDIENCE] = EVERYONE
        r4 = self.r4.prepared(prepared, stored)
        scope[PREPARED] = True
        await _answer(send, r4.raw_headers(), r4.body)
        return True

    def _audience(self, scope: dict[str, Any], access: Access) -> str | None:
        """Who may be given a search's answer (server/conventions.py): EVERYONE when no release
        served now is restricted (every client gets this answer), NATIONAL_ONLY when this client
        sees no release that a client without a token does not (other clients may get more, but
        nothing restricted is in this one), None (private) otherwise. A search that names its own
        `_snapshot` (a paging link's) is not compared, and is private to a client with a scope."""
        if b"_snapshot" in scope["query_string"]:
            return None
        public = self.served.snapshot(ANONYMOUS)
        if self.served.snapshot() == public:
            return EVERYONE
        if self.served.snapshot(access) == public:
            return NATIONAL_ONLY
        return None

    async def _search(self, scope: dict[str, Any], receive: Any, send: Any, access: Access) -> None:
        """A search of a store-only type: asked before (the cache), answered by the in-memory index
        (server/fastsearch.py), or the route's (its answer cached)."""
        host = next((v for k, v in scope["headers"] if k == b"host"), b"")
        token = self.served.snapshot(access).token.encode()
        key = (
            token,
            access.key.encode(),  # the same data, but perhaps a 403 for one and not the other
            scope.get("scheme", "http").encode(),
            host,
            scope["path"].encode(),
            scope["query_string"],
        )
        cached = self.served.search_cache_bytes > 0
        hit = self.served.cached_search(key) if cached else None
        if hit is not None:
            scope[PREPARED] = True
            await _answer(send, *hit)
            return
        found = (
            None
            if self.indexes is None
            else await answer(scope, self.served, self.indexes, self.limits, access)
        )
        (BY_ROUTE if found is None else BY_INDEX).inc()
        if found is not None:
            if cached:
                self.served.keep_search(key, *found)
            await _answer(send, *found)
            return
        if not cached:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def keep(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body") and start.get("status") == 200:
                    self.served.keep_search(key, list(start.get("headers", [])), b"".join(chunks))
            await send(message)

        await self.app(scope, receive, keep)


def _with_etag(send: Any, etag: bytes) -> Any:
    """`send` with the search's ETag added to a 200 answer."""

    async def tagged(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] == 200:
            message = {**message, "headers": [*message.get("headers", []), (b"etag", etag)]}
        await send(message)

    return tagged


async def _answer(send: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_FRAMEWORK_LAYERS = frozenset(
    ("ServerErrorMiddleware", "ExceptionTelemetryMiddleware", "AppBodyLimitMiddleware")
)
_RID_SLOT = (HEADER, b"")  # where X-Request-ID goes in a kept header list
KEPT_HEADERS = 10_000  # reads whose headers HotReads keeps made (~1 KB each)


class HotReads:
    """The commonest request of all, a plain read by id of a served version, answered before any
    layer, with exactly what the layers would have sent (FastReads' bytes, RequestIds' id,
    Compression's coding and Conventions' Cache-Control and Vary) and counted and logged by
    Observe's own `answered`. The app (app.py) asks it first.

    Through the layers a cached read cost 3.7 times the instructions of the bare app
    (benchmarks/bare_app.py): each layer wrapped `send` in a closure, copied the start message and
    rebuilt the header list. Here a national version's headers are made once per coding and
    reused (a read cache hit only changes its request id). Whatever else goes through the layers
    as before: HEAD, a request with an Origin (CORS), a DPoP proof, conditional headers, an Accept
    the negotiation must weigh, a read that is not served (404, 410: the app answers, without
    asking the store again), and every request while FastAPI's OpenTelemetry is on.
    """

    def __init__(
        self,
        fast: FastReads,
        observe: Observe,
        conventions: Conventions,
        compression: Compression,
        telemetry: Callable[[], bool] = lambda: False,
    ) -> None:
        self.served, self.observe = fast.served, observe
        self.conventions, self.compression = conventions, compression
        self.telemetry = telemetry  # FastAPI's OpenTelemetry on: its spans need its layers
        self._telemetry_on, self._telemetry_checked = True, -1.0
        # a national version's headers as sent, by (type, id, coding): the Prepared they were
        # made of, and the headers before and after X-Request-ID
        self._kept: dict[tuple[str, str, str | None], tuple[Prepared, Headers, Headers]] = {}
        self._accepts: dict[bytes, bool] = {}  # Accept values seen: JSON or not
        self._routes: dict[str, str] = {}  # type -> the read route's template (the metrics' label)

    @classmethod
    def over(cls, stack: Any, telemetry: Callable[[], bool] = lambda: False) -> HotReads | None:
        """The lane in front of `stack` (the app's built middleware), or None when the stack holds a
        layer it does not know to do the same as (a test's, an operator's)."""
        found: dict[type, Any] = {}
        layer = stack
        while not isinstance(layer, FastReads):
            if isinstance(layer, (Observe, Conventions, Compression, RequestIds, OnlyWithOrigin)):
                found[type(layer)] = layer
            elif type(layer).__name__ not in _FRAMEWORK_LAYERS:
                return None
            layer = getattr(layer, "app", None)
        if not all(t in found for t in (Observe, Conventions, Compression, RequestIds)):
            return None
        return cls(layer, found[Observe], found[Conventions], found[Compression], telemetry)

    def _telemetry(self) -> bool:
        now = time.monotonic()
        if now - self._telemetry_checked >= 1.0:  # providers are set at start; a second late is fine
            self._telemetry_on, self._telemetry_checked = bool(self.telemetry()), now
        return self._telemetry_on

    async def __call__(self, scope: dict[str, Any], send: Any) -> bool:
        """Answer `scope` if it is a plain read of a served version; False: not answered, nothing sent."""
        if scope["type"] != "http" or scope["method"] != "GET":
            return False
        path: str = scope["path"]
        if not path.startswith("/fhir/") or path.count("/") != 3 or not _plain_read(scope["query_string"]):
            return False
        started = time.perf_counter()
        rtype, rid = path[6:].split("/")
        if rtype not in _TYPES or not ID_PATTERN.fullmatch(rid) or self._telemetry():
            return False
        encoding = sent_id = authorization = None
        for name, value in scope["headers"]:
            if name in _CONDITIONAL or name == b"origin" or name == b"dpop":
                return False
            if name == b"accept":
                json = self._accepts.get(value)
                if json is None:
                    json = _plain_json_accept(value)
                    if len(self._accepts) < 256:
                        self._accepts[value] = json
                if not json:
                    return False
            elif name == b"accept-encoding":
                encoding = value
            elif name == HEADER and sent_id is None:
                sent_id = value
            elif name == b"authorization":
                authorization = value
        auth = self.served.auth
        try:
            if authorization is None:
                access = auth.known(None)
            else:
                header, proof = authorization_of(scope, auth)
                access = None if proof is not None else auth.known(header)
        except AuthError:
            return False  # the layers answer it, in the format asked
        if access is None:  # a token not seen before: verified off the event loop, by FastReads
            return False
        scope[ACCESS] = access
        try:
            prepared = self.served.read(rtype, rid, access)
        except Exception:  # the layers meet it again, and answer it as the 500 it is (faults.py)
            return False
        if prepared is None:
            scope[READ_TRIED] = True  # not served to this client: the app says why (404, 410)
            return False
        rid_sent = sane_or_new(sent_id)
        scope[REQUEST_ID] = rid_sent
        coding = None if encoding is None else self.compression.coding(encoding)
        body = prepared.body
        national = prepared.version.tier == NATIONAL
        if national:
            scope[AUDIENCE] = EVERYONE
        kept = self._kept.get((rtype, rid, coding)) if national else None
        if kept is None or kept[0] is not prepared:
            head, tail = await self._headers(scope, prepared, coding)
            if national and self.served.cache_size > 0:
                if len(self._kept) >= KEPT_HEADERS:
                    del self._kept[next(iter(self._kept))]  # the oldest
                self._kept[rtype, rid, coding] = (prepared, head, tail)
        else:
            head, tail = kept[1], kept[2]
        if coding is not None and len(body) >= self.compression.minimum:
            body = await self.compression.compressed(coding, body, True)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*head, (HEADER, rid_sent.encode()), *tail],
            }
        )
        await send({"type": "http.response.body", "body": body})
        route = self._routes.get(rtype)
        if route is None:
            route = self._routes[rtype] = self.observe.route(scope)  # one per type
        self.observe.answered(scope, 200, started, route)
        return True

    async def _headers(
        self, scope: dict[str, Any], prepared: Prepared, coding: str | None
    ) -> tuple[Headers, Headers]:
        """The headers the layers send with `prepared`, split where X-Request-ID goes."""
        headers = [*prepared.raw_headers(), _RID_SLOT]  # RequestIds appends it
        if len(prepared.body) >= self.compression.minimum:  # JSON is compressible
            headers, _ = await self.compression.encode(coding, headers, prepared.body, True)
        headers = self.conventions.answer_headers(scope, 200, headers)
        at = headers.index(_RID_SLOT)
        return headers[:at], headers[at + 1 :]
