"""The terminology a SAFEST delivery carries (CodeSystem, ValueSet, ConceptMap), R4 or R5, made R5.

The three types exist in both releases under the same name, so a resource says which it is only by
the elements it holds. What differs (checked element by element against FHIR.js's R4 definitions
and fhir.resources' R5 models):

- CodeSystem: R5 only adds elements (versionAlgorithm[x], copyrightLabel, approvalDate,
  lastReviewDate, effectivePeriod, topic, author, editor, reviewer, endorser, relatedArtifact,
  concept.designation.additionalUse) and filter operators; every R4 element and code keeps its
  name, type, cardinality and meaning. An R4 CodeSystem is R5 as it is.
- ValueSet: the same (R5 adds scope, compose.property, include.copyright, expansion.next,
  expansion.property, contains.property, designation.additionalUse, filter ops child-of and
  descendent-leaf). An R4 ValueSet is R5 as it is.
- ConceptMap: R5 reworked it. Converted here:
  source[x] / target[x] -> sourceScope[x] / targetScope[x]; identifier 0..1 -> 0..*;
  group.sourceVersion / targetVersion -> the version on group.source / target (`url|version`);
  group.element.target.equivalence -> relationship (EQUIVALENCE, R5's R4 conversion table; where
  R5 folds two R4 codes into one relationship, the R4 code is kept as extension
  `r4-ConceptMap.group.element.target.equivalence`); a target without code that is `unmatched`
  -> element.noMap; group.unmapped.mode `provided` -> `use-source-code`, unmapped.url -> otherMap.
  Refused, not guessed: target.dependsOn and target.product in R4 form (property uri, system,
  string value), because R5's (attribute code, typed value) needs the map's additionalAttribute
  or property declared, which R4 does not give.

Empty strings (FHIR has none; DMP's marketingStatus has `<display value="" />`) are left out with
a warning, for these three types.
"""

from __future__ import annotations

from typing import Any

from grunndata.translators.safest.model import Json, Problem
from grunndata.translators.safest.rules import kept_url

EQUIVALENCE: dict[str, tuple[str, bool]] = {
    # R4 ConceptMapEquivalence -> (R5 relationship, whether the R4 code is kept beside it)
    "relatedto": ("related-to", False),
    "equivalent": ("equivalent", False),
    "equal": ("equivalent", True),
    "wider": ("source-is-narrower-than-target", False),
    "subsumes": ("source-is-narrower-than-target", True),
    "narrower": ("source-is-broader-than-target", False),
    "specializes": ("source-is-broader-than-target", True),
    "inexact": ("related-to", True),
    "unmatched": ("not-related-to", True),
    "disjoint": ("not-related-to", False),
}
EQUIVALENCE_KEPT = kept_url("ConceptMap.group.element.target.equivalence")
_SCOPES = {
    "sourceUri": "sourceScopeUri",
    "sourceCanonical": "sourceScopeCanonical",
    "targetUri": "targetScopeUri",
    "targetCanonical": "targetScopeCanonical",
}


class _Refused(ValueError):
    """An R4 form this module does not convert; its message is the sentence for the report."""


def terminology_to_r5(resource: Json, label: str, problems: list[Problem]) -> Json | None:
    """The R5 form of a terminology resource (a converted copy); None, with a problem, when refused."""
    out: Json = _without_empty(resource, resource["resourceType"], label, problems)
    if resource["resourceType"] != "ConceptMap":
        return out
    try:
        return _concept_map(out)
    except _Refused as refused:
        problems.append(Problem(label, f"{refused}; not converted"))
        return None


def _without_empty(value: Any, path: str, label: str, problems: list[Problem]) -> Any:
    """A copy of `value` without empty strings (each a warning) and the lists and objects they emptied."""
    if isinstance(value, dict):
        out = {}
        for key, child in value.items():
            kept = _without_empty(child, f"{path}.{key}", label, problems)
            if kept is not _EMPTY:
                out[key] = kept
        return out if out else _EMPTY
    if isinstance(value, list):
        items = [_without_empty(child, f"{path}[{n}]", label, problems) for n, child in enumerate(value)]
        kept_items = [item for item in items if item is not _EMPTY]
        return kept_items if kept_items else _EMPTY
    if isinstance(value, str) and not value:
        problems.append(Problem(label, f"{path} is empty; FHIR has no empty values, so it is left out", True))
        return _EMPTY
    return value


_EMPTY: Any = object()


def _concept_map(cm: Json) -> Json:
    for r4, r5 in _SCOPES.items():
        if r4 in cm:
            if r5 in cm:
                raise _Refused(f"ConceptMap gives both R4's {r4} and R5's {r5}")
            cm[r5] = cm.pop(r4)
    if isinstance(cm.get("identifier"), dict):
        cm["identifier"] = [cm["identifier"]]
    for g, group in enumerate(cm.get("group") or []):
        if isinstance(group, dict):
            _group(group, f"ConceptMap.group[{g}]")
    return cm


def _group(group: Json, path: str) -> None:
    for side in ("source", "target"):
        version = group.pop(f"{side}Version", None)
        if version is None:
            continue
        if not isinstance(group.get(side), str):
            raise _Refused(f"{path}.{side}Version is given without {path}.{side}")
        if "|" in group[side]:
            raise _Refused(f"{path}.{side} has a version and {path}.{side}Version gives another")
        group[side] = f"{group[side]}|{version}"
    unmapped = group.get("unmapped")
    if isinstance(unmapped, dict):
        if unmapped.get("mode") == "provided":
            unmapped["mode"] = "use-source-code"
        if "url" in unmapped:
            unmapped["otherMap"] = unmapped.pop("url")
    for e, element in enumerate(group.get("element") or []):
        if isinstance(element, dict):
            _element(element, f"{path}.element[{e}]")


def _element(element: Json, path: str) -> None:
    targets = []
    unmatched = 0
    for t, target in enumerate(element.get("target") or []):
        where = f"{path}.target[{t}]"
        if not isinstance(target, dict):
            targets.append(target)
            continue
        for r4_only in ("dependsOn", "product"):
            if any(
                isinstance(d, dict) and ("property" in d or "system" in d) for d in target.get(r4_only, [])
            ):
                raise _Refused(
                    f"{where}.{r4_only} is in R4 form (property, system, value), whose R5 form "
                    "(attribute, typed value) the map would have to declare; grunndata does not guess it"
                )
        equivalence = target.pop("equivalence", None)
        if equivalence is None:
            targets.append(target)
            continue
        if "relationship" in target:
            raise _Refused(f"{where} gives both R4's equivalence and R5's relationship")
        if equivalence not in EQUIVALENCE:
            raise _Refused(f"{where}.equivalence {equivalence!r} is not an R4 ConceptMap equivalence")
        if equivalence == "unmatched" and "code" not in target:
            unmatched += 1  # R4's "no match in the target system": R5 says it with element.noMap
            continue
        relationship, keep = EQUIVALENCE[equivalence]
        target["relationship"] = relationship
        if keep:
            target.setdefault("extension", []).append({"url": EQUIVALENCE_KEPT, "valueString": equivalence})
        targets.append(target)
    if targets:
        element["target"] = targets
    elif "target" in element:
        del element["target"]
        if unmatched:
            element["noMap"] = True
