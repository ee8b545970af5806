"""DPoP (RFC 9449): the proof, sent with each request, that the client holds the key its token is bound to.

A DPoP-bound token carries the SHA-256 thumbprint of the client's public key (``cnf.jkt``); each
request carries a fresh proof (the ``DPoP`` header): a JWT signed by that key, naming the request's
method and URL, when it was made, a unique id, and a hash of the token. A stolen token is useless
without the key, and a stolen proof is good for one request, to one URL, for a minute.

PyJWT reads and verifies the proof, as it does tokens; ours are the rules around it: one header of
bounded size, the type, the key in the header (public, of an accepted kind), the claims against
the request, the thumbprint (RFC 7638), and the ids already seen.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
import string
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import jwt
from jwt.api_jws import PyJWS
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidJTIError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
    PyJWTError,
)
from jwt.types import Options
from jwt.utils import base64url_decode

from grunndata.server.auth.errors import AuthError
from grunndata.server.auth.keys import ALGORITHMS, usable_key

LATEST_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_PROOF_LENGTH = 8192  # a proof with an RSA key in its header is about 1.5 kB
MAX_JTI_LENGTH = 256
PROOF_TYPE = "dpop+jwt"
# the members of a private (or symmetric) key: a proof's jwk must not hold them (RFC 9449, 4.3)
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# RFC 7638, 3.2: the members a key's thumbprint is made of, per key type (sorted, as hashed)
THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}
# a client sends the same header (typ, alg, its jwk) with every proof: what is read from one, the
# key and its thumbprint, is kept by its exact text for the next (a quarter to a third of the check)
KNOWN_HEADERS = 1024
_KEYS: dict[str, tuple[jwt.PyJWK, str, str]] = {}
_KEYS_LOCK = threading.Lock()
SEEN_PROOFS = 200_000  # proof ids remembered at once: a minute of reads at over 3,000 a second
_OPTIONS: Options = {"require": ["iat", "jti", "htm", "htu"], "verify_aud": False, "verify_iss": False}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CRIT = "the DPoP proof has critical header parameters (crit) this service does not understand"
_JTI = f"the DPoP proof's jti must be a string of 1 to {MAX_JTI_LENGTH} characters"


@dataclass(frozen=True)
class ProofRequest:
    """What a proof is checked against: the request's method and URL (without query), and every
    DPoP header it carries (a request must carry exactly one)."""

    method: str
    url: str
    proofs: tuple[str, ...]


@dataclass(frozen=True)
class Proof:
    """A proof whose signature and claims verified: the key's thumbprint and the proof's id."""

    jkt: str
    jti: str


def invalid_proof(message: str) -> AuthError:
    return AuthError(401, message, challenge="DPoP", error="invalid_dpop_proof")


def invalid_dpop_token(message: str) -> AuthError:
    return AuthError(401, message, challenge="DPoP", error="invalid_token")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """The JWK SHA-256 thumbprint of a public key (RFC 7638): its required members only, in
    lexicographic order, as JSON without whitespace, hashed, base64url without padding."""
    members = THUMBPRINT_MEMBERS.get(jwk.get("kty"))  # type: ignore[arg-type]
    if members is None:
        raise ValueError(f"a thumbprint of a key of type {jwk.get('kty')!r} is not made here")
    if not all(isinstance(jwk.get(m), str) for m in members):
        raise ValueError(f"a {jwk['kty']} key needs the members {', '.join(members)}, as strings")
    text = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), ensure_ascii=False)
    return b64url(hashlib.sha256(text.encode("utf-8")).digest())


def token_hash(token: str) -> str:
    """The ``ath`` a proof sent with this access token carries: base64url(SHA-256(token))."""
    return b64url(hashlib.sha256(token.encode("ascii", "replace")).digest())


def same_url(a: str, b: str) -> bool:
    """Whether two http(s) URLs name one resource, query and fragment ignored, as RFC 3986's
    normalisation (6.2.2) says: scheme and host without regard to case, a default port the same
    as none, an empty path as "/", an escaped unreserved character (``%7E``) as the character and
    other escapes without regard to the case of their hex digits, and characters outside ASCII as
    their UTF-8 escapes. A URL with user information (``user@host``) names no request here."""
    first = _normal(a)
    return first is not None and first == _normal(b)


@functools.lru_cache(maxsize=4096)  # a pure function of the text; the same URLs come again and again
def _normal(url: str) -> tuple[str, str, int | None, str] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    path = _ESCAPE.sub(_unescaped, quote(parts.path or "/", safe=_PATH_SAFE))
    return scheme, parts.hostname, None if port == _DEFAULT_PORTS[scheme] else port, path


_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_PATH_SAFE = "/:@!$&'()*+,;=%-._~"  # RFC 3986's pchar and "/", and "%" (escapes kept as they are)


def _unescaped(match: re.Match[str]) -> str:
    char = chr(int(match[1], 16))
    return char if char in _UNRESERVED else f"%{match[1].upper()}"


def check_proof(request: ProofRequest, token: str, *, now: float, max_age: int, skew: int) -> Proof:
    """The request's one DPoP proof, verified against the request and the access token; an
    AuthError (invalid_dpop_proof) saying what is wrong otherwise. Whether the proof was used
    before is `SeenProofs`' question, asked once everything else holds."""
    if not request.proofs:
        raise invalid_proof("a DPoP token needs a DPoP header with a proof")
    if len(request.proofs) > 1:
        raise invalid_proof("the request has more than one DPoP header")
    proof = request.proofs[0]
    if len(proof) > MAX_PROOF_LENGTH:
        raise invalid_proof(f"the DPoP proof is too long (more than {MAX_PROOF_LENGTH} characters)")
    if proof.count(".") != 2:
        raise invalid_proof("the DPoP proof is malformed (a JWT has three parts separated by dots)")
    segment = proof[: proof.index(".")]
    with _KEYS_LOCK:
        found = _KEYS.get(segment)
    if found is None:
        found = _key_of(proof)
        with _KEYS_LOCK:
            if len(_KEYS) >= KNOWN_HEADERS:
                del _KEYS[next(iter(_KEYS))]  # the oldest
            _KEYS[segment] = found
    key, alg, jkt = found
    try:
        claims = _DECODER.decode(proof, key, algorithms=[alg], options=_OPTIONS, leeway=skew)
    except PyJWTError as error:
        raise invalid_proof(_refusal(error)) from None
    return Proof(jkt, _checked_claims(claims, request, token, now=now, max_age=max_age))


def _key_of(proof: str) -> tuple[jwt.PyJWK, str, str]:
    """The key a proof is verified with, its algorithm and the key's thumbprint, from its header."""
    try:
        header = jwt.get_unverified_header(proof)
    except PyJWTError as error:
        if not isinstance(error, DecodeError) and "crit" in str(error):
            raise invalid_proof(_CRIT) from None
        raise invalid_proof("the DPoP proof is malformed (its header is not base64url JSON)") from None
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() != PROOF_TYPE:
        raise invalid_proof(f"the DPoP proof's typ must be {PROOF_TYPE}")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise invalid_proof(f"the DPoP proof's alg must be one of {' '.join(ALGORITHMS)}")
    if "crit" in header:
        raise invalid_proof(_CRIT)
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise invalid_proof("the DPoP proof has no public key (jwk) in its header")
    if PRIVATE_MEMBERS & jwk.keys():
        raise invalid_proof("the DPoP proof's jwk holds a private key, which must never be sent")
    try:
        jkt = thumbprint(jwk)
        key = usable_key(jwt.PyJWK(jwk, algorithm=alg))
    except (PyJWTError, ValueError, TypeError, KeyError):
        key = None
    if key is None:
        raise invalid_proof(
            f"the DPoP proof's jwk is not an RSA (2048 bits or more) or EC P-256 key for {alg}"
        )
    return key, alg, jkt


def _checked_claims(
    claims: dict[str, Any], request: ProofRequest, token: str, *, now: float, max_age: int
) -> str:
    """The proof's jti, once its claims match the request and the token."""
    if claims["iat"] < now - max_age:
        raise invalid_proof(f"the DPoP proof is too old (iat more than {max_age} seconds ago)")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise invalid_proof(_JTI)
    if claims["htm"] != request.method:
        raise invalid_proof(f"the DPoP proof is for another method (htm is not {request.method})")
    htu = claims["htu"]
    if not isinstance(htu, str) or not same_url(htu, request.url):
        raise invalid_proof(f"the DPoP proof is for another URL (htu is not {request.url})")
    ath = claims.get("ath")
    if ath is None:
        raise invalid_proof("the DPoP proof has no hash of the access token (ath)")
    if ath != token_hash(token):
        raise invalid_proof("the DPoP proof is for another access token (ath)")
    return jti


def _refusal(error: PyJWTError) -> str:
    """PyJWT's refusal of a proof as our sentence."""
    if isinstance(error, _NotATime | _Malformed):
        return str(error)
    if isinstance(error, InvalidSignatureError) or (
        isinstance(error, DecodeError) and "crypto" in str(error)
    ):
        return "the DPoP proof's signature does not verify with its jwk"
    if isinstance(error, ImmatureSignatureError):
        return "the DPoP proof was made in the future (iat)"
    if isinstance(error, ExpiredSignatureError):
        return "the DPoP proof has expired (exp)"
    if isinstance(error, InvalidJTIError):
        return _JTI
    if isinstance(error, MissingRequiredClaimError):
        return f"the DPoP proof has no {error.claim}, which RFC 9449 requires"
    return "the DPoP proof is malformed"


class _NotATime(InvalidTokenError):
    """iat or exp that is not a number of seconds from 1970 to 9999 (the message is ours)."""


class _Malformed(DecodeError):
    """A payload that is not a JSON object."""


class _Proofs(jwt.PyJWT):
    """PyJWT, with a proof's iat and exp checked to be times before PyJWT reads them with int()
    (which takes "1750000600", true, and raises on infinity)."""

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        try:
            claims = super()._decode_payload(decoded)
        except DecodeError:
            raise _Malformed("the DPoP proof is malformed (its payload is not a JSON object)") from None
        for name in ("iat", "exp"):
            value = claims.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= LATEST_TIME:
                raise _NotATime(f"the DPoP proof is malformed (its {name} is not a time)")
        return claims


_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")


class _Segments(PyJWS):
    """PyJWS, with each part's base64url alphabet checked by one regular expression instead of
    a Python loop over its characters (a fifth of a proof's check, a third with an RSA key in its
    header). The rules are PyJWS's own, unchanged (tests/server/test_dpop.py compares the two):
    at most two '=' of padding and only where the length is a multiple of four, no length of 1
    modulo 4, only the base64url alphabet, and the canonical encoding only."""

    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        stripped = segment.rstrip(b"=")
        padding = len(segment) - len(stripped)
        if (
            padding > 2
            or (padding and len(segment) % 4 != 0)
            or len(stripped) % 4 == 1
            or _BASE64URL.fullmatch(stripped) is None
        ):
            raise DecodeError(f"Invalid {name} padding")
        try:
            decoded = base64url_decode(stripped)
        except (TypeError, binascii.Error) as err:
            raise DecodeError(f"Invalid {name} padding") from err
        if base64.urlsafe_b64encode(decoded).rstrip(b"=") != stripped:
            raise DecodeError(f"Invalid {name} padding")
        return decoded


_DECODER = _Proofs()
_DECODER._jws = _Segments(options=_DECODER._jws.options)


class SeenProofs:
    """The proof ids this process has accepted, each remembered until no clock could take its
    proof as fresh again: `ttl` seconds (the oldest iat taken, plus the clock skew) after it was
    seen. Full of unexpired ids, it refuses more (503) rather than forget one early."""

    def __init__(self, ttl: float, size: int = SEEN_PROOFS) -> None:
        self._ttl, self._size = ttl, size
        self._until: OrderedDict[str, float] = OrderedDict()  # in the order seen, so by expiry too
        self._lock = threading.Lock()

    def first_use(self, key: str, now: float) -> bool:
        """Remember `key`; False when it was seen within the window (a replay)."""
        with self._lock:
            while self._until:
                oldest, until = next(iter(self._until.items()))
                if until > now:
                    break
                del self._until[oldest]
            if key in self._until:
                return False
            if len(self._until) >= self._size:
                raise AuthError(
                    503, "this server has checked too many DPoP proofs in the last minute; try again shortly"
                )
            self._until[key] = now + self._ttl
            return True
