"""A token issuer for server tests: one RSA key in a JWKS file, tokens signed as HelseID would;
and a client's own key (`DpopKey`) for DPoP-bound tokens and their proofs (RFC 9449)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from grunndata.server.auth import Authenticator, AuthSettings, thumbprint

ISSUER = "https://helseid-sts.test.nhn.no"
AUDIENCE = "grunndata-api"


class Issuer:
    def __init__(self, folder: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = folder / "jwks.json"
        self.jwks.write_text(json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}))

    def authenticator(self, **settings: Any) -> Authenticator:
        return Authenticator(AuthSettings(jwks=str(self.jwks), issuer=ISSUER, audience=AUDIENCE, **settings))

    def token(self, *scopes: str, expires_in: int = 600, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "test-client",
            "iat": now,
            "exp": now + expires_in,
            "scope": list(scopes),
            **claims,
        }
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": "k1", "typ": "at+jwt"})

    def headers(self, *scopes: str, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*scopes, **claims)}"}

    def dpop_headers(
        self, key: DpopKey, method: str, url: str, *scopes: str, **claims: Any
    ) -> dict[str, str]:
        """A token bound to `key` and a fresh proof for this one request."""
        token = self.token(*scopes, cnf={"jkt": key.jkt}, **claims)
        return {"Authorization": f"DPoP {token}", "DPoP": key.proof(method, url, token)}


def ath(token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()


class DpopKey:
    """A client's own key pair (EC P-256 or RSA): it signs DPoP proofs, and tokens are bound to it."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        if alg == "ES256":
            self.key: Any = ec.generate_private_key(ec.SECP256R1())
            self.jwk = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jkt = thumbprint(self.jwk)

    def proof(
        self, method: str, url: str, token: str, *, header: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        """A proof for one request; a claim given as None is left out, `header` adds to the header."""
        payload = {
            "jti": uuid.uuid4().hex,
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
            "ath": ath(token),
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        headers = {"typ": "dpop+jwt", "jwk": self.jwk, **(header or {})}
        return jwt.encode(payload, self.key, algorithm=self.alg, headers=headers)
