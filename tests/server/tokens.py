"""A token issuer for server tests: one RSA key in a JWKS file, tokens signed as HelseID would."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from grunndata.server.auth import Authenticator, AuthSettings

ISSUER = "https://helseid-sts.test.nhn.no"
AUDIENCE = "grunndata-api"


class Issuer:
    def __init__(self, folder: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = folder / "jwks.json"
        self.jwks.write_text(json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}))

    def authenticator(self) -> Authenticator:
        return Authenticator(AuthSettings(jwks=str(self.jwks), issuer=ISSUER, audience=AUDIENCE))

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
