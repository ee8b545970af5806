"""HTTP as proxies and browsers expect it, on the fast path (fastpath.py) and the framework alike.

Two ASGI layers that app.py puts around both (outermost first: CORS, `Conventions`,
`Compression`, then the request ids, the fast path and FastAPI), so an answer gets the same
headers whichever of the two made it:

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
release in the snapshot served now (fastpath.py `_audience`). Everything else that a client with a scope
gets is private: an answer that is marked wrongly is merely less cacheable, never leaked.
"""

from __future__ import annotations

import gzip
from collections.abc import MutableMapping
from typing import Any

import brotli
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders

from grunndata.server.access import ACCESS
from grunndata.server.auth import Access

# scope key: who may be given the answer, set by the code that made it; absent: a client with a
# scope may have got restricted data in it (private)
AUDIENCE = "grunndata.audience"
EVERYONE = "everyone"  # every client gets this same answer (national data, no Vary: Authorization)
NATIONAL_ONLY = "national"  # national data only, though a client with a scope may get more
NATIONAL_KEY = "n"  # Access.key of a client that may read national data only
# CORS (app.py gives them to Starlette's CORSMiddleware): what a FHIR client in a browser sends
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
_TEXT = ("application/fhir+json", "application/fhir+xml", "application/json", "application/xml", "text/")
_IN_THREAD = 128 * 1024  # a bigger body is compressed off the event loop (~1 ms per 100 KB)
GZIP_LEVEL = 6  # zlib's default: a 516 KB search page to about 6 % of it
BROTLI_QUALITY = 5  # brotli's 11 is 30x slower; 5 compresses better than gzip 6 at about its speed


def add_vary(headers: MutableHeaders, *names: str) -> None:
    """Add `names` to the one Vary header, each once (case-insensitively)."""
    present = [v.strip() for value in headers.getlist("vary") for v in value.split(",") if v.strip()]
    known = {v.lower() for v in present}
    for name in names:
        if name.lower() not in known:
            present.append(name)
            known.add(name.lower())
    if present:
        headers["Vary"] = ", ".join(present)


class Conventions:
    """HEAD as GET without the body; Cache-Control and Vary on every answer (see the module)."""

    def __init__(self, app: Any, max_age: int = 0) -> None:
        self.app = app
        self.fresh = f"public, max-age={max_age}" if max_age > 0 else "public, no-cache"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        inner = {**scope, "method": "GET"} if head else scope  # the layers inside fill it in

        async def conventional(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                self._headers(inner, message["status"], headers)
                message = {**message, "headers": headers.raw}
            elif head and message["type"] == "http.response.body":
                if message.get("more_body"):
                    return  # the GET's body, dropped; its end goes out as an empty one
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app(inner, receive, conventional)

    def _headers(self, scope: dict[str, Any], status: int, headers: MutableHeaders) -> None:
        access = scope.get(ACCESS)
        audience = scope.get(AUDIENCE)
        shared = audience == EVERYONE
        national = audience in (EVERYONE, NATIONAL_ONLY) or (
            isinstance(access, Access) and access.key == NATIONAL_KEY
        )
        fhir = scope["path"] == "/fhir" or scope["path"].startswith("/fhir/")
        media = headers.get("content-type", "")
        if fhir or media.startswith(("application/fhir+json", "application/fhir+xml")):
            add_vary(headers, "Accept")  # JSON or XML by Accept (or by _format, in the URL)
        if not shared:
            add_vary(headers, "Authorization")  # a client with a scope may get another answer
        if "cache-control" in headers:
            return  # the route knows better (none does yet)
        if status >= 400 or scope["method"] != "GET":
            headers["Cache-Control"] = "no-store"
        elif national:
            headers["Cache-Control"] = self.fresh
        else:
            headers["Cache-Control"] = "private, no-cache"


def chosen_coding(accept_encoding: str | None) -> str | None:
    """'br', 'gzip' or None (as it is) by an Accept-Encoding header and its q-values.

    `*` stands for any coding not named; q=0 refuses one; brotli wins a tie (it is smaller at
    the same cost); identity named with a higher q than both keeps the answer as it is."""
    if not accept_encoding:
        return None
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if name:
            weights[name.lower()] = weight
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
    if coding == "br":
        return bytes(brotli.compress(body, quality=BROTLI_QUALITY))
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


class Compression:
    """gzip or brotli for a whole text answer of at least `minimum` bytes; `Vary: Accept-Encoding`
    on every answer that could have been compressed, whether it was or not.

    A streamed answer (the only one is `/fest/m30`'s uncompressed file, excluded anyway) and one
    that has a Content-Encoding already go out as they are."""

    def __init__(self, app: Any, minimum: int, exclude: tuple[str, ...] = ("/fest/m30",)) -> None:
        self.app, self.minimum, self.exclude = app, minimum, exclude

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.exclude:
            await self.app(scope, receive, send)
            return
        asked = next((v for k, v in scope["headers"] if k == b"accept-encoding"), None)
        coding = chosen_coding(None if asked is None else asked.decode("latin-1"))
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
            headers = MutableHeaders(raw=list(start.get("headers", [])))
            if (
                message.get("more_body")
                or "content-encoding" in headers
                or len(body) < self.minimum
                or not headers.get("content-type", "").startswith(_TEXT)
            ):
                await send(start)
                await send(message)
                return
            add_vary(headers, "Accept-Encoding")
            if coding is not None:
                if len(body) >= _IN_THREAD:
                    body = await run_in_threadpool(_compress, coding, body)
                else:
                    body = _compress(coding, body)
                headers["Content-Encoding"] = coding
                headers["Content-Length"] = str(len(body))
            await send({**start, "headers": headers.raw})
            await send({**message, "body": body})

        await self.app(scope, receive, compressing)
