"""The limit of this stack: a bare ASGI app that answers a read by id from a dict of bytes.

    GRUNNDATA_DB=sqlite:///store.db uvicorn --factory bare_app:create_app --app-dir benchmarks \\
        --loop uvloop --http httptools --no-access-log --log-level warning --port 8001

At start-up it loads, once, the served versions of BARE_TYPES (default: the two types the API
benchmark reads) from the store, as the bytes and headers our server sends for a read: the
stored JSON with its meta (`Version.body()`), content-type, ETag and Last-Modified. After that a
request is a dict lookup and two ASGI messages; no framework, no routing, no database. GET
/tiny answers `{}`, the stack's limit for a trivial answer. Anything else is 404.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC
from email.utils import format_datetime
from typing import Any

from sqlalchemy import select

from grunndata.settings import Settings
from grunndata.store import Version, connect, current_snapshot, read_many
from grunndata.store.models import ReleaseEntry, Resource

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTENT_TYPE = b"application/fhir+json; charset=utf-8"
DEFAULT_TYPES = "PackagedProductDefinition,MedicinalProductDefinition"
_NOT_FOUND = {"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]}
_TINY_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", CONTENT_TYPE), (b"content-length", b"2")],
}
_TINY_BODY = {"type": "http.response.body", "body": b"{}"}


def _answer(version: Version) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two ASGI messages of a read of `version`, built once."""
    body = version.body()
    modified = version.last_updated
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    headers = [
        (b"content-type", CONTENT_TYPE),
        (b"content-length", str(len(body)).encode()),
        (b"etag", f'W/"{version.version}"'.encode()),
        (b"last-modified", format_datetime(modified, usegmt=True).encode()),
    ]
    return (
        {"type": "http.response.start", "status": 200, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


def load(db: str | None, types: list[str]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Path -> answer for every served version of `types` in the store at `db`."""
    engine = connect(db, create=False)
    r, m = Resource.__table__, ReleaseEntry.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        snapshot = current_snapshot(conn)
        keys = conn.execute(
            select(r.c.type, r.c.id)
            .select_from(r.join(m, m.c.resource_pk == r.c.pk))
            .where(m.c.release_id.in_(snapshot.releases or (-1,)), r.c.type.in_(types))
        ).all()
        versions = read_many(conn, snapshot, [(t, i) for t, i in keys])
    engine.dispose()
    return {f"/fhir/{v.type}/{v.id}": _answer(v) for v in versions}


def create_app(db: str | None = None) -> ASGIApp:
    """The app over the store at `db` (default GRUNNDATA_DB); a factory for `uvicorn --factory`."""
    types = os.environ.get("BARE_TYPES", DEFAULT_TYPES).split(",")
    answers = load(db or Settings.load().db, types)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope["path"]
        found = answers.get(path)
        if found is not None:
            await send(found[0])
            await send(found[1])
        elif path == "/tiny":
            await send(_TINY_START)
            await send(_TINY_BODY)
        else:
            await send(_NOT_FOUND)
            await send({"type": "http.response.body", "body": b""})

    app.served = len(answers)  # type: ignore[attr-defined]
    return app
