"""FHIR Bulk Data `$export` jobs as the server keeps them: started once per entitlement and
request, written by a child process, their state in the store, their files in a folder. Each
kick-off holds a ticket of its own to the job (the status URL names it): a cancel removes that
ticket, and the job only with its last.

The job's row (store/bulk.py) is the state every server process shares: whichever process a poll
reaches reads it there. The process that made the row starts the child (exporters/runner.py,
the same runner and the same two turns as the M30 export); the child tells the row how far it got
and when it is done. The files go to a folder that the processes of one machine share
(GRUNNDATA_EXPORT_DIR; `grunndata serve --workers N` makes one when it is unset).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
from datetime import datetime
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from grunndata.exporters import NDJSON, Exporter, job_folder
from grunndata.server.state import Served
from grunndata.store import Snapshot, open_connection
from grunndata.store import bulk as store
from grunndata.store.bulk import Entitlement, Job

log = logging.getLogger("grunndata.server")
TICKET = re.compile(r"[0-9a-f]{32}")  # store/bulk.py makes them so
SILENT_SECONDS = 900.0  # a job whose child has not spoken this long died with its server


class BulkExports:
    """The `$export` jobs of one server process: kick-off, status, cancel, files, expiry."""

    MOST_UNFINISHED = 8  # exports waiting or being written at once, in all processes; more are a 429

    def __init__(
        self,
        served: Served,
        exporter: Exporter,
        folder: Path,
        keep_seconds: float,
        per_entitlement: int = 2,
        share: float = 1.0,
        backend_nice: int = 0,
    ) -> None:
        self.served, self.exporter, self.folder, self.keep_seconds = served, exporter, folder, keep_seconds
        self.per_entitlement = per_entitlement  # of MOST_UNFINISHED, for one entitlement
        # the child's pace and its PostgreSQL backends' niceness (GRUNNDATA_EXPORT_SHARE, _BACKEND_NICE)
        self.share, self.backend_nice = share, backend_nice
        self._running: set[asyncio.Task[None]] = set()

    async def kick_off(
        self,
        entitlement: Entitlement,
        snapshot: Snapshot,
        types: list[str],
        since: datetime | None,
        request: str,
    ) -> str:
        """A ticket of this kick-off's own to the job for this export: the one the same entitlement
        asked for already, else a new one whose child is started now; TooManyJobs (its message
        says why) when MOST_UNFINISHED, or `per_entitlement` of this entitlement's, are waiting
        or being written."""
        await run_in_threadpool(self._purge)
        job, ticket, new = await run_in_threadpool(
            store.start_job,
            self.served.engine,
            entitlement,
            snapshot,
            types,
            since,
            request,
            store.Caps(self.MOST_UNFINISHED, self.per_entitlement),
        )
        if new:
            task = asyncio.create_task(self._write(job.id), name=f"export-{job.id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return ticket

    async def _write(self, job_id: str) -> None:
        try:
            await self.exporter.write_ndjson(
                job_id, self.folder, self.keep_seconds, self.share, self.backend_nice
            )
        except asyncio.CancelledError:  # the server stops: the child was stopped with it
            await run_in_threadpool(self._fail, job_id, "the server stopped while it was written; ask again")
            raise
        except Exception:  # its row says so (the child wrote it, or here); the server goes on
            log.exception("the $export job %s failed", job_id)
            await run_in_threadpool(self._fail, job_id, "the export stopped before it finished; ask again")

    def _fail(self, job_id: str, message: str) -> None:
        with open_connection(self.served.engine) as conn:
            job = store.get_job(conn, job_id)
            if job is not None and job.status in (store.ACCEPTED, store.RUNNING):
                store.fail_job(conn, job_id, message, self.keep_seconds)

    def job(self, ticket: str, entitlement: Entitlement) -> Job | None:
        """The job `ticket` holds, if both exist and it is this entitlement's (to any other it does
        not exist)."""
        if not TICKET.fullmatch(ticket):  # none of ours: no query (a NUL is PostgreSQL's error)
            return None
        self._purge()
        with open_connection(self.served.engine) as conn:
            job = store.ticket_job(conn, ticket)
        if job is None or job.entitlement != entitlement:
            return None
        return job

    def cancel(self, ticket: str, entitlement: Entitlement) -> bool:
        """Remove the ticket; with the job's last ticket the job and its files go too, and its child
        stops at its next word (False: no such ticket)."""
        if self.job(ticket, entitlement) is None:
            return False
        with open_connection(self.served.engine) as conn:
            found, last_of = store.cancel_ticket(conn, ticket)
        if last_of is not None:
            shutil.rmtree(job_folder(self.folder, last_of), ignore_errors=True)
        return found

    def file(self, job: Job, name: str) -> Path | None:
        """The file `name` of a finished job, if the manifest lists it."""
        listed = {item["file"] for item in (*job.output, *job.deleted)}
        if job.status != store.DONE or name not in listed or not name.endswith(NDJSON):
            return None
        path = job_folder(self.folder, job.id) / name
        return path if path.is_file() else None

    def _purge(self) -> None:
        """Remove the jobs (and files) that expired, or whose child died with its server."""
        with open_connection(self.served.engine) as conn:
            gone = store.expired_jobs(conn, SILENT_SECONDS)
        for job_id in gone:
            shutil.rmtree(job_folder(self.folder, job_id), ignore_errors=True)

    async def stop(self) -> None:
        """Stop the children this process started (the server is stopping)."""
        for task in list(self._running):
            task.cancel()
        for task in list(self._running):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
