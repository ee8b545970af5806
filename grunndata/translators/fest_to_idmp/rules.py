"""The mapping rules and the generic code that walks a FEST entry through its table.

A `Table` lists, for one FEST element, a `Rule` per child element in XSD order. A rule says where
the child goes: `To` a FHIR path (through a value converter from values.py), into an `Ext`ension
(the generic element tree -> nested extension encoding), `Into` a FHIR element whose own table
maps the child's children, or to a `Custom` function where the FHIR shape needs code. Every rule
also describes itself for the coverage report, so the report is made from what the code does.

FHIR paths are relative to the element being filled, or start with a resource type to address a
resource of the entry (the primary one or a secondary one such as the merkevare's
AdministrableProductDefinition). ``a[]`` appends a new item, ``a[0]`` is the first item, ``a[@]``
the item whose index is the occurrence of the FEST element being mapped (its n-th Pakningsinfo).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from grunndata.fhir import FEST_TYPES
from grunndata.fhir import systems as s
from grunndata.m30 import FestEntry, Node
from grunndata.translators.fest_to_idmp.values import Json, NotRepresentable, XsdNode, id_with_suffix, tree

RESOURCE_TYPES = FEST_TYPES


class Lookup(Protocol):
    """The entries translate() may look up: those of LOOKUP_KINDS in the same release."""

    def get(self, fest_id: str) -> FestEntry | None:
        """The entry whose payload's inner Id is `fest_id`, or None."""
        ...


# --- FHIR paths -----------------------------------------------------------------------------------

FIELD, APPEND, INDEX, OCCURRENCE = range(4)
Segment = tuple[str, int, int]


def parse_path(path: str) -> tuple[str | None, tuple[Segment, ...]]:
    """``"Type.a[].b"`` -> ("Type", (("a", APPEND, 0), ("b", FIELD, 0))); no type if relative."""
    parts = path.split(".") if path else []
    rtype = parts.pop(0) if parts and parts[0] in RESOURCE_TYPES else None
    segments: list[Segment] = []
    for part in parts:
        if part.endswith("[]"):
            segments.append((part[:-2], APPEND, 0))
        elif part.endswith("[@]"):
            segments.append((part[:-3], OCCURRENCE, 0))
        elif part.endswith("]"):
            name, _, index = part[:-1].partition("[")
            segments.append((name, INDEX, int(index)))
        else:
            segments.append((part, FIELD, 0))
    return rtype, tuple(segments)


def _step(obj: Json, segment: Segment, occurrence: int) -> Json:
    name, mode, index = segment
    if mode == FIELD:
        found: Json | None = obj.get(name)
        if found is None:
            found = obj[name] = {}
        return found
    items: list[Json] = obj.setdefault(name, [])
    if mode == APPEND:
        items.append({})
        return items[-1]
    i = index if mode == INDEX else occurrence
    while len(items) <= i:
        items.append({})
    return items[i]


def locate(obj: Json, segments: tuple[Segment, ...], occurrence: int) -> Json:
    """The element at `segments` below `obj`, made (as empty objects) where missing."""
    for segment in segments:
        obj = _step(obj, segment, occurrence)
    return obj


def fallback_owner(segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
    """Where a value FHIR cannot hold goes instead (as extension fest-<element>): on the element that
    would hold it, or on the nearest one above that exists once (not a new item of a list)."""
    owner = segments[:-1]
    for i, (_, mode, _) in enumerate(owner):
        if mode == APPEND:
            return owner[:i]
    return owner


def put(obj: Json, segments: tuple[Segment, ...], value: Any, occurrence: int) -> None:
    """Set or append `value` at `segments`; a dict is merged into one already there."""
    obj = locate(obj, segments[:-1], occurrence)
    name, mode, index = segments[-1]
    if mode == APPEND:
        obj.setdefault(name, []).append(value)
        return
    if mode == FIELD:
        old = obj.get(name)
        if old is None:
            obj[name] = value
        elif isinstance(old, dict) and isinstance(value, dict):
            _merge(old, value)
        else:
            raise ValueError(f"{name} is set twice")
        return
    items: list[Any] = obj.setdefault(name, [])
    i = index if mode == INDEX else occurrence
    while len(items) <= i:
        items.append({})
    if isinstance(value, dict):
        _merge(items[i], value)
    else:
        items[i] = value


def _merge(old: Json, new: Json) -> None:
    """Two FEST elements that fill one FHIR element (a unit and a value): their extensions add up."""
    extensions = old.get("extension", []) + new.get("extension", [])
    old.update(new)
    if extensions:
        old["extension"] = extensions


# --- the walk -------------------------------------------------------------------------------------


@dataclass
class Context:
    """One entry's translation in progress: its resources, by type, and the lookup."""

    entry: FestEntry
    lookup: Lookup
    primary: Json
    secondary: dict[str, Json] = field(default_factory=dict)
    extra: list[Json] = field(default_factory=list)
    scratch: dict[str, Any] = field(default_factory=dict)  # for a table's own bookkeeping

    @property
    def id(self) -> str:
        return str(self.primary["id"])

    def resource(self, rtype: str) -> Json:
        """The entry's resource of `rtype`: the primary one, or a secondary one made on first use."""
        if rtype == self.primary["resourceType"]:
            return self.primary
        found = self.secondary.get(rtype)
        if found is None:
            found = self.secondary[rtype] = {"resourceType": rtype, "id": self.id}
        return found

    def new_resource(self, rtype: str) -> Json:
        """One more resource of `rtype` for this entry (an Ingredient per substance), with its own id."""
        made = {"resourceType": rtype, "id": id_with_suffix(self.id, f"-{len(self.extra) + 1}")}
        self.extra.append(made)
        return made


def walk(node: Node, table: Table, target: Json, ctx: Context, xsd: XsdNode, occurrence: int = 0) -> None:
    """Map every child of `node` by its rule in `table`, into `target`."""
    children = node[3]
    if not children:
        return
    seen: dict[str, int] = {}
    xsd_children = xsd[1]
    for child in children:
        name = child[0]
        rule = table.rules.get(name)
        child_xsd = xsd_children.get(name)
        if rule is None or child_xsd is None:
            raise ValueError(f"{node[0] or 'the entry'} cannot hold {name} (not in the M30 XSD)")
        i = seen.get(name, 0)
        seen[name] = i + 1
        rule.apply(child, target, ctx, child_xsd, i if rule.own_occurrence else occurrence, node)


def _target(path_type: str | None, target: Json, ctx: Context) -> Json:
    return ctx.resource(path_type) if path_type else target


# --- rules ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the coverage report: where a FEST element (path below its table) went."""

    fest: str
    disposition: str  # "fhir", "extension" or "dropped"
    fhir: str
    note: str = ""
    subtree: bool = False  # also accounts for every element below `fest`


class Rule:
    """Where one FEST child element goes."""

    fest: str
    note: str
    own_occurrence: bool = False

    def apply(
        self, node: Node, target: Json, ctx: Context, xsd: XsdNode, occurrence: int, parent: Node
    ) -> None:
        raise NotImplementedError

    def rows(self, where: str) -> Iterator[Row]:
        raise NotImplementedError


Converter = Callable[[Node], Any]


@dataclass(frozen=True)
class To(Rule):
    """The child, through `convert`, at FHIR `path`; what FHIR cannot hold goes to an extension there."""

    fest: str
    path: str
    convert: Converter
    note: str = ""
    _parsed: tuple[str | None, tuple[Segment, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_parsed", parse_path(self.path))

    def apply(
        self, node: Node, target: Json, ctx: Context, xsd: XsdNode, occurrence: int, parent: Node
    ) -> None:
        rtype, segments = self._parsed
        obj = _target(rtype, target, ctx)
        try:
            value = self.convert(node)
        except NotRepresentable:
            owner = locate(obj, fallback_owner(segments), occurrence)
            owner.setdefault("extension", []).append(tree(node, xsd, s.ext_url(node[0])))
            return
        put(obj, segments, value, occurrence)

    def rows(self, where: str) -> Iterator[Row]:
        yield Row(self.fest, "fhir", _qualified(where, self.path), self.note)


@dataclass(frozen=True)
class Ext(Rule):
    """The child and everything below it as extension ``fest-<child>`` (see values.tree) on `at`."""

    fest: str
    note: str = ""
    at: str = ""
    _parsed: tuple[str | None, tuple[Segment, ...]] = field(init=False, repr=False, compare=False)
    url: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_parsed", parse_path(self.at))
        object.__setattr__(self, "url", s.ext_url(self.fest))

    def apply(
        self, node: Node, target: Json, ctx: Context, xsd: XsdNode, occurrence: int, parent: Node
    ) -> None:
        rtype, segments = self._parsed
        obj = locate(_target(rtype, target, ctx), segments, occurrence)
        obj.setdefault("extension", []).append(tree(node, xsd, self.url))

    def rows(self, where: str) -> Iterator[Row]:
        yield Row(
            self.fest,
            "extension",
            f"{_qualified(where, self.at)}.extension[fest-{self.fest}]",
            self.note,
            True,
        )


@dataclass(frozen=True)
class Into(Rule):
    """A complex child becomes the FHIR element at `path`, filled by `table` from the child's own
    children: `many` is the path used instead when the child repeats, `new` a resource type of
    which each occurrence makes a resource of its own (an Ingredient per substance)."""

    fest: str
    path: str
    table: Table
    note: str = ""
    many: str | None = None
    new: str | None = None
    own_occurrence: bool = True
    _parsed: tuple[str | None, tuple[Segment, ...]] = field(init=False, repr=False, compare=False)
    _many: tuple[str | None, tuple[Segment, ...]] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_parsed", parse_path(self.path))
        object.__setattr__(self, "_many", parse_path(self.many) if self.many else None)

    def apply(
        self, node: Node, target: Json, ctx: Context, xsd: XsdNode, occurrence: int, parent: Node
    ) -> None:
        if self.new is not None:
            obj = ctx.new_resource(self.new)
        else:
            rtype, segments = self._parsed
            if self._many is not None and sum(1 for c in parent[3] if c[0] == self.fest) > 1:
                rtype, segments = self._many
            obj = locate(_target(rtype, target, ctx), segments, occurrence)
        if self.table.start is not None:
            self.table.start(obj, ctx)
        walk(node, self.table, obj, ctx, xsd, occurrence)
        if self.table.finish is not None:
            self.table.finish(obj, ctx)

    def rows(self, where: str) -> Iterator[Row]:
        here = self.new or _qualified(where, self.path)
        shown = here + (f" (when repeated: {_qualified(where, self.many)})" if self.many else "")
        yield Row(self.fest, "fhir", shown, self.note)
        for derived, note in self.table.derived:
            yield Row(self.fest, "derived", _qualified(here, derived), note)
        for row in self.table.rows(here):
            yield Row(f"{self.fest}/{row.fest}", row.disposition, row.fhir, row.note, row.subtree)


CustomFn = Callable[[Node, Json, Context, XsdNode, int], None]


@dataclass(frozen=True)
class Custom(Rule):
    """A child whose FHIR shape needs code (`function`); `covers` documents its children."""

    fest: str
    fhir: str
    function: CustomFn
    note: str = ""
    covers: tuple[Row, ...] = ()
    own_occurrence: bool = True
    keeps_at: str = ""
    """Where `function` puts ``fest-<fest>`` (the table's own path) when FHIR cannot hold the value;
    "" when it never does. The package's extension definitions read it."""

    def apply(
        self, node: Node, target: Json, ctx: Context, xsd: XsdNode, occurrence: int, parent: Node
    ) -> None:
        self.function(node, target, ctx, xsd, occurrence)

    def rows(self, where: str) -> Iterator[Row]:
        note = self.note
        if self.keeps_at:
            kept = f"{_qualified(where, self.keeps_at)}.extension[fest-{self.fest}]"
            note = f"{note}; {kept} when FHIR cannot hold the value".removeprefix("; ")
        yield Row(self.fest, "fhir", self.fhir, note)
        for row in self.covers:
            yield Row(f"{self.fest}/{row.fest}", row.disposition, row.fhir, row.note, row.subtree)


Hook = Callable[[Json, Context], None]


@dataclass(frozen=True)
class Table:
    """The rules for the children of one FEST element, in XSD order, and what is set without a
    FEST source (`derived`: (FHIR path, why) for the report; `start`/`finish` do it)."""

    rules_in_order: tuple[Rule, ...]
    derived: tuple[tuple[str, str], ...] = ()
    start: Hook | None = None
    finish: Hook | None = None
    rules: dict[str, Rule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rules = {rule.fest: rule for rule in self.rules_in_order}
        if len(rules) != len(self.rules_in_order):
            raise ValueError("a table names a FEST element twice")
        object.__setattr__(self, "rules", rules)

    def rows(self, where: str) -> Iterator[Row]:
        for rule in self.rules_in_order:
            yield from rule.rows(where)


def _qualified(where: str, path: str | None) -> str:
    """A rule's FHIR path as the report shows it: absolute paths as they are, relative ones below `where`."""
    if not path:
        return where
    if path.split(".", 1)[0] in RESOURCE_TYPES:
        return path
    return f"{where}.{path}" if where else path
