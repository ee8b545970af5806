"""SAFEST import at full size: a SAFEST delivery describing every brand and package FEST has.

    python benchmarks/safest_bench.py [--delivery fest251.zip] [--runs 3] [--write]

Generates (or takes) a full-size FEST delivery and imports it into a fresh SQLite store, then
writes a SAFEST delivery (R5 ndjson) with one MedicinalProductDefinition per brand and one
PackagedProductDefinition per package, linked by their FEST ids and varenr; 1 % of the brands
carry another name (planted disagreements). Times `grunndata import safest` (a fresh process;
median of --runs, each into a copy of the FEST-only store) against the FEST import of the same
store, with peak RSS, and checks the reconciliation counted what was planted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
sys.path.insert(0, str(HERE))

from import_bench import machine, run_timed  # noqa: E402

CLI = [sys.executable, "-m", "grunndata.cli"]


def safest_delivery(store: Path, out: Path) -> tuple[int, int]:
    """(resources written, names changed) from what the FEST import serves."""
    written = planted = 0
    with sqlite3.connect(store) as conn, out.open("w") as f:
        rows = conn.execute(
            "SELECT type, id, data FROM resource WHERE type IN "
            "('MedicinalProductDefinition', 'PackagedProductDefinition') ORDER BY type, id"
        )
        for n, (rtype, _, data) in enumerate(rows):
            fest = json.loads(data)
            resource = {
                "resourceType": rtype,
                "id": f"sf-{n}",
                "identifier": [i for i in fest.get("identifier", []) if "dmp.no" in i.get("system", "")],
            }
            if rtype == "MedicinalProductDefinition":
                name = fest["name"][0]["productName"]
                if n % 100 == 0:
                    name, planted = name.upper() + " (IDMP)", planted + 1
                resource["name"] = [{"productName": name}]
                if "classification" in fest:
                    resource["classification"] = fest["classification"]
            else:
                resource["containedItemQuantity"] = fest.get("containedItemQuantity", [])
                resource["packageFor"] = fest.get("packageFor", [])  # FEST ids: served as they are
            if not resource["identifier"]:
                continue
            f.write(json.dumps(resource) + "\n")
            written += 1
    return written, planted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--delivery", type=Path, help="a full FEST delivery (default: generate one, scale 1.0)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="grunndata-safest-bench-") as tmp:
        folder = Path(tmp)
        delivery = args.delivery
        if delivery is None:
            delivery = folder / "fest251.zip"
            subprocess.run([*CLI, "generate", "fest", str(delivery)], check=True, capture_output=True)
        base = folder / "base.db"
        fest_wall, fest_rss, _ = run_timed(
            [*CLI, "import", "fest", str(delivery), "--db", f"sqlite:///{base}"]
        )
        ndjson = folder / "safest.ndjson"
        written, planted = safest_delivery(base, ndjson)
        walls, rsss, output = [], [], ""
        for run in range(args.runs):
            db = folder / f"run{run}.db"
            shutil.copy(base, db)
            wall, rss, output = run_timed([*CLI, "import", "safest", str(ndjson), "--db", f"sqlite:///{db}"])
            walls.append(wall)
            rsss.append(rss)
            db.unlink()
        summary = next(
            (line for line in output.splitlines() if "disagreements" in line), "(no disagreements line)"
        )
    wall, rss = statistics.median(walls), max(rsss)
    table = "\n".join(
        [
            f"### SAFEST import, {datetime.now(UTC):%Y-%m-%d} ({machine()})",
            "",
            f"`python benchmarks/safest_bench.py --runs {args.runs}`; SQLite; a SAFEST delivery of {written:,} "
            f"resources (every brand and package of the full-size FEST delivery, {planted} names changed); "
            f"the import reported: {summary.strip()}",
            "",
            "| import | wall (median) | peak RSS | × the FEST import |",
            "|---|---|---|---|",
            f"| FEST full-size delivery (once, for the base) | {fest_wall:.1f} s | {fest_rss:.0f} MiB | 1.00 |",
            f"| SAFEST over it (FHIR remade from both, merged, reconciled) | {wall:.1f} s | {rss:.0f} MiB | {wall / fest_wall:.2f} |",
        ]
    )
    print(table)
    if args.write:
        with RESULTS.open("a") as out:
            out.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
