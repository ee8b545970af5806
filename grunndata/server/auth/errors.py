"""Why auth refuses: the settings cannot work (ConfigError), or a request is refused (AuthError)."""

from __future__ import annotations

from grunndata.errors import GrunndataError

# RFC 6750's error_description is printable ASCII without " and \: a token's alg or typ is echoed in
# it, and a line break there would end the header
_QUOTED = {"\\": "/", '"': "'"}


class ConfigError(GrunndataError):
    """The auth settings cannot work (a missing JWKS file, a skew that is not a number...)."""


# the algorithms a DPoP proof may be signed with, as a DPoP challenge lists them (RFC 9449, 7.1);
# the same as keys.ALGORITHMS, which cannot be imported here (keys.py imports this module)
DPOP_ALGS = "ES256 PS256 RS256"


class AuthError(GrunndataError):
    """A request refused: 401 (the token or its DPoP proof), 403 (a scope missing) or 503 (the JWKS
    cannot be had). A 401 says how to authenticate: `challenge` is the scheme (Bearer, RFC 6750;
    DPoP, RFC 9449) and `error` the code of RFC 6750 3.1 or RFC 9449 7.1."""

    def __init__(
        self, status: int, message: str, *, challenge: str = "Bearer", error: str = "invalid_token"
    ) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.challenge, self.error = challenge, error

    @property
    def www_authenticate(self) -> str | None:
        """The WWW-Authenticate header value a 401 answer carries, else None."""
        if self.status != 401:
            return None
        description = "".join(_QUOTED.get(c, c if " " <= c <= "~" else "?") for c in self.message)
        value = f'{self.challenge} realm="grunndata", error="{self.error}", error_description="{description}"'
        return value + f', algs="{DPOP_ALGS}"' if self.challenge == "DPoP" else value


def unauthorized(message: str) -> AuthError:
    return AuthError(status=401, message=message)
