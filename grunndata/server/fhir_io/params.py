"""Turning a search request's parameters into a query the store answers, or a 400 saying why not.

Every search passes here, whatever its type or source, and so do the history's, `$everything`'s,
the terminology operations' and `/fest/m30`'s parameters: the bounds of `Limits` are checked first,
before a value is read further or the database asked.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote_plus

import orjson
from starlette.requests import Request

from grunndata.fhir import UNFIT_TEXT, unfit_character
from grunndata.fhir.identifiers import gs1_gtin
from grunndata.server.fhir_io.responses import FhirError
from grunndata.settings import SEARCH_LIMITS, Settings, env_name
from grunndata.store import (
    BARCODE_PARAMS,
    CHAIN,
    HAS,
    MISSING_VALUES,
    SEARCHED_TYPES,
    STORE,
    Clause,
    Include,
    Link,
    SearchError,
    SearchParam,
    Snapshot,
    SortKey,
    chain_targets,
    date_range,
    lookup,
    params_for,
    sources_of,
)
from grunndata.translators.content_filters import VIEWS, unknown_view_sentence

PPD = "PackagedProductDefinition"
GS = "\x1d"
"""ASCII group separator: a scanner's FNC1 in a GS1 code, allowed in a barcode parameter's value."""

MAX_COUNT = 1000
DEFAULT_COUNT = 20
SUMMARY_VALUES = ("true", "false", "count", "data", "text")
TOTAL_VALUES = ("none", "estimate", "accurate")
# parameters about the response, not the match; _format and _pretty are read by the response code
RESULT_PARAMS = {
    "_count", "_offset", "_snapshot", "_sort", "_include", "_revinclude", "_summary", "_elements",
    "_total", "_format", "_pretty",
}  # fmt: skip
ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")
INCLUDES = ("_include", "_revinclude")
HAS_PREFIX = "_has:"
CONTENT_FILTER = "content-filter"
"""A named view of the national data (translators/content_filters.py VIEWS): `h-resept` leaves out
what DMP's H-resept API leaves out. Not a search parameter of any type: it narrows every one."""
PAGING = frozenset({"_count", "_offset", "_snapshot", "_cursor"})
"""What the server's paging links add to a search's parameters: not counted as parameters (a search
at the bound still has a next page), but repeats of them are."""


LINK_SAFE = ",:/"
"""What the server's links leave unescaped in a query (RFC 3986 allows them there; clients send a
token's `,` and a reference's `/` as they are). A `|` is escaped: strict URL parsers refuse it."""
ENCODING_WORST = 3
"""How many times longer percent-encoding makes a parameter at most (a byte becomes `%XX`)."""


def query_string(items: Sequence[tuple[str, str]]) -> str:
    """(name, value) pairs as the server's own links write them: `urlencode(items, safe=LINK_SAFE)`,
    with the short names and values that every page's three links repeat quoted once."""
    return "&".join(f"{_quoted(str(k))}={_quoted(str(v))}" for k, v in items)


def _quoted(text: str) -> str:
    return _quoted_short(text) if len(text) <= 200 else quote_plus(text, safe=LINK_SAFE)


@lru_cache(maxsize=4096)
def _quoted_short(text: str) -> str:
    return quote_plus(text, safe=LINK_SAFE)


FORM = "application/x-www-form-urlencoded"


def bad(message: str) -> FhirError:
    return FhirError(400, "invalid", message)


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one request's parameters may ask: the GRUNNDATA_SEARCH_MAX_* settings.

    Checked by counting, before anything is parsed further or the database asked: past a bound is a
    400 `too-costly` naming the bound and its value, never the database's error (SQLite refuses a
    LIKE pattern over 50,000 bytes, an expression over 1,000 deep) or a query that runs for seconds.
    """

    bytes: int
    params: int
    repeats: int
    values: int
    values_total: int
    value_chars: int
    sort: int
    includes: int
    elements: int
    chain: int
    iterate: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(**{name: getattr(settings, f"search_max_{name}") for name in SEARCH_LIMITS})

    def exceeded(self, bound: str, what: str) -> FhirError:
        """`what` (e.g. "41 parameters") is more than the bound allows: a 400 naming the bound."""
        setting = env_name(f"search_max_{bound}")
        return FhirError(400, "too-costly", f"{what}, more than {setting}={getattr(self, bound)} allows")

    def check_size(self, size: int) -> None:
        """The bytes of the query string and form body as sent, before they are parsed: at most
        what the bytes bound allows when every byte is percent-encoded (`check` measures them as
        the server's links write them)."""
        if size > self.bytes * ENCODING_WORST:
            raise self.exceeded("bytes", f"the parameters are {size:,} bytes as sent")

    def check(self, items: Sequence[tuple[str, str]]) -> None:
        """Every bound on the (name, value) pairs, and no text a FHIR string cannot hold (a NUL
        is refused by PostgreSQL itself): one pass of counting, nothing looked up. Their bytes are
        counted as the server's paging links write them, without the paging parameters the links
        add, so a search the server answers has links the server answers too."""
        size = len(query_string([(k, v) for k, v in items if k not in PAGING]))
        if size > self.bytes:
            raise self.exceeded("bytes", f"the parameters are {size:,} bytes")
        if len(items) > self.params:
            counted = sum(name not in PAGING for name, _ in items)
            if counted > self.params:
                raise self.exceeded("params", f"the request sends {counted:,} parameters")
        given: Counter[str] = Counter()
        values = includes = links_total = 0
        sort_keys: set[str] = set()
        elements: set[str] = set()
        for name, value in items:
            unfit = UNFIT_TEXT.search(name) or UNFIT_TEXT.search(value)
            if unfit is not None and unfit[0] == GS and name in BARCODE_PARAMS:
                # a scanner sends a GS1 code's FNC1 as ASCII GS: the barcode search reads it, and
                # no answer holds it (links percent-encode it; a match names the code as stored)
                unfit = UNFIT_TEXT.search(value.replace(GS, ""))
            if unfit is not None:
                raise bad(
                    f"{name[:100]!r} holds {unfit_character(unfit[0])} in its name or value, "
                    "which no FHIR string can hold"
                )
            if len(name) > self.value_chars:
                raise self.exceeded("value_chars", f"a parameter name has {len(name):,} characters")
            code = name.partition(":")[0]
            links = links_in(name)
            if links:
                if links > self.chain:
                    raise self.exceeded("chain", f"{name[:100]} takes {links} links")
                links_total += links
            parts = split_values(value) if "," in value else (value,)
            longest = max(len(p) for p in parts)
            if longest > self.value_chars:
                raise self.exceeded("value_chars", f"a value of {code[:100]} has {longest:,} characters")
            if code in INCLUDES:
                includes += 1
                if includes > self.includes:
                    raise self.exceeded("includes", f"the request has {includes} _include and _revinclude")
                continue
            given[code] += 1
            if given[code] > self.repeats:
                raise self.exceeded("repeats", f"{code[:100]} is given {given[code]} times")
            if code == "_sort":
                sort_keys.update(p.lstrip("-") for p in value.split(","))
                if len(sort_keys) > self.sort:
                    raise self.exceeded("sort", f"_sort names {len(sort_keys)} keys")
            elif code == "_elements":
                elements.update(e.strip() for e in value.split(",") if e.strip())
                if len(elements) > self.elements:
                    raise self.exceeded("elements", f"_elements names {len(elements)} elements")
            elif code not in RESULT_PARAMS:
                if len(parts) * (1 + links) > self.values:  # a link's subqueries nest every value again
                    times = (
                        f" (each counted {1 + links} times: it takes {links} link{'s' * (links > 1)})"
                        if links
                        else ""
                    )
                    raise self.exceeded(
                        "values", f"{code[:100]} has {len(parts):,} comma-separated values{times}"
                    )
                values += len(parts)
                if values > self.values_total:
                    raise self.exceeded("values_total", f"the request has {values:,} values in all")
        if links_total:  # a link is a join: it costs as one more parameter
            counted = sum(name not in PAGING for name, _ in items) + links_total
            if counted > self.params:
                raise self.exceeded(
                    "params",
                    f"the request sends {counted:,} parameters, each link of a chain or _has counted as one",
                )


def links_in(name: str) -> int:
    """How many links to other resources a parameter's name takes: chain steps and `_has`es."""
    if name.startswith(INCLUDES):
        return 0
    return name.count(".") + name.count(HAS_PREFIX)


DEFAULT_LIMITS = Limits.of(Settings.model_construct())  # the settings' defaults; no environment read


async def body_within(request: Request, limits: Limits) -> bytes:
    """A request's body, read no further than `limits.bytes` allows (with the query string): a body
    of a gigabyte, declared or not, costs the bound's bytes of reading, not a gigabyte of memory."""
    query = len(request.scope["query_string"])
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        limits.check_size(query + len(body))
    return bytes(body)


async def form_items(request: Request, limits: Limits) -> list[tuple[str, str]]:
    """The (name, value) pairs of a form-encoded body (`body_within` the bounds), counted before
    they are split."""
    body = await body_within(request, limits)
    if body.count(b"&") >= limits.params + len(PAGING):
        raise limits.exceeded("params", f"the request sends {body.count(b'&') + 1:,} parameters or more")
    return parse_qsl(body.decode("latin-1"), keep_blank_values=True)  # as Starlette reads a form


async def posted_parameters(request: Request, limits: Limits) -> list[tuple[str, Any]]:
    """(name, value) of a POSTed operation's parameters: a Parameters resource (JSON), or a form,
    read `body_within` the bounds; each value as the resource holds it (a string, a Coding...)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == FORM:
        return list(await form_items(request, limits))
    if media not in ("application/fhir+json", "application/json", ""):
        raise FhirError(
            415, "not-supported", f"send a Parameters resource as application/fhir+json, not {media}"
        )
    try:
        body = orjson.loads(await body_within(request, limits))
    except orjson.JSONDecodeError:
        raise bad("the request body is not JSON; send a Parameters resource") from None
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise bad("the request body must be a Parameters resource")
    parameters = body.get("parameter") or []
    if not isinstance(parameters, list):
        raise bad("the Parameters resource's parameter must be a list")
    if len(parameters) > limits.params:
        raise limits.exceeded("params", f"the request sends {len(parameters):,} parameters")
    items: list[tuple[str, Any]] = []
    for p in parameters:
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            raise bad("every parameter of the Parameters resource needs a name")
        values = [v for k, v in p.items() if k.startswith("value") or k == "resource"]
        if len(values) != 1:
            raise bad(f"parameter {p['name']!r} needs exactly one value")
        items.append((p["name"], values[0]))
    return items


@dataclass
class Query:
    """A parsed search: what to match, how to page, sort and shape the answer."""

    rtype: str
    clauses: list[Clause] = field(default_factory=list)
    used: list[tuple[str, str]] = field(default_factory=list)  # the parameters applied, for links
    ignored: list[str] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    offset: int = 0
    snapshot: Snapshot | None = None
    sort: list[SortKey] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] | None = None
    total: str = "none"
    content_filter: str | None = None  # a VIEWS name
    include_rounds: int = 1  # how many rounds the includes take: the bound when one iterates


def strict(prefer: str) -> bool:
    """`Prefer: handling=strict`: an unknown parameter is a 400, not a warning in the Bundle."""
    return "handling=strict" in prefer.replace(" ", "")


def _scanned(value: str) -> bool:
    """A GS1 code as a scanner sends it (element string or Digital Link), read whole: its batch
    (AI 10) or serial number (AI 21) may hold a comma, which no scanner escapes."""
    code = value.partition("|")[2] if "|" in value else value
    return gs1_gtin(code) is not None


def split_values(value: str) -> tuple[str, ...]:
    """Comma-separated values (OR); a backslash escapes a comma."""
    parts, current, escaped = [], [], False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return tuple(parts)


_WHOLE = re.compile(r"-?[0-9]{1,19}")


def whole_number(name: str, value: str, low: int, high: int) -> int:
    """ASCII digits only: int() would also take "١٢", " 5", "+5" and "5_0" (and a 5,000-digit string)."""
    if not _WHOLE.fullmatch(value):
        raise bad(f"{name} must be a whole number, not {value!r}")
    n = int(value)
    if not low <= n <= high:
        raise bad(f"{name} must be between {low} and {high}, not {n}")
    return n


def _include(rtype: str, name: str, value: str, reverse: bool) -> list[Include]:
    """The includes one `_include` or `_revinclude` asks for: `*` is every one the type has."""
    base, _, modifier = name.partition(":")
    if modifier not in ("", "iterate"):
        raise bad(f"{name}: {base} takes :iterate as its only modifier")
    iterate = modifier == "iterate"
    parts = value.split(":")
    if parts[-1] == "iterate":  # R4's and DSTU2's form, `_include=Type:param:iterate`
        raise bad(f"{base}={value}: write {base}:iterate={':'.join(parts[:-1])}")
    if value == "*":
        if iterate:
            raise FhirError(
                400,
                "too-costly",
                f"{name}=* would follow every reference of all it brings, round after round: "
                f"name the references to follow ({base}:iterate=Type:parameter)",
            )
        return _wildcard(rtype, reverse)
    if len(parts) not in (2, 3) or parts[1] == "*":
        raise bad(f"{base} takes Type:parameter, Type:parameter:TargetType or *, not {value!r}")
    source, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    param = lookup(source, code)
    if param is None or param.type != "reference" or param.resource == "Resource":
        raise bad(f"{base}: {source} has no reference search parameter {code!r}")
    if not reverse and source != rtype and not iterate:
        raise bad(f"_include={value} names {source}, but this search is for {rtype}")
    if reverse and rtype not in param.targets and not iterate:
        raise bad(f"_revinclude={value}: {source}.{code} never points at {rtype}")
    if target is not None and target not in param.targets:
        raise bad(f"{base}={value}: {source}.{code} never points at {target}")
    return [Include(source, param, target, iterate)]


def _wildcard(rtype: str, reverse: bool) -> list[Include]:
    """`_include=*`: every reference parameter of the type; `_revinclude=*`: every one of a type
    the store serves that may point at it (store/searchparams.py)."""
    if not reverse:
        return [Include(rtype, p, None) for p in params_for(rtype).values() if _followed(p)]
    return [
        Include(source, p, None)
        for source in SEARCHED_TYPES
        if STORE in sources_of(source)
        for p in params_for(source).values()
        if _followed(p) and rtype in p.targets
    ]


def _followed(param: SearchParam) -> bool:
    """A parameter an include follows: a reference to Type/id of the store's (not a canonical URL)."""
    return param.type == "reference" and not param.canonical and param.resource != "Resource"


def _parse_name(rtype: str, name: str) -> tuple[tuple[Link, ...], str, str, str]:
    """A parameter's name as (links, the type its last parameter is of, that parameter's code,
    modifier): `code[:modifier]`, a chain `ref[:Type].code...`, `_has:Type:ref:code...` (nested)."""
    links: list[Link] = []
    current, rest = rtype, name
    while True:
        if rest.startswith(HAS_PREFIX) or rest.partition(".")[0] == "_has":
            parts = rest.split(":", 3)
            if len(parts) < 4 or not all(parts[1:]):
                raise bad(
                    f"{name}: _has takes _has:Type:reference:parameter (e.g. _has:{PPD}:package-for:identifier)"
                )
            _, source, code, rest = parts
            ref = _reference_of(name, source, code)
            if current not in ref.targets:
                raise bad(f"{name}: {source}.{code} never points at {current}")
            if current not in chain_targets(ref):
                raise bad(f"{name}: {current} is searched in a list in memory, which _has cannot join")
            links.append(Link(HAS, source, ref, current))
            current = source
            continue
        head, dot, tail = rest.partition(".")
        if not dot:
            code, colon, modifier = rest.partition(":")
            if colon and not modifier:
                raise bad(f"{name}: a ':' must be followed by a modifier")
            return tuple(links), current, code, modifier
        code, colon, target = head.partition(":")
        ref = _reference_of(name, current, code)
        if colon:
            if target not in ref.targets:
                raise bad(
                    f"{name}: {current}.{code} never points at {target!r}; it points at {', '.join(ref.targets)}"
                )
        else:
            onward = tail.partition(".")[0].partition(":")[0]
            fits = [t for t in chain_targets(ref) if tail.startswith(HAS_PREFIX) or onward in params_for(t)]
            if len(fits) != 1:
                raise bad(
                    f"{name}: say which type {current}.{code} points at ({code}:Type.{tail}); "
                    f"it may point at {', '.join(ref.targets)}"
                )
            target = fits[0]
        if target not in chain_targets(ref):
            raise bad(f"{name}: {target} is not a type this server stores; a chain searches those")
        links.append(Link(CHAIN, current, ref, target))
        current, rest = target, tail


def _reference_of(name: str, source: str, code: str) -> SearchParam:
    """The reference parameter a chain or `_has` follows, or a 400 saying why there is none: a
    type searched in the store alone has one (a list in memory has no index to join)."""
    if source not in SEARCHED_TYPES or sources_of(source) != (STORE,):
        raise bad(f"{name}: {source!r} is not a type this server searches in its store alone")
    param = lookup(source, code)
    if param is None or not _followed(param):
        raise bad(f"{name}: {source} has no reference search parameter {code!r} to follow")
    return param


def parse(rtype: str, items: list[tuple[str, str]], strict: bool, limits: Limits = DEFAULT_LIMITS) -> Query:
    """A Query from (name, value) pairs, checked against `limits` first; unknown parameters are
    ignored unless `strict`."""
    limits.check(items)
    query = Query(rtype)
    known = params_for(rtype)
    for name, value in items:
        if name in RESULT_PARAMS or name.partition(":")[0] in INCLUDES:
            _result_param(query, rtype, name, value)
            continue
        if name.startswith(CONTENT_FILTER + ":"):
            raise bad(f"{CONTENT_FILTER} takes no modifier (a view is asked for by name, or not at all)")
        if name == CONTENT_FILTER:
            if value not in VIEWS or query.content_filter not in (None, value):
                raise bad(unknown_view_sentence(value) if value not in VIEWS else "give content-filter once")
            query.content_filter = value
            query.used.append((name, value))
            continue
        first = name.partition(".")[0].partition(":")[0]
        if first != "_has" and first not in known:  # not a parameter of ours, chained or not
            if strict:
                raise bad(f"unknown search parameter {name!r} for {rtype}")
            query.ignored.append(name)
            continue
        links, last_type, code, modifier = _parse_name(rtype, name)
        if len(links) > limits.chain:
            raise limits.exceeded("chain", f"{name[:100]} takes {len(links)} links")
        param = (params_for(last_type) if links else known).get(code)
        if param is None:
            # a chain or _has of a known parameter names its way: a wrong step is the client's to fix
            raise bad(f"unknown search parameter {code[:100]!r} of {last_type} in {name[:200]!r}")
        values = split_values(value)
        if len(values) > 1 and code in BARCODE_PARAMS and _scanned(value):
            values = (value,)  # a scanned code is one value: a batch or serial number may hold a comma
        if any(v == "" for v in values):
            raise bad(f"{name}: empty value")
        if modifier == "missing":
            wrong = next((v for v in values if v not in MISSING_VALUES), None)
            if wrong is not None:
                raise bad(f"{name} takes true or false, not {wrong[:100]!r}")
            query.clauses.append(Clause(param, modifier, values, links, rtype))
            query.used.append((name, value))
            continue
        if (
            modifier
            and modifier not in param.modifiers
            and not (param.type == "reference" and modifier in param.targets)
        ):
            named = f"{param.type} parameter {param.code}"
            supported = ", ".join(f":{m}" for m in param.modifiers) or "none"
            raise bad(f"{name}: the modifier :{modifier} is not supported on {named} (it takes {supported})")
        if param.code == "_id":
            for v in values:
                if not ID_PATTERN.fullmatch(v):
                    raise bad(f"_id: {v!r} is not a valid id")
        if param.type == "date":
            try:
                for v in values:
                    date_range(v)
            except SearchError as e:
                raise bad(f"{name}: {e}") from None
        query.clauses.append(Clause(param, modifier or None, values, links, rtype))
        query.used.append((name, value))
    if any(i.iterate for i in (*query.includes, *query.revincludes)):
        query.include_rounds = limits.iterate
    return query


def _result_param(query: Query, rtype: str, name: str, value: str) -> None:
    base = name.partition(":")[0]
    if base in ("_sort", "_include", "_revinclude") and STORE not in sources_of(rtype):
        raise bad(f"{base} is not supported for {rtype}: it is searched in the {sources_of(rtype)[0]}'s list")
    if name == "_count":
        query.count = whole_number(name, value, 0, MAX_COUNT)
    elif name == "_offset":
        query.offset = whole_number(name, value, 0, 10_000_000)
    elif name == "_snapshot":
        try:
            query.snapshot = Snapshot.parse(value)
        except SearchError as e:
            raise bad(str(e)) from None
    elif name == "_sort":
        for part in value.split(","):
            descending = part.startswith("-")
            code = part.lstrip("-")
            if any(key.param == code for key in query.sort):
                continue  # said before: one key (`_sort=name,name` sorted twice by the same thing)
            param = lookup(rtype, code)
            if param is None or param.type not in ("string", "token", "date") or code == "_tag":
                raise bad(
                    f"cannot sort {rtype} by {code!r}; sort by _id, _lastUpdated or a string or token parameter"
                )
            query.sort.append(SortKey(code, descending))
    elif name.partition(":")[0] == "_include":
        query.includes += _include(rtype, name, value, reverse=False)
    elif name.partition(":")[0] == "_revinclude":
        query.revincludes += _include(rtype, name, value, reverse=True)
    elif name == "_summary":
        if value not in SUMMARY_VALUES:
            raise bad(f"_summary must be one of {', '.join(SUMMARY_VALUES)}, not {value!r}")
        query.summary = value
    elif name == "_elements":
        query.elements = list(dict.fromkeys(e.strip() for e in value.split(",") if e.strip()))
        if not query.elements:
            raise bad("_elements names no element")
    elif name == "_total":
        if value not in TOTAL_VALUES:
            raise bad(f"_total must be one of {', '.join(TOTAL_VALUES)}, not {value!r}")
        query.total = value
