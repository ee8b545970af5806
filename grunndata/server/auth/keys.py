"""The JWKS: read from a file or fetched by PyJWT's `PyJWKClient`, parsed by `PyJWKSet`, reloaded when
a token names a key not in it (at most once a minute, so an identity provider that is down does not
hold every request).

PyJWT parses the keys; what is ours is which of them we trust (signing keys for the accepted
algorithms, RSA of 2048 bits or more, EC on P-256) and when to load them again. PyJWKClient's own
cache is not used: it expires keys on a timer of its own, so an identity provider that is down would
take the keys we already hold with it, and it cannot be given our clock.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.error import HTTPError

from cryptography.hazmat.primitives.asymmetric.ec import (
    SECP256R1,
    EllipticCurvePrivateKey,
    EllipticCurvePublicKey,
)
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt import PyJWK, PyJWKClient, PyJWKSet
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError, PyJWKSetError

from grunndata.server.auth.errors import AuthError, ConfigError, unauthorized
from grunndata.server.auth.settings import ENV_JWKS, AuthSettings

log = logging.getLogger("grunndata.server.auth")

ALGORITHMS = ("RS256", "PS256", "ES256")  # what HelseID signs with; never none or HS*
MIN_RSA_BITS = 2048
JWKS_TIMEOUT = 5.0  # seconds for one JWKS fetch
JWKS_REFETCH_INTERVAL = 60.0  # seconds between two loads of the JWKS (after the first)


class JwksProblem(Exception):
    """Why a JWKS cannot be used (worded to follow "the JWKS ...: ")."""


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise JwksProblem("the file does not exist") from None
    except OSError as error:
        raise JwksProblem(f"the file cannot be read ({error.strerror})") from None


def parse_jwks(raw: bytes) -> tuple[PyJWK, ...]:
    """The usable signing keys of a JWKS file's bytes."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        raise JwksProblem("it is not a JWKS (not JSON)") from None
    return signing_keys(document)


def signing_keys(document: object) -> tuple[PyJWK, ...]:
    """The keys of a JWKS document we verify tokens with; keys of other types, uses or algorithms,
    short RSA keys and keys PyJWT cannot read are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksProblem('it is not a JWKS (no "keys" list)')
    # an `alg` outside ours never reaches PyJWK ("none" would raise there rather than be skipped)
    candidates = [
        jwk
        for jwk in document["keys"]
        if isinstance(jwk, dict) and jwk.get("alg", ALGORITHMS[0]) in ALGORITHMS
    ]
    try:
        parsed = PyJWKSet(candidates).keys
    except PyJWKSetError:
        parsed = []
    keys = tuple(key for key in map(usable_key, parsed) if key is not None)
    if not keys:
        raise JwksProblem(f"the JWKS holds no RSA ({MIN_RSA_BITS} bits or more) or EC P-256 signing key")
    return keys


def usable_key(key: PyJWK) -> PyJWK | None:
    """The key as a verification key (a private key's public half), or None when we do not use it."""
    if key.public_key_use not in (None, "sig") or key.algorithm_name not in ALGORITHMS:
        return None
    if key.key_id is not None and not isinstance(key.key_id, str):
        return None
    if isinstance(key.key, RSAPrivateKey | EllipticCurvePrivateKey):
        key.key = key.key.public_key()
    if isinstance(key.key, RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
        return None
    if isinstance(key.key, EllipticCurvePublicKey) and not isinstance(key.key.curve, SECP256R1):
        return None
    return key


class KeySet:
    """The JWKS keys, reloaded (at most once per interval) when a token names a kid not in them."""

    def __init__(self, settings: AuthSettings, clock: Callable[[], float], interval: float) -> None:
        assert settings.jwks is not None
        self._source, url = settings.jwks, settings.jwks_url
        self._client = (
            None
            if url is None
            else PyJWKClient(
                url,
                cache_jwk_set=False,  # we keep the keys (see the module's docstring)
                timeout=JWKS_TIMEOUT,
                headers={"Accept": "application/json", "User-Agent": "grunndata"},
            )
        )
        self._clock, self._interval = clock, interval
        self._lock = threading.Lock()
        self._keys: tuple[PyJWK, ...] | None = None
        self._loaded_at: float | None = None  # when the last load was tried, successful or not
        self._failure: str | None = None  # why the last load failed
        if self._client is None:  # a file: read now, so a broken one stops the server from starting
            try:
                self._keys = self._fetch()
            except JwksProblem as problem:
                raise ConfigError(f"{ENV_JWKS} {self._source}: {problem}") from None
            self._loaded_at = clock()

    def find(self, kid: str | None, alg: str) -> PyJWK:
        """The key a token with this kid and alg is verified with (its algorithm is `alg`)."""
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

    def _match(self, kid: str | None, alg: str) -> PyJWK | None:
        keys = [key for key in self._keys or () if key.algorithm_name == alg]
        if kid is None:
            return keys[0] if len(keys) == 1 else None
        named = [key for key in self._keys or () if key.key_id == kid]
        if named and not any(key.algorithm_name == alg for key in named):
            raise unauthorized(f"the token's key {kid!r} is not a key for {alg}")
        return next((key for key in keys if key.key_id == kid), None)

    def _load_if_due(self) -> bool:
        """Load the JWKS unless the last try was less than an interval ago; True when loaded."""
        now = self._clock()
        if self._loaded_at is not None and now - self._loaded_at < self._interval:
            if self._keys is None:
                raise self._unavailable()
            return False
        self._loaded_at = now
        try:
            self._keys = self._fetch()
        except JwksProblem as problem:
            self._failure = str(problem)
            log.warning("could not load the JWKS %s: %s", self._source, problem)
            if self._keys is None:
                raise self._unavailable() from None
            return False
        self._failure = None
        return True

    def _fetch(self) -> tuple[PyJWK, ...]:
        """The keys of the JWKS file, or of the JWKS at the URL (fetched by PyJWKClient)."""
        if self._client is None:
            return parse_jwks(read_file(Path(self._source)))
        try:
            document = self._client.fetch_data()
        except PyJWKClientConnectionError as error:
            cause = error.__cause__
            if isinstance(cause, HTTPError):
                raise JwksProblem(f"the server answered HTTP {cause.code}") from None
            raise JwksProblem(f"the server did not answer ({type(cause or error).__name__})") from None
        except PyJWKClientError:
            raise JwksProblem("it is not a JWKS (not a JSON object)") from None
        except (ValueError, RecursionError):  # json.load inside fetch_data
            raise JwksProblem("it is not a JWKS (not JSON)") from None
        except OSError as error:  # a connection dropped while the body was read
            raise JwksProblem(f"the server did not answer ({type(error).__name__})") from None
        return signing_keys(document)

    def _unavailable(self) -> AuthError:
        return AuthError(
            status=503,
            message="this server cannot check tokens now: its key set (JWKS) could not be loaded; try again in a minute",
        )
