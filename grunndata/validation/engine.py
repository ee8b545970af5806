"""Walk a FHIR R5 resource (as JSON) along the core StructureDefinitions and report what breaks them.

Checked: unknown elements, cardinality, JSON types and primitives' lexical forms, fixed and pattern
values, required bindings to value sets the core package lets us expand, and error-severity
invariants (FHIRPath, by invariants.py). What cannot be checked is counted by name, never passed
silently: an invariant the FHIRPath engine cannot evaluate, a value set that cannot be expanded,
an extension whose definition is unknown.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from grunndata.validation.definitions import Definitions, Element, TypeDefinition
from grunndata.validation.invariants import Invariants

_INT32 = (-(2**31), 2**31 - 1)
_INDEX = re.compile(r"\[[0-9]+\]")
_INTEGERS = ("integer", "unsignedInt", "positiveInt")
_CODED = ("code", "Coding", "CodeableConcept", "CodeableReference")


@dataclass(frozen=True, slots=True)
class Problem:
    """One error: which resource (Type/id, and where it was read), the element's path, the rule broken."""

    resource: str  # "PackagedProductDefinition/CE0BBADB-..."
    where: str  # "bundle.json entry 3", "release 4"
    path: str  # "PackagedProductDefinition.packaging.containedItem[0].item"
    rule: str  # "cardinality 1..1", "type", "binding required http://...", "invariant ing-1"
    message: str

    def sentence(self) -> str:
        resource = f"{self.resource} " if self.resource else ""
        return f"{self.where}: {resource}{self.path}: {self.message} [{self.rule}]"


@dataclass(slots=True)
class Report:
    """What a run found: the errors, how many resources were read, and what could not be checked."""

    resources: int = 0
    problems: list[Problem] = field(default_factory=list)
    not_checked: Counter[str] = field(default_factory=Counter)

    def by_rule(self) -> Counter[str]:
        return Counter(
            p.rule.split(" http")[0] if p.rule.startswith("binding") else p.rule for p in self.problems
        )


@dataclass(slots=True)
class _Visit:
    """The resource being walked: where problems go, and what FHIRPath's %resource is."""

    report: Report
    label: str
    where: str
    root: dict[str, Any]
    resource: dict[str, Any]

    def problem(self, path: str, rule: str, message: str) -> None:
        self.report.problems.append(Problem(self.label, self.where, path, rule, message))


class Validator:
    """Validates resources against one set of definitions; keep one for a whole run (it caches)."""

    def __init__(self, definitions: Definitions) -> None:
        self.defs = definitions
        self.invariants = Invariants()

    def validate(self, resource: Any, where: str, report: Report) -> None:
        report.resources += 1
        label = _label(resource)
        visit = _Visit(report, label, where, resource if isinstance(resource, dict) else {}, {})
        self._resource(resource, visit, _type_of(resource) or "Resource")

    def _resource(self, resource: Any, visit: _Visit, path: str) -> None:
        rtype = _type_of(resource)
        if rtype is None or not self.defs.is_resource(rtype):
            visit.problem(path, "type", f"resourceType {rtype!r} is not a FHIR R5 resource type")
            return
        assert isinstance(resource, dict)
        inner = _Visit(visit.report, visit.label, visit.where, visit.root, resource)
        td = self.defs.types[rtype]
        self._invariants(td.elements[rtype], resource, rtype, path, inner)
        self._complex(resource, td, rtype, path, inner)

    def _complex(
        self, node: dict[str, Any], td: TypeDefinition, dpath: str, path: str, visit: _Visit
    ) -> None:
        """The children of `node`, an instance of element `dpath` of `td`."""
        children = td.children.get(dpath, [])
        by_name = {e.name: e for e in children if not e.choice}
        choices = [e for e in children if e.choice]
        found: dict[str, list[tuple[str, str | None]]] = {}  # element path -> [(json key, type)]
        for key in node:
            if key == "resourceType" and dpath == td.name and td.kind == "resource":
                continue
            name = key[1:] if key.startswith("_") else key
            element, type_code = self._match(name, by_name, choices)
            if element is None:
                visit.problem(f"{path}.{key}", "unknown element", f"{key} is not an element of {dpath}")
                continue
            if key.startswith("_") and not (type_code and self.defs.is_primitive(type_code)):
                visit.problem(
                    f"{path}.{key}", "unknown element", f"{key} is given but {name} is not a primitive"
                )
                continue
            found.setdefault(element.path, []).append((key, type_code))
        if not any(e.min for e in children) and not found:
            return
        for element in children:
            keys = found.get(element.path, [])
            self._element(node, element, keys, td, path, visit)

    def _match(
        self, name: str, by_name: dict[str, Element], choices: list[Element]
    ) -> tuple[Element | None, str | None]:
        element = by_name.get(name)
        if element is not None:
            return element, element.types[0] if len(element.types) == 1 else None
        for e in choices:
            stem = e.name[:-3]
            if name.startswith(stem):
                rest = name[len(stem) :]
                for t in e.types:
                    if rest == t[:1].upper() + t[1:]:
                        return e, t
        return None, None

    def _element(
        self,
        node: dict[str, Any],
        element: Element,
        keys: list[tuple[str, str | None]],
        td: TypeDefinition,
        path: str,
        visit: _Visit,
    ) -> None:
        """One element of `node`, given by `keys` (its name; `_name`, a primitive's id and extensions;
        valueX for each type of a choice): its cardinality over them all, then each value."""
        values = [k for k in keys if not k[0].startswith("_")]
        companions = {k[0][1:]: node[k[0]] for k in keys if k[0].startswith("_")}
        count = 0
        for key, _ in keys:
            value = node[key]
            count = max(count, len(value) if isinstance(value, list) else 1)
        here = f"{path}.{element.name[:-3] if element.choice else element.name}"
        if len({k[0].lstrip("_") for k in keys}) > 1:
            visit.problem(
                here, f"cardinality {element.cardinality()}", f"{element.name} is given as more than one type"
            )
        if count < element.min:
            visit.problem(
                here, f"cardinality {element.cardinality()}", f"{element.name} is required and missing"
            )
        if element.max not in ("*", "1") and count > int(element.max):
            visit.problem(here, f"cardinality {element.cardinality()}", f"{element.name} has {count} values")
        for key, type_code in values + [(k, t) for k, t in keys if k.startswith("_") and k[1:] not in node]:
            value = node[key]
            at = f"{path}.{key.lstrip('_')}"
            if isinstance(value, list):
                if not element.repeats:
                    visit.problem(
                        at,
                        f"cardinality {element.cardinality()}",
                        f"{key} repeats ({len(value)} values) but may occur once",
                    )
                    continue
                if not value:
                    visit.problem(at, "type", f"{key} is an empty array; leave it out instead")
                items: list[tuple[int | None, Any]] = list(enumerate(value))
            else:
                if element.repeats:
                    visit.problem(at, "type", f"{key} repeats, so it must be a JSON array")
                    continue
                items = [(None, value)]
            companion = companions.get(key.lstrip("_")) if not key.startswith("_") else None
            for i, item in items:
                item_path = at if i is None else f"{at}[{i}]"
                extra = (
                    companion[i]
                    if isinstance(companion, list) and i is not None and i < len(companion)
                    else (companion if i is None else None)
                )
                if key.startswith("_"):
                    self._primitive_element(item, item_path, visit)
                    continue
                self._item(element, type_code, item, extra, td, item_path, visit)
        for key, extra in companions.items():
            if key in node and extra is not None:
                for i, one in enumerate(extra if isinstance(extra, list) else [extra]):
                    if one is not None:
                        self._primitive_element(
                            one, f"{path}.{key}" + (f"[{i}]" if isinstance(extra, list) else ""), visit
                        )

    def _primitive_element(self, item: Any, path: str, visit: _Visit) -> None:
        """The `_name` companion of a primitive: an Element (id and extensions) without the value."""
        if item is None:
            return
        if not isinstance(item, dict):
            visit.problem(path, "type", "a primitive's extension part must be a JSON object")
            return
        element_td = self.defs.types["Element"]
        self._invariants(element_td.elements["Element"], item, "Element", path, visit)
        self._complex(item, element_td, "Element", path, visit)

    def _item(
        self,
        element: Element,
        type_code: str | None,
        item: Any,
        companion: Any,
        td: TypeDefinition,
        path: str,
        visit: _Visit,
    ) -> None:
        if item is None:
            if companion is None:
                visit.problem(path, "type", "null is not a FHIR value")
            return
        if element.fixed is not None:
            self._fixed(element, item, path, visit)
        if element.content_reference is not None:
            if not isinstance(item, dict):
                visit.problem(path, "type", f"{element.name} must be a JSON object")
                return
            target = td.elements.get(element.content_reference)
            if target is not None:
                self._invariants(target, item, target.path, path, visit)
            self._complex(item, td, element.content_reference, path, visit)
            return
        if type_code is None:
            visit.problem(path, "type", f"{element.name} has no type")  # a definition without one
            return
        if element.binding is not None and element.binding[0] == "required":
            self._binding(element.binding[1], type_code, item, path, visit)
        if type_code in ("BackboneElement", "Element") and element.path in td.children:
            if not isinstance(item, dict):
                visit.problem(path, "type", f"{element.name} must be a JSON object")
                return
            self._invariants(element, item, element.path, path, visit)
            self._complex(item, td, element.path, path, visit)
            return
        if type_code == "Resource" or self.defs.is_resource(type_code):
            self._resource(item, visit, path)
            return
        if self.defs.is_primitive(type_code) or type_code == "xhtml":
            self._primitive(type_code, item, path, visit)
            for c in element.constraints:  # ele-1 holds for a primitive that has a value
                if c.key != "ele-1":
                    visit.report.not_checked[f"invariant {c.key}"] += 1
            return
        sub = self.defs.types.get(type_code)
        if sub is None:
            visit.report.not_checked[f"type {type_code} (no definition)"] += 1
            return
        if not isinstance(item, dict):
            visit.problem(path, "type", f"{element.name} must be a JSON object ({type_code})")
            return
        self._invariants(element, item, type_code, path, visit)
        if type_code == "Extension":
            url = item.get("url")
            ext = self.defs.extension(url) if isinstance(url, str) else None
            if ext is not None:
                sub = ext
                self._context(str(url), ext, element, td, path, visit)
            elif not isinstance(url, str) or ":" in url:  # a relative url is part of its parent's definition
                visit.report.not_checked[f"extension {url} (no definition)"] += 1
        self._invariants(sub.elements[sub.name], item, type_code, path, visit, skip=element)
        self._complex(item, sub, sub.name, path, visit)

    def _context(
        self, url: str, ext: TypeDefinition, element: Element, td: TypeDefinition, path: str, visit: _Visit
    ) -> None:
        """An extension may appear only where its definition's `context` says: on an element of that
        path (as defined, or as in the instance: a nested packaging), or of that type or a base type."""
        if ext.contexts is None:
            return
        holder = element.path.rsplit(".", 1)[0]  # "PackagedProductDefinition.packaging"
        instance = _INDEX.sub("", path).rsplit(".", 1)[0]  # "PackagedProductDefinition.packaging.packaging"
        if "." in holder:
            defined = td.elements.get(holder)
            kinds = set(defined.types) if defined is not None else set()
        else:
            kinds = {holder}
        kinds |= {"Element", "Base"}
        if any(self.defs.is_resource(k) for k in kinds):
            kinds |= {"Resource", "DomainResource"}
        if not ({holder, instance} | kinds) & set(ext.contexts):
            visit.problem(
                path,
                "extension context",
                f"{url} may appear on {', '.join(ext.contexts)}, not on {instance}",
            )

    def _primitive(self, type_code: str, value: Any, path: str, visit: _Visit) -> None:
        if type_code == "boolean":
            ok = isinstance(value, bool)
        elif type_code in _INTEGERS:
            ok = isinstance(value, int) and not isinstance(value, bool) and _INT32[0] <= value <= _INT32[1]
        elif type_code == "decimal":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            visit.problem(path, "type", f"{_show(value)} is not a FHIR {type_code} in JSON")
            return
        regex = self.defs.regexes.get(type_code)
        text = value if isinstance(value, str) else str(value).lower()
        if regex is not None and type_code != "decimal" and not regex.fullmatch(text):
            visit.problem(path, "type", f"{_show(value)} is not a valid {type_code}")
        elif isinstance(value, str) and type_code != "xhtml" and not value.strip():
            visit.problem(path, "type", f"an empty or blank {type_code} is not a FHIR value")

    def _fixed(self, element: Element, item: Any, path: str, visit: _Visit) -> None:
        assert element.fixed is not None
        kind, expected = element.fixed
        ok = item == expected if kind.startswith("fixed") else _matches(expected, item)
        if not ok:
            rule = "fixed" if kind.startswith("fixed") else "pattern"
            visit.problem(path, rule, f"{_show(item)} is not the {rule} value {_show(expected)}")

    def _binding(self, url: str, type_code: str, item: Any, path: str, visit: _Visit) -> None:
        if type_code not in _CODED:
            visit.report.not_checked[f"binding {url} on {type_code}"] += 1
            return
        codes = self.defs.expand(url)
        if codes is None:
            visit.report.not_checked[f"binding {url} (cannot expand)"] += 1
            return
        rule = f"binding required {url}"
        if type_code == "code":
            if isinstance(item, str) and item not in {c for _, c in codes}:
                visit.problem(path, rule, f"code {item!r} is not in the value set")
            return
        if type_code == "CodeableReference":
            item = item.get("concept") if isinstance(item, dict) else None
            if item is None:
                return
        codings = (
            [item] if type_code == "Coding" else (item.get("coding") if isinstance(item, dict) else None)
        )
        if not isinstance(codings, list):
            codings = []
        pairs = [
            (c["system"], c["code"])
            for c in codings
            if isinstance(c, dict) and isinstance(c.get("system"), str) and isinstance(c.get("code"), str)
        ]
        if not any(p in codes for p in pairs):
            given = [c for c in codings if isinstance(c, dict)]
            shown = ", ".join(f"{c.get('system', '')}|{c.get('code', '')}" for c in given) or "no coding"
            visit.problem(path, rule, f"{shown} is not in the value set")

    def _invariants(
        self,
        element: Element,
        item: dict[str, Any],
        type_path: str,
        path: str,
        visit: _Visit,
        skip: Element | None = None,
    ) -> None:
        done = {c.key for c in skip.constraints} if skip is not None else set()
        for c in element.constraints:
            if c.key in done:
                continue
            outcome = self.invariants.holds(c.expression, item, type_path, visit.resource, visit.root)
            if outcome is None:
                visit.report.not_checked[f"invariant {c.key}"] += 1
            elif not outcome:
                visit.problem(path, f"invariant {c.key}", f"{c.expression} is false")


def _matches(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_matches(v, value.get(k)) for k, v in pattern.items())
    if isinstance(pattern, list):
        return isinstance(value, list) and all(any(_matches(p, v) for v in value) for p in pattern)
    return bool(pattern == value)


def _type_of(resource: Any) -> str | None:
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    return rtype if isinstance(rtype, str) else None


def _label(resource: Any) -> str:
    rtype = _type_of(resource) or "?"
    rid = resource.get("id") if isinstance(resource, dict) else None
    return f"{rtype}/{rid}" if isinstance(rid, str) else f"{rtype} (no id)"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
