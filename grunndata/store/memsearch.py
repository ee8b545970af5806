"""The first-time searches clients ask most, answered from memory: one snapshot's index of a few
parameters (FAST_PARAMS), built when the snapshot is served, matched by the rules of search.py.

A first-time search by varenr cost ~2 ms of Python building and compiling its SQL, and a name
`:contains` scanned the name rows of every version ever stored; this index holds, per parameter,
the served versions' values and answers the same question in microseconds. It answers only the
clauses it can answer exactly as the SQL does (`answers`); anything else is the store's to search.
"""

from __future__ import annotations

import sys
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection, Dialect, Engine

from grunndata.store.models import M, R, X
from grunndata.store.read import COLUMNS, SearchError, Snapshot, Version, version_of
from grunndata.store.search import Clause, _like, _token_forms
from grunndata.store.searchparams import lookup, normalise

FAST_PARAMS = (
    "PackagedProductDefinition.identifier",  # varenr, FEST id (EPJ, PLL, the find-a-drug page)
    "PackagedProductDefinition.name",
    "MedicinalProductDefinition.identifier",
    "MedicinalProductDefinition.product-classification",  # ATC
    "MedicinalProductDefinition.name",  # what a clinician types
    "SubstanceDefinition.name",
)
"""The parameters held in memory ("Type.code"): token or string parameters only."""

_SEPARATOR = "\x00"  # between the values of a string parameter's text: never in a search's text
_GRAM = 3  # the length of the pieces of a value `:contains` is looked up by
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(slots=True)
class _Type:
    """The served versions of one type, in the order the database sorts their ids (ORDER BY id,
    its collation): a match is a position here, so a page is a slice of sorted positions."""

    pks: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    ordered: bool = True  # False: an id served twice (two lines), whose order the database leaves open


@dataclass(slots=True)
class _Tokens:
    """A token parameter: value -> (system, position) of each served version holding it."""

    rtype: str
    by_value: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


@dataclass(slots=True)
class _Strings:
    """A string parameter's normalised values (`values[i]`, of the version at `positions[i]`, in
    position order). A prefix is found by bisection in the values sorted (`ordered`, with their
    positions in `ordered_positions`); a `:contains` text of _GRAM letters or more among the values
    holding its rarest trigram (`grams`: trigram -> the i holding it, ascending); a shorter one
    (it is in a good share of them anyway) in the values joined by _SEPARATOR into one text, with
    str.find (C speed), where `starts[i]` is where value i begins. A scan of the whole text was
    ~0.3 ms a search at full size, most of a name search's cost."""

    rtype: str
    param: str  # its code
    text: str = ""
    starts: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    usable: bool = True  # False: a value holds _SEPARATOR
    values: list[str] = field(default_factory=list)
    ordered: list[str] = field(default_factory=list)
    ordered_positions: list[int] = field(default_factory=list)
    grams: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Found:
    """A search's page: the versions' pks and ids in order, whether more match, how many match in
    all (None: not counted)."""

    pks: list[int]
    ids: list[str]
    more: bool
    total: int | None


@dataclass(slots=True)
class SearchIndex:
    """The FAST_PARAMS values of the versions one snapshot serves."""

    snapshot: Snapshot
    dialect: str  # "sqlite": LIKE ignores ASCII case there, as `_Strings` matching then does
    types: dict[str, _Type]
    params: dict[str, _Tokens | _Strings]
    build_seconds: float = 0.0

    @classmethod
    def build(
        cls,
        conn: Connection,
        snapshot: Snapshot,
        params: Sequence[str] = FAST_PARAMS,
        pause: Callable[[], None] = lambda: None,
    ) -> SearchIndex:
        """`pause` is called after every row and value indexed (a server building this in a thread
        beside the ones answering requests paces it: server/state.py Pace)."""
        started = time.perf_counter()
        releases = list(snapshot.releases or (-1,))
        served = and_(M.c.resource_pk == R.c.pk, M.c.release_id.in_(releases))
        types: dict[str, _Type] = {}
        rtypes = sorted({p.partition(".")[0] for p in params})
        served_rows = conn.execute(
            select(R.c.type, R.c.pk, R.c.id)
            .select_from(R.join(M, served))
            .where(R.c.type.in_(rtypes))
            .order_by(R.c.type, R.c.id)
        )
        position: dict[int, int] = {}
        for rtype, pk, rid in served_rows:
            pause()
            t = types.setdefault(rtype, _Type())
            if t.ids and t.ids[-1] == rid:
                t.ordered = False
            position[pk] = len(t.pks)
            t.pks.append(pk)
            t.ids.append(rid)
        found: dict[str, _Tokens | _Strings] = {}
        for param in params:
            rtype = param.partition(".")[0]
            rows = conn.execute(
                select(X.c.system, X.c.value, X.c.resource_pk)
                .select_from(
                    X.join(M, and_(M.c.resource_pk == X.c.resource_pk, M.c.release_id.in_(releases)))
                )
                .where(X.c.param == param)
            )
            if _param_type(param) == "token":
                tokens = found[param] = _Tokens(rtype)
                by_value, systems = tokens.by_value, {"": ""}
                for system, value, pk in rows:
                    pause()
                    at = position.get(pk)
                    if at is not None:  # always: the parameter's name says its type
                        system = systems.setdefault(system or "", system or "")  # a few, shared
                        by_value.setdefault(value, []).append((system, at))
            else:
                found[param] = _strings(
                    rtype, param.partition(".")[2], rows, position, conn.dialect.name == "sqlite", pause
                )
        built = cls(snapshot, conn.dialect.name, types, found)
        built.build_seconds = time.perf_counter() - started
        return built

    def answers(self, rtype: str, clauses: Sequence[Clause]) -> bool:
        """Whether `search` answers these clauses of `rtype` exactly as the SQL would: each is of an
        indexed parameter, with no chain, and a plain token or a string matched by prefix or
        `:contains`; the type's ids are sorted as the database sorts them."""
        t = self.types.get(rtype)
        if not clauses or t is None or not t.ordered:
            return False
        for clause in clauses:
            param = clause.param
            index = self.params.get(f"{param.resource}.{param.code}")
            if clause.links or index is None or index.rtype != rtype:
                return False
            if isinstance(index, _Tokens) and clause.modifier is not None:
                return False
            if isinstance(index, _Strings) and (
                clause.modifier not in (None, "contains") or not index.usable
            ):
                return False
        return True

    def search(
        self, rtype: str, clauses: Sequence[Clause], count: int, offset: int, with_total: bool = True
    ) -> Found:
        """A page of `count` from `offset`, as store.search gives it (`answers` said yes), and with
        `with_total` how many match; a value the store would refuse raises the same SearchError."""
        # one text to find, no total: its first matches are the page (the text is in id order)
        single = len(clauses) == 1 and len(clauses[0].values) == 1 and not with_total
        enough = offset + count + 1 if single else None
        matched: set[int] | None = None
        for clause in clauses:
            index = self.params[f"{clause.param.resource}.{clause.param.code}"]
            found: set[int] = set()
            for value in clause.values:
                if isinstance(index, _Tokens):
                    found |= _token(index, clause, value)
                else:
                    found |= self._string(index, clause.modifier == "contains", value, enough)
            matched = found if matched is None else matched & found
        ordered = sorted(matched or ())
        t, page = self.types[rtype], ordered[offset : offset + count]
        return Found(
            [t.pks[p] for p in page],
            [t.ids[p] for p in page],
            len(ordered) > offset + count,
            len(ordered) if with_total else None,
        )

    def _string(self, index: _Strings, contains: bool, value: str, enough: int | None = None) -> set[int]:
        """The positions of the versions whose value holds the text (`contains`) or begins with it;
        with `enough`, the first that many (the smallest: the values are in position order)."""
        text = normalise(value)
        if not text:  # as search.py's _index_condition says it
            raise SearchError(f"{index.param}: give some text to search for")
        _like(value, contains)  # the store's bound on the pattern
        if self.dialect == "sqlite":
            text = text.translate(_ASCII_LOWER)
        if _SEPARATOR in text:
            raise SearchError("a NUL character is no text to search for")
        found: set[int] = set()
        positions = index.positions
        if not contains:  # the values that begin with it are together in sorted order
            ordered = index.ordered
            at = bisect_left(ordered, text)
            while at < len(ordered) and ordered[at].startswith(text):
                found.add(index.ordered_positions[at])
                at += 1
            return found
        if len(text) >= _GRAM:
            grams = index.grams
            rarest: Sequence[int] = min(
                (grams.get(text[k : k + _GRAM], ()) for k in range(len(text) - _GRAM + 1)), key=len
            )
            values = index.values
            for i in rarest:  # ascending: the first `enough` found are the smallest positions
                if text in values[i]:
                    found.add(positions[i])
                    if len(found) == enough:
                        break
            return found
        haystack, starts = index.text, index.starts
        at = haystack.find(text)
        while at >= 0:
            i = bisect_right(starts, at) - 1
            found.add(positions[i])
            if len(found) == enough:
                break
            # on to the next value: one match per value is enough
            at = haystack.find(text, starts[i + 1]) if i + 1 < len(starts) else -1
        return found

    def memory_bytes(self) -> int:
        """Roughly what the index holds (the objects it alone refers to), for the benchmark's note."""
        size = 0
        for t in self.types.values():
            size += sys.getsizeof(t.pks) + sys.getsizeof(t.ids) + sum(sys.getsizeof(i) for i in t.ids)
            size += 32 * len(t.pks)  # the ints
        for index in self.params.values():
            if isinstance(index, _Tokens):
                size += sys.getsizeof(index.by_value)
                for value, postings in index.by_value.items():
                    size += sys.getsizeof(value) + sys.getsizeof(postings) + 72 * len(postings)
            else:
                size += (
                    sys.getsizeof(index.text) + sys.getsizeof(index.starts) + sys.getsizeof(index.positions)
                )
                size += 56 * len(index.starts)
                size += sum(sys.getsizeof(v) for v in index.values) + 3 * sys.getsizeof(index.values)
                size += 32 * len(index.values) + sys.getsizeof(index.grams)
                size += sum(sys.getsizeof(g) + sys.getsizeof(found) for g, found in index.grams.items())
        return size


def _strings(
    rtype: str,
    code: str,
    rows: Iterable[Any],
    position: dict[int, int],
    fold_ascii: bool,
    pause: Callable[[], None] = lambda: None,
) -> _Strings:
    """A string parameter's values, in the type's order, as one text (ASCII case folded where the
    database's LIKE folds it: SQLite)."""
    index = _Strings(rtype, code)
    values = []
    for _, value, pk in rows:
        pause()
        if (at := position.get(pk)) is not None:
            values.append((at, value))
    values.sort()
    offset = 1
    for at, value in values:
        pause()
        if _SEPARATOR in value:  # a match across it would be wrong: the store answers this parameter
            index.usable = False
        index.starts.append(offset)
        index.positions.append(at)
        index.values.append(value.translate(_ASCII_LOWER) if fold_ascii else value)
        offset += len(value) + 1
    index.text = _SEPARATOR + _SEPARATOR.join(index.values) + _SEPARATOR
    for value, at in sorted(zip(index.values, index.positions, strict=True)):
        index.ordered.append(value)
        index.ordered_positions.append(at)
    grams = index.grams
    for i, value in enumerate(index.values):
        pause()
        for gram in {value[k : k + _GRAM] for k in range(len(value) - _GRAM + 1)}:
            grams.setdefault(gram, []).append(i)
    return index


def _token(index: _Tokens, clause: Clause, value: str) -> set[int]:
    systems, codes = _token_forms(clause.param, value)
    if codes is None:  # `system|`: every value of the system
        postings: Iterable[tuple[str, int]] = (p for found in index.by_value.values() for p in found)
    else:
        postings = (p for code in codes for p in index.by_value.get(code, ()))
    return {at for system, at in postings if systems is None or system in systems}


def _param_type(param: str) -> str:
    rtype, _, code = param.partition(".")
    found = lookup(rtype, code)
    if found is None or found.type not in ("token", "string") or not found.path:
        raise ValueError(f"{param} is no indexed token or string parameter")
    return found.type


def versions_by_pk(engine: Engine, pks: Sequence[int]) -> dict[int, Version]:
    """The stored versions `pks`, by pk: one parameterised query on a pooled DBAPI connection, its
    rows read through the columns' own result processors (what SQLAlchemy does, without building
    and compiling a statement per page: that was a third of an indexed search's time)."""
    if not pks:
        return {}
    sql, processors = _by_pk(engine.dialect, len(pks))
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(sql, tuple(pks))
            rows = cursor.fetchall()
        finally:
            cursor.close()
    finally:
        raw.close()
    found = {}
    for row in rows:
        values = [value if p is None else p(value) for p, value in zip(processors, row, strict=True)]
        found[int(values[0])] = version_of(values)
    return found


@lru_cache(maxsize=64)
def _by_pk(dialect: Dialect, n: int) -> tuple[str, tuple[Callable[[Any], Any] | None, ...]]:
    """The query of `n` versions by pk in the dialect's parameter style, and each column's processor."""
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    columns = ", ".join(c.name for c in COLUMNS)
    sql = f"SELECT {columns} FROM {R.name} WHERE pk IN ({', '.join([mark] * n)})"
    processors = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in COLUMNS)
    return sql, processors
