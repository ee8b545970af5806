"""FHIR Bulk Data `$export` benchmark (issue 22): a full-size system export through the server, and
what it does to the reads of the clients the server is serving meanwhile.

    python benchmarks/bulk_bench.py [--store URL | --delivery PATH] [--pg ADMIN_URL] [--runs 3] [--write]

For each store, and with the server's caches off (`GRUNNDATA_SEARCH_CACHE_MB=0
GRUNNDATA_READ_CACHE=0`) and on (the defaults), our server runs under api_bench.py's uvicorn
settings and:

- removes the store's leftover `$export` jobs (a kick-off would join a finished one and answer
  at once), then exports alone, --runs times: wall time from the kick-off (`GET /fhir/$export`, `Prefer:
  respond-async`) to the status answering 200 with the manifest (polled every 0.1 s), and the
  peak RSS of the child process that wrote the files (its VmHWM, read every 20 ms while it runs:
  the server starts it, so wait4 is the server's, not ours). Each job is deleted afterwards so the
  next kick-off is a new export.
- read by id (api_bench.py's targets and loadgen.py, --clients clients) without an export and
  while one runs (exports kicked off back to back for the whole window, each polled as its
  Retry-After says), --runs times
  interleaved; p99 while exporting over p99 without.

Prints a table; --write appends it, dated, to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
sys.path.insert(0, str(HERE))

from api_bench import (  # noqa: E402
    Server,
    import_into,
    measure_on,
    pick_targets,
    served_counts,
    start,
    uvicorn,
    warm,
)
from import_bench import fresh_pg, machine, run_timed  # noqa: E402
from loadgen import Result  # noqa: E402

CACHES = {
    "off": {"GRUNNDATA_SEARCH_CACHE_MB": "0", "GRUNNDATA_READ_CACHE": "0"},
    "on": {},
}
TARGET_SECONDS, TARGET_MIB, TARGET_RATIO = 20.0, 300.0, 1.5


def _request(
    url: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _children_of(pid: int) -> set[int]:
    """The export children the server `pid` runs now."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            if f"\nPPid:\t{pid}\n" in status and b"--ndjson-job" in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
        except OSError:
            continue
    return found


def _child_of(pid: int, earlier: set[int]) -> int | None:
    """The export child the server `pid` runs now, if any, not one of `earlier` (the previous
    export's child may still be exiting when the next is kicked off)."""
    return min(_children_of(pid) - earlier, default=None)


_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command's name (None once the process is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process `pid` so far (None once it is gone)."""
    fields = _stat(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / _TICK


def _nice(pid: int) -> int | None:
    fields = _stat(pid)
    return None if fields is None else int(fields[16])


class Backends:
    """The PostgreSQL backends serving an export child (their application_name is the child's,
    exporters/runner.py): the store runs on this machine, so their CPU time is read from /proc."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)

    def pids(self) -> set[int]:
        from grunndata.exporters.runner import EXPORT_APPLICATION

        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (EXPORT_APPLICATION,)
        )
        return {pid for (pid,) in rows}


def _hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Export:
    seconds: float
    peak_mib: float  # 0 when the child was not seen (it ran in less than one sample)
    resources: int
    child_cpu: float = 0.0  # the child's user + system seconds, at its last sample
    backend_cpu: float | None = None  # its PostgreSQL backends' (None: not PostgreSQL)
    backend_nice: tuple[
        int, ...
    ] = ()  # the niceness each of them was seen at (GRUNNDATA_EXPORT_BACKEND_NICE)


def export_once(server: Server, every: float | None = 0.1, backends: Backends | None = None) -> Export:
    """One system export, kick-off to manifest, then deleted; the child's peak RSS and CPU time
    (and its PostgreSQL backends', with `backends`) watched meanwhile. The status is asked `every`
    seconds, or (None) as its Retry-After says, as a client would."""
    peak = {"kib": 0}
    cpu: dict[int, float] = {}  # pid -> CPU seconds at its last sample (the child's and its backends')
    served_by: set[int] = set()
    nice: dict[int, int] = {}  # backend pid -> its niceness, last seen
    earlier = _children_of(server.proc.pid)
    stop = threading.Event()

    def watch() -> None:
        child = None
        asked = 0.0
        while not stop.is_set():
            child = child or _child_of(server.proc.pid, earlier)
            if child is not None:
                hwm = _hwm_kib(child)
                if hwm:
                    peak["kib"] = max(peak["kib"], hwm)
                    cpu[child] = _cpu_seconds(child) or cpu.get(child, 0.0)
                else:
                    child = None  # gone (or the next one)
            if backends is not None and child is not None and time.monotonic() - asked > 0.25:
                asked = time.monotonic()
                served_by.update(backends.pids())
            for pid in served_by:
                cpu[pid] = _cpu_seconds(pid) or cpu.get(pid, 0.0)
                if (niceness := _nice(pid)) is not None:
                    nice[pid] = niceness
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    status, headers, body = _request(server.url + "/fhir/$export", headers={"Prefer": "respond-async"})
    if status != 202:
        raise SystemExit(f"kick-off answered {status}: {body[:300]!r}")
    status_url = headers["content-location"]
    while True:
        status, headers, body = _request(status_url)
        if status != 202:
            break
        time.sleep(every if every is not None else float(headers["retry-after"]))
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    if status != 200:
        raise SystemExit(f"the export answered {status}: {body[:300]!r}")
    resources = sum(item["count"] for item in json.loads(body)["output"])
    _request(status_url, method="DELETE")
    backend_cpu = None if backends is None else sum(cpu.get(pid, 0.0) for pid in served_by)
    child_cpu = sum(t for pid, t in cpu.items() if pid not in served_by)
    return Export(
        seconds, peak["kib"] / 1024, resources, child_cpu, backend_cpu, tuple(sorted(nice.values()))
    )


@dataclass
class Point:
    store: str
    caches: str
    variant: str = ""  # --variant's label ("" when there is one server per caches setting)
    alone: list[Export] = field(default_factory=list)
    without: list[Result] = field(default_factory=list)
    during: list[Result] = field(default_factory=list)
    under_load: list[Export] = field(default_factory=list)  # the exports that ran during the reads


def reads_while(
    server: Server, paths: list[str], clients: int, duration: float, warmup: float
) -> tuple[Result, list[Export]]:
    """Read by id while exports run back to back (the first kicked off before the warm-up)."""
    done: list[Export] = []
    stop = threading.Event()

    def exporting() -> None:
        while not stop.is_set():
            done.append(export_once(server, every=None))  # polled as Retry-After says

    worker = threading.Thread(target=exporting, daemon=True)
    worker.start()
    time.sleep(0.5)  # the child is running
    result, _ = measure_on(server, paths, clients, duration, warmup)
    stop.set()
    worker.join()
    return result, done


def clear_jobs(db: str) -> int:
    """Remove the store's leftover `$export` jobs (and tickets): a kick-off with the same
    entitlement and parameters joins a finished job still kept (an hour by default) and answers
    at once, which is no export (a run of 2026-12-07 18:57 timed 0.1 s exports so). How many."""
    from sqlalchemy import delete

    from grunndata.store import connect
    from grunndata.store.models import BT, B

    engine = connect(db, create=False)
    try:
        with engine.begin() as conn:
            conn.execute(delete(BT))
            return int(conn.execute(delete(B)).rowcount or 0)
    finally:
        engine.dispose()


def bench(
    store: str, db: str, paths: list[str], args: argparse.Namespace, log: Path, exports: Path
) -> list[Point]:
    """Per caches setting, one server per variant, all started at once (an idle one costs
    nothing) so that the variants' windows interleave: run i of every variant before run i + 1
    of any, and the machine's other work falls on each alike."""
    points = []
    for caches, env in CACHES.items():
        if args.caches and caches not in args.caches:
            continue
        if cleared := clear_jobs(db):
            print(f"{store}: {cleared} leftover $export jobs removed first", flush=True)
        servers: list[tuple[Point, Server, Backends | None]] = []
        try:
            for label, extra in args.variant or [("", {})]:
                print(f"{store}, caches {caches} {label}: starting the server ...", flush=True)
                command, base_env = uvicorn("api_bench:create_ours", db)
                server = start(
                    f"ours on {store}",
                    command,
                    {**base_env, **env, **extra, "GRUNNDATA_EXPORT_DIR": str(exports)},
                    log,
                )
                point = Point(store, caches, label)
                servers.append((point, server, Backends(db) if db.startswith("postgresql") else None))
                warm(server, paths)
            for i in range(args.runs):
                for point, server, backends in servers:
                    point.alone.append(export_once(server, backends=backends))
                    print(f"  {point.variant} export alone {i + 1}: {point.alone[-1]}", flush=True)
            for i in range(0 if args.no_reads else args.runs):
                for point, server, _ in servers:
                    print(f"  {point.variant} load {os.getloadavg()[0]:.1f}", flush=True)
                    result, _ = measure_on(server, paths, args.clients, args.duration, args.warmup)
                    point.without.append(result)
                    print(f"  {point.variant} reads without {i + 1}: {result.line()}", flush=True)
                    result, under = reads_while(server, paths, args.clients, args.duration, args.warmup)
                    point.during.append(result)
                    point.under_load.extend(under)
                    print(
                        f"  {point.variant} reads during {i + 1}: {result.line()}; exports {under}",
                        flush=True,
                    )
        finally:
            for _, server, backends in servers:
                server.proc.terminate()
                server.proc.wait(timeout=30)
                if backends is not None:
                    backends.conn.close()
        points += [point for point, _, _ in servers]
    return points


def _variant(text: str) -> tuple[str, dict[str, str]]:
    """`LABEL:VAR=VALUE[,VAR=VALUE]` (--variant) as the label and the server's extra environment."""
    label, _, settings = text.partition(":")
    env = dict(item.split("=", 1) for item in settings.split(",") if item)
    return label, env


def report(points: list[Point], notes: list[str], args: argparse.Namespace, command: str) -> str:
    m = statistics.median
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"\n## FHIR Bulk Data `$export` (issue 22), {stamp}\n",
        f"Machine: {machine()}; server, export child, load generator and store on the same machine. "
        + " ".join(notes),
        "Server: api_bench.py's uvicorn (uvloop, httptools, 1 worker); the export in its child process "
        "(`nice 19` and `SCHED_IDLE`, as in production; its PostgreSQL backends reniced and its work "
        "paced as GRUNNDATA_EXPORT_BACKEND_NICE and GRUNNDATA_EXPORT_SHARE say, each variant's settings "
        "in its label). Export alone: kick-off to manifest (polled every 0.1 s), medians of "
        f"{args.runs}; child peak RSS is its VmHWM read every 20 ms, the largest seen; CPU is user + system "
        "seconds of the child and (PostgreSQL) of the backends serving it (found by its application_name), "
        "from /proc every 20 ms, medians. Reads: read by id of "
        f"2,000 packages, {args.clients} clients, loadgen.py, {args.duration:.0f} s windows after "
        f"{args.warmup:.0f} s warm-up, without and while system exports run back to back (each polled "
        "as its Retry-After says), interleaved, "
        f"medians of {args.runs}.",
        f"Command: `{command}`\n",
        "| store | caches | variant | resources | export wall | child peak RSS | child CPU | PG backend CPU "
        "| read p99 without | read p99 during export "
        "| ratio | ratio per run | read req/s without / during | export wall under load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    nan = float("nan")
    for p in points:
        wall = m(e.seconds for e in p.alone)
        peak = max(e.peak_mib for e in p.alone)
        child = m(e.child_cpu for e in p.alone)
        backend = m(e.backend_cpu for e in p.alone) if p.alone[0].backend_cpu is not None else None
        niceness = sorted({n for e in p.alone for n in e.backend_nice})
        shown = "-" if backend is None else f"{backend:.2f} s (nice {', '.join(map(str, niceness)) or '?'})"
        cpu = f"{child:.2f} s | {shown}"
        p99, p99x = (m(r.p99 for r in p.without), m(r.p99 for r in p.during)) if p.without else (nan, nan)
        rps, rpsx = (m(r.rps for r in p.without), m(r.rps for r in p.during)) if p.without else (nan, nan)
        loaded = m(e.seconds for e in p.under_load) if p.under_load else nan
        errors = sum(r.errors for r in (*p.without, *p.during))
        per_run = ", ".join(f"{b.p99 / a.p99:.2f}" for a, b in zip(p.without, p.during, strict=True))
        reads = (
            f"{p99:.2f} ms | {p99x:.2f} ms | {p99x / p99:.2f}x | {per_run} | {rps:,.0f} / {rpsx:,.0f} | "
            f"{loaded:.1f} s ({len(p.under_load)} exports){'' if not errors else f'; {errors} errors'}"
            if p.without
            else "- | - | - | - | - | - (--no-reads)"
        )
        lines.append(
            f"| {p.store} | {p.caches} | {p.variant or '-'} | {p.alone[0].resources:,} | {wall:.1f} s | {peak:.0f} MiB | {cpu} | {reads} |"
        )
    lines.append(
        f"\nTargets (issue 22): export <= {TARGET_SECONDS:.0f} s and <= {TARGET_MIB:.0f} MB peak RSS; "
        f"read p99 while exporting <= {TARGET_RATIO}x without."
    )
    for p in points:
        wall = m(e.seconds for e in p.alone)
        peak = max(e.peak_mib for e in p.alone)
        verdicts = [
            f"wall {'met' if wall <= TARGET_SECONDS else 'missed'}",
            f"RSS {'met' if peak <= TARGET_MIB else 'missed'}",
        ]
        if p.without:
            ratio = m(r.p99 for r in p.during) / m(r.p99 for r in p.without)
            verdicts.append(f"p99 ratio {'met' if ratio <= TARGET_RATIO else 'missed'}")
        lines.append(f"- {p.store}, caches {p.caches} {p.variant}: {', '.join(verdicts)}".replace("  ", " "))
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--store",
        action="append",
        default=[],
        help="a SQLite or PostgreSQL store to serve as it is, repeatable (else import --delivery)",
    )
    ap.add_argument(
        "--delivery", type=Path, help="a FEST delivery to import (default: generate the real size)"
    )
    ap.add_argument("--pg", help="also on a fresh database on this PostgreSQL server (admin URL)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument(
        "--no-reads",
        action="store_true",
        help="the exports alone (wall, RSS, CPU of the child and its backends), no read windows",
    )
    ap.add_argument(
        "--variant",
        action="append",
        type=_variant,
        help="LABEL:VAR=VALUE[,VAR=VALUE]: a server with these settings too, its runs interleaved with "
        "the others' (repeatable; e.g. --variant paced:GRUNNDATA_EXPORT_SHARE=0.5 "
        "--variant plain:GRUNNDATA_EXPORT_SHARE=1,GRUNNDATA_EXPORT_BACKEND_NICE=0)",
    )
    ap.add_argument(
        "--caches", action="append", choices=sorted(CACHES), help="only these caches settings (repeatable)"
    )
    ap.add_argument("--note", default="", help="a sentence for the table (e.g. what else ran)")
    ap.add_argument("--write", action="store_true", help="append the table to RESULTS.md")
    args = ap.parse_args()
    notes = [args.note] if args.note else []
    load_before = os.getloadavg()[0]
    drop: Callable[[], None] = lambda: None  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        exports = work / "exports"
        exports.mkdir(mode=0o700)
        try:
            stores: dict[str, str] = {}
            for url in args.store:
                stores["postgresql" if url.startswith("postgresql") else "sqlite"] = url
            delivery = args.delivery
            if (not args.store or args.pg) and delivery is None:
                delivery = work / "fest251.zip"
                print("generating ...", flush=True)
                run_timed([sys.executable, "-m", "grunndata.cli", "generate", "fest", str(delivery)])
                notes.append("Delivery: generated, real size.")
            if not args.store:
                stores["sqlite"] = f"sqlite:///{work / 'bulk.db'}"
                print("importing into sqlite ...", flush=True)
                import_into(delivery, stores["sqlite"])  # type: ignore[arg-type]
            if args.pg:
                url, drop, version = fresh_pg(args.pg)
                stores["postgresql"] = url
                print("importing into postgresql ...", flush=True)
                import_into(delivery, url)  # type: ignore[arg-type]
                notes.append(f"PostgreSQL {version} on the same machine.")
            first = next(iter(stores.values()))
            counts = served_counts(first)
            notes.append(f"Served: {sum(counts.values()):,} resources of {len(counts)} types.")
            paths = pick_targets(first, 2000, 1)["read"]
            points: list[Point] = []
            for store, db in stores.items():
                points += bench(store, db, paths, args, work / "servers.log", exports)
        finally:
            drop()
    notes.append(
        f"Load average (1 min, other work included) {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end."
    )
    command = "python benchmarks/bulk_bench.py" + "".join(f" {a}" for a in sys.argv[1:] if a != "--write")
    table = report(points, notes, args, command)
    print(table)
    if args.write:
        with RESULTS.open("a") as f:
            f.write(table)


if __name__ == "__main__":
    main()
