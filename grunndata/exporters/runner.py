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
import ipaddress
import logging
import os
import shutil
import socket
import stat
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anyio import to_thread
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from grunndata.errors import ExportError, ExportFailed
from grunndata.exporters.m30 import export_m30
from grunndata.exporters.ndjson import run_job
from grunndata.store import Snapshot
from grunndata.store.bulk import get_job

M30_DIR = "GRUNNDATA_M30_DIR"  # named in messages; the value comes from Settings.m30_dir
EXPORT_DIR = "GRUNNDATA_EXPORT_DIR"  # the same, Settings.export_dir ($export files)
log = logging.getLogger("grunndata.exporters")


class Exporter:
    """Writes each export in a child process (`python -m grunndata.exporters.runner PATH TOKEN [SINCE]`
    for M30, `... --ndjson-job JOB ROOT KEEP_SECONDS` for a Bulk Data job; the store's URL on its stdin), or in a thread for an in-memory store. A child that outlives a killed server finishes its file and
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
        await self._run(
            [str(path), snapshot.token, *([] if since is None else [since])],
            functools.partial(export_m30, self.engine, path, since=since, releases=snapshot.releases),
            "M30",
        )

    async def write_ndjson(
        self,
        job_id: str,
        root: Path,
        keep_seconds: float,
        share: float = 1.0,
        backend_nice: int = 0,
    ) -> None:
        """Write the files of the FHIR Bulk Data job `job_id` (its row in the store says what) into
        its folder under `root` (exporters/ndjson.py); the row tells every server how it went.
        `share`: of the wall time, what the child may work (ndjson.Pacer); `backend_nice`: the
        niceness it gives the PostgreSQL backends serving it, where it can (`nice_backend`)."""
        await self._run(
            [NDJSON_JOB, job_id, str(root), repr(keep_seconds), repr(share), str(backend_nice)],
            functools.partial(run_job, self.engine, job_id, root, keep_seconds, share),
            "FHIR Bulk Data",
            functools.partial(self._job_exists, job_id),
        )

    def _job_exists(self, job_id: str) -> bool:
        with self.engine.connect() as conn:
            return get_job(conn, job_id) is not None

    async def _run(
        self,
        argv: list[str],
        in_thread: Callable[[], object],
        what: str,
        wanted: Callable[[], bool] | None = None,
    ) -> None:
        """Run the export when its turn comes, unless `wanted` then says it is no longer asked for
        (a job cancelled while it waited starts no child)."""
        await to_thread.run_sync(self._turns.acquire)
        try:
            if wanted is not None and not await to_thread.run_sync(wanted):
                return
            await self._child(argv, in_thread, what)
        finally:
            self._turns.release()

    async def _child(self, argv: list[str], in_thread: Callable[[], object], what: str) -> None:
        if self.url is None:
            await to_thread.run_sync(in_thread)
            return
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "grunndata.exporters.runner",
            *argv,
            stdin=asyncio.subprocess.PIPE,  # the URL: not on the command line, where ps shows it
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await child.communicate(self.url.encode() + b"\n")
        except asyncio.CancelledError:  # the server is stopping: so does the export
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            # a killed child ends at once; but a loop being torn down may no longer hear of it,
            # and a server's shutdown must not wait for ever on that
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(child.wait(), _KILLED_WAIT)
            raise
        message = err.decode("utf-8", "replace").strip()
        if child.returncode == _REFUSED:
            raise ExportError(message)
        if child.returncode != 0:
            log.error("the %s export process ended with %s: %s", what, child.returncode, message[-2000:])
            raise ExportFailed(f"the {what} export stopped before it finished; try again")


_KILLED_WAIT = 5.0  # seconds a stopping server waits to hear that its killed export child ended
_REFUSED = 2  # the child's exit status for an export refused as asked (its sentence on stderr)


NDJSON_JOB = "--ndjson-job"  # the child's first argument for a Bulk Data job (else an M30 export)


IDLE_SECONDS = 20.0  # how long an export runs idle-class before it takes a nice-19 share


def lowest_priority(idle_seconds: float = IDLE_SECONDS) -> None:
    """Run this process only on CPU time no one else wants: nice 19, and Linux's SCHED_IDLE where
    there is one. At nice 10 a full-size export still took its share of a core from a busy
    server every few milliseconds, and the reads' p99 rose 1.7 to 2.5x (benchmarks/RESULTS.md);
    an idle-class process gives way to the server at once. But on a machine that is never idle
    it may wait for ever (a full-size export took 230 s at load 12 on 2 cores): after
    `idle_seconds` it goes back to the normal class at nice 19, slowed by a busy machine but
    never stopped."""
    os.nice(19)  # capped at 19, whatever the parent's
    if not hasattr(os, "sched_setscheduler") or not hasattr(os, "SCHED_IDLE"):
        return
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except OSError:  # a sandbox may forbid it: nice 19 alone then
        return
    timer = threading.Timer(idle_seconds, _normal_class, (os.getpid(),))
    timer.daemon = True
    timer.start()


def _normal_class(pid: int) -> None:
    """The main thread (its id is the process's) back in the normal class, still at nice 19."""
    with contextlib.suppress(OSError):
        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))


def _child(argv: list[str]) -> int:
    """The child: lowest priority, the store whose URL is on stdin, the export, one sentence if
    refused."""
    from grunndata.store import connect

    lowest_priority()  # the readers in the server come first
    if argv[:1] == [NDJSON_JOB]:
        engine = connect(_named(sys.stdin.readline().strip()), create=False)
        share = float(argv[4]) if len(argv) > 4 else 1.0
        niceness = int(argv[5]) if len(argv) > 5 else 0
        if niceness and engine.dialect.name == "postgresql":
            event.listen(engine, "connect", lambda dbapi, _: nice_backend(dbapi, niceness))
        try:
            run_job(engine, argv[1], Path(argv[2]), float(argv[3]), share)
        finally:
            engine.dispose()
        return 0
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


EXPORT_APPLICATION = "grunndata-export"  # the application_name of a Bulk Data child's connections


def nice_backend(dbapi: Any, niceness: int) -> bool:
    """Give the PostgreSQL backend serving the connection `dbapi` (psycopg's) `niceness`, when it
    runs on this machine and this process may: True if it did.

    The child's own priority does not reach the backend that answers its COPY, and on a machine
    that also runs the store the backend competes with the server's reads at normal priority
    (the reads' p99 rose 1.67x during a full-size export with caches on, benchmarks/RESULTS.md).
    A store on another machine does not compete, and its backends are not ours to touch. So
    only a backend whose process title names this very connection is reniced: a TCP connection
    to a loopback address whose title holds our end's port, `postgres: ... 127.0.0.1(PORT) ...`
    (a pooler in between, or a store in a container with its own process ids, do not match),
    or a Unix socket's `[local]`. Raising a niceness needs no privilege for one's own processes
    only, so a store run by another user leaves it as it is (pace the export instead,
    GRUNNDATA_EXPORT_SHARE). The backend ends with the child's connection."""
    pgconn = dbapi.pgconn
    pid = pgconn.backend_pid
    try:
        with socket.socket(fileno=os.dup(pgconn.socket)) as sock:
            if sock.family == socket.AF_UNIX:
                mark = b"[local]"
            else:
                peer, port = sock.getpeername()[0], sock.getsockname()[1]
                if not ipaddress.ip_address(peer.split("%")[0]).is_loopback:
                    return False
                mark = f"({port})".encode()
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
        if not title.startswith(b"postgres") or mark not in title:
            return False
        os.setpriority(os.PRIO_PROCESS, pid, max(niceness, os.getpriority(os.PRIO_PROCESS, pid)))
    except (OSError, ValueError):
        return False
    return True


def _named(url: str) -> str:
    """A PostgreSQL URL with the child's application_name: its backends, which its priority does
    not reach, can be told from the server's in pg_stat_activity (bulk_bench.py counts their CPU)."""
    if not url.startswith(("postgresql", "postgres:")):
        return url
    parsed = make_url(url)
    if "application_name" in parsed.query:
        return url
    return parsed.update_query_dict({"application_name": EXPORT_APPLICATION}).render_as_string(
        hide_password=False
    )


def export_folder(configured: Path | None, variable: str = M30_DIR) -> tuple[Path, bool]:
    """The folder the setting `variable` names (made private if missing; refused if others could
    write it) and True, else (None) a private folder for this process and False."""
    if configured is not None:
        folder = configured
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = folder.stat()
        except OSError as e:
            raise ExportError(f"{variable}={configured}: cannot make the folder ({e.strerror})") from None
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            # anyone else who may write there could put a file in that is sent as our data
            raise ExportError(
                f"{variable}={configured}: the folder must belong to this user and be writable by no one "
                f"else (it is mode {stat.S_IMODE(st.st_mode):o}, owner uid {st.st_uid})"
            )
        return folder, True
    folder = Path(tempfile.mkdtemp(prefix="grunndata-m30-" if variable == M30_DIR else "grunndata-export-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder, False


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
