"""Do reads, first-time searches and `_history` cost more as releases pile up? (issue 23 item 3)

Two SQLite stores serve the same data: one holds only the newest delivery (1 release), the other
a generated base and its N-1 full follow-ups, each derived from the one before (N releases, the
newest the same delivery). The same requests are asked of both, interleaved (one to each, in
turn), in this process through the ASGI app (no network), with the search cache and the warm-up
off and a new app state for each round, so each answer is computed the first time. Per kind the
median process CPU time and wall time per request, and the ratio N releases / 1 release.

    python benchmarks/releases_bench.py                      # 13 releases, scale 0.05
    python benchmarks/releases_bench.py --releases 130 --scale 0.02 --keep /tmp/rel130   # opt-in

Kinds: a read by id; a search by varenr; a name `:contains`; the first page of `_history` since
the newest release began (what a system that synced at the last release asks) and since before
the first (everything: the removals and versions of every release are candidates); the first page
of `_history` without `_since`. Before each round's requests, the indexes a server builds for the
release it serves (terminology, search index), timed apart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PPD = "PackagedProductDefinition"
PREPARE = "indexes built for the release"  # once per app, before its requests


def build(folder: Path, releases: int, scale: float) -> tuple[str, str]:
    """(one-release store URL, N-release store URL), made in `folder` (reused when there)."""
    from grunndata.importers.fest import import_fest
    from grunndata.sample import derive_followup, generate_delivery
    from grunndata.store import connect

    one, many = folder / "one.db", folder / f"many{releases}.db"
    if one.exists() and many.exists():
        return f"sqlite:///{one}", f"sqlite:///{many}"
    for stale in (one, many):
        stale.unlink(missing_ok=True)
    deliveries = [folder / "d0.xml"]
    started = time.monotonic()
    generate_delivery(deliveries[0], scale=scale, seed=11)
    for n in range(1, releases):
        deliveries.append(folder / f"d{n}.xml")
        derive_followup(deliveries[n - 1], deliveries[n], seed=n)
    engine = connect(f"sqlite:///{many}")
    for n, path in enumerate(deliveries, 1):
        import_fest(engine, path)
        print(f"  imported {n}/{releases} ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    engine.dispose()
    engine = connect(f"sqlite:///{one}")
    import_fest(engine, deliveries[-1])
    engine.dispose()
    for path in deliveries:
        path.unlink()
    return f"sqlite:///{one}", f"sqlite:///{many}"


def targets(url: str, n: int, seed: int) -> dict[str, list[str]]:
    """The requests per kind, drawn from the store's newest release (the same in both stores)."""
    import api_bench
    from sqlalchemy import func, select

    from grunndata.store import connect
    from grunndata.store.models import REL
    from grunndata.store.read import instant

    drawn = api_bench.pick_targets(url, n, seed)
    engine = connect(url, create=False)
    with engine.connect() as conn:
        newest, first = conn.execute(select(func.max(REL.c.started_at), func.min(REL.c.started_at))).one()
    engine.dispose()
    since_newest = quote(instant(newest), safe="")
    since_all = quote(instant(first.replace(year=first.year - 1)), safe="")
    return {
        "read": drawn["read"],
        "varenr": drawn["varenr"],
        "name": drawn["name"],
        "history since newest": [f"/fhir/_history?_since={since_newest}&_count=50"] * n,
        "history since first": [f"/fhir/_history?_since={since_all}&_count=50"] * n,
        "history, first page": ["/fhir/_history?_count=50"] * n,
    }


def measure(
    urls: dict[str, str], paths: dict[str, list[str]], rounds: int
) -> dict[tuple[str, str], list[float]]:
    """CPU and wall time per request, in ms, keyed (store, kind) and (store, kind + ' wall')."""
    from fastapi.testclient import TestClient

    from grunndata.server import create_app
    from grunndata.server.auth import ANONYMOUS
    from grunndata.store import connect

    engines = {name: connect(url, create=False) for name, url in urls.items()}
    found: dict[tuple[str, str], list[float]] = {}
    for r in range(rounds):
        clients = {name: TestClient(create_app(engine, warm=False)) for name, engine in engines.items()}
        for name, client in clients.items():
            client.__enter__()
            assert client.get("/fhir/metadata").status_code == 200  # the app's start, not counted
            # the indexes a server builds before it serves a release (terminology, search index),
            # counted apart: built in threads of their own, they would land in whichever request's
            # process time they overlap
            served = client.app.state.served  # type: ignore[attr-defined]
            snapshot = served.snapshot(ANONYMOUS)
            cpu, wall = time.process_time(), time.perf_counter()
            for prepare in served.preparers:
                prepare(snapshot)
            found.setdefault((name, PREPARE), []).append((time.process_time() - cpu) * 1000)
            found.setdefault((name, PREPARE + " wall"), []).append((time.perf_counter() - wall) * 1000)
        for kind, some in paths.items():
            path = some[r % len(some)]
            for name, client in clients.items():  # interleaved: one to each, in turn
                cpu, wall = time.process_time(), time.perf_counter()
                answer = client.get(path)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                if answer.status_code != 200:
                    raise SystemExit(f"{name}: {path} answered {answer.status_code}: {answer.text[:300]}")
                found.setdefault((name, kind), []).append(cpu * 1000)
                found.setdefault((name, kind + " wall"), []).append(wall * 1000)
        for client in clients.values():
            client.__exit__(None, None, None)
    for engine in engines.values():
        engine.dispose()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=13)
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=40, help="requests of each kind to each store")
    parser.add_argument("--keep", type=Path, help="a folder to build the stores in and keep (reused)")
    args = parser.parse_args()
    os.environ["GRUNNDATA_SEARCH_CACHE_MB"] = "0"
    os.environ["GRUNNDATA_WARM"] = "0"
    folder = args.keep or Path(tempfile.mkdtemp(prefix="releases-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    one, many = build(folder, args.releases, args.scale)
    paths = targets(one, args.rounds, seed=7)
    urls = {"1 release": one, f"{args.releases} releases": many}
    found = measure(urls, paths, args.rounds)
    load = os.getloadavg()[0]
    print(
        f"\nscale {args.scale}, {args.releases} releases vs 1, {args.rounds} requests each, load {load:.1f}"
    )
    print(f"| kind | 1 release CPU ms | {args.releases} releases CPU ms | ratio | wall ratio |")
    print("|---|---|---|---|---|")
    for kind in [PREPARE, *paths]:
        a = statistics.median(found[("1 release", kind)])
        b = statistics.median(found[(f"{args.releases} releases", kind)])
        wa = statistics.median(found[("1 release", kind + " wall")])
        wb = statistics.median(found[(f"{args.releases} releases", kind + " wall")])
        print(f"| {kind} | {a:.2f} | {b:.2f} | {b / a:.2f}x | {wb / wa:.2f}x |")


if __name__ == "__main__":
    main()
