"""One shape for both sources: a dose form says FEST's code (Volven 7448) and EDQM's side by side,
whichever source gave it, so a search for either code finds the product made from FEST or SAFEST.

The pairs come from our reviewed ConceptMap fest-legemiddelform-edqm-doseform, its `equivalent`
entries only (one target, no other FEST code equivalent to that target, not marked unverified): a broader FEST code
(53 Tablett: tablet, film-coated or coated) names no one EDQM form. DMP's dose-form systems
(mpd.noma.no) publish EDQM's codes as they are, so a code there is restated under EDQM's URI.
A coding added here comes after the codings it restates (`restated` tells them apart).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache
from typing import Any

from grunndata.fhir import systems as s
from grunndata.terminology import concept_map_files

Json = dict[str, Any]

LEGEMIDDELFORM = s.VOLVEN_PREFIX + "2.16.578.1.12.4.1.1.7448"
DOSE_FORM_MAP = "https://grunndata.no/fhir/ConceptMap/fest-legemiddelform-edqm-doseform"
EDQM_SYSTEMS = (s.EDQM, *s.EDQM_ALIASES)
DOSE_FORM_ELEMENTS = {
    "MedicinalProductDefinition": "combinedPharmaceuticalDoseForm",
    "ManufacturedItemDefinition": "manufacturedDoseForm",
    "AdministrableProductDefinition": "administrableDoseForm",
}
"""Where each resource type holds its dose form."""


@cache
def dose_form_pairs() -> tuple[dict[str, Json], dict[str, Json]]:
    """(FEST 7448 code -> its EDQM Coding, EDQM code -> its FEST 7448 Coding), from our map."""
    return pairs_of(concept_map_files())


def pairs_of(maps: Iterable[Json]) -> tuple[dict[str, Json], dict[str, Json]]:
    """The dose-form map's entries that pair one FEST code with one EDQM code as equivalent, and
    are not marked unverified (property `verified` false: a stand-in code nobody has checked)."""
    pairs: list[tuple[Json, Json]] = []
    for conceptmap in maps:
        if conceptmap.get("url") != DOSE_FORM_MAP:
            continue
        for group in conceptmap.get("group", []):
            if group.get("source") != LEGEMIDDELFORM or group.get("target") != s.EDQM:
                continue
            for element in group.get("element", []):
                targets = element.get("target", [])
                if (
                    len(targets) == 1
                    and targets[0].get("relationship") == "equivalent"
                    and _checked(targets[0])
                ):
                    fest = _coding(LEGEMIDDELFORM, element["code"], element.get("display"))
                    pairs.append((fest, _coding(s.EDQM, targets[0]["code"], targets[0].get("display"))))
    per_target = Counter(edqm["code"] for _, edqm in pairs)
    unique = [(fest, edqm) for fest, edqm in pairs if per_target[edqm["code"]] == 1]
    return {f["code"]: e for f, e in unique}, {e["code"]: f for f, e in unique}


def _checked(target: Json) -> bool:
    return not any(
        p.get("code") == "verified" and p.get("valueBoolean") is False for p in target.get("property", [])
    )


def _coding(system: str, code: str, display: Any) -> Json:
    coding: Json = {"system": system, "code": code}
    if isinstance(display, str):
        coding["display"] = display
    return coding


def restatements(coding: Any) -> list[Json]:
    """The codings that say what `coding` says in the other systems: EDQM's for a FEST code with an
    equivalent, EDQM's URI for DMP's, FEST's for an EDQM code with an equivalent."""
    if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
        return []
    forward, reverse = dose_form_pairs()
    system, code = coding.get("system"), coding["code"]
    if system == LEGEMIDDELFORM:
        return [dict(forward[code])] if code in forward else []
    if system not in EDQM_SYSTEMS:
        return []
    found = [] if system == s.EDQM else [_coding(s.EDQM, code, coding.get("display"))]
    return found + ([dict(reverse[code])] if code in reverse else [])


def with_both_dose_forms(resource: Json) -> None:
    """Add, in place, the restatements of the dose form codings of `resource` that it lacks."""
    concept = resource.get(DOSE_FORM_ELEMENTS.get(str(resource.get("resourceType")), ""))
    if not isinstance(concept, dict) or not isinstance(concept.get("coding"), list):
        return
    codings: list[Any] = concept["coding"]
    have = {(c.get("system"), c.get("code")) for c in codings if isinstance(c, dict)}
    for coding in list(codings):
        for other in restatements(coding):
            if (other["system"], other["code"]) not in have:
                have.add((other["system"], other["code"]))
                codings.append(other)


def restated(codings: list[Any]) -> set[int]:
    """The positions of the codings an earlier coding of the list restates (added by
    `with_both_dose_forms`, not given by the source)."""
    found: set[int] = set()
    seen: set[tuple[Any, Any]] = set()
    for n, coding in enumerate(codings):
        key = (coding.get("system"), coding.get("code")) if isinstance(coding, dict) else None
        if key in seen:
            found.add(n)
        for other in restatements(coding):
            seen.add((other["system"], other["code"]))
    return found


# --- strengths: always a Ratio, units in UCUM ----------------------------------------------------------

UCUM = "http://unitsofmeasure.org"
STRENGTH_UNITS = {
    "mg": "mg",
    "g": "g",
    "mikrog": "ug",
    "ml": "mL",
    "timer": "h",
    "%": "%",
    "IU": "[iU]",
    "IE": "[iU]",
    "mill IE": "10*6.[iU]",
}
"""FEST's strength units (Styrke/StyrkeNevner U, as the real extract writes them) -> UCUM, where
the UCUM unit is certain. Not here: E (enheter: units of what?), ELISA E, % w/v, sprøyte (a unit of
presentation, no UCUM unit); they keep FEST's text alone."""
PER_ONE: Json = {"value": 1, "system": UCUM, "code": "1"}
"""The denominator of a strength FEST gives per unit of presentation (no StyrkeNevner): one. It has
no unit text, which every denominator made of a FEST StyrkeNevner with a unit has."""


def strength_as_ratio(strength: Json) -> None:
    """In place: a presentationQuantity becomes presentationRatio over PER_ONE (unless FEST's
    denominator could not be made a Quantity and is kept in an extension), and each part whose FEST
    unit has a certain UCUM unit gets its system and code, FEST's text kept as unit."""
    if "presentationQuantity" in strength and not any(
        e.get("url") == s.ext_url("StyrkeNevner") for e in strength.get("extension", ())
    ):
        strength["presentationRatio"] = {
            "numerator": strength.pop("presentationQuantity"),
            "denominator": dict(PER_ONE),
        }
    ratio = strength.get("presentationRatio")
    for quantity in (ratio.get("numerator"), ratio.get("denominator")) if isinstance(ratio, dict) else ():
        if isinstance(quantity, dict) and "system" not in quantity:
            code = STRENGTH_UNITS.get(str(quantity.get("unit")))
            if code is not None:
                quantity["system"], quantity["code"] = UCUM, code


# --- codes both sides give in their own systems --------------------------------------------------------

DMP_MARKETING_STATUS = "http://legemiddelverket.no/fhir/CodeSystem/MarketingStatus"
"""DMP's marketing status codes (SAFEST's CodeSystem MarketingStatus: 0, 5 Marketed, 6 ...)."""
MARKETING_STATUSES = (
    ("markedsfort", "Marketed", "5", "Marketed"),
    ("midlertidig-utgatt", "Temporarily unavailable (MidlUtgattDato)", "6", "Temporarily unavailable"),
)
"""Ours (FEST's dates) and DMP's code that say the same. Our `avregistrert` (has a deregistration
date, maybe a future one) is not DMP's 0 Not marketed, and DMP's 0 is none of ours."""
SPOR_NAME_PART = "https://spor.ema.europa.eu/rmswi/#/lists/220000000000"
"""EMA SPOR's list of name part types, as DMP's SAFEST examples name it."""
NAME_PARTS = (
    ("InventedNamePart", "Invented name part", "220000000002"),
    ("StrengthPart", "Strength part", "220000000004"),
)
"""HL7's name part type and SPOR's that say the same (the SPOR codes DMP's examples use)."""


def _pairs() -> list[tuple[Json, Json]]:
    found = [
        (_coding(s.CS_MARKETING_STATUS, ours, shown), _coding(DMP_MARKETING_STATUS, dmp, display))
        for ours, shown, dmp, display in MARKETING_STATUSES
    ]
    return found + [
        (_coding(s.NAME_PART_TYPE, hl7, display), _coding(SPOR_NAME_PART, spor, display))
        for hl7, display, spor in NAME_PARTS
    ]


def _with_both(concept: Any) -> None:
    """Add, in place, the other system's coding of a pair (_pairs) the concept has one side of."""
    if not isinstance(concept, dict) or not isinstance(concept.get("coding"), list):
        return
    codings: list[Any] = concept["coding"]
    have = {(c.get("system"), c.get("code")) for c in codings if isinstance(c, dict)}
    for a, b in _pairs():
        for mine, other in ((a, b), (b, a)):
            key, wanted = (mine["system"], mine["code"]), (other["system"], other["code"])
            if key in have and wanted not in have:
                have.add(wanted)
                codings.append(dict(other))


# --- package levels ----------------------------------------------------------------------------------


def packaging_property(code: str, value: Json) -> Json:
    """A packaging.property of our packaging-property code system (`value`: its value[x] element)."""
    display = next(d for c, d in s.PACKAGING_PROPERTIES.values() if c == code)
    return {
        "type": {"coding": [{"system": s.CS_PACKAGING_PROPERTY, "code": code, "display": display}]},
        **value,
    }


def _has_property(level: Json, code: str) -> bool:
    return any(
        isinstance(p, dict)
        and any(
            isinstance(c, dict) and (c.get("system"), c.get("code")) == (s.CS_PACKAGING_PROPERTY, code)
            for c in (p.get("type") or {}).get("coding") or ()
        )
        for p in level.get("property") or ()
    )


def with_package_levels(packaging: Any, outer: bool = True) -> int:
    """In place: each level of a package says its level as DMP's PackageLevel counts it (1 Primary:
    holds the items themselves; 2 Secondary: holds primary levels; ...), read from how the levels nest,
    unless the level says it already. A level that holds nothing we know of (no item, no level), and
    every level around it, has no known level and says none; nor does a level that is only R5's one
    outer level (`outer`) around several packages (no type, identifier, item or retail-pack flag of its own). Returns
    the level (0: not known)."""
    if not isinstance(packaging, dict):
        return 0
    inner = packaging.get("packaging")
    inner_levels = [with_package_levels(p, outer=False) for p in inner] if isinstance(inner, list) else []
    if inner_levels:
        level = 0 if 0 in inner_levels else 1 + max(inner_levels)
    else:
        level = 1 if packaging.get("containedItem") else 0
    own = (
        packaging.get("containedItem")
        or packaging.get("type")
        or packaging.get("identifier")
        or _has_property(packaging, "retail-pack")  # a FEST package is its retail level, typed or not
    )
    if outer and not own and len(inner_levels) > 1:  # R5's one outer level around several packages
        return level
    if level in s.PACKAGE_LEVELS and not _has_property(packaging, "package-level"):
        coding = {"system": s.DMP_PACKAGE_LEVEL, "code": str(level), "display": s.PACKAGE_LEVELS[level]}
        packaging.setdefault("property", []).append(
            packaging_property("package-level", {"valueCodeableConcept": {"coding": [coding]}})
        )
    return level


# --- the holder ----------------------------------------------------------------------------------------

HOLDER = "holder"
"""The id of the contained Organization an authorization's holder names."""


def holder_authorization(rid: str, subject: str, name: str) -> Json:
    """A RegulatedAuthorization of `subject` whose holder is an Organization known by its name only:
    contained, since neither source gives the holder an identity (FEST's Produsent and SAFEST's
    maHolderOrManufacturer are text), so two products of one holder do not claim one Organization."""
    return {
        "resourceType": "RegulatedAuthorization",
        "id": rid,
        "contained": [{"resourceType": "Organization", "id": HOLDER, "name": name}],
        "subject": [{"reference": subject}],
        "holder": {"reference": "#" + HOLDER, "display": name},
    }


def one_shape(resource: Json) -> None:
    """In place: what FEST-made and SAFEST-made resources must both say, in both systems: the dose
    form (FEST's and EDQM's), marketing status (ours and DMP's), name part types (HL7's and SPOR's),
    and each package level's place (DMP's PackageLevel)."""
    with_both_dose_forms(resource)
    if resource.get("resourceType") == "PackagedProductDefinition":
        with_package_levels(resource.get("packaging"))
    for status in resource.get("marketingStatus") or []:
        if isinstance(status, dict):
            _with_both(status.get("status"))
    for name in (
        resource.get("name") or [] if resource.get("resourceType") == "MedicinalProductDefinition" else []
    ):
        for part in name.get("part") or [] if isinstance(name, dict) else []:
            if isinstance(part, dict):
                _with_both(part.get("type"))
