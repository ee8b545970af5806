"""The JWKS: read from a file or fetched over HTTPS, its signing keys, reloaded when a token names
a key not in it (at most once a minute, so an identity provider that is down does not hold every request)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ec import (
    SECP256R1,
    EllipticCurvePrivateKey,
    EllipticCurvePublicKey,
)
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.exceptions import PyJWTError

from grunndata.server.auth.errors import AuthError, ConfigError, unauthorized
from grunndata.server.auth.settings import ENV_JWKS, AuthSettings

log = logging.getLogger("grunndata.server.auth")

MIN_RSA_BITS = 2048
JWKS_TIMEOUT = 5.0  # seconds for one JWKS fetch
JWKS_REFETCH_INTERVAL = 60.0  # seconds between two loads of the JWKS (after the first)

PublicKey = RSAPublicKey | EllipticCurvePublicKey


@dataclass(frozen=True)
class Key:
    kid: str | None
    alg: str  # RS256 or ES256
    public: PublicKey = field(repr=False)


class JwksProblem(Exception):
    """Why a JWKS cannot be used (worded to follow "the JWKS ...: ")."""


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise JwksProblem("the file does not exist") from None
    except OSError as error:
        raise JwksProblem(f"the file cannot be read ({error.strerror})") from None


def parse_jwks(raw: bytes) -> tuple[Key, ...]:
    """The usable signing keys of a JWKS document; keys of other types or uses are skipped."""
    try:
        document = json.loads(raw)
    except ValueError:
        raise JwksProblem("it is not a JWKS (not JSON)") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksProblem('it is not a JWKS (no "keys" list)') from None
    keys = tuple(key for key in map(_signing_key, document["keys"]) if key is not None)
    if not keys:
        raise JwksProblem(f"the JWKS holds no RSA ({MIN_RSA_BITS} bits or more) or EC P-256 signing key")
    return keys


def _signing_key(jwk: object) -> Key | None:
    """One JWK as an RS256 or ES256 verification key, or None when it cannot be one."""
    if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
        return None
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        return None
    if jwk.get("kty") == "RSA":
        alg = "RS256"
    elif jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        alg = "ES256"
    else:
        return None
    if jwk.get("alg", alg) != alg:
        return None
    try:  # untrusted input to a third-party parser: any of these means "not a usable key"
        loaded = RSAAlgorithm.from_jwk(jwk) if alg == "RS256" else ECAlgorithm.from_jwk(jwk)
    except (PyJWTError, ValueError, TypeError, KeyError, AttributeError):
        return None
    public = loaded.public_key() if isinstance(loaded, RSAPrivateKey | EllipticCurvePrivateKey) else loaded
    if isinstance(public, RSAPublicKey) and public.key_size < MIN_RSA_BITS:
        return None
    if isinstance(public, EllipticCurvePublicKey) and not isinstance(public.curve, SECP256R1):
        return None
    return Key(kid, alg, public)


class KeySet:
    """The JWKS keys, reloaded (at most once per interval) when a token names a kid not in them."""

    def __init__(self, settings: AuthSettings, clock: Callable[[], float], interval: float) -> None:
        assert settings.jwks is not None
        self._source, self._url = settings.jwks, settings.jwks_url
        self._clock, self._interval = clock, interval
        self._lock = threading.Lock()
        self._keys: tuple[Key, ...] | None = None
        self._loaded_at: float | None = None  # when the last load was tried, successful or not
        self._failure: str | None = None  # why the last load failed
        if self._url is None:  # a file: read now, so a broken one stops the server from starting
            try:
                self._keys = parse_jwks(read_file(Path(self._source)))
            except JwksProblem as problem:
                raise ConfigError(f"{ENV_JWKS} {self._source}: {problem}") from None
            self._loaded_at = clock()

    def find(self, kid: str | None, alg: str) -> Key:
        with self._lock:
            if self._keys is None:
                self._load_if_due()
            key = self._match(kid, alg)
            if key is None and kid is not None and self._load_if_due():
                key = self._match(kid, alg)
            if key is not None:
                return key
            if kid is None:
                raise unauthorized(
                    f"the token names no key (kid) and this server's JWKS has no single {alg} key to use"
                )
            if self._failure is not None:
                raise self._unavailable()
            raise unauthorized(f"the token's key {kid!r} is not in this server's JWKS")

    def _match(self, kid: str | None, alg: str) -> Key | None:
        keys = [key for key in self._keys or () if key.alg == alg]
        if kid is None:
            return keys[0] if len(keys) == 1 else None
        named = [key for key in self._keys or () if key.kid == kid]
        if named and not any(key.alg == alg for key in named):
            raise unauthorized(f"the token's key {kid!r} is not a key for {alg}")
        return next((key for key in keys if key.kid == kid), None)

    def _load_if_due(self) -> bool:
        """Load the JWKS unless the last try was less than an interval ago; True when loaded."""
        now = self._clock()
        if self._loaded_at is not None and now - self._loaded_at < self._interval:
            if self._keys is None:
                raise self._unavailable()
            return False
        self._loaded_at = now
        try:
            self._keys = parse_jwks(self._fetch())
        except JwksProblem as problem:
            self._failure = str(problem)
            log.warning("could not load the JWKS %s: %s", self._source, problem)
            if self._keys is None:
                raise self._unavailable() from None
            return False
        self._failure = None
        return True

    def _fetch(self) -> bytes:
        if self._url is None:
            return read_file(Path(self._source))
        try:
            response = httpx.get(self._url, timeout=JWKS_TIMEOUT, headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise JwksProblem(f"the server did not answer ({type(error).__name__})") from None
        if response.status_code != 200:
            raise JwksProblem(f"the server answered HTTP {response.status_code}")
        return response.content

    def _unavailable(self) -> AuthError:
        return AuthError(
            status=503,
            message="this server cannot check tokens now: its key set (JWKS) could not be loaded; try again in a minute",
        )
