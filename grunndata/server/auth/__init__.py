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
``grunndata:subscription``                 make, read and delete one's own R5 Subscriptions
=========================================  ====================================================

The tier is in the import scope: an owner entitled to publish supplementary data cannot put it
in the sector tier, where every sector reader would see it.

An owner id matches ``^[a-z0-9][a-z0-9-]{0,62}$``.

Token checks, by PyJWT (tokens.py): the Authorization header is refused unread above 8192
characters; the algorithm must be RS256, PS256 or ES256 (``none`` and HS* are refused before any
key is looked at, so an RSA public key can never be used as an HMAC secret); the token's type (typ)
must say at+jwt (RFC 9068) or JWT, as HelseID's guidance for APIs has it, so a DPoP proof
(dpop+jwt) is not taken for an access token, nor is a token without typ; the key is chosen by
``kid`` from the JWKS and must be a key for the token's algorithm (a JWK's ``alg``; without one an
RSA key is for RS256 and an EC key for ES256, so PS256 needs a key published as PS256; a token
without ``kid`` may use the JWKS's only key for its algorithm); then PyJWT checks the signature,
``exp`` (required), ``nbf`` and ``iat`` (when present; numbers of seconds from 1970 to 9999),
issuer (exact) and audience (the configured one must be among ``aud``), all times with the
configured clock skew as leeway. Anything malformed is a 401 with a sentence saying what, never a
500.

Status codes: 401 when the token is at fault; 503 when the server cannot check a token because
its JWKS URL cannot be fetched (the client is not at fault and may retry). A failed fetch is not
retried for 60 s, so an identity provider that is down does not hold every request for the
5-second fetch timeout. A fetch blocks the calling thread: call `Authenticator.access` from a
worker thread, not on the event loop. Verified tokens are remembered until they expire, so the
signature is checked once per token.

DPoP (RFC 9449, dpop.py), as HelseID issues sender-constrained tokens: a token whose ``cnf.jkt``
names the thumbprint (RFC 7638) of the client's key comes as ``Authorization: DPoP <token>`` with
one ``DPoP`` header, a proof JWT (typ dpop+jwt, RS256/PS256/ES256) signed by that key with the
public key in its header. PyJWT verifies the proof; we check that its key is the token's (the
thumbprint), ``htm`` is the method, ``htu`` the URL (query and fragment ignored), ``iat`` no older
than GRUNNDATA_DPOP_MAX_AGE (default 60 s) and no more than the clock skew ahead, ``ath`` the
token's hash, and that its ``jti`` was not seen before within that window (in this process). A
bound token sent as Bearer is refused, and so is an unbound one sent as DPoP. GRUNNDATA_DPOP:
``allowed`` (the default: both schemes), ``required`` (tokens only as DPoP, so the restricted tiers
and imports need DPoP; national data stays open without a token) or ``off`` (Bearer only). A
refused proof is a 401 with ``WWW-Authenticate: DPoP ... error="invalid_dpop_proof" ... algs=...``;
a token at fault as DPoP, ``error="invalid_token"`` with the DPoP challenge; a bearer token at
fault keeps the Bearer challenge. The token's own verification is remembered as a bearer token's
is; the proof is checked on every request (on the event loop when the token is known: no I/O).

The settings come from `AuthSettings.from_settings(settings)`, built at the edge: GRUNNDATA_JWKS (a
file path, an https URL, or an http URL on the loopback interface), GRUNNDATA_TOKEN_ISSUER and
GRUNNDATA_TOKEN_AUDIENCE (both required with a JWKS), GRUNNDATA_CLOCK_SKEW (seconds, default 60,
at most 300), GRUNNDATA_DEV_AUTH (1: development mode, everything readable without a token),
GRUNNDATA_DPOP, GRUNNDATA_DPOP_MAX_AGE and GRUNNDATA_BASE_URL (a proof's htu is checked against it).
"""

from grunndata.server.auth.access import (
    ALL_OWNERS,
    ANONYMOUS,
    DEV_EVERYTHING,
    EVERYTHING,
    NATIONAL,
    OWNER_ID,
    SCOPE_IMPORT,
    SCOPE_IMPORT_OWNER,
    SCOPE_SECTOR_READ,
    SCOPE_SUBSCRIBE,
    SCOPE_SUPPLEMENTARY_READ,
    SECTOR,
    SUPPLEMENTARY,
    Access,
    dev_mode_banner,
)
from grunndata.server.auth.dpop import ProofRequest, thumbprint
from grunndata.server.auth.errors import AuthError, ConfigError
from grunndata.server.auth.settings import (
    ENV_AUDIENCE,
    ENV_CLOCK_SKEW,
    ENV_DEV_AUTH,
    ENV_DPOP,
    ENV_DPOP_MAX_AGE,
    ENV_ISSUER,
    ENV_JWKS,
    AuthSettings,
)
from grunndata.server.auth.tokens import Authenticator

__all__ = [
    "ALL_OWNERS",
    "ANONYMOUS",
    "DEV_EVERYTHING",
    "ENV_AUDIENCE",
    "ENV_CLOCK_SKEW",
    "ENV_DEV_AUTH",
    "ENV_DPOP",
    "ENV_DPOP_MAX_AGE",
    "ENV_ISSUER",
    "ENV_JWKS",
    "EVERYTHING",
    "NATIONAL",
    "OWNER_ID",
    "SCOPE_IMPORT",
    "SCOPE_IMPORT_OWNER",
    "SCOPE_SECTOR_READ",
    "SCOPE_SUBSCRIBE",
    "SCOPE_SUPPLEMENTARY_READ",
    "SECTOR",
    "SUPPLEMENTARY",
    "Access",
    "AuthError",
    "AuthSettings",
    "Authenticator",
    "ConfigError",
    "ProofRequest",
    "dev_mode_banner",
    "thumbprint",
]
