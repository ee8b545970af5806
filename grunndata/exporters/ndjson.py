"""FHIR Bulk Data output: the resources a snapshot serves as ndjson, one gzip file per type.

Each line is a resource exactly as a read sends it (the stored bytes with `meta` spliced in).
With `since`, only the resources changed after it, and a `deleted` file of transaction Bundles,
one DELETE per resource a release after it stopped serving (Bulk Data 2.0's `deleted`): what
`_history` lists for the same instant, newest state only. Memory stays flat: rows are streamed.

`run_job` is what the child process does for a `$export` job (exporters/runner.py): the job's
row in the store says what to write, and hears how far it got.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from grunndata.errors import ExportError
from grunndata.fhir import SERVED_TYPES
from grunndata.store import SEARCHED_TYPES, Entitled, SearchError, Snapshot, date_range, open_connection
from grunndata.store import bulk as store

NDJSON = ".ndjson.gz"
DELETED = "deleted"  # the file name (before NDJSON) of the deletions
Progress = Callable[[int, int], bool]  # (resources written, in all) -> go on?
_REPORT_SECONDS = 1.0  # how often a job's row hears of its progress (a status is polled each 1 s)
# gzip's fastest level: a full-size export's files grow from 22 to 31 MB, and its CPU time, which
# the server's reads share the machine with, falls by a third (benchmarks/RESULTS.md)
_LEVEL = 1


def _gzip_writer() -> Any:
    """The module whose `open` writes the gzip files: ISA-L's (the `isal` package) where it is
    installed, else the standard library's. Compressing is most of the export's CPU time (1.5 of
    2 s at full size with zlib's level 1); ISA-L's level 1 takes a fifth of zlib's for smaller
    files (293 MB of ndjson at 1,000 against 200 MB/s, 8.1 against 7.6 to 1). Either writes
    plain gzip, read by any client."""
    try:
        return importlib.import_module("isal.igzip")
    except ImportError:
        return gzip


_GZIP = _gzip_writer()
_CHUNK = 1 << 18  # bytes gathered before one write to gzip (a write per line cost a second in all)


def export_types(named: Sequence[str], only: str | None = None) -> list[str]:
    """The types to export, in the order served: those `named` (each once), or every type the
    store serves; `only` (a type-level export) allows that type alone. ExportError in one sentence."""
    for name in named:
        if name not in SERVED_TYPES:
            if name in SEARCHED_TYPES:
                raise ExportError(not_exported(name))
            raise ExportError(f"{name[:100]!r} is not a resource type served here")
        if only is not None and name != only:
            raise ExportError(f"{only}/$export exports {only} alone, not {name}; use /fhir/$export")
    if only is not None:
        return [only]
    wanted = set(named)
    return [t for t in SERVED_TYPES if not wanted or t in wanted]


def not_exported(rtype: str) -> str:
    return (
        f"{rtype} is served here but not exported: its resources are made on request "
        "(search them); an export writes the types the store serves"
    )


_PREFIXES = frozenset(("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"))


def since_instant(value: str) -> datetime:
    """`_since` (`--since`) as the instant `_history` takes it; ExportError in one sentence."""
    if value[:2] in _PREFIXES:  # a search prefix is no part of an instant
        raise ExportError(f"{value[:100]!r} is not an instant (e.g. 2026-11-21T10:00:00Z)")
    try:
        _, start, _ = date_range(value)
    except SearchError as e:
        raise ExportError(str(e)) from None
    return start


class Pacer:
    """Keeps an export's work to `share` of its wall time: after each slice of work (at least
    `SLICE` seconds of this process's CPU time), it sleeps `share`'s complement of it. On
    PostgreSQL the store's backend that answers the COPY stops too once the socket's buffer is
    full, so the pace reaches it, which the child's own priority does not (exporters/runner.py).
    Work is counted in CPU time, not wall time: a child that waits for a busy machine's CPU is
    slowed by the machine already, and is not made to sleep for it as well. A share of 1 does not
    pace."""

    SLICE = 0.01

    def __init__(
        self,
        share: float = 1.0,
        clock: Callable[[], float] = time.process_time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"an export's share of the time is more than 0 and at most 1, not {share}")
        self.share, self.clock, self.sleep = share, clock, sleep
        self.since = clock()
        self.slept = 0.0  # in all, for the caller's record

    def __call__(self) -> None:
        if self.share >= 1:
            return
        worked = self.clock() - self.since
        if worked < self.SLICE:
            return
        pause = worked * (1 - self.share) / self.share
        self.sleep(pause)
        self.slept += pause
        self.since = self.clock()


class Cancelled(Exception):
    """The job was cancelled (its row is gone) while it was written."""


@dataclass
class NdjsonResult:
    """What an export wrote: per type the file and its lines, the deletions, and when."""

    transaction_time: datetime
    counts: dict[str, int] = field(default_factory=dict)  # type -> resources written
    deleted: int = 0  # resources deleted since `since` (lines of the deleted file)
    seconds: float = 0.0

    def files(self) -> list[tuple[str, str, int]]:
        """(type, file name, lines) of each file written, the deleted file last."""
        made = [(t, t + NDJSON, n) for t, n in self.counts.items() if n]
        if self.deleted:
            made.append(("Bundle", DELETED + NDJSON, self.deleted))
        return made


def export_ndjson(
    engine: Engine,
    folder: Path,
    *,
    snapshot: Snapshot,
    types: Sequence[str],
    since: datetime | None,
    entitled: Entitled,
    progress: Progress | None = None,
    pacer: Pacer | None = None,
) -> NdjsonResult:
    """Write `<Type>.ndjson.gz` for each type with resources (and `deleted.ndjson.gz` with `since`)
    into `folder`, from `snapshot` (already cut to what `entitled` may read); `pacer`, asked after
    each resource, keeps the work to its share of the time."""
    started = time.monotonic()
    pace = pacer if pacer is not None and pacer.share < 1 else None
    folder.mkdir(parents=True, exist_ok=True)
    with open_connection(engine) as conn:
        result = NdjsonResult(store.transaction_time(conn, snapshot))
        total = sum(store.count_served(conn, snapshot, types, since).values())
        done = 0
        if progress is not None and not progress(0, total):
            raise Cancelled
        last = time.monotonic()
        for rtype in types:
            n = 0
            path = folder / (rtype + NDJSON)
            # closed (its COPY ended) before the connection goes back, should a cancel stop it
            bodies = contextlib.closing(store.served_bodies(conn, snapshot, rtype, since))
            with _GZIP.open(path, "wb", compresslevel=_LEVEL) as out, bodies as served:
                chunk = bytearray()
                for body in served:
                    chunk += body
                    chunk += b"\n"
                    n += 1
                    if pace is not None:
                        pace()
                    if len(chunk) >= _CHUNK:
                        out.write(chunk)
                        chunk.clear()
                    if progress is not None and time.monotonic() - last >= _REPORT_SECONDS:
                        last = time.monotonic()
                        if not progress(done + n, total):
                            raise Cancelled
                out.write(chunk)
            done += n
            result.counts[rtype] = n
            if not n:
                path.unlink()
        if since is not None:
            removed = store.removed_since(conn, snapshot, types, since, entitled)
            if removed:
                with _GZIP.open(folder / (DELETED + NDJSON), "wb", compresslevel=_LEVEL) as out:
                    for rtype, rid in removed:
                        out.write(orjson.dumps(deletion(rtype, rid)))
                        out.write(b"\n")
            result.deleted = len(removed)
    if progress is not None and not progress(total, total):
        raise Cancelled
    result.seconds = time.monotonic() - started
    return result


def deletion(rtype: str, rid: str) -> dict[str, Any]:
    """A deleted resource, as Bulk Data writes it: a transaction Bundle of one DELETE."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "DELETE", "url": f"{rtype}/{rid}"}}],
    }


def job_folder(root: Path, job_id: str) -> Path:
    return root / f"bulk-{job_id}"


def run_job(engine: Engine, job_id: str, root: Path, keep_seconds: float, share: float = 1.0) -> None:
    """Write the files of job `job_id` into its folder under `root`, telling its row how far it got;
    the row says when it is done (or failed, in one sentence). A cancelled job leaves nothing.
    `share`: of the wall time, what the export may work (Pacer)."""
    folder = job_folder(root, job_id)
    with open_connection(engine) as conn:
        job = store.get_job(conn, job_id)
    if job is None:
        return  # cancelled before it began

    def report(done: int, total: int) -> bool:
        with open_connection(engine) as conn:
            return store.report_progress(conn, job_id, done, total)

    try:
        result = export_ndjson(
            engine,
            folder,
            snapshot=job.snapshot,
            types=job.types,
            since=job.since,
            entitled=job.entitlement,
            progress=report,
            pacer=Pacer(share),
        )
    except Cancelled:
        shutil.rmtree(folder, ignore_errors=True)
        return
    except Exception as e:
        shutil.rmtree(folder, ignore_errors=True)
        with open_connection(engine) as conn:
            store.fail_job(
                conn, job_id, f"the export stopped before it finished ({type(e).__name__})", keep_seconds
            )
        raise
    output = [{"type": t, "file": name, "count": n} for t, name, n in result.files() if t != "Bundle"]
    deleted = [{"type": t, "file": name, "count": n} for t, name, n in result.files() if t == "Bundle"]
    with open_connection(engine) as conn:
        if not store.finish_job(conn, job_id, result.transaction_time, output, deleted, keep_seconds):
            shutil.rmtree(folder, ignore_errors=True)  # cancelled as it finished
