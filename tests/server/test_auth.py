"""Bearer tokens as HelseID issues them, and what each scope lets a client read and import."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from grunndata.errors import GrunndataError
from grunndata.server import auth
from grunndata.server.auth import (
    ANONYMOUS,
    DEV_EVERYTHING,
    EVERYTHING,
    Access,
    Authenticator,
    AuthError,
    AuthSettings,
    ConfigError,
    dev_mode_banner,
)
from grunndata.store.models import TIERS

ISSUER = "https://helseid-sts.test.nhn.no"
AUDIENCE = "grunndata-api"
NOW = 1_750_000_000.0
ALL_SCOPES = [
    "grunndata:sector.read",
    "grunndata:supplementary.read:sykehusapotek-vest",
    "grunndata:import:sector:sykehusapotek-vest",
]


class Clock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Keys:
    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    other_rsa_key: rsa.RSAPrivateKey  # a key the server does not know
    jwks: dict[str, Any] = field(default_factory=dict)


def jwk(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    public = private.public_key()
    data = (
        RSAAlgorithm.to_jwk(public, as_dict=True)
        if isinstance(public, rsa.RSAPublicKey)
        else ECAlgorithm.to_jwk(public, as_dict=True)
    )
    return {**data, "kid": kid, "use": "sig"}


@pytest.fixture(scope="module")
def keys() -> Keys:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Keys(rsa_key, ec_key, other, {"keys": [jwk(rsa_key, "rsa-1"), jwk(ec_key, "ec-1")]})


@pytest.fixture
def jwks_file(tmp_path: Path, keys: Keys) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(keys.jwks))
    return path


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The authenticator's clock, and PyJWT's: it reads the time for exp, nbf and iat itself."""
    clock = Clock()

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:
            return datetime.fromtimestamp(clock.now, tz)

    monkeypatch.setattr(jwt.api_jwt, "datetime", Frozen)
    return clock


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The RS256 signatures PyJWT checks from now on (the signed parts of each)."""
    checks: list[bytes] = []
    verify = RSAAlgorithm.verify

    def counting(self: RSAAlgorithm, msg: bytes, key: Any, sig: bytes) -> bool:
        checks.append(msg)
        return verify(self, msg, key, sig)

    monkeypatch.setattr(RSAAlgorithm, "verify", counting)
    return checks


@pytest.fixture
def authenticator(jwks_file: Path, clock: Clock) -> Authenticator:
    settings = AuthSettings(jwks=str(jwks_file), issuer=ISSUER, audience=AUDIENCE)
    return Authenticator(settings, clock=clock)


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "epj-vendor-1",
        "iat": int(NOW) - 10,
        "nbf": int(NOW) - 10,
        "exp": int(NOW) + 600,
        "scope": ["grunndata:sector.read"],
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def sign(
    keys: Keys, payload: dict[str, Any] | None = None, *, alg: str = "RS256", kid: str | None = "rsa-1"
) -> str:
    key = keys.ec_key if alg == "ES256" else keys.rsa_key
    headers = {} if kid is None else {"kid": kid}
    return jwt.encode(claims() if payload is None else payload, key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def refused(authenticator: Authenticator, header: str | None) -> tuple[int, str]:
    with pytest.raises(AuthError) as caught:
        authenticator.access(header)
    return caught.value.status, caught.value.message


# --- tokens that are accepted ---------------------------------------------------------------------


def test_a_request_without_a_token_reads_national_data_only(authenticator: Authenticator) -> None:
    access = authenticator.access(None)
    assert access == ANONYMOUS
    assert access.can_read("national", "dmp") is True
    assert access.can_read("sector", "sykehusapotek-vest") is False
    assert access.can_read("supplementary", "sykehusapotek-vest") is False
    assert access.can_import("national", "dmp") is False


def test_a_good_rs256_token_grants_its_scopes(authenticator: Authenticator, keys: Keys) -> None:
    token = sign(keys, claims(scope=ALL_SCOPES))
    assert authenticator.access(f"Bearer {token}") == Access(
        subject="epj-vendor-1",
        sector=True,
        supplementary=frozenset({"sykehusapotek-vest"}),
        import_owners=frozenset({"sector:sykehusapotek-vest"}),
    )


def test_a_good_es256_token_grants_its_scopes(authenticator: Authenticator, keys: Keys) -> None:
    token = sign(keys, alg="ES256", kid="ec-1")
    assert authenticator.access(f"Bearer {token}") == Access(subject="epj-vendor-1", sector=True)


def test_the_scheme_is_case_insensitive(authenticator: Authenticator, keys: Keys) -> None:
    assert authenticator.access(f"bearer {sign(keys)}").sector is True


def test_scopes_as_a_space_separated_string_or_a_list_grant_the_same(
    authenticator: Authenticator, keys: Keys
) -> None:
    as_string = authenticator.access("Bearer " + sign(keys, claims(scope=" ".join(ALL_SCOPES))))
    as_list = authenticator.access("Bearer " + sign(keys, claims(scope=ALL_SCOPES)))
    assert as_string == as_list
    assert as_string.key == "ns:sykehusapotek-vest"


def test_a_token_without_scopes_reads_national_data_only(authenticator: Authenticator, keys: Keys) -> None:
    access = authenticator.access("Bearer " + sign(keys, claims(scope=None, sub=None, client_id="pll")))
    assert access == Access(subject="pll")
    assert access.key == "n"


def test_a_token_without_kid_uses_the_only_key_of_its_type(authenticator: Authenticator, keys: Keys) -> None:
    assert authenticator.access("Bearer " + sign(keys, kid=None)).sector is True
    assert authenticator.access("Bearer " + sign(keys, alg="ES256", kid=None)).sector is True


def test_a_verified_token_is_checked_once_until_it_expires(
    authenticator: Authenticator, keys: Keys, clock: Clock, signature_checks: list[bytes]
) -> None:
    checks = signature_checks
    header = "Bearer " + sign(keys, claims(exp=int(NOW) + 100))
    for _ in range(5):
        authenticator.access(header)
    assert len(checks) == 1
    clock.now = NOW + 100 + 60  # exp plus the clock skew
    assert refused(authenticator, header) == (401, "the token has expired")


def test_the_cache_is_bounded_and_forgets_the_least_recently_used(
    jwks_file: Path, keys: Keys, clock: Clock, signature_checks: list[bytes]
) -> None:
    checks = signature_checks
    settings = AuthSettings(jwks=str(jwks_file), issuer=ISSUER, audience=AUDIENCE)
    small = Authenticator(settings, clock=clock, cache_size=2)
    first, second, third = ("Bearer " + sign(keys, claims(sub=f"client-{n}")) for n in range(3))
    for header in (first, second, first, third):  # third pushes out second, the least recently used
        small.access(header)
    assert len(checks) == 3
    small.access(first)
    assert len(checks) == 3
    small.access(second)
    assert len(checks) == 4


# --- what each scope grants -----------------------------------------------------------------------

OWNER, OTHER = "sykehusapotek-vest", "vendor-x"
CASES = [  # (tier, owner) in this order for the expected tuples below
    ("national", "dmp"),
    ("sector", OWNER),
    ("sector", OTHER),
    ("supplementary", OWNER),
    ("supplementary", OTHER),
]


@pytest.mark.parametrize(
    ("scope", "reads", "imports"),
    [
        ("grunndata:sector.read", (1, 1, 1, 0, 0), (0, 0, 0, 0, 0)),
        (f"grunndata:supplementary.read:{OWNER}", (1, 0, 0, 1, 0), (0, 0, 0, 0, 0)),
        ("grunndata:supplementary.read:*", (1, 0, 0, 1, 1), (0, 0, 0, 0, 0)),
        ("grunndata:import", (1, 0, 0, 0, 0), (1, 1, 1, 1, 1)),
        (f"grunndata:import:sector:{OWNER}", (1, 0, 0, 0, 0), (0, 1, 0, 0, 0)),
        (f"grunndata:import:supplementary:{OWNER}", (1, 0, 0, 0, 0), (0, 0, 0, 1, 0)),
        (f"grunndata:import:{OWNER}", (1, 0, 0, 0, 0), (0, 0, 0, 0, 0)),  # no tier: grants nothing
        ("grunndata:import:sector:*", (1, 0, 0, 0, 0), (0, 0, 0, 0, 0)),  # no wildcard for imports
        ("grunndata:sector.write", (1, 0, 0, 0, 0), (0, 0, 0, 0, 0)),  # unknown: ignored
        ("grunndata:supplementary.read:Sykehusapotek", (1, 0, 0, 0, 0), (0, 0, 0, 0, 0)),  # bad owner
        ("grunndata:import:sector:-leading-dash", (1, 0, 0, 0, 0), (0, 0, 0, 0, 0)),
        ("grunndata:import:sector:" + "a" * 64, (1, 0, 0, 0, 0), (0, 0, 0, 0, 0)),  # owner ids are <= 63
        ("grunndata:import:sector:" + "a" * 63, (1, 0, 0, 0, 0), (0, 0, 0, 0, 0)),  # valid, not these owners
        (f"grunndata:import:sector:{OWNER}\n", (1, 0, 0, 0, 0), (0, 0, 0, 0, 0)),
    ],
)
def test_each_scope_grants_exactly_its_reads_and_imports(
    scope: str, reads: tuple[int, ...], imports: tuple[int, ...]
) -> None:
    access = Access.from_scopes([scope])
    assert tuple(int(access.can_read(tier, owner)) for tier, owner in CASES) == reads
    assert tuple(int(access.can_import(tier, owner)) for tier, owner in CASES) == imports


def test_a_scope_in_a_token_has_its_effect(authenticator: Authenticator, keys: Keys) -> None:
    header = "Bearer " + sign(keys, claims(scope="grunndata:supplementary.read:* grunndata:import"))
    access = authenticator.access(header)
    assert access == Access(subject="epj-vendor-1", supplementary=frozenset({"*"}), import_all=True)
    assert access.can_read("supplementary", OTHER) is True
    assert access.can_read("sector", OWNER) is False
    assert access.can_import("national", "dmp") is True


def test_everything_reads_and_imports_everything() -> None:
    for tier, owner in CASES:
        assert EVERYTHING.can_read(tier, owner) is True
        assert EVERYTHING.can_import(tier, owner) is True
    assert EVERYTHING.dev is False
    assert replace(EVERYTHING, dev=True) == DEV_EVERYTHING


def test_an_unknown_tier_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown tier 'nationl'"):
        ANONYMOUS.can_read("nationl", "dmp")


def test_the_tiers_are_the_stores() -> None:
    assert (auth.NATIONAL, auth.SECTOR, auth.SUPPLEMENTARY) == TIERS


def test_the_cache_key_names_the_read_entitlement_only() -> None:
    assert ANONYMOUS.key == "n"
    assert EVERYTHING.key == "ns:*"
    assert DEV_EVERYTHING.key == "ns:*"
    assert Access(supplementary=frozenset({"b-owner", "a-owner"})).key == "n:a-owner,b-owner"
    assert Access(subject="x", import_all=True, sector=True).key == "ns"
    many = frozenset(f"owner-{n:02d}" for n in range(20))
    digest = hashlib.sha256(",".join(sorted(many)).encode()).hexdigest()[:16]
    assert Access(supplementary=many).key == f"n:#{digest}"


def test_the_403_sentence_names_the_missing_scope() -> None:
    client = Access(subject="epj-vendor-1")
    assert client.scopes_missing_message("sector", OWNER) == "this needs the scope grunndata:sector.read"
    assert (
        client.scopes_missing_message("supplementary", OWNER)
        == "this needs the scope grunndata:supplementary.read:sykehusapotek-vest"
    )
    assert (
        client.scopes_missing_message("national", "dmp", "import") == "this needs the scope grunndata:import"
    )
    assert (
        client.scopes_missing_message("sector", OWNER, "import")
        == "this needs the scope grunndata:import:sector:sykehusapotek-vest"
    )
    assert (
        ANONYMOUS.scopes_missing_message("sector", OWNER)
        == "this needs a bearer token with the scope grunndata:sector.read"
    )
    with pytest.raises(ValueError, match="national data is open"):
        client.scopes_missing_message("national", "dmp")


# --- tokens that are refused ----------------------------------------------------------------------


def test_an_expired_token_is_refused(authenticator: Authenticator, keys: Keys) -> None:
    token = sign(keys, claims(exp=int(NOW) - 61, iat=int(NOW) - 700, nbf=None))
    assert refused(authenticator, f"Bearer {token}") == (401, "the token has expired")


def test_a_token_without_exp_is_refused(authenticator: Authenticator, keys: Keys) -> None:
    token = sign(keys, claims(exp=None))
    assert refused(authenticator, f"Bearer {token}") == (
        401,
        "the token has no expiry (exp), which this service requires",
    )


def test_a_token_not_yet_valid_is_refused(authenticator: Authenticator, keys: Keys) -> None:
    token = sign(keys, claims(nbf=int(NOW) + 61, iat=None))
    assert refused(authenticator, f"Bearer {token}") == (401, "the token is not valid yet (nbf)")


def test_a_token_issued_in_the_future_is_refused(authenticator: Authenticator, keys: Keys) -> None:
    token = sign(keys, claims(iat=int(NOW) + 61, nbf=None))
    assert refused(authenticator, f"Bearer {token}") == (401, "the token was issued in the future (iat)")


def test_times_within_the_clock_skew_are_accepted(authenticator: Authenticator, keys: Keys) -> None:
    token = sign(keys, claims(exp=int(NOW) - 59, nbf=int(NOW) + 59, iat=int(NOW) + 59))
    assert authenticator.access(f"Bearer {token}").sector is True


def test_the_clock_skew_is_the_configured_one(jwks_file: Path, keys: Keys, clock: Clock) -> None:
    settings = AuthSettings(jwks=str(jwks_file), issuer=ISSUER, audience=AUDIENCE, clock_skew=0)
    strict = Authenticator(settings, clock=clock)
    token = sign(keys, claims(exp=int(NOW)))
    assert refused(strict, f"Bearer {token}") == (401, "the token has expired")
    token = sign(keys, claims(nbf=int(NOW) + 1))
    assert refused(strict, f"Bearer {token}") == (401, "the token is not valid yet (nbf)")


def test_a_time_that_is_not_a_number_is_malformed(authenticator: Authenticator, keys: Keys) -> None:
    token = sign(keys, claims(exp="tomorrow"))
    assert refused(authenticator, f"Bearer {token}") == (
        401,
        "the token is malformed (its exp is not a number of seconds)",
    )


def test_a_token_from_another_issuer_is_refused(authenticator: Authenticator, keys: Keys) -> None:
    token = sign(keys, claims(iss="https://evil.example"))
    assert refused(authenticator, f"Bearer {token}") == (
        401,
        "the token was not issued by https://helseid-sts.test.nhn.no",
    )
    token = sign(keys, claims(iss=None))
    assert refused(authenticator, f"Bearer {token}") == (
        401,
        "the token was not issued by https://helseid-sts.test.nhn.no",
    )


def test_a_token_for_another_service_is_refused(authenticator: Authenticator, keys: Keys) -> None:
    for aud in ("another-api", ["another-api", "third-api"], None, [["grunndata-api"]]):
        token = sign(keys, claims(aud=aud))
        assert refused(authenticator, f"Bearer {token}") == (
            401,
            "the token is not for this service (audience)",
        )


def test_an_audience_list_that_holds_ours_is_accepted(authenticator: Authenticator, keys: Keys) -> None:
    token = sign(keys, claims(aud=["kjernejournal", AUDIENCE]))
    assert authenticator.access(f"Bearer {token}").sector is True


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_an_unsigned_token_is_never_accepted(authenticator: Authenticator, alg: str) -> None:
    header = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": "rsa-1"}).encode())
    payload = b64(json.dumps(claims(scope=ALL_SCOPES)).encode())
    assert refused(authenticator, f"Bearer {header}.{payload}.") == (
        401,
        "the token uses the algorithm none, which is never accepted",
    )


def test_hs256_with_the_rsa_public_key_as_secret_is_refused(authenticator: Authenticator, keys: Keys) -> None:
    """The classic confusion attack: the public key, known to all, used as an HMAC secret."""
    secret = keys.rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    payload = b64(json.dumps(claims(scope=ALL_SCOPES)).encode())
    signature = b64(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    assert refused(authenticator, f"Bearer {header}.{payload}.{signature}") == (
        401,
        "the token uses the algorithm HS256, which this service does not accept (only RS256, PS256 and ES256)",
    )


def test_other_asymmetric_algorithms_are_refused(authenticator: Authenticator, keys: Keys) -> None:
    token = jwt.encode(claims(), keys.rsa_key, algorithm="RS512", headers={"kid": "rsa-1"})
    assert refused(authenticator, f"Bearer {token}") == (
        401,
        "the token uses the algorithm RS512, which this service does not accept (only RS256, PS256 and ES256)",
    )


def test_a_token_signed_by_another_key_with_our_kid_is_refused(
    authenticator: Authenticator, keys: Keys
) -> None:
    token = jwt.encode(
        claims(scope=ALL_SCOPES), keys.other_rsa_key, algorithm="RS256", headers={"kid": "rsa-1"}
    )
    assert refused(authenticator, f"Bearer {token}") == (401, "the token's signature does not verify")


@pytest.mark.parametrize(("alg", "kid"), [("RS256", "rsa-1"), ("ES256", "ec-1")])
def test_a_tampered_payload_is_refused(authenticator: Authenticator, keys: Keys, alg: str, kid: str) -> None:
    header, _, signature = sign(keys, alg=alg, kid=kid).split(".")
    payload = b64(json.dumps(claims(scope=ALL_SCOPES)).encode())
    assert refused(authenticator, f"Bearer {header}.{payload}.{signature}") == (
        401,
        "the token's signature does not verify",
    )


def test_a_truncated_signature_is_refused(authenticator: Authenticator, keys: Keys) -> None:
    token = sign(keys, alg="ES256", kid="ec-1")
    assert refused(authenticator, f"Bearer {token[:-8]}") == (401, "the token's signature does not verify")


def test_a_token_whose_kid_names_a_key_of_another_type_is_refused(
    authenticator: Authenticator, keys: Keys
) -> None:
    token = sign(keys, kid="ec-1")  # RS256 naming the EC key
    assert refused(authenticator, f"Bearer {token}") == (401, "the token's key 'ec-1' is not a key for RS256")


def test_a_token_with_an_unknown_kid_is_refused(authenticator: Authenticator, keys: Keys) -> None:
    token = sign(keys, kid="rsa-2")
    assert refused(authenticator, f"Bearer {token}") == (
        401,
        "the token's key 'rsa-2' is not in this server's JWKS",
    )


def test_a_token_without_kid_needs_a_single_key_of_its_type(tmp_path: Path, keys: Keys, clock: Clock) -> None:
    path = tmp_path / "two-rsa.json"
    path.write_text(json.dumps({"keys": [jwk(keys.rsa_key, "rsa-1"), jwk(keys.other_rsa_key, "rsa-2")]}))
    two = Authenticator(AuthSettings(jwks=str(path), issuer=ISSUER, audience=AUDIENCE), clock=clock)
    assert refused(two, "Bearer " + sign(keys, kid=None)) == (
        401,
        "the token names no key (kid) and this server's JWKS has no single RS256 key to use",
    )
    assert two.access("Bearer " + sign(keys, kid="rsa-1")).sector is True


def test_critical_header_extensions_are_refused(authenticator: Authenticator, keys: Keys) -> None:
    token = jwt.encode(claims(), keys.rsa_key, algorithm="RS256", headers={"kid": "rsa-1", "crit": ["exp"]})
    assert refused(authenticator, f"Bearer {token}") == (
        401,
        "the token has critical header parameters (crit) this service does not understand",
    )


def test_malformed_tokens_are_refused_with_what_is_wrong(authenticator: Authenticator, keys: Keys) -> None:
    header, payload, signature = sign(keys).split(".")
    not_json = b64(b"{not json")
    list_payload = jwt.api_jws.encode(b"[1, 2]", keys.rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    signed_not_json = jwt.api_jws.encode(
        b"{not json", keys.rsa_key, algorithm="RS256", headers={"kid": "rsa-1"}
    )
    cases = {
        f"{header}.{payload}": "the token is malformed (a JWT has three parts separated by dots)",
        f"{header}.{payload}.{signature}.x": "the token is malformed (a JWT has three parts separated by dots)",
        f"{header}!.{payload}.{signature}": "the token is malformed (its header is not base64url)",
        f"{header}.{payload}%.{signature}": "the token is malformed (its payload is not base64url)",
        f"e.{payload}.{signature}": "the token is malformed (its header is not base64url)",  # 1 char over
        f"{header}.{payload}.{signature}+": "the token's signature does not verify",
        f"{not_json}.{payload}.{signature}": "the token is malformed (its header is not a JSON object)",
        f"{header}.{not_json}.{signature}": "the token's signature does not verify",  # read only once signed
        signed_not_json: "the token is malformed (its payload is not a JSON object)",
        list_payload: "the token is malformed (its payload is not a JSON object)",
        f"{b64(b'{}')}.{payload}.{signature}": "the token is malformed (its header names no algorithm)",
        "x" * 8_186: "the Authorization header is too long (more than 8192 characters)",  # with "Bearer "
    }
    for token, message in cases.items():
        assert refused(authenticator, f"Bearer {token}") == (401, message), token


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Basic dXNlcjpwYXNz", "the Authorization header is not a bearer (or DPoP) token"),
        ("", "the Authorization header is not a bearer (or DPoP) token"),
        ("Bearer", "the Authorization header must be Bearer followed by one token"),
        ("Bearer a.b.c d", "the Authorization header must be Bearer followed by one token"),
    ],
)
def test_an_authorization_header_that_is_not_a_bearer_token_is_refused(
    authenticator: Authenticator, header: str, message: str
) -> None:
    assert refused(authenticator, header) == (401, message)


def test_a_401_carries_a_bearer_challenge() -> None:
    error = AuthError(status=401, message='the token was not issued by "x"')
    assert error.www_authenticate == (
        'Bearer realm="grunndata", error="invalid_token", error_description="the token was not issued by \'x\'"'
    )
    assert AuthError(status=503, message="down").www_authenticate is None
    assert isinstance(error, GrunndataError)
    assert str(error) == 'the token was not issued by "x"'


def test_a_401_challenge_holds_no_line_break_whatever_the_token_said(authenticator: Authenticator) -> None:
    header = b64(json.dumps({"alg": "RS256\r\nSet-Cookie: a=b", "typ": "JWT"}).encode())
    status, message = refused(authenticator, f"Bearer {header}.e30.e30")
    assert (status, message) == (
        401,
        "the token uses the algorithm RS256\r\nSet-Cookie: a=b, which this service does not accept (only RS256, PS256 and ES256)",
    )
    assert AuthError(status, message).www_authenticate == (
        'Bearer realm="grunndata", error="invalid_token", error_description="the token uses the algorithm '
        'RS256??Set-Cookie: a=b, which this service does not accept (only RS256, PS256 and ES256)"'
    )


def test_a_server_without_jwks_refuses_tokens(keys: Keys) -> None:
    plain = Authenticator(AuthSettings())
    assert plain.access(None) == ANONYMOUS
    assert refused(plain, "Bearer " + sign(keys)) == (
        401,
        "this server does not accept tokens: no JWKS configured",
    )


# --- hostile and odd tokens: a 401 with a sentence, never a 500 ------------------------------------

DEEP = b"[" * 2500 + b"]" * 2500  # past Python's recursion limit, within the header's 8 KB


def sign_raw(keys: Keys, header: bytes, payload: bytes) -> str:
    """A token whose header and payload are these bytes exactly, signed RS256 with our key."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(signing_input.encode(), keys.rsa_key)
    return f"{signing_input}.{b64(signature)}"


RS256_HEADER = b'{"alg":"RS256","typ":"JWT","kid":"rsa-1"}'
NONE_HEADER = b'{"alg":"none","typ":"JWT"}'


def unsigned(header: bytes, payload: bytes, signature: bytes = b"") -> str:
    return ".".join(b64(part) for part in (header, payload, signature))


def test_deeply_nested_json_is_refused_and_never_read_before_the_signature(
    authenticator: Authenticator, keys: Keys
) -> None:
    good = json.dumps(claims()).encode()
    cases = {
        "unsigned, nested header": (
            unsigned(b'{"alg":"none","x":' + DEEP + b"}", good),
            "the token is malformed (its header is not a JSON object)",
        ),
        "unsigned, nested payload": (
            unsigned(NONE_HEADER, b'{"x":' + DEEP + b"}"),
            "the token uses the algorithm none, which is never accepted",
        ),
        "a forged signature, nested payload": (
            unsigned(RS256_HEADER, b'{"x":' + DEEP + b"}", b"forged"),
            "the token's signature does not verify",
        ),
        "signed, nested header": (
            sign_raw(keys, b'{"alg":"RS256","typ":"JWT","kid":"rsa-1","x":' + DEEP + b"}", good),
            "the token is malformed (its header is not a JSON object)",
        ),
        "signed, nested payload": (
            sign_raw(keys, RS256_HEADER, b'{"x":' + DEEP + b"}"),
            "the token is malformed (its payload is not a JSON object)",
        ),
    }
    for name, (token, message) in cases.items():
        assert refused(authenticator, f"Bearer {token}") == (401, message), name


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize(
    "value",
    [10**400, -(10**400), float("inf"), -1, 253_402_300_800],
    ids=["400 digits", "minus 400 digits", "infinity", "before 1970", "after 9999"],
)
def test_a_time_no_clock_can_show_is_refused(
    authenticator: Authenticator, keys: Keys, name: str, value: float
) -> None:
    token = sign(keys, claims(**{name: value}))
    assert refused(authenticator, f"Bearer {token}") == (
        401,
        f"the token is malformed (its {name} is not a time from 1970 to 9999)",
    )


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", [str(int(NOW)), True, False, [int(NOW)], {"seconds": int(NOW)}])
def test_a_time_that_is_not_a_json_number_is_refused(
    authenticator: Authenticator, keys: Keys, name: str, value: object
) -> None:
    """PyJWT reads times with int(), which would take "1750000000" and true; we do not."""
    token = sign(keys, claims(**{name: value}))
    assert refused(authenticator, f"Bearer {token}") == (
        401,
        f"the token is malformed (its {name} is not a number of seconds)",
    )


def test_a_time_with_a_fraction_is_a_time(authenticator: Authenticator, keys: Keys, clock: Clock) -> None:
    """RFC 7519 NumericDate may have a fraction; it expires, with the clock skew, like any other."""
    header = "Bearer " + sign(keys, claims(exp=NOW + 600.5, iat=NOW - 0.25))
    assert authenticator.access(header).sector is True
    clock.now = NOW + 660.5
    assert refused(authenticator, header) == (401, "the token has expired")


def test_the_authorization_header_is_refused_unread_above_8192_characters(
    authenticator: Authenticator,
) -> None:
    longest = "Bearer " + "x" * (8192 - len("Bearer "))
    assert refused(authenticator, longest) == (
        401,
        "the token is malformed (a JWT has three parts separated by dots)",
    )
    for header in (longest + "x", "Bearer " + "a.b.c" * 10_000, " " * 8193):
        assert refused(authenticator, header) == (
            401,
            "the Authorization header is too long (more than 8192 characters)",
        )
        assert authenticator.known(header) is None


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("æøå.e30.e30", "the token is malformed (its header is not base64url)"),
        (f"{b64(RS256_HEADER)}.e30=x.e30", "the token is malformed (its payload is not base64url)"),
        (f"{b64(RS256_HEADER)}.e30.a b", "the Authorization header must be Bearer followed by one token"),
        (f"{b64(RS256_HEADER)}..", "the token's signature does not verify"),
        ("..", "the token is malformed (its header is not a JSON object)"),
        (
            unsigned(b'{"alg":"RS256","kid":5}', b"{}", b"{}"),
            "the token is malformed (its kid is not a string)",
        ),
        (
            unsigned(b'{"alg":["RS256"]}', b"{}", b"{}"),
            "the token is malformed (its header names no algorithm)",
        ),
        (unsigned(b'"RS256"', b"{}", b"{}"), "the token is malformed (its header is not a JSON object)"),
    ],
)
def test_tokens_that_are_not_base64url_json_are_refused(
    authenticator: Authenticator, token: str, message: str
) -> None:
    assert refused(authenticator, f"Bearer {token}") == (401, message)


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT", "JWT", "jwt"])
def test_an_access_token_says_at_jwt_or_jwt(authenticator: Authenticator, keys: Keys, typ: str) -> None:
    token = jwt.encode(claims(), keys.rsa_key, algorithm="RS256", headers={"kid": "rsa-1", "typ": typ})
    assert authenticator.access(f"Bearer {token}").sector is True


@pytest.mark.parametrize(
    ("typ", "message"),
    [
        (None, "the token is not an access token (it has no typ; at+jwt or JWT is expected)"),
        ("dpop+jwt", "the token is not an access token (its typ is 'dpop+jwt', not at+jwt or JWT)"),
        ("JOSE", "the token is not an access token (its typ is 'JOSE', not at+jwt or JWT)"),
        (["at+jwt"], "the token is not an access token (its typ is ['at+jwt'], not at+jwt or JWT)"),
    ],
)
def test_a_token_of_another_type_or_none_is_refused(
    authenticator: Authenticator, keys: Keys, typ: object, message: str
) -> None:
    token = jwt.encode(claims(), keys.rsa_key, algorithm="RS256", headers={"kid": "rsa-1", "typ": typ})
    assert refused(authenticator, f"Bearer {token}") == (401, message)


def test_ps256_is_accepted_with_a_key_published_for_it(tmp_path: Path, keys: Keys, clock: Clock) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(
        json.dumps({"keys": [jwk(keys.rsa_key, "rsa-1"), {**jwk(keys.rsa_key, "ps-1"), "alg": "PS256"}]})
    )
    authenticator = Authenticator(AuthSettings(jwks=str(path), issuer=ISSUER, audience=AUDIENCE), clock=clock)
    token = jwt.encode(claims(), keys.rsa_key, algorithm="PS256", headers={"kid": "ps-1"})
    assert authenticator.access(f"Bearer {token}").sector is True
    token = jwt.encode(claims(), keys.rsa_key, algorithm="PS256", headers={"kid": "rsa-1"})  # a key for RS256
    assert refused(authenticator, f"Bearer {token}") == (
        401,
        "the token's key 'rsa-1' is not a key for PS256",
    )
    token = jwt.encode(claims(), keys.rsa_key, algorithm="RS256", headers={"kid": "ps-1"})
    assert refused(authenticator, f"Bearer {token}") == (401, "the token's key 'ps-1' is not a key for RS256")


def test_claims_of_the_wrong_type_are_refused(authenticator: Authenticator, keys: Keys) -> None:
    cases = {
        "sub": (42, "the token is malformed (its sub is not a string)"),
        "jti": (["a"], "the token is malformed (its jti is not a string)"),
        "iss": ([ISSUER], f"the token was not issued by {ISSUER}"),
        "aud": ({AUDIENCE: True}, "the token is not for this service (audience)"),
    }
    for name, (value, message) in cases.items():
        token = sign_raw(keys, RS256_HEADER, json.dumps(claims(**{name: value})).encode())
        assert refused(authenticator, f"Bearer {token}") == (401, message), name


def test_scopes_of_the_wrong_type_grant_nothing(authenticator: Authenticator, keys: Keys) -> None:
    for scope in (42, {"grunndata:sector.read": True}, [["grunndata:sector.read"]], None):
        access = authenticator.access("Bearer " + sign(keys, claims(scope=scope)))
        assert access == Access(subject="epj-vendor-1"), scope


def test_every_mangling_of_a_good_token_is_a_401(authenticator: Authenticator, keys: Keys) -> None:
    """Each character of a good token replaced, dropped or doubled, and random bytes in each part."""
    good = sign(keys, alg="ES256", kid="ec-1")
    manglings = {good[:i] + c + good[i + 1 :] for i in range(len(good)) for c in "A_.=\x00"}
    manglings |= {good[:i] + good[i + 1 :] for i in range(len(good))}
    manglings |= {good[:i] + good[i] + good[i:] for i in range(len(good))}
    rng = random.Random(18)
    parts = good.split(".")
    for _ in range(300):
        noisy = rng.randrange(3)
        noise = b64(rng.randbytes(rng.randrange(0, 200)))
        manglings.add(".".join(noise if n == noisy else part for n, part in enumerate(parts)))
    for token in manglings - {good}:
        status, message = refused(authenticator, f"Bearer {token}")
        assert status == 401 and message.startswith(("the token", "the Authorization")), (token, message)
        assert AuthError(status, message).www_authenticate.isprintable(), token  # type: ignore[union-attr]


# --- development mode -----------------------------------------------------------------------------


def test_dev_mode_without_a_token_reads_everything(keys: Keys) -> None:
    dev = Authenticator(AuthSettings(dev=True))
    assert dev.access(None) == Access(
        sector=True, supplementary=frozenset({"*"}), import_all=True, subscribe=True, dev=True
    )
    assert dev.access("Bearer " + sign(keys)) == DEV_EVERYTHING
    assert refused(dev, "Basic dXNlcjpwYXNz") == (
        401,
        "the Authorization header is not a bearer (or DPoP) token",
    )


def test_dev_mode_with_a_jwks_still_checks_tokens(jwks_file: Path, keys: Keys, clock: Clock) -> None:
    settings = AuthSettings(jwks=str(jwks_file), issuer=ISSUER, audience=AUDIENCE, dev=True)
    dev = Authenticator(settings, clock=clock)
    assert dev.access(None) == DEV_EVERYTHING
    assert dev.access("Bearer " + sign(keys)) == Access(subject="epj-vendor-1", sector=True)
    token = sign(keys, claims(aud="another-api"))
    assert refused(dev, f"Bearer {token}") == (401, "the token is not for this service (audience)")


def test_the_dev_banner_is_loud() -> None:
    banner = dev_mode_banner()
    assert banner.startswith("WARNING: DEVELOPMENT AUTH MODE (GRUNNDATA_DEV_AUTH=1).")
    assert "ALL tiers" in banner


# --- a JWKS served over HTTP ----------------------------------------------------------------------


@dataclass
class JwksServer:
    url: str
    document: dict[str, Any]
    status: int = 200
    requests: int = 0


@pytest.fixture
def jwks_server(keys: Keys) -> Iterator[JwksServer]:
    """A JWKS on a local http.server in a thread; tests change `document` and `status` as it runs."""
    served = JwksServer(url="", document={"keys": [jwk(keys.rsa_key, "rsa-1")]})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests += 1
            body = json.dumps(served.document).encode()
            self.send_response(served.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/openid-configuration/jwks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def over_http(url: str, clock: Clock) -> Authenticator:
    return Authenticator(AuthSettings(jwks=url, issuer=ISSUER, audience=AUDIENCE), clock=clock)


def test_a_jwks_url_is_fetched_once_and_refetched_for_a_new_kid(
    jwks_server: JwksServer, keys: Keys, clock: Clock
) -> None:
    authenticator = over_http(jwks_server.url, clock)
    assert jwks_server.requests == 0  # fetched on the first token, not at start
    assert authenticator.access("Bearer " + sign(keys)).sector is True
    assert authenticator.access("Bearer " + sign(keys, claims(sub="other"))).sector is True
    assert jwks_server.requests == 1

    clock.now += 61  # the identity provider rotates in a new key
    jwks_server.document = {"keys": [jwk(keys.rsa_key, "rsa-1"), jwk(keys.ec_key, "ec-1")]}
    assert authenticator.access("Bearer " + sign(keys, alg="ES256", kid="ec-1")).sector is True
    assert jwks_server.requests == 2


def test_refetching_for_unknown_kids_is_rate_limited(
    jwks_server: JwksServer, keys: Keys, clock: Clock
) -> None:
    authenticator = over_http(jwks_server.url, clock)
    authenticator.access("Bearer " + sign(keys))
    assert jwks_server.requests == 1

    clock.now += 61
    token = "Bearer " + sign(keys, kid="rsa-9")
    assert refused(authenticator, token) == (401, "the token's key 'rsa-9' is not in this server's JWKS")
    assert jwks_server.requests == 2  # one refetch for the unknown kid
    for _ in range(5):
        assert refused(authenticator, token) == (401, "the token's key 'rsa-9' is not in this server's JWKS")
    clock.now += 59
    assert refused(authenticator, token)[0] == 401
    assert jwks_server.requests == 2  # none within the minute

    clock.now += 2
    jwks_server.document = {"keys": [jwk(keys.rsa_key, "rsa-1"), jwk(keys.other_rsa_key, "rsa-9")]}
    token = "Bearer " + jwt.encode(claims(), keys.other_rsa_key, algorithm="RS256", headers={"kid": "rsa-9"})
    assert authenticator.access(token).sector is True
    assert jwks_server.requests == 3


UNAVAILABLE = (
    503,
    "this server cannot check tokens now: its key set (JWKS) could not be loaded; try again in a minute",
)


def test_a_jwks_url_that_is_down_gives_503_and_is_retried_after_a_minute(
    jwks_server: JwksServer, keys: Keys, clock: Clock
) -> None:
    jwks_server.status = 500
    authenticator = over_http(jwks_server.url, clock)
    token = "Bearer " + sign(keys)
    assert refused(authenticator, token) == UNAVAILABLE
    assert refused(authenticator, token) == UNAVAILABLE
    assert jwks_server.requests == 1  # the failure is remembered, not retried on every request

    jwks_server.status = 200
    clock.now += 60
    assert authenticator.access(token).sector is True
    assert jwks_server.requests == 2


def test_a_jwks_url_nobody_answers_gives_503(keys: Keys, clock: Clock) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    authenticator = over_http(f"http://127.0.0.1:{port}/jwks", clock)
    assert refused(authenticator, "Bearer " + sign(keys)) == UNAVAILABLE


def test_a_jwks_url_that_serves_no_jwks_gives_503(jwks_server: JwksServer, keys: Keys, clock: Clock) -> None:
    jwks_server.document = {"issuer": ISSUER}
    assert refused(over_http(jwks_server.url, clock), "Bearer " + sign(keys)) == UNAVAILABLE


def test_a_failed_refetch_for_a_new_kid_gives_503_but_known_keys_keep_working(
    jwks_server: JwksServer, keys: Keys, clock: Clock
) -> None:
    authenticator = over_http(jwks_server.url, clock)
    authenticator.access("Bearer " + sign(keys))
    clock.now += 61
    jwks_server.status = 502
    assert refused(authenticator, "Bearer " + sign(keys, kid="rsa-9")) == UNAVAILABLE
    assert authenticator.access("Bearer " + sign(keys, claims(sub="fresh"))).sector is True
    assert jwks_server.requests == 2


# --- settings -------------------------------------------------------------------------------------


def test_settings_come_from_the_environment(jwks_file: Path) -> None:
    settings = AuthSettings.from_env(
        {
            "GRUNNDATA_JWKS": str(jwks_file),
            "GRUNNDATA_TOKEN_ISSUER": ISSUER,
            "GRUNNDATA_TOKEN_AUDIENCE": AUDIENCE,
            "GRUNNDATA_CLOCK_SKEW": "120",
            "GRUNNDATA_DEV_AUTH": "1",
        }
    )
    assert settings == AuthSettings(str(jwks_file), ISSUER, AUDIENCE, 120, True)
    assert AuthSettings.from_env({}) == AuthSettings(None, None, None, 60, False)
    assert AuthSettings.from_env({"GRUNNDATA_DEV_AUTH": "0", "GRUNNDATA_JWKS": ""}) == AuthSettings()
    url = AuthSettings.from_env(
        {
            "GRUNNDATA_JWKS": "https://helseid-sts.nhn.no/.well-known/openid-configuration/jwks",
            "GRUNNDATA_TOKEN_ISSUER": ISSUER,
            "GRUNNDATA_TOKEN_AUDIENCE": AUDIENCE,
        }
    )
    assert url.jwks_url == "https://helseid-sts.nhn.no/.well-known/openid-configuration/jwks"


def test_a_jwks_file_with_private_keys_is_used_for_its_public_halves(
    tmp_path: Path, keys: Keys, clock: Clock
) -> None:
    private = {**RSAAlgorithm.to_jwk(keys.rsa_key, as_dict=True), "kid": "rsa-1"}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [private]}))
    authenticator = Authenticator(AuthSettings(jwks=str(path), issuer=ISSUER, audience=AUDIENCE), clock=clock)
    assert authenticator.access("Bearer " + sign(keys)).sector is True


def bad_settings(tmp_path: Path, keys: Keys) -> list[tuple[dict[str, str], str]]:
    tidy = {"GRUNNDATA_TOKEN_ISSUER": ISSUER, "GRUNNDATA_TOKEN_AUDIENCE": AUDIENCE}
    not_json = tmp_path / "not-json.json"
    not_json.write_text("<html>")
    no_keys = tmp_path / "no-keys.json"
    no_keys.write_text(json.dumps({"issuer": ISSUER}))
    unusable = tmp_path / "unusable.json"
    small_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    p384 = ec.generate_private_key(ec.SECP384R1())
    unusable.write_text(
        json.dumps(
            {
                "keys": [
                    {"kty": "oct", "k": b64(b"secret"), "kid": "hmac"},
                    jwk(small_rsa, "small"),
                    jwk(p384, "p384"),
                    {**jwk(keys.rsa_key, "enc"), "use": "enc"},
                    {**jwk(keys.rsa_key, "rs512"), "alg": "RS512"},
                    {"kty": "RSA", "n": "!!", "e": "AQAB", "kid": "broken"},
                ]
            }
        )
    )
    missing = tmp_path / "missing.json"
    return [
        (
            {"GRUNNDATA_CLOCK_SKEW": "abc"},
            "GRUNNDATA_CLOCK_SKEW must be a whole number of seconds from 0 to 300, not 'abc'",
        ),
        (
            {"GRUNNDATA_CLOCK_SKEW": "301"},
            "GRUNNDATA_CLOCK_SKEW must be a whole number of seconds from 0 to 300, not '301'",
        ),
        (
            {"GRUNNDATA_CLOCK_SKEW": "-5"},
            "GRUNNDATA_CLOCK_SKEW must be a whole number of seconds from 0 to 300, not '-5'",
        ),
        ({"GRUNNDATA_DEV_AUTH": "yes"}, "GRUNNDATA_DEV_AUTH must be 1 (development mode) or 0, not 'yes'"),
        (
            {"GRUNNDATA_JWKS": str(missing), **tidy},
            f"GRUNNDATA_JWKS {missing}: the file does not exist",
        ),
        (
            {"GRUNNDATA_JWKS": str(tmp_path), **tidy},
            f"GRUNNDATA_JWKS {tmp_path}: the file cannot be read (Is a directory)",
        ),
        (
            {"GRUNNDATA_JWKS": str(not_json), **tidy},
            f"GRUNNDATA_JWKS {not_json}: it is not a JWKS (not JSON)",
        ),
        (
            {"GRUNNDATA_JWKS": str(no_keys), **tidy},
            f'GRUNNDATA_JWKS {no_keys}: it is not a JWKS (no "keys" list)',
        ),
        (
            {"GRUNNDATA_JWKS": str(unusable), **tidy},
            f"GRUNNDATA_JWKS {unusable}: the JWKS holds no RSA (2048 bits or more) or EC P-256 signing key",
        ),
        (
            {"GRUNNDATA_JWKS": "https://helseid.example/jwks", "GRUNNDATA_TOKEN_ISSUER": ISSUER},
            "GRUNNDATA_JWKS is set but GRUNNDATA_TOKEN_AUDIENCE is not: without it a token issued for any other service would be accepted",
        ),
        (
            {"GRUNNDATA_JWKS": "https://helseid.example/jwks", "GRUNNDATA_TOKEN_AUDIENCE": AUDIENCE},
            "GRUNNDATA_JWKS is set but GRUNNDATA_TOKEN_ISSUER is not: tokens are checked against their issuer",
        ),
        (
            {"GRUNNDATA_TOKEN_ISSUER": ISSUER},
            "GRUNNDATA_TOKEN_ISSUER is set but GRUNNDATA_JWKS is not, so no token could be verified",
        ),
        (
            {"GRUNNDATA_TOKEN_AUDIENCE": AUDIENCE},
            "GRUNNDATA_TOKEN_AUDIENCE is set but GRUNNDATA_JWKS is not, so no token could be verified",
        ),
        (
            {"GRUNNDATA_JWKS": "http://helseid.example/jwks", **tidy},
            "GRUNNDATA_JWKS must be a file path or an https URL (http only on localhost), not 'http://helseid.example/jwks'",
        ),
        (
            {"GRUNNDATA_JWKS": "ftp://localhost/jwks", **tidy},
            "GRUNNDATA_JWKS must be a file path or an https URL (http only on localhost), not 'ftp://localhost/jwks'",
        ),
    ]


def test_bad_settings_are_refused_with_one_sentence(tmp_path: Path, keys: Keys) -> None:
    for environ, message in bad_settings(tmp_path, keys):
        with pytest.raises(ConfigError) as caught:
            AuthSettings.from_env(environ)
        assert str(caught.value) == message
        assert isinstance(caught.value, GrunndataError)


def test_settings_made_in_code_are_checked_too(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="GRUNNDATA_CLOCK_SKEW must be a whole number of seconds from 0 to 300"
    ):
        AuthSettings(clock_skew=301)
    with pytest.raises(ConfigError, match="the file does not exist"):
        AuthSettings(jwks=str(tmp_path / "gone.json"), issuer=ISSUER, audience=AUDIENCE)


def test_a_jwks_file_broken_after_start_gives_503_for_new_kids(
    jwks_file: Path, keys: Keys, clock: Clock
) -> None:
    authenticator = Authenticator(
        AuthSettings(jwks=str(jwks_file), issuer=ISSUER, audience=AUDIENCE), clock=clock
    )
    jwks_file.write_text("{")
    clock.now += 61
    assert refused(authenticator, "Bearer " + sign(keys, kid="rsa-9")) == UNAVAILABLE
    assert authenticator.access("Bearer " + sign(keys)).sector is True  # the keys read at start still hold
