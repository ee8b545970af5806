"""The R5 definitions as the validator needs them: each type's elements by path, and value sets expanded.

Read once from a package's StructureDefinitions, ValueSets and CodeSystems (packages.py); nothing
here knows about a particular resource. Slices are left out: the core definitions use none.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

FHIR_TYPE = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX = "http://hl7.org/fhir/StructureDefinition/regex"
Codes = frozenset[tuple[str, str]]
"""A value set's expansion: (system, code) pairs."""


@dataclass(frozen=True, slots=True)
class Constraint:
    key: str
    expression: str


@dataclass(frozen=True, slots=True)
class Element:
    """One element definition of a snapshot, with what the validator reads of it."""

    path: str  # "PackagedProductDefinition.packaging.containedItem"
    name: str  # "containedItem", or "value[x]"
    min: int
    max: str  # "1", "*", "0" or a number
    types: tuple[str, ...]  # type codes, system types given as their FHIR type ("string")
    content_reference: str | None  # "Questionnaire.item": the element whose children this one has
    binding: tuple[str, str] | None  # (strength, value set url without version)
    constraints: tuple[Constraint, ...]  # error-severity invariants only
    fixed: tuple[str, Any] | None  # ("fixedUri", value) or ("patternCodeableConcept", value)

    @property
    def repeats(self) -> bool:
        return self.max != "1" and self.max != "0"

    @property
    def choice(self) -> bool:
        return self.name.endswith("[x]")

    def cardinality(self) -> str:
        return f"{self.min}..{self.max}"


@dataclass(slots=True)
class TypeDefinition:
    """A StructureDefinition's snapshot: the elements by path, and the children of each path."""

    name: str  # the type ("PackagedProductDefinition", "Coding"); for an extension, "Extension"
    url: str
    kind: str  # resource, complex-type, primitive-type, logical
    elements: dict[str, Element] = field(default_factory=dict)
    children: dict[str, list[Element]] = field(default_factory=dict)
    contexts: tuple[str, ...] | None = None  # an extension's `context` (element paths or types); None: any


def _type_code(t: dict[str, Any]) -> str:
    code = str(t.get("code", ""))
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", []):
            if ext.get("url") == FHIR_TYPE:
                return str(ext.get("valueUrl") or ext.get("valueUri") or code)
    return code


def _element(e: dict[str, Any]) -> Element:
    path = str(e["path"])
    ref = e.get("contentReference")
    binding = e.get("binding")
    fixed = next(((k, v) for k, v in e.items() if k.startswith(("fixed", "pattern"))), None)
    return Element(
        path=path,
        name=path.rsplit(".", 1)[-1],
        min=int(e.get("min", 0)),
        max=str(e.get("max", "*")),
        types=tuple(_type_code(t) for t in e.get("type", [])),
        content_reference=str(ref).split("#", 1)[-1] if ref else None,
        binding=(str(binding["strength"]), str(binding["valueSet"]).split("|")[0])
        if isinstance(binding, dict) and binding.get("valueSet")
        else None,
        constraints=tuple(
            Constraint(str(c["key"]), str(c["expression"]))
            for c in e.get("constraint", [])
            if c.get("severity") == "error" and c.get("expression")
        ),
        fixed=fixed,
    )


ELEMENT_ID = "ElementDefinition.id"
"""R5 5.0.0 types ElementDefinition.id as an `id` (64 of [A-Za-z0-9.-]), yet an element's id is its
path with slice names (`Extension.value[x]`, `Extension.extension:part`), as ElementDefinition's own
text says and the core package's own snapshots have it: it is checked as the string it is."""


def _type_definition(sd: dict[str, Any]) -> TypeDefinition:
    td = TypeDefinition(name=str(sd["type"]), url=str(sd["url"]), kind=str(sd.get("kind", "")))
    for raw in sd.get("snapshot", {}).get("element", []):
        if ":" in str(raw.get("id", "")):  # a slice, or inside one
            continue
        element = _element(raw)
        if element.path == ELEMENT_ID:
            element = replace(element, types=("string",))
        td.elements[element.path] = element
        if "." in element.path:
            td.children.setdefault(element.path.rsplit(".", 1)[0], []).append(element)
    return td


class Definitions:
    """Types by name, extensions by url, value sets expanded on demand (and remembered)."""

    def __init__(
        self,
        resources: list[dict[str, Any]],
        families: tuple[Callable[[str], dict[str, Any] | None], ...] = (),
    ) -> None:
        """`families`: functions that make the StructureDefinition of an extension named by data
        (a column of an owner's CSV), given its url, or None when the url is not theirs."""
        self.types: dict[str, TypeDefinition] = {}
        self.extensions: dict[str, TypeDefinition] = {}
        self._families = families
        self.regexes: dict[str, re.Pattern[str]] = {}
        self.value_sets: dict[str, dict[str, Any]] = {}
        self.code_systems: dict[str, dict[str, Any]] = {}
        self._expansions: dict[str, Codes | None] = {}
        for r in resources:
            kind = r.get("resourceType")
            if kind == "ValueSet" and r.get("url"):
                self.value_sets[str(r["url"])] = r
            elif kind == "CodeSystem" and r.get("url"):
                self.code_systems[str(r["url"])] = r
            elif kind == "StructureDefinition" and r.get("snapshot"):
                self._structure(r)

    def _structure(self, sd: dict[str, Any]) -> None:
        if sd.get("derivation") == "constraint":
            if sd.get("type") == "Extension":
                ext = self.extensions[str(sd["url"])] = _type_definition(sd)
                contexts = sd.get("context") or []
                if contexts and all(c.get("type") == "element" for c in contexts):
                    ext.contexts = tuple(str(c["expression"]) for c in contexts)
            return  # profiles (SimpleQuantity...) are not the base types
        td = _type_definition(sd)
        self.types[td.name] = td
        if td.kind == "primitive-type":
            value = td.elements.get(f"{td.name}.value")
            pattern = self._regex(sd, f"{td.name}.value") if value is not None else None
            if pattern is not None:
                self.regexes[td.name] = re.compile(pattern)

    @staticmethod
    def _regex(sd: dict[str, Any], path: str) -> str | None:
        for e in sd["snapshot"]["element"]:
            if e.get("path") == path:
                for t in e.get("type", []):
                    for ext in t.get("extension", []):
                        if ext.get("url") == REGEX:
                            return str(ext["valueString"])
        return None

    def extension(self, url: str) -> TypeDefinition | None:
        """The definition of extension `url`: from a package, or made by a family (and kept)."""
        found = self.extensions.get(url)
        if found is None:
            for family in self._families:
                made = family(url)
                if made is not None:
                    self._structure(made)
                    return self.extensions.get(url)
        return found

    def is_primitive(self, type_code: str) -> bool:
        td = self.types.get(type_code)
        return td is not None and td.kind == "primitive-type"

    def is_resource(self, type_code: str) -> bool:
        td = self.types.get(type_code)
        return td is not None and td.kind == "resource"

    def expand(self, url: str) -> Codes | None:
        """The (system, code) pairs of a value set, or None when its definition cannot be expanded
        here (unknown, a filter, a code system not given in full)."""
        url = url.split("|")[0]
        if url not in self._expansions:
            self._expansions[url] = None  # a value set that includes itself expands to nothing
            self._expansions[url] = self._expand(url)
        return self._expansions[url]

    def _expand(self, url: str) -> Codes | None:
        vs = self.value_sets.get(url)
        if vs is None:
            return None
        compose = vs.get("compose")
        if not isinstance(compose, dict) or not compose.get("include"):
            return None
        included: set[tuple[str, str]] = set()
        for part in compose["include"]:
            codes = self._part(part)
            if codes is None:
                return None
            included |= codes
        for part in compose.get("exclude", []):
            codes = self._part(part)
            if codes is None:
                return None
            included -= codes
        return frozenset(included)

    def _part(self, part: dict[str, Any]) -> Codes | None:
        if part.get("filter"):
            return None
        sets = [self.expand(str(u)) for u in part.get("valueSet", [])]
        if any(s is None for s in sets):
            return None
        system = part.get("system")
        codes: set[tuple[str, str]] | None = None
        if system is not None:
            if part.get("concept"):
                codes = {(str(system), str(c["code"])) for c in part["concept"]}
            else:
                whole = self._whole(str(system))
                if whole is None:
                    return None
                codes = set(whole)
        for s in sets:
            assert s is not None
            codes = set(s) if codes is None else codes & s
        return frozenset(codes or ())

    def expand_system(self, system: str) -> Codes | None:
        """Every code of code system `system`, when it is given here in full; else None."""
        key = "system " + system
        if key not in self._expansions:
            self._expansions[key] = self._whole(system)
        return self._expansions[key]

    def _whole(self, system: str) -> Codes | None:
        cs = self.code_systems.get(system)
        if cs is None or cs.get("content") != "complete":
            return None
        found: set[tuple[str, str]] = set()
        stack = list(cs.get("concept", []))
        while stack:
            c = stack.pop()
            found.add((system, str(c["code"])))
            stack.extend(c.get("concept", []))
        return frozenset(found)
