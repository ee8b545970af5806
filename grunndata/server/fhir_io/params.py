"""Turning a search request's parameters into a query the store answers, or a 400 saying why not."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from grunndata.server.fhir_io.responses import FhirError
from grunndata.store import (
    STORE,
    Clause,
    Include,
    SearchError,
    Snapshot,
    SortKey,
    date_range,
    lookup,
    params_for,
    sources_of,
)

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


def bad(message: str) -> FhirError:
    return FhirError(400, "invalid", message)


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


def strict(prefer: str) -> bool:
    """`Prefer: handling=strict`: an unknown parameter is a 400, not a warning in the Bundle."""
    return "handling=strict" in prefer.replace(" ", "")


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


def whole_number(name: str, value: str, low: int, high: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise bad(f"{name} must be a whole number, not {value!r}") from None
    if not low <= n <= high:
        raise bad(f"{name} must be between {low} and {high}, not {n}")
    return n


def _include(rtype: str, value: str, reverse: bool) -> Include:
    name = "_revinclude" if reverse else "_include"
    parts = value.split(":")
    if parts[-1] == "iterate":
        raise bad(f"{name}:iterate is not supported")
    if value == "*" or len(parts) not in (2, 3) or parts[1] == "*":
        raise bad(f"{name} takes Type:parameter or Type:parameter:TargetType, not {value!r}")
    source, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    param = lookup(source, code)
    if param is None or param.type != "reference" or param.resource == "Resource":
        raise bad(f"{name}: {source} has no reference search parameter {code!r}")
    if not reverse and source != rtype:
        raise bad(f"_include={value} names {source}, but this search is for {rtype}")
    if reverse and rtype not in param.targets:
        raise bad(f"_revinclude={value}: {source}.{code} never points at {rtype}")
    if target is not None and target not in param.targets:
        raise bad(f"{name}={value}: {source}.{code} never points at {target}")
    return Include(source, param, target)


def parse(rtype: str, items: list[tuple[str, str]], strict: bool) -> Query:
    """A Query from (name, value) pairs; unknown parameters are ignored unless `strict`."""
    query = Query(rtype)
    known = params_for(rtype)
    for name, value in items:
        if name in RESULT_PARAMS:
            _result_param(query, rtype, name, value)
            continue
        code, _, modifier = name.partition(":")
        param = known.get(code)
        if param is None:
            if strict:
                raise bad(f"unknown search parameter {name!r} for {rtype}")
            query.ignored.append(name)
            continue
        values = split_values(value)
        if any(v == "" for v in values):
            raise bad(f"{name}: empty value")
        if modifier == "missing":
            raise bad(f"{name}: the :missing modifier is not supported")
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
        query.clauses.append(Clause(param, modifier or None, values))
        query.used.append((name, value))
    return query


def _result_param(query: Query, rtype: str, name: str, value: str) -> None:
    if name in ("_sort", "_include", "_revinclude") and STORE not in sources_of(rtype):
        raise bad(f"{name} is not supported for {rtype}: it is searched in the {sources_of(rtype)[0]}'s list")
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
            param = lookup(rtype, code)
            if param is None or param.type not in ("string", "token", "date") or code == "_tag":
                raise bad(
                    f"cannot sort {rtype} by {code!r}; sort by _id, _lastUpdated or a string or token parameter"
                )
            query.sort.append(SortKey(code, descending))
    elif name == "_include":
        query.includes.append(_include(rtype, value, reverse=False))
    elif name == "_revinclude":
        query.revincludes.append(_include(rtype, value, reverse=True))
    elif name == "_summary":
        if value not in SUMMARY_VALUES:
            raise bad(f"_summary must be one of {', '.join(SUMMARY_VALUES)}, not {value!r}")
        query.summary = value
    elif name == "_elements":
        query.elements = [e.strip() for e in value.split(",") if e.strip()]
        if not query.elements:
            raise bad("_elements names no element")
    elif name == "_total":
        if value not in TOTAL_VALUES:
            raise bad(f"_total must be one of {', '.join(TOTAL_VALUES)}, not {value!r}")
        query.total = value
