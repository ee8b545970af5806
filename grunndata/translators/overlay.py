"""IDMP over FEST: where SAFEST and FEST describe the same thing, one national resource, not two.

The importer links each SAFEST resource to the resource made from FEST by the FEST ids it carries
(`Link`s it has checked exist); an Ingredient links through its product and its substance (or
is a product's one FEST Ingredient no SAFEST one names by substance, paired with its one such
SAFEST Ingredient, so that the reconciliation finds the substances disagreeing). A
linked pair becomes one resource under the FEST resource's id: every element SAFEST gives wins
(the IDMP source is the authority for IDMP elements), FEST fills in the rest, identifiers are
the union of both, and FEST's extensions stay (they carry what IDMP has no element for, and the
M30 export reads them). A SAFEST resource with no FEST counterpart is served as it is, its
references to linked resources rewritten to the ids served. Where the two disagree on what both
say, or SAFEST's value would replace a different one of FEST's, the reconciliation lists it
(reconciliation.py holds the table of what is compared).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from grunndata.translators.fest_to_idmp.order import ORDER
from grunndata.translators.reconciliation import (
    CodePair,
    Disagreement,
    Equivalents,
    Json,
    code_pairs,
    compare,
)

__all__ = ["Disagreement", "Json", "Key", "Overlay", "merge"]

Key = tuple[str, str]  # (resourceType, id)
_KEPT = ("resourceType", "id", "meta", "text")


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
    _served_as: dict[str, Json] = field(default_factory=dict)  # "Type/id" served -> its SAFEST resource
    _ingredients: dict[tuple[str, str], Json] = field(default_factory=dict)
    _by_product: dict[str, list[Json]] = field(default_factory=dict)  # SAFEST Ingredients per product
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
                    self._by_product.setdefault(pair[0], []).append(resource)
            served = target or _key(resource)
            self._served_as.setdefault(f"{served[0]}/{served[1]}", resource)

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

    def apply_all(self, made: list[Json]) -> list[Json]:
        """The resources to serve for those made from one FEST entry (a product and its Ingredients)."""
        partners = self._ingredient_partners(made)
        return [self.apply(resource, partners.get(id(resource))) for resource in made]

    def apply(self, fest: Json, safest: Json | None = None) -> Json:
        """The resource to serve for one resource made from FEST: merged when SAFEST covers it."""
        key = _key(fest)
        if safest is None:
            safest = self._by_target.get(key)
        if safest is None and key[0] == "Ingredient":
            pair = _ingredient_pair(fest)
            safest = self._ingredients.get(pair) if pair is not None else None
        if safest is None or id(safest) in self._used:
            self.fest_only[key[0]] += 1
            return fest
        self._used.add(id(safest))
        self.merged[key[0]] += 1
        theirs = self.rewritten(safest)
        served = f"{key[0]}/{key[1]}"
        self.disagreements += compare(fest, theirs, served, self.equivalents, self._served_as.get)
        self.observed.update(code_pairs(fest, theirs))
        return merge(fest, theirs)

    def _ingredient_partners(self, made: list[Json]) -> dict[int, Json]:
        """A product's one FEST Ingredient no SAFEST one names by substance, and its one such SAFEST
        Ingredient: the same ingredient, whose substances the reconciliation then compares."""
        unpaired: dict[str, list[Json]] = {}
        taken: set[int] = set()
        for resource in made:
            pair = _ingredient_pair(resource) if resource.get("resourceType") == "Ingredient" else None
            if pair is None:
                continue
            exact = self._ingredients.get(pair)
            if exact is not None and id(exact) not in self._used:
                taken.add(id(exact))
            else:
                unpaired.setdefault(pair[0], []).append(resource)
        partners = {}
        for product, fest in unpaired.items():
            left = [s for s in self._by_product.get(product, ()) if id(s) not in taken | self._used]
            if len(fest) == 1 and len(left) == 1:
                partners[id(fest[0])] = left[0]
        return partners

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
    """SAFEST's elements over FEST's; identifiers and Ingredient.for joined (FEST's names a brand's
    item and form beside the product; SAFEST's may name the product alone); FEST's extensions kept
    beside SAFEST's."""
    out = dict(fest)
    for name, value in safest.items():
        if name in _KEPT:
            continue
        if name == "identifier" and isinstance(value, list) and isinstance(fest.get(name), list):
            seen = {(i.get("system"), i.get("value")) for i in fest[name]}
            out[name] = fest[name] + [i for i in value if (i.get("system"), i.get("value")) not in seen]
        elif name == "for" and isinstance(value, list) and isinstance(fest.get(name), list):
            known = {str(r.get("reference")) for r in fest[name] if isinstance(r, dict)}
            joined = fest[name] + [r for r in value if str(r.get("reference")) not in known]
            out[name] = sorted(joined, key=lambda r: str(r.get("reference", "")))
        elif name in ("extension", "modifierExtension") and isinstance(fest.get(name), list):
            urls = {e.get("url") for e in value}
            out[name] = [e for e in fest[name] if e.get("url") not in urls] + list(value)
        else:
            out[name] = value
    rank = {n: i for i, n in enumerate(ORDER.get(str(fest.get("resourceType")), ()))}
    return dict(sorted(out.items(), key=lambda kv: rank.get(kv[0], len(rank))))
