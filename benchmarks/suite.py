"""The whole benchmark suite in one command, on the embedded default (SQLite) and on PostgreSQL.

    python benchmarks/suite.py [--write] [--json PATH]            # the full suite: about an hour
    python benchmarks/suite.py --quick                            # scale 0.1, 20 users, 1 minute: ~6 min
    python benchmarks/suite.py --only api locust --stores sqlite --delivery fest251.zip

Generates a full-size delivery once (or takes --delivery) and its full follow-up, then, per store,
each step below (`--only` picks; a step that fails is reported and the suite carries on; the exit
status is 1 when a step failed or a request failed):

- import: `grunndata import fest` into a fresh store, each a fresh process (import_bench.run_timed:
  wall time, peak RSS), median of --repeat; also as a ratio to a bare lxml parse of the same file.
  The last import is the store the other steps use (without this step it is imported unmeasured).
- api: api_bench.run_all: the raw constant server (the load generator's limit), the bare ASGI app
  (`bare_app.py`, the limit of this stack: a read answered from a dict of the same bytes), and our
  reads, searches (varenr, name `:contains`, ATC), `$everything` and `$translate`, at --clients
  closed-loop clients with loadgen.py, interleaved, medians of --runs; then the searches once more
  with the search cache off (every one a first ask). The bare app's read rate here is the "bare"
  every request rate of this store's table is divided by (measured on its own when api is skipped).
- export: `grunndata export m30` (fresh process; wall, peak RSS, ratio to an lxml parse of the output).
- locust: our server (fresh process) and `benchmarks/locustfile.py`, --users users for --minutes
  minutes; failures, rate, p50/p95/p99 overall, of the reads (`read`) and of every kind of lookup.
  The locustfile's users pause between lookups, so this is an offered load, not the limit:
- capacity: the same with no pauses (`--grunndata-wait 0`) for --capacity-minutes: the mix's rate
  when the machine is the limit (locust's and the server's CPU are in the table). Requests that fail
  here (time out) are shown; past the offered load they describe the limit, they do not fail the step.
- mixed: locust again on a fresh server, and the full follow-up imported into the same store while it
  runs; the run ends a few seconds after the server serves the new release. Then the same locust
  run, the same length, without an import (fresh server, on the new release). No request may fail
  (a 410 for an id the new release expired is the right answer, counted apart); the p99 with the
  import is compared with the p99 without (target: at most double).

Servers run as api_bench runs them: uvicorn, uvloop, httptools, 1 worker (--workers K), no access
log, `api_bench:create_ours` over GRUNNDATA_DB. Each locust run gets a fresh server, warmed first
(`/fest/m30` and a `$translate` asked once: the M30 file and the terminology indexes are made once
per release, ~20 s at full size, and would otherwise be the run's first seconds; --cold skips it). Prints one dated table per store; --write appends
them to benchmarks/RESULTS.md, --json writes every raw number.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
sys.path.insert(0, str(HERE))

import api_bench  # noqa: E402
from export_bench import read_floor  # noqa: E402
from import_bench import fresh_pg, machine, parse_floor, run_timed  # noqa: E402
from loadgen import free_port, wait_for_port  # noqa: E402

CLI = [sys.executable, "-m", "grunndata.cli"]
STEPS = ("import", "api", "export", "locust", "capacity", "mixed")
STORES = ("sqlite", "postgresql")
TARGET_USERS, TARGET_MINUTES = 100, 10  # issue 7: zero failed requests in a 10-minute, 100-user run ...
READ_P99_MS = 20.0  # ... and reads p99 <= 20 ms at that load
MIXED_P99_FACTOR = 2.0  # p99 during an import at most doubles
WINDOW_P99_FACTOR = 1.5  # issue 23 item 4: p99 in the import-and-switch window ÷ the same window without
WINDOW_AFTER = 5.0  # the window closes this many seconds after the server serves the new release
IMPORT_TARGET = (30.0, 400.0)  # issue 2: seconds, MiB (SQLite)
EXPORT_TARGET = (20.0, 300.0)  # issue 4: seconds, MiB
EXPECTED_DURING_IMPORT = "HTTP 410"  # in a failure's text: an id the new release expired, the right answer


# -- small helpers ----------------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def timed(args: list[str]) -> tuple[float, float, int, str]:
    """Run a command: (wall seconds, peak RSS MiB, exit code, output); never raises on failure."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), out


def entries_of(import_output: str) -> int:
    line = next((x for x in import_output.splitlines() if " entries in " in x), "")
    return int(line.split()[0].replace(",", "")) if line else 0


def xml_of(delivery: Path, work: Path) -> Path:
    """An XML file lxml can parse for the floor: the delivery itself, or the one file of its zip."""
    if delivery.suffix != ".zip":
        return delivery  # .xml, or .xml.gz (libxml2 reads gzip)
    out = work / "floor.xml"
    if not out.exists():
        with zipfile.ZipFile(delivery) as z:
            out.write_bytes(z.read(z.namelist()[0]))
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(), newline="")))


def process_tree(pid: int) -> list[int]:
    """A process and every live descendant."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and every live descendant."""
    total = 0.0
    for p in process_tree(pid):
        with suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def tree_rss(pid: int) -> float:
    """Resident MiB of a process and every live descendant (uvicorn's workers, with --workers)."""
    total = 0.0
    for p in process_tree(pid):
        with suppress(OSError, ValueError, StopIteration):
            line = next(
                x for x in Path(f"/proc/{p}/status").read_text().splitlines() if x.startswith("VmRSS:")
            )
            total += int(line.split()[1]) / 1024
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def get_json(url: str, timeout: float = 30) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/fhir+json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def served_snapshot(base: str) -> str:
    """The releases the server answers from now: the `_snapshot` of a search's self link."""
    bundle = get_json(base + "/fhir/PackagedProductDefinition?_count=1&_elements=id")
    link = next(x["url"] for x in bundle.get("link", []) if x["relation"] == "self")
    return parse_qs(urlsplit(link).query).get("_snapshot", [""])[0]


def warm(base: str) -> float:
    """What a server does once per snapshot, done before a measured run: the M30 file written, the
    terminology indexes built, the CapabilityStatement made. Seconds it took."""
    started = time.perf_counter()
    for path, headers in (
        ("/fest/m30", {"Accept-Encoding": "gzip"}),
        (
            "/fhir/ConceptMap/$translate?system=http://dmp.no/fhir/NamingSystem/fest-varenummer"
            "&sourceCode=000000&targetSystem=https://www.gs1.org/gtin",
            {},
        ),
        ("/fhir/metadata", {}),
    ):
        request = urllib.request.Request(base + path, headers={"Accept": "application/fhir+json", **headers})
        with urllib.request.urlopen(request, timeout=600) as response:
            while response.read(1 << 20):
                pass
    return time.perf_counter() - started


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Stop a process started in its own session; its whole group is killed if it lingers."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def our_server(db: str, log: Path, env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """Our server over `db` with api_bench's uvicorn settings (api_bench.UVICORN, --workers included),
    a fresh process group on a free port; yields (base URL, pid) once /health answers."""
    command, base_env = api_bench.uvicorn("api_bench:create_ours", db)
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command(port),
            env={**os.environ, **base_env, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=HERE,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_port(port, timeout=300, proc=proc)
            deadline = time.monotonic() + 300
            while True:
                try:
                    get_json(base + "/health", timeout=10)
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.2)
        except (SystemExit, OSError) as e:
            raise RuntimeError(
                f"our server did not start ({e}); its log:\n{log.read_text()[-3000:]}"
            ) from None
        yield base, proc.pid
    finally:
        stop(proc)


# -- locust -----------------------------------------------------------------------------------------


@dataclass
class Kind:
    """One kind of request (a locust request name), or a group of them."""

    name: str
    requests: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float
    max: float


@dataclass
class LocustRun:
    users: int
    seconds: float  # the locust process's wall time
    lead: float  # from starting locust to its first request (it samples the server first)
    exit_code: int
    cpu: float  # locust's CPU seconds per wall second (1.0 = one core)
    server_cpu: float  # the server's (all its processes)
    server_rss: float  # the server's resident MiB at the end of the run (all its processes)
    machine: float  # the share of the machine's CPU time that was busy (all cores, PostgreSQL included)
    total: Kind
    reads: Kind
    kinds: list[Kind]
    failures: list[tuple[str, str, int]]  # (name, error, occurrences)
    expected_by: dict[str, int] = field(default_factory=dict)  # right answers counted as failures, by name
    import_seconds: float | None = None  # mixed: the import under load
    import_rss: float | None = None
    import_exit: int | None = None
    pickup_seconds: float | None = None  # mixed: from the import's end to the server serving it
    warmed: float | None = None  # seconds the server's warm-up took before the run (None: --cold)
    log_tail: str = ""
    first_epoch: float = 0.0  # when its first request was sent (epoch seconds)
    times: str = ""  # the locustfile's --grunndata-times file: every request, when it started, its ms

    def window(self, start: float, end: float, names: set[str] | None = None) -> tuple[int, float]:
        """(requests, nearest-rank p99 ms) of the requests started `start` to `end` seconds after the
        first one, of `names` (None: all); (0, 0.0) without a times file."""
        if not self.times or not Path(self.times).exists():
            return 0, 0.0
        lo, hi = self.first_epoch + start, self.first_epoch + end
        histogram: dict[float, int] = {}
        for row in read_csv(Path(self.times)):
            if lo <= float(row["started"]) < hi and (names is None or row["name"] in names):
                ms = float(row["ms"])
                histogram[ms] = histogram.get(ms, 0) + 1
        return sum(histogram.values()), percentile(histogram, 0.99)

    @property
    def expected(self) -> int:
        """Failures that are the right answer (410 for an id the new release expired, in the mixed run)."""
        return sum(self.expected_by.values())

    @property
    def failed(self) -> int:
        return self.total.failures - self.expected

    @property
    def reads_failed(self) -> int:
        names = self.reads.name.split(", ")
        return self.reads.failures - sum(n for name, n in self.expected_by.items() if name in names)

    def raw(self) -> dict[str, Any]:
        return {**asdict(self), "failed": self.failed, "expected": self.expected, "span": self.total_span}

    @property
    def total_span(self) -> float:
        """Seconds from the first request to the last (what the rates are per)."""
        return self.total.requests / self.total.rps if self.total.rps else self.seconds


def percentile(histogram: dict[float, int], q: float) -> float:
    """Nearest-rank percentile of a {response time ms: count} histogram (locust's rounding)."""
    n = sum(histogram.values())
    if not n:
        return 0.0
    rank, seen = max(1, -(-int(q * n * 1000) // 1000)), 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return max(histogram)


def kind_of(name: str, entries: list[dict[str, Any]], duration: float) -> Kind:
    histogram: dict[float, int] = {}
    for e in entries:
        for value, count in e["response_times"].items():
            histogram[float(value)] = histogram.get(float(value), 0) + count
    requests = sum(e["num_requests"] for e in entries)
    return Kind(
        name,
        requests,
        sum(e["num_failures"] for e in entries),
        requests / duration if duration > 0 else 0.0,
        percentile(histogram, 0.50),
        percentile(histogram, 0.95),
        percentile(histogram, 0.99),
        max((e["max_response_time"] or 0 for e in entries), default=0.0),
    )


def kinds_from_json(path: Path, reads: re.Pattern[str]) -> tuple[Kind, Kind, list[Kind], float]:
    """(all, reads, per kind, first request's epoch) from locust's --json-file: percentiles from its
    histograms, over the span from the first request to the last."""
    entries = [e for e in json.loads(path.read_text()) if e["name"] != "Aggregated"]
    starts = [e["start_time"] for e in entries if e.get("start_time")]
    ends = [e["last_request_timestamp"] for e in entries if e.get("last_request_timestamp")]
    duration = max(ends) - min(starts) if starts and ends else 0.0
    kinds = sorted((kind_of(e["name"], [e], duration) for e in entries), key=lambda k: (-k.requests, k.name))
    read = [e for e in entries if reads.search(e["name"])]
    first = min(starts) if starts else 0.0
    names = ", ".join(sorted(e["name"] for e in read)) or "none"
    return kind_of("all", entries, duration), kind_of(names, read, duration), kinds, first


def kinds_from_csv(path: Path, reads: re.Pattern[str]) -> tuple[Kind, Kind, list[Kind]]:
    """The same from `_stats.csv` (a locust without --json-file): a group's percentiles are its worst."""
    rows = read_csv(path)

    def kind(row: dict[str, str]) -> Kind:
        return Kind(
            row["Name"],
            int(row["Request Count"]),
            int(row["Failure Count"]),
            float(row["Requests/s"]),
            float(row["50%"] if row["50%"] != "N/A" else 0),
            float(row["95%"] if row["95%"] != "N/A" else 0),
            float(row["99%"] if row["99%"] != "N/A" else 0),
            float(row["Max Response Time"]),
        )

    total = next(kind(r) for r in rows if r["Name"] == "Aggregated")
    kinds = [kind(r) for r in rows if r["Name"] != "Aggregated"]
    read = [k for k in kinds if reads.search(k.name)]
    group = Kind(
        ", ".join(k.name for k in read) or "none",
        sum(k.requests for k in read),
        sum(k.failures for k in read),
        sum(k.rps for k in read),
        max((k.p50 for k in read), default=0.0),
        max((k.p95 for k in read), default=0.0),
        max((k.p99 for k in read), default=0.0),
        max((k.max for k in read), default=0.0),
    )
    total.name = "all"
    return total, group, sorted(kinds, key=lambda k: -k.requests)


class Locust:
    """Runs benchmarks/locustfile.py headless, the way the issue runs it, and reads what it saved."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.locustfile = Path(args.locustfile)
        self.users, self.spawn_rate = args.users, args.spawn_rate
        self.extra = shlex.split(args.locust_args or "")
        self.reads = re.compile(args.reads)
        self.token = args.token
        self.cold = args.cold
        self.work = work
        self.runs = 0
        self._json_file: bool | None = None

    def check(self) -> None:
        if not self.locustfile.exists():
            raise RuntimeError(f"{self.locustfile} not found: the locust steps need it")
        if self._json_file is None:
            help_text = subprocess.run(
                [sys.executable, "-m", "locust", "--help"], capture_output=True, text=True, timeout=120
            )
            if help_text.returncode != 0:
                raise RuntimeError(f"locust is not installed here: {help_text.stderr.strip()[-300:]}")
            self._json_file = "--json-file" in help_text.stdout

    def version(self) -> str:
        out = subprocess.run([sys.executable, "-m", "locust", "--version"], capture_output=True, text=True)
        return out.stdout.strip().split(" from ")[0] or "?"

    def run(
        self,
        host: str,
        server_pid: int,
        seconds: float,
        during: Callable[[Running], None] | None = None,
        extra: list[str] | None = None,
    ) -> LocustRun:
        """One locust run of `seconds` against `host`. With `during`, it is called once the users are
        spawned, and locust is stopped (SIGTERM: it saves its stats and exits) when it returns."""
        self.check()
        self.runs += 1
        prefix = self.work / f"locust{self.runs}"
        json_file = Path(f"{prefix}.json")  # locust adds the .json to what --json-file names
        times = Path(f"{prefix}_times.csv")  # every request, for p99 in a window (the mixed step)
        timed_run = "--grunndata-times" in self.locustfile.read_text()
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(self.locustfile),
            "--headless",
            "-u",
            str(self.users),
            "-r",
            f"{self.spawn_rate:g}",
            "-t",
            f"{round(seconds)}s",
            "--host",
            host,
            "--csv",
            str(prefix),
            "--only-summary",
            *(["--json-file", str(prefix)] if self._json_file else []),
            *(["--grunndata-times", str(times)] if timed_run else []),
            *(extra or []),
            *self.extra,
        ]
        env = {k: v for k, v in os.environ.items() if k != "GRUNNDATA_LOCUST_TOKEN"}
        if self.token:  # our server has no JWKS: only a token the caller set up is sent
            env["GRUNNDATA_LOCUST_TOKEN"] = self.token
        log = Path(f"{prefix}.log")
        warmed = None if self.cold else warm(host)
        say(f"locust: {self.users} users at {self.spawn_rate:g}/s, up to {seconds:.0f} s, against {host}")
        server_cpu0, started, epoch = tree_cpu(server_pid), time.perf_counter(), time.time()
        busy0, total0 = machine_busy()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=HERE, start_new_session=True
            )
        running = Running(proc, Path(f"{prefix}_stats_history.csv"), self.users)
        try:
            if during is not None:
                during(running)
                if running.alive():
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + seconds + 180
            while running.alive() and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            if running.alive():
                proc.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 30
                while running.alive() and time.monotonic() < deadline:
                    time.sleep(0.2)
                if running.alive():
                    with suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        wall = time.perf_counter() - started
        server_cpu = (tree_cpu(server_pid) - server_cpu0) / wall
        server_rss = tree_rss(server_pid)
        busy1, total1 = machine_busy()
        machine = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
        code = proc.returncode if proc.returncode is not None else -1
        cpu = running.cpu / wall
        tail = log.read_text(errors="replace")[-2500:]
        stats_csv = Path(f"{prefix}_stats.csv")
        if self._json_file and json_file.exists():
            total, reads, kinds, first = kinds_from_json(json_file, self.reads)
        elif stats_csv.exists():
            (total, reads, kinds), first = kinds_from_csv(stats_csv, self.reads), epoch
        else:
            raise RuntimeError(f"locust exited with {code} and saved no stats; its log ends:\n{tail}")
        failures = []
        with suppress(OSError):
            for row in read_csv(Path(f"{prefix}_failures.csv")):
                failures.append((row["Name"], row["Error"], int(row["Occurrences"])))
        if not total.requests:
            raise RuntimeError(f"locust sent no request (exit {code}); its log ends:\n{tail}")
        say(
            f"locust: {total.requests:,} requests, {total.failures:,} failed, {total.rps:,.0f} req/s, "
            f"p50 {total.p50:g} ms, p99 {total.p99:g} ms; reads p99 {reads.p99:g} ms (exit {code})"
        )
        return LocustRun(
            self.users,
            wall,
            max(0.0, first - epoch),
            code,
            cpu,
            server_cpu,
            server_rss,
            machine,
            total,
            reads,
            kinds,
            failures,
            warmed=warmed,
            log_tail=tail,
            first_epoch=first,
            times=str(times) if timed_run else "",
        )


class Running:
    """A running locust process: reaped here with wait4, so its CPU time is known."""

    def __init__(self, proc: subprocess.Popen[Any], history: Path, users: int) -> None:
        self.proc, self.history, self.users = proc, history, users
        self.cpu = 0.0

    def alive(self) -> bool:
        if self.proc.returncode is not None:
            return False
        try:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        except ChildProcessError:
            self.proc.returncode = self.proc.poll() if self.proc.poll() is not None else -1
            return False
        if pid == 0:
            return True
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.cpu = usage.ru_utime + usage.ru_stime
        return False

    def spawned(self, timeout: float) -> bool:
        """Wait until locust reports every user started (its stats history, written every few seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            with suppress(OSError, ValueError, KeyError):
                rows = read_csv(self.history)
                if rows and int(rows[-1]["User Count"]) >= self.users:
                    return True
            time.sleep(0.5)
        return False


# -- one store ------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of a store's table."""

    step: str
    what: str
    rate: float | None = None
    unit: str = "req/s"
    vs_bare: bool = True
    p50: float | None = None
    p99: float | None = None
    failed: int | None = None
    notes: str = ""
    target: str = ""
    met: bool | None = None
    coarse: bool = False  # latencies from locust's histogram: whole milliseconds below 100 ms


@dataclass
class StoreRun:
    name: str  # sqlite or postgresql
    args: argparse.Namespace
    work: Path
    delivery: Path
    followup: Path | None
    floor: float | None
    locust: Locust
    url: str = ""
    version: str = ""
    rows: list[Row] = field(default_factory=list)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    bare: float | None = None  # the bare app's read rate at --clients[0]: what request rates are divided by
    bare_note: str = ""
    store_ready: bool = False
    failure: str = ""  # why the running step failed, found after it measured

    # -- running steps --

    def step(self, name: str, function: Callable[[], dict[str, Any] | None]) -> None:
        say(f"{self.name}: {name} ...")
        started = time.perf_counter()
        record: dict[str, Any] = {"ok": True}
        self.failure = ""
        try:
            record["data"] = function() or {}
        except (Exception, SystemExit) as e:  # noqa: BLE001  (a failing step is reported, the rest runs)
            self.failure = f"{type(e).__name__}: {e}".strip()
            record["traceback"] = traceback.format_exc()
        if self.failure:
            record["ok"], record["error"] = False, self.failure
            say(f"{self.name}: {name} FAILED: {self.failure[:2000]}")
        record["seconds"] = time.perf_counter() - started
        self.steps[name] = record
        say(f"{self.name}: {name} took {record['seconds']:.0f} s")

    def fail(self, why: str) -> None:
        """Fail the running step once it returns (a request failed), keeping what it measured."""
        self.failure = "; ".join(filter(None, [self.failure, why]))

    def run(self, steps: list[str]) -> None:
        drop: Callable[[], None] = lambda: None  # noqa: E731
        try:
            if self.name == "sqlite":
                self.url = f"sqlite:///{self.work / 'suite.db'}"
                self.version = "SQLite (a file)"
            else:
                self.url, drop, version = fresh_pg(self.args.pg)
                self.version = f"PostgreSQL {version} on the same machine"
        except Exception as e:  # noqa: BLE001
            for s in steps:
                self.steps[s] = {"ok": False, "error": f"no {self.name} store: {e}", "seconds": 0.0}
            return
        try:
            needs_store = [s for s in steps if s != "import"]
            if "import" in steps:
                self.step("import", self.import_step)
            elif needs_store:
                self.step("setup", self.setup_import)
            for name, function in (
                ("api", self.api_step),
                ("export", self.export_step),
                ("locust", self.locust_step),
                ("capacity", self.capacity_step),
                ("mixed", self.mixed_step),
            ):
                if name in steps:
                    self.step(name, function)
        finally:
            drop()

    def need_store(self) -> None:
        if not self.store_ready:
            raise RuntimeError("no store: the import failed")

    def need_bare(self) -> None:
        """The bare app's read rate, measured now when the api step did not."""
        if self.bare is None:
            self.api_rows(["read-bare"], first_ask=False, record="bare")
        if self.bare is None:
            raise RuntimeError("the bare app's read rate could not be measured")

    # -- import --

    def import_step(self) -> dict[str, Any]:
        runs = []
        for i in range(self.args.repeat):
            last = i == self.args.repeat - 1
            if last:
                url, drop = self.url, (lambda: None)
            elif self.name == "sqlite":
                url, drop = f"sqlite:///{self.work / f'scratch{i}.db'}", (lambda: None)
            else:
                url, drop, _ = fresh_pg(self.args.pg)
            try:
                wall, rss, out = run_timed([*CLI, "import", "fest", str(self.delivery), "--db", url])
                runs.append({"wall": wall, "rss": rss, "entries": entries_of(out)})
                say(f"{self.name}: import {i + 1}/{self.args.repeat}: {wall:.1f} s, {rss:.0f} MiB")
            finally:
                drop()
                if not last and self.name == "sqlite":
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{self.work / f'scratch{i}.db'}{suffix}").unlink(missing_ok=True)
        self.store_ready = True
        wall = statistics.median(r["wall"] for r in runs)
        rss = statistics.median(r["rss"] for r in runs)
        entries = runs[-1]["entries"]
        floor = f", {wall / self.floor:.1f} × the lxml parse ({self.floor:.1f} s)" if self.floor else ""
        met = wall <= IMPORT_TARGET[0] and rss <= IMPORT_TARGET[1]
        self.rows.append(
            Row(
                "import",
                f"full delivery, {entries:,} entries, fresh process"
                + (f" (median of {len(runs)})" if len(runs) > 1 else ""),
                entries / wall,
                "entries/s",
                vs_bare=False,
                notes=f"{wall:.1f} s, peak RSS {rss:.0f} MiB{floor}",
                target=f"≤ {IMPORT_TARGET[0]:g} s, ≤ {IMPORT_TARGET[1]:g} MB (issue 2, SQLite)",
                met=met if self.name == "sqlite" else None,
            )
        )
        return {"runs": runs, "floor": self.floor}

    def setup_import(self) -> dict[str, Any]:
        wall, rss, out = run_timed([*CLI, "import", "fest", str(self.delivery), "--db", self.url])
        self.store_ready = True
        self.notes.append(f"Store: the delivery imported before the steps ({wall:.1f} s, not a step).")
        return {"wall": wall, "rss": rss, "entries": entries_of(out)}

    # -- api --

    def api_rows(self, keys: list[str], first_ask: bool, record: str) -> dict[str, Any]:
        """api_bench's scenarios `keys` on this store; rows for the table, the bare rate remembered."""
        self.need_store()
        args = self.args
        scenarios = [s for s in api_bench.SCENARIOS if s.key in keys]
        targets = api_bench.pick_targets(self.url, args.targets, args.seed)
        saved = os.environ.get("GRUNNDATA_SEARCH_CACHE_MB")
        if first_ask:
            os.environ["GRUNNDATA_SEARCH_CACHE_MB"] = "0"
        try:
            rows, skipped, checks = api_bench.run_all(
                {self.name: self.url},
                targets,
                scenarios,
                args.clients,
                args.runs,
                args.duration,
                args.warmup,
                self.work / f"api-{self.name}.log",
            )
        finally:
            if first_ask:
                if saved is None:
                    os.environ.pop("GRUNNDATA_SEARCH_CACHE_MB", None)
                else:
                    os.environ["GRUNNDATA_SEARCH_CACHE_MB"] = saved
        bare = {r.clients: r.median(lambda x: x.rps) for r in rows if r.scenario.key == "read-bare"}
        if bare and self.bare is None:
            c = args.clients[0] if args.clients[0] in bare else next(iter(bare))
            self.bare, self.bare_note = bare[c], f"the bare app's read by id at {c} clients"
        for r in rows:
            rps = r.median(lambda x: x.rps)
            key = r.scenario.key
            target, met = "", None
            if not first_ask and key in api_bench.TARGETS and r.clients == api_bench.TARGET_CLIENTS:
                limit = api_bench.TARGETS[key]
                p99 = r.median(lambda x: x.p99)
                met = p99 <= limit and r.errors == 0
                target = f"p99 ≤ {limit:g} ms"
                if key == "read" and api_bench.TARGET_CLIENTS in bare:
                    ratio = rps / bare[api_bench.TARGET_CLIENTS]
                    met = met and ratio >= api_bench.MIN_READ_RATIO
                    target = f"≥ {api_bench.MIN_READ_RATIO} × bare, " + target
            what = r.scenario.label + (", first ask (search cache off)" if first_ask else "")
            self.rows.append(
                Row(
                    record,
                    f"{what}, {r.clients} clients",
                    rps,
                    vs_bare=r.scenario.server != "raw",
                    p50=r.median(lambda x: x.p50),
                    p99=r.median(lambda x: x.p99),
                    failed=r.errors,
                    notes=f"{r.median(lambda x: x.mean_bytes):,.0f} B/answer"
                    + (
                        f", n={r.median(lambda x: x.requests):.0f}"
                        if r.median(lambda x: x.requests) < 100
                        else ""
                    ),
                    target=target,
                    met=met,
                )
            )
        return {
            "rows": [
                {
                    "scenario": r.scenario.key,
                    "clients": r.clients,
                    "first_ask": first_ask,
                    "runs": [asdict(x) for x in r.runs],
                    "server_cpu": r.server_cpu,
                }
                for r in rows
            ],
            "skipped": skipped,
            "checks": checks,
        }

    def api_step(self) -> dict[str, Any]:
        cached = self.api_rows([s.key for s in api_bench.SCENARIOS], first_ask=False, record="api")
        first = self.api_rows(["varenr", "name", "atc"], first_ask=True, record="api")
        errors = sum(r.failed or 0 for r in self.rows if r.step == "api")
        if errors:
            self.fail(f"{errors} requests failed in the api step")
        return {"cached": cached, "first_ask": first}

    # -- export --

    def export_step(self) -> dict[str, Any]:
        self.need_store()
        runs = []
        for i in range(self.args.repeat):
            out = self.work / f"export-{self.name}.xml"
            wall, rss, stdout = run_timed([*CLI, "export", "m30", "--db", self.url, "-o", str(out)])
            floor = parse_floor(out)
            read = read_floor(self.work / "suite.db") if self.name == "sqlite" else None
            entries = int(stdout.split("bytes, ", 1)[1].split()[0].replace(",", ""))
            runs.append(
                {
                    "wall": wall,
                    "rss": rss,
                    "floor": floor,
                    "read": read,
                    "entries": entries,
                    "bytes": out.stat().st_size,
                }
            )
            out.unlink()
            say(f"{self.name}: export {i + 1}/{self.args.repeat}: {wall:.1f} s, {rss:.0f} MiB")
        m = statistics.median
        wall, rss, floor = m(r["wall"] for r in runs), m(r["rss"] for r in runs), m(r["floor"] for r in runs)
        self.rows.append(
            Row(
                "export",
                f"M30, full, {runs[0]['entries']:,} entries, {runs[0]['bytes'] / 1e6:.0f} MB XML, fresh process"
                + (f" (median of {len(runs)})" if len(runs) > 1 else ""),
                runs[0]["entries"] / wall,
                "entries/s",
                vs_bare=False,
                notes=f"{wall:.1f} s, peak RSS {rss:.0f} MiB, {wall / floor:.1f} × the lxml parse of the output",
                target=f"≤ {EXPORT_TARGET[0]:g} s, ≤ {EXPORT_TARGET[1]:g} MB (issue 4)",
                met=wall <= EXPORT_TARGET[0] and rss <= EXPORT_TARGET[1],
            )
        )
        return {"runs": runs}

    # -- locust --

    def locust_rows(self, step: str, label: str, run: LocustRun, kinds: bool) -> None:
        notes = (
            f"{run.total.requests:,} requests; CPU: locust {run.cpu:.0%}, server {run.server_cpu:.0%} "
            f"(100% = one core), the machine {run.machine:.0%} busy; server RSS at the end "
            f"{run.server_rss:.0f} MiB"
        )
        if run.expected:
            notes += (
                f"; {run.expected} × {EXPECTED_DURING_IMPORT} for ids the new release expired (right answers)"
            )
        if run.failures and run.failed:
            worst = sorted(run.failures, key=lambda f: -f[2])[:3]
            notes += "; failures: " + "; ".join(f"{n}: {e[:80]} × {c}" for n, e, c in worst)
        judged = step == "locust"  # the targets are for the 10-minute run
        for what, stats, failed, row_notes, target, met in (
            (
                f"all requests, {run.users} users",
                run.total,
                run.failed,
                notes,
                "no failed request",
                run.failed == 0,
            ),
            (
                f"reads (`{run.reads.name}`)",
                run.reads,
                run.reads_failed,
                "",
                f"p99 ≤ {READ_P99_MS:g} ms",
                run.reads.p99 <= READ_P99_MS,
            ),
        ):
            self.rows.append(
                Row(
                    step,
                    f"{label}, {what}",
                    stats.rps,
                    p50=stats.p50,
                    p99=stats.p99,
                    failed=failed,
                    notes=row_notes,
                    coarse=True,
                    target=target if judged else "",
                    met=met if judged else None,
                )
            )
        if kinds:
            for k in run.kinds:
                self.rows.append(
                    Row(
                        step,
                        f"{label}, `{k.name}`",
                        k.rps,
                        p50=k.p50,
                        p99=k.p99,
                        failed=k.failures,
                        coarse=True,
                        notes=f"{k.requests:,} requests, p95 {k.p95:g} ms, max {k.max:,.0f} ms",
                    )
                )

    def locust_step(self) -> dict[str, Any]:
        self.need_store()
        self.locust.check()
        self.need_bare()
        a = self.args
        with our_server(self.url, self.work / f"locust-{self.name}.log") as (base, pid):
            run = self.locust.run(base, pid, a.minutes * 60)
        self.locust_rows("locust", f"locust {a.minutes:g} min", run, kinds=True)
        if run.failed:
            self.fail(f"{run.failed} requests failed (locust exit {run.exit_code})")
        elif run.exit_code != 0:
            self.fail(f"locust exited with {run.exit_code}; its log ends:\n{run.log_tail}")
        return run.raw()

    def capacity_step(self) -> dict[str, Any]:
        """The same mix with no pause between lookups: what the machine gives it (or locust does)."""
        self.need_store()
        self.locust.check()
        self.need_bare()
        a = self.args
        with our_server(self.url, self.work / f"capacity-{self.name}.log") as (base, pid):
            run = self.locust.run(base, pid, a.capacity_minutes * 60, extra=["--grunndata-wait", "0"])
        self.locust_rows("capacity", f"locust {a.capacity_minutes:g} min, no pauses", run, kinds=False)
        # past the offered load, a request that times out describes the limit: shown, not a failed step
        return run.raw()

    # -- mixed --

    def mixed_step(self) -> dict[str, Any]:
        self.need_store()
        if self.followup is None or not self.followup.exists():
            raise RuntimeError("no follow-up delivery: generating it failed")
        self.locust.check()
        self.need_bare()
        a = self.args
        settle = 3.0 if a.quick else 10.0  # after every user started, before the import
        tail = 3.0 if a.quick else 10.0  # after the server serves the new release, before locust stops
        box: dict[str, Any] = {}

        with our_server(self.url, self.work / f"mixed-{self.name}.log") as (base, pid):
            before = served_snapshot(base)

            def import_while_running(running: Running) -> None:
                if not running.spawned(timeout=300 + a.users / a.spawn_rate):
                    raise RuntimeError("locust did not start its users")
                time.sleep(settle)
                say(f"{self.name}: importing the follow-up under load ...")
                box["rss_before"] = tree_rss(pid)
                box["import_epoch"] = time.time()
                wall, rss, code, out = timed([*CLI, "import", "fest", str(self.followup), "--db", self.url])
                box.update(wall=wall, rss=rss, code=code, out=out[-3000:])
                say(f"{self.name}: follow-up imported under load in {wall:.1f} s (exit {code})")
                done, deadline = time.monotonic(), time.monotonic() + 60
                while code == 0 and time.monotonic() < deadline:
                    if served_snapshot(base) != before:
                        box["pickup"] = time.monotonic() - done
                        box["switch_epoch"] = time.time()
                        break
                    time.sleep(0.1)
                time.sleep(tail)
                box["rss_after"] = tree_rss(pid)  # two snapshots' indexes alive, or the new one's alone

            mixed = self.locust.run(base, pid, 60 * 60, during=import_while_running)
        if box.get("code") != 0:
            raise RuntimeError(f"the follow-up import failed (exit {box.get('code')}):\n{box.get('out', '')}")
        mixed.import_seconds, mixed.import_rss, mixed.import_exit = box["wall"], box["rss"], box["code"]
        mixed.pickup_seconds = box.get("pickup")
        for name, error, n in mixed.failures:
            if EXPECTED_DURING_IMPORT in error:
                mixed.expected_by[name] = mixed.expected_by.get(name, 0) + n
        # the same run without an import: as long, counted from locust's start (it samples first)
        with our_server(self.url, self.work / f"mixed-base-{self.name}.log") as (base, pid):
            baseline = self.locust.run(base, pid, mixed.lead + mixed.total_span)

        self.locust_rows("mixed", f"locust {baseline.total_span:.0f} s, no import", baseline, kinds=False)
        self.locust_rows(
            "mixed", f"locust {mixed.total_span:.0f} s, the full follow-up imported in it", mixed, kinds=False
        )
        ratio = mixed.total.p99 / baseline.total.p99 if baseline.total.p99 else float("inf")
        read_ratio = mixed.reads.p99 / baseline.reads.p99 if baseline.reads.p99 else float("inf")
        pickup = f"{mixed.pickup_seconds:.1f} s" if mixed.pickup_seconds is not None else "not seen"
        self.rows.append(
            Row(
                "mixed",
                "p99 with the import ÷ p99 without",
                vs_bare=False,
                notes=f"all requests {ratio:.2f} ×, reads {read_ratio:.2f} ×; the import under load took "
                f"{mixed.import_seconds:.1f} s (peak RSS {mixed.import_rss:.0f} MiB); the server served the "
                f"new release {pickup} after it ended; the server's RSS {box['rss_before']:.0f} MiB before "
                f"the import, {box['rss_after']:.0f} MiB {tail:g} s after the switch",
                target=f"no failed request, p99 ≤ {MIXED_P99_FACTOR:g} ×",
                met=ratio <= MIXED_P99_FACTOR and mixed.failed == 0 and baseline.failed == 0,
            )
        )
        windows = self.window_rows(mixed, baseline, box)
        if mixed.failed or baseline.failed:
            self.fail(f"{mixed.failed} requests failed with the import, {baseline.failed} without")
        if mixed.pickup_seconds is None:
            self.fail("the server did not serve the new release within 60 s of the import")
        return {
            "with_import": mixed.raw(),
            "without": baseline.raw(),
            "p99_ratio": ratio,
            "reads_p99_ratio": read_ratio,
            "windows": windows,
        }

    def window_rows(self, mixed: LocustRun, baseline: LocustRun, box: dict[str, Any]) -> dict[str, Any]:
        """p99 in the window from the import's start to WINDOW_AFTER s after the server served the new
        release, against the same seconds (counted from the first request) of the run without it:
        not diluted over the whole run. Needs the locustfile's --grunndata-times."""
        if not mixed.times or "switch_epoch" not in box:
            return {}
        start = box["import_epoch"] - mixed.first_epoch
        end = box["switch_epoch"] + WINDOW_AFTER - mixed.first_epoch
        found: dict[str, Any] = {"from": start, "to": end}
        notes = []
        for label, names in (("all", None), ("read", {"read"}), ("varenr", {"varenr"})):
            n_with, p99_with = mixed.window(start, end, names)
            n_without, p99_without = baseline.window(start, end, names)
            ratio = p99_with / p99_without if p99_without else float("inf")
            found[label] = {"with": [n_with, p99_with], "without": [n_without, p99_without], "ratio": ratio}
            notes.append(
                f"{label} {p99_with:.0f} ms ({n_with:,} requests) ÷ {p99_without:.0f} ms ({n_without:,}) = {ratio:.2f} ×"
            )
        worst = max(found[label]["ratio"] for label in ("all", "read", "varenr"))
        self.rows.append(
            Row(
                "mixed",
                f"window p99, {start:.0f}-{end:.0f} s: import start to {WINDOW_AFTER:g} s after the switch",
                vs_bare=False,
                notes="; ".join(notes),
                target=f"p99 ≤ {WINDOW_P99_FACTOR:g} × the same window without",
                met=worst <= WINDOW_P99_FACTOR,
            )
        )
        return found

    # -- the table --

    def table(self, header: list[str]) -> str:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [f"\n## Suite, {self.name}, {stamp}\n", *header, f"Store: {self.version}.", *self.notes]
        if self.bare:
            lines.append(
                f"× bare: a request rate divided by {self.bare_note} in the same run ({self.bare:,.0f} req/s)."
            )
        took = ", ".join(f"{name} {r['seconds'] / 60:.1f} min" for name, r in self.steps.items())
        lines += [
            f"Steps took: {took}.\n",
            "| step | what | rate | × bare | p50 | p99 | failed | notes | target |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            rate = f"{r.rate:,.0f} {r.unit}" if r.rate is not None else ""
            ratio = times(r.rate / self.bare) if r.rate is not None and r.vs_bare and self.bare else ""
            target = r.target + (f": **{'met' if r.met else 'missed'}**" if r.met is not None else "")
            lines.append(
                f"| {r.step} | {r.what} | {rate} | {ratio} | {ms(r.p50, r.coarse)} | {ms(r.p99, r.coarse)} | "
                f"{'' if r.failed is None else r.failed} | {r.notes} | {target} |"
            )
        lines.append("")
        lines += self.target_lines()
        failed = [(n, s) for n, s in self.steps.items() if not s["ok"]]
        if failed:
            lines.append("\nFailed steps:\n")
            lines += [f"- {n}: {s['error'].splitlines()[0][:300]}" for n, s in failed]
        return "\n".join(lines) + "\n"

    def target_lines(self) -> list[str]:
        a = self.args
        out = ["Targets (issue 7):\n"]
        load = next((r for r in self.rows if r.step == "locust" and "all requests" in r.what), None)
        reads = next((r for r in self.rows if r.step == "locust" and "reads" in r.what), None)
        scaled = (
            ""
            if (a.users >= TARGET_USERS and a.minutes >= TARGET_MINUTES)
            else (
                f" (measured at {a.users} users for {a.minutes:g} min, not the target's 100 users for 10 min)"
            )
        )
        if load is None or reads is None:
            out.append(
                f"- zero failed requests in a {TARGET_MINUTES}-minute {TARGET_USERS}-user locust run: not measured"
            )
            out.append(f"- reads p99 ≤ {READ_P99_MS:g} ms at that load: not measured")
        else:
            out.append(
                f"- zero failed requests in a {TARGET_MINUTES}-minute {TARGET_USERS}-user locust run{scaled}: "
                f"{load.failed} failed: **{'met' if load.met else 'missed'}**"
            )
            out.append(
                f"- reads p99 ≤ {READ_P99_MS:g} ms at that load{scaled}: {ms(reads.p99, True)}: "
                f"**{'met' if reads.met else 'missed'}**"
            )
        mixed = next((r for r in self.rows if r.step == "mixed" and r.met is not None), None)
        if mixed is None:
            out.append("- mixed run: no request failed, p99 at most doubles: not measured")
        else:
            out.append(
                f"- mixed run: no request failed, p99 at most doubles: {mixed.notes.split(';')[0]}: **{'met' if mixed.met else 'missed'}**"
            )
        return out

    def raw(self) -> dict[str, Any]:
        return {
            "store": self.version,
            "bare_read_rps": self.bare,
            "rows": [asdict(r) for r in self.rows],
            "steps": self.steps,
            "notes": self.notes,
        }


def ms(value: float | None, coarse: bool = False) -> str:
    if value is None:
        return ""
    if coarse:  # locust rounds below 100 ms to whole milliseconds: 0 is under half a millisecond
        return "< 1 ms" if value < 0.5 else f"{value:,.0f} ms"
    return f"{value:.2f} ms" if value < 10 else f"{value:,.0f} ms"


def times(ratio: float) -> str:
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"


# -- main -----------------------------------------------------------------------------------------


def options() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="scale 0.1, 20 users for 1 minute, 1 run of 2 s per point"
    )
    ap.add_argument("--only", nargs="+", choices=STEPS, help="these steps only (default: all)")
    ap.add_argument("--stores", nargs="+", choices=STORES, default=list(STORES))
    ap.add_argument("--delivery", type=Path, help="a full FEST delivery to use instead of generating one")
    ap.add_argument("--scale", type=float, help="size of the generated delivery (default 1.0, --quick 0.1)")
    ap.add_argument(
        "--pg", default="postgresql://postgres@127.0.0.1:5432/postgres", help="PostgreSQL admin URL"
    )
    ap.add_argument("--workers", type=int, default=1, help="uvicorn workers of every server (default 1)")
    ap.add_argument("--users", type=int, help=f"locust users (default {TARGET_USERS}, --quick 20)")
    ap.add_argument(
        "--minutes", type=float, help=f"length of the locust run (default {TARGET_MINUTES}, --quick 1)"
    )
    ap.add_argument("--spawn-rate", type=float, help="users started per second (default users / 10)")
    ap.add_argument("--capacity-minutes", type=float, help="the run with no pauses (default 2, --quick 0.5)")
    ap.add_argument("--locustfile", default=str(HERE / "locustfile.py"))
    ap.add_argument("--locust-args", help='more arguments for locust, e.g. "--grunndata-wait 0"')
    ap.add_argument("--reads", default="^read$", help="locust request names that are reads (a regex)")
    ap.add_argument(
        "--cold",
        action="store_true",
        help="start locust on a cold server (default: the M30 file and terminology indexes made first)",
    )
    ap.add_argument(
        "--token", help="GRUNNDATA_LOCUST_TOKEN for locust (default: none; our server has no JWKS)"
    )
    ap.add_argument("--runs", type=int, help="interleaved runs per api point; medians (default 3, --quick 1)")
    ap.add_argument(
        "--repeat", type=int, default=1, help="imports and exports per store; medians (default 1)"
    )
    ap.add_argument("--duration", type=float, help="measured seconds per api point (default 10, --quick 2)")
    ap.add_argument("--warmup", type=float, help="seconds before each api point (default 2, --quick 0.5)")
    ap.add_argument("--clients", type=int, nargs="+", default=[16], help="api clients (default 16)")
    ap.add_argument("--targets", type=int, default=2000, help="paths drawn per api scenario")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="keep logs, locust's CSV files and the stores in this folder")
    ap.add_argument("--write", action="store_true", help="append the tables to benchmarks/RESULTS.md")
    ap.add_argument("--json", type=Path, help="write every raw number to this file")
    a = ap.parse_args()
    a.scale = a.scale or (0.1 if a.quick else 1.0)
    a.users = a.users or (20 if a.quick else TARGET_USERS)
    a.minutes = a.minutes or (1.0 if a.quick else float(TARGET_MINUTES))
    a.spawn_rate = a.spawn_rate or max(1.0, a.users / 10)
    a.capacity_minutes = a.capacity_minutes or (0.5 if a.quick else 2.0)
    a.runs = a.runs or (1 if a.quick else 3)
    a.duration = a.duration or (2.0 if a.quick else 10.0)
    a.warmup = a.warmup or (0.5 if a.quick else 2.0)
    a.steps = [s for s in STEPS if a.only is None or s in a.only]
    return a


def shown_arguments(argv: list[str]) -> list[str]:
    """The command line without what does not change a measurement (where files go)."""
    shown, skip = [], False
    for x in argv:
        if skip:
            skip = False
        elif x in ("--keep", "--json"):
            skip = True
        elif x != "--write" and not x.startswith(("--keep=", "--json=")):
            shown.append(x)
    return shown


def main() -> int:
    a = options()
    # every server of the suite (ours and the bare app, in api_bench too) with --workers K
    api_bench.UVICORN = api_bench.UVICORN.replace("--workers 1", f"--workers {a.workers}")
    started = time.perf_counter()
    command = "python benchmarks/suite.py" + "".join(
        f" {shlex.quote(x)}" for x in shown_arguments(sys.argv[1:])
    )
    raw: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "command": command,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "stores": {},
    }
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="grunndata-suite-") as tmp:
        work = a.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        # the servers' temporary files (the M30 file each writes) go with the rest, not into /tmp
        (work / "tmp").mkdir(exist_ok=True)
        os.environ["TMPDIR"] = str(work / "tmp")
        locust = Locust(a, work)
        header = [
            f"Machine: {machine()}; load generators, servers and store on the same machine "
            f"(load average {os.getloadavg()[0]:.2f} when the suite started)."
        ]

        # the delivery, its follow-up and the parse floor: once for every store
        delivery = a.delivery
        if delivery is None:
            delivery = work / "fest251.xml"
            say(f"generating a delivery, scale {a.scale} ...")
            wall, _, code, out = timed([*CLI, "generate", "fest", str(delivery), "--scale", str(a.scale)])
            if code != 0:
                print(out, file=sys.stderr)
                print("generating the delivery failed: nothing to measure", file=sys.stderr)
                return 1
            header.append(
                f"Delivery: generated, scale {a.scale}, {delivery.stat().st_size / 1e6:.0f} MB XML ({wall:.0f} s to generate)."
            )
        else:
            header.append(f"Delivery: {delivery.name}, {delivery.stat().st_size / 1e6:.0f} MB.")
        followup = None
        if "mixed" in a.steps:
            followup = work / "followup.xml"
            wall, _, code, out = timed([*CLI, "generate", "followup", str(delivery), str(followup)])
            if code != 0:
                problems.append(f"generating the follow-up failed: {out.strip()[-500:]}")
                followup = None
            else:
                header.append(
                    f"Follow-up (mixed run): `grunndata generate followup`, {out.strip().splitlines()[-1]}"
                )
        floor = None
        if "import" in a.steps:
            floor = parse_floor(xml_of(delivery, work))
            header.append(f"Bare lxml streaming parse of the delivery: {floor:.1f} s (the import's floor).")
        header.append(
            f"Servers: uvicorn {api_bench.UVICORN}; ours `api_bench:create_ours` (grunndata.server.create_app), "
            "the bare app `benchmarks/bare_app.py` (a dict of the same bytes)."
        )
        if "api" in a.steps:
            header.append(
                f"api: `benchmarks/loadgen.py`, closed loop, {', '.join(map(str, a.clients))} clients, medians of "
                f"{a.runs} interleaved runs of {a.duration:g} s after {a.warmup:g} s (api_bench.run_all)."
            )
        if {"locust", "capacity", "mixed"} & set(a.steps):
            with suppress(Exception):
                header.append(
                    f"locust: {locust.version()}, `{Path(a.locustfile).name}` as it is (its weights and pauses: an "
                    f"offered load, not the limit), {a.users} users started at {a.spawn_rate:g}/s, "
                    f"{a.minutes:g} min{', ' + a.locust_args if a.locust_args else ''}; each run on a fresh server, "
                    + (
                        "cold."
                        if a.cold
                        else "warmed first (the M30 file written and the terminology indexes built, "
                        "what a server does once per release)."
                    )
                    + " Percentiles from locust's histograms (1 ms steps below 100 ms)."
                )
        header.append(f"Command: `{command}`")

        tables = []
        for name in a.stores:
            store = StoreRun(name, a, work, delivery, followup, floor, locust)
            store.run(a.steps)
            table = store.table(header)
            print(table, flush=True)
            tables.append(table)
            raw["stores"][name] = store.raw()
            for step, record in store.steps.items():
                if not record["ok"]:
                    problems.append(f"{name} {step}: {record['error'].splitlines()[0][:300]}")
        raw["seconds"] = time.perf_counter() - started
        raw["problems"] = problems

    if a.write:
        if not RESULTS.exists():
            RESULTS.write_text("# Benchmark results\n\nNewest last. Each section says how it was measured.\n")
        with RESULTS.open("a") as f:
            f.writelines(tables)
    if a.json:
        a.json.write_text(json.dumps(raw, indent=1, default=str))
    say(f"the suite took {raw['seconds'] / 60:.1f} min")
    if problems:
        print("\nFAILED:\n" + "\n".join(f"- {p}" for p in problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
