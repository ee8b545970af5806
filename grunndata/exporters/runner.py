"""The export runner: each export written by a child process at low priority, into a folder
that several server processes may share.

~10 s of Python in the serving process would hold its interpreter lock and stall every read
meanwhile, so the serving process only waits for the child (`Exporter`). A folder named by
GRUNNDATA_M30_DIR is shared by every server process of a deployment (`export_folder` makes it
private or refuses it); the caller's file lock then makes one of them write each export and the
others wait for it (server/m30.py).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import logging
import os
import shutil
import stat
import sys
import tempfile
import threading
from pathlib import Path

from anyio import to_thread
from sqlalchemy.engine import Engine

from grunndata.errors import ExportError, ExportFailed
from grunndata.exporters.m30 import export_m30
from grunndata.store import Snapshot

M30_DIR = "GRUNNDATA_M30_DIR"  # named in messages; the value comes from Settings.m30_dir
log = logging.getLogger("grunndata.exporters")


class Exporter:
    """Writes each export in a child process (`python -m grunndata.exporters.runner PATH TOKEN [SINCE]`,
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
        await to_thread.run_sync(self._turns.acquire)
        try:
            await self._write(path, snapshot, since)
        finally:
            self._turns.release()

    async def _write(self, path: Path, snapshot: Snapshot, since: str | None) -> None:
        if self.url is None:
            await to_thread.run_sync(
                functools.partial(export_m30, self.engine, path, since=since, releases=snapshot.releases)
            )
            return
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "grunndata.exporters.runner",
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
            raise ExportFailed("the M30 export stopped before it finished; try again")


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


def export_folder(configured: Path | None) -> tuple[Path, bool]:
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


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
