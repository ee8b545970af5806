"""Every GRUNNDATA_* environment variable in one typed place, read once at the edge and passed down.

The CLI and the server's factory build `Settings.load()`; the code below them takes values as
arguments and never reads the environment itself. A bad value is one sentence (`SettingsError`),
never a traceback. `python -m grunndata.settings` prints the README's table of the variables.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from grunndata.errors import GrunndataError

PREFIX = "GRUNNDATA_"
DEFAULT_DB = "sqlite:///grunndata.db"
DEFAULT_CLOCK_SKEW, MAX_CLOCK_SKEW = 60, 300
DPOP_MODES = ("off", "allowed", "required")  # GRUNNDATA_DPOP; server/auth/ says what each does
DEFAULT_DPOP_MAX_AGE, MAX_DPOP_MAX_AGE = 60, 300
DEFAULT_MAX_XML_BYTES = 2 * 1024**3  # a real delivery is ~118 MB of XML
DEFAULT_MAX_RESOURCE_FILE_BYTES = 1 << 30
DEFAULT_MAX_UPLOAD_BYTES = 1 << 30
READY_CHECKS: tuple[Literal["store", "national"], ...] = ("store", "national")
MAX_CACHE_MAX_AGE = 86_400
# an answer that fits one TCP segment (an Ethernet MTU less the headers) arrives no sooner compressed
DEFAULT_COMPRESS_MIN_BYTES = 1400

# The bounds of one search's parameters, checked before any is read further or the database asked
# (server/fhir_io/params.py `Limits`): field -> (default, most allowed, description). A real EPJ
# search sends a handful of parameters, one value each; the most allowed keeps every bound, and
# their products, well under what SQLite and PostgreSQL refuse: a LIKE pattern of 50,000 bytes (a
# character normalises to at most 33), an expression 1,000 deep (measured: a parameter adds 1, a
# value OR-ed 2: 50 + 2 x 250 at the most), 32,766 bind variables in SQLite as shipped (a value
# adds at most 11: 2,000 x 11 at the most), 65,535 in PostgreSQL. PostgreSQL plans a search of 40
# parameters in 0.2 s, of 80 in 0.8 s, of 200 in 35 s: hence at most 50.
SEARCH_LIMITS: dict[str, tuple[int, int, str]] = {
    "bytes": (
        32 * 1024,
        1 << 20,
        "The most bytes of a search's parameters, query string and POST `_search` body together, "
        "counted as the server's paging links write them (the paging parameters apart; as sent, "
        "percent-encoding may make them up to three times longer); also of `_history`, "
        "`$everything`, the terminology operations and `/fest/m30`.",
    ),
    "params": (
        40,
        50,
        "The most parameters one search may send, repeats counted, and those a paging link adds "
        "(`_count`, `_offset`, `_snapshot`, `_cursor`) not.",
    ),
    "repeats": (
        8,
        50,
        "The most times one parameter may be given (AND), `_include` and `_revinclude` apart.",
    ),
    "values": (100, 250, "The most comma-separated values (OR) one parameter may have."),
    "values_total": (200, 2000, "The most values of all a search's parameters together."),
    "value_chars": (500, 1000, "The most characters of one value, and of a parameter's name."),
    "sort": (5, 20, "The most `_sort` keys of a search; a key given twice counts once."),
    "includes": (10, 40, "The most `_include` and `_revinclude` values of a search, together."),
    "elements": (50, 1000, "The most element names `_elements` may list."),
    "chain": (
        2,
        3,
        "The most links one parameter may take to other resources: each step of a chained "
        "parameter (`package-for.name`) and each `_has` is one, and counts as one more parameter "
        "against the bound of parameters.",
    ),
    "iterate": (
        3,
        10,
        "The most rounds `_include:iterate` and `_revinclude:iterate` follow, the first included "
        "(`_include:iterate=*`, unbounded, is refused).",
    ),
}


def _search_limit(name: str) -> Any:
    """The field of one search bound: a whole number from 1 to its most allowed."""
    default, most, description = SEARCH_LIMITS[name]
    return Field(default=default, ge=1, le=most, description=f"{description[:-1]} (1 to {most:,}).")


class SettingsError(GrunndataError):
    """A GRUNNDATA_* variable holds a value that cannot be used; the message is one sentence."""


def env_name(field: str) -> str:
    return PREFIX + field.upper()


class Settings(BaseSettings):
    """The service's settings: each field is the variable GRUNNDATA_<FIELD NAME>; an empty one is unset."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, frozen=True, extra="ignore")

    db: str = Field(default=DEFAULT_DB, description="The store's database URL when `--db` is not given.")
    debug: bool = Field(default=False, description="Any value: an unexpected failure shows its traceback.")
    fhir_packages: Path | None = Field(
        default=None,
        description="The FHIR package cache `grunndata validate` reads (default ~/.fhir/packages).",
    )
    jwks: str | None = Field(
        default=None,
        description="The token issuer's keys: a JWKS file, or an https URL (http only on localhost).",
    )
    token_issuer: str | None = Field(
        default=None, description="Required with a JWKS: a token's `iss` must match."
    )
    token_audience: str | None = Field(
        default=None, description="Required with a JWKS: a token's `aud` must hold it."
    )
    clock_skew: int = Field(
        default=DEFAULT_CLOCK_SKEW,
        ge=0,
        le=MAX_CLOCK_SKEW,
        description=f"Seconds of leeway on a token's `exp`, `nbf` and `iat` (at most {MAX_CLOCK_SKEW}).",
    )
    dev_auth: bool = Field(
        default=False,
        description="1: development mode, every client reads every tier and may import, no token.",
    )
    dpop: str = Field(
        default="allowed",
        description="DPoP-bound tokens (RFC 9449): `allowed` (Bearer or DPoP), `required` (every token "
        "as DPoP with a proof, so sector and supplementary data and imports need one; national data "
        "stays open) or `off` (Bearer only). A token bound to a key is never taken as Bearer.",
    )
    dpop_max_age: int = Field(
        default=DEFAULT_DPOP_MAX_AGE,
        ge=1,
        le=MAX_DPOP_MAX_AGE,
        description=f"Seconds a DPoP proof is fresh after its `iat` (at most {MAX_DPOP_MAX_AGE}); "
        "its `jti` is remembered that long.",
    )
    warm: bool = Field(
        default=True,
        description="0 (or false, no, off): a new snapshot's indexes and M30 file wait for a request; 1 (or true, yes, on) the default.",
    )
    snapshot_seconds: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds within which a server sees a newly activated release; it serves it once its indexes are built (at most an hour).",
    )
    prepare_share: float = Field(
        default=0.5,
        ge=0.05,  # a build of ~3 s then takes ~1 min; a share near 0 would never serve a new release
        le=1,
        allow_inf_nan=False,
        description="Of the wall time a server spends building a new snapshot's indexes before it "
        "serves it, the share the build may work: below 1 it sleeps after each millisecond of work, "
        "so the requests answered meanwhile wait less (1: no pacing; the build then takes ~3 s at full size; "
        "at least 0.05, when it takes about a minute).",
    )
    read_cache: int = Field(
        default=50_000, ge=0, description="Versions a server keeps ready for reads by id."
    )
    search_cache_mb: float = Field(
        default=256.0,
        ge=0,
        le=1_000_000,
        allow_inf_nan=False,
        description="Megabytes of search answers a server keeps per snapshot; 0 turns it off.",
    )
    search_index: bool = Field(
        default=True,
        description="0 (or false, no, off): no in-memory index of the commonest first-time searches "
        "(varenr, ATC, identifier, name; ~33 MB and ~1.5 s per snapshot at full size): the store answers them.",
    )
    search_max_bytes: int = _search_limit("bytes")
    search_max_params: int = _search_limit("params")
    search_max_repeats: int = _search_limit("repeats")
    search_max_values: int = _search_limit("values")
    search_max_values_total: int = _search_limit("values_total")
    search_max_value_chars: int = _search_limit("value_chars")
    search_max_sort: int = _search_limit("sort")
    search_max_includes: int = _search_limit("includes")
    search_max_elements: int = _search_limit("elements")
    search_max_chain: int = _search_limit("chain")
    search_max_iterate: int = _search_limit("iterate")
    m30_dir: Path | None = Field(
        default=None, description="A folder the server processes of one machine share for M30 export files."
    )
    export_dir: Path | None = Field(
        default=None,
        description="A folder the server processes of one machine share for FHIR Bulk Data `$export` "
        "files (`grunndata serve --workers N` makes one when unset).",
    )
    export_expire_seconds: int = Field(
        default=3600,
        ge=1,
        le=7 * 24 * 3600,
        description="Seconds a finished `$export`'s files are kept (and its status answered) before "
        "they are removed (at most a week).",
    )
    export_share: float = Field(
        default=0.15,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="Of an `$export`'s wall time, the share its child process may work: below 1 it "
        "sleeps after each slice of its CPU time, and the PostgreSQL backend answering it waits "
        "with it (1: no pacing; at 0.15 a full-size export takes ~14 s alone and the reads beside "
        "it keep their p99 within 1.5x).",
    )
    export_backend_nice: int = Field(
        default=19,
        ge=0,
        le=19,
        description="The niceness an `$export`'s child gives the PostgreSQL backends serving it when "
        "they run on the same machine and it may renice them (0: leaves them as they are).",
    )
    import_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="The niceness every `grunndata import` gives itself and the PostgreSQL backends "
        "serving it on this machine (0: none): a server on the same machine keeps more of its answers' "
        "tail while a delivery is imported; on an idle machine the import takes as long.",
    )
    prune_keep_rollback: int = Field(
        default=3,
        ge=0,
        le=1000,
        description="Releases before the active one of each line that `grunndata prune` always keeps, "
        "so that `grunndata rollback` can return to them.",
    )
    prune_grace_seconds: int = Field(
        default=86_400,
        ge=0,
        le=365 * 24 * 3600,
        description="Seconds after a release stopped being served that `grunndata prune` keeps it: a "
        "client paging a search or a history made on it has this long to finish (its links answer "
        "410 after).",
    )
    subscription_http_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        # split by _READ, not read as JSON
        default=(),
        description="Hosts a rest-hook subscription may name with plain `http` (separated by `,`; "
        "tests name 127.0.0.1); every other endpoint must be `https`. Give every server process of "
        "a store the same value: the one that creates a subscription checks it, the one that holds "
        "the sending lease checks it again at every delivery.",
    )
    subscription_private_addresses: bool = Field(
        default=False,
        description="1: rest-hook endpoints may resolve to loopback, private and link-local addresses "
        "(tests); 0, the default: such an endpoint is refused, at creation and at every delivery "
        "(by the process sending: give every server process of a store the same value).",
    )
    subscription_tick_seconds: float = Field(
        default=1.0,
        ge=0.05,
        le=60,
        allow_inf_nan=False,
        description="Seconds between two rounds of the notifier: renew the lease, make the events of "
        "newly served releases, send what is due.",
    )
    subscription_lease_seconds: float = Field(
        default=5.0,
        ge=0.5,
        le=600,
        allow_inf_nan=False,
        description="Seconds the notifier's lease lasts unrenewed: when its process dies, another "
        "takes over sending after this long.",
    )
    subscription_keep_events: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Events kept per subscription, for redelivery and `$events`; older ones are dropped "
        "(the subscription's status says which were lost unsent).",
    )
    subscription_max_references: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description="Changed resources one notification names; beyond it an extension says how many "
        "more, to be read with `_history?_since=`.",
    )
    subscription_max_per_owner: int = Field(
        default=20, ge=1, le=10_000, description="Subscriptions one client (token subject) may keep."
    )
    subscription_send_timeout: float = Field(
        default=10.0,
        gt=0,
        le=120,
        allow_inf_nan=False,
        description="Seconds a rest-hook endpoint has to answer a notification (a subscription's own "
        "`timeout` may be shorter).",
    )
    subscription_retry_max_seconds: float = Field(
        default=60.0,
        ge=1,
        le=86_400,
        allow_inf_nan=False,
        description="The longest wait between two tries of a failing rest-hook (the wait starts at 1 s "
        "and doubles).",
    )
    subscription_give_up_seconds: float = Field(
        default=86_400.0,
        ge=1,
        le=30 * 86_400,
        allow_inf_nan=False,
        description="Seconds a rest-hook subscription may go without a notification going through "
        "before the server stops trying: its status becomes off, and `$status` says why.",
    )
    subscription_entitlement_seconds: float = Field(
        default=3600.0,
        ge=1,
        le=30 * 86_400,
        allow_inf_nan=False,
        description="Seconds a subscriber's sector or supplementary entitlement, as its last token on "
        "`/fhir/Subscription` showed it, holds for rest-hook notifications; after that they carry "
        "national content only until a token of it is seen again.",
    )
    export_jobs_per_entitlement: int = Field(
        default=2,
        ge=1,
        le=8,
        description="`$export`s one entitlement (the same scopes; every anonymous client is one) may have "
        "waiting or being written at once, of the 8 the server takes; a new one past it is a 429.",
    )
    subscription_ws_token_seconds: int = Field(
        default=60,
        ge=5,
        le=3600,
        description="Seconds a websocket binding token (`$get-ws-binding-token`) binds in; a socket "
        "bound stays bound until it closes or its subscriptions are deleted or end.",
    )
    catalog: Annotated[tuple[Path, ...], NoDecode] = Field(
        # split by _READ, not read as JSON
        default=(),
        description="Catalogue files (YAML or JSON) of others' services, separated by `:`.",
    )
    base_url: str | None = Field(
        default=None,
        description="Where this server is reached: the address of our own services in the catalogue, "
        "and the start of the URL a DPoP proof must name (`htu`; without it, the scheme and Host the request came with).",
    )
    log_format: Literal["json", "plain", "off"] = Field(
        default="json",
        description="The server's line per request (request id, route, status, duration, client_id): "
        "json, plain or off.",
    )
    ready_checks: Annotated[tuple[Literal["store", "national"], ...], NoDecode] = Field(
        default=READY_CHECKS,
        description="What `/readyz` asks before it answers 200, separated by `,`: store (the database "
        "answers), national (a national release is active); none: answer 200 whenever the process does.",
    )
    max_upload_bytes: int = Field(
        default=DEFAULT_MAX_UPLOAD_BYTES,
        gt=0,
        description="The largest delivery accepted by `POST /import/...`.",
    )
    max_resource_file_bytes: int = Field(
        default=DEFAULT_MAX_RESOURCE_FILE_BYTES,
        gt=0,
        description="The largest FHIR JSON or XML file an import reads.",
    )
    max_xml_bytes: int = Field(
        default=DEFAULT_MAX_XML_BYTES, gt=0, description="The most XML a FEST delivery may expand to."
    )
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        # split by _READ, not read as JSON
        default=("*",),
        description="The origins (`https://app.example`) whose browser apps may call the API, "
        "separated by `,`; `*` any origin; `none` no CORS headers at all. Never with credentials: "
        "the API takes tokens in Authorization, not cookies.",
    )
    cache_max_age: int = Field(
        default=0,
        ge=0,
        le=MAX_CACHE_MAX_AGE,
        description="Seconds a proxy or browser may serve national data without asking again; 0: "
        "`no-cache`, it asks each time (a 304 by ETag when nothing changed), so a withdrawal is "
        "never served stale after a release.",
    )
    compress_min_bytes: int = Field(
        default=DEFAULT_COMPRESS_MIN_BYTES,
        ge=0,
        description="The smallest answer sent gzip or brotli compressed to a client that accepts it.",
    )

    hresept_atc_q: bool = Field(
        default=True,
        description="0 (or false, no, off): the H-resept view (`content-filter=h-resept`) keeps products "
        "whose ATC code starts with Q, and their packages; 1 (or true, yes, on) the default.",
    )
    hresept_homeopathic: bool = Field(
        default=True,
        description="0: the H-resept view keeps homeopathic products (Preparattype Homøopatisk human or "
        "veterinær) and their packages; 1 the default.",
    )
    hresept_not_marketed: bool = Field(
        default=True,
        description="0: the H-resept view keeps packages not marketed in the three months up to the "
        "release's HentetDato; 1 the default.",
    )
    hresept_varenr: bool = Field(
        default=True,
        description="0: the H-resept view keeps packages without a varenr, or whose varenr expired more "
        "than three months before HentetDato; 1 the default.",
    )
    hresept_unit_dose_expired: bool = Field(
        default=True,
        description="0: the H-resept view keeps unit doses (Legemiddeldose) with an expiry; 1 the default.",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _from_text(cls, value: Any, info: ValidationInfo) -> Any:
        """Text from the environment: stripped, empty as unset, then the field's own reading."""
        if not isinstance(value, str):
            return value
        name = info.field_name or ""
        text = value.strip()
        if not text:
            return cls.model_fields[name].default
        read = _READ.get(name)
        return text if read is None else read(text)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from the process environment (or from `environ` alone); SettingsError when
        a value cannot be used."""
        try:
            if environ is None:
                return cls()
            values: dict[str, Any] = {
                name: environ[env_name(name)] for name in cls.model_fields if env_name(name) in environ
            }
            read = _FromMapping(**values)  # the mapping alone: no environment source
            return Settings.model_construct(**dict(read))  # checked by _FromMapping: a plain Settings
        except ValidationError as error:
            raise SettingsError(_sentence(error)) from None

    def content_filters_on(self) -> dict[str, bool]:
        """Each H-resept content filter's code (translators/content_filters.py) -> whether it applies."""
        return {
            "atc-q": self.hresept_atc_q,
            "homeopathic": self.hresept_homeopathic,
            "not-marketed": self.hresept_not_marketed,
            "no-varenr": self.hresept_varenr,
            "varenr-expired": self.hresept_varenr,
            "unit-dose-expired": self.hresept_unit_dose_expired,
        }

    @property
    def search_cache_bytes(self) -> int:
        return int(self.search_cache_mb * 1024 * 1024)


class _FromMapping(Settings):
    """The same fields and checks, given as arguments only (for `Settings.load(environ)`)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _digits(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(text)
    return int(text)


def _zero_or_one(text: str) -> bool:
    if text not in ("0", "1"):
        raise ValueError(text)
    return text == "1"


def _dpop_mode(text: str) -> str:
    if text.lower() not in DPOP_MODES:
        raise ValueError(text)
    return text.lower()


def _on_or_off(text: str) -> bool:
    word = text.lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _origins(text: str) -> tuple[str, ...]:
    """Origins separated by commas, each `*` or scheme://host[:port] with nothing after it (a
    browser's Origin header never has a path, so one with a path would never match)."""
    origins = tuple(o.strip().rstrip("/") for o in text.split(",") if o.strip())
    for origin in origins:
        scheme, sep, rest = origin.partition("://")
        if origin != "*" and (scheme not in ("http", "https") or not sep or not rest or "/" in rest):
            raise ValueError(text)
    return origins


_READ: dict[str, Callable[[str], Any]] = {
    "debug": lambda text: True,  # set at all: as before, GRUNNDATA_DEBUG=0 shows tracebacks too
    "clock_skew": _digits,
    "dev_auth": _zero_or_one,
    "dpop": _dpop_mode,
    "dpop_max_age": _digits,
    "warm": _on_or_off,
    "search_index": _on_or_off,
    "hresept_atc_q": _on_or_off,
    "hresept_homeopathic": _on_or_off,
    "hresept_not_marketed": _on_or_off,
    "hresept_varenr": _on_or_off,
    "hresept_unit_dose_expired": _on_or_off,
    "catalog": lambda text: tuple(Path(p) for p in text.split(os.pathsep) if p.strip()),
    "base_url": lambda text: text.rstrip("/") or None,
    "log_format": str.lower,
    "ready_checks": lambda text: (
        () if text.lower() == "none" else tuple(c.strip().lower() for c in text.split(",") if c.strip())
    ),
    "cors_origins": lambda text: () if text.lower() == "none" else _origins(text),
    "subscription_http_hosts": lambda text: tuple(h.strip().lower() for h in text.split(",") if h.strip()),
    "subscription_private_addresses": _on_or_off,
}

_EXPECTED = {  # "GRUNNDATA_X must be ..., not 'value'"
    "clock_skew": f"a whole number of seconds from 0 to {MAX_CLOCK_SKEW}",
    "dev_auth": "1 (development mode) or 0",
    "dpop": "off, allowed or required",
    "dpop_max_age": f"a whole number of seconds from 1 to {MAX_DPOP_MAX_AGE}",
    "snapshot_seconds": "a number of seconds from 0 to 3600",
    "warm": "1 or 0 (or true/false, yes/no, on/off)",
    "search_index": "1 or 0 (or true/false, yes/no, on/off)",
    **{
        name: "1 or 0 (or true/false, yes/no, on/off)"
        for name in (
            "hresept_atc_q",
            "hresept_homeopathic",
            "hresept_not_marketed",
            "hresept_varenr",
            "hresept_unit_dose_expired",
        )
    },
    "read_cache": "a whole number of versions, 0 or more",
    "search_cache_mb": "a number of megabytes from 0 to 1000000",
    "log_format": "json, plain or off",
    "ready_checks": "store and/or national, separated by commas, or none",
    "max_upload_bytes": "a whole number of bytes, more than 0",
    "max_resource_file_bytes": "a whole number of bytes, more than 0",
    "max_xml_bytes": "a whole number of bytes, more than 0",
    "cors_origins": "`*`, `none` or origins such as https://app.example separated by commas",
    "cache_max_age": f"a whole number of seconds from 0 to {MAX_CACHE_MAX_AGE:,}",
    "compress_min_bytes": "a whole number of bytes, 0 or more",
    "subscription_private_addresses": "1 or 0 (or true/false, yes/no, on/off)",
    "subscription_tick_seconds": "a number of seconds from 0.05 to 60",
    "subscription_lease_seconds": "a number of seconds from 0.5 to 600",
    "subscription_keep_events": "a whole number from 1 to 1,000,000",
    "subscription_max_references": "a whole number from 0 to 100,000",
    "subscription_max_per_owner": "a whole number from 1 to 10,000",
    "subscription_send_timeout": "a number of seconds, more than 0 and at most 120",
    "subscription_retry_max_seconds": "a number of seconds from 1 to 86,400",
    "subscription_ws_token_seconds": "a whole number of seconds from 5 to 3,600",
    "export_share": "a number more than 0 and at most 1",
    "prepare_share": "a number from 0.05 to 1",
    "subscription_give_up_seconds": "a number of seconds from 1 to 2,592,000",
    "subscription_entitlement_seconds": "a number of seconds from 1 to 2,592,000",
    "export_backend_nice": "a whole number from 0 to 19",
    "import_nice": "a whole number from 0 to 19",
    **{
        f"search_max_{name}": f"a whole number from 1 to {most:,}"
        for name, (_, most, _) in SEARCH_LIMITS.items()
    },
}


def _sentence(error: ValidationError) -> str:
    """The first problem as one sentence naming the variable and the value it holds."""
    first = error.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else ""
    given = first.get("input")
    shown = given.strip() if isinstance(given, str) else str(given)
    expected = _EXPECTED.get(name)
    if expected is None:
        return f"{env_name(name)} cannot be used: {first['msg']} (it is {shown!r})"
    return f"{env_name(name)} must be {expected}, not {shown!r}"


# -- the environment other libraries read, and what `serve --workers` hands its workers ----------

PROMETHEUS_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own, read when it is imported


def prometheus_multiproc_dir() -> str | None:
    """The folder where every worker process keeps its metrics (prometheus-client's multiprocess
    mode), or None when each process counts for itself."""
    return os.environ.get(PROMETHEUS_MULTIPROC_DIR) or None


def hand_to_workers(settings: Settings, db: str) -> str:
    """Put in the environment what worker processes, each making its app from the environment,
    must share with this one: the store, the request log, a metrics folder (a new temporary
    one unless PROMETHEUS_MULTIPROC_DIR names one) and the `$export` folder (likewise, unless
    GRUNNDATA_EXPORT_DIR names one). Returns the metrics folder."""
    import tempfile

    os.environ[env_name("db")] = db
    os.environ[env_name("log_format")] = settings.log_format
    if not prometheus_multiproc_dir():
        os.environ[PROMETHEUS_MULTIPROC_DIR] = tempfile.mkdtemp(prefix="grunndata-metrics-")
    if settings.export_dir is None:  # an $export's files are fetched from whichever worker answers
        os.environ[env_name("export_dir")] = tempfile.mkdtemp(prefix="grunndata-export-")
    return os.environ[PROMETHEUS_MULTIPROC_DIR]


# -- the README table ------------------------------------------------------------------------------

README_START = (
    "<!-- settings table: generated from grunndata/settings.py by `python -m grunndata.settings --readme` -->"
)
README_END = "<!-- end of settings table -->"


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) in (Union, UnionType):
        return _type_name(next(a for a in get_args(annotation) if a is not NoneType))
    if get_origin(annotation) is tuple:
        return "paths" if get_args(annotation)[0] is Path else "words"
    if get_origin(annotation) is Literal:
        return "word"
    names = {str: "text", int: "integer", float: "number", bool: "flag", Path: "path"}
    return names[annotation]


def _default(value: Any) -> str:
    if value is None or value == ():
        return "unset"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) and value >= 1 << 30 and value % (1 << 30) == 0:
        return f"{value} ({value >> 30} GiB)"
    return str(value)


def settings_table() -> str:
    """The markdown table of every variable: name, type, default and what it does."""
    rows = ["| variable | type | default | what it does |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        rows.append(
            f"| `{env_name(name)}` | {_type_name(field.annotation)} | {_default(field.default)} "
            f"| {field.description} |"
        )
    return "\n".join(rows) + "\n"


def readme_with_table(readme: str) -> str:
    """The README text with its settings table (between the two markers) made from `Settings`."""
    start = readme.index(README_START) + len(README_START)
    end = readme.index(README_END)
    return readme[:start] + "\n" + settings_table() + readme[end:]


def main(argv: list[str]) -> int:
    """Print the table; with --readme, write it into README.md (run from the repository)."""
    if argv[1:] == ["--readme"]:
        readme = Path("README.md")
        readme.write_text(readme_with_table(readme.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    print(settings_table(), end="")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv))
