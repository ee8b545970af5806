"""First-time cost of each search form of R5's grammar on the real FEST extract, both stores.

    python benchmarks/grammar_bench.py [--runs 20] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Imports the real 2017 extract (../shared/data/fest-real) into a fresh SQLite store and a fresh
PostgreSQL database, starts our server on each under uvicorn as api_bench.py does, with the search
cache off (GRUNNDATA_SEARCH_CACHE_MB=0: every answer is searched, none is a stored one), and asks
one example of each form --runs times (after it is ready and three warm-up requests of each), one
client on one kept-alive connection, one request at a time. Prints the median and the 90th
percentile in ms, and the server process's CPU ms per request (user + system; on a busy machine
the wall times wait for a core, the CPU time does not), with a plain varenr search as the
yardstick; every example must answer 200 with at least one match, or the run stops.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from api_bench import Server, import_into, start, uvicorn  # noqa: E402
from import_bench import fresh_pg  # noqa: E402

REAL = HERE.parent.parent / "shared" / "data" / "fest-real" / "fest-mini-2017.xml.gz"
MPD, PPD, APD = "MedicinalProductDefinition", "PackagedProductDefinition", "AdministrableProductDefinition"
CERTICAN = "F2CEF840-A295-4A7A-9CCD-5873D846C3BD"
SHARED_STRENGTH = "ID_2BF5C05D-4BB8-4445-A8D6-F9F46A68264F"  # a VirkestoffMedStyrke of 7 ingredients
FORMS = [
    ("plain token (varenr), the yardstick", f"{PPD}?identifier=014884"),
    (":missing", f"{MPD}?type:missing=true"),
    (":not", f"{MPD}?type:not=https://grunndata.no/fhir/CodeSystem/fest-Preparattype|7"),
    (":below (ATC)", f"{MPD}?product-classification:below=L04A"),
    (":above (ATC)", f"{MPD}?product-classification:above=L04AA18"),
    ("chain, one link", f"{PPD}?package-for.name=certic"),
    ("chain, one link, typed", f"{PPD}?package-for:{MPD}.identifier=ID_{CERTICAN}"),
    ("chain, two links", f"Ingredient?for:{APD}.form-of.name=certic"),
    ("_has", f"{MPD}?_has:{PPD}:package-for:identifier=014884"),
    ("_has, two deep", f"{MPD}?_has:{APD}:form-of:_has:Ingredient:for:identifier={SHARED_STRENGTH}"),
    (
        "_include:iterate",
        f"{PPD}?identifier=014884&_include={PPD}:package-for&_include:iterate={MPD}:comprised-of",
    ),
    ("_include=*", f"{PPD}?identifier=014884&_include=*"),
    ("_revinclude=*", f"{MPD}?_id={CERTICAN}&_revinclude=*"),
]


def timed(conn: http.client.HTTPConnection, path: str) -> float:
    """Milliseconds of one GET on a kept-alive connection, which must answer 200 with a match."""
    began = time.perf_counter()
    conn.request("GET", path, headers={"Accept": "application/fhir+json"})
    response = conn.getresponse()
    body = response.read()
    took = (time.perf_counter() - began) * 1000
    if response.status != 200 or not json.loads(body).get("entry"):
        raise SystemExit(f"{path} answered {response.status} with nothing found: {body[:300]!r}")
    return took


def ready(conn: http.client.HTTPConnection) -> None:
    """Until /readyz says ready (the terminology maps and the warm-up are built), at most 2 minutes."""
    for _ in range(240):
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        response.read()
        if response.status == 200:
            return
        time.sleep(0.5)
    raise SystemExit("the server did not get ready in 2 minutes")


def measure(server: Server, runs: int) -> list[tuple[float, float, float]]:
    """Per form: median and 90th percentile wall ms, and the server's CPU ms per request (user +
    system of its process over the runs: what a request costs, whatever else the machine runs)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    ready(conn)
    time.sleep(2)  # what the warm-up does after it says ready
    out = []
    for _, path in FORMS:
        for _ in range(3):  # the first ever: statement caches, the connection pool
            timed(conn, f"/fhir/{path}")
        cpu = server.cpu_seconds()
        times = sorted(timed(conn, f"/fhir/{path}") for _ in range(runs))
        cpu_ms = (server.cpu_seconds() - cpu) * 1000 / runs
        out.append((statistics.median(times), times[int(0.9 * (len(times) - 1))], cpu_ms))
    conn.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="grammar-bench-"))
    stores = {"SQLite": f"sqlite:///{work / 'store.db'}"}
    drop = None
    if not args.no_pg:
        stores["PostgreSQL"], drop, _ = fresh_pg(args.pg)
    results = {}
    try:
        for name, db in stores.items():
            import_into(REAL, db)
            command, env = uvicorn("api_bench:create_ours", db)
            server = start(name, command, {**env, "GRUNNDATA_SEARCH_CACHE_MB": "0"}, work / "server.log")
            try:
                results[name] = measure(server, args.runs)
            finally:
                server.proc.terminate()
                server.proc.wait(timeout=10)
    finally:
        if drop is not None:
            drop()
    names = list(results)
    print("| form | example | " + " | ".join(f"{n} median / p90 ms, CPU ms" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for i, (label, path) in enumerate(FORMS):
        cells = " | ".join(
            f"{results[n][i][0]:.1f} / {results[n][i][1]:.1f}, {results[n][i][2]:.1f}" for n in names
        )
        shown = path.replace("|", "\\|")  # a table cell's bar
        print(f"| {label} | `{shown}` | {cells} |")


if __name__ == "__main__":
    main()
