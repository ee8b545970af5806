"""Why auth refuses: the settings cannot work (ConfigError), or a request is refused (AuthError)."""

from __future__ import annotations

from grunndata.errors import GrunndataError

# RFC 6750's error_description is printable ASCII without " and \: a token's alg or typ is echoed in
# it, and a line break there would end the header
_QUOTED = {"\\": "/", '"': "'"}


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
        description = "".join(_QUOTED.get(c, c if " " <= c <= "~" else "?") for c in self.message)
        return f'Bearer realm="grunndata", error="invalid_token", error_description="{description}"'


def unauthorized(message: str) -> AuthError:
    return AuthError(status=401, message=message)
