"""Search: a query's clauses as SQL over the search index, sorting and paging in the database,
`_include`/`_revinclude`, and the same rules applied in Python to resources other sources list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, and_, false, func, literal, not_, or_, select
from sqlalchemy.engine import Connection

from grunndata.fhir import identifiers
from grunndata.store import barcodes
from grunndata.store.access import unserved_releases
from grunndata.store.models import C, R, X
from grunndata.store.read import (
    COLUMNS,
    SearchError,
    Snapshot,
    Version,
    read_many,
    utc,
    version_of,
    visible,
)
from grunndata.store.searchparams import (
    BARCODE_PARAMS,
    IDENTIFIER_PARAMS,
    TIER_SYSTEM,
    IndexRow,
    SearchParam,
    date_span,
    hierarchy_ancestors,
    lookup,
    normalise,
    stamp,
)


@dataclass(frozen=True, slots=True)
class Link:
    """One step a chained parameter or a `_has` takes before its last parameter is matched.

    A chain (`package-for.name`) goes from `source` along its reference `param` to `target`; a
    `_has` (`_has:PackagedProductDefinition:package-for:identifier`) goes from `target` back to the
    `source` resources whose reference `param` points at it."""

    kind: str  # CHAIN or HAS
    source: str  # the type holding the reference
    param: SearchParam  # the reference parameter of `source`
    target: str  # the type it points at

    @property
    def onward(self) -> str:
        """The type the next step (or the last parameter) is of."""
        return self.target if self.kind == CHAIN else self.source


CHAIN, HAS = "chain", "has"


@dataclass(frozen=True, slots=True)
class Clause:
    """One search parameter of a query: its values are OR-ed, clauses are AND-ed. With `links`,
    `param` is of the type the last link reaches (a chained parameter, `_has`)."""

    param: SearchParam
    modifier: str | None
    values: tuple[str, ...]
    links: tuple[Link, ...] = ()
    rtype: str = ""  # the type searched: what :missing and :not count the resources of


@dataclass(frozen=True, slots=True)
class SortKey:
    param: str  # a search parameter code, _id or _lastUpdated
    descending: bool


@dataclass(frozen=True, slots=True)
class Include:
    """One `_include` or `_revinclude` of a search."""

    source: str  # the resource type holding the reference
    param: SearchParam
    target: str | None  # only resources of this type, when given
    iterate: bool = False  # followed from what the includes bring too, round after round


LIKE_PATTERN_BYTES = 50_000
"""SQLite's SQLITE_MAX_LIKE_PATTERN_LENGTH: a longer pattern is its error ("LIKE or GLOB pattern too
complex"), not a match. The server's bound on a value's characters keeps patterns under it (a
character normalises to at most 33 bytes); this holds for any caller."""


def _like(text: str, contains: bool) -> str:
    """The LIKE pattern of a string search (prefix, or anywhere with `contains`); SearchError when
    it is longer than SQLite would take."""
    escaped = normalise(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = ("%" if contains else "") + escaped + "%"
    if len(pattern.encode()) > LIKE_PATTERN_BYTES:
        raise SearchError(
            f"the text to match is {len(pattern.encode()):,} bytes, more than {LIKE_PATTERN_BYTES:,}"
        )
    return pattern


def _token(value: str) -> tuple[str | None, str | None]:
    """system|code, |code, system|, code -> (system or None for any, code or None for any)."""
    if "|" not in value:
        return None, value
    system, code = value.split("|", 1)
    return system, (code or None)


TokenForm = tuple[tuple[str, ...] | None, tuple[str, ...] | None]  # (systems, codes); None: any


def _token_forms(param: SearchParam, value: str) -> TokenForm:
    """The systems and codes a token value matches. On an identifier parameter, any accepted
    alias system and value form of the identifier's kind finds what is served in its one form
    (fhir/identifiers.py: dictionary lookups); a code without a system, in each of its forms."""
    system, code = _token(value)
    if system is None and code is None:
        raise SearchError(f"{param.code}: '|' alone is not a token")
    if (param.resource, param.code) not in IDENTIFIER_PARAMS:
        return (None if system is None else (system,)), (None if code is None else (code,))
    if code is not None and param.code in BARCODE_PARAMS:
        # a scanned GS1 code (element string or Digital Link) is searched by the GTIN it carries
        code = identifiers.gs1_gtin(code) or code
    if system is None:
        return None, identifiers.value_forms(code or "")
    return identifiers.searched(system, code, param.resource)


def _one_of(column: Any, values: tuple[str, ...]) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = column == values[0] if len(values) == 1 else column.in_(values)
    return condition


def _index_condition(param: SearchParam, modifier: str | None, value: str) -> ColumnElement[bool]:
    name = f"{param.resource}.{param.code}"
    if param.type == "token":
        if modifier in ("above", "below"):
            system, codes_of = _in_hierarchy(param, modifier, value)
            matched: ColumnElement[bool] = (
                X.c.value.in_(codes_of) if isinstance(codes_of, list) else _starts(X.c.value, codes_of)
            )
            return and_(X.c.param == name, X.c.system == system, matched)
        if modifier is not None:
            raise SearchError(f"the modifier :{modifier} is not supported on token parameter {param.code}")
        systems, codes = _token_forms(param, value)
        conds = [X.c.param == name]
        if systems is not None:
            conds.append(_one_of(X.c.system, systems))
        if codes is not None:
            conds.append(_one_of(X.c.value, codes))
        return and_(*conds)
    if param.type == "string":
        if modifier == "exact":
            return and_(X.c.param == name, X.c.exact == value)
        if not normalise(value):
            raise SearchError(f"{param.code}: give some text to search for")
        if modifier in (None, "contains"):
            return and_(X.c.param == name, X.c.value.like(_like(value, modifier == "contains"), escape="\\"))
        raise SearchError(f"the modifier :{modifier} is not supported on string parameter {param.code}")
    if param.type == "reference":
        return and_(X.c.param == name, X.c.value.in_(_reference_values(param, modifier, value)))
    if param.type == "uri":
        if modifier == "above":
            return and_(X.c.param == name, X.c.value.in_(_url_ancestors(param, value)))
        if modifier == "below":
            base = _url_ancestors(param, value)[-1]
            return and_(X.c.param == name, or_(X.c.value == base, _starts(X.c.value, base + "/")))
        if modifier is not None:
            raise SearchError(f"the modifier :{modifier} is not supported on uri parameter {param.code}")
        return and_(X.c.param == name, X.c.value == value)
    if param.type == "date":
        if modifier is not None:
            raise SearchError(f"the modifier :{modifier} is not supported on date parameter {param.code}")
        return and_(X.c.param == name, _indexed_date_condition(value))
    raise SearchError(f"{param.code}: {param.type} parameters are not supported")


def _starts(column: Any, prefix: str) -> ColumnElement[bool]:
    """The column's text begins with `prefix`, case and all (SQLite's LIKE ignores ASCII case)."""
    condition: ColumnElement[bool] = func.substr(column, 1, len(prefix)) == prefix
    return condition


def _in_hierarchy(param: SearchParam, modifier: str, value: str) -> tuple[str, list[str] | str]:
    """A token's :above (the code and those above it: a list) or :below (the code and those under
    it: ATC's are the codes it is a prefix of, a str) in the parameter's code system hierarchy; a
    value without a system is of that system."""
    if not param.hierarchy:
        raise SearchError(
            f"{param.code}:{modifier}: {param.code} has no code system hierarchy to follow; "
            "the parameters with one list :above and :below in /fhir/metadata"
        )
    system, code = _token(value)
    system = param.hierarchy if system is None else system
    ancestors = hierarchy_ancestors(system, code or "")
    if ancestors is None:
        raise SearchError(
            f"{param.code}:{modifier}={value}: give a code of {param.hierarchy} (e.g. L04A), "
            "whose hierarchy this server knows"
        )
    return system, ancestors if modifier == "above" else ancestors[-1]


def _url_ancestors(param: SearchParam, value: str) -> list[str]:
    """A URL and the URLs above it, path segment by segment (R5: uri :above and :below compare
    URLs by their paths, and do not apply to URNs such as OIDs)."""
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("http", "https") or not rest.strip("/"):
        raise SearchError(f"{param.code}: :above and :below take a http(s) URL, not {value!r}")
    host, *segments = rest.rstrip("/").split("/")
    out = [f"{scheme}://{host}"]
    for segment in segments:
        out.append(f"{out[-1]}/{segment}")
    return out


def _reference_values(param: SearchParam, modifier: str | None, value: str) -> list[str]:
    """The stored forms ("Type/id", or a canonical URL) a reference search value can mean."""
    if param.canonical:
        if modifier is not None:
            raise SearchError(f"the modifier :{modifier} is not supported on {param.code} (a canonical URL)")
        return [value.partition("|")[0]]
    parts = [p for p in value.rstrip("/").split("/") if p]
    if modifier is not None:
        if modifier not in param.targets:
            raise SearchError(
                f"{param.code} cannot point at {modifier}; it points at {', '.join(param.targets)}"
            )
        if len(parts) != 1:
            raise SearchError(f"{param.code}:{modifier} takes a plain id, not {value!r}")
        return [f"{modifier}/{parts[0]}"]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return [f"{parts[-2]}/{parts[-1]}"]
    if len(parts) == 1:
        return [f"{t}/{parts[0]}" for t in param.targets]
    raise SearchError(f"{param.code}: {value!r} is not a reference (use Type/id or an id)")


_DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")


def date_range(value: str) -> tuple[str, datetime, datetime]:
    """A date search value -> (prefix, start, end): the instants it covers, end exclusive."""
    try:
        return _date_range(value)
    except (ValueError, OverflowError) as e:
        if isinstance(e, SearchError):
            raise
        raise SearchError(f"{value!r} is outside the dates this server can compare") from None


def _date_range(value: str) -> tuple[str, datetime, datetime]:
    prefix = value[:2] if value[:2] in _DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] in _DATE_PREFIXES else value
    try:
        start, end = date_span(text)
    except ValueError as e:
        if "time zone" in str(e):
            raise SearchError(str(e)) from None
        raise SearchError(
            f"not a date or time: {value!r} (e.g. 2026-11-21 or 2026-11-21T10:00:00Z)"
        ) from None
    return prefix, start, end


def _date_condition(column: Any, value: str) -> ColumnElement[bool]:
    prefix, start, end = date_range(value)
    lo, hi = utc(start), utc(end)
    conditions: dict[str, ColumnElement[bool]] = {
        "eq": and_(column >= lo, column < hi),
        "ne": or_(column < lo, column >= hi),
        "gt": column >= hi,
        "sa": column >= hi,
        "ge": column >= lo,
        "lt": column < lo,
        "eb": column < lo,
        "le": column < hi,
    }
    return conditions[prefix]


def _indexed_date_condition(value: str) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = _date_test(value, X.c.value, X.c.exact, and_, or_)
    return condition


def _date_test(value: str, first: Any, after: Any, both: Any, either: Any) -> Any:
    """An indexed date's range [first, after) against the search value's (R5 3.2.1.5.9), as SQL
    (columns, and_, or_) or in memory (strings, and, or): one rule for both."""
    prefix, start, end = date_range(value)
    lo, hi = stamp(start), stamp(end)
    if prefix == "eq":
        return both(first >= lo, after <= hi)
    if prefix == "ne":
        return either(first < lo, after > hi)
    return {
        "gt": lambda: after > hi,
        "lt": lambda: first < lo,
        "ge": lambda: after > lo,
        "le": lambda: first < hi,
        "sa": lambda: first >= hi,
        "eb": lambda: after <= lo,
    }[prefix]()


def _clause_condition(
    clause: Clause, conn: Connection | None = None, snapshot: Snapshot | None = None
) -> ColumnElement[bool]:
    if clause.links:
        return _linked_condition(clause, conn, snapshot)
    if clause.modifier == "missing":
        return _missing_condition(clause)
    if clause.modifier == "not":
        if clause.param.type != "token":
            raise SearchError(
                f":not is a modifier of token parameters; {clause.param.code} is a {clause.param.type}"
            )
        found = _clause_condition(replace(clause, modifier=None), conn, snapshot)
        return and_(R.c.type == _searched(clause), not_(found))
    code = clause.param.code
    if code.startswith("_") and clause.modifier is not None:
        raise SearchError(f"the modifier :{clause.modifier} is not supported on {code}")
    if code == "_id":
        ids: ColumnElement[bool] = R.c.id.in_(clause.values)
        return ids
    if code == "_lastUpdated":
        return or_(*(_date_condition(R.c.last_updated, v) for v in clause.values))
    if code in ("_tag", "tier"):  # Organization's tier is its _tag (searchparams.py)
        tiers = []
        for v in clause.values:
            system, tier = _token(v)
            if system not in (None, TIER_SYSTEM) or tier is None:
                return false()  # a tag we never set matches nothing
            tiers.append(tier)
        tier_match: ColumnElement[bool] = R.c.tier.in_(tiers)
        return tier_match
    matching = select(X.c.resource_pk).where(_values_condition(clause))
    indexed: ColumnElement[bool] = R.c.pk.in_(matching)
    if (clause.param.resource, code) == (PPD, "barcode") and conn is not None and snapshot is not None:
        items = list(barcode_items(conn, snapshot, clause))
        if items:  # a package holding an item with the code: the item's barcode found the package
            holding = select(X.c.resource_pk).where(
                X.c.param == f"{PPD}.any-level-item", X.c.value.in_(items)
            )
            return or_(indexed, R.c.pk.in_(holding))
    return indexed


def _values_condition(clause: Clause) -> ColumnElement[bool]:
    """A clause's values OR-ed. A plain token's are grouped by the systems they ask for, one IN of
    codes each: cheaper to plan than 250 ORs, and shallower (SQLite refuses an expression over 1,000
    deep, and a chain's subqueries make one deeper: server/fhir_io/params.py counts their values)."""
    param, modifier = clause.param, clause.modifier
    if param.type != "token" or modifier is not None or len(clause.values) == 1:
        return or_(*(_index_condition(param, modifier, v) for v in clause.values))
    name = f"{param.resource}.{param.code}"
    grouped: dict[tuple[str, ...] | None, set[str] | None] = {}
    for value in clause.values:
        systems, codes = _token_forms(param, value)
        known = grouped.get(systems, set())
        grouped[systems] = None if codes is None or known is None else known | set(codes)
    conditions = []
    for systems, found in grouped.items():
        conds = [X.c.param == name]
        if systems is not None:
            conds.append(_one_of(X.c.system, systems))
        if found is not None:
            conds.append(_one_of(X.c.value, tuple(sorted(found))))
        conditions.append(and_(*conds))
    return or_(*conditions)


def _searched(clause: Clause) -> str:
    return clause.rtype or clause.param.resource


MISSING_VALUES = ("true", "false")


def missing_flags(clause: Clause) -> set[bool]:
    """What `:missing`'s values ask: {True} (no value), {False} (a value), or both."""
    for value in clause.values:
        if value not in MISSING_VALUES:
            raise SearchError(f"{clause.param.code}:missing takes true or false, not {value!r}")
    return {v == "true" for v in clause.values}


def _missing_condition(clause: Clause) -> ColumnElement[bool]:
    """`:missing=true`: resources of the type with no value of the parameter; `false`: with one.
    The parameters answered from the store's columns (_id, _lastUpdated, _tag) are never missing."""
    flags = missing_flags(clause)
    rtype = _searched(clause)
    everything: ColumnElement[bool] = R.c.type == rtype
    if len(flags) == 2:
        return everything
    if not clause.param.path:
        return false() if True in flags else everything
    valued = R.c.pk.in_(
        select(X.c.resource_pk).where(X.c.param == f"{clause.param.resource}.{clause.param.code}")
    )
    return and_(everything, not_(valued)) if True in flags else valued


def _linked_condition(
    clause: Clause, conn: Connection | None, snapshot: Snapshot | None
) -> ColumnElement[bool]:
    """A chained parameter's or `_has`'s condition: the rest of the clause matched among the
    resources the snapshot serves of the type its first link reaches (so a client finds nothing
    through data it may not read), joined back by the link's reference rows."""
    if snapshot is None:
        raise SearchError("a chained parameter or _has needs the served snapshot")
    link = clause.links[0]
    rest = replace(clause, links=clause.links[1:], rtype=link.onward)
    where = [_clause_condition(rest, conn, snapshot)]
    if not rest.links and not rest.param.path and rest.modifier is None:
        where.append(R.c.type == link.onward)  # _id, _lastUpdated, _tag name no type
    name = f"{link.source}.{link.param.code}"
    if link.kind == CHAIN:
        pointed = literal(f"{link.target}/", String) + R.c.id
        targets = select(pointed).select_from(visible(snapshot)).where(*where).correlate(None)
        chained: ColumnElement[bool] = R.c.pk.in_(
            select(X.c.resource_pk).where(X.c.param == name, X.c.value.in_(targets))
        )
        return chained
    prefix = f"{link.target}/"
    sources = select(R.c.pk).select_from(visible(snapshot)).where(*where).correlate(None)
    pointed_at = select(func.substr(X.c.value, len(prefix) + 1)).where(
        X.c.param == name, _starts(X.c.value, prefix), X.c.resource_pk.in_(sources)
    )
    return and_(R.c.type == link.target, R.c.id.in_(pointed_at))


PPD, MID = "PackagedProductDefinition", "ManufacturedItemDefinition"
_ITEMS_MEMO = "grunndata.barcode-items"
"""Connection.info key: the items a barcode clause found, kept from a search to its matches
(`barcode_matches`) on the same connection, and dropped when either starts or ends: one request."""
MAX_BARCODE_ITEMS = 1000
"""The most items a barcode search follows into the packages holding them (a code names a few)."""


def _forms(clause: Clause) -> list[barcodes.Forms]:
    return [_token_forms(clause.param, v) for v in clause.values]


def barcode_items(conn: Connection, snapshot: Snapshot, clause: Clause) -> dict[str, list[dict[str, Any]]]:
    """The served manufactured items (``Type/id``) whose barcode a PackagedProductDefinition
    `barcode` clause names, each with its matching identifiers: the items the client may read only."""
    memo: dict[Any, dict[str, list[dict[str, Any]]]] = conn.info.setdefault(_ITEMS_MEMO, {})
    key = (snapshot.releases, clause.values)
    if key in memo:  # the search's condition asked already: its matches ask again
        return memo[key]
    item_param = Clause(lookup_param(MID, "barcode"), None, clause.values)
    matching = select(X.c.resource_pk).where(
        or_(*(_index_condition(item_param.param, None, v) for v in item_param.values))
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for version in _served_matching(conn, snapshot, matching, MAX_BARCODE_ITEMS):
        ids = [m.identifier for f in _forms(item_param) for m in barcodes.item_matches(version.resource(), f)]
        found[f"{version.type}/{version.id}"] = ids
    memo[key] = found
    return found


def lookup_param(resource: str, code: str) -> SearchParam:
    param = lookup(resource, code)
    assert param is not None, (resource, code)
    return param


def barcode_matches(
    conn: Connection, snapshot: Snapshot, rtype: str, clauses: Sequence[Clause], page: Sequence[Version]
) -> dict[int, list[barcodes.Match]]:
    """Where each resource of a page carries the code its barcode clauses (BARCODE_PARAMS) asked
    for, by pk: the package itself, a packaging level (DMP's depth, the level's PackageLevel), or a
    contained item; empty when the search asked for no barcode."""
    asked = [
        c
        for c in clauses
        if c.param.code in BARCODE_PARAMS and c.param.resource == rtype and c.modifier is None and not c.links
    ]
    if not asked or not page:
        conn.info.pop(_ITEMS_MEMO, None)
        return {}
    try:
        return _barcode_matches(conn, snapshot, rtype, asked, page)
    finally:
        conn.info.pop(_ITEMS_MEMO, None)


def _barcode_matches(
    conn: Connection, snapshot: Snapshot, rtype: str, asked: Sequence[Clause], page: Sequence[Version]
) -> dict[int, list[barcodes.Match]]:
    found: dict[int, list[barcodes.Match]] = {}
    for clause in asked:
        code = clause.param.code
        items = barcode_items(conn, snapshot, clause) if (rtype, code) == (PPD, "barcode") else {}
        depth = None
        if code.startswith("package-item-level-"):
            depth = barcodes.LEVEL_WORDS.index(code.rsplit("-", 1)[1]) + 1
        for version in page:
            resource = version.resource()
            for forms in _forms(clause):
                if rtype == MID:
                    matches = barcodes.item_matches(resource, forms)
                else:
                    matches = barcodes.package_matches(
                        resource, forms, depth, items if depth is None else None
                    )
                mine = found.setdefault(version.pk, [])
                mine += [m for m in matches if m not in mine]
    return found


def clause_matches(clause: Clause, resource: dict[str, Any], rows: Sequence[IndexRow]) -> bool:
    """Whether a resource that is not in the store (the service catalogue's, the terminology
    service's maps) matches `clause` as a stored one would: `rows` are its `index_rows`, its tiers
    are in meta.tag. No last-updated time is known for such a resource, so `_lastUpdated` never
    matches it."""
    if clause.links:
        raise SearchError("chained parameters and _has search the store's types only")
    if clause.modifier == "missing":
        flags = missing_flags(clause)
        if not clause.param.path:
            return False in flags
        name = f"{clause.param.resource}.{clause.param.code}"
        return (not any(r.param == name for r in rows)) in flags
    if clause.modifier == "not":
        if clause.param.type != "token":
            raise SearchError(
                f":not is a modifier of token parameters; {clause.param.code} is a {clause.param.type}"
            )
        return not clause_matches(replace(clause, modifier=None), resource, rows)
    code = clause.param.code
    if code.startswith("_") and clause.modifier is not None:
        raise SearchError(f"the modifier :{clause.modifier} is not supported on {code}")
    if code == "_id":
        return resource.get("id") in clause.values
    if code == "_lastUpdated":
        for v in clause.values:
            date_range(v)  # a bad value is a 400 here as well
        return False
    if code in ("_tag", "tier"):
        tiers = {
            t.get("code") for t in resource.get("meta", {}).get("tag", []) if t.get("system") == TIER_SYSTEM
        }
        return any(_token(v)[0] in (None, TIER_SYSTEM) and _token(v)[1] in tiers for v in clause.values)
    name = f"{clause.param.resource}.{code}"
    mine = [r for r in rows if r.param == name]
    return any(_row_matches(clause.param, clause.modifier, v, r) for v in clause.values for r in mine)


def _row_matches(param: SearchParam, modifier: str | None, value: str, row: IndexRow) -> bool:
    """`_index_condition`, for one index row in memory."""
    _index_condition(param, modifier, value)  # the same SearchError for a value or modifier it refuses
    if param.type == "token" and modifier in ("above", "below"):
        system, codes_of = _in_hierarchy(param, modifier, value)
        within = row.value in codes_of if isinstance(codes_of, list) else row.value.startswith(codes_of)
        return row.system == system and within
    if param.type == "token":
        systems, codes = _token_forms(param, value)
        return (systems is None or row.system in systems) and (codes is None or row.value in codes)
    if param.type == "string":
        if modifier == "exact":
            return row.exact == value
        if modifier == "contains":
            return normalise(value) in row.value
        return row.value.startswith(normalise(value))
    if param.type == "reference":
        return row.value in _reference_values(param, modifier, value)
    if param.type == "date":
        return bool(_date_test(value, row.value, row.exact or "", lambda a, b: a and b, lambda a, b: a or b))
    if modifier == "above":
        return row.value in _url_ancestors(param, value)
    if modifier == "below":
        base = _url_ancestors(param, value)[-1]
        return row.value == base or row.value.startswith(base + "/")
    return row.value == value  # uri


def _sort_column(rtype: str, key: SortKey) -> Any:
    if key.param == "_id":
        return R.c.id
    if key.param == "_lastUpdated":
        return R.c.last_updated
    return (
        select(func.min(X.c.value))
        .where(X.c.resource_pk == R.c.pk, X.c.param == f"{rtype}.{key.param}")
        .scalar_subquery()
    )


def search(
    conn: Connection,
    snapshot: Snapshot,
    rtype: str,
    clauses: Sequence[Clause],
    *,
    sort: Sequence[SortKey] = (),
    count: int = 20,
    offset: int = 0,
    with_total: bool = False,
    with_page: bool = True,
    excluded: Sequence[str] = (),
) -> tuple[list[Version], bool, int | None]:
    """One page of matches, whether there are more, and (when asked) how many match in all.

    `excluded`: content-filter codes (translators/content_filters.py); a resource a release's
    filter of one of them excludes is no match, so totals and pages count without it."""
    conn.info.pop(_ITEMS_MEMO, None)  # a memo of another request's is never read
    where = [_clause_condition(c, conn, snapshot) for c in clauses]
    if excluded:
        where.append(not_excluded(snapshot, excluded))
    if not any(c.param.path for c in clauses):
        # an indexed parameter names its type already; saying it again makes SQLite walk every
        # resource of the type in id order instead of looking up the few that match
        where.append(R.c.type == rtype)
    total = None
    if with_total:
        total = conn.execute(select(func.count()).select_from(visible(snapshot)).where(*where)).scalar() or 0
    if not with_page:
        return [], False, total
    order = []
    for key in sort:
        column = _sort_column(rtype, key)
        order.append(column.desc() if key.descending else column.asc())
    order.append(R.c.id.asc())
    # pick the page by key first, then fetch its bytes: sorting thousands of matches with their
    # data attached costs ten times more than sorting their keys
    pks = [
        pk
        for (pk,) in conn.execute(
            select(R.c.pk)
            .select_from(visible(snapshot))
            .where(*where)
            .order_by(*order)
            .limit(count + 1)
            .offset(offset)
        )
    ]
    page = pks[:count]
    stored = (
        {r[0]: version_of(r) for r in conn.execute(select(*COLUMNS).where(R.c.pk.in_(page)))} if page else {}
    )
    return [stored[pk] for pk in page], len(pks) > count, total


def not_excluded(snapshot: Snapshot, codes: Sequence[str]) -> ColumnElement[bool]:
    """The served version is not excluded by any of the content filters `codes` in the snapshot's
    releases (a per-release fact: store/models.py ContentFilter). A version belongs to one line, and
    a snapshot serves one release per line, so the rows of the snapshot's releases are its release's.
    One uncorrelated set of the few excluded versions: a NOT EXISTS probed per match cost five times
    the search for 10,000 packages."""
    out = select(C.c.resource_pk).where(
        C.c.release_id.in_(snapshot.releases or (-1,)), C.c.code.in_(list(codes))
    )
    condition: ColumnElement[bool] = R.c.pk.not_in(out)
    return condition


def ever_excluded(conn: Connection, rtype: str, rid: str, version: int, codes: Sequence[str]) -> set[str]:
    """The content filters `codes` that left version `version` of (rtype, rid) out of any release
    (the R4 H-resept view's histories leave such a version out; its vread does the same)."""
    if not codes:
        return set()
    pk = select(R.c.pk).where(R.c.type == rtype, R.c.id == rid, R.c.version == version).scalar_subquery()
    found = conn.execute(
        select(C.c.code)
        .where(C.c.resource_pk == pk, C.c.code.in_(list(codes)), C.c.release_id.not_in(unserved_releases()))
        .distinct()
    )
    return {code for (code,) in found}


def excluded_of(
    conn: Connection, snapshot: Snapshot, pks: Sequence[int], codes: Sequence[str]
) -> dict[int, set[str]]:
    """Of the versions `pks`, those the snapshot's content filters `codes` exclude, with the codes
    (for `_include`d resources, reads in a filtered view, and the R4 H-resept view)."""
    found: dict[int, set[str]] = {}
    if not codes or not pks or not snapshot.releases:
        return found
    for i in range(0, len(pks), 500):
        rows = conn.execute(
            select(C.c.resource_pk, C.c.code).where(
                C.c.release_id.in_(snapshot.releases),
                C.c.resource_pk.in_(list(pks[i : i + 500])),
                C.c.code.in_(list(codes)),
            )
        )
        for pk, code in rows:
            found.setdefault(int(pk), set()).add(str(code))
    return found


def references_from(conn: Connection, versions: Sequence[Version], param: str) -> list[tuple[str, str]]:
    """The (type, id) the `param` ("Type.code") values of `versions` point at, in order."""
    pks = [v.pk for v in versions]
    found: list[tuple[str, str]] = []
    for i in range(0, len(pks), 500):
        rows = conn.execute(
            select(X.c.value).where(X.c.param == param, X.c.resource_pk.in_(pks[i : i + 500])).distinct()
        )
        for (value,) in rows:
            rtype, _, rid = value.partition("/")
            found.append((rtype, rid))
    return sorted(set(found))


def _served_matching(conn: Connection, snapshot: Snapshot, matching: Any, limit: int) -> list[Version]:
    """Served versions whose pk `matching` (a subquery on the index) selects, by id.

    No type condition: an index parameter's name holds its type, and naming the type again
    makes SQLite walk every resource of it (see `search`).
    """
    rows = conn.execute(
        select(*COLUMNS)
        .select_from(visible(snapshot))
        .where(R.c.pk.in_(matching))
        .order_by(R.c.id)
        .limit(limit)
    )
    return [version_of(r) for r in rows]


def referring(
    conn: Connection, snapshot: Snapshot, rtype: str, param: str, targets: Sequence[str], limit: int = 1000
) -> list[Version]:
    """Served resources of `rtype` whose reference parameter `param` points at one of `targets`."""
    if not targets:
        return []
    matching = select(X.c.resource_pk).where(X.c.param == f"{rtype}.{param}", X.c.value.in_(list(targets)))
    return _served_matching(conn, snapshot, matching, limit)


def with_tokens(
    conn: Connection,
    snapshot: Snapshot,
    rtype: str,
    param: str,
    tokens: Sequence[tuple[str, str]],
    limit: int = 1000,
) -> list[Version]:
    """Served resources of `rtype` with a (system, code) of token parameter `param` in `tokens`."""
    if not tokens:
        return []
    matching = select(X.c.resource_pk).where(
        X.c.param == f"{rtype}.{param}",
        or_(*(and_(X.c.system == s, X.c.value == c) for s, c in tokens)),
    )
    return _served_matching(conn, snapshot, matching, limit)


def index_tokens(conn: Connection, version: Version, param: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(X.c.system, X.c.value).where(
            X.c.resource_pk == version.pk, X.c.param == f"{version.type}.{param}"
        )
    )
    return sorted((s, v) for s, v in rows)


def included(
    conn: Connection,
    snapshot: Snapshot,
    page: Sequence[Version],
    includes: Sequence[Include],
    revincludes: Sequence[Include],
    listed: Sequence[tuple[str, str]] = (),
    rounds: int = 1,
) -> list[Version]:
    """What `_include` and `_revinclude` add to a page: the store's matches, and those pointing at
    the (type, id) `listed` by other sources (they can be pointed at, but point at nothing the
    store serves). The `iterate` ones are followed again from what the last round brought, for at
    most `rounds` rounds in all (the server's bound), each resource once."""
    if not page and not listed:
        return []
    seen = {(v.type, v.id) for v in page} | set(listed)
    found: list[Version] = []
    frontier, frontier_listed = list(page), list(listed)
    for _ in range(rounds):
        brought = _include_once(conn, snapshot, frontier, includes, revincludes, frontier_listed, seen)
        found += brought
        includes = [i for i in includes if i.iterate]
        revincludes = [i for i in revincludes if i.iterate]
        if not brought or not (includes or revincludes):
            break
        frontier, frontier_listed = brought, []
    return found


def _include_once(
    conn: Connection,
    snapshot: Snapshot,
    page: Sequence[Version],
    includes: Sequence[Include],
    revincludes: Sequence[Include],
    listed: Sequence[tuple[str, str]],
    seen: set[tuple[str, str]],
) -> list[Version]:
    """One round of includes from `page` (and `listed`): what they bring that is not `seen` yet."""
    found: list[Version] = []
    for inc in includes:
        keys = references_from(conn, page, f"{inc.source}.{inc.param.code}") if page else []
        keys = [k for k in keys if (inc.target is None or k[0] == inc.target) and k not in seen]
        for v in read_many(conn, snapshot, keys):
            seen.add((v.type, v.id))
            found.append(v)
    for inc in revincludes:
        targets = [f"{v.type}/{v.id}" for v in page if v.type in inc.param.targets]
        targets += [f"{t}/{i}" for t, i in listed if t in inc.param.targets]
        for v in referring(conn, snapshot, inc.source, inc.param.code, targets):
            if (v.type, v.id) not in seen:
                seen.add((v.type, v.id))
                found.append(v)
    return found


def index_values(
    conn: Connection, snapshot: Snapshot, params: Sequence[str]
) -> list[tuple[str, str, str, str, str, str | None]]:
    """(type, id, param, system, value, exact) of every index row of `params` the snapshot serves.

    The terminology service builds its FEST id <-> IDMP maps from these, once per snapshot.
    """
    rows = conn.execute(
        select(R.c.type, R.c.id, X.c.param, X.c.system, X.c.value, X.c.exact)
        .select_from(visible(snapshot).join(X, X.c.resource_pk == R.c.pk))
        .where(X.c.param.in_(list(params)))
        .order_by(R.c.type, R.c.id, X.c.id)
    )
    return [(t, i, p, s, v, e) for t, i, p, s, v, e in rows]
