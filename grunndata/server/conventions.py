"""HTTP as proxies and browsers expect it, on the fast path (fastpath.py) and the framework alike.

ASGI layers that app.py puts around both (outermost first: `OnlyWithOrigin` (Starlette's CORS
layer, for a browser's request), `Conventions`, `Compression`, then the request ids, the fast
path and FastAPI), so an answer gets the same headers whichever of the two made it:

- `OnlyWithOrigin`: CORS; a preflight is answered there and never reaches a route.
- `Conventions`: HEAD on every GET route (answered as the GET, its body dropped, so the headers
  are exactly the GET's, Content-Length included); `Cache-Control` and `Vary` on every answer.
- `Compression`: gzip or brotli, by the client's Accept-Encoding and its q-values, for a text
  answer of at least GRUNNDATA_COMPRESS_MIN_BYTES; `/fest/m30` compresses itself and is left alone.

What may be cached, and by whom: national data is the same for every client, so a shared cache
(a proxy) may keep it (`public`); but a new release can withdraw a product or carry a notice,
so by default the cache must ask us again each time (`no-cache`), which costs it a 304 when its
copy is still current (the ETag). An operator who accepts answers up to N seconds old sets
GRUNNDATA_CACHE_MAX_AGE=N. An answer that may hold restricted data (sector or supplementary,
read because of a token's scope) is `private`: only the client's own cache may keep it. Errors
are `no-store`: a 503 or a 401 must not be served again from a cache.

How an answer is known to be national: the client can read nothing else (its entitlement is
national only), or the code that made the answer says so in the scope (`AUDIENCE`): a read of a
national version (fastpath.py, routes/fhir.py), and a search whose client sees no restricted
release in the snapshot served now (fastpath.py `_audience`). Everything else that a client with
a scope gets is private: an answer that is marked wrongly is merely less cacheable, never leaked.
"""

from __future__ import annotations

import zlib
from collections.abc import MutableMapping, Sequence
from typing import Any

import brotli
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware

from grunndata.server.access import ACCESS, ASKED_METHOD
from grunndata.server.auth import Access
from grunndata.server.fhir_io.responses import weighed

# scope key: who may be given the answer, set by the code that made it; absent: a client with a
# scope may have got restricted data in it (private)
AUDIENCE = "grunndata.audience"
EVERYONE = "everyone"  # every client gets this same answer (national data, no Vary: Authorization)
NATIONAL_ONLY = "national"  # national data only, though a client with a scope may get more
# what a page of ours may load: its own scripts and styles (the inline style attributes the
# templates use), fetches to us (the find page's as-you-type), forms to us; only we may frame it
PAGE_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)
_OWN_SCRIPTS_INLINE = ("/docs", "/redoc")  # FastAPI's documentation pages carry inline scripts
# scope key: True when the body is a bytes object the fast path sends again (fastpath.py)
PREPARED = "grunndata.prepared"
KEPT_COMPRESSED_BYTES = 32 * 1024 * 1024  # per process: ~5,000 reads' bodies and their gzip forms
NATIONAL_KEY = "n"  # Access.key of a client that may read national data only
# CORS (`OnlyWithOrigin` gives them to Starlette's CORSMiddleware): what a FHIR client in a browser sends
# besides the headers every browser may send; and what it must be able to read of an answer
# beyond those every browser may read (Content-Type, Last-Modified, Cache-Control, ...)
CORS_METHODS = ("GET", "HEAD", "POST")
CORS_REQUEST_HEADERS = (
    "Authorization",
    "DPoP",
    "Prefer",
    "If-None-Match",
    "If-Modified-Since",
    "Content-Type",
    "X-Request-ID",
)
CORS_EXPOSED_HEADERS = ("ETag", "Location", "Content-Location", "X-Request-ID", "WWW-Authenticate")
CORS_MAX_AGE = 600  # seconds a browser may keep a preflight's answer (Chromium keeps at most 7200)
# the media types worth compressing: what this server answers in text
_TEXT = (b"application/fhir+json", b"application/fhir+xml", b"application/json", b"application/xml", b"text/")
_IN_THREAD = 128 * 1024  # a bigger body is compressed off the event loop (~1 ms per 100 KB)
GZIP_LEVEL = 6  # zlib's default: a 516 KB search page to about 6 % of it
BROTLI_QUALITY = 5  # brotli's 11 is 30x slower; 5 compresses better than gzip 6 at about its speed


Headers = list[tuple[bytes, bytes]]


def with_vary(headers: Headers, *names: bytes) -> Headers:
    """`headers` with `names` (distinct) added to their one Vary header, each once.

    On the raw ASGI list, whose names are lower case: Starlette's MutableHeaders cost the fast
    path's read a third of its time."""
    if not any(key == b"vary" for key, _ in headers):
        return [*headers, (b"vary", b", ".join(names))]
    present = [v.strip() for key, value in headers if key == b"vary" for v in value.split(b",") if v.strip()]
    known = {v.lower() for v in present}
    present += [name for name in names if name.lower() not in known]
    return [*(h for h in headers if h[0] != b"vary"), (b"vary", b", ".join(present))]


class Conventions:
    """HEAD as GET without the body; Cache-Control and Vary on every answer (see the module).

    With `vary_origin` (CORS is on) an answer to a request without Origin says `Vary: Origin`
    here, since `OnlyWithOrigin` let it pass Starlette's CORS layer, which says it otherwise."""

    def __init__(self, app: Any, max_age: int = 0, vary_origin: bool = False) -> None:
        self.app = app
        self.fresh = (f"public, max-age={max_age}" if max_age > 0 else "public, no-cache").encode()
        self.vary_origin = vary_origin

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        # the layers inside fill it in; a DPoP proof is still checked against the method sent
        inner = {**scope, "method": "GET", ASKED_METHOD: "HEAD"} if head else scope

        async def conventional(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = self.answer_headers(inner, message["status"], message.get("headers", []))
                message = {**message, "headers": headers}
            elif head and message["type"] == "http.response.body":
                if message.get("more_body"):
                    return  # the GET's body, dropped; its end goes out as an empty one
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        try:
            await self.app(inner, receive, conventional)
        finally:
            if head:  # what the inner layers learnt (request id, access, route) for the outer ones' log
                for key, value in inner.items():
                    scope.setdefault(key, value)

    def answer_headers(self, scope: dict[str, Any], status: int, raw: Headers) -> Headers:
        access = scope.get(ACCESS)
        audience = scope.get(AUDIENCE)
        shared = audience == EVERYONE
        national = audience in (EVERYONE, NATIONAL_ONLY) or (
            isinstance(access, Access)
            and access.key == NATIONAL_KEY
            and not (access.import_all or access.import_owners)  # import rights show staged releases
        )
        path: str = scope["path"]
        vary: list[bytes] = []
        negotiated = path == "/fhir" or path.startswith("/fhir/")
        cached = html = policy = False
        for key, value in raw:
            if key == b"content-type" and value.startswith(
                (b"application/fhir+json", b"application/fhir+xml")
            ):
                negotiated = True
            elif key == b"content-type" and value.startswith(b"text/html"):
                html = True
            elif key == b"content-security-policy":
                policy = True  # the route says what its page may load
            elif key == b"cache-control":
                cached = True  # the route knows better (none does yet)
        if negotiated:
            vary.append(b"Accept")  # JSON or XML by Accept (or by _format, in the URL)
        if not shared:
            vary.append(b"Authorization")  # a client with a scope may get another answer
        if self.vary_origin and not any(k == b"origin" for k, _ in scope["headers"]):
            vary.append(b"Origin")  # with an Origin, CORS headers would have been added
        headers = with_vary(raw, *vary) if vary else list(raw)
        if html:  # our pages: no script but our own files, no frame around them, no sniffing
            headers.append((b"x-content-type-options", b"nosniff"))
            if not (policy or path.startswith(_OWN_SCRIPTS_INLINE)):
                headers.append((b"content-security-policy", PAGE_POLICY))
        if not cached:
            if status >= 400 or scope["method"] != "GET":
                headers.append((b"cache-control", b"no-store"))
            elif national:
                headers.append((b"cache-control", self.fresh))
            else:
                headers.append((b"cache-control", b"private, no-cache"))
        return headers


class OnlyWithOrigin:
    """Starlette's CORS layer for the requests that carry an Origin (a browser's); the others
    (an EPJ system's, a server's) pass it by: it costs a read by id a fifth of its time, for
    headers only a browser reads. `Conventions` adds the `Vary: Origin` it would have."""

    def __init__(self, app: Any, origins: Sequence[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=list(CORS_METHODS),
            allow_headers=list(CORS_REQUEST_HEADERS),
            expose_headers=list(CORS_EXPOSED_HEADERS),
            allow_credentials=False,  # tokens come in Authorization, never as cookies
            max_age=CORS_MAX_AGE,
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and any(k == b"origin" for k, _ in scope["headers"]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def chosen_coding(accept_encoding: str | None) -> str | None:
    """'br', 'gzip' or None (as it is) by an Accept-Encoding header and its q-values.

    `*` stands for any coding not named; q=0 refuses one; brotli wins a tie (it is smaller at
    the same cost); identity named with a higher q than both keeps the answer as it is."""
    if not accept_encoding:
        return None
    weights = {name: weight for weight, name, _ in weighed(accept_encoding) if name}
    star = weights.get("*", 0.0)
    best, best_weight = None, 0.0
    for coding in ("br", "gzip"):
        weight = weights.get(coding, star)
        if weight > best_weight:
            best, best_weight = coding, weight
    if best is not None and weights.get("identity", 0.0) > best_weight:
        return None
    return best


def _compress(coding: str, body: bytes) -> bytes:
    if coding == "br":  # a window just big enough: brotli's default (4 MiB) costs a small answer 40 %
        window = min(24, max(16, len(body).bit_length() + 1))
        return bytes(brotli.compress(body, quality=BROTLI_QUALITY, lgwin=window))
    return zlib.compress(body, GZIP_LEVEL, wbits=31)  # 31: with the gzip header and trailer


class Compression:
    """gzip or brotli for a whole text answer of at least `minimum` bytes; `Vary: Accept-Encoding`
    on every answer that could have been compressed, whether it was or not.

    A streamed answer (the only one is `/fest/m30`'s uncompressed file, excluded anyway) and one
    that has a Content-Encoding already go out as they are. The fast path sends the same bytes
    objects again and again (a read's prepared body, a cached search): their compressed forms
    are kept (`PREPARED` in the scope says which), up to `kept_bytes`, so a gzip read costs
    about what a plain one does; the key is the body object itself, whose hash Python keeps."""

    def __init__(
        self,
        app: Any,
        minimum: int,
        exclude: tuple[str, ...] = ("/fest/m30",),
        kept_bytes: int = KEPT_COMPRESSED_BYTES,
    ) -> None:
        self.app, self.minimum, self.exclude, self.kept_bytes = app, minimum, exclude, kept_bytes
        self._kept: dict[tuple[str, bytes], bytes] = {}
        self._kept_size = 0
        self._codings: dict[bytes, str | None] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.exclude:
            await self.app(scope, receive, send)
            return
        asked = next((v for k, v in scope["headers"] if k == b"accept-encoding"), None)
        coding = None if asked is None else self.coding(asked)
        held: MutableMapping[str, Any] | None = None

        async def compressing(message: MutableMapping[str, Any]) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                held = message  # until the body says whether it is worth it
                return
            if message["type"] != "http.response.body" or held is None:
                await send(message)
                return
            start, held = held, None
            body: bytes = message.get("body", b"")
            if start["status"] == 304:  # RFC 9110 15.4.5: the Vary its 200 would have had (the 200
                # may have been compressed; saying so of a small one costs a cache nothing wrong)
                await send({**start, "headers": with_vary(start.get("headers", []), b"Accept-Encoding")})
                await send(message)
                return
            if len(body) < self.minimum or message.get("more_body") or not _compressible(start):
                await send(start)
                await send(message)
                return
            headers, body = await self.encode(
                coding, start.get("headers", []), body, scope.get(PREPARED) is True
            )
            await send({**start, "headers": headers})
            await send({**message, "body": body})

        await self.app(scope, receive, compressing)

    async def encode(
        self, coding: str | None, headers: Headers, body: bytes, prepared: bool
    ) -> tuple[Headers, bytes]:
        """A whole text answer of at least `minimum` bytes as it is sent: `Vary: Accept-Encoding`,
        and compressed by `coding` (None: as it is); `prepared`: its compressed form is kept."""
        headers = with_vary(headers, b"Accept-Encoding")
        if coding is not None:
            body = await self.compressed(coding, body, prepared)
            headers = [(k, v) for k, v in headers if k != b"content-length"]
            headers += [(b"content-encoding", coding.encode()), (b"content-length", str(len(body)).encode())]
        return headers, body

    def coding(self, asked: bytes) -> str | None:
        """`chosen_coding`, remembered: clients send a handful of distinct Accept-Encodings."""
        if asked in self._codings:
            return self._codings[asked]
        coding = chosen_coding(asked.decode("latin-1"))
        if len(self._codings) < 256:
            self._codings[asked] = coding
        return coding

    async def compressed(self, coding: str, body: bytes, keep: bool) -> bytes:
        key = (coding, body)
        if keep:
            found = self._kept.get(key)
            if found is not None:
                return found
        if len(body) >= _IN_THREAD:
            done = await run_in_threadpool(_compress, coding, body)
        else:
            done = _compress(coding, body)
        if keep and len(body) + len(done) <= self.kept_bytes // 16:
            while self._kept and self._kept_size + len(body) + len(done) > self.kept_bytes:
                oldest = next(iter(self._kept))  # the first kept
                self._kept_size -= len(oldest[1]) + len(self._kept.pop(oldest))
            self._kept[key] = done
            self._kept_size += len(body) + len(done)
        return done


def _compressible(start: MutableMapping[str, Any]) -> bool:
    """A text answer without a Content-Encoding of its own."""
    text = False
    for key, value in start.get("headers", []):
        if key == b"content-encoding":
            return False
        if key == b"content-type":
            text = value.startswith(_TEXT)
    return text
