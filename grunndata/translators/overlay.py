"""IDMP over FEST: where SAFEST and FEST describe the same thing, one national resource, not two.

The importer links each SAFEST resource to the resource made from FEST by the FEST ids it carries
(`Link`s it has checked exist); an Ingredient links through its product and its substance. A
linked pair becomes one resource under the FEST resource's id: every element SAFEST gives wins
(the IDMP source is the authority for IDMP elements), FEST fills in the rest, identifiers are
the union of both, and FEST's extensions stay (they carry what IDMP has no element for, and the
M30 export reads them). A SAFEST resource with no FEST counterpart is served as it is, its
references to linked resources rewritten to the ids served. Where the two disagree on what both
say (ATC, pack size, name, dose form, marketing status) the reconciliation lists it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grunndata.translators.fest_to_idmp.order import ORDER

Json = dict[str, Any]
Key = tuple[str, str]  # (resourceType, id)
Equivalents = Callable[[str, str], set[tuple[str, str]]]  # (system, code) -> codes meaning the same

ATC = "http://www.whocc.no/atc"
_KEPT = ("resourceType", "id", "meta", "text")


@dataclass(frozen=True, slots=True)
class Disagreement:
    resource: str  # "MedicinalProductDefinition/F2CEF840-..." as served
    element: str  # atc, name, dose-form, pack-size, marketing-status
    fest: str
    safest: str

    def as_dict(self) -> dict[str, str]:
        return {"resource": self.resource, "element": self.element, "fest": self.fest, "safest": self.safest}


@dataclass
class Overlay:
    """The SAFEST resources of one release and what they link to, applied as FEST's are made."""

    safest: list[Json]
    links: dict[Key, Key]  # SAFEST (type, id) -> the FEST-made (type, id) it stands for
    equivalents: Equivalents = lambda system, code: set()  # noqa: E731  no code map: only equal codes agree
    disagreements: list[Disagreement] = field(default_factory=list)
    merged: Counter[str] = field(default_factory=Counter)  # per type: FEST resources SAFEST covered
    fest_only: Counter[str] = field(default_factory=Counter)  # per type: FEST resources SAFEST did not
    observed: Counter[CodePair] = field(default_factory=Counter)  # codes both gave for one thing
    _by_target: dict[Key, Json] = field(default_factory=dict)
    _ingredients: dict[tuple[str, str], Json] = field(default_factory=dict)
    _used: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        for resource in self.safest:
            target = self.links.get(_key(resource))
            if target is not None:
                if target in self._by_target:
                    first = _key(self._by_target[target])
                    raise ValueError(
                        f"{first[0]}/{first[1]} and {_key(resource)[0]}/{_key(resource)[1]} both stand for "
                        f"the FEST-made {target[0]}/{target[1]}; one resource per FEST entry"
                    )
                self._by_target[target] = resource
            elif resource.get("resourceType") == "Ingredient":
                pair = _ingredient_pair(self.rewritten(resource))
                if pair is not None:
                    self._ingredients.setdefault(pair, resource)

    def rewritten(self, value: Any) -> Any:
        """`value` with every reference to a linked SAFEST resource pointing at the one served."""
        if isinstance(value, list):
            return [self.rewritten(v) for v in value]
        if not isinstance(value, dict):
            return value
        out = {k: self.rewritten(v) for k, v in value.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref.count("/") == 1:
            target = self.links.get(tuple(ref.split("/")))  # type: ignore[arg-type]
            if target is not None:
                out["reference"] = f"{target[0]}/{target[1]}"
        return out

    def apply(self, fest: Json) -> Json:
        """The resource to serve for one resource made from FEST: merged when SAFEST covers it."""
        key = _key(fest)
        safest = self._by_target.get(key)
        if safest is None and key[0] == "Ingredient":
            pair = _ingredient_pair(fest)
            safest = self._ingredients.get(pair) if pair is not None else None
        if safest is None:
            self.fest_only[key[0]] += 1
            return fest
        self._used.add(id(safest))
        self.merged[key[0]] += 1
        self.disagreements += compare(fest, safest, f"{key[0]}/{key[1]}", self.equivalents)
        self.observed.update(code_pairs(fest, safest))
        return merge(fest, self.rewritten(safest))

    def rest(self) -> list[Json]:
        """The SAFEST resources no FEST resource took in: served as they are, references rewritten."""
        return [self.rewritten(r) for r in self.safest if id(r) not in self._used]


def _key(resource: Json) -> Key:
    return (str(resource.get("resourceType")), str(resource.get("id")))


def _ingredient_pair(ingredient: Json) -> tuple[str, str] | None:
    """(product, substance) an Ingredient joins, as references: how a SAFEST one finds FEST's."""
    products = [  # R4 conversions also name the manufactured item and administrable form
        f.get("reference")
        for f in ingredient.get("for") or []
        if isinstance(f, dict) and str(f.get("reference", "")).startswith("MedicinalProductDefinition/")
    ]
    code = (ingredient.get("substance") or {}).get("code") or {}
    substance = (code.get("reference") or {}).get("reference")
    if len(products) != 1 or not isinstance(products[0], str) or not isinstance(substance, str):
        return None
    return products[0], substance


def merge(fest: Json, safest: Json) -> Json:
    """SAFEST's elements over FEST's; identifiers joined; FEST's extensions kept beside SAFEST's."""
    out = dict(fest)
    for name, value in safest.items():
        if name in _KEPT:
            continue
        if name == "identifier" and isinstance(value, list) and isinstance(fest.get(name), list):
            seen = {(i.get("system"), i.get("value")) for i in fest[name]}
            out[name] = fest[name] + [i for i in value if (i.get("system"), i.get("value")) not in seen]
        elif name in ("extension", "modifierExtension") and isinstance(fest.get(name), list):
            urls = {e.get("url") for e in value}
            out[name] = [e for e in fest[name] if e.get("url") not in urls] + list(value)
        else:
            out[name] = value
    rank = {n: i for i, n in enumerate(ORDER.get(str(fest.get("resourceType")), ()))}
    return dict(sorted(out.items(), key=lambda kv: rank.get(kv[0], len(rank))))


# -- reconciliation -------------------------------------------------------------------------------

# (element, FEST system, FEST code, FEST display, SAFEST system, SAFEST code, SAFEST display)
CodePair = tuple[str, str, str, str, str, str, str]


def _dose_form_codes(resource: Json) -> Codes:
    return _codings(resource.get("combinedPharmaceuticalDoseForm"))


def _package_type_codes(resource: Json) -> Codes:
    return _codings((resource.get("packaging") or {}).get("type"))


# coded elements whose FEST and SAFEST codes, seen on one product, make a ConceptMap
_PAIRED: dict[str, tuple[tuple[str, Callable[[Json], Codes]], ...]] = {
    "MedicinalProductDefinition": (("dose-form", _dose_form_codes),),
    "PackagedProductDefinition": (("package-type", _package_type_codes),),
}


def code_pairs(fest: Json, safest: Json) -> list[CodePair]:
    """The codes FEST and SAFEST each give one product for the same element, where their systems
    differ: evidence for a map between the two code systems, drawn from the data itself."""
    pairs = []
    for element, read in _PAIRED.get(str(fest.get("resourceType")), ()):
        for fs, fc, fd in read(fest):
            for ss, sc, sd in read(safest):
                if fs != ss:
                    pairs.append((element, fs, fc, fd, ss, sc, sd))
    return pairs


def compare(fest: Json, safest: Json, served: str, equivalents: Equivalents) -> list[Disagreement]:
    """What FEST and SAFEST both say about one thing, where they say it differently."""
    found = []
    for element, read, same in _COMPARED.get(str(fest.get("resourceType")), ()):
        ours, theirs = read(fest), read(safest)
        if ours and theirs and not same(ours, theirs, equivalents):
            found.append(Disagreement(served, element, _shown(ours), _shown(theirs)))
    return found


Codes = list[tuple[str, str, str]]  # (system, code, display)


def _codings(concept: Any) -> Codes:
    if not isinstance(concept, dict):
        return []
    return [
        (str(c.get("system", "")), str(c.get("code", "")), str(c.get("display", "")))
        for c in concept.get("coding") or []
        if isinstance(c, dict)
    ]


def _atc(resource: Json) -> Codes:
    return sorted(
        ("", c, d)
        for concept in resource.get("classification") or []
        for s, c, d in _codings(concept)
        if s == ATC
    )


def _name(resource: Json) -> Codes:
    names = resource.get("name") or []
    first = names[0].get("productName") if names and isinstance(names[0], dict) else None
    return [("", first, "")] if isinstance(first, str) else []


def _dose_form(resource: Json) -> Codes:
    return _codings(resource.get("combinedPharmaceuticalDoseForm"))


def _pack_size(resource: Json) -> Codes:
    return sorted(
        ("", _number(q["value"]), str(q.get("unit") or q.get("code") or ""))
        for q in resource.get("containedItemQuantity") or []
        if isinstance(q, dict) and "value" in q
    )


def _number(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def _marketing_status(resource: Json) -> Codes:
    return sorted(c for s in resource.get("marketingStatus") or [] for c in _codings(s.get("status")))


def _same_codes(ours: Codes, theirs: Codes, equivalents: Equivalents) -> bool:
    """Equal codes agree; so do codes a ConceptMap says are equivalent; so do equal displays."""
    mine = {(s, c) for s, c, _ in ours}
    for system, code, display in theirs:
        if (system, code) in mine:
            continue
        if any((system, code) in equivalents(s, c) for s, c in mine):
            continue
        if display and display.casefold() in {d.casefold() for _, _, d in ours if d}:
            continue
        return False
    return True


def _same_values(ours: Codes, theirs: Codes, equivalents: Equivalents) -> bool:
    return {c for _, c, _ in ours} == {c for _, c, _ in theirs}


def _same_text(ours: Codes, theirs: Codes, equivalents: Equivalents) -> bool:
    return " ".join(ours[0][1].split()).casefold() == " ".join(theirs[0][1].split()).casefold()


def _shown(codes: Codes) -> str:
    return ", ".join((f"{s}|{c}" if s else c) + (f" ({d})" if d else "") for s, c, d in codes)


Reader = Callable[[Json], Codes]
Same = Callable[[Codes, Codes, Equivalents], bool]
_COMPARED: dict[str, tuple[tuple[str, Reader, Same], ...]] = {
    "MedicinalProductDefinition": (
        ("atc", _atc, _same_values),
        ("name", _name, _same_text),
        ("dose-form", _dose_form, _same_codes),
    ),
    "PackagedProductDefinition": (
        ("pack-size", _pack_size, _same_values),
        ("marketing-status", _marketing_status, _same_codes),
    ),
}
