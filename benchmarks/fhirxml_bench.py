"""Micro benchmark: FHIR JSON -> XML (grunndata.server.fhir_io.fhirxml) on the official R5 IDMP examples.

    python benchmarks/fhirxml_bench.py [--runs 2000] [--examples ../shared/data/fhir-r5-idmp-examples]

For each example: the median time of one `json_to_xml(orjson.loads(raw))` (the read path: stored
bytes in, XML bytes out), of `json_to_xml` alone, and of the narrative's XHTML parse within it.
The type metadata is warmed first, as it is on a running server.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from grunndata.server.fhir_io import fhirxml

HERE = Path(__file__).resolve().parent
DEFAULT_EXAMPLES = HERE.parents[1] / "shared" / "data" / "fhir-r5-idmp-examples"


def median_us(fn: Callable[[], object], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--examples", type=Path, default=DEFAULT_EXAMPLES)
    args = parser.parse_args()

    rows = []
    for path in sorted(args.examples.glob("*.json")):
        raw = path.read_bytes()
        resource = orjson.loads(raw)
        fhirxml.json_to_xml(resource)  # warm the per-type metadata
        runs = args.runs if len(raw) < 50_000 else max(args.runs // 50, 5)
        read_path = median_us(lambda raw=raw: fhirxml.json_to_xml(orjson.loads(raw)), runs)
        convert = median_us(lambda resource=resource: fhirxml.json_to_xml(resource), runs)
        div = resource.get("text", {}).get("div")
        xhtml = median_us(lambda div=div: fhirxml._xhtml(div), runs) if div else 0.0
        rows.append((path.name, len(raw), read_path, convert, xhtml))

    print(f"{'example':<72} {'bytes':>7} {'loads+xml':>10} {'xml':>8} {'of it div':>10}  (median µs)")
    for name, size, read_path, convert, xhtml in rows:
        print(f"{name:<72} {size:>7} {read_path:>10.0f} {convert:>8.0f} {xhtml:>10.0f}")
    typical = [r for r in rows if 2_000 <= r[1] <= 5_000]
    if typical:
        print(
            f"\n{len(typical)} examples of 2-5 kB: median of medians "
            f"{statistics.median(r[2] for r in typical):.0f} µs with orjson.loads, "
            f"{statistics.median(r[3] for r in typical):.0f} µs json_to_xml alone"
        )


if __name__ == "__main__":
    main()
