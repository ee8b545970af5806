"""Server time of the product card (/legemidler/{id}) and of a search, caches cold and warm.

    python benchmarks/pages_bench.py                       # the real 2017 extract, imported here
    python benchmarks/pages_bench.py --db sqlite:///full.db --products 50   # a store of your own

Full size: `grunndata generate fest full.zip && GRUNNDATA_DB=sqlite:///full.db grunndata import fest
full.zip`, then `--db sqlite:///full.db`. Server time is the route's own work (the store's queries and
the rendering), measured in this process around the function the route runs, without HTTP. Cold:
a new app state for every card (no read cache, no notice or disagreement index, no parsed resource
kept; the operating system's file cache is as it is; the process's first card, which compiles the
template, is not counted). Warm: the same card again. Prints the median, the 90th percentile and the
worst in ms, wall time and (cold) this process's CPU time, which a loaded machine inflates less,
with the machine's load.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL = HERE.parent.parent / "shared" / "data" / "fest-real" / "fest-mini-2017.xml.gz"


def main() -> None:
    from sqlalchemy import select

    from grunndata.importers.fest import import_fest
    from grunndata.server.pages import card as card_module
    from grunndata.server.routes.pages import _card, _find
    from grunndata.server.state import Served
    from grunndata.store import connect
    from grunndata.store.models import R

    find_module = importlib.import_module(
        "grunndata.server.pages.find"
    )  # the package's `find` is the function

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a store URL (default: the real extract, imported into a temp SQLite)")
    parser.add_argument("--products", type=int, default=30, help="how many products' cards to time")
    args = parser.parse_args()
    if args.db:
        engine = connect(args.db)
    else:
        folder = tempfile.mkdtemp()
        engine = connect(f"sqlite:///{folder}/store.db")
        import_fest(engine, REAL)
    served = Served(engine)
    snapshot = served.snapshot()
    with engine.connect() as conn:
        ids = [
            rid
            for (rid,) in conn.execute(
                select(R.c.id)
                .where(R.c.type == "MedicinalProductDefinition", R.c.release_id.in_(snapshot.releases))
                .order_by(R.c.id)
            )
        ]
    step = max(1, len(ids) // args.products)
    chosen = ids[::step][: args.products]
    _card(served, ids[-1])  # the process's first use (imports, the template compiled) is no card's
    cold, warm, cpu_cold = [], [], []
    for rid in chosen:
        served = Served(engine)  # a new app's state: nothing read yet
        served.snapshot()
        card_module.NOTICES._made = None
        card_module.DISAGREEMENTS._made = None
        find_module._parsed.cache_clear()
        for times in (cold, warm):
            started, cpu = time.perf_counter(), time.process_time()
            response = _card(served, rid)
            times.append((time.perf_counter() - started) * 1000)
            if times is cold:
                cpu_cold.append((time.process_time() - cpu) * 1000)
            assert response.status_code == 200, (rid, response.status_code)
    searches = []
    for query in ("certican", "para", "a", "014884", "L04A", "everolimus"):
        started = time.perf_counter()
        _find(served, query, True)
        searches.append((query, (time.perf_counter() - started) * 1000))
    load = os.getloadavg()
    print(
        f"store: {args.db or 'the real 2017 extract (SQLite)'}; {len(ids):,} products, {len(chosen)} cards timed"
    )
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    for name, times in (("card, cold", cold), ("card, cold, CPU", cpu_cold), ("card, warm", warm)):
        ordered = sorted(times)
        p90 = ordered[max(0, int(len(ordered) * 0.9) - 1)]
        print(
            f"{name}: median {statistics.median(times):.1f} ms, p90 {p90:.1f} ms, worst {ordered[-1]:.1f} ms"
        )
    print("search (fragment, warm): " + ", ".join(f"{q!r} {ms:.1f} ms" for q, ms in searches))


if __name__ == "__main__":
    sys.exit(main())
