"""Access tokens checked by PyJWT and turned into an `Access`, remembered until they expire; a token
bound to a key (DPoP) is taken only with a fresh proof by that key (dpop.py), checked per request.

PyJWT reads the token and checks the signature, the algorithm against our list, the required
claims, exp, nbf and iat with the clock skew as its leeway, the issuer and the audience. Ours are
the rules around it: the Authorization header's size, which algorithms and which key (keys.py),
the token type (typ), that times are times, the 401 sentences, and what the scopes grant.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jwt
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidJTIError,
    InvalidSignatureError,
    InvalidSubjectError,
    InvalidTokenError,
    MissingRequiredClaimError,
    PyJWTError,
)
from jwt.types import Options

from grunndata.server.auth.access import ANONYMOUS, DEV_EVERYTHING, Access
from grunndata.server.auth.dpop import (
    ProofRequest,
    SeenProofs,
    check_proof,
    invalid_dpop_token,
    invalid_proof,
)
from grunndata.server.auth.errors import AuthError, unauthorized
from grunndata.server.auth.keys import ALGORITHMS, JWKS_REFETCH_INTERVAL, KeySet
from grunndata.server.auth.settings import ENV_DPOP, AuthSettings

MAX_AUTHORIZATION_LENGTH = 8192  # HelseID tokens are a few kB; the header is refused before it is read
CACHE_SIZE = 10_000  # verified tokens remembered
# typ with "application/" left off: RFC 9068 access tokens, and JWT as HelseID's guidance allows
TOKEN_TYPES = ("at+jwt", "jwt")
LATEST_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z; a later exp is not a time
_OPTIONS: Options = {"require": ["exp", "iss", "aud"]}
_SCHEMES = {"bearer": "Bearer", "dpop": "DPoP"}  # RFC 6750 and RFC 9449, compared without case
_Verified = tuple[Access, float, str | None]  # a token's access, until when, the key it is bound to

_ISSUER = "the token was not issued by {issuer}"
_AUDIENCE = "the token is not for this service (audience)"
_SIGNATURE = "the token's signature does not verify"
_CRIT = "the token has critical header parameters (crit) this service does not understand"
# PyJWT's refusals as our sentences: the first row whose class matches and whose text is in
# PyJWT's message decides; PyJWT names the part or claim only in its message.
_REFUSALS: tuple[tuple[type[PyJWTError], str, str], ...] = (
    (InvalidSignatureError, "", _SIGNATURE),
    (DecodeError, "crypto", _SIGNATURE),  # a signature that is not base64url cannot verify
    (DecodeError, "Not enough segments", "the token is malformed (a JWT has three parts separated by dots)"),
    (DecodeError, "header string", "the token is malformed (its header is not a JSON object)"),
    (DecodeError, "header", "the token is malformed (its header is not base64url)"),
    (DecodeError, "payload string", "the token is malformed (its payload is not a JSON object)"),
    (DecodeError, "payload", "the token is malformed (its payload is not base64url)"),
    (ExpiredSignatureError, "", "the token has expired"),
    (ImmatureSignatureError, "(iat)", "the token was issued in the future (iat)"),
    (ImmatureSignatureError, "", "the token is not valid yet (nbf)"),
    (MissingRequiredClaimError, '"exp"', "the token has no expiry (exp), which this service requires"),
    (MissingRequiredClaimError, '"iss"', _ISSUER),
    (MissingRequiredClaimError, '"aud"', _AUDIENCE),
    (InvalidIssuerError, "", _ISSUER),
    (InvalidAudienceError, "", _AUDIENCE),
    (InvalidSubjectError, "", "the token is malformed (its sub is not a string)"),
    (InvalidJTIError, "", "the token is malformed (its jti is not a string)"),
    (InvalidTokenError, "crit", _CRIT),
    (InvalidTokenError, "Key ID", "the token is malformed (its kid is not a string)"),
)


class _NotATime(InvalidTokenError):
    """exp, nbf or iat that is not a number of seconds from 1970 to 9999 (the message is ours)."""


class _AccessTokens(jwt.PyJWT):
    """PyJWT with one rule more, at the hook PyJWT offers for it (after the signature, before the
    claims are checked): exp, nbf and iat are numbers. PyJWT reads them with int(), which takes
    "1750000600" and true, and a 400-digit exp that would never expire."""

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        claims = super()._decode_payload(decoded)
        for name in ("exp", "nbf", "iat"):
            value = claims.get(name)
            if value is None:
                continue  # absent: PyJWT says whether it is required
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _NotATime(f"the token is malformed (its {name} is not a number of seconds)")
            if not 0 <= value <= LATEST_TIME:  # NaN and infinity fail this too
                raise _NotATime(f"the token is malformed (its {name} is not a time from 1970 to 9999)")
        return claims


_DECODER = _AccessTokens()


class Authenticator:
    """Turns an Authorization header into an `Access`, or refuses it with an `AuthError`.

    `clock` is the time of the cache and of the JWKS refetches; PyJWT checks a token's own times
    against the system clock, which is the same one unless a test says otherwise."""

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
        self._cache: OrderedDict[str, _Verified] = OrderedDict()  # token -> (access, until, jkt)
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        # a proof is fresh from max_age before now to the skew after it, so taken again until then
        self._seen = SeenProofs(settings.dpop_max_age + settings.clock_skew)

    def access(self, authorization: str | None, request: ProofRequest | None = None) -> Access:
        """The entitlement of a request with this Authorization header (None: no header).

        `request` is what a DPoP proof is checked against: the request's method, URL and DPoP
        headers (None: it carried no DPoP header, which `Authorization: DPoP` needs)."""
        if authorization is None:
            return DEV_EVERYTHING if self.settings.dev else ANONYMOUS
        scheme, token = _credentials(authorization)
        if self._keys is None:
            if self.settings.dev:
                return DEV_EVERYTHING
            raise unauthorized("this server does not accept tokens: no JWKS configured")
        entry = self._cached(token)
        if entry is None:
            entry = self._verify(token, self._keys)
            with self._cache_lock:
                self._cache[token] = entry
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)  # the least recently used
        return self._bound(scheme, token, entry, request)

    def known(self, authorization: str | None, request: ProofRequest | None = None) -> Access | None:
        """The entitlement of a request whose token was verified before (or that has none), without
        any I/O; None when `access` has work to do (a signature to check, perhaps a JWKS to fetch),
        which the server then does off its event loop. A DPoP proof costs no I/O, so with a token
        seen before it is checked here, and a bad one raised as the AuthError `access` would raise."""
        if authorization is None:
            return DEV_EVERYTHING if self.settings.dev else ANONYMOUS
        try:
            scheme, token = _credentials(authorization)
        except AuthError:
            return None
        entry = self._cached(token)
        return None if entry is None else self._bound(scheme, token, entry, request)

    def _bound(self, scheme: str, token: str, entry: _Verified, request: ProofRequest | None) -> Access:
        """The verified token's access, once the way it came fits its binding: a token bound to a
        key (cnf.jkt) only as DPoP with a good proof by that key; an unbound one only as Bearer."""
        access, _, jkt = entry
        mode = self.settings.dpop
        if scheme == "bearer":
            if jkt is not None:
                raise invalid_dpop_token(
                    "the token is bound to a key (cnf.jkt): send it as Authorization: DPoP, with a DPoP proof"
                )
            if mode == "required":
                raise invalid_dpop_token(
                    f"this service takes DPoP-bound tokens only ({ENV_DPOP}=required): ask for a DPoP token"
                )
            return access
        if mode == "off":
            raise unauthorized(f"this service does not take DPoP tokens ({ENV_DPOP}=off)")
        if jkt is None:
            raise invalid_dpop_token(
                "the token is not bound to a key (no cnf.jkt), so it is not a DPoP token"
            )
        now = self._clock()
        proof = check_proof(
            request or ProofRequest("", "", ()),
            token,
            now=now,
            max_age=self.settings.dpop_max_age,
            skew=self.settings.clock_skew,
        )
        if proof.jkt != jkt:
            raise invalid_proof(
                "the DPoP proof is signed by another key than the one the token is bound to (cnf.jkt)"
            )
        if not self._seen.first_use(f"{jkt} {proof.jti}", now):
            raise invalid_proof(
                "the DPoP proof was used before (its jti was seen): make a new proof per request"
            )
        return access

    def _cached(self, token: str) -> _Verified | None:
        with self._cache_lock:
            entry = self._cache.get(token)
            if entry is None:
                return None
            if self._clock() >= entry[1]:
                del self._cache[token]  # expired: verifying again says so
                return None
            self._cache.move_to_end(token)
            return entry

    def _verify(self, token: str, keys: KeySet) -> _Verified:
        """The token's access, the time until which it holds, and the thumbprint of the key it is
        bound to (cnf.jkt, RFC 9449 6.1; None: a bearer token); AuthError when it does not verify."""
        issuer, audience = self.settings.issuer, self.settings.audience
        assert issuer is not None and audience is not None  # AuthSettings requires them with a JWKS
        if token.count(".") != 2:  # PyJWT would read a fourth part as part of the payload
            raise unauthorized("the token is malformed (a JWT has three parts separated by dots)")
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError as error:
            raise _refusal(error, issuer) from None
        alg = _algorithm(header)  # before any key is looked at, so none and HS* never reach one
        if "crit" in header:
            raise unauthorized(_CRIT)
        _check_type(header.get("typ"))
        key = keys.find(header.get("kid"), alg)
        try:
            claims = _DECODER.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                options=_OPTIONS,
                issuer=issuer,
                audience=audience,
                leeway=self.settings.clock_skew,
            )
        except PyJWTError as error:
            raise _refusal(error, issuer) from None
        until = int(claims["exp"]) + self.settings.clock_skew  # int(): as PyJWT reads it
        return _access(claims), until, _bound_key(claims)


def _credentials(authorization: str) -> tuple[str, str]:
    """The scheme (bearer or dpop) and the token of an Authorization header."""
    if len(authorization) > MAX_AUTHORIZATION_LENGTH:
        raise unauthorized(
            f"the Authorization header is too long (more than {MAX_AUTHORIZATION_LENGTH} characters)"
        )
    words = authorization.split()
    scheme = words[0].lower() if words else ""
    if scheme not in _SCHEMES:
        raise unauthorized("the Authorization header is not a bearer (or DPoP) token")
    if len(words) != 2:
        raise unauthorized(f"the Authorization header must be {_SCHEMES[scheme]} followed by one token")
    return scheme, words[1]


def _bound_key(claims: dict[str, Any]) -> str | None:
    """The thumbprint a token is bound to (cnf.jkt), None for a bearer token. A token bound in a
    way this service cannot check (a certificate, cnf x5t#S256) is refused, not taken as bearer."""
    if "cnf" not in claims:
        return None
    cnf = claims["cnf"]
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str) or not jkt:
        raise unauthorized(
            "the token is bound (cnf) but not to a key thumbprint (jkt), which is all this service checks"
        )
    return jkt


def _algorithm(header: dict[str, Any]) -> str:
    """The token's alg when it is one we accept."""
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise unauthorized("the token is malformed (its header names no algorithm)")
    if alg.lower() == "none":
        raise unauthorized("the token uses the algorithm none, which is never accepted")
    if alg not in ALGORITHMS:
        accepted = f"{', '.join(ALGORITHMS[:-1])} and {ALGORITHMS[-1]}"
        raise unauthorized(
            f"the token uses the algorithm {alg}, which this service does not accept (only {accepted})"
        )
    return alg


def _check_type(typ: object) -> None:
    """An access token says so (typ at+jwt, RFC 9068), or says JWT as HelseID's API guidance allows;
    a token without typ, or of another type (a DPoP proof is dpop+jwt), is not one. Media types are
    compared without case, and "application/" may be left off (RFC 7515, 4.1.9)."""
    if typ is None:
        raise unauthorized("the token is not an access token (it has no typ; at+jwt or JWT is expected)")
    if not isinstance(typ, str) or typ.lower().removeprefix("application/") not in TOKEN_TYPES:
        raise unauthorized(f"the token is not an access token (its typ is {typ!r}, not at+jwt or JWT)")


def _access(claims: dict[str, Any]) -> Access:
    """The entitlement the token's scopes grant (unknown scopes and non-strings are ignored)."""
    scope = claims.get("scope", [])
    scopes = scope.split() if isinstance(scope, str) else scope if isinstance(scope, list) else []
    subject = claims.get("sub") or claims.get("client_id")
    client = claims.get("client_id")
    return Access.from_scopes(
        (s for s in scopes if isinstance(s, str)),
        subject if isinstance(subject, str) else None,
        client if isinstance(client, str) else None,
    )


def _refusal(error: PyJWTError, issuer: str) -> AuthError:
    """PyJWT's refusal as our 401 sentence."""
    if isinstance(error, _NotATime):
        return unauthorized(str(error))
    text = str(error)
    for kind, fragment, message in _REFUSALS:
        if isinstance(error, kind) and fragment in text:
            return unauthorized(message.format(issuer=issuer))
    return unauthorized("the token is malformed")
