"""Whether a ConceptMap entry is verified: its codes confirmed by real data or an official list.

Every target of every map Grunndata makes carries two properties, declared in `ConceptMap.property`
(R5's own place for facts about a mapping, so any R5 client can read them):

* `verified` (boolean, uri `PROPERTY_VERIFIED`): true when the source code (and display) is
  confirmed by the real FEST extract or an official code list, and the target code by the target
  system's published list; false when either is a stand-in nobody has checked.
* `evidence` (string, uri `PROPERTY_EVIDENCE`): where the confirmation comes from, or why there is
  none (the reviewed maps give it on every target; the generated maps state it once, in their
  description).

An element with `noMap` has no target to carry a property, so it carries the extension
`EXT_VERIFIED` (valueBoolean, same meaning) instead. `$translate` reports `verified` on each match
as a `property` part, and its `message` names the matches that are not verified.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from grunndata.fhir.systems import EXT_BASE

Json = dict[str, Any]

PROPERTY_BASE = "https://grunndata.no/fhir/conceptmap-property/"
PROPERTY_VERIFIED = PROPERTY_BASE + "verified"
PROPERTY_EVIDENCE = PROPERTY_BASE + "evidence"
EXT_VERIFIED = EXT_BASE + "conceptmap-verified"
"""On a noMap element (which has no target for a property): valueBoolean, as property `verified`."""

VERIFIED, EVIDENCE = "verified", "evidence"

MAP_PROPERTIES: list[Json] = [
    {
        "code": VERIFIED,
        "uri": PROPERTY_VERIFIED,
        "description": "true: the source code is confirmed by the real FEST extract or an official code "
        "list, and the target code by the target system's published list; false: a stand-in not "
        "checked against Volven (or an unconfirmed target), to be checked before it is relied on",
        "type": "boolean",
    },
    {
        "code": EVIDENCE,
        "uri": PROPERTY_EVIDENCE,
        "description": "Where the confirmation comes from, or why there is none",
        "type": "string",
    },
]
"""`ConceptMap.property` of every map with marked targets."""


def mark(verified: bool, evidence: str | None = None) -> list[Json]:
    """A target's `property` list saying whether it is verified (and from where)."""
    found: list[Json] = [{"code": VERIFIED, "valueBoolean": verified}]
    if evidence:
        found.append({"code": EVIDENCE, "valueString": evidence})
    return found


def mark_no_map(verified: bool) -> list[Json]:
    """A noMap element's `extension` list saying whether its (source) code is verified."""
    return [{"url": EXT_VERIFIED, "valueBoolean": verified}]


def _codes_of(conceptmap: Json) -> dict[str, str]:
    """The map's own property codes by uri (a map may name `verified` by another code)."""
    return {
        str(p.get("uri")): str(p.get("code"))
        for p in conceptmap.get("property") or []
        if isinstance(p, dict) and p.get("uri") in (PROPERTY_VERIFIED, PROPERTY_EVIDENCE)
    }


def target_verified(target: Json, code: str = VERIFIED) -> bool | None:
    """The target's `verified` property: True, False, or None when the target says nothing.

    `code` is the code the map declares for `PROPERTY_VERIFIED` (`verified_code`)."""
    for p in target.get("property") or []:
        if isinstance(p, dict) and p.get("code") == code and isinstance(p.get("valueBoolean"), bool):
            return bool(p["valueBoolean"])
    return None


def evidence(target: Json, code: str = EVIDENCE) -> str | None:
    for p in target.get("property") or []:
        if isinstance(p, dict) and p.get("code") == code and isinstance(p.get("valueString"), str):
            return str(p["valueString"])
    return None


def element_verified(element: Json) -> bool | None:
    """A noMap element's mark (the extension), or None."""
    for ext in element.get("extension") or []:
        if (
            isinstance(ext, dict)
            and ext.get("url") == EXT_VERIFIED
            and isinstance(ext.get("valueBoolean"), bool)
        ):
            return bool(ext["valueBoolean"])
    return None


def verified_code(conceptmap: Json) -> str | None:
    """The code the map declares for `PROPERTY_VERIFIED`, or None when it declares none."""
    return _codes_of(conceptmap).get(PROPERTY_VERIFIED)


def entries(conceptmap: Json) -> Iterator[tuple[str, str, str | None, bool | None]]:
    """(source system, source code, target code or None for noMap, verified or None) of every
    entry of the map: each target of each element, and each noMap element."""
    code = verified_code(conceptmap)
    for group in conceptmap.get("group") or []:
        source = str(group.get("source"))
        for element in group.get("element") or []:
            if element.get("noMap"):
                yield source, str(element.get("code")), None, element_verified(element)
                continue
            for target in element.get("target") or []:
                flag = target_verified(target, code) if code else None
                yield source, str(element.get("code")), target.get("code"), flag


def unmarked(conceptmap: Json) -> list[str]:
    """`source|code -> target` of every entry that says neither verified nor unverified (an element
    without targets or noMap counts as one), so a test can fail on any."""
    missing = [
        f"{source}|{code} -> {target if target is not None else 'noMap'}"
        for source, code, target, flag in entries(conceptmap)
        if flag is None
    ]
    for group in conceptmap.get("group") or []:
        for element in group.get("element") or []:
            if not element.get("noMap") and not element.get("target"):
                missing.append(f"{group.get('source')}|{element.get('code')} -> (no target, no noMap)")
    return missing
