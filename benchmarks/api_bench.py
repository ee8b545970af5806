"""API benchmark: the FHIR server under load, next to a bare ASGI app serving the same bytes.

    python benchmarks/api_bench.py [--runs 3] [--delivery PATH | --store URL] [--db POSTGRES_URL] [--write]
    python benchmarks/api_bench.py --quick       # scale 0.1, short runs: for trying things out

One command: generate a full-size delivery (or take --delivery), import it into a fresh SQLite
store (and, with --db, into a fresh database on that PostgreSQL server), start our server and
bare_app.py under the same uvicorn settings (uvloop, httptools, 1 worker, no access log), pick
targets from the store, and drive each scenario with loadgen.py at 1, 16 and 64 clients.

Runs are interleaved (every scenario once per run, ours next to bare), so both see the same
machine; figures are medians over --runs. The bare app is the limit of this stack for a read
(a dict lookup, the same bytes and headers); the raw constant server is the limit of the load
generator. Prints a table; --write appends it, dated, to benchmarks/RESULTS.md. The full run takes
15 to 25 minutes (longer while searches are slow: a slow point runs until it has 100 answers).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
sys.path.insert(0, str(HERE))

from import_bench import fresh_pg, machine, run_timed  # noqa: E402
from loadgen import Result, free_port, measure, wait_for_port  # noqa: E402

PPD, MPD = "PackagedProductDefinition", "MedicinalProductDefinition"
VARENR = "http://dmp.no/fhir/NamingSystem/fest-varenummer"
ATC = "http://www.whocc.no/atc"
GTIN = "https://www.gs1.org/gtin"
UVICORN = "--loop uvloop --http httptools --workers 1 --no-access-log --log-level warning"


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    label: str
    server: str  # "ours", "bare" or "raw"
    targets: str  # which list of paths it sends
    headers: tuple[str, ...] = ()  # header lines every request adds


SCENARIOS = (
    Scenario("raw", "raw constant server (the load generator's limit)", "raw", "tiny"),
    Scenario("tiny", "bare app, `{}`", "bare", "tiny"),
    Scenario("read-bare", "read by id, bare app", "bare", "read"),
    Scenario("read", "read by id", "ours", "read"),
    # the same reads, compressed (server/conventions.py): what gzip costs the server per answer
    Scenario("read-gzip", "read by id, `Accept-Encoding: gzip`", "ours", "read", ("Accept-Encoding: gzip",)),
    Scenario("varenr", "search by varenr", "ours", "varenr"),
    Scenario("name", "name `:contains`", "ours", "name"),
    Scenario("prefix", "name prefix (`name=`)", "ours", "prefix"),
    Scenario("atc", "ATC search", "ours", "atc"),
    # the same first-time searches through the route and its SQL, the in-memory search index off
    # (GRUNNDATA_SEARCH_INDEX=0): what they cost before it, in the same run
    Scenario("varenr-route", "search by varenr, no search index", "route", "varenr"),
    Scenario("name-route", "name `:contains`, no search index", "route", "name"),
    Scenario("prefix-route", "name prefix, no search index", "route", "prefix"),
    Scenario("atc-route", "ATC search, no search index", "route", "atc"),
    Scenario("barcode", "barcode search (a GTIN, no system, at any packaging level)", "ours", "barcode"),
    Scenario("everything", "`$everything`", "ours", "everything"),
    # first-time searches the in-memory index leaves to the route: a varenr with its product, an
    # ATC code's products with their packages (with GRUNNDATA_SEARCH_CACHE_MB=0, each is new work)
    Scenario("include", "varenr `_include=...:package-for`", "ours", "include"),
    Scenario("revinclude", "ATC `_revinclude=PackagedProductDefinition:package-for`", "ours", "revinclude"),
    Scenario("translate-id", "`$translate` varenr to GTIN", "ours", "translate-id"),
    Scenario("translate-code", "`$translate` FEST code to EDQM/UCUM", "ours", "translate-code"),
)
TARGET_CLIENTS = 16
TARGETS: dict[str, float | dict[str, float]] = {  # scenario -> p99 limit in ms at TARGET_CLIENTS
    # (read also needs >= 0.5 of the bare rate; the searches of SEARCH_RATE their rate on SQLite)
    "read": 10.0,
    "varenr": {"sqlite": 15.0, "postgresql": 25.0},
    "atc": {"sqlite": 15.0, "postgresql": 25.0},
    "name": 50.0,
    "prefix": 50.0,
    "translate-id": 5.0,
    "translate-code": 5.0,
}
MIN_READ_RATIO = 0.5
SEARCH_RATE = {"varenr": (2000.0, 0.1), "atc": (2000.0, 0.1)}  # first-time, SQLite: req/s and x bare read
RATIO_SHOWN = (
    "read",
    "varenr",
    "name",
    "prefix",
    "atc",
    "varenr-route",
    "name-route",
    "prefix-route",
    "atc-route",
    "everything",
    "include",
    "revinclude",
)


def create_ours() -> Any:
    """Our app over GRUNNDATA_DB: the factory uvicorn runs (`api_bench:create_ours`)."""
    from grunndata.server import create_app
    from grunndata.settings import Settings
    from grunndata.store import connect

    settings = Settings.load()  # the edge: GRUNNDATA_DB, GRUNNDATA_SEARCH_CACHE_MB, ...
    return create_app(connect(settings.db, create=False), settings=settings)


# -- targets ------------------------------------------------------------------------------------


def pick_targets(db: str, n: int, seed: int) -> dict[str, list[str]]:
    """Paths per target kind, drawn (seeded) from what the store serves now."""
    from sqlalchemy import select

    from grunndata.store import connect, current_snapshot
    from grunndata.store.models import ReleaseEntry, Resource, ResourceIndex

    r, m, x = Resource.__table__, ReleaseEntry.__table__, ResourceIndex.__table__  # type: ignore[attr-defined]
    engine = connect(db, create=False)
    rng = random.Random(seed)
    with engine.connect() as conn:
        served = select(m.c.resource_pk).where(m.c.release_id.in_(current_snapshot(conn).releases or (-1,)))

        def ids(rtype: str) -> list[str]:
            rows = conn.execute(select(r.c.id).where(r.c.type == rtype, r.c.pk.in_(served)))
            return sorted(row[0] for row in rows)

        def indexed(param: str, system: str | None, column: Any) -> list[str]:
            query = select(column).where(x.c.param == param, x.c.resource_pk.in_(served)).distinct()
            if system is not None:
                query = query.where(x.c.system == system)
            return sorted(row[0] for row in conn.execute(query) if row[0])

        ppd_ids, mpd_ids = ids(PPD), ids(MPD)
        varenr = indexed(f"{PPD}.identifier", VARENR, x.c.value)
        names = indexed(f"{MPD}.name", None, x.c.exact) or indexed(f"{MPD}.name", None, x.c.value)
        atc = indexed(f"{MPD}.product-classification", ATC, x.c.value)
        gtins = indexed(f"{PPD}.barcode", GTIN, x.c.value)
    engine.dispose()

    def sample(values: list[str]) -> list[str]:
        return rng.sample(values, min(n, len(values)))

    def q(value: str) -> str:
        return quote(value, safe="")

    reads = sample(ppd_ids)
    return {
        "tiny": ["/tiny"],
        "read": [f"/fhir/{PPD}/{i}" for i in reads],
        "read-r4": [f"/fhir-r4/MedicinalProductPackaged/{i}" for i in reads],  # the same packages, as R4
        "read-xml": [f"/fhir/{PPD}/{i}?_format=xml" for i in reads],  # and as XML: R5, R4
        "read-r4-xml": [f"/fhir-r4/MedicinalProductPackaged/{i}?_format=xml" for i in reads],
        "varenr": [f"/fhir/{PPD}?identifier={q(VARENR + '|' + v)}" for v in sample(varenr)],
        "name": [f"/fhir/{MPD}?name:contains={q(f)}" for f in name_fragments(names, n, rng)],
        "prefix": [f"/fhir/{MPD}?name={q(f)}" for f in name_fragments(names, n, rng, prefix=True)],
        "atc": [f"/fhir/{MPD}?product-classification={q(ATC + '|' + c)}" for c in sample(atc)],
        "everything": [f"/fhir/{MPD}/{i}/$everything" for i in sample(mpd_ids)],
        "include": [
            f"/fhir/{PPD}?identifier={q(VARENR + '|' + v)}&_include={PPD}:package-for" for v in sample(varenr)
        ],
        "revinclude": [
            f"/fhir/{MPD}?product-classification={q(ATC + '|' + c)}&_revinclude={PPD}:package-for"
            for c in sample(atc)
        ],
        "barcode": [f"/fhir/{PPD}?barcode={q(g)}" for g in sample(gtins)],
        "translate-id": [
            f"/fhir/ConceptMap/$translate?system={q(VARENR)}&sourceCode={q(v)}&targetSystem={q(GTIN)}"
            for v in sample(varenr)
        ],
        "translate-code": [
            f"/fhir/ConceptMap/$translate?system={q(system)}&sourceCode={q(code)}"
            for system, code in map_sources()
        ],
    }


def map_sources() -> list[tuple[str, str]]:
    """Every (system, code) the reviewed FEST -> EDQM/UCUM maps translate from."""
    from grunndata.terminology import concept_map_files

    return [(g["source"], e["code"]) for m in concept_map_files() for g in m["group"] for e in g["element"]]


def name_fragments(names: list[str], n: int, rng: random.Random, prefix: bool = False) -> list[str]:
    """What someone types into a search box: 4 to 6 letters from inside a word of a product name
    (`prefix`: from the start of the name)."""
    words = sorted({w for name in names for w in name.split() if w.isalpha() and len(w) >= 4})
    if prefix:
        words = sorted({name.split()[0] for name in names if name.split() and name.split()[0].isalpha()})
        words = [w for w in words if len(w) >= 4]
    fragments = []
    for _ in range(min(n, len(words) * 3)):
        word = rng.choice(words)
        size = rng.randint(4, min(6, len(word)))
        start = 0 if prefix else rng.randint(0, len(word) - size)
        fragments.append(word[start : start + size].lower())
    return fragments


# -- servers ------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system time of the server process (all its threads) so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(name: str, command: Callable[[int], list[str]], env: dict[str, str], log: Path) -> Server:
    """Run `command(port)` on a free port, until it accepts connections."""
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command(port), env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=HERE
        )
    try:
        wait_for_port(port, timeout=300, proc=proc)
    except SystemExit:
        raise SystemExit(f"{name} did not start; its log:\n{log.read_text()[-3000:]}") from None
    return Server(name, port, proc)


def uvicorn(factory: str, db: str) -> tuple[Callable[[int], list[str]], dict[str, str]]:
    """The same uvicorn settings for ours and the bare app; the store comes by GRUNNDATA_DB."""
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--app-dir",
        str(HERE),
        "--host",
        "127.0.0.1",
    ]
    return (lambda port: [*cmd, *shlex.split(UVICORN), "--port", str(port)]), {"GRUNNDATA_DB": db}


@contextmanager
def servers(stores: dict[str, str], log: Path, route: bool = False) -> Iterator[dict[str, Server]]:
    """Ours on every store, the bare app on the first, and the raw constant server; with `route`,
    ours without the search index too."""
    running: dict[str, Server] = {}
    try:
        raw = [sys.executable, str(HERE / "loadgen.py"), "--serve-constant"]
        running["raw"] = start("raw", lambda port: [*raw, str(port)], {}, log)
        first = next(iter(stores.values()))
        running["bare"] = start("bare", *uvicorn("bare_app:create_app", first), log)
        for store, db in stores.items():
            running[f"ours-{store}"] = start(f"ours on {store}", *uvicorn("api_bench:create_ours", db), log)
            if route:
                command, env = uvicorn("api_bench:create_ours", db)
                env["GRUNNDATA_SEARCH_INDEX"] = "0"
                running[f"route-{store}"] = start(f"ours on {store}, no search index", command, env, log)
        yield running
    finally:
        for server in running.values():
            server.proc.terminate()
        for server in running.values():
            try:
                server.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait()


def index_ready(server: Server, search: str, store: str, timeout: float = 300.0) -> str:
    """Wait until the server's search index answers a search (its metric moves); a sentence."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        get(server.url + search)
        for line in get(server.url + "/metrics")[2].decode().splitlines():
            if (
                line.startswith('grunndata_search_index_answers_total{result="index"}')
                and float(line.split()[-1]) > 0
            ):
                return f"search index on {store}: answering {time.perf_counter() - started:.1f} s after the first probe"
        time.sleep(0.5)
    return f"search index on {store}: not answering after {timeout:.0f} s"


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    """(status, the headers a read is compared on, body) of one GET."""
    request = urllib.request.Request(url, headers={"Accept": "application/fhir+json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, headers, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, e.headers, e.read()
    return status, {h: headers.get(h, "") for h in ("content-type", "etag", "last-modified")}, body


def check(server: Server, paths: list[str], probe: int = 20) -> tuple[int, float, str]:
    """Probe the first paths once: (how many answered 2xx, mean bundle entries, first failure)."""
    ok, entries, failure = 0, [], ""
    for path in paths[:probe]:
        status, _, body = get(server.url + path)
        if 200 <= status < 300:
            ok += 1
            if body.startswith(b'{"resourceType":"Bundle"'):
                entries.append(len(json.loads(body).get("entry", [])))
        elif not failure:
            failure = f"{status} for {path}: {body[:200]!r}"
    return ok, statistics.mean(entries) if entries else float("nan"), failure


def warm(server: Server, paths: list[str]) -> float:
    """Request every path once (8 at a time), so that a read is measured in the steady state of the
    server's read cache rather than while it fills; seconds it took."""
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda path: get(server.url + path), paths))
    return time.perf_counter() - started


def same_bytes(ours: Server, bare: Server, paths: list[str], probe: int = 50) -> tuple[int, int]:
    """How many of the first reads are identical (status, body, content-type, ETag, Last-Modified)."""
    same = 0
    probed = paths[:probe]
    for path in probed:
        a, b = get(ours.url + path), get(bare.url + path)
        same += a == b
    return same, len(probed)


# -- measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    scenario: Scenario
    store: str  # "" for the bare app and the raw server
    clients: int
    runs: list[Result]
    server_cpu: list[float]  # server CPU seconds per wall second

    def median(self, field: Callable[[Result], float]) -> float:
        return statistics.median(field(r) for r in self.runs)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)


def measure_on(
    server: Server,
    paths: list[str],
    clients: int,
    duration: float,
    warmup: float,
    headers: tuple[str, ...] = (),
) -> tuple[Result, float]:
    cpu, wall = server.cpu_seconds(), time.perf_counter()
    result = measure(
        server.url, paths, concurrency=clients, duration=duration, warmup=warmup, headers=headers
    )
    return result, (server.cpu_seconds() - cpu) / (time.perf_counter() - wall)


def import_into(delivery: Path, db: str) -> float:
    wall, _, _ = run_timed(
        [sys.executable, "-m", "grunndata.cli", "import", "fest", str(delivery), "--db", db]
    )
    return wall


def served_counts(db: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from grunndata.store import connect, current_snapshot
    from grunndata.store.models import ReleaseEntry, Resource

    r, m = Resource.__table__, ReleaseEntry.__table__  # type: ignore[attr-defined]
    engine = connect(db, create=False)
    with engine.connect() as conn:
        releases = current_snapshot(conn).releases or (-1,)
        rows = conn.execute(
            select(r.c.type, func.count())
            .select_from(r.join(m, m.c.resource_pk == r.c.pk))
            .where(m.c.release_id.in_(releases), ~r.c.type.startswith("FEST."))
            .group_by(r.c.type)
        ).all()
    engine.dispose()
    return {t: n for t, n in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--delivery", type=Path, help="a FEST delivery to import instead of generating one")
    ap.add_argument("--store", help="an existing store URL to serve as it is (no generation, no import)")
    ap.add_argument("--db", help="also benchmark a fresh database on this PostgreSQL server (admin URL)")
    ap.add_argument("--scale", type=float, help="size of the generated delivery (default 1.0, --quick 0.1)")
    ap.add_argument("--runs", type=int, help="repeats; figures are medians (default 3, --quick 1)")
    ap.add_argument("--duration", type=float, help="measured seconds per point (default 10, --quick 2)")
    ap.add_argument(
        "--warmup", type=float, help="unmeasured seconds before each point (default 2, --quick 0.5)"
    )
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--targets", type=int, default=2000, help="paths drawn per scenario")
    ap.add_argument("--only", nargs="+", choices=[s.key for s in SCENARIOS], help="these scenarios only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="scale 0.1, 1 run of 2 s per point")
    ap.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args()
    quick = args.quick
    scale = args.scale or (0.1 if quick else 1.0)
    runs = args.runs or (1 if quick else 3)
    duration = args.duration or (2.0 if quick else 10.0)
    warmup = args.warmup or (0.5 if quick else 2.0)
    scenarios = [s for s in SCENARIOS if args.only is None or s.key in args.only]
    grunndata = [sys.executable, "-m", "grunndata.cli"]

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        drop_pg: Callable[[], None] = lambda: None  # noqa: E731
        notes: list[str] = []
        try:
            if args.store:
                stores = {"sqlite" if args.store.startswith("sqlite") else "postgresql": args.store}
                notes.append(f"Store: {args.store}, served as it was.")
            else:
                delivery = args.delivery
                if delivery is None:
                    delivery = work / "fest251.zip"
                    print(f"generating a delivery, scale {scale} ...", flush=True)
                    gen_wall, _, _ = run_timed(
                        [*grunndata, "generate", "fest", str(delivery), "--scale", str(scale)]
                    )
                    notes.append(
                        f"Delivery: generated, scale {scale}, {delivery.stat().st_size / 1e6:.0f} MB zip "
                        f"({gen_wall:.0f} s to generate)."
                    )
                else:
                    notes.append(f"Delivery: {delivery.name}, {delivery.stat().st_size / 1e6:.0f} MB.")
                stores = {"sqlite": f"sqlite:///{work / 'api.db'}"}
                if args.db:
                    url, drop_pg, pg_version = fresh_pg(args.db)
                    stores["postgresql"] = url
                    notes.append(f"PostgreSQL {pg_version} on the same machine.")
                for store, db in stores.items():
                    print(f"importing into {store} ...", flush=True)
                    notes.append(f"Import into {store}: {import_into(delivery, db):.1f} s.")
            first_db = next(iter(stores.values()))
            counts = served_counts(first_db)
            notes.append(
                "Served: "
                + (", ".join(f"{t} {n:,}" for t, n in sorted(counts.items())) or "no FHIR resources")
                + "."
            )
            targets = pick_targets(first_db, args.targets, args.seed)
            rows, skipped, checks = run_all(
                stores, targets, scenarios, args.clients, runs, duration, warmup, work / "servers.log"
            )
        finally:
            drop_pg()

    command = "python benchmarks/api_bench.py" + "".join(f" {a}" for a in sys.argv[1:] if a != "--write")
    section = report(rows, skipped, checks, notes, runs, duration, warmup, command)
    print(section)
    if args.write:
        if not RESULTS.exists():
            RESULTS.write_text("# Benchmark results\n\nNewest last. Each section says how it was measured.\n")
        with RESULTS.open("a") as f:
            f.write(section)


def run_all(
    stores: dict[str, str],
    targets: dict[str, list[str]],
    scenarios: list[Scenario],
    clients: list[int],
    runs: int,
    duration: float,
    warmup: float,
    log: Path,
) -> tuple[list[Row], list[str], list[str]]:
    """Start the servers, check every scenario once, then measure them all, interleaved, `runs` times."""
    skipped: list[str] = []
    checks: list[str] = []
    with servers(stores, log, any(s.server == "route" for s in scenarios)) as running:
        plan: list[tuple[Scenario, str, Server]] = []
        if any(s.targets in ("varenr", "name", "prefix", "atc") for s in scenarios):
            for store in stores:  # built at start (server/warm.py): measured once it answers
                line = index_ready(running[f"ours-{store}"], targets["varenr"][0], store)
                checks.append(line)
                print(line, flush=True)
        for s in scenarios:
            paths = targets[s.targets]
            if not paths:
                skipped.append(f"{s.label}: no targets in the store, skipped")
                continue
            on = (
                [("", running[s.server])]
                if s.server not in ("ours", "route")
                else [(store, running[f"{s.server}-{store}"]) for store in stores]
            )
            for store, server in on:
                if s.server != "raw":
                    ok, entries, failure = check(server, paths)
                    probed = min(20, len(paths))
                    where = f" on {store}" if store else ""
                    line = f"{s.label}{where}: {len(paths):,} targets, {ok}/{probed} probes answered 2xx"
                    if entries == entries:  # not NaN: searches, answered by bundles
                        line += f", {entries:.1f} entries per bundle"
                    if failure:
                        line += f"; first failure: {failure}"
                    if s.key == "read":
                        line += f"; every target read once before measuring ({warm(server, paths):.1f} s)"
                    checks.append(line)
                    print(line, flush=True)
                plan.append((s, store, server))
        if "read" in [s.key for s, _, _ in plan] and "read-bare" in [s.key for s, _, _ in plan]:
            store = next(iter(stores))  # the one the bare app loaded its bytes from
            same, probed = same_bytes(running[f"ours-{store}"], running["bare"], targets["read"])
            checks.append(
                f"read by id on {store}: {same}/{probed} answers identical to the bare app's "
                "(status, body, content-type, ETag, Last-Modified)"
            )
            print(checks[-1], flush=True)

        results: dict[tuple[str, str, int], tuple[list[Result], list[float]]] = {}
        for run in range(runs):
            for c in clients:
                for s, store, server in plan:
                    result, cpu = measure_on(server, targets[s.targets], c, duration, warmup, s.headers)
                    got = results.setdefault((s.key, store, c), ([], []))
                    got[0].append(result)
                    got[1].append(cpu)
                    print(
                        f"run {run + 1}/{runs} {s.key:<10} {store:<10} {result.line()} server cpu {cpu:.0%}",
                        flush=True,
                    )
    by_key = {s.key: s for s in SCENARIOS}
    order = [s.key for s in SCENARIOS]
    store_order = ["", *stores]
    rows = [
        Row(by_key[key], store, c, res, cpu)
        for (key, store, c), (res, cpu) in sorted(
            results.items(), key=lambda kv: (order.index(kv[0][0]), store_order.index(kv[0][1]), kv[0][2])
        )
    ]
    return rows, skipped, checks


def report(
    rows: list[Row],
    skipped: list[str],
    checks: list[str],
    notes: list[str],
    runs: int,
    duration: float,
    warmup: float,
    command: str,
) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    m = statistics.median
    bare_rate = {r.clients: r.median(lambda x: x.rps) for r in rows if r.scenario.key == "read-bare"}
    lines = [
        f"\n## API, {stamp}\n",
        f"Machine: {machine()}; load generator, servers and store on the same machine.",
        *notes,
        f"Servers: uvicorn {UVICORN}; ours is `grunndata.server.create_app`, the bare app "
        "`benchmarks/bare_app.py` (a dict of the same bytes). Load: `benchmarks/loadgen.py`, closed loop, "
        "keep-alive, one request in flight per client.",
        f"Medians of {runs} interleaved runs of {duration:g} s (after {warmup:g} s warm-up) per point; a slow "
        f"point runs on until 100 requests sent in it are answered, up to {5 * duration:g} s. p50/p99 are "
        "latencies of the requests sent in the window, from send to the last byte of the answer. CPU is "
        "seconds per wall second (100% = one core busy; the server can pass it in SQLite's threads).",
        f"Command: `{command}`\n",
        "| scenario | store | clients | req/s | p50 | p99 | x bare read | errors | bytes/answer | server CPU "
        "| load generator CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rps = r.median(lambda x: x.rps)
        shown = (
            f"{rps / bare_rate[r.clients]:.2f}"
            if r.scenario.key in RATIO_SHOWN and r.clients in bare_rate
            else ""
        )
        sample = r.median(lambda x: x.requests)
        few = f" (n={sample:.0f} in {r.median(lambda x: x.seconds):.0f} s)" if sample < 100 else ""
        lines.append(
            f"| {r.scenario.label} | {r.store or '-'} | {r.clients} | {rps:,.0f} | {r.median(lambda x: x.p50):.2f} ms | "
            f"{r.median(lambda x: x.p99):.2f} ms{few} | {shown} | {r.errors} | "
            f"{r.median(lambda x: x.mean_bytes):,.0f} | {m(r.server_cpu):.0%} | {r.median(lambda x: x.cpu):.0%} |"
        )
    lines.append("")
    lines += [f"- {line}" for line in checks + skipped]
    lines.append(f"\nTargets (at {TARGET_CLIENTS} clients):\n")
    for key, limit in TARGETS.items():
        for r in rows:
            if r.scenario.key != key or r.clients != TARGET_CLIENTS:
                continue
            p99 = r.median(lambda x: x.p99)
            bound = limit if isinstance(limit, float) else limit.get(r.store, min(limit.values()))
            verdict = p99 <= bound and r.errors == 0 and r.median(lambda x: x.requests) > 0
            what = f"p99 {p99:.2f} ms <= {bound:g} ms"
            if key in SEARCH_RATE and r.store == "sqlite":
                least, share = SEARCH_RATE[key]
                rps = r.median(lambda x: x.rps)
                ratio = rps / bare_rate[TARGET_CLIENTS] if TARGET_CLIENTS in bare_rate else 0.0
                verdict = verdict and rps >= least and ratio >= share
                what = (
                    f"{rps:,.0f} req/s >= {least:,.0f}, {ratio:.2f} x the bare app's rate >= {share}, " + what
                )
            if key == "read":
                ratio = (
                    r.median(lambda x: x.rps) / bare_rate[TARGET_CLIENTS]
                    if TARGET_CLIENTS in bare_rate
                    else 0.0
                )
                verdict = verdict and ratio >= MIN_READ_RATIO
                what = f"{ratio:.2f} x the bare app's rate >= {MIN_READ_RATIO}, " + what
            if r.errors:
                what += f", {r.errors} errors"
            lines.append(f"- {r.scenario.label} on {r.store}: {what}: **{'PASS' if verdict else 'FAIL'}**")
        if not any(r.scenario.key == key and r.clients == TARGET_CLIENTS for r in rows):
            label = next(s.label for s in SCENARIOS if s.key == key)
            lines.append(f"- {label}: not measured at {TARGET_CLIENTS} clients: **FAIL**")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
