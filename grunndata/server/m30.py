"""GET /fest/m30: the national data as a FEST/M30 delivery, full or since a HentetDato.

An export takes seconds, and the data changes about every 14 days, so each one is written once
per snapshot into a gzip file and then sent from disk: gzip as it is to clients that accept it,
unpacked on the fly to those that do not. ETag names the snapshot, so a nightly check costs a 304.

The export is written by a child process at low priority (exporters/runner.py). Several server
processes can share one folder (GRUNNDATA_M30_DIR, made ready by `export_folder`); a file lock
here then makes one of them write each export and the others wait for it.
"""

from __future__ import annotations

import asyncio
import fcntl
import gzip
import hashlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import FileResponse
from starlette.types import Receive, Scope, Send

from grunndata.exporters import Exporter, base_release, export_folder
from grunndata.server.auth import ANONYMOUS
from grunndata.server.state import Served
from grunndata.store import Snapshot, open_connection

M30_TYPE = "application/xml; charset=utf-8"
_CHUNK = 1 << 20


class M30Files:
    """Exports written once per (snapshot, since) into a folder, the older ones removed."""

    GRACE = 600.0  # seconds a shared folder keeps other snapshots' files (others may still send them)

    def __init__(self, served: Served, folder: Path | None = None, shared: bool = False) -> None:
        self.served = served
        if folder is None:
            self.folder, self.shared = export_folder(None)
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


_ONE_RANGE = re.compile(r"bytes=(\d{1,18})-(\d{0,18})|bytes=-\d{1,18}")


class GzipFile(FileResponse):
    """A gzip file sent as it is kept (Content-Encoding: gzip), with Range over those bytes as
    HTTP allows, but one range at most: a multipart/byteranges answer is not gzip, so its
    Content-Encoding would be false. A Range this does not take (several ranges, one that is no
    range, last before first) is ignored and the whole file sent, as RFC 9110 14.2 lets a server;
    a first byte past the end is still a 416."""

    def __init__(self, path: Path, media_type: str, headers: dict[str, str]) -> None:
        super().__init__(path, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        asked = Headers(scope=scope).get("range")
        if asked is not None:
            one = _ONE_RANGE.fullmatch(asked.strip())
            if one is None or (one.group(2) and int(one.group(2)) < int(one.group(1))):
                scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"range"]}
        await super().__call__(scope, receive, send)
