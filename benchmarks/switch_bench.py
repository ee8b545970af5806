"""Reads and varenr searches while the server prepares a snapshot: the release switch's in-process
cost alone, paced at several shares, interleaved with quiet runs (issue 23, item 4).

    python benchmarks/switch_bench.py --db sqlite:///full.db [--shares 1 0.5 0.25] [-c 8] [-d 8] [--rounds 3]

The server (our app under uvicorn, as api_bench runs it) runs in this process; beside it a thread
builds the served snapshot's indexes (each Served.preparers builder: the terminology indexes and the
search index) over and over, at GRUNNDATA_PREPARE_SHARE = each share, for a whole measured window,
while two load generators (benchmarks/loadgen.py, processes of their own) read packages by id and
search them by varenr. A quiet window (no build) comes before each share in every round, so a
change in the machine's load shows in both. With --swaps, the thread makes real switches instead,
to the release before the served one and back (prepared, swapped in, the read cache carried over,
the old indexes dropped), two seconds apart; --no-carry adds the same windows with the read cache
emptied at each swap, as before. (Reads of packages the release before lacks are 404s there: they
show as errors in those windows.) What this leaves out, the suite's mixed run has: the import
beside the server.

    python benchmarks/switch_bench.py --db URL --swaps --no-carry --shares 1 0.5 -d 10 --rounds 2
    python benchmarks/switch_bench.py --db URL --memory 4 [--keep-old]   # RSS across swaps, no load
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).parent))
import api_bench  # noqa: E402
import loadgen  # noqa: E402

HERE = Path(__file__).parent


def builders(app: Any) -> list[tuple[str, Callable[[Any], Any]]]:
    """(name, make) of each thing built for a new snapshot before it is served."""
    return [(p.__self__.name, p.__self__.make) for p in app.state.served.preparers]


class Building:
    """Builds the snapshot's indexes in a thread, again and again, until stopped; with `swaps`,
    prepares and swaps in the release before the served one and back instead, as a release switch
    does (the indexes built, the read cache carried over, the old indexes dropped)."""

    def __init__(self, app: Any, public: Any, swaps: bool = False) -> None:
        self.app = app
        self.makes = builders(app)
        self.public = public
        self.swaps = swaps
        self.stopping = threading.Event()
        self.seconds: list[float] = []
        self.thread = threading.Thread(target=self._run, name="prepare", daemon=True)

    def _run(self) -> None:
        from grunndata.store import Snapshot, release_lines

        served = self.app.state.served
        newest = self.public.releases[-1]  # the active release when the bench started
        while not self.stopping.is_set():
            started = time.perf_counter()
            if self.swaps:
                target = Snapshot((newest - 1,) if served.snapshot().releases == (newest,) else (newest,))
                with served.engine.connect() as conn:
                    lines = release_lines(conn, target.releases)
                served._preparing = target.token
                served._prepare_then_swap(target, lines)
                self.stopping.wait(2.0)  # the seconds after a switch, as the window's last ones
            else:
                for _, make in self.makes:
                    make(self.public)
            self.seconds.append(time.perf_counter() - started)

    def __enter__(self) -> Building:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join()

    def back(self) -> None:
        """The newest served again (outside the window, the read cache carried over)."""
        from grunndata.store import Snapshot, release_lines

        served, newest = self.app.state.served, Snapshot(self.public.releases)
        if served.snapshot() != newest:
            with served.engine.connect() as conn:
                lines = release_lines(conn, newest.releases)
            served._preparing = newest.token
            served._prepare_then_swap(newest, lines)


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def swap_memory(app: Any, swaps: int, keep_old: bool) -> None:
    """The server's resident memory after each of `swaps` real swaps (prepared, then served), back
    and forth between the served snapshot and the release before it; `keep_old`: as before the old
    snapshot's indexes were dropped at the swap (nothing forgotten, no malloc_trim)."""
    from grunndata.server import state
    from grunndata.store import Snapshot, release_lines

    served = app.state.served
    served.snapshot_seconds = 3600.0  # no refresh swaps the active snapshot back meanwhile
    if keep_old:
        served.forgetters.clear()
        state._TRIM = None
    current = served.snapshot()
    other = Snapshot((current.releases[0] - 1,))
    print(f"RSS, snapshot {current.token} served, its indexes built: {rss_mib():.0f} MiB", flush=True)
    for n in range(swaps):
        target = other if n % 2 == 0 else current
        with served.engine.connect() as conn:
            lines = release_lines(conn, target.releases)
        started = time.perf_counter()
        served._preparing = target.token
        served._prepare_then_swap(target, lines)
        took = time.perf_counter() - started
        print(f"RSS after swap {n + 1} (to {target.token}, {took:.1f} s): {rss_mib():.0f} MiB", flush=True)


def load(url: str, files: dict[str, Path], c: int, d: float) -> dict[str, dict[str, float]]:
    """One window: a loadgen process per kind of path, at the same time; their p50 and p99."""
    procs = {
        kind: subprocess.Popen(
            [sys.executable, str(HERE / "loadgen.py"), url, "--paths-file", str(path), "-c", str(c)]
            + ["-d", str(d), "-w", "1", "--seed", str(random.randrange(1 << 30))],
            stdout=subprocess.PIPE,
            text=True,
        )
        for kind, path in files.items()
    }
    found = {}
    for kind, proc in procs.items():
        out, _ = proc.communicate()
        words = out.split()
        found[kind] = {
            "rps": float(words[words.index("req/s") - 1].replace(",", "")),
            "p50": float(words[words.index("p50") + 1]),
            "p99": float(words[words.index("p99") + 1]),
            "errors": float("errors" in out),
        }
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--db", required=True, help="a store with a full-size release (sqlite:///... or postgresql://...)"
    )
    ap.add_argument("--shares", type=float, nargs="+", default=[1.0, 0.5, 0.25])
    ap.add_argument("-c", "--concurrency", type=int, default=8, help="connections per kind (reads, varenr)")
    ap.add_argument("-d", "--duration", type=float, default=8.0, help="seconds per window")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--swaps", action="store_true", help="real swaps (back and forth) instead of builds alone"
    )
    ap.add_argument(
        "--no-carry",
        action="store_true",
        help="with --swaps: windows with the read cache emptied at each swap (as main) too",
    )
    ap.add_argument("--memory", type=int, metavar="SWAPS", help="no load: RSS after each of SWAPS swaps")
    ap.add_argument(
        "--keep-old", action="store_true", help="with --memory: keep the old indexes (as main did)"
    )
    ap.add_argument("--switch-interval", type=float, help="sys.setswitchinterval for the whole run")
    a = ap.parse_args()
    if a.switch_interval:
        sys.setswitchinterval(a.switch_interval)
    os.environ["GRUNNDATA_DB"], os.environ["GRUNNDATA_WARM"] = a.db, "0"  # no M30 file made in the window
    targets = api_bench.pick_targets(a.db, 2000, 7)
    work = Path(tempfile.mkdtemp(prefix="switch_bench"))
    files = {}
    for kind in ("read", "varenr"):
        files[kind] = work / f"{kind}.txt"
        files[kind].write_text("\n".join(targets[kind]) + "\n")
    app = api_bench.create_ours()
    port = loadgen.free_port()
    url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            port=port,
            loop="uvloop",
            http="httptools",
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
    )
    rows: list[tuple[str, dict[str, dict[str, float]], float | None]] = []

    def drive() -> None:
        try:
            loadgen.wait_for_port(port)
            served = app.state.served
            with httpx.Client(base_url=url, timeout=120) as client:  # the indexes of the served snapshot
                client.get(targets["varenr"][0]).raise_for_status()
                client.get(targets["translate-id"][0]).raise_for_status()
                from grunndata.server.auth import ANONYMOUS

                public = served.snapshot(ANONYMOUS)
                while app.state.search_indexes.current(public) is None:
                    time.sleep(0.2)
                for path in targets["read"] + targets["varenr"]:  # the read cache holds them all,
                    client.get(path)  # as in a long run
            served.snapshot_seconds = 3600.0  # the bench swaps; no refresh swaps the active one back
            carrying = served._still_served
            if a.memory:
                swap_memory(app, a.memory, a.keep_old)
                return
            print(
                f"{len(targets['read'])} packages, {len(targets['varenr'])} varenr; load {os.getloadavg()[0]:.2f}"
            )
            for r in range(a.rounds):
                for name, share, carry in windows:
                    rows.append(("quiet", load(url, files, a.concurrency, a.duration), None))
                    print(f"round {r + 1} quiet    {rows[-1][1]}", flush=True)
                    served.prepare_share = share
                    served._still_served = carrying if carry else lambda snapshot: {}
                    with Building(app, public, a.swaps) as building:
                        got = load(url, files, a.concurrency, a.duration)
                    served._still_served = carrying
                    building.back()
                    built = statistics.median(building.seconds) if building.seconds else None
                    rows.append((name, got, built))
                    print(f"round {r + 1} {name} {got} build {built} s ({len(building.seconds)})", flush=True)
        finally:
            server.should_exit = True

    windows = [(f"share {s:g}", s, True) for s in a.shares]
    if a.no_carry:  # each share again, the read cache emptied at every swap (as on main)
        windows += [(f"share {s:g}, cache emptied", s, False) for s in a.shares]
    threading.Thread(target=drive, daemon=True).start()
    server.run()
    if not rows:
        return 0
    print(f"\nmedians over {a.rounds} rounds, {a.concurrency} connections per kind, {a.duration:g} s windows")
    print(
        "| window | read p50 | read p99 | varenr p50 | varenr p99 | read p99 / quiet | varenr p99 / quiet | build s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    quiet = [g for name, g, _ in rows if name == "quiet"]
    q_read = statistics.median(g["read"]["p99"] for g in quiet)
    q_var = statistics.median(g["varenr"]["p99"] for g in quiet)
    for name in ["quiet", *[w[0] for w in windows]]:
        got = [(g, b) for n, g, b in rows if n == name]
        med = {k: {m: statistics.median(g[k][m] for g, _ in got) for m in ("p50", "p99")} for k in files}
        builds = [b for _, b in got if b is not None]
        build = f"{statistics.median(builds):.2f}" if builds else ""
        print(
            f"| {name} | {med['read']['p50']:.2f} | {med['read']['p99']:.2f} | {med['varenr']['p50']:.2f} | "
            f"{med['varenr']['p99']:.2f} | {med['read']['p99'] / q_read:.2f}x | {med['varenr']['p99'] / q_var:.2f}x | {build} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
