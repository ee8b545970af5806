"""GET /fest/m30: the national data as a FEST/M30 delivery, full or since a HentetDato.

An export takes seconds, and the data changes about every 14 days, so each one is written once
per snapshot into a gzip file and then sent from disk: gzip as it is to clients that accept it,
unpacked on the fly to those that do not. ETag names the snapshot, so a nightly check costs a 304.

The export is written by a child process at low priority: ~10 s of Python in the serving process
would hold its interpreter lock and stall every read meanwhile. Several server processes can
share one folder (GRUNNDATA_M30_DIR); a file lock then makes one of them write each export and
the others wait for it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import gzip
import hashlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter, Request
from sqlalchemy.engine import Engine
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
M30_DIR = "GRUNNDATA_M30_DIR"
log = logging.getLogger("grunndata.server")


class Exporter:
    """Writes each export in a child process (`python -m grunndata.server.m30 PATH [SINCE]`), or in
    a thread for an in-memory store. A child that outlives a killed server finishes its file and
    exits; nothing is left waiting."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        url = engine.url
        in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
        self.url = None if in_memory else url.render_as_string(hide_password=False)

    async def write(self, path: Path, since: str | None) -> None:
        if self.url is None:
            await run_in_threadpool(export_m30, self.engine, path, since=since)
            return
        env = {**os.environ, "GRUNNDATA_DB": self.url}  # not on the command line, where ps shows it
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "grunndata.server.m30",
            str(path),
            *([] if since is None else [since]),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await child.communicate()
        except asyncio.CancelledError:  # the server is stopping: so does the export
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
            raise
        message = err.decode("utf-8", "replace").strip()
        if child.returncode == _REFUSED:
            raise ExportError(message)
        if child.returncode != 0:
            log.error("the M30 export process ended with %s: %s", child.returncode, message[-2000:])
            raise FhirError(503, "transient", "the M30 export stopped before it finished; try again")


_REFUSED = 2  # the child's exit status for an export refused as asked (its sentence on stderr)


def _child(argv: list[str]) -> int:
    """The child: low priority, the store from GRUNNDATA_DB, the export, one sentence if refused."""
    from grunndata.store import connect

    os.nice(10)  # the readers in the server come first
    path, since = Path(argv[0]), (argv[1] if len(argv) > 1 else None)
    engine = connect(os.environ["GRUNNDATA_DB"], create=False)
    try:
        export_m30(engine, path, since=since)
    except ExportError as e:
        print(str(e), file=sys.stderr)
        return _REFUSED
    finally:
        engine.dispose()
    return 0


def _folder() -> Path:
    """GRUNNDATA_M30_DIR (made private if missing), else a private folder for this process."""
    configured = os.environ.get(M30_DIR, "").strip()
    if configured:
        folder = Path(configured)
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise ExportError(f"{M30_DIR}={configured}: cannot make the folder ({e.strerror})") from None
        return folder
    folder = Path(tempfile.mkdtemp(prefix="grunndata-m30-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


class M30Files:
    """Exports written once per (snapshot, since) into a folder, the older ones removed."""

    def __init__(self, served: Served, folder: Path | None = None) -> None:
        self.served = served
        self.folder = _folder() if folder is None else folder
        self.exporter = Exporter(served.engine)
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
                    await self._write_once(key, path, since)
                    self._forget_others(key.split("-", 1)[0])
        finally:
            if not path.exists():  # a refused `since`: keep no lock for it
                self._locks.pop(key, None)
        return path

    async def _write_once(self, key: str, path: Path, since: str | None) -> None:
        """Write `path` unless another process sharing the folder does (then wait for it)."""
        lock_file = self.folder / f"m30-{key}.lock"
        fd = os.open(lock_file, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            await run_in_threadpool(fcntl.flock, fd, fcntl.LOCK_EX)
            if not path.exists():
                await self.exporter.write(path, since)
        finally:
            os.close(fd)  # releases the lock

    def _forget_others(self, token: str) -> None:
        for old in self.folder.glob("m30-*"):
            if not old.name.startswith(f"m30-{token}-"):
                old.unlink(missing_ok=True)
                self._locks.pop(old.name[4:].removesuffix(".xml.gz").removesuffix(".lock"), None)


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


def m30_router(served: Served, files: M30Files) -> APIRouter:
    router = APIRouter(tags=["FEST/M30"], dependencies=[checks_token(served.auth)])

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


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
