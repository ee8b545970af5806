"""What a bearer token costs a read: the same reads with no token, an RS256 and an ES256 token.

    python benchmarks/auth_bench.py [--runs 3] [--clients 16] [--duration 10] [--write]

Imports the real 2017 extract plus a sector owner's data into a fresh SQLite store, serves it with
uvicorn (the settings of api_bench.py) and a JWKS holding one RSA and one EC key, and reads every
national package by id, and the sector data by search, as each kind of client. Runs are
interleaved so all see the same machine; figures are medians. A token is verified once and then
remembered until it expires, so the steady cost is a dictionary lookup plus the entitlement check.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
REAL_FEST = HERE.parents[1] / "shared" / "data" / "fest-real" / "fest-mini-2017.xml.gz"
sys.path.insert(0, str(HERE))

from api_bench import UVICORN  # noqa: E402
from import_bench import machine  # noqa: E402
from loadgen import free_port, measure, wait_for_port  # noqa: E402

ISSUER, AUDIENCE = "https://helseid-sts.test.nhn.no", "grunndata-api"
NOTES = "varenr;merknad\n" + "".join(f"{v};note {i}\n" for i, v in enumerate(["014884", "023608", "098098"]))


def _store(folder: Path) -> tuple[str, list[str]]:
    db = f"sqlite:///{folder / 'store.db'}"
    subprocess.run(
        [sys.executable, "-m", "grunndata.cli", "import", "fest", str(REAL_FEST), "--db", db],
        check=True,
        capture_output=True,
    )
    notes = folder / "notes.csv"
    notes.write_text(NOTES)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grunndata.cli",
            "import",
            "sector",
            str(notes),
            "--owner",
            "sykehusapotek",
            "--db",
            db,
        ],
        check=True,
        capture_output=True,
    )
    import sqlite3

    with sqlite3.connect(folder / "store.db") as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM resource WHERE type = 'PackagedProductDefinition' ORDER BY id"
            )
        ]
    return db, [f"/fhir/PackagedProductDefinition/{i}" for i in ids]


def _keys(folder: Path) -> tuple[Path, dict[str, str]]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {
        "keys": [
            {
                **RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True),
                "kid": "r",
                "use": "sig",
                "alg": "RS256",
            },
            {
                **ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True),
                "kid": "e",
                "use": "sig",
                "alg": "ES256",
            },
        ]
    }
    path = folder / "jwks.json"
    path.write_text(json.dumps(jwks))
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "bench",
        "exp": int(time.time()) + 7200,
        "scope": ["grunndata:sector.read"],
    }
    tokens = {
        "RS256": jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "r"}),
        "ES256": jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "e"}),
    }
    return path, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="grunndata-auth-bench-") as tmp:
        folder = Path(tmp)
        db, reads = _store(folder)
        jwks, tokens = _keys(folder)
        port = free_port()
        env = {
            **os.environ,
            "GRUNNDATA_DB": db,
            "GRUNNDATA_JWKS": str(jwks),
            "GRUNNDATA_TOKEN_ISSUER": ISSUER,
            "GRUNNDATA_TOKEN_AUDIENCE": AUDIENCE,
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api_bench:create_ours",
                "--factory",
                "--app-dir",
                str(HERE),
                *UVICORN.split(),
                "--port",
                str(port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, proc=server)
            url = f"http://127.0.0.1:{port}"
            sector = ["/fhir/Basic?_tag=https://grunndata.no/fhir/CodeSystem/tier|sector"]
            cases = {
                "read by id, no token": (reads, ()),
                "read by id, RS256 token": (reads, (f"Authorization: Bearer {tokens['RS256']}",)),
                "read by id, ES256 token": (reads, (f"Authorization: Bearer {tokens['ES256']}",)),
                "sector search (cached), RS256 token": (
                    sector,
                    (f"Authorization: Bearer {tokens['RS256']}",),
                ),
            }
            seen: dict[str, list[tuple[float, float, int]]] = {k: [] for k in cases}
            for _ in range(args.runs):
                for name, (paths, headers) in cases.items():
                    r = measure(
                        url,
                        paths,
                        concurrency=args.clients,
                        duration=args.duration,
                        warmup=1.0,
                        headers=headers,
                    )
                    seen[name].append((r.rps, r.p99, r.errors))
        finally:
            server.terminate()
            server.wait(10)
    base = statistics.median(x[0] for x in seen["read by id, no token"])
    lines = [
        f"### Auth overhead, {datetime.now(UTC):%Y-%m-%d} ({machine()})",
        "",
        f"`python benchmarks/auth_bench.py --runs {args.runs} --clients {args.clients} --duration {args.duration:g}`; "
        "real 2017 extract + 3 sector notes, SQLite, medians.",
        "",
        f"| scenario ({args.clients} clients) | req/s | × no token | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for name, runs in seen.items():
        rps = statistics.median(x[0] for x in runs)
        p99 = statistics.median(x[1] for x in runs)
        lines.append(f"| {name} | {rps:,.0f} | {rps / base:.2f} | {p99:.2f} | {sum(x[2] for x in runs)} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.write:
        with RESULTS.open("a") as out:
            out.write("\n" + table)


if __name__ == "__main__":
    main()
