"""Import benchmark: a full-size generated FEST delivery into SQLite and PostgreSQL.

    python benchmarks/import_bench.py [--scale 1.0] [--runs 3] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Each import runs as its own `grunndata import fest` process, timed wall-clock with its peak RSS
from wait4(). In the same run it measures a bare streaming parse of the same file (lxml
iterparse, nothing else), so the import can be read as a ratio to the parse floor on this
machine. Appends a dated table to benchmarks/RESULTS.md; figures are medians over --runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree
from sqlalchemy import create_engine, text

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"


def run_timed(args: list[str]) -> tuple[float, float, str]:
    """Run a command; (wall seconds, peak RSS MiB, stdout)."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{stdout}")
    return wall, usage.ru_maxrss / 1024, stdout


def parse_floor(path: Path) -> float:
    """Seconds for lxml to stream-parse the file, clearing as it goes: no import can beat this."""
    started = time.perf_counter()
    for _, el in etree.iterparse(
        str(path), events=("end",), resolve_entities=False, no_network=True, huge_tree=True
    ):
        if (
            el.getparent() is not None
            and el.getparent().getparent() is not None
            and el.getparent().getparent().getparent() is None
        ):
            el.clear()
    return time.perf_counter() - started


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    mem = (
        next(
            (
                int(line.split()[1])
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            ),
            0,
        )
        / 1024**2
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def fresh_pg(admin_url: str) -> tuple[str, Callable[[], None], str]:
    name = "grunndata_bench_" + uuid.uuid4().hex[:8]
    admin = create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        version = conn.execute(text("SHOW server_version")).scalar()

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return admin_url.rsplit("/", 1)[0] + "/" + name, drop, version


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--no-write", action="store_true", help="print the table, do not append it to RESULTS.md")
    args = ap.parse_args()
    grunndata = [sys.executable, "-m", "grunndata.cli"]

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        delivery, followup, incremental = work / "fest251.xml", work / "next.xml", work / "next-inc.xml"
        print("generating ...", flush=True)
        gen_wall, _, _ = run_timed(
            [*grunndata, "generate", "fest", str(delivery), "--scale", str(args.scale)]
        )
        run_timed([*grunndata, "generate", "followup", str(delivery), str(followup)])
        run_timed([*grunndata, "generate", "followup", str(delivery), str(incremental), "--incremental"])
        size_mb = delivery.stat().st_size / 1e6
        floor = statistics.median(parse_floor(delivery) for _ in range(args.runs))

        rows = []
        pg_version = "?"
        for backend in ("sqlite", "postgresql"):
            full, rss, noop, nxt, nxt_rss, inc = [], [], [], [], [], []
            entries = 0
            for i in range(args.runs):
                if backend == "sqlite":
                    url, drop = f"sqlite:///{work / f'bench{i}.db'}", (lambda: None)
                else:
                    url, drop, pg_version = fresh_pg(args.pg)
                try:
                    print(f"{backend} run {i + 1}/{args.runs} ...", flush=True)
                    wall, peak, out = run_timed([*grunndata, "import", "fest", str(delivery), "--db", url])
                    entries = int(
                        next(line for line in out.splitlines() if " entries in " in line)
                        .split()[0]
                        .replace(",", "")
                    )
                    full.append(wall)
                    rss.append(peak)
                    noop.append(run_timed([*grunndata, "import", "fest", str(delivery), "--db", url])[0])
                    wall_next, rss_next, _ = run_timed(
                        [*grunndata, "import", "fest", str(followup), "--db", url]
                    )
                    nxt.append(wall_next)
                    nxt_rss.append(rss_next)
                    inc.append(
                        run_timed(
                            [*grunndata, "import", "fest", str(incremental), "--db", url, "--incremental"]
                        )[0]
                    )
                finally:
                    drop()
            m = statistics.median
            rows.append(
                (
                    backend,
                    entries,
                    m(full),
                    entries / m(full),
                    m(full) / floor,
                    m(rss),
                    m(noop),
                    m(nxt),
                    m(nxt_rss),
                    m(inc),
                )
            )

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"\n## Import, {stamp}\n",
        f"Machine: {machine()}, PostgreSQL {pg_version} on the same machine.",
        f"Delivery: generated, scale {args.scale}, {size_mb:.0f} MB XML ({gen_wall:.0f} s to generate); "
        f"bare lxml streaming parse of it: {floor:.1f} s (the floor). Medians of {args.runs} runs, each import "
        "a fresh process into a fresh database.",
        "Command: `python benchmarks/import_bench.py"
        + (f" --scale {args.scale}" if args.scale != 1.0 else "")
        + "`\n",
        f"Load when it ended (`uptime`): {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
        "(wall times are only comparable on a quiet machine; peak RSS is not sensitive to load).\n",
        "| store | entries | full import wall | entries/s | x parse floor | peak RSS | same file again | full follow-up | follow-up peak RSS | incremental follow-up |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b, n, wall, rate, ratio, peak, noop, nxt, nxt_peak, inc in rows:
        lines.append(
            f"| {b} | {n:,} | {wall:.1f} s | {rate:,.0f} | {ratio:.1f} | {peak:.0f} MiB | {noop:.1f} s | "
            f"{nxt:.1f} s | {nxt_peak:.0f} MiB | {inc:.1f} s |"
        )
    lines.append(
        "\nTargets (issue 23 item 5): peak RSS of a full import and of a full follow-up <= 300 MB, the same "
        "±20 % at scale 2 and 4; a full-size import into SQLite <= 15 s."
    )
    table = "\n".join(lines) + "\n"
    print(table)
    if not args.no_write:
        if not RESULTS.exists():
            RESULTS.write_text("# Benchmark results\n\nNewest last. Each section says how it was measured.\n")
        with RESULTS.open("a") as f:
            f.write(table)


if __name__ == "__main__":
    main()
