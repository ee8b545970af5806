"""GET /fest/m30: the national data as a FEST/M30 delivery, full or since a HentetDato.

An export takes seconds, and the data changes about every 14 days, so each one is written once
per snapshot into a gzip file and then sent from disk: gzip as it is to clients that accept it,
unpacked on the fly to those that do not. ETag names the snapshot, so a nightly check costs a 304.
"""

from __future__ import annotations

import asyncio
import atexit
import gzip
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response, StreamingResponse

from grunndata.errors import ExportError
from grunndata.exporters import export_m30
from grunndata.server.access import checks_token
from grunndata.server.auth import ANONYMOUS
from grunndata.server.responses import FhirError
from grunndata.server.state import Served

M30_TYPE = "application/xml; charset=utf-8"
_CHUNK = 1 << 20


class M30Files:
    """Exports written once per (snapshot, since) into a private folder, the older ones removed."""

    def __init__(self, served: Served, folder: Path | None = None) -> None:
        self.served = served
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="grunndata-m30-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
        self.folder = folder
        self._locks: dict[str, asyncio.Lock] = {}

    def key(self, since: str | None) -> str:
        token = self.served.snapshot(ANONYMOUS).token
        wanted = "full" if since is None else hashlib.sha256(since.encode()).hexdigest()[:16]
        return f"{token}-{wanted}"

    async def file(self, key: str, since: str | None) -> Path:
        path = self.folder / f"m30-{key}.xml.gz"
        if path.exists():
            return path
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:  # one export per key, however many ask at once
                if not path.exists():
                    await run_in_threadpool(export_m30, self.served.engine, path, since=since)
                    self._forget_others(key.split("-", 1)[0])
        finally:
            if not path.exists():  # a refused `since`: keep no lock for it
                self._locks.pop(key, None)
        return path

    def _forget_others(self, token: str) -> None:
        for old in self.folder.glob("m30-*.xml.gz"):
            if not old.name.startswith(f"m30-{token}-"):
                old.unlink(missing_ok=True)
                self._locks.pop(old.name[4:-7], None)


def _unpacked(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def _accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, _, q = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*") and q.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


def m30_router(served: Served) -> APIRouter:
    router = APIRouter(tags=["FEST/M30"], dependencies=[checks_token(served.auth)])
    files = M30Files(served)

    @router.get(
        "/fest/m30",
        summary="The national data as a FEST/M30 delivery",
        response_class=Response,
        responses={200: {"content": {"application/xml": {}}}},
    )
    async def fest_m30(request: Request, since: str | None = None) -> Response:
        """A full delivery, or with `since` (the HentetDato of a delivery you had from here, exactly
        as it was) only what changed since: new and changed entries in full, Status U for expired
        listings. Valid against the M30 2014-12-01 XSD; gzip when the client accepts it."""
        if since is not None and not since.strip():
            raise FhirError(400, "invalid", "since is empty; give the HentetDato of your last delivery")
        key = files.key(since)
        etag = f'"m30-{key}"'
        headers = {
            "ETag": etag,
            "Content-Disposition": 'attachment; filename="fest251.xml"',
            "Vary": "Accept-Encoding",
        }
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        try:
            path = await files.file(key, since)
        except ExportError as e:
            raise FhirError(400, "invalid", str(e)) from None
        if _accepts_gzip(request):
            headers["Content-Encoding"] = "gzip"
            return FileResponse(path, media_type=M30_TYPE, headers=headers)
        return StreamingResponse(_unpacked(path), media_type=M30_TYPE, headers=headers)

    return router
