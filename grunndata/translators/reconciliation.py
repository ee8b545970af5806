"""Where FEST and SAFEST describe one thing differently: one table of what is compared, and how.

Read `COMPARED` as "on this resource type, this element (the name the reconciliation reports),
read so from each side, compared so". A row is compared only when both sides give a value: one
side lacking what the other gives is no disagreement. Codes agree when equal, when a ConceptMap
relates them (`Equivalents`) or when their displays are equal; numbers compare as numbers (1.0 ==
1); units as UCUM (annotations such as ``{tablet}`` are the unit 1) or through a unit ConceptMap;
identifiers per system, where GTIN, NTIN and Farmalogg's product codes are one GTIN-14 and two
values disagree only when neither side's set holds the other's. What a row `covers` is what the
merge may let SAFEST replace; anything else SAFEST replaces with a different value is reported
under its FHIR element name (`overwritten`), so nothing FEST said is overwritten silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from grunndata.fhir import ATC, NS_GTIN, NS_VARENR, ext_url
from grunndata.translators.safest.links import FEST_SYSTEMS, GENERIC_KINDS, VARENR
from grunndata.translators.shape import restated

Json = dict[str, Any]
Equivalents = Callable[[str, str], set[tuple[str, str]]]  # (system, code) -> codes meaning the same
Resolve = Callable[[str], Json | None]  # a reference -> the resource of the same side, if known

UCUM = "http://unitsofmeasure.org"
FARMALOGG_PRODUCT_CODES = "https://farmalogg.no/produktkode"
"""SAFEST's data carrier identifiers: ``…/produktkode`` (2020 drafts), ``…/GTIN`` and ``…/NTIN``."""
GTIN_SYSTEMS = (
    NS_GTIN,
    FARMALOGG_PRODUCT_CODES,
    FARMALOGG_PRODUCT_CODES + "/GTIN",
    FARMALOGG_PRODUCT_CODES + "/NTIN",
)
VARENR_SYSTEMS = (NS_VARENR, "https://farmalogg.no/varenummer")
FEST_ATC = ext_url("Atc")
SHOWN_JSON = 200  # characters of an overwritten element's JSON shown


@dataclass(frozen=True, slots=True)
class Disagreement:
    resource: str  # "MedicinalProductDefinition/F2CEF840-..." as served
    element: str  # a COMPARED element (atc, name, gtin, ...) or the FHIR element SAFEST overwrote
    fest: str
    safest: str

    def as_dict(self) -> dict[str, str]:
        return {"resource": self.resource, "element": self.element, "fest": self.fest, "safest": self.safest}


# -- the values read, and how each kind compares and shows -------------------------------------------

Code = tuple[str, str, str]  # (system, code, display)
Quantity = tuple[Decimal, str, str, str]  # (value, unit system, unit code, unit as written)
# (label, value): a FEST id (its catalogue, the id), a date ("start", ...), a GTIN or varenr ("", ...)
Labelled = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Kind:
    """How one kind of value is judged the same and shown: codes, texts, quantities, labelled values."""

    same: Callable[[list[Any], list[Any], Equivalents], bool]
    show: Callable[[list[Any]], str]


def _same_codes(ours: list[Code], theirs: list[Code], equivalents: Equivalents) -> bool:
    """In a system both use, the same codes; else every SAFEST code related to one of FEST's by a
    ConceptMap, or showing the same display."""
    shared = {s for s, _, _ in ours} & {s for s, _, _ in theirs}
    if shared:
        return all({c for s, c, _ in ours if s == x} == {c for s, c, _ in theirs if s == x} for x in shared)
    mine = {(s, c) for s, c, _ in ours}
    displays = {_folded(d) for _, _, d in ours if d}
    return all(
        any((system, code) in equivalents(s, c) for s, c in mine)
        or (display and _folded(display) in displays)
        for system, code, display in theirs
    )


def _show_codes(codes: list[Code]) -> str:
    codes = sorted(codes)
    return ", ".join((f"{s}|{c}" if s else c) + (f" ({d})" if d else "") for s, c, d in codes)


def _same_texts(ours: list[str], theirs: list[str], equivalents: Equivalents) -> bool:
    """Every SAFEST text is one of FEST's, ignoring case and runs of white space."""
    return {_folded(t) for t in theirs} <= {_folded(t) for t in ours}


def _same_quantities(ours: list[Quantity], theirs: list[Quantity], equivalents: Equivalents) -> bool:
    """As many quantities on each side, and each SAFEST one equal in number and unit to a FEST one."""
    return len(ours) == len(theirs) and all(
        any(v == w and _same_unit(mine, other, equivalents) for w, *mine in ours) for v, *other in theirs
    )


def _same_unit(ours: list[str], theirs: list[str], equivalents: Equivalents) -> bool:
    """Units ([system, code, as written]) agree when one is missing, when equal as written, as UCUM,
    or through a unit ConceptMap (FEST 7452 ``stk`` -> UCUM ``{piece}``, which is 1 as ``{tablet}``)."""
    if not any(ours[1:]) or not any(theirs[1:]):
        return True
    if {_folded(x) for x in ours[1:] if x} & {_folded(x) for x in theirs[1:] if x}:
        return True
    return bool(_ucum_forms(ours, equivalents) & _ucum_forms(theirs, equivalents))


def _ucum_forms(unit: list[str], equivalents: Equivalents) -> set[tuple[str, str]]:
    system, code, _ = unit
    if not (system and code):
        return set()
    return {_ucum(s, c) for s, c in {(system, code)} | equivalents(system, code)}


def _ucum(system: str, code: str) -> tuple[str, str]:
    """A UCUM code without its annotations (``{tablet}`` is the unit 1, ``mg{total}`` is mg)."""
    if system != UCUM:
        return system, code
    bare = "".join(part.split("}", 1)[-1] for part in code.split("{"))
    return system, bare or "1"


def _show_quantities(quantities: list[Quantity]) -> str:
    return ", ".join(f"{v:f}" + (f" ({t or c})" if t or c else "") for v, _, c, t in quantities)


def _same_labelled(ours: list[Labelled], theirs: list[Labelled], equivalents: Equivalents) -> bool:
    """Per label both give: the same values, or one side's values all among the other's (a side
    lacking a value is no disagreement; two different values under one label are)."""
    for label in {k for k, _ in ours} & {k for k, _ in theirs}:
        mine, other = {v for k, v in ours if k == label}, {v for k, v in theirs if k == label}
        if not (mine <= other or other <= mine):
            return False
    return True


def _show_labelled(values: list[Labelled]) -> str:
    return ", ".join(f"{k} {v}" if k else v for k, v in values)


CODES = Kind(_same_codes, _show_codes)
TEXTS = Kind(_same_texts, lambda texts: " | ".join(dict.fromkeys(texts)))
QUANTITIES = Kind(_same_quantities, _show_quantities)
LABELLED = Kind(_same_labelled, _show_labelled)


# -- readers: one FHIR resource -> the values of one element ------------------------------------------

Reader = Callable[[Json, Resolve], list[Any]]


def _codings(concept: Any) -> list[Code]:
    if not isinstance(concept, dict):
        return []
    return [
        (str(c.get("system", "")), str(c.get("code", "")), str(c.get("display", "")))
        for c in concept.get("coding") or []
        if isinstance(c, dict)
    ]


def _concept(*path: str) -> Reader:
    """The codings of the CodeableConcept(s) at `path` (lists along the way are walked)."""

    def read(resource: Json, resolve: Resolve) -> list[Any]:
        return [c for concept in _at(resource, path) for c in _codings(concept)]  # in order: see _given

    return read


def _at(value: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _at(item, path)
    elif not path:
        if value is not None:
            yield value
    elif isinstance(value, dict):
        yield from _at(value.get(path[0]), path[1:])


def _atc(resource: Json, resolve: Resolve) -> list[Any]:
    """ATC codes: a product's classification; a package's FEST extension, or its product's."""
    found = {("", c, d) for s, c, d in _concept("classification")(resource, resolve) if s == ATC}
    found |= {
        ("", str(e["valueCoding"].get("code", "")), str(e["valueCoding"].get("display", "")))
        for e in resource.get("extension") or []
        if isinstance(e, dict) and e.get("url") == FEST_ATC and isinstance(e.get("valueCoding"), dict)
    }
    if not found and resource.get("resourceType") == "PackagedProductDefinition":
        for ref in _at(resource, ("packageFor", "reference")):
            product = resolve(str(ref))
            found |= set(_atc(product, resolve)) if product is not None else set()
    return sorted(found)


def _product_name(resource: Json, resolve: Resolve) -> list[Any]:
    names = resource.get("name") or []
    first = names[0].get("productName") if names and isinstance(names[0], dict) else None
    return [first] if isinstance(first, str) else []


def _plain_name(resource: Json, resolve: Resolve) -> list[Any]:
    name = resource.get("name")
    return [name] if isinstance(name, str) else []


def _substance_names(resource: Json, resolve: Resolve) -> list[Any]:
    return [n for n in _at(resource, ("name", "name")) if isinstance(n, str)]


def _quantities(*path: str) -> Reader:
    def read(resource: Json, resolve: Resolve) -> list[Any]:
        return sorted(
            (number, str(q.get("system", "")), str(q.get("code", "")), str(q.get("unit", "")))
            for q in _at(resource, path)
            if isinstance(q, dict) and (number := _number(q.get("value"))) is not None
        )

    return read


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value)).normalize()
    except InvalidOperation:
        return None


def _strength_numerator(resource: Json, resolve: Resolve) -> list[Any]:
    return _quantities("substance", "strength", "presentationQuantity")(resource, resolve) + _quantities(
        "substance", "strength", "presentationRatio", "numerator"
    )(resource, resolve)


def _substance(resource: Json, resolve: Resolve) -> list[Any]:
    """The substance as its reference (no system) and as the codes of its concept."""
    refs = [("", str(r), "") for r in _at(resource, ("substance", "code", "reference", "reference"))]
    return sorted(refs + _concept("substance", "code", "concept")(resource, resolve))


Family = Callable[[str, str, str], Labelled | None]  # (resource type, system, value) -> (label, value)


def _identifiers(family: Family, *paths: tuple[str, ...]) -> Reader:
    """The identifiers at `paths` that `family` recognises, as (label, normalised value)."""

    def read(resource: Json, resolve: Resolve) -> list[Any]:
        rtype = str(resource.get("resourceType"))
        found = set()
        for path in paths:
            for i in _at(resource, path):
                system, value = (i.get("system"), i.get("value")) if isinstance(i, dict) else (None, None)
                if isinstance(system, str) and isinstance(value, str):
                    known = family(rtype, system, value.strip())
                    found |= {known} if known is not None else set()
        return sorted(found)

    return read


def _gtin(rtype: str, system: str, value: str) -> Labelled | None:
    """GTIN, NTIN, Farmalogg product codes: one GTIN-14 (FEST's 13 digits, SAFEST's 14 with a 0)."""
    if system not in GTIN_SYSTEMS:
        return None
    return "", value.zfill(14) if value.isdigit() else value


def _varenr(rtype: str, system: str, value: str) -> Labelled | None:
    if system not in VARENR_SYSTEMS:
        return None
    return "", value.zfill(6) if value.isdigit() else value


def _fest_id(rtype: str, system: str, value: str) -> Labelled | None:
    """A FEST id under any system SAFEST names it by (safest/links.py), labelled with its catalogue."""
    kind = (FEST_SYSTEMS[system] or GENERIC_KINDS.get(rtype)) if system in FEST_SYSTEMS else None
    if kind is None or kind == VARENR:
        return None
    return kind, value.removeprefix("ID_").upper()


def _norwegian(resource: Json) -> Json:
    """The resource's marketing statuses for Norway (or for no country): what FEST gives."""
    return {
        "marketingStatus": [
            m
            for m in resource.get("marketingStatus") or []
            if isinstance(m, dict)
            and (not _codings(m.get("country")) or ("NO" in {c for _, c, _ in _codings(m.get("country"))}))
        ]
    }


def _marketing_status(resource: Json, resolve: Resolve) -> list[Any]:
    return _concept("marketingStatus", "status")(_norwegian(resource), resolve)


def _marketing_dates(resource: Json, resolve: Resolve) -> list[Any]:
    return sorted(
        (label, str(d)[:10])
        for label in ("start", "end")
        for d in _at(_norwegian(resource), ("marketingStatus", "dateRange", label))
    )


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


# -- the table ---------------------------------------------------------------------------------------

MPD, PPD = "MedicinalProductDefinition", "PackagedProductDefinition"
MID, ING, SD = "ManufacturedItemDefinition", "Ingredient", "SubstanceDefinition"


@dataclass(frozen=True, slots=True)
class Compared:
    """One element both FEST and SAFEST give a resource type, and how the two are compared."""

    resource: str
    element: str  # the name the reconciliation reports
    read: Reader
    kind: Kind
    covers: tuple[str, ...]  # the merged elements it judges: "name", "packaging.type", "extension:<url>"
    observe: bool = False  # codes seen together become an observed ConceptMap (code_pairs)


COMPARED: tuple[Compared, ...] = (
    Compared(MPD, "name", _product_name, TEXTS, ("name",)),
    Compared(MPD, "atc", _atc, CODES, ("classification",)),
    Compared(
        MPD,
        "dose-form",
        _concept("combinedPharmaceuticalDoseForm"),
        CODES,
        ("combinedPharmaceuticalDoseForm",),
        observe=True,
    ),
    Compared(MPD, "legal-status", _concept("legalStatusOfSupply"), CODES, ("legalStatusOfSupply",)),
    Compared(PPD, "name", _plain_name, TEXTS, ("name",)),
    Compared(
        PPD,
        "gtin",
        _identifiers(_gtin, ("identifier",), ("packaging", "identifier")),
        LABELLED,
        ("packaging.identifier",),
    ),
    Compared(PPD, "varenr", _identifiers(_varenr, ("identifier",)), LABELLED, ()),
    Compared(PPD, "pack-size", _quantities("containedItemQuantity"), QUANTITIES, ("containedItemQuantity",)),
    Compared(PPD, "package-type", _concept("packaging", "type"), CODES, ("packaging.type",), observe=True),
    Compared(PPD, "atc", _atc, CODES, (f"extension:{FEST_ATC}",)),
    Compared(PPD, "legal-status", _concept("legalStatusOfSupply", "code"), CODES, ("legalStatusOfSupply",)),
    Compared(PPD, "marketing-status", _marketing_status, CODES, ("marketingStatus",)),
    Compared(PPD, "marketing-dates", _marketing_dates, LABELLED, ("marketingStatus",)),
    Compared(MID, "name", _plain_name, TEXTS, ("name",)),
    Compared(MID, "dose-form", _concept("manufacturedDoseForm"), CODES, ("manufacturedDoseForm",)),
    Compared(SD, "name", _substance_names, TEXTS, ("name",)),
    Compared(ING, "substance", _substance, CODES, ("substance.code",)),
    Compared(ING, "strength", _strength_numerator, QUANTITIES, ("substance.strength",)),
    Compared(
        ING,
        "strength-denominator",
        _quantities("substance", "strength", "presentationRatio", "denominator"),
        QUANTITIES,
        ("substance.strength",),
    ),
    *(
        Compared(t, "fest-id", _identifiers(_fest_id, ("identifier",)), LABELLED, ())
        for t in (MPD, PPD, MID, SD)
    ),
)
"""Every element both sources give, per resource type; `compare` walks it, and nothing else lists them."""


def _nothing(reference: str) -> Json | None:
    return None


def compare(
    fest: Json,
    safest: Json,
    served: str,
    equivalents: Equivalents,
    resolve: Resolve = _nothing,
) -> list[Disagreement]:
    """What FEST and SAFEST (its references rewritten) both say about one thing, where they say it
    differently; then what else SAFEST's values would overwrite in FEST's."""
    rtype = str(fest.get("resourceType"))
    found = []
    for row in COMPARED:
        if row.resource == rtype:
            ours, theirs = row.read(fest, _nothing), row.read(safest, resolve)
            if ours and theirs and not row.kind.same(ours, theirs, equivalents):
                found.append(Disagreement(served, row.element, row.kind.show(ours), row.kind.show(theirs)))
    covered = {c for row in COMPARED if row.resource == rtype for c in row.covers}
    return found + [Disagreement(served, *o) for o in overwritten(fest, safest, covered)]


# -- the merge's other replacements --------------------------------------------------------------------

_NOT_REPLACED = ("resourceType", "id", "meta", "text", "extension", "modifierExtension")


def overwritten(fest: Json, safest: Json, covered: set[str]) -> list[tuple[str, str, str]]:
    """(FHIR element, FEST's, SAFEST's) for each element the merge replaces whose FEST value SAFEST's
    does not hold (numbers as numbers; what only FEST gives inside an element is not a difference).
    Identifier and Ingredient.for lists are joined, not replaced; extensions are replaced by URL."""
    found = []
    for name, theirs in safest.items():
        ours = fest.get(name)
        if name in _NOT_REPLACED or name in covered or ours is None:
            continue
        if name in ("identifier", "for") and isinstance(ours, list) and isinstance(theirs, list):
            continue
        inner = {c.split(".", 1)[1] for c in covered if c.startswith(name + ".")}
        ours, theirs = _without(ours, inner), _without(theirs, inner)
        if not _holds(theirs, ours):
            found.append((name, _json(ours), _json(theirs)))
    by_url = _extensions(fest)
    for url, theirs in _extensions(safest).items():
        if url in by_url and f"extension:{url}" not in covered and not _holds(theirs, by_url[url]):
            found.append((f"extension {url}", _json(by_url[url]), _json(theirs)))
    return found


def _without(value: Any, keys: set[str]) -> Any:
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return {k: v for k, v in value.items() if k not in keys} if isinstance(value, dict) and keys else value


def _holds(theirs: Any, ours: Any) -> bool:
    """SAFEST's value holds FEST's: what both give inside it alike, every FEST item among SAFEST's."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return all(_holds(theirs[k], v) for k, v in ours.items() if k in theirs and k != "extension")
    if isinstance(ours, list) and isinstance(theirs, list):
        return all(any(_holds(t, o) for t in theirs) for o in ours)
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return ours is theirs
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)):
        return _number(ours) == _number(theirs)
    return bool(ours == theirs)


def _extensions(resource: Json) -> dict[str, list[Json]]:
    out: dict[str, list[Json]] = {}
    for e in resource.get("extension") or []:
        if isinstance(e, dict) and isinstance(e.get("url"), str):
            out.setdefault(e["url"], []).append(e)
    return out


def _json(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= SHOWN_JSON else text[: SHOWN_JSON - 1] + "…"


# -- codes seen together ---------------------------------------------------------------------------------

# (element, FEST system, FEST code, FEST display, SAFEST system, SAFEST code, SAFEST display)
CodePair = tuple[str, str, str, str, str, str, str]


def code_pairs(fest: Json, safest: Json) -> list[CodePair]:
    """The codes FEST and SAFEST each give one product for the same element, where their systems
    differ: evidence for a map between the two code systems, drawn from the data itself."""
    pairs = []
    for row in COMPARED:
        if row.observe and row.resource == fest.get("resourceType"):
            for fs, fc, fd in _given(row.read(fest, _nothing)):
                for ss, sc, sd in _given(row.read(safest, _nothing)):
                    if fs != ss:
                        pairs.append((row.element, fs, fc, fd, ss, sc, sd))
    return pairs


def _given(codes: list[Code]) -> list[Code]:
    """The codes a source gave: without those our one-shape pass added beside them (a dose form's
    EDQM code beside FEST's), which are our map's word, not evidence for it."""
    added = restated([{"system": s, "code": c} for s, c, _ in codes])
    return [code for n, code in enumerate(codes) if n not in added]
