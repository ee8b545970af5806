"""Resources checked against the differentials of the profiles they claim (`meta.profile`).

A differential states only what a profile changes: cardinalities, fixed and pattern values, the
types a choice may take, required bindings, and slices (a repeating element cut into named parts,
each recognised by a discriminator). Checked here without a snapshot: each differential element is
applied to the instance nodes its path (and slice names) selects, per parent node. Slices by
`value` or `pattern` on a path whose expected value the slice fixes (or, for `url` on an extension,
its type profile) are matched; other discriminators, profiles not given and required bindings to
value sets that cannot be expanded are counted as not checked, never passed silently. Extensions
whose definitions are given are checked against them (context included) wherever they occur.

Version-neutral: the base definitions come in as `elements` (element path -> type and whether it
repeats, as `grunndata.fhir.r4_elements` lists R4's), used to know an element's type for an
extension's context. StructureDefinitions may be JSON dicts or XML files (`read_xml`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from grunndata.validation.definitions import Definitions
from grunndata.validation.engine import Problem, Report
from grunndata.validation.packages import KINDS

Json = dict[str, Any]
FHIR_NS = "{http://hl7.org/fhir}"
_REPEATING = {
    "StructureDefinition": frozenset(("context", "contextInvariant", "keyword", "mapping")),
    "differential": frozenset(("element",)),
    "snapshot": frozenset(("element",)),
    "element": frozenset(("type", "constraint", "code", "alias", "condition", "mapping", "example")),
    "type": frozenset(("profile", "targetProfile", "aggregation")),
    "slicing": frozenset(("discriminator",)),
    "CodeSystem": frozenset(("concept", "property", "filter")),
    "concept": frozenset(("concept", "designation", "property")),
}
"""The children `read_xml` reads as lists, by their parent's name (what FHIR repeats there)."""
_XHTML = "{http://www.w3.org/1999/xhtml}"


def read_xml(path: Path) -> Json:
    """A StructureDefinition (or CodeSystem) in FHIR XML as FHIR JSON: enough of it for this module
    (url, type, context, differential, concepts); lists where FHIR repeats what these read."""
    root = ET.parse(path).getroot()
    name = root.tag.removeprefix(FHIR_NS)
    out = _xml_node(root, name)
    out["resourceType"] = name
    return out


def read_folder(folder: Path) -> list[Json]:
    """Every StructureDefinition, ValueSet and CodeSystem of `folder` and its subfolders, XML or JSON."""
    found: list[Json] = []
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".xml":
            resource = read_xml(path)
        elif path.suffix == ".json":
            resource = orjson.loads(path.read_bytes())
        else:
            continue
        if isinstance(resource, dict) and resource.get("resourceType") in KINDS:
            found.append(resource)
    return found


def _xml_node(node: ET.Element, name: str) -> Json:
    out: Json = {}
    for key, text in node.attrib.items():
        if key != "value":
            out[key] = text
    repeating = _REPEATING.get(name, frozenset())
    for child in node:
        if not isinstance(child.tag, str) or child.tag.startswith(_XHTML):
            continue
        tag = child.tag.removeprefix(FHIR_NS)
        value: Any = (
            child.get("value") if "value" in child.attrib and len(child) == 0 else _xml_node(child, tag)
        )
        if tag in repeating:
            out.setdefault(tag, []).append(value)
        else:
            out[tag] = value
    return out


@dataclass(slots=True)
class _Def:
    """One node of a differential's tree: an element (or a slice of it) and what is said of it."""

    name: str  # "identifier", "value[x]"
    slice: str | None
    raw: Json = field(default_factory=dict)
    children: dict[str, _Def] = field(default_factory=dict)  # "identifier", "identifier:safestIdentifier"

    @property
    def fixed(self) -> tuple[str, Any] | None:
        return next(((k, v) for k, v in self.raw.items() if k.startswith(("fixed", "pattern"))), None)

    def types(self) -> list[str]:
        return [str(t["code"]) for t in self.raw.get("type", []) if t.get("code")]

    def type_profiles(self) -> list[str]:
        return [str(p) for t in self.raw.get("type", []) for p in t.get("profile", [])]

    def discriminators(self) -> list[tuple[str, str]]:
        slicing = self.raw.get("slicing") or {}
        return [(str(d.get("type")), str(d.get("path"))) for d in slicing.get("discriminator", [])]


@dataclass(slots=True)
class Profile:
    url: str
    type: str  # "MedicinalProductPackaged", "Extension"
    root: _Def
    contexts: tuple[str, ...] = ()  # an extension's context (element paths or type names)


def _segments(element_id: str) -> list[str]:
    """ "A.b:s.c" -> ["A", "b:s", "c"] (a slice name may itself hold dots only after ':')."""
    parts: list[str] = []
    for piece in element_id.split("."):
        if parts and ":" in parts[-1] and "/" in parts[-1]:  # re-slicing "b:s/t" keeps going
            parts[-1] += "." + piece
        else:
            parts.append(piece)
    return parts


def profile_of(sd: Json) -> Profile:
    """The differential of StructureDefinition `sd` as a tree of elements and slices."""
    rtype = str(sd.get("type", ""))
    root = _Def(rtype, None)
    for raw in (sd.get("differential") or {}).get("element", []):
        element_id = str(raw.get("id") or raw.get("path", ""))
        node = root
        for seg in _segments(element_id)[1:]:
            name, _, slice_name = seg.partition(":")
            node = node.children.setdefault(seg, _Def(name, slice_name or None))
        node.raw = raw
    contexts = tuple(str(c.get("expression")) for c in sd.get("context", []) if c.get("expression"))
    return Profile(str(sd.get("url", "")), rtype, root, contexts)


@dataclass(slots=True)
class _Visit:
    report: Report
    label: str
    where: str

    def problem(self, path: str, rule: str, message: str) -> None:
        self.report.problems.append(Problem(self.label, self.where, path, rule, message))


class ProfileValidator:
    """Checks resources against the profiles they claim and the extensions they use, both from the
    StructureDefinitions among `resources`; its ValueSets and CodeSystems answer required bindings,
    and a complete CodeSystem checks the code of every Coding that names it."""

    def __init__(self, resources: list[Json], elements: Mapping[str, tuple[str, bool]]) -> None:
        made = [
            profile_of(r)
            for r in resources
            if r.get("resourceType") == "StructureDefinition" and r.get("url")
        ]
        self.profiles = {p.url: p for p in made if p.type != "Extension"}
        self.extensions = {p.url: p for p in made if p.type == "Extension"}
        self.elements = elements
        self.terminology = Definitions(
            [r for r in resources if r.get("resourceType") in ("ValueSet", "CodeSystem")]
        )

    def validate(self, resource: Any, where: str, report: Report) -> None:
        """Problems and what was not checked go to `report`. Only the profiles' rules: that the
        resource is FHIR at all (types, base cardinalities) is the base validator's to say."""
        report.resources += 1
        if not isinstance(resource, dict):
            return
        rtype = str(resource.get("resourceType", ""))
        visit = _Visit(report, f"{rtype}/{resource.get('id', '?')}", where)
        meta = resource.get("meta")
        claimed = meta.get("profile") if isinstance(meta, dict) else None
        for url in claimed if isinstance(claimed, list) else []:
            if not isinstance(url, str):
                continue
            profile = self.profiles.get(url.split("|")[0])
            if profile is None:
                report.not_checked[f"profile {url} (not given)"] += 1
            elif profile.type != rtype:
                visit.problem(rtype, "profile", f"claims {url}, a profile of {profile.type}")
            else:
                self._node(profile.root, resource, rtype, visit)
        for path, type_path, extension in _extensions(resource, rtype, rtype, self._type_of):
            self._extension(extension, path, type_path, visit)
        for path, coding in _codings(resource, rtype):
            system = str(coding.get("system"))
            known = self.terminology.expand_system(system)
            if known is not None and (system, coding.get("code")) not in known:
                visit.problem(
                    path, "code", f"code {coding.get('code')!r} is not in code system {coding['system']}"
                )

    def _type_of(self, type_path: str) -> str | None:
        found = self.elements.get(type_path)
        return found[0] if found is not None else None

    def _extension(self, extension: Json, path: str, holder: str, visit: _Visit) -> None:
        url = str(extension.get("url", ""))
        profile = self.extensions.get(url)
        if profile is None:
            if "://" in url:
                visit.report.not_checked[f"extension {url} (no definition)"] += 1
            return
        if profile.contexts:
            kinds = {holder, self._type_of(holder) or holder}
            if not kinds & set(profile.contexts) and not set(profile.contexts) & {"Element", "Resource"}:
                visit.problem(
                    path,
                    "extension context",
                    f"{url} may appear on {', '.join(profile.contexts)}, not {holder}",
                )
        self._node(profile.root, extension, path, visit)

    def _node(self, definition: _Def, node: Json, path: str, visit: _Visit) -> None:
        """The children `definition` constrains, in instance `node` at `path`."""
        by_name: dict[str, list[_Def]] = {}
        for child in definition.children.values():
            by_name.setdefault(child.name, []).append(child)
        for name, defs in by_name.items():
            values = list(_values(node, name))
            base = next((d for d in defs if d.slice is None), None)
            if base is not None:
                self._apply(base, values, f"{path}.{name}", visit)
            slices = [d for d in defs if d.slice is not None]
            if not slices:
                continue
            discriminators = base.discriminators() if base is not None else []
            matched: set[int] = set()
            for s in slices:
                wanted = self._wanted(s, discriminators, visit)
                if wanted is None:  # members unknown: neither its cardinality nor its values judged
                    continue
                members = []
                for i, (key, item) in enumerate(values):
                    if all(
                        _at(item, dpath) == value if kind == "value" else _contains(_at(item, dpath), value)
                        for kind, dpath, value in wanted
                    ):
                        members.append((key, item))
                        matched.add(i)
                self._apply(s, members, f"{path}.{name}:{s.slice}", visit)
            rules = ((base.raw.get("slicing") or {}) if base is not None else {}).get("rules")
            if rules == "closed":
                for i, (key, _) in enumerate(values):
                    if i not in matched:
                        visit.problem(f"{path}.{key}", "slicing closed", f"{key} matches no slice")

    def _wanted(
        self, s: _Def, discriminators: list[tuple[str, str]], visit: _Visit
    ) -> list[tuple[str, str, Any]] | None:
        """(kind, path, value) a member of slice `s` has at each discriminator; None (counted as not
        checked) when a discriminator is not by value or pattern, or the slice fixes no value there."""
        if not discriminators:
            visit.report.not_checked[f"slice {s.name}:{s.slice} (no discriminator)"] += 1
            return None
        wanted = []
        for kind, dpath in discriminators:
            if kind not in ("value", "pattern"):
                visit.report.not_checked[f"discriminator {kind} {dpath}"] += 1
                return None
            expected = _expected(s, dpath)
            if expected is None:
                visit.report.not_checked[f"slice {s.name}:{s.slice} (discriminator {dpath} not fixed)"] += 1
                return None
            wanted.append((kind, dpath, expected))
        return wanted

    def _apply(self, d: _Def, values: list[tuple[str, Any]], path: str, visit: _Visit) -> None:
        """What element (or slice) `d` says, over its `values` in one parent node."""
        raw = d.raw
        count = len(values)
        rule = f"profile cardinality {raw.get('min', 0)}..{raw.get('max', '*')}"
        if "min" in raw and count < int(raw["min"]):
            visit.problem(path, rule, f"{count} values, at least {raw['min']}")
        if raw.get("max") not in (None, "*") and count > int(raw["max"]):
            given = ", ".join(sorted({key.split("[")[0] for key, _ in values}))
            visit.problem(path, rule, f"{count} values ({given}), at most {raw['max']}")
        allowed = d.types()
        fixed = d.fixed
        binding = raw.get("binding") or {}
        for key, item in values:
            at = path if d.slice else path.rsplit(".", 1)[0] + "." + key
            if d.name.endswith("[x]") and allowed:
                suffix = key[len(d.name) - 3 :]
                if suffix.lower() not in {t.lower() for t in allowed}:
                    visit.problem(at, "profile type", f"{key} is not one of {', '.join(allowed)}")
            if fixed is not None:
                kind, value = fixed
                ok = item == value if kind.startswith("fixed") else _contains(item, value)
                if not ok:
                    visit.problem(at, f"profile {kind}", f"{_show(item)} is not {_show(value)}")
            if binding.get("strength") == "required" and binding.get("valueSet"):
                self._binding(str(binding["valueSet"]), item, at, visit)
            for url in d.type_profiles():
                if url in self.profiles and isinstance(item, dict):
                    self._node(self.profiles[url].root, item, at, visit)
            if d.children and isinstance(item, dict):
                self._node(d, item, at, visit)

    def _binding(self, value_set: str, item: Any, path: str, visit: _Visit) -> None:
        codes = self.terminology.expand(value_set)
        if codes is None:
            visit.report.not_checked[f"binding {value_set}"] += 1
            return
        if isinstance(item, str):  # a code: its system is the value set's
            ok = item in {code for _, code in codes}
        else:
            found = item.get("coding") if isinstance(item, dict) else None
            codings = [item] if isinstance(item, dict) and "code" in item else found
            codings = codings if isinstance(codings, list) else []
            ok = any(
                (c.get("system"), c.get("code")) in codes
                for c in codings
                if isinstance(c, dict) and isinstance(c.get("code"), str)
            )
        if not ok:
            visit.problem(path, f"profile binding {value_set}", f"{_show(item)} is not in the value set")


def _values(node: Any, name: str) -> Iterator[tuple[str, Any]]:
    """(json key, item) of element `name` in `node`: each item of a list; each type of a choice."""
    if not isinstance(node, dict):
        return
    if name.endswith("[x]"):
        stem = name[:-3]
        keys = [k for k in node if k.startswith(stem) and k[len(stem) : len(stem) + 1].isupper()]
    else:
        keys = [name] if name in node else []
    for key in keys:
        value = node[key]
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield f"{key}[{i}]", item
        else:
            yield key, value


def _expected(s: _Def, dpath: str) -> Any:
    """The value a slice's members have at discriminator path `dpath`: fixed or pattern on that
    descendant of the slice, or, for an extension's url, the slice's type profile."""
    if dpath == "$this":
        found = s.fixed
        return found[1] if found else None
    node: _Def | None = s
    for seg in dpath.split("."):
        node = node.children.get(seg) if node is not None else None
    if node is not None and node.fixed is not None:
        return node.fixed[1]
    if dpath == "url":
        profiles = s.type_profiles()
        return profiles[0] if len(profiles) == 1 else None
    return None


def _at(item: Any, dpath: str) -> Any:
    if dpath == "$this":
        return item
    for seg in dpath.split("."):
        item = item.get(seg) if isinstance(item, dict) else None
    return item


def _contains(value: Any, pattern: Any) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_contains(value.get(k), v) for k, v in pattern.items())
    if isinstance(pattern, list):
        return isinstance(value, list) and all(any(_contains(v, p) for v in value) for p in pattern)
    return bool(value == pattern)


def _extensions(
    node: Any, path: str, type_path: str, type_of: Callable[[str], str | None]
) -> Iterator[tuple[str, str, Json]]:
    """(instance path, holder's type path, extension) of every extension in `node`, nested ones too;
    the holder's type path is a datatype's name where the walk entered one ("Identifier")."""
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            at = f"{path}.{key}" + (f"[{i}]" if isinstance(value, list) else "")
            if key in ("extension", "modifierExtension") and isinstance(item, dict):
                yield at, type_path, item
                yield from _extensions(item, at, "Extension", type_of)
            elif isinstance(item, dict) and not key.startswith("_") and key != "contained":
                child = f"{type_path}.{key}"
                kind = type_of(child)
                yield from _extensions(item, at, kind if kind and kind[:1].isupper() else child, type_of)


def _codings(node: Any, path: str) -> Iterator[tuple[str, Json]]:
    if isinstance(node, dict):
        if isinstance(node.get("system"), str) and isinstance(node.get("code"), str):
            yield path, node
        for key, value in node.items():
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                yield from _codings(item, f"{path}.{key}" + (f"[{i}]" if isinstance(value, list) else ""))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
