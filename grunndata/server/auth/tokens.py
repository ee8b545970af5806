"""Bearer tokens checked (RS256/ES256 signatures by PyJWT's algorithms, then the claims) and
turned into an `Access`, remembered until they expire."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from grunndata.server.auth.access import ANONYMOUS, DEV_EVERYTHING, Access
from grunndata.server.auth.errors import AuthError, unauthorized
from grunndata.server.auth.keys import JWKS_REFETCH_INTERVAL, KeySet
from grunndata.server.auth.settings import AuthSettings

ALGORITHMS = ("RS256", "ES256")
MAX_TOKEN_LENGTH = 16_384  # HelseID tokens are a few kB; anything far larger is not a token
CACHE_SIZE = 10_000  # verified tokens remembered
_VERIFIERS = {"RS256": RSAAlgorithm(RSAAlgorithm.SHA256), "ES256": ECAlgorithm(ECAlgorithm.SHA256)}


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
        self._keys = None if settings.jwks is None else KeySet(settings, clock, refetch_interval)
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
            raise unauthorized("this server does not accept tokens: no JWKS configured")
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

    def _verify(self, token: str, keys: KeySet) -> tuple[Access, float]:
        """The token's access and the time until which it holds; AuthError when it does not verify."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise unauthorized(f"the token is malformed (longer than {MAX_TOKEN_LENGTH} characters)")
        parts = token.split(".")
        if len(parts) != 3:
            raise unauthorized("the token is malformed (a JWT has three parts separated by dots)")
        header = _json_object(parts[0], "header")
        claims = _json_object(parts[1], "payload")
        signature = _b64decode(parts[2], "signature")

        alg = header.get("alg")
        if not isinstance(alg, str):
            raise unauthorized("the token is malformed (its header names no algorithm)")
        if alg.lower() == "none":
            raise unauthorized("the token uses the algorithm none, which is never accepted")
        if alg not in ALGORITHMS:
            raise unauthorized(
                f"the token uses the algorithm {alg}, which this service does not accept (only RS256 and ES256)"
            )
        if "crit" in header:
            raise unauthorized(
                "the token has critical header parameters (crit) this service does not understand"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise unauthorized("the token is malformed (its kid is not a string)")

        key = keys.find(kid, alg)
        signed = f"{parts[0]}.{parts[1]}".encode("ascii")
        if not _VERIFIERS[alg].verify(signed, key.public, signature):
            raise unauthorized("the token's signature does not verify")

        until = self._valid_until(claims)
        return self._access(claims), until

    def _valid_until(self, claims: dict[str, Any]) -> float:
        """Check exp, nbf and iat (with the clock skew); the time the token expires, skew included."""
        now, skew = self._clock(), self.settings.clock_skew
        if "exp" not in claims:
            raise unauthorized("the token has no expiry (exp), which this service requires")
        exp = _numeric(claims, "exp")
        if now >= exp + skew:
            raise unauthorized("the token has expired")
        if "nbf" in claims and now + skew < _numeric(claims, "nbf"):
            raise unauthorized("the token is not valid yet (nbf)")
        if "iat" in claims and now + skew < _numeric(claims, "iat"):
            raise unauthorized("the token was issued in the future (iat)")
        return exp + skew

    def _access(self, claims: dict[str, Any]) -> Access:
        """Check issuer and audience; the entitlement the token's scopes grant."""
        issuer, audience = self.settings.issuer, self.settings.audience
        if claims.get("iss") != issuer:
            raise unauthorized(f"the token was not issued by {issuer}")
        aud = claims.get("aud")
        if not (aud == audience or (isinstance(aud, list) and audience in aud)):
            raise unauthorized("the token is not for this service (audience)")
        scope = claims.get("scope", [])
        scopes = scope.split() if isinstance(scope, str) else scope if isinstance(scope, list) else []
        subject = claims.get("sub") or claims.get("client_id")
        return Access.from_scopes(
            (s for s in scopes if isinstance(s, str)), subject if isinstance(subject, str) else None
        )


def _bearer_token(authorization: str) -> str:
    words = authorization.split()
    if not words or words[0].lower() != "bearer":
        raise unauthorized("the Authorization header is not a bearer token")
    if len(words) != 2:
        raise unauthorized("the Authorization header must be Bearer followed by one token")
    return words[1]


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64decode(part: str, what: str) -> bytes:
    if not _B64URL.fullmatch(part) or len(part) % 4 == 1:
        raise unauthorized(f"the token is malformed (its {what} is not base64url)")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise unauthorized(f"the token is malformed (its {what} is not base64url)") from None


def _json_object(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(part, what))
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise unauthorized(f"the token is malformed (its {what} is not a JSON object)")
    return value


def _numeric(claims: dict[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise unauthorized(f"the token is malformed (its {name} is not a number of seconds)")
    return float(value)
