"""R5 -> SAFEST R4: a national R5 resource in DMP's SAFEST shape, made by reading the R4 -> R5 tables backwards.

Pure, per resource, no I/O. For each R5 element the table of its R4 parent says which R4 element
(or NOMA extension) fills it; that rule is undone: a rename is renamed back, a converter has its
inverse here (INVERSES, keyed by the converter the table uses, so a new converter without an inverse
simply leaves its element to the fallback), a backbone element is walked with its own table, and an
``r4-<path>`` extension (an R4 element R5 had no home for) becomes its R4 element again.

What R4 cannot say exactly (an R5 element no rule fills, an item no inverse takes, a reference R5
turned around: Ingredient.for, APD.formOf) travels as extension ``r5-<R5 path>`` holding the element's
JSON; to_r5 makes the element of it again, so R4 -> R5 gives back the R5 resource exactly. Where R4
can say part of it (a varenr, a contained item's count), the SAFEST form is given beside it for R4
clients. `coverage()` lists each R5 element and how it is carried.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

import orjson

from grunndata.fhir import DATA_ABSENT_REASON, NS_VARENR
from grunndata.fhir.r4_elements import ELEMENTS as R4_ELEMENTS
from grunndata.fhir.systems import CS_PACKAGING_PROPERTY, PACKAGING_PROPERTIES
from grunndata.translators.safest import tables as t
from grunndata.translators.safest.model import Json
from grunndata.translators.safest.rules import (
    KEPT_BASE,
    R4_TO_R5,
    R5_KEPT_BASE,
    Back,
    Consumed,
    Custom,
    ExtensionRule,
    Keep,
    Table,
    To,
    kept_url,
    same,
)

R5_TO_R4 = {r5: r4 for r4, r5 in R4_TO_R5.items() if r4 in t.SPECS}
SAFEST_TYPES = (
    "MedicinalProduct",
    "MedicinalProductPackaged",
    "MedicinalProductManufactured",
    "MedicinalProductPharmaceutical",
    "MedicinalProductIngredient",
    "SubstanceSpecification",
)
"""The R4 types SAFEST serves (MedicinalProductAuthorization is not one: RegulatedAuthorization is R5-only)."""
R4_OF_R5 = {R4_TO_R5[r4]: r4 for r4 in SAFEST_TYPES}
"""The R5 types served as R4, and their SAFEST type."""
R5_ONLY = {
    "RegulatedAuthorization": "SAFEST serves no MedicinalProductAuthorization; the holder is also on "
    "FEST's extensions of the product (fest-Produsent)",
    "ClinicalUseDefinition": "FEST's interactions: R4 has MedicinalProductInteraction, but SAFEST has no "
    "profile or service for it",
    "Basic": "FEST-only content (conditions, refund groups, SLV notices, ...) with no SAFEST counterpart",
    "Composition": "a sector owner's ePI document: not national product data of a SAFEST type",
    "Organization": "the authors of ePI documents: not national product data of a SAFEST type",
    "ValueSet": "terminology beside the code systems; DMP's service serves CodeSystem only",
}
"""The R5 types served at /fhir only, and why: every other served type is R4 too (the SAFEST types,
and CodeSystem as DMP's service has it). docs/fest-idmp-coverage.md lists them."""
SAFEST_SD = "http://legemiddelverket.no/fhir/StructureDefinition/"
PROFILES = {
    rtype: SAFEST_SD
    + ("safest-substanceSpecification" if rtype == "SubstanceSpecification" else f"safest-{rtype}")
    for rtype in SAFEST_TYPES
}
"""meta.profile of each served R4 type: the SAFEST profile (its url, as DMP's StructureDefinition gives it)."""
EXTENSION_URLS = {
    "authorizedpharmaceuticaldoseform": SAFEST_SD + "safest-authorizedPharmaceuticalDoseForm",
    "itemnumber": SAFEST_SD + "safest-itemnumber",
    "legemiddeldoseid": SAFEST_SD + "safest-legemiddeldoseId",
    "legemiddelmerkevareid": SAFEST_SD + "safest-legemiddelMerkevareId",
    "lmrnumber": SAFEST_SD + "safest-lmrNumber",
    "containeditem": SAFEST_SD + "containedItem",
    "retailpack": SAFEST_SD + "safest-retailPack",
    "singleunit": SAFEST_SD + "safest-singleUnit",
}
"""The SAFEST URL written for each NOMA extension rule of the tables (by its tail)."""
SAFEST_ID_SYSTEMS = {
    "legemiddeldoseid": "http://ehelse.no/fhir/CodeSystem/FEST/KatLegemiddeldose",
    "legemiddelmerkevareid": "http://ehelse.no/fhir/CodeSystem/FEST/KatLegemiddelMerkevare",
}
"""The identifier system SAFEST's MedicinalProductManufactured profile fixes in these extensions'
valueIdentifier (the import serves it as ours again: fhir/identifiers.py accepts it)."""

_NO = object()  # an inverse's "this item is not mine"


def _copy(value: Any) -> Any:
    """A copy of JSON `value` (dicts, lists, scalars): what copy.deepcopy gives, several times faster."""
    if type(value) is dict:
        return {k: _copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) for v in value]
    return value


# --- inverses of the tables' value converters -----------------------------------------------------


def _only(value: Any, name: str) -> Any:
    """`value[name]` when that is all `value` holds, else _NO."""
    return value[name] if isinstance(value, dict) and set(value) == {name} else _NO


def _coding_of_concept(concept: Any) -> Any:
    """Undoes concept_of_coding: a CodeableConcept of one coding (and codings one_shape adds after
    it, which the way back adds again) -> that Coding."""
    if not isinstance(concept, dict) or set(concept) != {"coding"} or not concept["coding"]:
        return _NO
    first = concept["coding"][0]
    if [first, *_added_by_one_shape(first)] != concept["coding"]:
        return _NO
    return first


def _added_by_one_shape(coding: Json) -> list[Json]:
    """The codings one_shape adds after `coding` in a concept holding it alone (shape._with_both)."""
    key = (coding.get("system"), coding.get("code")) if isinstance(coding, dict) else (0, 0)
    if not all(part is None or isinstance(part, str) for part in key):
        return _added_to(coding)
    return _added_by_code(*key)  # they depend on the system and code alone


@cache
def _added_by_code(system: str | None, code: str | None) -> list[Json]:
    return _added_to({"system": system, "code": code})


def _added_to(coding: Json) -> list[Json]:
    from grunndata.translators import shape

    concept: Json = {"coding": [dict(coding)]}
    shape._with_both(concept)
    return list(concept["coding"][1:])


def _concept_of_reference(value: Any) -> Any:
    """Undoes concept_reference: the concept, or a reference as SAFEST's substanceReference extension."""
    concept = _only(value, "concept")
    if concept is not _NO:
        return concept
    reference = _only(value, "reference")
    if reference is _NO:
        return _NO
    return {"extension": [{"url": t.SUBSTANCE_REFERENCE, "valueReference": _r4_copy(reference)}]}


def _whole_number(value: Any) -> Any:
    return {"value": value} if isinstance(value, int) and not isinstance(value, bool) else _NO


def _cross_reference(value: Any) -> Any:
    reference = _only(_only(value, "product"), "reference")
    return _only(reference, "identifier") if reference is not _NO else _NO


def _device(value: Any) -> Any:
    reference = _only(_only(value, "item"), "reference")
    target = reference.get("reference") if isinstance(reference, dict) else None
    return reference if isinstance(target, str) and "DeviceDefinition/" in target else _NO


def _other_property(value: Any) -> Any:
    codings = (value.get("type") or {}).get("coding") if isinstance(value, dict) else None
    if set(value or ()) != {"type", "valueCodeableConcept"} or codings != [
        {"system": t.CS_R4_CHARACTERISTIC, "code": "otherCharacteristics"}
    ]:
        return _NO
    return value["valueCodeableConcept"]


Inverse = Callable[[Any], Any]
INVERSES: dict[Any, Inverse] = {
    same: lambda v: v,
    t.concept_of_coding: _coding_of_concept,
    t.concept_of_text: lambda v: _only(v, "text"),
    t.concept_reference: _concept_of_reference,
    t.annotation: lambda v: _only(v, "text"),
    t.period_from: lambda v: _only(v, "start"),
    t.cross_reference: _cross_reference,
    t.whole_number: _whole_number,
    t.contained_device: _device,
    t.other_property: _other_property,
}
"""Converter of the tables -> its inverse (R5 value -> R4 value, or _NO; the value may share parts
with the R5 item: _undo copies it once, making R4 reference names on the way). Not here, so carried as
``r5-``: physical_properties (one R4 element becomes several properties), contained_manufactured_item
(NOMA forbids packageItem.manufacturedItem; the containedItem extension says it), substance_property."""


def _inverse(convert: Any) -> Inverse | None:
    if isinstance(convert, t.wrapped):
        name = convert.name
        return lambda v: _only(v, name)
    return INVERSES.get(convert)


# --- inverses of the NOMA extension rules ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Said:
    """What an extension rule's inverse makes of one R5 item: the extension, whether the item is said
    exactly (else R5's element also travels as ``r5-``), and whether R4's element gets the item too."""

    extension: Json
    exact: bool = True
    also_element: bool = False


def _dose_form(value: Any, rule: ExtensionRule) -> Said | None:
    return Said({"url": EXTENSION_URLS[rule.tail], "valueCodeableConcept": _copy(value)})


def _item_number(value: Any, rule: ExtensionRule) -> Said | None:
    if (
        not isinstance(value, dict)
        or value.get("system") != NS_VARENR
        or not isinstance(value.get("value"), str)
    ):
        return None
    extension = {"url": EXTENSION_URLS[rule.tail], "valueString": value["value"]}
    return Said(extension, also_element=True)  # the identifier stays: the way back keeps one of the two


def _fest_identifier(value: Any, rule: ExtensionRule) -> Said | None:
    function = rule.function
    if not isinstance(function, t._fest_identifier) or not isinstance(value, dict):
        return None
    if value.get("system") != function.system:
        return None
    if rule.tail == "lmrnumber":  # safest-lmrNumber's value is a string (the import gives it our system)
        exact = set(value) == {"system", "value"} and isinstance(value["value"], str)
        return Said({"url": EXTENSION_URLS[rule.tail], "valueString": str(value.get("value"))}, exact=exact)
    identifier = _copy(value)
    identifier["system"] = SAFEST_ID_SYSTEMS.get(rule.tail, function.system)
    return Said({"url": EXTENSION_URLS[rule.tail], "valueIdentifier": identifier})


def _contained_item(value: Any, rule: ExtensionRule) -> Said | None:
    reference = (value.get("item") or {}).get("reference") if isinstance(value, dict) else None
    if not isinstance(reference, dict):
        return None
    literal = reference.get("reference")
    # a literal reference to the item, or a logical one by identifier as DMP's examples give
    # (`{"identifier": {"value": "ManufacturedItem/2148"}}`), which SAFEST's import keeps as it was
    if "ManufacturedItemDefinition/" not in str(literal) and (
        literal is not None or "identifier" not in reference
    ):
        return None
    parts: list[Json] = [{"url": "item", "valueReference": _r4_copy(reference)}]
    amount = value.get("amount")
    count = amount.get("value") if isinstance(amount, dict) else None
    if isinstance(count, int | float) and not isinstance(count, bool) and float(count).is_integer():
        parts.append({"url": "quantity", "valueInteger": int(count)})
    exact = set(value) <= {"item", "amount"} and (amount is None or set(amount) == {"value"})
    return Said({"url": EXTENSION_URLS[rule.tail], "extension": parts}, exact=exact)


def _packaging_flag(value: Any, rule: ExtensionRule) -> Said | None:
    code = PACKAGING_PROPERTIES[rule.tail][0]
    codings = (value.get("type") or {}).get("coding") if isinstance(value, dict) else None
    if not isinstance(codings, list) or not any(
        isinstance(c, dict) and (c.get("system"), c.get("code")) == (CS_PACKAGING_PROPERTY, code)
        for c in codings
    ):
        return None
    if not isinstance(value.get("valueBoolean"), bool):
        return None
    exact = codings == [
        {"system": CS_PACKAGING_PROPERTY, "code": code, "display": PACKAGING_PROPERTIES[rule.tail][1]}
    ]
    return Said({"url": EXTENSION_URLS[rule.tail], "valueBoolean": value["valueBoolean"]}, exact=exact)


EXTENSION_INVERSES: dict[str, Callable[[Any, ExtensionRule], Said | None]] = {
    "authorizedpharmaceuticaldoseform": _dose_form,
    "itemnumber": _item_number,
    "legemiddeldoseid": _fest_identifier,
    "legemiddelmerkevareid": _fest_identifier,
    "lmrnumber": _fest_identifier,
    "containeditem": _contained_item,
    "retailpack": _packaging_flag,
    "singleunit": _packaging_flag,
}
"""NOMA extension rule (by tail) -> its inverse, one R5 item at a time (None: not this rule's)."""


# --- what one_shape adds, left for the way back to add again ------------------------------------------


_DERIVED_UNDER = "PackagedProductDefinition.packaging"


def _derived(name: str, value: Any, path: str) -> bool:
    """An R5 item the way back derives again (one_shape's package level), so R4 need not carry it."""
    if name != "property" or not path.startswith(_DERIVED_UNDER):
        return False
    codings = (value.get("type") or {}).get("coding") if isinstance(value, dict) else None
    return isinstance(codings, list) and any(
        isinstance(c, dict) and (c.get("system"), c.get("code")) == (CS_PACKAGING_PROPERTY, "package-level")
        for c in codings
    )


# --- the reverse walk -----------------------------------------------------------------------------

ELEMENT_BASE = ("id", "extension", "modifierExtension")
RESOURCE_BASE = (*ELEMENT_BASE, "implicitRules", "language", "text")


class _Candidate(NamedTuple):
    r4: str  # the R4 element's name
    rule: To | Custom


@cache
def _rules_of(table_name: str) -> tuple[dict[str, list[_Candidate]], dict[str, list[ExtensionRule]]]:
    """Of table `table_name`, once: its element rules and its NOMA extension rules by the R5 element they fill."""
    table = t.TABLES[table_name]
    by_name: dict[str, list[ExtensionRule]] = {}
    for rule in table.extensions:
        for r5 in rule.r5.split(" | "):
            by_name.setdefault(r5, []).append(rule)
    return _candidates(table), by_name


def _candidates(table: Table) -> dict[str, list[_Candidate]]:
    """R5 element name -> the element rules of `table` that fill it, renames first."""
    found: dict[str, list[_Candidate]] = {}
    for r4, rule in table.elements.items():
        if isinstance(rule, To | Custom):
            for r5 in rule.r5.split(" | "):
                if r5[:1].islower():
                    found.setdefault(r5, []).append(_Candidate(r4, rule))
    for rules in found.values():
        rules.sort(key=lambda c: isinstance(c.rule, Custom))
    return found


def to_r4(resource: Json) -> Json | None:
    """The SAFEST R4 form of national R5 `resource` (same id), or None for a type SAFEST has not."""
    r4_type = R4_OF_R5.get(str(resource.get("resourceType")))
    if r4_type is None:
        return None
    body = {k: v for k, v in resource.items() if k != "resourceType"}
    out = {"resourceType": r4_type, **_walk(body, r4_type, r4_type, resource["resourceType"], resource=True)}
    for name, most in PROFILE_MAX.get(r4_type, {}).items():
        if isinstance(out.get(name), list) and len(out[name]) > most:
            out[name] = out[name][:most]
            carried = {
                "url": f"{R5_KEPT_BASE}{resource['resourceType']}.{name}",
                "valueString": _json(resource[name]),
            }
            if carried["url"] not in {e.get("url") for e in out.get("extension", [])}:
                out.setdefault("extension", []).append(carried)
    if r4_type == "MedicinalProductManufactured" and "quantity" not in out:
        # R4 requires it (1..1); R5 counts an item per package (containedItem.amount), FEST too: unknown
        out["quantity"] = {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "unknown"}]}
    meta = out.setdefault("meta", {})
    profiles = meta.setdefault("profile", [])
    if PROFILES[r4_type] not in profiles:
        profiles.insert(0, PROFILES[r4_type])
    return out


def r4_json(body: bytes) -> bytes | None:
    """The R4 body sent for R5 body `body` (the version as served, meta included), None for a type
    SAFEST has not: made at import and stored (store R4Bodies), or at a read when the store has none."""
    made = to_r4(orjson.loads(body))
    return None if made is None else orjson.dumps(made)


def _walk(src: Json, table_name: str, r4_path: str, r5_path: str, *, resource: bool = False) -> Json:
    candidates, by_name = _rules_of(table_name)
    out: Json = {}
    extensions: list[Json] = []  # NOMA extensions made here
    carried: list[Json] = []  # r5- extensions: what R4 cannot say exactly
    for name, value in src.items():
        if name in (RESOURCE_BASE if resource else ELEMENT_BASE) or (
            name.startswith("_") and name[1:] in ELEMENT_BASE
        ):
            if name != "extension":
                out[name] = _copy(value)
            continue
        if name == "contained" and resource:
            out["contained"] = [to_r4(c) or _copy(c) if isinstance(c, dict) else c for c in value]
            continue
        if name == "meta" and resource:
            out["meta"] = _walk(value, "Meta", f"{r4_path}.meta", f"{r5_path}.meta")
            continue
        exact = _element(
            name, value, by_name.get(name, ()), candidates.get(name, []), out, extensions, r4_path, r5_path
        )
        if not exact:
            carried.append({"url": f"{R5_KEPT_BASE}{r5_path}.{name}", "valueString": _json(value)})
    own = [e for e in src.get("extension") or [] if not _restore_kept(e, r4_path, out)]
    every = [_r4_copy(e) for e in own] + extensions + carried  # a reference names R4 types
    if every:
        out["extension"] = every
    return out


def _element(
    name: str,
    value: Any,
    extension_rules: Iterable[ExtensionRule],
    candidates: list[_Candidate],
    out: Json,
    extensions: list[Json],
    r4_path: str,
    r5_path: str,
) -> bool:
    """Put R5 element `name` in R4 form on `out` (and `extensions`); False when R4 cannot say it exactly."""
    items = value if isinstance(value, list) else [value]
    exact = True
    derivable = name == "property" and r5_path.startswith(_DERIVED_UNDER)
    if extension_rules or derivable:
        left: list[Any] = []
        order = ""  # per item: x an R4 element's, e an extension's, d derived again on the way back
        for item in items:
            said = next((s for rule in extension_rules if (s := _say(rule, item)) is not None), None)
            if said is not None:
                extensions.append(said.extension)
                exact &= said.exact
                if not said.also_element:
                    order += "e"
                    continue
            order += "d" if derivable and _derived(name, item, r5_path) else "x"
            left.append(item)
        # the way back puts R4 elements' items first, then extensions', then what one_shape derives
        exact &= _IN_ORDER.fullmatch(order) is not None
        remaining = [item for item in left if not (derivable and _derived(name, item, r5_path))]
    else:  # every item is an R4 element's (the common case): nothing to sort
        remaining = items
    if not remaining:
        return exact
    if not candidates:
        return False
    placed: dict[str, list[Any]] = {}
    r5_child = f"{r5_path}.{name}"
    for item in remaining:
        for candidate in candidates:
            r4 = _undo(candidate, item, r4_path, r5_child)
            if r4 is not _NO:
                placed.setdefault(candidate.r4, []).append(r4)
                break
        else:
            exact = False
    for r4_name, r4_items in placed.items():
        rule = next(c.rule for c in candidates if c.r4 == r4_name)
        repeats = _repeats(f"{r4_path}.{r4_name}")
        if isinstance(rule, To) and rule.first:
            out[r4_name] = r4_items  # R5 holds the first of R4's list
        elif repeats:
            out.setdefault(r4_name, []).extend(_flat(rule, r4_items))
        elif len(r4_items) == 1 and (not isinstance(value, list) or (isinstance(rule, To) and rule.as_list)):
            out[r4_name] = r4_items[0]
        else:
            return False
    return exact


_IN_ORDER = re.compile("x*e*d*")


def _flat(rule: To | Custom, items: list[Any]) -> list[Any]:
    """Items of a repeating R4 element; the packaging Custom gives lists itself."""
    found: list[Any] = []
    for item in items:
        found.extend(item if isinstance(rule, Custom) and isinstance(item, list) else [item])
    return found


def _say(rule: ExtensionRule, item: Any) -> Said | None:
    inverse = EXTENSION_INVERSES.get(rule.tail)
    return inverse(item, rule) if inverse is not None else None


def _undo(candidate: _Candidate, item: Any, r4_parent: str, r5_path: str) -> Any:
    """R5 `item` (at `r5_path`) back through `candidate`'s rule (an element of `r4_parent`): the R4
    value, or _NO."""
    rule = candidate.rule
    if isinstance(rule, Custom):
        r4_path = f"{r4_parent}.{candidate.r4}"
        return _undo_custom(rule, item, r4_path, r5_path, r5_path.rsplit(".", 1)[-1])
    if rule.table is not None:
        return _backbone(item, rule.table, f"{r4_parent}.{candidate.r4}", r5_path)
    inverse = _inverse(rule.convert)
    if inverse is None:
        return _NO
    r4 = inverse(item)
    return _r4_copy(r4) if r4 is not _NO else _NO  # a copy: an inverse may give the R5 item's own parts


R4_REQUIRED = {
    "MedicinalProduct.name": ("productName",),
    "MedicinalProduct.name.countryLanguage": ("country", "language"),
    "MedicinalProduct.name.namePart": ("part", "type"),
    "MedicinalProductPackaged.packageItem": ("quantity", "type"),
    "ProductShelfLife": ("period", "type"),
    "MedicinalProductPharmaceutical.characteristics": ("code",),
    "MedicinalProductIngredient.specifiedSubstance": ("code", "group"),
    "MedicinalProductIngredient.strength": ("presentation",),
    "MedicinalProductIngredient.strength.referenceStrength": ("strength",),
    "MedicinalProductIngredient.substance": ("code",),
    "SubstanceSpecification.name": ("name",),
}
"""The R4 (4.0.1) backbone elements of the tables with a required (1..1) child: a backbone R5 gives
without one is not made R4 (its R5 element travels as ``r5-``), unless R4_DEFAULTS has a value."""
R4_DEFAULTS: dict[tuple[str, str], tuple[str, Json]] = {
    ("MedicinalProductPackaged.packageItem", "quantity"): ("quantity", {"value": 1}),
    ("MedicinalProductPackaged.packageItem", "type"): (
        "type",
        {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "unknown"}]},
    ),
}
"""(table, R4 element) -> (its R5 element, the R4 value said when R5 has none): the level counts
once in its parent; a level FEST names no packaging type for has an unknown one. An ``r5-``
extension holding null tells the way back R5 had none."""
PROFILE_MAX = {"MedicinalProduct": {"identifier": 1}}
"""Repeating R4 elements a SAFEST profile allows fewer of (safest-MedicinalProduct: one identifier):
R4 keeps the first; the whole R5 element travels as ``r5-`` (our PhPIDs beside FEST's id)."""


def _backbone(item: Any, table: str, r4_path: str, r5_path: str) -> Any:
    """R5 backbone `item` as R4 element of `table`, or _NO when it lacks what R4 requires."""
    if not isinstance(item, dict):
        return _NO
    r4 = _walk(item, table, r4_path, r5_path)
    for name in R4_REQUIRED.get(table, ()):
        if name in r4:
            continue
        default = R4_DEFAULTS.get((table, name))
        if default is None or default[0] in item:
            return _NO
        r4[name] = _copy(default[1])
        marker = {"url": f"{R5_KEPT_BASE}{r5_path}.{default[0]}", "valueString": "null"}
        r4.setdefault("extension", []).append(marker)
    return r4


def _undo_custom(rule: Custom, item: Any, r4_path: str, r5_path: str, r5_name: str) -> Any:
    """The Custom rules with an inverse: packaging (one R5 level, or R5's outer level around several
    R4 items) and a strength's Ratio (ratio_or_range; a RatioRange, two R4 elements, is carried as r5)."""
    if rule.table == "MedicinalProductPackaged.packageItem" and isinstance(item, dict):
        outer = set(item) == {"packaging"} and isinstance(item["packaging"], list)
        levels = [
            _backbone(level, rule.table, r4_path, r5_path)
            for level in (item["packaging"] if outer else [item])
        ]
        return _NO if any(level is _NO for level in levels) else levels
    if rule.function.__qualname__.startswith("ratio_or_range.") and r5_name == rule.r5.split(" | ")[0]:
        return _r4_copy(item)
    return _NO


_TEXT_TYPES = frozenset(("string", "code", "markdown", "uri", "id", "dateTime", "date"))
"""R4 types Keep stores as the string itself; anything else it stores as JSON text."""


def _restore_kept(extension: Any, r4_path: str, out: Json) -> bool:
    """An ``r4-<path>`` extension of this element -> its R4 element again (True: used)."""
    url = extension.get("url") if isinstance(extension, dict) else None
    text = extension.get("valueString") if isinstance(extension, dict) else None
    if not isinstance(url, str) or not url.startswith(KEPT_BASE) or not isinstance(text, str):
        return False
    path = url[len(KEPT_BASE) :]
    parent, _, name = path.rpartition(".")
    if kept_url(f"{r4_path}.{name}") != url or name.startswith("_"):
        return False
    found = R4_ELEMENTS.get(path)
    value: Any = text
    if found is not None and found[0] not in _TEXT_TYPES:  # kept as its JSON text
        value = orjson.loads(text)
    if found is not None and found[1]:
        out.setdefault(name, []).append(value)
    else:
        out[name] = value
    return True


@cache
def _repeats(r4_path: str) -> bool:
    """Whether the R4 element at `r4_path` repeats, through referenced element definitions."""
    names = r4_path.split(".")
    owner, found = names[0], None
    for name in names[1:]:
        found = R4_ELEMENTS.get(f"{owner}.{name}")
        if found is None:
            return False
        owner = found[0]
    return bool(found and found[1])


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _r4_copy(value: Any) -> Any:
    """A copy of JSON `value` with R5 type names in Reference.reference made SAFEST R4 names (one walk)."""
    if type(value) is dict:
        return {
            k: _r4_type(v) if k == "reference" and isinstance(v, str) else _r4_copy(v)
            for k, v in value.items()
        }
    if type(value) is list:
        return [_r4_copy(v) for v in value]
    return value


def _r4_type(reference: str) -> str:
    parts = reference.split("/")
    for i, part in enumerate(parts[:-1]):
        if part in R4_OF_R5:
            parts[i] = R4_OF_R5[part]
    return "/".join(parts)


class Carried(NamedTuple):
    """One R5 element of a served type and how R4 carries it."""

    r5: str
    how: str  # "element <R4 path>", "extension <url>", "r5 extension", "derived"


def coverage() -> Iterator[Carried]:
    """Every R5 element the tables fill, with the R4 element or NOMA extension that says it."""
    for r5, r4 in R4_OF_R5.items():
        yield from _coverage(r4, r4, r5, set())


def _coverage(table_name: str, r4_path: str, r5_path: str, seen: set[str]) -> Iterator[Carried]:
    table = t.TABLES[table_name]
    for r4, rule in table.elements.items():
        if isinstance(rule, Back | Consumed):
            continue
        if isinstance(rule, Keep):
            yield Carried(kept_url(f"{r4_path}.{r4}"), f"element {r4_path}.{r4}")
            continue
        inverse = rule.table is not None or (isinstance(rule, To) and _inverse(rule.convert) is not None)
        how = f"element {r4_path}.{r4}" if inverse else "r5 extension"
        for r5 in rule.r5.split(" | "):
            yield Carried(f"{r5_path}.{r5}", how)
        if rule.table and rule.table not in seen:
            yield from _coverage(rule.table, f"{r4_path}.{r4}", f"{r5_path}.{rule.r5}", seen | {rule.table})
    for extension in table.extensions:
        if extension.tail in EXTENSION_INVERSES:
            for r5 in extension.r5.split(" | "):
                yield Carried(f"{r5_path}.{r5}", f"extension {EXTENSION_URLS[extension.tail]}")
