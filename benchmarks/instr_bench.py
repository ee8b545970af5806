"""Instructions the server spends per request of a kind: a count, not a time, so it repeats.

The machines here are shared and noisy (the bare app alone reads +-5% between slots of one run);
valgrind's callgrind counts the instructions a process executes, whatever else runs beside it.
The server runs under callgrind with instrumentation off; after a warm-up, instrumentation is
switched on (`callgrind_control -i on`) for N requests on one keep-alive connection and off again,
so the count is the requests' work alone (uvicorn, the app, SQLite), with the search cache and
the warm-up task off (a first-time question; no export child competing).

    python benchmarks/instr_bench.py --store sqlite:////tmp/full.db --only varenr name atc read
    python benchmarks/instr_bench.py --store ... --only varenr name prefix --index on off   # the search index's gain
    python benchmarks/instr_bench.py --store ... --tree /path/to/other/checkout   # its code, same store
    python benchmarks/instr_bench.py --store ... --only read --auth none bearer dpop-es256 dpop-rs256 [--cached]
    python benchmarks/instr_bench.py --store ... --only read --cached --app ours bare --keep /tmp/cg   # vs the bare app

`--app bare` counts benchmarks/bare_app.py serving the same reads (a dict of the same bytes): the
stack's floor, so `ours / bare` is what our own layers add to a read. `--keep DIR` leaves each
callgrind output there (`callgrind_annotate --inclusive=yes DIR/<kind>-<app>.out` shows where).

`--auth` reads as a client with a token would: `bearer` an RS256 bearer token (verified once,
then remembered), `dpop-es256`/`dpop-rs256` a DPoP-bound token with a fresh proof per request by
the client's EC or RSA key (made by this process, outside the count), against a JWKS the server
is given (auth_bench.py's keys and claims), so the cost of a proof's check is counted in full.

`--tree` serves another checkout's code and its `benchmarks/api_bench.py` factory (put first on
PYTHONPATH, this venv's libraries), so two commits can be compared on one store. Needs valgrind (Debian: apt-get install valgrind).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
AUTH = ("none", "bearer", "dpop-es256", "dpop-rs256")
FACTORIES = {"ours": "api_bench:create_ours", "bare": "bare_app:create_app"}
sys.path.insert(0, str(HERE))

import api_bench  # noqa: E402  (the targets are drawn as the API benchmark draws them)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def count(
    store: str,
    kind: str,
    n: int,
    tree: Path | None,
    auth: str = "none",
    cached: bool = False,
    index: bool = True,
    app: str = "ours",
    keep: Path | None = None,
) -> tuple[int, int]:
    """(instructions, requests) for n requests of `kind` on `store`, as `auth` asks; `cached`: the
    counted requests were asked once before (a read's answer is then kept), else they are new;
    `index`: with the in-memory search index (GRUNNDATA_SEARCH_INDEX), counted once it answers."""
    paths = api_bench.pick_targets(store, n + 50, 0)[kind]
    if len(paths) < n + 50:
        raise SystemExit(f"{kind}: the store has {len(paths)} targets, {n + 50} needed")
    port = _free_port()
    env = dict(os.environ, GRUNNDATA_DB=store, GRUNNDATA_SEARCH_CACHE_MB="0", GRUNNDATA_WARM="0")
    env["PYTHONHASHSEED"] = "0"
    env["GRUNNDATA_SEARCH_INDEX"] = "1" if index else "0"
    env["GRUNNDATA_LOG_FORMAT"] = "off"
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    with tempfile.TemporaryDirectory() as tmp:
        headers = _auth(auth, Path(tmp), env, port)
        log = Path(tmp) / "callgrind.log"
        server = subprocess.Popen(
            [
                "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={tmp}/out",
                f"--log-file={log}", sys.executable, "-m", "uvicorn", FACTORIES[app], "--factory",
                "--app-dir", str(tree / "benchmarks" if tree else HERE), "--port", str(port), "--log-level", "warning",
                "--loop", "uvloop", "--http", "httptools", "--no-access-log",
            ],
            env=env,
            cwd=tree or HERE.parent,  # `python -m` puts the working folder first on sys.path
        )  # fmt: skip
        try:
            conn = _connect(port)

            def run(some: list[str]) -> None:
                for path in some:
                    conn.request("GET", path, headers={"Accept": "application/fhir+json", **headers(path)})
                    answer = conn.getresponse()
                    answer.read()
                    if answer.status != 200:
                        raise SystemExit(f"{path}: {answer.status}")

            run(paths[n:])  # warm-up: imports, caches, the first connection
            if index and kind in ("varenr", "name", "prefix", "atc"):
                _index_answering(conn, paths[n:], headers)  # its build started at the first search
            if cached:
                run(paths[:n])
            subprocess.run(
                ["callgrind_control", "-i", "on", str(server.pid)], check=True, capture_output=True
            )
            run(paths[:n])
            subprocess.run(
                ["callgrind_control", "-i", "off", str(server.pid)], check=True, capture_output=True
            )
        finally:
            server.terminate()
            server.wait(timeout=120)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / "out").replace(keep / f"{kind}-{app}.out")
        found = re.search(r"Collected : (\d+)", log.read_text())
        if found is None:
            raise SystemExit(f"callgrind reported no count: {log.read_text()[-500:]}")
        return int(found.group(1)), n


def _index_answering(
    conn: http.client.HTTPConnection, paths: list[str], headers: Callable[[str], dict[str, str]]
) -> None:
    """Wait (not counted) until the server's search index answers searches: its metric moves."""
    deadline = time.monotonic() + 1800  # a build of ~1 s takes a minute or two under valgrind
    while time.monotonic() < deadline:
        conn.request("GET", paths[0], headers={"Accept": "application/fhir+json", **headers(paths[0])})
        conn.getresponse().read()
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        answered = re.search(r'grunndata_search_index_answers_total\{result="index"\} ([0-9.e+]+)', text)
        if answered and float(answered.group(1)) > 0:
            return
        time.sleep(2)
    raise SystemExit("the search index did not answer within 30 minutes")


def _auth(auth: str, folder: Path, env: dict[str, str], port: int) -> Callable[[str], dict[str, str]]:
    """The headers each request carries, as `auth` says; the server's token settings into `env`."""
    if auth == "none":
        return lambda path: {}
    import auth_bench

    jwks, tokens, clients = auth_bench._keys(folder)
    env.update(
        GRUNNDATA_JWKS=str(jwks),
        GRUNNDATA_TOKEN_ISSUER=auth_bench.ISSUER,
        GRUNNDATA_TOKEN_AUDIENCE=auth_bench.AUDIENCE,
    )
    if auth == "bearer":
        return lambda path: {"Authorization": f"Bearer {tokens['RS256']}"}
    client = clients[auth.removeprefix("dpop-").upper()]
    return lambda path: {
        "Authorization": f"DPoP {client.token}",
        "DPoP": client.proof("GET", f"http://127.0.0.1:{port}{path}"),
    }


def _connect(port: int) -> http.client.HTTPConnection:
    deadline = time.monotonic() + 600  # under valgrind the app takes a minute or more to start
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            conn.request("GET", "/health")
            conn.getresponse().read()
            return conn
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True, help="a store URL with an imported delivery")
    ap.add_argument("--only", nargs="+", default=["varenr", "name", "atc", "read"], help="target kinds")
    ap.add_argument("-n", type=int, default=200, help="requests counted per kind")
    ap.add_argument(
        "--auth", nargs="+", default=["none"], choices=AUTH, help="how the client reads (each counted apart)"
    )
    ap.add_argument("--cached", action="store_true", help="count requests asked once before (answers kept)")
    ap.add_argument("--tree", type=Path, help="serve this checkout's grunndata instead of the installed one")
    ap.add_argument(
        "--index",
        nargs="+",
        default=["on"],
        choices=("on", "off"),
        help="with the in-memory search index, without (GRUNNDATA_SEARCH_INDEX=0), or both (each counted)",
    )
    ap.add_argument(
        "--app", nargs="+", default=["ours"], choices=tuple(FACTORIES), help="whose server (bare: reads only)"
    )
    ap.add_argument("--keep", type=Path, help="keep each callgrind output in this folder")
    args = ap.parse_args()
    print(
        "| kind | app | auth | search index | requests | instructions | per request | code |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for kind in args.only:
        for app in args.app:
            for auth in args.auth:
                for index in args.index:
                    total, n = count(
                        args.store, kind, args.n, args.tree, auth, args.cached, index == "on", app, args.keep
                    )
                    label = f"{kind} (asked before)" if args.cached else kind
                    print(
                        f"| {label} | {app} | {auth} | {index} | {n} | {total:,} | {total // n:,} "
                        f"| {args.tree or 'installed'} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
