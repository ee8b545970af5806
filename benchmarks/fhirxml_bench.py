"""Micro benchmark: FHIR JSON -> XML (grunndata.server.fhir_io.fhirxml) on the official R5 IDMP examples.

    python benchmarks/fhirxml_bench.py [--runs 2000] [--examples ../shared/data/fhir-r5-idmp-examples]
    python benchmarks/fhirxml_bench.py --r4-store sqlite:////tmp/r4.db [--runs 200]

For each example: the median time of one `json_to_xml(orjson.loads(raw))` (the read path: stored
bytes in, XML bytes out), of `json_to_xml` alone, and of the narrative's XHTML parse within it.
The type metadata is warmed first, as it is on a running server.

`--r4-store` (a store with a delivery imported): the /fhir-r4 view's resources instead, per SAFEST
type, the R4 JSON as /fhir-r4 keeps it (server/r4view.py) written as R4 XML, beside the R5 JSON
it is made from written as R5 XML: what an XML read adds to a JSON read, which sends the bytes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from grunndata.server.fhir_io import fhirxml
from grunndata.translators.safest.to_r4 import R4_OF_R5, to_r4

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
    parser.add_argument("--r4-store", help="a store URL: time the R4 view's XML instead")
    args = parser.parse_args()
    if args.r4_store:
        r4_view(args.r4_store, args.runs)
        return

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


def r4_view(store_url: str, runs: int) -> None:
    """Per SAFEST type: median µs per resource of R4 XML from the kept R4 JSON, and of R5 XML."""
    from fastapi.testclient import TestClient

    from grunndata.server import create_app
    from grunndata.store import connect

    engine = connect(store_url)
    with TestClient(create_app(engine)) as api:
        served = {r5: api.get(f"/fhir/{r5}?_count=1000").json().get("entry", []) for r5 in R4_OF_R5}
    engine.dispose()
    print(f"{'R4 type':<32} {'n':>4} {'R4 bytes':>9} {'R4 xml':>8} {'R5 xml':>8}  (median µs per resource)")
    for r5_type, entries in served.items():
        r5_raw = [orjson.dumps(e["resource"]) for e in entries]
        if not r5_raw:
            continue
        r4_raw = [orjson.dumps(to_r4(orjson.loads(raw))) for raw in r5_raw]
        for raw in r4_raw:
            fhirxml.json_to_xml(orjson.loads(raw), version="4.0")  # warm the per-type metadata
        for raw in r5_raw:
            fhirxml.json_to_xml(orjson.loads(raw))

        def each(raws: list[bytes], version: str) -> None:
            for raw in raws:
                fhirxml.json_to_xml(orjson.loads(raw), version=version)

        rounds = max(runs // 10, 5)
        r4 = median_us(lambda raws=r4_raw: each(raws, "4.0"), rounds) / len(r4_raw)
        r5 = median_us(lambda raws=r5_raw: each(raws, "5.0"), rounds) / len(r5_raw)
        size = statistics.median(len(raw) for raw in r4_raw)
        print(f"{R4_OF_R5[r5_type]:<32} {len(r4_raw):>4} {size:>9.0f} {r4:>8.0f} {r5:>8.0f}")


if __name__ == "__main__":
    main()
