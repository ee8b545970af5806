"""The mapping rules and the generic walk that takes one R4 element through its table.

A `Table` names, for one R4 element (a resource or a backbone element), a rule per child element:
`To` an R5 element (renamed, and through a value converter), `Back` (a reference whose direction
R5 reverses: the target gets a reference to us), `Keep` (no R5 home: an extension holding the
original JSON), `Custom` (a function, where the R5 shape needs code) or `Consumed` (taken by a
sibling's rule). A table also lists the NOMA extensions it maps to R5 elements. Every rule says
where its element goes, so the documentation table is made from what the code does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from grunndata.fhir import EXT_BASE
from grunndata.fhir.r4_elements import ELEMENTS as R4_ELEMENTS
from grunndata.translators.safest.model import Json, Problem, json_bytes

KEPT_BASE = EXT_BASE + "r4-"
"""Extensions ``r4-<R4 path>`` hold an R4 element that R5 has no element for, as its JSON text."""
R5_KEPT_BASE = EXT_BASE + "r5-"
"""The mirror: extensions ``r5-<R5 path>`` on an R4 element hold an R5 element R4 has no element
for (or cannot hold exactly), as its JSON text; made by to_r4.py, and the R5 element again here."""


def kept_url(path: str) -> str:
    """The extension URL that keeps the R4 element at `path` (``MedicinalProduct.specialDesignation``).

    A recursive element (``MedicinalProductPackaged.packageItem.packageItem``, defined as the
    element above it) is named as that one, so an element kept three levels down has the same,
    defined, URL as one kept at the first level."""
    return KEPT_BASE + definition_path(path)


def definition_path(path: str) -> str:
    """``MedicinalProductPackaged.packageItem.packageItem.quantity`` -> ``...packageItem.quantity``:
    a step into an element the R4 definitions define as one of its own ancestors goes back to that
    ancestor. (A reference to an element elsewhere, as ``substance.strength`` to
    ``specifiedSubstance.strength``, keeps its own path: it cannot repeat.)"""
    names = path.split(".")
    out = names[0]
    for name in names[1:]:
        out = f"{out}.{name}"
        found = R4_ELEMENTS.get(out)
        if found is not None and out.startswith(found[0] + "."):
            out = found[0]
    return out


# --- where a conversion is -------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Node:
    """One resource being converted: its R4 form, its R5 form, and where it sits in the delivery."""

    r4: Json
    label: str  # the top-level resource's "Type/id" as given, for problems
    prefix: str  # "" at top level, "contained <Type>/<id>: " for a contained resource
    container: Node | None = None
    r5: Json = field(default_factory=dict)


@dataclass(slots=True)
class Link:
    """An R4 reference whose direction R5 reverses: `target`'s `field` must point back at `source`."""

    source: Node
    path: str  # the R4 element holding the reference, e.g. "MedicinalProduct.pharmaceuticalProduct"
    reference: Json  # the R4 Reference
    target: str  # the R5 type the reference must resolve to
    field: str


@dataclass(slots=True)
class Context:
    """What a conversion needs beyond the element at hand, shared by the whole delivery."""

    tables: Mapping[str, Table]
    specs: Mapping[str, Spec]
    r4_top: Mapping[str, Json]  # the delivery's top-level R4 resources by "Type/id"
    problems: list[Problem] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    consumed: set[int] = field(default_factory=set)  # id() of MedicinalProductManufactured a package counts
    nodes: list[Node] = field(default_factory=list)  # every resource converted, contained ones included


@dataclass(frozen=True, slots=True)
class At:
    """The R4 element being converted: its path (``MedicinalProduct.name.namePart``) and resource."""

    path: str
    node: Node
    ctx: Context

    def child(self, name: str) -> At:
        return At(f"{self.path}.{name}", self.node, self.ctx)

    def problem(self, message: str) -> None:
        """The resource cannot be converted: the delivery is refused."""
        self.ctx.problems.append(Problem(self.node.label, self.node.prefix + message))

    def warn(self, message: str) -> None:
        """Converted, but not as the sender wrote it (kept as extension, defaulted): reported."""
        self.ctx.problems.append(Problem(self.node.label, self.node.prefix + message, warning=True))

    def keep(self, out: Json, name: str, value: Any, *, warn: bool = True) -> str:
        """Keep R4 element `name` (each item of a list) on `out` as an extension: a string as it is,
        anything else as its JSON text (the R4 type at the URL's path says how to read it back).

        Reported as a warning, unless the caller (`warn=False`) reports why in its own words."""
        url = kept_url(f"{self.path}.{name}")
        if warn:
            self.warn(f"{self.path}.{name} has no element in R5; kept as extension {url}")
        items = value if isinstance(value, list) else [value]
        extensions = out.setdefault("extension", [])
        for item in items:
            text = item if isinstance(item, str) else json_bytes(item).decode()
            extensions.append({"url": url, "valueString": text})
        return url


# --- value converters ------------------------------------------------------------------------------


class _Keep:
    """Returned by a converter for a value R5 cannot hold: the walk keeps it as an extension."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()
Convert = Callable[[Any, At], Any]


def same(value: Any, at: At) -> Any:
    """The value as it is (a copy: the output never shares objects with the input)."""
    return copy.deepcopy(value)


# --- rules -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class To:
    """R4 element -> R5 element `r5` on the same parent, each value through `convert`.

    `as_list`: R4 holds one value where R5 holds a list; `first`: R4 holds a list where R5 holds one
    value (the others are kept as extensions, with a problem).
    """

    r5: str
    convert: Convert = same
    as_list: bool = False
    first: bool = False
    note: str = ""
    table: str | None = None  # set by Into: the table that maps the value's children

    def apply(self, src: Json, name: str, out: Json, at: At) -> None:
        value = src[name]
        inner = at.child(name)
        if not isinstance(value, list):
            converted = self.convert(value, inner)
            if converted is KEEP:
                at.keep(out, name, value, warn=False)  # the converter said why
            else:
                _put(out, self.r5, [converted] if self.as_list else converted)
            return
        kept, items = [], []
        for item in value:
            converted = self.convert(item, inner)
            if converted is KEEP:
                kept.append(item)
            else:
                items.append((item, converted))
        if kept:
            at.keep(out, name, kept, warn=False)  # the converter said why
        if self.first and items:
            _put(out, self.r5, items[0][1])
            if items[1:]:
                url = at.keep(out, name, [original for original, _ in items[1:]], warn=False)
                at.warn(
                    f"{inner.path} has {len(items)} values where R5 {self.r5} holds one; all but the first are kept as extension {url}"
                )
        elif items:
            _put(out, self.r5, [converted for _, converted in items])


def _put(out: Json, name: str, value: Any) -> None:
    """Set `name`, or extend the list two R4 elements fill together (country and jurisdiction -> region)."""
    old = out.get(name)
    if isinstance(old, list) and isinstance(value, list):
        old.extend(value)
    else:
        out[name] = value


def Into(r5: str, table: str, *, as_list: bool = False, required: tuple[str, ...] = (), note: str = "") -> To:  # noqa: N802
    """R4 backbone element -> R5 backbone element `r5`, its children mapped by `table`.

    An item that lacks an R5 element listed in `required` (optional in R4, required in R5) is kept
    whole as an extension, with a problem.
    """

    def convert(value: Any, at: At) -> Any:
        result = walk(value, table, at)
        missing = [name for name in required if name not in result]
        if missing:
            at.warn(
                f"{at.path} gives no R5 {r5}.{missing[0]}, which R5 requires; kept as extension {kept_url(at.path)}"
            )
            return KEEP
        return result

    return To(r5, convert, as_list=as_list, note=note, table=table)


@dataclass(frozen=True, slots=True)
class Keep:
    """No R5 home: the element stays as extension ``r4-<path>`` with its JSON as valueString."""

    note: str = ""
    r5: str = "extension r4-<path>"

    def apply(self, src: Json, name: str, out: Json, at: At) -> None:
        at.keep(out, name, src[name])


@dataclass(frozen=True, slots=True)
class Back:
    """A reference R5 turns around: the referenced `target` resource gets `field` -> this resource.

    Resolved once the whole delivery is converted; a reference that finds no R4 resource of the
    delivery stays as extension ``r4-<path>`` (valueReference), with a problem.
    """

    target: str
    field: str
    note: str = ""

    @property
    def r5(self) -> str:
        return f"{self.target}.{self.field} (reversed)"

    def apply(self, src: Json, name: str, out: Json, at: At) -> None:
        value = src[name]
        for reference in value if isinstance(value, list) else [value]:
            link = Link(at.node, f"{at.path}.{name}", copy.deepcopy(reference), self.target, self.field)
            at.ctx.links.append(link)


@dataclass(frozen=True, slots=True)
class Custom:
    """Code for an element whose R5 shape a rename and converter cannot give."""

    r5: str  # the R5 element(s) filled, " | " between alternatives; a leading type names another resource
    function: Callable[[Json, str, Json, At], None]
    note: str = ""
    table: str | None = None  # the table the function walks the value's children with, if any

    def apply(self, src: Json, name: str, out: Json, at: At) -> None:
        self.function(src, name, out, at)


@dataclass(frozen=True, slots=True)
class Consumed:
    """Taken by the rule of sibling `by` (a low limit belongs with its value)."""

    by: str
    note: str = ""

    @property
    def r5(self) -> str:
        return f"with {self.by}"

    def apply(self, src: Json, name: str, out: Json, at: At) -> None:
        if self.by not in src:  # nothing to go with (invalid R4): kept rather than lost
            at.keep(out, name, src[name])


Rule = To | Keep | Back | Custom | Consumed


@dataclass(frozen=True, slots=True)
class ExtensionRule:
    """A NOMA extension with an R5 element: recognised by `tail` in the last segment of its URL.

    Matching the tail (case-insensitive) finds the extension under the 2020 SAFEST URLs
    (``…/safest-authorizedPharmaceuticalDoseForm``) and NOMA's versioned ones alike. `function`
    returns False when the value is not the expected kind; the extension then stays as it is.
    """

    tail: str
    r5: str
    function: Callable[[Json, Json, At], bool]
    note: str = ""

    def matches(self, url: str) -> bool:
        return self.tail in url.rstrip("/").rsplit("/", 1)[-1].lower()


@dataclass(frozen=True, slots=True)
class Table:
    """The rules for the children of one R4 element, and the NOMA extensions it maps."""

    elements: Mapping[str, Rule]
    extensions: tuple[ExtensionRule, ...] = ()


@dataclass(frozen=True, slots=True)
class Spec:
    """One R4 resource type: its R5 type, the R5 elements it must end up with, and what fills the rest."""

    r5: str
    required: tuple[str, ...] = ()
    finish: Callable[[Json, At], None] | None = None
    note: str = ""


# --- the walk --------------------------------------------------------------------------------------

ELEMENT_BASE = frozenset({"id", "modifierExtension"})
RESOURCE_BASE = ELEMENT_BASE | {"implicitRules", "language", "text"}


def walk(src: Any, table_name: str, at: At, *, resource: bool = False) -> Json:
    """The R5 form of R4 element `src` by table `table_name`.

    A child no rule names is not R4: it is kept as an extension, with a problem, rather than lost.
    """
    if not isinstance(src, dict):
        raise TypeError(f"{at.path} is not a JSON object")
    table = at.ctx.tables[table_name]
    base = RESOURCE_BASE if resource else ELEMENT_BASE
    out: Json = {}
    for name, value in src.items():
        if name in base:
            out[name] = copy.deepcopy(value)
        elif name == "extension":
            out.setdefault("extension", [])  # holds the place; filled below
        elif name == "contained" and resource:
            out["contained"] = _contained(value, at)
        elif name.startswith("_") and name[1:] in base:
            out[name] = copy.deepcopy(value)
        elif name.startswith("_"):
            _primitive_extension(table, name, value, out, at)
        elif (rule := table.elements.get(name)) is not None:
            rule.apply(src, name, out, at)
        else:  # invalid R4, refused as the R4 XML reader refuses it
            at.problem(f"{at.path}.{name} is not an element of R4 {at.path}")
    given = src.get("extension")
    unmapped = [copy.deepcopy(e) for e in given or [] if not _map_extension(e, table, out, at)]
    if unmapped or out.get("extension"):
        out["extension"] = unmapped + out.get("extension", [])
    else:
        out.pop("extension", None)
    return out


def _primitive_extension(table: Table, name: str, value: Any, out: Json, at: At) -> None:
    """``_productName`` (extensions on a primitive) follows its primitive when that is only renamed."""
    rule = table.elements.get(name[1:])
    if rule is None:  # invalid R4, as an unknown element is
        at.problem(f"{at.path}.{name} names no element of R4 {at.path}")
    elif renames_only(rule):
        out["_" + rule.r5] = copy.deepcopy(value)
    else:
        url = at.keep(out, name, value, warn=False)
        at.warn(
            f"{at.path}.{name} (extensions on a primitive whose R5 form differs) is kept as extension {url}"
        )


def _r5_element(url: str, text: str, out: Json, at: At) -> bool:
    """An ``r5-<R5 path>`` extension (to_r4.py) -> that R5 element, replacing what the R4 elements
    gave for it (it is the exact R5 value; they are what R4 could say of it); null: R5 has none.
    Not JSON: kept as it is."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        at.warn(f"{at.path}.extension ({url}) holds no JSON; kept as it is")
        return False
    name = url.rsplit(".", 1)[-1]
    if value is None:  # R5 had none (R4 required a value, and said a default)
        out.pop(name, None)
    else:
        out[name] = value
    return True


def renames_only(rule: object) -> bool:
    """A rule that only renames its primitive: its ``_name`` (the primitive's extensions) follows it."""
    return isinstance(rule, To) and rule.convert is same and not rule.as_list and not rule.first


def _map_extension(extension: Any, table: Table, out: Json, at: At) -> bool:
    url = extension.get("url") if isinstance(extension, dict) else None
    if not isinstance(url, str):
        return False
    if url.startswith(R5_KEPT_BASE) and isinstance(extension.get("valueString"), str):
        return _r5_element(url, extension["valueString"], out, at)
    return any(rule.matches(url) and rule.function(extension, out, at) for rule in table.extensions)


# --- resources -------------------------------------------------------------------------------------


def convert_resource(r4: Json, node: Node, ctx: Context) -> Json | None:
    """The R5 form of R4 resource `r4` (None, with a problem, when R5 cannot hold it)."""
    rtype = r4["resourceType"]
    spec = ctx.specs[rtype]
    at = At(rtype, node, ctx)
    body = {name: value for name, value in r4.items() if name != "resourceType"}
    out: Json = {"resourceType": spec.r5, **walk(body, rtype, at, resource=True)}
    if spec.finish is not None:
        spec.finish(out, at)
    missing = [name for name in spec.required if name not in out]
    if missing:
        at.problem(f"has no value for R5 {spec.r5}.{missing[0]}, which R5 requires; not converted")
        return None
    retype_references(out)
    node.r5 = out
    ctx.nodes.append(node)
    return out


def _contained(items: Any, at: At) -> list[Any]:
    """Contained R4 resources are converted like top-level ones (one R5 cannot hold is left out,
    its problem saying so); any other passes through."""
    if not isinstance(items, list):
        raise TypeError(f"{at.path}.contained is not a list")
    out = []
    for item in items:
        if not isinstance(item, dict) or item.get("resourceType") not in at.ctx.specs:
            out.append(copy.deepcopy(item))
            continue
        label = f"{item['resourceType']}/{item.get('id', '?')}"
        node = Node(item, at.node.label, f"{at.node.prefix}contained {label}: ", at.node)
        converted = convert_resource(item, node, at.ctx)
        if converted is not None:
            out.append(converted)
    return out


def find_r4(reference: Any, node: Node, ctx: Context) -> Json | None:
    """The R4 resource `reference` names, seen from `node`: a contained one (``#x``) or one of the
    delivery (a contained resource cannot name a top-level one by ``Type/id`` and be found back)."""
    if not isinstance(reference, str):
        return None
    if reference.startswith("#"):
        owner = node.r4 if node.container is None else node.container.r4
        return next(
            (c for c in owner.get("contained", []) if isinstance(c, dict) and c.get("id") == reference[1:]),
            None,
        )
    key = reference_key(reference)
    return ctx.r4_top.get(key) if key is not None and node.container is None else None


# --- references ------------------------------------------------------------------------------------

R4_TO_R5 = {
    "MedicinalProduct": "MedicinalProductDefinition",
    "MedicinalProductPackaged": "PackagedProductDefinition",
    "MedicinalProductManufactured": "ManufacturedItemDefinition",
    "MedicinalProductPharmaceutical": "AdministrableProductDefinition",
    "MedicinalProductIngredient": "Ingredient",
    "SubstanceSpecification": "SubstanceDefinition",
    "MedicinalProductAuthorization": "RegulatedAuthorization",
}
"""The R4 resource types SAFEST serves and their R5 successors (reference/idmp-fhir.md b)."""


def retype(reference: str) -> str:
    """``MedicinalProduct/1`` (or an absolute URL ending so) -> ``MedicinalProductDefinition/1``."""
    if reference.startswith("#"):
        return reference
    parts = reference.split("/")
    for i, part in enumerate(parts[:-1]):
        if part in R4_TO_R5:
            parts[i] = R4_TO_R5[part]
    return "/".join(parts)


def retype_references(value: Any) -> None:
    """Retype, in place, every Reference.reference in `value` (kept JSON text is left as given)."""
    if isinstance(value, dict):
        for name, item in value.items():
            if name == "reference" and isinstance(item, str):
                value[name] = retype(item)
            else:
                retype_references(item)
    elif isinstance(value, list):
        for item in value:
            retype_references(item)


def reference_key(reference: str) -> str | None:
    """``Type/id`` of a relative or absolute reference (a version suffix dropped); None for ``#x``."""
    if reference.startswith("#"):
        return None
    parts = reference.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return "/".join(parts[-2:]) if len(parts) >= 2 else None
