"""A barcode at every packaging level: which product codes a package carries where, counted as DMP counts.

DMP's SAFEST service (FHIR R4) offers the search parameters ``package-item-level-one``, ``-two``
and ``-three`` on MedicinalProductPackaged: "search by productcode at top package level", "at
second package level", "at third package level" (DMP's OpenAPI document of the service, as its
generated clients carry it). The numbering is outer-first: level one is R4's top
``packageItem``, level two a ``packageItem`` inside it, and so on. In R5 those levels are
``PackagedProductDefinition.packaging`` and its nested ``packaging``; where R4 had several top
``packageItem``, R5 has one outer ``packaging`` with nothing of its own around them
(translators/safest, `_packaging`), and that wrapper is no level: its children are level one.

This outer-first count is not DMP's PackageLevel code system (1 Primary .. 4 Quaternary, counted
from the item outwards), which each level states as its ``package-level`` property
(translators/shape.py); a match reports both.

Pure functions over R5 JSON: the search index (store/searchparams.py) and the R4 view use the same
walk, so the two APIs count alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from grunndata.fhir import systems as s

Json = dict[str, Any]

LEVEL_WORDS = ("one", "two", "three")
"""DMP's parameter names: ``package-item-level-<word>`` finds a code at that level from the top."""
MATCH_EXTENSION = s.EXT_BASE + "barcode-match"
"""On Bundle.entry.search of a barcode search's match: where the code was found (`match_extension`)."""
PACKAGE, PACKAGING, ITEM = "package", "packaging", "item"


@dataclass(frozen=True, slots=True)
class Level:
    """One packaging level of a package, as DMP counts it."""

    depth: int  # 1: the top level (DMP's package-item-level-one), 2: inside it, ...
    node: Json  # the packaging element

    @property
    def identifiers(self) -> list[Json]:
        return [i for i in self.node.get("identifier") or () if isinstance(i, dict)]

    @property
    def package_level(self) -> Json | None:
        """DMP's PackageLevel coding the level states (1 Primary: holds the items), if any."""
        return _property_coding(self.node, "package-level")

    @property
    def unit_dose(self) -> bool:
        return any(prop.get("valueBoolean") is True for prop in _properties(self.node, "unit-dose"))

    @property
    def items(self) -> list[str]:
        """The ``Type/id`` references of the items this level holds."""
        found = []
        for contained in self.node.get("containedItem") or ():
            ref = ((contained or {}).get("item") or {}).get("reference") or {}
            if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
                found.append(ref["reference"])
        return found


def _properties(node: Json, code: str) -> Iterator[Json]:
    for prop in node.get("property") or ():
        if not isinstance(prop, dict):
            continue
        for coding in (prop.get("type") or {}).get("coding") or ():
            if isinstance(coding, dict) and (coding.get("system"), coding.get("code")) == (
                s.CS_PACKAGING_PROPERTY,
                code,
            ):
                yield prop
                break


def _property_coding(node: Json, code: str) -> Json | None:
    for prop in _properties(node, code):
        for coding in (prop.get("valueCodeableConcept") or {}).get("coding") or ():
            if isinstance(coding, dict):
                return coding
    return None


def _is_wrapper(packaging: Json) -> bool:
    """R5's one outer level around several packages: nothing of its own (no type, identifier,
    item, property) and more than one level inside."""
    inner = packaging.get("packaging")
    if not isinstance(inner, list) or len(inner) < 2:
        return False
    return not any(packaging.get(k) for k in ("type", "identifier", "containedItem", "property", "quantity"))


def levels(resource: Json) -> list[Level]:
    """Every packaging level of a PackagedProductDefinition, outer first (depth 1 is the top)."""
    top = resource.get("packaging")
    if not isinstance(top, dict):
        return []
    found: list[Level] = []
    start = [p for p in top.get("packaging") or () if isinstance(p, dict)] if _is_wrapper(top) else [top]

    def walk(node: Json, depth: int) -> None:
        found.append(Level(depth, node))
        for inner in node.get("packaging") or ():
            if isinstance(inner, dict):
                walk(inner, depth + 1)

    for node in start:
        walk(node, 1)
    return found


def level_codes(resource: Json, depth: int) -> list[Json]:
    """The identifiers of the levels at `depth` (1: top): what package-item-level-<depth> indexes."""
    return [i for level in levels(resource) if level.depth == depth for i in level.identifiers]


def any_level_codes(resource: Json) -> list[Json]:
    """Every product code of a package: its own identifiers and every level's, at any depth."""
    own = [i for i in resource.get("identifier") or () if isinstance(i, dict)]
    return own + [i for level in levels(resource) for i in level.identifiers]


def any_level_items(resource: Json) -> list[str]:
    """The ``Type/id`` of every item a package holds, at any level."""
    return [ref for level in levels(resource) for ref in level.items]


Forms = tuple[tuple[str, ...] | None, tuple[str, ...] | None]  # (systems, codes); None: any


def _matches(identifier: Json, forms: Forms) -> bool:
    systems, codes = forms
    return (systems is None or identifier.get("system", "") in systems) and (
        codes is None or str(identifier.get("value")) in codes
    )


@dataclass(frozen=True, slots=True)
class Match:
    """Where a searched code was found in a package."""

    where: str  # PACKAGE (the package's own identifier), PACKAGING (a level), ITEM (a contained item's)
    identifier: Json
    depth: int | None = None  # PACKAGING: DMP's level, 1 the top
    package_level: Json | None = None  # PACKAGING: DMP's PackageLevel coding the level states
    unit_dose: bool = False  # PACKAGING: the level is flagged a unit dose
    item: str | None = None  # ITEM: the item's Type/id

    def extension(self) -> Json:
        """The match as an extension of Bundle.entry.search (MATCH_EXTENSION)."""
        parts: list[Json] = [{"url": "where", "valueCode": self.where}]
        if self.depth is not None:
            parts.append({"url": "level", "valueInteger": self.depth})
        if self.package_level is not None:
            parts.append({"url": "packageLevel", "valueCoding": dict(self.package_level)})
        if self.unit_dose:
            parts.append({"url": "unitDose", "valueBoolean": True})
        if self.item is not None:
            parts.append({"url": "item", "valueReference": {"reference": self.item}})
        parts.append({"url": "identifier", "valueIdentifier": dict(self.identifier)})
        return {"url": MATCH_EXTENSION, "extension": parts}


def package_matches(
    resource: Json, forms: Forms, depth: int | None = None, items: dict[str, list[Json]] | None = None
) -> list[Match]:
    """Where a package carries a code of `forms`: its own identifiers (unless `depth` is given),
    each level's (only those at `depth` when given), and the identifiers `items` lists for the items
    the levels hold (``Type/id`` -> the item's matching identifiers)."""
    found: list[Match] = []
    if depth is None:
        found += [Match(PACKAGE, i) for i in resource.get("identifier") or () if _matches(i, forms)]
    for level in levels(resource):
        if depth is not None and level.depth != depth:
            continue
        found += [
            Match(PACKAGING, i, level.depth, level.package_level, level.unit_dose)
            for i in level.identifiers
            if _matches(i, forms)
        ]
        if depth is None and items:
            for ref in level.items:
                found += [Match(ITEM, i, item=ref) for i in items.get(ref, ())]
    return found


def item_matches(resource: Json, forms: Forms) -> list[Match]:
    """Where a manufactured item carries a code of `forms`: its own identifiers."""
    return [Match(ITEM, i) for i in resource.get("identifier") or () if _matches(i, forms)]
