"""Who may read and import what: bearer tokens (HelseID JWTs) checked and turned into an `Access`.

National data is open; sector data needs a scope; supplementary data is entitled per owner. A
request without an Authorization header is anonymous and reads national data only. A request with
one must carry a valid token, or it is refused with 401: a bad token is never quietly downgraded
to anonymous, so a client with a broken setup hears about it.

Scopes (in the token's ``scope`` claim: a space-separated string, or a JSON list as HelseID
issues it; unknown scopes are ignored, and so is a scope naming a malformed owner id):

=========================================  ====================================================
scope                                      grants
=========================================  ====================================================
``grunndata:sector.read``                  read the sector tier (all owners)
``grunndata:supplementary.read:<owner>``   read the supplementary data of that owner
``grunndata:supplementary.read:*``         read the supplementary data of every owner
``grunndata:import``                       every import, the national tier included
``grunndata:import:sector:<owner>``        import that owner's sector data
``grunndata:import:supplementary:<owner>`` import that owner's supplementary data
=========================================  ====================================================

The tier is in the import scope: an owner entitled to publish supplementary data cannot put it
in the sector tier, where every sector reader would see it.

An owner id matches ``^[a-z0-9][a-z0-9-]{0,62}$``.

Token checks: RS256 or ES256 only (``none`` and HS* are refused before any key is looked at, so
an RSA public key can never be used as an HMAC secret); the key is chosen by ``kid`` from the
JWKS (a token without ``kid`` may use the JWKS's only key of its type); then signature, ``exp``
(required), ``nbf`` and ``iat`` (when present), issuer (exact) and audience (the configured one
must be among ``aud``), all times with the configured clock skew.

Status codes: 401 when the token is at fault; 503 when the server cannot check a token because
its JWKS URL cannot be fetched (the client is not at fault and may retry). A failed fetch is not
retried for 60 s, so an identity provider that is down does not hold every request for the
5-second fetch timeout. A fetch blocks the calling thread: call `Authenticator.access` from a
worker thread, not on the event loop. Verified tokens are remembered until they expire, so the
signature is checked once per token.

The settings come from `grunndata.settings.Settings.auth()`, built at the edge: GRUNNDATA_JWKS (a
file path, an https URL, or an http URL on the loopback interface), GRUNNDATA_TOKEN_ISSUER and
GRUNNDATA_TOKEN_AUDIENCE (both required with a JWKS), GRUNNDATA_CLOCK_SKEW (seconds, default 60,
at most 300) and GRUNNDATA_DEV_AUTH (1: development mode, everything readable without a token).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ec import (
    SECP256R1,
    EllipticCurvePrivateKey,
    EllipticCurvePublicKey,
)
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.exceptions import PyJWTError

from grunndata.errors import GrunndataError
from grunndata.settings import DEFAULT_CLOCK_SKEW, MAX_CLOCK_SKEW, Settings, SettingsError

log = logging.getLogger(__name__)

# The store's tiers (grunndata.store.models.TIERS), named here so this module needs nothing else.
NATIONAL, SECTOR, SUPPLEMENTARY = "national", "sector", "supplementary"

SCOPE_SECTOR_READ = "grunndata:sector.read"
SCOPE_SUPPLEMENTARY_READ = "grunndata:supplementary.read:"  # + owner id, or + ALL_OWNERS
SCOPE_IMPORT = "grunndata:import"
SCOPE_IMPORT_OWNER = "grunndata:import:"  # + "sector:" or "supplementary:" + owner id
ALL_OWNERS = "*"
OWNER_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")

ENV_JWKS = "GRUNNDATA_JWKS"
ENV_ISSUER = "GRUNNDATA_TOKEN_ISSUER"
ENV_AUDIENCE = "GRUNNDATA_TOKEN_AUDIENCE"
ENV_CLOCK_SKEW = "GRUNNDATA_CLOCK_SKEW"
ENV_DEV_AUTH = "GRUNNDATA_DEV_AUTH"

ALGORITHMS = ("RS256", "ES256")
MIN_RSA_BITS = 2048
MAX_TOKEN_LENGTH = 16_384  # HelseID tokens are a few kB; anything far larger is not a token
JWKS_TIMEOUT = 5.0  # seconds for one JWKS fetch
JWKS_REFETCH_INTERVAL = 60.0  # seconds between two loads of the JWKS (after the first)
CACHE_SIZE = 10_000  # verified tokens remembered
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class ConfigError(GrunndataError):
    """The auth settings cannot work (a missing JWKS file, a skew that is not a number...)."""


class AuthError(GrunndataError):
    """A request refused: 401 (the token), 403 (a scope missing) or 503 (the JWKS cannot be had)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    @property
    def www_authenticate(self) -> str | None:
        """The WWW-Authenticate header value a 401 answer carries (RFC 6750), else None."""
        if self.status != 401:
            return None
        description = self.message.replace("\\", "/").replace('"', "'")
        return f'Bearer realm="grunndata", error="invalid_token", error_description="{description}"'


def _unauthorized(message: str) -> AuthError:
    return AuthError(status=401, message=message)


# --- entitlements ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """What one request may read and import; built from a token's scopes (or ANONYMOUS/EVERYTHING)."""

    subject: str | None = None
    sector: bool = False
    supplementary: frozenset[str] = frozenset()  # owner ids, or ALL_OWNERS
    import_owners: frozenset[str] = frozenset()  # "<tier>:<owner>" lines it may import
    import_all: bool = False
    dev: bool = False

    @classmethod
    def from_scopes(cls, scopes: Iterable[str], subject: str | None = None) -> Access:
        """The entitlement the scopes grant; unknown scopes and malformed owner ids are ignored."""
        sector, import_all = False, False
        supplementary: set[str] = set()
        import_owners: set[str] = set()
        for scope in scopes:
            if scope == SCOPE_SECTOR_READ:
                sector = True
            elif scope == SCOPE_IMPORT:
                import_all = True
            elif scope.startswith(SCOPE_SUPPLEMENTARY_READ):
                owner = scope.removeprefix(SCOPE_SUPPLEMENTARY_READ)
                if owner == ALL_OWNERS or OWNER_ID.fullmatch(owner):
                    supplementary.add(owner)
            elif scope.startswith(SCOPE_IMPORT_OWNER):
                tier, _, owner = scope.removeprefix(SCOPE_IMPORT_OWNER).partition(":")
                if tier in (SECTOR, SUPPLEMENTARY) and OWNER_ID.fullmatch(owner):
                    import_owners.add(f"{tier}:{owner}")
        return cls(subject, sector, frozenset(supplementary), frozenset(import_owners), import_all)

    def can_read(self, tier: str, owner: str) -> bool:
        _check_tier(tier)
        if tier == NATIONAL:
            return True
        if tier == SECTOR:
            return self.sector
        return owner in self.supplementary or ALL_OWNERS in self.supplementary

    def can_import(self, tier: str, owner: str) -> bool:
        _check_tier(tier)
        if tier == NATIONAL:
            return self.import_all
        return self.import_all or f"{tier}:{owner}" in self.import_owners

    @property
    def key(self) -> str:
        """The read entitlement as a short stable string: two Access with one key see the same data.

        "n" (national), "ns" (and sector), then ":" and the readable supplementary owners ("*" for
        all; a hash when the list is long). Subject, import rights and dev do not change what is
        read, so they are left out, and a response cache keyed on this is shared as widely as safe.
        """
        key = "ns" if self.sector else "n"
        if ALL_OWNERS in self.supplementary:
            return key + ":*"
        if not self.supplementary:
            return key
        owners = ",".join(sorted(self.supplementary))
        if len(owners) > 64:
            owners = "#" + hashlib.sha256(owners.encode()).hexdigest()[:16]
        return f"{key}:{owners}"

    def scopes_missing_message(
        self, tier: str, owner: str, action: Literal["read", "import"] = "read"
    ) -> str:
        """The 403 sentence for a tier/owner this access may not read (or import)."""
        _check_tier(tier)
        if action == "import":
            needed = SCOPE_IMPORT if tier == NATIONAL else f"{SCOPE_IMPORT_OWNER}{tier}:{owner}"
        elif tier == SECTOR:
            needed = SCOPE_SECTOR_READ
        elif tier == SUPPLEMENTARY:
            needed = f"{SCOPE_SUPPLEMENTARY_READ}{owner}"
        else:
            raise ValueError("national data is open: reading it needs no scope")
        if self == ANONYMOUS:  # no token (or one granting nothing): say that a token is the way in
            return f"this needs a bearer token with the scope {needed}"
        return f"this needs the scope {needed}"


def _check_tier(tier: str) -> None:
    if tier not in (NATIONAL, SECTOR, SUPPLEMENTARY):
        raise ValueError(f"unknown tier {tier!r}: expected national, sector or supplementary")


ANONYMOUS = Access()
EVERYTHING = Access(sector=True, supplementary=frozenset({ALL_OWNERS}), import_all=True)
DEV_EVERYTHING = replace(EVERYTHING, dev=True)


def dev_mode_banner() -> str:
    """The warning the server prints and logs when it starts in development mode."""
    return (
        f"WARNING: DEVELOPMENT AUTH MODE ({ENV_DEV_AUTH}=1). Every request, with or without a "
        "token, may read ALL tiers (national, sector and every owner's supplementary data) and "
        "import anything, unless a JWKS is configured to check the tokens that are sent. Never "
        "run this mode where sector or supplementary data can be reached by anyone but you."
    )


# --- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthSettings:
    """The auth settings, checked on creation; made by `Settings.auth()` (or `from_env` from a mapping)."""

    jwks: str | None = None  # a file path or an https URL (http on the loopback interface)
    issuer: str | None = None
    audience: str | None = None
    clock_skew: int = DEFAULT_CLOCK_SKEW
    dev: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.clock_skew <= MAX_CLOCK_SKEW:
            raise ConfigError(_skew_message(str(self.clock_skew)))
        if self.jwks is None:
            for name, value in ((ENV_ISSUER, self.issuer), (ENV_AUDIENCE, self.audience)):
                if value is not None:
                    raise ConfigError(f"{name} is set but {ENV_JWKS} is not, so no token could be verified")
            return
        if self.audience is None:
            raise ConfigError(
                f"{ENV_JWKS} is set but {ENV_AUDIENCE} is not: without it a token issued for any other service would be accepted"
            )
        if self.issuer is None:
            raise ConfigError(
                f"{ENV_JWKS} is set but {ENV_ISSUER} is not: tokens are checked against their issuer"
            )
        if self.jwks_url is not None:
            return
        try:
            _parse_jwks(_read_file(Path(self.jwks)))
        except _JwksProblem as problem:
            raise ConfigError(f"{ENV_JWKS} {self.jwks}: {problem}") from None

    @property
    def jwks_url(self) -> str | None:
        """The JWKS URL, or None when the JWKS is a file (or not set); a bad URL is a ConfigError."""
        if self.jwks is None or "://" not in self.jwks:
            return None
        parts = urlsplit(self.jwks)
        if parts.scheme == "https" and parts.hostname:
            return self.jwks
        if parts.scheme == "http" and parts.hostname in _LOOPBACK:
            return self.jwks
        raise ConfigError(
            f"{ENV_JWKS} must be a file path or an https URL (http only on localhost), not {self.jwks!r}"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AuthSettings:
        """The settings from the GRUNNDATA_* variables in `environ` (an empty one counts as unset)."""
        try:
            return Settings.load(environ).auth()
        except SettingsError as error:
            raise ConfigError(str(error)) from None


def _skew_message(value: str) -> str:
    return f"{ENV_CLOCK_SKEW} must be a whole number of seconds from 0 to {MAX_CLOCK_SKEW}, not {value!r}"


# --- the JWKS -------------------------------------------------------------------------------------

PublicKey = RSAPublicKey | EllipticCurvePublicKey


@dataclass(frozen=True)
class _Key:
    kid: str | None
    alg: str  # RS256 or ES256
    public: PublicKey = field(repr=False)


class _JwksProblem(Exception):
    """Why a JWKS cannot be used (worded to follow "the JWKS ...: ")."""


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise _JwksProblem("the file does not exist") from None
    except OSError as error:
        raise _JwksProblem(f"the file cannot be read ({error.strerror})") from None


def _parse_jwks(raw: bytes) -> tuple[_Key, ...]:
    """The usable signing keys of a JWKS document; keys of other types or uses are skipped."""
    try:
        document = json.loads(raw)
    except ValueError:
        raise _JwksProblem("it is not a JWKS (not JSON)") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise _JwksProblem('it is not a JWKS (no "keys" list)') from None
    keys = tuple(key for key in map(_signing_key, document["keys"]) if key is not None)
    if not keys:
        raise _JwksProblem(f"the JWKS holds no RSA ({MIN_RSA_BITS} bits or more) or EC P-256 signing key")
    return keys


def _signing_key(jwk: object) -> _Key | None:
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
    return _Key(kid, alg, public)


_VERIFIERS = {"RS256": RSAAlgorithm(RSAAlgorithm.SHA256), "ES256": ECAlgorithm(ECAlgorithm.SHA256)}


class _KeySet:
    """The JWKS keys, reloaded (at most once per interval) when a token names a kid not in them."""

    def __init__(self, settings: AuthSettings, clock: Callable[[], float], interval: float) -> None:
        assert settings.jwks is not None
        self._source, self._url = settings.jwks, settings.jwks_url
        self._clock, self._interval = clock, interval
        self._lock = threading.Lock()
        self._keys: tuple[_Key, ...] | None = None
        self._loaded_at: float | None = None  # when the last load was tried, successful or not
        self._failure: str | None = None  # why the last load failed
        if self._url is None:  # a file: read now, so a broken one stops the server from starting
            try:
                self._keys = _parse_jwks(_read_file(Path(self._source)))
            except _JwksProblem as problem:
                raise ConfigError(f"{ENV_JWKS} {self._source}: {problem}") from None
            self._loaded_at = clock()

    def find(self, kid: str | None, alg: str) -> _Key:
        with self._lock:
            if self._keys is None:
                self._load_if_due()
            key = self._match(kid, alg)
            if key is None and kid is not None and self._load_if_due():
                key = self._match(kid, alg)
            if key is not None:
                return key
            if kid is None:
                raise _unauthorized(
                    f"the token names no key (kid) and this server's JWKS has no single {alg} key to use"
                )
            if self._failure is not None:
                raise self._unavailable()
            raise _unauthorized(f"the token's key {kid!r} is not in this server's JWKS")

    def _match(self, kid: str | None, alg: str) -> _Key | None:
        keys = [key for key in self._keys or () if key.alg == alg]
        if kid is None:
            return keys[0] if len(keys) == 1 else None
        named = [key for key in self._keys or () if key.kid == kid]
        if named and not any(key.alg == alg for key in named):
            raise _unauthorized(f"the token's key {kid!r} is not a key for {alg}")
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
            self._keys = _parse_jwks(self._fetch())
        except _JwksProblem as problem:
            self._failure = str(problem)
            log.warning("could not load the JWKS %s: %s", self._source, problem)
            if self._keys is None:
                raise self._unavailable() from None
            return False
        self._failure = None
        return True

    def _fetch(self) -> bytes:
        if self._url is None:
            return _read_file(Path(self._source))
        try:
            response = httpx.get(self._url, timeout=JWKS_TIMEOUT, headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise _JwksProblem(f"the server did not answer ({type(error).__name__})") from None
        if response.status_code != 200:
            raise _JwksProblem(f"the server answered HTTP {response.status_code}")
        return response.content

    def _unavailable(self) -> AuthError:
        return AuthError(
            status=503,
            message="this server cannot check tokens now: its key set (JWKS) could not be loaded; try again in a minute",
        )


# --- tokens ---------------------------------------------------------------------------------------


class Authenticator:
    """Turns an Authorization header into an `Access`, or refuses it with an `AuthError`."""

    def __init__(
        self,
        settings: AuthSettings,
        *,
        clock: Callable[[], float] = time.time,
        cache_size: int = CACHE_SIZE,
        refetch_interval: float = JWKS_REFETCH_INTERVAL,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._keys = None if settings.jwks is None else _KeySet(settings, clock, refetch_interval)
        self._cache: OrderedDict[str, tuple[Access, float]] = OrderedDict()  # token -> (access, until)
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    def access(self, authorization: str | None) -> Access:
        """The entitlement of a request with this Authorization header (None: no header)."""
        if authorization is None:
            return DEV_EVERYTHING if self.settings.dev else ANONYMOUS
        token = _bearer_token(authorization)
        if self._keys is None:
            if self.settings.dev:
                return DEV_EVERYTHING
            raise _unauthorized("this server does not accept tokens: no JWKS configured")
        cached = self._cached(token)
        if cached is not None:
            return cached
        access, until = self._verify(token, self._keys)
        with self._cache_lock:
            self._cache[token] = (access, until)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)  # the least recently used
        return access

    def known(self, authorization: str | None) -> Access | None:
        """The entitlement of a request whose token was verified before (or that has none), without
        any I/O; None when `access` has work to do (a signature to check, perhaps a JWKS to fetch),
        which the server then does off its event loop."""
        if authorization is None:
            return DEV_EVERYTHING if self.settings.dev else ANONYMOUS
        try:
            token = _bearer_token(authorization)
        except AuthError:
            return None
        return self._cached(token)

    def _cached(self, token: str) -> Access | None:
        with self._cache_lock:
            entry = self._cache.get(token)
            if entry is None:
                return None
            if self._clock() >= entry[1]:
                del self._cache[token]  # expired: verifying again says so
                return None
            self._cache.move_to_end(token)
            return entry[0]

    def _verify(self, token: str, keys: _KeySet) -> tuple[Access, float]:
        """The token's access and the time until which it holds; AuthError when it does not verify."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise _unauthorized(f"the token is malformed (longer than {MAX_TOKEN_LENGTH} characters)")
        parts = token.split(".")
        if len(parts) != 3:
            raise _unauthorized("the token is malformed (a JWT has three parts separated by dots)")
        header = _json_object(parts[0], "header")
        claims = _json_object(parts[1], "payload")
        signature = _b64decode(parts[2], "signature")

        alg = header.get("alg")
        if not isinstance(alg, str):
            raise _unauthorized("the token is malformed (its header names no algorithm)")
        if alg.lower() == "none":
            raise _unauthorized("the token uses the algorithm none, which is never accepted")
        if alg not in ALGORITHMS:
            raise _unauthorized(
                f"the token uses the algorithm {alg}, which this service does not accept (only RS256 and ES256)"
            )
        if "crit" in header:
            raise _unauthorized(
                "the token has critical header parameters (crit) this service does not understand"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _unauthorized("the token is malformed (its kid is not a string)")

        key = keys.find(kid, alg)
        signed = f"{parts[0]}.{parts[1]}".encode("ascii")
        if not _VERIFIERS[alg].verify(signed, key.public, signature):
            raise _unauthorized("the token's signature does not verify")

        until = self._valid_until(claims)
        return self._access(claims), until

    def _valid_until(self, claims: dict[str, Any]) -> float:
        """Check exp, nbf and iat (with the clock skew); the time the token expires, skew included."""
        now, skew = self._clock(), self.settings.clock_skew
        if "exp" not in claims:
            raise _unauthorized("the token has no expiry (exp), which this service requires")
        exp = _numeric(claims, "exp")
        if now >= exp + skew:
            raise _unauthorized("the token has expired")
        if "nbf" in claims and now + skew < _numeric(claims, "nbf"):
            raise _unauthorized("the token is not valid yet (nbf)")
        if "iat" in claims and now + skew < _numeric(claims, "iat"):
            raise _unauthorized("the token was issued in the future (iat)")
        return exp + skew

    def _access(self, claims: dict[str, Any]) -> Access:
        """Check issuer and audience; the entitlement the token's scopes grant."""
        issuer, audience = self.settings.issuer, self.settings.audience
        if claims.get("iss") != issuer:
            raise _unauthorized(f"the token was not issued by {issuer}")
        aud = claims.get("aud")
        if not (aud == audience or (isinstance(aud, list) and audience in aud)):
            raise _unauthorized("the token is not for this service (audience)")
        scope = claims.get("scope", [])
        scopes = scope.split() if isinstance(scope, str) else scope if isinstance(scope, list) else []
        subject = claims.get("sub") or claims.get("client_id")
        return Access.from_scopes(
            (s for s in scopes if isinstance(s, str)), subject if isinstance(subject, str) else None
        )


def _bearer_token(authorization: str) -> str:
    words = authorization.split()
    if not words or words[0].lower() != "bearer":
        raise _unauthorized("the Authorization header is not a bearer token")
    if len(words) != 2:
        raise _unauthorized("the Authorization header must be Bearer followed by one token")
    return words[1]


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64decode(part: str, what: str) -> bytes:
    if not _B64URL.fullmatch(part) or len(part) % 4 == 1:
        raise _unauthorized(f"the token is malformed (its {what} is not base64url)")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise _unauthorized(f"the token is malformed (its {what} is not base64url)") from None


def _json_object(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(part, what))
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise _unauthorized(f"the token is malformed (its {what} is not a JSON object)")
    return value


def _numeric(claims: dict[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _unauthorized(f"the token is malformed (its {name} is not a number of seconds)")
    return float(value)
