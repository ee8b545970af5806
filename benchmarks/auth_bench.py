"""What a token costs a read: the same reads with no token, an RS256 and an ES256 bearer token, and
a DPoP-bound token with a fresh proof per request (the client's key EC P-256 or RSA).

    python benchmarks/auth_bench.py [--runs 3] [--clients 16] [--duration 10] [--write]
    python benchmarks/auth_bench.py --steps    # where a DPoP proof's check spends its time

Imports the real 2017 extract plus a sector owner's data into a fresh SQLite store, serves it with
uvicorn (the settings of api_bench.py) and a JWKS holding one RSA and one EC key, and reads every
national package by id, and the sector data by search, as each kind of client. Runs are
interleaved so all see the same machine; figures are medians. A token is verified once and then
remembered until it expires, so the steady cost is a dictionary lookup plus the entitlement check.
A DPoP proof is checked on every request (its signature above all); the proofs are made before
each run, one per request, so the load generator only sends them.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
REAL_FEST = HERE.parents[1] / "shared" / "data" / "fest-real" / "fest-mini-2017.xml.gz"
sys.path.insert(0, str(HERE))

from api_bench import UVICORN  # noqa: E402
from import_bench import machine  # noqa: E402
from loadgen import _request_bytes, free_port, measure, wait_for_port  # noqa: E402

from grunndata.server.auth import thumbprint  # noqa: E402

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


class Client:
    """A DPoP client: its own key, and a token bound to it."""

    def __init__(self, alg: str, token: Any) -> None:
        self.alg = alg
        if alg == "ES256":
            self.key: Any = ec.generate_private_key(ec.SECP256R1())
            self.jwk = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.token: str = token(thumbprint(self.jwk))
        self.ath = (
            base64.urlsafe_b64encode(hashlib.sha256(self.token.encode()).digest()).rstrip(b"=").decode()
        )

    def proof(self, method: str, url: str) -> str:
        claims = {
            "jti": uuid.uuid4().hex,
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
            "ath": self.ath,
        }
        return jwt.encode(claims, self.key, algorithm=self.alg, headers={"typ": "dpop+jwt", "jwk": self.jwk})

    def requests(self, host: str, paths: list[str], count: int) -> list[bytes]:
        """`count` reads, round the paths, each with its own proof."""
        out = []
        for i in range(count):
            path = paths[i % len(paths)]
            headers = (
                f"Authorization: DPoP {self.token}",
                f"DPoP: {self.proof('GET', f'http://{host}{path}')}",
            )
            out.extend(_request_bytes(host, [path], headers))
        return out


def _keys(folder: Path) -> tuple[Path, dict[str, str], dict[str, Client]]:
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

    def bound(jkt: str) -> str:
        return jwt.encode({**claims, "cnf": {"jkt": jkt}}, rsa_key, algorithm="RS256", headers={"kid": "r"})

    return path, tokens, {alg: Client(alg, bound) for alg in ("ES256", "RS256")}


def _per_call(call: Any, args: list[Any], batches: int = 5) -> float:
    """Microseconds per call: the fastest of `batches` passes over `args` (the least disturbed on a
    shared machine)."""
    size = len(args) // batches
    best = float("inf")
    for b in range(batches):
        part = args[b * size : (b + 1) * size]
        start = time.perf_counter()
        for a in part:
            call(a)
        best = min(best, (time.perf_counter() - start) / len(part))
    return best * 1e6


def _proof_steps(auth: Any, client: Client, url: str, n: int) -> list[str]:
    from grunndata.server.auth import ProofRequest, dpop

    alg = client.alg
    proofs = [client.proof("GET", url) for _ in range(n)]
    header = jwt.get_unverified_header(proofs[0])
    key, _, _ = dpop._key_of(proofs[0])
    algorithm = jwt.get_algorithm_by_name(alg)
    signed = [p.rpartition(".") for p in proofs]
    signatures = [(m.encode(), base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))) for m, _, sig in signed]
    authorization = f"DPoP {client.token}"
    auth.access(authorization, ProofRequest("GET", url, (client.proof("GET", url),)))  # the token is known
    whole = _per_call(lambda p: auth.known(authorization, ProofRequest("GET", url, (p,))), proofs)
    jwk = [header["jwk"]] * n
    return [
        f"| **{alg} proof, whole check (`known`: token known, proof checked, jti kept)** | **{whole:.1f}** |",
        f"| {alg}: the header read (PyJWT), first proof of a client only | {_per_call(jwt.get_unverified_header, proofs):.1f} |",
        f"| {alg}: the jwk's thumbprint (RFC 7638), first proof only | {_per_call(dpop.thumbprint, jwk):.1f} |",
        f"| {alg}: the jwk as a key (PyJWK), first proof only | {_per_call(lambda j: jwt.PyJWK(j, algorithm=alg), jwk):.1f} |",
        f"| {alg}: PyJWT's decode (signature and claims) | {_per_call(lambda p: dpop._DECODER.decode(p, key, algorithms=[alg], options=dpop._OPTIONS), proofs):.1f} |",
        f"| {alg}: of which the three parts' base64url check | {_per_call(lambda p: [jwt.PyJWS._decode_base64url_segment(s.encode(), 'x') for s in p.split('.')], proofs):.1f} |",
        f"| {alg}: of which the signature (cryptography) | {_per_call(lambda ms: algorithm.verify(ms[0], key.key, ms[1]), signatures):.1f} |",
        f"| {alg}: ath (SHA-256 of the token) | {_per_call(dpop.token_hash, [client.token] * n):.1f} |",
        f"| {alg}: htu compared | {_per_call(lambda u: dpop.same_url(u, url), [url] * n):.1f} |",
    ]


def steps(n: int = 5000) -> str:
    """Where a DPoP proof's check spends its time, step by step, in this process (no server)."""
    from grunndata.server.auth import Authenticator, AuthSettings

    with tempfile.TemporaryDirectory(prefix="grunndata-auth-steps-") as tmp:
        jwks, tokens, clients = _keys(Path(tmp))
        auth = Authenticator(AuthSettings(jwks=str(jwks), issuer=ISSUER, audience=AUDIENCE))
        url = "http://127.0.0.1:8000/fhir/PackagedProductDefinition/CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A"
        bearer = f"Bearer {tokens['RS256']}"
        auth.access(bearer)
        rows = [
            f"| cached RS256 bearer token, whole check (`known`) | {_per_call(auth.known, [bearer] * n):.1f} |"
        ]
        for client in clients.values():
            rows += _proof_steps(auth, client, url, n)
    return "\n".join(["| step | µs per call |", "|---|---|", *rows]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    ap.add_argument("--steps", action="store_true", help="time a DPoP proof's check step by step, no server")
    args = ap.parse_args()
    if args.steps:
        print(steps())
        return
    with tempfile.TemporaryDirectory(prefix="grunndata-auth-bench-") as tmp:
        folder = Path(tmp)
        db, reads = _store(folder)
        jwks, tokens, clients = _keys(folder)
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
            dpop = {f"read by id, DPoP token, {alg} proof per request": c for alg, c in clients.items()}
            seen: dict[str, list[tuple[float, float, int]]] = {k: [] for k in [*cases, *dpop]}
            fastest = 0.0
            rates: dict[str, float] = {}
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
                    fastest = max(fastest, r.rps)
                for name, client in dpop.items():
                    # a proof per request the run may send: the first time at 0.6 of the fastest
                    # rate seen, then at twice the last rate seen (a proof sent twice would be a
                    # 401, counted as an error, and the figure not taken)
                    rate = 2 * rates[name] if name in rates else 0.6 * fastest
                    count = int(rate * (args.duration + 1.0)) + 2000
                    requests = client.requests(f"127.0.0.1:{port}", reads, count)
                    r = measure(
                        url,
                        [],
                        concurrency=args.clients,
                        duration=args.duration,
                        warmup=1.0,
                        max_duration=args.duration,
                        requests=requests,
                    )
                    seen[name].append((r.rps, r.p99, r.errors))
                    rates[name] = r.rps
        finally:
            server.terminate()
            server.wait(10)
    base = statistics.median(x[0] for x in seen["read by id, no token"])
    bearer = statistics.median(x[0] for x in seen["read by id, RS256 token"])
    lines = [
        f"### Auth overhead, {datetime.now(UTC):%Y-%m-%d} ({machine()})",
        "",
        f"`python benchmarks/auth_bench.py --runs {args.runs} --clients {args.clients} --duration {args.duration:g}`; "
        "real 2017 extract + 3 sector notes, SQLite, medians.",
        "",
        f"| scenario ({args.clients} clients) | req/s | × no token | × RS256 bearer | p99 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in seen.items():
        rps = statistics.median(x[0] for x in runs)
        p99 = statistics.median(x[1] for x in runs)
        lines.append(
            f"| {name} | {rps:,.0f} | {rps / base:.2f} | {rps / bearer:.2f} | {p99:.2f} | {sum(x[2] for x in runs)} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    if args.write:
        with RESULTS.open("a") as out:
            out.write("\n" + table)


if __name__ == "__main__":
    main()
