"""The hot path: plain reads and repeated searches answered straight from prepared bytes.

EPJ systems read by id and look up the same varenr thousands of times a day; through the full
framework stack an answer costs several times what the lookup does. This ASGI layer answers
- the plainest read (`GET /fhir/<Type>/<id>`, no query string, no conditional headers, JSON
  acceptable) of a served resource, with exactly the bytes and headers the route would send;
- a search (`GET /fhir/<Type>?...`) asked before in the same snapshot: releases never change once
  served, so the same question has the same answer until a new release is activated (the cache
  is emptied then; GRUNNDATA_SEARCH_CACHE_MB sizes it, 0 turns it off);
- `GET /fhir/ConceptMap/$translate` once the snapshot's maps are indexed (a dictionary lookup;
  the framework around it cost 95 % of the answer).
Anything else, misses included, goes to the app; so does a request whose token does not verify
(the app answers it 401), and a `$translate` past the bounds of a search (the app answers 400). What a client may read is decided here as in the app: a read of data
it may not read, and searches, are keyed and filtered by its entitlement.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from grunndata.fhir import SERVED_TYPES
from grunndata.server.access import ACCESS, AUTH_ERROR, authorization_of
from grunndata.server.auth import Access, AuthError
from grunndata.server.fhir_io.params import DEFAULT_LIMITS, ID_PATTERN, Limits
from grunndata.server.state import JSON_CONTENT_TYPE, Served
from grunndata.server.terminology import Terminology
from grunndata.store import STORE, sources_of

# only the store's: a listed part (the catalogue's Organizations) is live, and goes first
_TYPES = frozenset(t for t in SERVED_TYPES if sources_of(t) == (STORE,))
_CONDITIONAL = (b"if-none-match", b"if-modified-since", b"prefer")
TRANSLATE = "/fhir/ConceptMap/$translate"


def _wants_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name in _CONDITIONAL:
            return False
        if name == b"accept":
            accept = value.lower()
            if b"xml" in accept or not (b"json" in accept or b"*/*" in accept):
                return False
    return True


class FastReads:
    def __init__(
        self, app: Any, served: Served, terms: Terminology | None = None, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self.app, self.served, self.terms, self.limits = app, served, terms, limits

    async def _access(self, scope: dict[str, Any]) -> Access | None:
        """Who asks, settled once per request for the whole app (`server/access.py` reads it).

        A token seen before costs a dictionary lookup (and a DPoP proof's check, which is CPU only);
        a new one is verified in a worker thread, since that may fetch the JWKS over the network
        and must not stall the event loop.
        """
        auth = self.served.auth
        header, proof = authorization_of(scope, auth)
        try:
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
        if scope["method"] == "GET" and scope["path"].startswith("/fhir/"):
            path: str = scope["path"]
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
            if slashes == 3 and not scope["query_string"]:
                rtype, rid = path[6:].split("/")
                if rtype in _TYPES and ID_PATTERN.fullmatch(rid) and _wants_json(scope["headers"]):
                    prepared = self.served.read(rtype, rid, access)
                    if prepared is not None:
                        await _answer(send, prepared.raw_headers(), prepared.body)
                        return
            elif (
                slashes == 2
                and path[6:] in _TYPES
                and self.served.search_cache_bytes > 0
                and _wants_json(scope["headers"])
            ):
                await self._search(scope, receive, send, access)
                return
        await self.app(scope, receive, send)

    async def _search(self, scope: dict[str, Any], receive: Any, send: Any, access: Access) -> None:
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
        hit = self.served.cached_search(key)
        if hit is not None:
            await _answer(send, *hit)
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


async def _answer(send: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
