"""M30 export benchmark: a full-size delivery imported, then exported again, on SQLite and PostgreSQL.

Each export is a fresh `grunndata export m30` process (wall time and peak RSS from wait4), next
to two floors measured in the same run: a bare lxml streaming parse of the written file, and
copying the raw stored JSON of the same resources out of the store. Medians of --runs.

    python benchmarks/export_bench.py [--delivery fest251.zip] [--runs 3] [--no-write]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
sys.path.insert(0, str(HERE))

from import_bench import fresh_pg, machine, parse_floor, run_timed  # noqa: E402


def read_floor(db_file: Path) -> float:
    """Seconds to read every stored FHIR resource's bytes out of the SQLite file, doing nothing else."""
    started = time.perf_counter()
    with sqlite3.connect(db_file) as conn:
        for (data,) in conn.execute("SELECT data FROM resource WHERE type NOT LIKE 'FEST.%'"):
            len(data)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--delivery", type=Path, help="a full delivery to use (default: generate the real size)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--no-write", action="store_true", help="print the table, do not append it to RESULTS.md")
    args = ap.parse_args()
    grunndata = [sys.executable, "-m", "grunndata.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        delivery = args.delivery or work / "fest251.zip"
        if args.delivery is None:
            print("generating ...", flush=True)
            run_timed([*grunndata, "generate", "fest", str(delivery)])
        rows = []
        pg_version = "?"
        for backend in ("sqlite", "postgresql"):
            if backend == "sqlite":
                url, drop = f"sqlite:///{work / 'store.db'}", (lambda: None)
            else:
                url, drop, pg_version = fresh_pg(args.pg)
            try:
                print(f"{backend}: importing ...", flush=True)
                run_timed([*grunndata, "import", "fest", str(delivery), "--db", url])
                walls, peaks, floors, reads = [], [], [], []
                for i in range(args.runs):
                    out = work / f"export{i}.xml"
                    print(f"{backend}: export {i + 1}/{args.runs} ...", flush=True)
                    wall, peak, stdout = run_timed([*grunndata, "export", "m30", "--db", url, "-o", str(out)])
                    walls.append(wall)
                    peaks.append(peak)
                    floors.append(parse_floor(out))
                    if backend == "sqlite":
                        reads.append(read_floor(work / "store.db"))
                    size = out.stat().st_size
                    out.unlink()
                entries = int(
                    stdout.split("bytes, ", 1)[1].split()[0].replace(",", "")
                )  # "(N bytes, M entries)"
            finally:
                drop()
            m = statistics.median
            rows.append((backend, entries, size, m(walls), m(peaks), m(floors), m(reads) if reads else None))

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"\n## M30 export, {stamp}\n",
        f"Machine: {machine()}, PostgreSQL {pg_version} on the same machine.",
        f"Delivery: {'generated, real size' if args.delivery is None else args.delivery.name}, imported once per store; "
        f"each export a fresh `grunndata export m30` process into an .xml file. Medians of {args.runs} runs.",
        "Command: `python benchmarks/export_bench.py`\n",
        "| store | entries | XML | export wall | peak RSS | x lxml parse of the output | x reading the stored JSON |",
        "|---|---|---|---|---|---|---|",
    ]
    for b, n, size, wall, peak, floor, read in rows:
        read_ratio = f"{wall / read:.1f}" if read else "-"
        lines.append(
            f"| {b} | {n:,} | {size / 1e6:.0f} MB | {wall:.1f} s | {peak:.0f} MiB | {wall / floor:.1f} | {read_ratio} |"
        )
    lines.append("\nTargets (issue 4): full-size M30 export <= 20 s and <= 300 MB peak RSS.")
    table = "\n".join(lines) + "\n"
    print(table)
    if not args.no_write:
        with RESULTS.open("a") as f:
            f.write(table)


if __name__ == "__main__":
    main()
