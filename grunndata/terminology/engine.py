"""Terminology operations over in-memory ConceptMaps and CodeSystems: $translate, $lookup,
$validate-code and $expand, answered as FHIR R5 Parameters and ValueSets.

Pure: the server loads the resources and hands them in; everything here is built once into
dictionaries, so each request is a lookup, not a scan of maps with tens of thousands of elements.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from grunndata.fhir import CONCEPT_PARENT
from grunndata.terminology.verification import (
    PROPERTY_VERIFIED,
    element_verified,
    target_verified,
    verified_code,
)

Json = dict[str, Any]
T = TypeVar("T")

NOT_RELATED = "not-related-to"
PARENT_PROPERTY_URI = CONCEPT_PARENT
EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class Coding:
    """A FHIR Coding, hashable so matches can be deduplicated."""

    system: str | None
    code: str
    display: str | None = None

    def as_json(self) -> Json:
        """The FHIR JSON, with only the keys that are set (FHIR forbids empty values)."""
        out: Json = {}
        if self.system is not None:
            out["system"] = self.system
        out["code"] = self.code
        if self.display is not None:
            out["display"] = self.display
        return out


@dataclass(frozen=True, slots=True)
class Match:
    """One $translate match: the relationship as the map states it, the concept and where it came from;
    `verified` as the map's target says (None: the map says nothing, as maps others publish)."""

    relationship: str
    concept: Coding
    origin_map: str
    comment: str | None = None
    verified: bool | None = None


def _bare(canonical: str) -> str:
    """A canonical without its `|version`: maps and systems are indexed and compared by url alone."""
    return canonical.split("|", 1)[0]


def _origin(conceptmap: Json) -> str:
    """The map's canonical as $translate reports it: url, with `|version` when the map has one."""
    url = str(conceptmap.get("url", ""))
    version = conceptmap.get("version")
    return f"{url}|{version}" if version else url


def _split(canonical: str) -> tuple[str, str | None]:
    """`url|version` -> (url, version); a canonical without `|` has no version."""
    url, bar, version = canonical.partition("|")
    return url, (version or None) if bar else None


def version_order(version: str | None) -> tuple[int, tuple[tuple[int, int, str], ...]]:
    """How versions of one canonical resource sort, oldest first: in natural order (runs of digits
    compare as numbers, so 1.10.0 is newer than 1.9.0 and 2 newer than 1.0), no version oldest.

    A request that names a url without a version gets the newest by this order: FHIR resolves such a
    canonical to the current version, and natural order reads semver, plain integers and ISO dates
    (the usual business versions) the way their authors mean them.
    """
    if version is None:
        return (0, ())
    parts = re.findall(r"\d+|\D+", version)
    return (1, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts))


class _Canonicals(Generic[T]):
    """Items (maps, code systems, value sets) by `url|version` and, for a bare url, the newest."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str | None], T] = {}
        self._newest: dict[str, tuple[str | None, T]] = {}

    def add(self, url: str, version: str | None, item: T) -> None:
        """Keep `item` unless one of the same url and version came first."""
        if (url, version) in self._exact:
            return
        self._exact[(url, version)] = item
        known = self._newest.get(url)
        if known is None or version_order(version) > version_order(known[0]):
            self._newest[url] = (version, item)

    def get(self, canonical: str, version: str | None = None) -> T | None:
        """The item of `url|version` (or of `version` given apart), else the newest of the url."""
        url, in_canonical = _split(canonical)
        wanted = version or in_canonical
        if wanted is not None:
            return self._exact.get((url, wanted))
        newest = self._newest.get(url)
        return newest[1] if newest else None

    def is_newest(self, url: str, item: T) -> bool:
        newest = self._newest.get(url)
        return newest is not None and newest[1] is item


@dataclass(frozen=True, slots=True)
class Replacement:
    """An imported terminology resource that took the place of one of ours with its url and version."""

    canonical: str  # url|version (url alone when neither has a version)
    resource: str  # Type/id of the imported one
    replaced: str  # Type/id of ours


def _canonical_key(resource: Json) -> tuple[str, str, str | None] | None:
    url = resource.get("url")
    if not isinstance(url, str) or not url:
        return None
    version = resource.get("version")
    return str(resource.get("resourceType")), url, version if isinstance(version, str) and version else None


def replace_ours(ours: Iterable[Json], imported: Iterable[Json]) -> tuple[list[Json], list[Replacement]]:
    """Ours with each replaced by the imported resource of its type, url and version, then the other
    imported ones; and what was replaced. One rule for the import report and the served terminology."""
    theirs = list(imported)
    by_key: dict[tuple[str, str, str | None], Json] = {}
    for resource in theirs:
        key = _canonical_key(resource)
        if key is not None:
            by_key.setdefault(key, resource)
    out: list[Json] = []
    replaced: list[Replacement] = []
    used: set[int] = set()
    for resource in ours:
        key = _canonical_key(resource)
        instead = by_key.get(key) if key is not None else None
        if key is None or instead is None or id(instead) in used:
            out.append(resource)
            continue
        used.add(id(instead))
        out.append(instead)
        canonical = f"{key[1]}|{key[2]}" if key[2] else key[1]
        replaced.append(Replacement(canonical, _label(instead), _label(resource)))
    out += [r for r in theirs if id(r) not in used]
    return out, replaced


def _label(resource: Json) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


@dataclass(frozen=True, slots=True, eq=False)
class _Group:
    """One ConceptMap group; compared by identity, so two alike groups of one map stay apart.

    `current`: the map is the newest version of its url, so it answers a question that names no
    map version (several versions of one map would otherwise answer twice, the old one stale)."""

    map_url: str
    origin: str
    source: str | None
    target: str | None
    unmapped: Json | None
    current: bool = True
    verified_code: str | None = None  # the map's code for the property PROPERTY_VERIFIED


@dataclass(frozen=True, slots=True)
class _Entry:
    """An indexed element target (or a noMap element, with `match` None) and the group it sits in."""

    group: _Group
    match: Match | None
    no_map_verified: bool | None = None  # a noMap element's mark (EXT_VERIFIED)


def _groups(conceptmap: Json, current: bool = True) -> Iterator[tuple[_Group, Json]]:
    """Each group of a map with its JSON, systems stripped of any `|version`."""
    url = _bare(str(conceptmap.get("url", "")))
    origin = _origin(conceptmap)
    marks = verified_code(conceptmap)
    for group in conceptmap.get("group", []):
        source, target = group.get("source"), group.get("target")
        yield (
            _Group(
                map_url=url,
                origin=origin,
                source=_bare(source) if source else None,
                target=_bare(target) if target else None,
                unmapped=group.get("unmapped"),
                current=current,
                verified_code=marks,
            ),
            group,
        )


def _forward_entries(group: _Group, element: Json) -> Iterator[_Entry]:
    """What one element says about its code read forward: a match per target, or a noMap marker."""
    if element.get("noMap"):
        yield _Entry(group, None, element_verified(element))
        return
    for target in element.get("target", []):
        if "code" in target:
            concept = Coding(group.target, target["code"], target.get("display"))
            yield _Entry(group, _match(target, concept, group))


def _reverse_entries(group: _Group, element: Json) -> Iterator[tuple[str, _Entry]]:
    """Each target code of an element, leading back to the element's (source-side) concept."""
    concept = Coding(group.source, element["code"], element.get("display"))
    for target in element.get("target", []):
        if "code" in target:
            yield target["code"], _Entry(group, _match(target, concept, group))


def _match(target: Json, concept: Coding, group: _Group) -> Match:
    """A match from one element target; a target without a relationship (not valid R5) counts as related-to."""
    verified = target_verified(target, group.verified_code) if group.verified_code else None
    return Match(
        target.get("relationship") or "related-to", concept, group.origin, target.get("comment"), verified
    )


def _fits(
    group: _Group, url: str | None, system: str | None, target_system: str | None, reverse: bool
) -> bool:
    """Whether a group answers the question: `system` is the side the code is on, `target_system` the other.

    `url` names the map: `url|version` that version, a bare url (or none) the newest of each url.
    """
    near, far = (group.target, group.source) if reverse else (group.source, group.target)
    if url is not None and "|" in url:
        chosen = group.origin == url
    else:
        chosen = group.current and (url is None or group.map_url == url)
    return chosen and (system is None or near == system) and (target_system is None or far == target_system)


def _nothing_found(
    code: str, system: str | None, target_system: str | None, url: str | None, reverse: bool
) -> str:
    """The one sentence explaining an empty $translate when no element even names the code."""
    maps = f"no map with url '{url}'" if url else "no map"
    of_system = f" of system '{system}'" if system else ""
    if reverse:
        other = f" from source system '{target_system}'" if target_system else ""
        return f"{maps} has code '{code}'{of_system} as a target{other}"
    other = f" with target system '{target_system}'" if target_system else ""
    return f"{maps} knows code '{code}'{of_system}{other}"


def _no_pause() -> None:
    pass


class ConceptMapIndex:
    """All ConceptMaps a server offers, indexed both ways for $translate."""

    def __init__(self, maps: Iterable[Json], pause: Callable[[], None] | None = None) -> None:
        """`pause` is called after every element indexed (a server building this in a thread
        beside the one that answers uses it to give way now and then)."""
        self._pause = pause or _no_pause
        self._maps: list[Json] = list(maps)
        self._by_url: _Canonicals[Json] = _Canonicals()
        self._forward: dict[str, list[_Entry]] = {}
        self._reverse: dict[str, list[_Entry]] = {}
        self._unmapped: dict[str, list[_Group]] = {}
        for conceptmap in self._maps:
            url, version = _split(_origin(conceptmap))
            self._by_url.add(url, version, conceptmap)
        for conceptmap in self._maps:
            url = _bare(str(conceptmap.get("url", "")))
            if (
                self._by_url.get(_origin(conceptmap)) is conceptmap
            ):  # a map of the same url|version first wins
                self._add(conceptmap, self._by_url.is_newest(url, conceptmap))

    def _add(self, conceptmap: Json, current: bool) -> None:
        """Index every element of one map by its source code and every target by its target code."""
        for group, group_json in _groups(conceptmap, current):
            if group.unmapped is not None and group.source is not None:
                self._unmapped.setdefault(group.source, []).append(group)
            for element in group_json.get("element", []):
                if "code" not in element:
                    continue
                self._forward.setdefault(element["code"], []).extend(_forward_entries(group, element))
                for target_code, entry in _reverse_entries(group, element):
                    self._reverse.setdefault(target_code, []).append(entry)
                self._pause()

    @property
    def maps(self) -> list[Json]:
        """The ConceptMap resources, as given and in order (for search and read)."""
        return list(self._maps)

    def find(self, url: str) -> Json | None:
        """The map of `url|version`, or the newest of a bare url (see `version_order`)."""
        return self._by_url.get(url)

    def translate(
        self,
        code: str,
        system: str | None,
        *,
        target_system: str | None = None,
        url: str | None = None,
        reverse: bool = False,
    ) -> tuple[list[Match], str | None]:
        """The matches for a code, in document order without duplicates, and a sentence when there are none.

        Forward, `code`/`system` are on the source side and `target_system` filters group targets;
        group `unmapped` rules apply when `system` is given. With `reverse`, `code`/`system` are on
        the target side, `target_system` filters group sources, and each match's relationship is
        still the map's own (source -> target), not inverted: the caller reads it the other way round.
        """
        wanted = url or None
        if wanted is not None and self._by_url.get(wanted) is None:
            return [], f"no ConceptMap has url '{wanted}'"
        if reverse:
            entries = self._reverse.get(code, [])
            matches = [
                e.match
                for e in entries
                if e.match is not None and _fits(e.group, wanted, system, target_system, True)
            ]
            notes: list[str] = []
        else:
            matches, notes = self._translate_forward(code, system, target_system, wanted, frozenset())
        matches = list(dict.fromkeys(matches))
        if matches:
            return matches, None
        return [], notes[0] if notes else _nothing_found(code, system, target_system, wanted, reverse)

    def _translate_forward(
        self, code: str, system: str | None, target_system: str | None, url: str | None, seen: frozenset[str]
    ) -> tuple[list[Match], list[str]]:
        """Forward matches and, for an empty answer, the reasons found (noMap, a missing other map)."""
        entries = [
            e for e in self._forward.get(code, []) if _fits(e.group, url, system, target_system, False)
        ]
        matches = [e.match for e in entries if e.match is not None]
        notes = [
            f"'{code}' is in ConceptMap {e.group.origin} but explicitly not mapped (noMap)"
            + (UNVERIFIED_NO_MAP if e.no_map_verified is False else "")
            for e in entries
            if e.match is None
        ]
        if system is None:
            return matches, notes
        named = {e.group for e in entries}
        for group in self._unmapped.get(system, []):
            if group not in named and _fits(group, url, system, target_system, False):
                found, note = self._apply_unmapped(code, system, target_system, group, seen | {group.map_url})
                matches += found
                notes += note
        return matches, notes

    def _apply_unmapped(
        self, code: str, system: str, target_system: str | None, group: _Group, seen: frozenset[str]
    ) -> tuple[list[Match], list[str]]:
        """A group's rule for codes it does not map: a fixed code, the source code, or another map."""
        rule = group.unmapped or {}
        mode = rule.get("mode")
        if mode == "fixed" and rule.get("code"):
            concept = Coding(group.target, rule["code"], rule.get("display"))
            return [Match(rule.get("relationship") or "related-to", concept, group.origin)], []
        if mode == "use-source-code":
            return [
                Match(rule.get("relationship") or "equivalent", Coding(group.target, code), group.origin)
            ], []
        if mode != "other-map" or not rule.get("otherMap"):
            return [], []
        other = _bare(rule["otherMap"])  # the other map's newest version, whatever version it names
        if other in seen:
            return [], [f"'{code}' is not in ConceptMap {group.origin}, whose other map {other} loops back"]
        if self._by_url.get(other) is None:
            return [], [
                f"'{code}' is not in ConceptMap {group.origin}, and its other map {other} is not known"
            ]
        return self._translate_forward(code, system, target_system, other, seen | {other})


UNVERIFIED_NO_MAP = "; the map marks this code unverified (not confirmed by real data or an official list)"


def unverified_note(matches: list[Match]) -> str | None:
    """The sentence $translate's `message` gives when some match rests on a map entry marked
    unverified; None when every match is verified or unmarked."""
    doubtful = [m for m in matches if m.verified is False]
    if not doubtful:
        return None
    listed = ", ".join(
        f"{m.concept.system}|{m.concept.code}" if m.concept.system else m.concept.code for m in doubtful
    )
    maps = ", ".join(dict.fromkeys(m.origin_map for m in doubtful))
    return (
        f"unverified: {len(doubtful)} of {len(matches)} match{'es' if len(matches) != 1 else ''} "
        f"({listed}) rest on entries of {maps} whose codes are not confirmed by real data or an "
        "official list (a stand-in code); check them before relying on them"
    )


def translate_parameters(matches: list[Match], message: str | None) -> Json:
    """The R5 $translate answer; `result` is true when some match is anything but not-related-to.

    The `message` says so when a match rests on an unverified map entry (`unverified_note`), and
    each match of a map that marks its entries carries the mark as a `property` part."""
    result = any(m.relationship != NOT_RELATED for m in matches)
    parameters: list[Json] = [{"name": "result", "valueBoolean": result}]
    message = "; ".join(m for m in (message, unverified_note(matches)) if m) or None
    if message:
        parameters.append({"name": "message", "valueString": message})
    parameters.extend(_match_parameter(m) for m in matches)
    return {"resourceType": "Parameters", "parameter": parameters}


def _match_parameter(match: Match) -> Json:
    """One `match` parameter; the map's `verified` mark travels as a `property` part (uri, value),
    the map's comment on the target as its `message` part."""
    parts: list[Json] = [
        {"name": "relationship", "valueCode": match.relationship},
        {"name": "concept", "valueCoding": match.concept.as_json()},
    ]
    if match.verified is not None:
        parts.append(
            {
                "name": "property",
                "part": [
                    {"name": "uri", "valueUri": PROPERTY_VERIFIED},
                    {"name": "value", "valueBoolean": match.verified},
                ],
            }
        )
    parts.append({"name": "originMap", "valueCanonical": match.origin_map})
    if match.comment:
        parts.append({"name": "message", "valueString": match.comment})
    return {"name": "match", "part": parts}


@dataclass(frozen=True, slots=True)
class _Concept:
    """A concept of a code system, with the code of the concept it is nested in (None at top level)."""

    json: Json
    enclosing: str | None


@dataclass(slots=True)
class _CodeSystem:
    """One code system's concepts, flattened in document order and keyed for lookup."""

    resource: Json
    concepts: list[_Concept] = field(default_factory=list)
    by_key: dict[str, _Concept] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    _codings: list[Coding] | None = None

    @property
    def url(self) -> str:
        return str(self.resource["url"])

    @property
    def canonical(self) -> str:
        version = self.resource.get("version")
        return f"{self.url}|{version}" if version else self.url

    def coding(self, concept: _Concept) -> Coding:
        return Coding(self.url, concept.json["code"], _display(concept.json))

    def key(self, code: str) -> str:
        """Codes are case-sensitive unless the code system explicitly says `caseSensitive: false`."""
        return code.casefold() if self.resource.get("caseSensitive") is False else code

    def concept(self, code: str) -> _Concept | None:
        return self.by_key.get(self.key(code))

    def codings(self) -> list[Coding]:
        """Every concept as a Coding, in document order: the code system's implicit value set."""
        if self._codings is None:
            self._codings = [self.coding(c) for c in self.concepts]
        return self._codings


def _parent_properties(resource: Json) -> set[str]:
    """The property codes that name a parent: `parent`, or any declared with the standard parent uri."""
    declared = {p["code"] for p in resource.get("property", []) if p.get("uri") == PARENT_PROPERTY_URI}
    return declared | {"parent"}


def _flatten(concepts: Iterable[Json], enclosing: str | None) -> Iterator[_Concept]:
    """Nested concepts, depth first, each remembering the code of the concept around it."""
    for concept in concepts:
        yield _Concept(concept, enclosing)
        yield from _flatten(concept.get("concept", []), concept["code"])


def _parents(concept: _Concept, parent_codes: set[str]) -> list[str]:
    """The parents of a concept: its parent properties, then the concept it is nested in."""
    named = [
        str(p["valueCode"])
        for p in concept.json.get("property", [])
        if p.get("code") in parent_codes and "valueCode" in p
    ]
    if concept.enclosing is not None and concept.enclosing not in named:
        named.append(concept.enclosing)
    return named


def _index_code_system(resource: Json) -> _CodeSystem:
    """Flatten and key one code system, and collect each concept's children in document order."""
    indexed = _CodeSystem(resource)
    parent_codes = _parent_properties(resource)
    for concept in _flatten(resource.get("concept", []), None):
        indexed.concepts.append(concept)
        indexed.by_key.setdefault(indexed.key(concept.json["code"]), concept)
        for parent in _parents(concept, parent_codes):
            indexed.children.setdefault(indexed.key(parent), []).append(concept.json["code"])
    return indexed


def _value_parts(holder: Json) -> list[Json]:
    """The `value` part of a property, keeping its value[x] type (valueCode, valueCoding, ...); none if absent."""
    return [{"name": "value", key: value} for key, value in holder.items() if key.startswith("value")][:1]


def _property_parameter(code: str, values: list[Json]) -> Json:
    return {"name": "property", "part": [{"name": "code", "valueCode": code}, *values]}


def _designation_parameter(designation: Json) -> Json:
    parts: list[Json] = []
    if "language" in designation:
        parts.append({"name": "language", "valueCode": designation["language"]})
    if "use" in designation:
        parts.append({"name": "use", "valueCoding": designation["use"]})
    parts.append({"name": "value", "valueString": designation["value"]})
    return {"name": "designation", "part": parts}


def _properties(indexed: _CodeSystem, concept: _Concept) -> list[Json]:
    """Stated properties, the implied parent of a nested concept, then one `child` per child concept."""
    stated = [_property_parameter(p["code"], _value_parts(p)) for p in concept.json.get("property", [])]
    said = {(p["code"], p.get("valueCode")) for p in concept.json.get("property", [])}
    implied = [("parent", concept.enclosing)] if concept.enclosing is not None else []
    implied += [("child", child) for child in indexed.children.get(indexed.key(concept.json["code"]), [])]
    unsaid = [pair for pair in dict.fromkeys(implied) if pair not in said]
    return stated + [
        _property_parameter(name, [{"name": "value", "valueCode": code}]) for name, code in unsaid
    ]


def _words(text: str) -> set[str]:
    """A display's words for filtering: whitespace-separated, and also split at punctuation."""
    lowered = text.casefold()
    return set(lowered.split()) | set(re.findall(r"\w+", lowered))


def _display(concept: Json) -> str | None:
    """A concept's display; one of only spaces (DMP's marketingStatus has `display value=" "`) is none."""
    display = concept.get("display")
    return display if isinstance(display, str) and display.strip() else None


def _filtered(codings: list[Coding], text: str) -> list[Coding]:
    """Codes that start with the filter, or whose display has a word starting with each filter word."""
    wanted = text.casefold()
    terms = wanted.split()

    def keeps(coding: Coding) -> bool:
        if coding.code.casefold().startswith(wanted):
            return True
        words = _words(coding.display or "")
        return all(any(w.startswith(t) for w in words) for t in terms)

    return [c for c in codings if keeps(c)]


class CannotExpand(ValueError):
    """A value set this server cannot expand (a filter, an unknown code system...); the message says
    which part of it, in one sentence."""


def _expansion_id(url: str, filter: str | None, offset: int, count: int | None) -> str:
    """The same question gets the same identifier, so caches and clients see one expansion."""
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps([url, filter, offset, count])))


class CodeSystemIndex:
    """CodeSystem resources with their concepts (content complete), for $lookup, $validate-code and
    $expand, and the ValueSets composed of them, for $expand.

    Each is found by `url|version`, or by its url alone: the newest version (`version_order`).
    """

    def __init__(self, code_systems: Iterable[Json], value_sets: Iterable[Json] = ()) -> None:
        self._by_url: _Canonicals[_CodeSystem] = _Canonicals()
        for resource in code_systems:
            if resource.get("url"):
                self._by_url.add(resource["url"], resource.get("version"), _index_code_system(resource))
        self._value_sets: _Canonicals[Json] = _Canonicals()
        for value_set in value_sets:
            if value_set.get("url"):
                self._value_sets.add(value_set["url"], value_set.get("version"), value_set)

    def get(self, url: str, version: str | None = None) -> Json | None:
        """The CodeSystem of `url|version` (or the newest of the url), as given."""
        indexed = self._by_url.get(url, version)
        return indexed.resource if indexed else None

    def lookup(self, system: str, code: str, version: str | None = None) -> Json | None:
        """The R5 $lookup answer for a code, or None when the system or the code is unknown."""
        indexed = self._by_url.get(system, version)
        concept = indexed.concept(code) if indexed else None
        if indexed is None or concept is None:
            return None
        resource = indexed.resource
        parameters: list[Json] = [
            {"name": "name", "valueString": resource.get("name") or resource.get("title") or indexed.url}
        ]
        if resource.get("version"):
            parameters.append({"name": "version", "valueString": resource["version"]})
        if _display(concept.json):
            parameters.append({"name": "display", "valueString": concept.json["display"]})
        if concept.json.get("definition"):
            parameters.append({"name": "definition", "valueString": concept.json["definition"]})
        parameters += [_designation_parameter(d) for d in concept.json.get("designation", [])]
        parameters += _properties(indexed, concept)
        return {"resourceType": "Parameters", "parameter": parameters}

    def validate_code(
        self, url: str, code: str, display: str | None = None, version: str | None = None
    ) -> Json:
        """The R5 $validate-code answer: a display must be the concept's display or one of its designations."""
        indexed = self._by_url.get(url, version)
        if indexed is None:
            named = f"{url}|{version}" if version else url
            return _validation(False, f"the code system '{named}' is not known to this server")
        concept = indexed.concept(code)
        if concept is None:
            return _validation(False, f"code '{code}' is not in code system '{indexed.canonical}'")
        shown = _display(concept.json)
        known = {shown} | {d.get("value") for d in concept.json.get("designation", [])}
        if display is None or display in known:
            return _validation(True, None, shown)
        message = f"the display '{display}' is not the display of code '{code}' ('{shown or ''}')"
        return _validation(False, message, shown)

    def expand(
        self,
        url: str,
        *,
        version: str | None = None,
        filter: str | None = None,
        offset: int = 0,
        count: int | None = None,
    ) -> Json | None:
        """The ValueSet of `url` expanded, or a code system's implicit value set (all its concepts),
        filtered and paged; None when neither is known; CannotExpand for what cannot be expanded.

        A negative offset or count counts as 0, and a blank filter as none, so a sloppy query still pages.
        """
        value_set = self._value_sets.get(url, version)
        if value_set is not None:
            codings, used = self._composed(value_set, frozenset())
            head: Json = {
                k: value_set[k] for k in ("id", "url", "version", "name", "title", "status") if k in value_set
            }
            canonical, date = _canonical_of(value_set), value_set.get("date")
        else:
            indexed = self._by_url.get(url, version)
            if indexed is None:
                return None
            codings, used = indexed.codings(), []
            head = {"status": "active", "url": indexed.url}
            canonical, date = indexed.canonical, indexed.resource.get("date")
        filter = filter.strip() if filter and filter.strip() else None
        offset = max(offset, 0)
        count = max(count, 0) if count is not None else None
        chosen = _filtered(codings, filter) if filter else codings
        page = chosen[offset:] if count is None else chosen[offset : offset + count]
        expansion: Json = {
            "identifier": _expansion_id(canonical, filter, offset, count),
            "timestamp": date or EPOCH,
            "total": len(chosen),
            "offset": offset,
            "parameter": _expansion_parameters(filter, offset, count)
            + [{"name": "used-codesystem", "valueUri": u} for u in used],
        }
        if page:
            expansion["contains"] = [c.as_json() for c in page]
        return {"resourceType": "ValueSet", **head, "expansion": expansion}

    def _composed(self, value_set: Json, seen: frozenset[str]) -> tuple[list[Coding], list[str]]:
        """The codes of a ValueSet's compose (include minus exclude, in order, each once) and the code
        systems used (`url|version`)."""
        canonical = _canonical_of(value_set)
        if canonical in seen:
            raise CannotExpand(f"ValueSet {canonical} includes itself through compose.include.valueSet")
        seen = seen | {canonical}
        compose = value_set.get("compose")
        if not isinstance(compose, dict) or not compose.get("include"):
            raise CannotExpand(f"ValueSet {canonical} has no compose.include to expand")
        used: list[str] = []
        kept: dict[tuple[str | None, str], Coding] = {}
        for n, part in enumerate(compose["include"]):
            for c in self._part(part, f"ValueSet {canonical} compose.include[{n}]", seen, used):
                kept.setdefault((c.system, c.code), c)
        for n, part in enumerate(compose.get("exclude") or []):
            for c in self._part(part, f"ValueSet {canonical} compose.exclude[{n}]", seen, used):
                kept.pop((c.system, c.code), None)
        return list(kept.values()), list(dict.fromkeys(used))

    def _part(self, part: Json, where: str, seen: frozenset[str], used: list[str]) -> list[Coding]:
        """The codes one include (or exclude) names: a whole code system, listed concepts of one,
        other value sets (their intersection, and with the system part when both are given)."""
        if part.get("filter"):
            raise CannotExpand(f"{where} selects codes by filter, which this server does not expand")
        sets: list[list[Coding]] = []
        system = part.get("system")
        if system:
            indexed = self._by_url.get(system, part.get("version"))
            if indexed is None:
                named = f"{system}|{part['version']}" if part.get("version") else system
                raise CannotExpand(f"{where} names code system {named}, which this server does not have")
            used.append(indexed.canonical)
            sets.append(self._concepts(indexed, part.get("concept"), where))
        for m, other in enumerate(part.get("valueSet") or []):
            found = self._value_sets.get(other)
            if found is not None:
                codings, more = self._composed(found, seen)
                used += more
            elif (indexed := self._by_url.get(other)) is not None:  # a code system's implicit value set
                codings = indexed.codings()
                used.append(indexed.canonical)
            else:
                raise CannotExpand(f"{where}.valueSet[{m}] {other} is not a value set this server has")
            sets.append(codings)
        if not sets:
            raise CannotExpand(f"{where} names neither a system nor a valueSet")
        rest = [{(c.system, c.code) for c in codings} for codings in sets[1:]]
        return [c for c in sets[0] if all((c.system, c.code) in other for other in rest)]

    def _concepts(self, indexed: _CodeSystem, listed: Any, where: str) -> list[Coding]:
        """All concepts of a code system, or the listed ones (each must be in it; a display given in
        the value set is the one the expansion shows)."""
        if not listed:
            return indexed.codings()
        codings = []
        for n, item in enumerate(listed):
            concept = indexed.concept(str(item.get("code", "")))
            if concept is None:
                raise CannotExpand(
                    f"{where}.concept[{n}] code '{item.get('code')}' is not in code system {indexed.canonical}"
                )
            display = item.get("display") or _display(concept.json)
            codings.append(Coding(indexed.url, concept.json["code"], display))
        return codings


def _canonical_of(resource: Json) -> str:
    version = resource.get("version")
    return f"{resource.get('url')}|{version}" if version else str(resource.get("url"))


def _validation(result: bool, message: str | None, display: str | None = None) -> Json:
    parameters: list[Json] = [{"name": "result", "valueBoolean": result}]
    if message:
        parameters.append({"name": "message", "valueString": message})
    if display:
        parameters.append({"name": "display", "valueString": display})
    return {"resourceType": "Parameters", "parameter": parameters}


def _expansion_parameters(filter: str | None, offset: int, count: int | None) -> list[Json]:
    """The expansion's record of the question it answers, as $expand's own parameter names."""
    parameters: list[Json] = []
    if filter:
        parameters.append({"name": "filter", "valueString": filter})
    parameters.append({"name": "offset", "valueInteger": offset})
    if count is not None:
        parameters.append({"name": "count", "valueInteger": count})
    return parameters
