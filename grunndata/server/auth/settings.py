"""The auth settings (`AuthSettings`), checked when made: a JWKS file or URL, issuer, audience, skew."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from grunndata.server.auth.errors import ConfigError
from grunndata.settings import (
    DEFAULT_CLOCK_SKEW,
    DEFAULT_DPOP_MAX_AGE,
    DPOP_MODES,
    MAX_CLOCK_SKEW,
    MAX_DPOP_MAX_AGE,
    Settings,
    SettingsError,
)

ENV_JWKS = "GRUNNDATA_JWKS"
ENV_ISSUER = "GRUNNDATA_TOKEN_ISSUER"
ENV_AUDIENCE = "GRUNNDATA_TOKEN_AUDIENCE"
ENV_CLOCK_SKEW = "GRUNNDATA_CLOCK_SKEW"
ENV_DEV_AUTH = "GRUNNDATA_DEV_AUTH"
ENV_DPOP = "GRUNNDATA_DPOP"
ENV_DPOP_MAX_AGE = "GRUNNDATA_DPOP_MAX_AGE"
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class AuthSettings:
    """The auth settings, checked on creation; made by `from_settings` (or `from_env` from a mapping)."""

    jwks: str | None = None  # a file path or an https URL (http on the loopback interface)
    issuer: str | None = None
    audience: str | None = None
    clock_skew: int = DEFAULT_CLOCK_SKEW
    dev: bool = False
    dpop: str = "allowed"  # off, allowed or required (DPOP_MODES)
    dpop_max_age: int = DEFAULT_DPOP_MAX_AGE  # seconds a DPoP proof is fresh after its iat
    public_url: str | None = None  # GRUNNDATA_BASE_URL: a DPoP proof's htu is this + the path

    def __post_init__(self) -> None:
        if not 0 <= self.clock_skew <= MAX_CLOCK_SKEW:
            raise ConfigError(_skew_message(str(self.clock_skew)))
        if self.dpop not in DPOP_MODES:
            raise ConfigError(f"{ENV_DPOP} must be off, allowed or required, not {self.dpop!r}")
        if not 1 <= self.dpop_max_age <= MAX_DPOP_MAX_AGE:
            raise ConfigError(
                f"{ENV_DPOP_MAX_AGE} must be a whole number of seconds from 1 to {MAX_DPOP_MAX_AGE}, not {self.dpop_max_age!r}"
            )
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
        from grunndata.server.auth.keys import (  # keys.py reads these settings
            JwksProblem,
            parse_jwks,
            read_file,
        )

        try:
            parse_jwks(read_file(Path(self.jwks)))
        except JwksProblem as problem:
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
    def from_settings(cls, settings: Settings) -> AuthSettings:
        """The token part of `settings`, checked (a missing JWKS file, an issuer without a JWKS: ConfigError)."""
        return cls(
            settings.jwks,
            settings.token_issuer,
            settings.token_audience,
            settings.clock_skew,
            settings.dev_auth,
            settings.dpop,
            settings.dpop_max_age,
            settings.base_url,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AuthSettings:
        """The settings from the GRUNNDATA_* variables in `environ` (an empty one counts as unset)."""
        try:
            return cls.from_settings(Settings.load(environ))
        except SettingsError as error:
            raise ConfigError(str(error)) from None


def _skew_message(value: str) -> str:
    return f"{ENV_CLOCK_SKEW} must be a whole number of seconds from 0 to {MAX_CLOCK_SKEW}, not {value!r}"
