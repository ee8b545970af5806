"""GET /fest/m30: the national data as a FEST/M30 delivery, full or since a HentetDato.

An export takes seconds, and the data changes about every 14 days, so each one is written once
per snapshot into a gzip file and then sent from disk: gzip as it is to clients that accept it,
unpacked on the fly to those that do not. ETag names the snapshot, so a nightly check costs a 304.

The export is written by a child process at low priority: ~10 s of Python in the serving process
would hold its interpreter lock and stall every read meanwhile. Several server processes can
share one folder (GRUNNDATA_M30_DIR, given to `m30_folder`); a file lock then makes one of them write each export and
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
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from fastapi import Request
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from grunndata.errors import ExportError
from grunndata.exporters import base_release, export_m30
from grunndata.server.auth import ANONYMOUS
from grunndata.server.fhir_io.responses import FhirError
from grunndata.server.state import Served
from grunndata.store import Snapshot, open_connection

M30_TYPE = "application/xml; charset=utf-8"
_CHUNK = 1 << 20
M30_DIR = "GRUNNDATA_M30_DIR"  # named in messages; the value comes from Settings.m30_dir
log = logging.getLogger("grunndata.server")


class Exporter:
    """Writes each export in a child process (`python -m grunndata.server.m30 PATH TOKEN [SINCE]`,
    the store's URL on its stdin), or in a thread for an in-memory store. A child that outlives a killed server finishes its file and
    exits; nothing is left waiting."""

    CHILDREN = 2  # at most this many exports at once; more wait their turn

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        url = engine.url
        in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
        self.url = None if in_memory else url.render_as_string(hide_password=False)
        self._turns = threading.BoundedSemaphore(self.CHILDREN)

    async def write(self, path: Path, snapshot: Snapshot, since: str | None) -> None:
        """Write the export of `snapshot`'s national releases (the one served, even if a newer one
        was activated meanwhile) to `path`."""
        await run_in_threadpool(self._turns.acquire)
        try:
            await self._write(path, snapshot, since)
        finally:
            self._turns.release()

    async def _write(self, path: Path, snapshot: Snapshot, since: str | None) -> None:
        if self.url is None:
            await run_in_threadpool(export_m30, self.engine, path, since=since, releases=snapshot.releases)
            return
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "grunndata.server.m30",
            str(path),
            snapshot.token,
            *([] if since is None else [since]),
            stdin=asyncio.subprocess.PIPE,  # the URL: not on the command line, where ps shows it
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await child.communicate(self.url.encode() + b"\n")
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
    """The child: low priority, the store whose URL is on stdin, the export, one sentence if refused."""
    from grunndata.store import connect

    os.nice(10)  # the readers in the server come first
    path, releases = Path(argv[0]), Snapshot.parse(argv[1]).releases
    since = argv[2] if len(argv) > 2 else None
    engine = connect(sys.stdin.readline().strip(), create=False)
    try:
        export_m30(engine, path, since=since, releases=releases)
    except ExportError as e:
        print(str(e), file=sys.stderr)
        return _REFUSED
    finally:
        engine.dispose()
    return 0


def m30_folder(configured: Path | None) -> tuple[Path, bool]:
    """The folder GRUNNDATA_M30_DIR names (made private if missing; refused if others could write
    it) and True, else (None) a private folder for this process and False."""
    if configured is not None:
        folder = configured
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = folder.stat()
        except OSError as e:
            raise ExportError(f"{M30_DIR}={configured}: cannot make the folder ({e.strerror})") from None
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            # anyone else who may write there could put a file in that is sent as the national M30
            raise ExportError(
                f"{M30_DIR}={configured}: the folder must belong to this user and be writable by no one "
                f"else (it is mode {stat.S_IMODE(st.st_mode):o}, owner uid {st.st_uid})"
            )
        return folder, True
    folder = Path(tempfile.mkdtemp(prefix="grunndata-m30-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder, False


class M30Files:
    """Exports written once per (snapshot, since) into a folder, the older ones removed."""

    GRACE = 600.0  # seconds a shared folder keeps other snapshots' files (others may still send them)

    def __init__(self, served: Served, folder: Path | None = None, shared: bool = False) -> None:
        self.served = served
        if folder is None:
            self.folder, self.shared = m30_folder(None)
        else:
            self.folder, self.shared = folder, shared
        self.exporter = Exporter(served.engine)
        self._locks: dict[str, asyncio.Lock] = {}

    def key(self, since: str | None) -> str:
        token = self.served.snapshot(ANONYMOUS).token
        wanted = "full" if since is None else hashlib.sha256(since.encode()).hexdigest()[:16]
        return f"{token}-{wanted}"

    async def file(self, key: str, since: str | None) -> Path:
        """The export of the snapshot `key` names; ExportError for a `since` no delivery had (found
        out here, before any process is started for it)."""
        path = self.folder / f"m30-{key}.xml.gz"
        if path.exists():
            return path
        if since is not None:
            await run_in_threadpool(self._check_since, since)
        snapshot = Snapshot.parse(key.split("-", 1)[0])
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:  # one export per key, however many ask at once
                if not path.exists():
                    await self._write_once(key, path, snapshot, since)
                    self._forget_others(snapshot.token)
        finally:
            if not path.exists():
                self._locks.pop(key, None)
        return path

    def _check_since(self, since: str) -> None:
        with open_connection(self.served.engine) as conn:
            base_release(conn, since)

    async def _write_once(self, key: str, path: Path, snapshot: Snapshot, since: str | None) -> None:
        """Write `path` unless another process sharing the folder does (then wait for it)."""
        lock_file = self.folder / f"m30-{key}.lock"
        fd = os.open(lock_file, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
        try:
            await run_in_threadpool(fcntl.flock, fd, fcntl.LOCK_EX)
            if not path.exists():
                await self.exporter.write(path, snapshot, since)
        finally:
            os.close(fd)  # releases the lock

    def _forget_others(self, token: str) -> None:
        """Remove other snapshots' files: at once in a private folder; in a shared one only when
        older than GRACE, since a process still serving an older snapshot may be sending them."""
        limit = time.time() - self.GRACE
        for old in self.folder.glob("m30-*"):
            if old.name.startswith(f"m30-{token}-"):
                continue
            try:
                if self.shared and old.stat().st_mtime > limit:
                    continue
                old.unlink()
            except FileNotFoundError:
                pass
            self._locks.pop(old.name[4:].removesuffix(".xml.gz").removesuffix(".lock"), None)


def unpacked(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, _, q = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*") and q.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
