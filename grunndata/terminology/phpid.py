"""PhPIDs (ISO 11616 pharmaceutical product identifiers), levels 1-4, computed from the ingredients.

Level 1 names the substance(s), 2 adds the strength(s), 3 the administrable dose form (EDQM),
4 both; each in the active-substance stratum (A) and, where an ingredient names a salt or ester
whose parent the data gives, the specified-substance stratum (S). A PhPID's value is a digest of a
canonical string, so it is the same in every release as long as its inputs are (docs/phpid.md
says every choice; the system is ours and experimental until a national PhPID authority exists).

It lives with the terminology because the dose form is EDQM's only through our reviewed
ConceptMap (verified, equivalent entries alone). `PhpidIndex` sees the served resources of a
release in the order they are made (importers/national.py) and adds the identifiers: to the
substance-based products (FEST LegemiddelVirkestoff), the AdministrableProductDefinitions and the
packages (the PhPIDs of the product each package is for), so a token search by any PhPID finds
every package that can fill a prescription by active substance.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from grunndata.fhir import systems as s
from grunndata.terminology.files import concept_map_files
from grunndata.terminology.verification import target_verified, verified_code

Json = dict[str, Any]

PHPID = s.NS_PHPID
CANONICAL_VERSION = "PhPID-v1"
"""The first part of every canonical string: a change of the canonical form is a new version."""
LEVEL_SYSTEM = "http://umcterminologies.org/CodeSystem/phpid-level"
"""WHO-UMC's code system of PhPID levels (phpid-level-1 .. -4), the type of each identifier."""
STRATA = {"A": "active substance", "S": "specified substance"}
DIGEST_HEX = 24
"""Hex digits of the SHA-256 digest kept in a value (96 bits)."""

SMS_SYSTEMS = ("https://spor.ema.europa.eu/v2/SubstanceDefinition", "https://spor.ema.europa.eu/smswi")
UNII_SYSTEM = "http://fdasis.nlm.nih.gov"
ACTIVE_ROLE = "100000072072"
LEGEMIDDELFORM = s.VOLVEN_PREFIX + "2.16.578.1.12.4.1.1.7448"
DOSE_FORM_MAP = "https://grunndata.no/fhir/ConceptMap/fest-legemiddelform-edqm-doseform"

# --- the dose form: EDQM, through verified equivalents only ---------------------------------------


@cache
def verified_dose_forms() -> dict[str, str]:
    """FEST 7448 code -> EDQM code, for the entries of our dose-form map that are `equivalent`,
    marked verified, the element's only target, and the only FEST code mapped to that EDQM code."""
    return verified_pairs(concept_map_files())


def verified_pairs(maps: Iterable[Json]) -> dict[str, str]:
    found: dict[str, str] = {}
    per_target: dict[str, int] = {}
    for conceptmap in maps:
        if conceptmap.get("url") != DOSE_FORM_MAP:
            continue
        code = verified_code(conceptmap)
        for group in conceptmap.get("group") or []:
            if group.get("source") != LEGEMIDDELFORM or group.get("target") != s.EDQM:
                continue
            for element in group.get("element") or []:
                targets = element.get("target") or []
                if len(targets) != 1 or targets[0].get("relationship") != "equivalent":
                    continue
                if code is None or target_verified(targets[0], code) is not True:
                    continue
                found[str(element["code"])] = str(targets[0]["code"])
                per_target[str(targets[0]["code"])] = per_target.get(str(targets[0]["code"]), 0) + 1
    return {fest: edqm for fest, edqm in found.items() if per_target[edqm] == 1}


def edqm_dose_form(concept: Any, pairs: dict[str, str] | None = None) -> str | None:
    """The EDQM code of a dose form: FEST's code through a verified equivalent (a FEST code with
    none gives none, whatever EDQM coding was restated beside it); without a FEST code, the one
    EDQM code the source gave (EDQM's URI or DMP's systems that publish its codes)."""
    if not isinstance(concept, dict):
        return None
    codings = [
        c for c in concept.get("coding") or [] if isinstance(c, dict) and isinstance(c.get("code"), str)
    ]
    fest = [c["code"] for c in codings if c.get("system") == LEGEMIDDELFORM]
    if fest:
        table = verified_dose_forms() if pairs is None else pairs
        found = {table.get(code) for code in fest}
        return found.pop() if len(found) == 1 and None not in found else None
    edqm = {c["code"] for c in codings if c.get("system") in (s.EDQM, *s.EDQM_ALIASES)}
    return edqm.pop() if len(edqm) == 1 else None


# --- strengths, in UCUM --------------------------------------------------------------------------

_UCUM = "http://unitsofmeasure.org"
UNITS: dict[str, tuple[str, Decimal]] = {
    "kg": ("mg", Decimal(1_000_000)),
    "g": ("mg", Decimal(1000)),
    "mg": ("mg", Decimal(1)),
    "ug": ("mg", Decimal("0.001")),
    "ng": ("mg", Decimal("0.000001")),
    "L": ("mL", Decimal(1000)),
    "mL": ("mL", Decimal(1)),
    "uL": ("mL", Decimal("0.001")),
    "[iU]": ("[iU]", Decimal(1)),
    "10*3.[iU]": ("[iU]", Decimal(1000)),
    "10*6.[iU]": ("[iU]", Decimal(1_000_000)),
    "%": ("%", Decimal(1)),
    "h": ("h", Decimal(1)),
    "d": ("h", Decimal(24)),
    "1": ("1", Decimal(1)),
}
"""UCUM unit -> (the unit a strength is stated in, its factor). A unit not here has no canonical
form, and a product with such a strength has no level 2 or 4 PhPID."""


_ANNOTATION = re.compile(r"\{[^{}]*\}")
"""A UCUM annotation (``{tablet}``): it does not change the unit, and alone it is the unit 1."""


def _number(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _quantity(quantity: Any) -> tuple[Decimal, str] | None:
    if not isinstance(quantity, dict) or quantity.get("system") != _UCUM:
        return None
    unit = UNITS.get(_ANNOTATION.sub("", str(quantity.get("code"))) or "1")
    value = quantity.get("value")
    if unit is None or isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        amount = Decimal(str(value)) * unit[1]
    except InvalidOperation:
        return None
    return (amount, unit[0]) if amount.is_finite() else None


_OPERATOR, _UPPER = s.ext_url("Styrkeoperator"), s.ext_url("StyrkeOvreVerdi")


def _exact(strength: Json) -> bool:
    """A strength that is one amount: FEST's operator, where given, is L (equal), and no upper value."""
    for extension in strength.get("extension") or []:
        url = extension.get("url") if isinstance(extension, dict) else None
        if url == _UPPER:
            return False
        if url == _OPERATOR and (extension.get("valueCoding") or {}).get("code") != "L":
            return False
    return True


def strength_key(strength: Any) -> str | None:
    """A strength's canonical text: the amount per one unit of the denominator, both in UCUM
    (``5 mg/1 mL`` for 120 mg in 24 mL, ``500 mg/1 1`` per tablet); None when it has none, or
    is not one amount (FEST's Styrkeoperator other than L, equal; an upper value)."""
    if not isinstance(strength, dict) or not _exact(strength):
        return None
    ratio = strength.get("presentationRatio") or strength.get("concentrationRatio")
    if isinstance(ratio, dict):
        numerator, denominator = _quantity(ratio.get("numerator")), _quantity(ratio.get("denominator"))
    else:
        quantity = strength.get("presentationQuantity") or strength.get("concentrationQuantity")
        numerator, denominator = _quantity(quantity), (Decimal(1), "1")
    if numerator is None or denominator is None or denominator[0] <= 0:
        return None
    return f"{_number(numerator[0] / denominator[0])} {numerator[1]}/1 {denominator[1]}"


# --- substances ------------------------------------------------------------------------------------


@dataclass
class Substances:
    """What the release's SubstanceDefinitions say: each one's identity, and which are salts or
    esters of which parent (FEST's Virkestoff names its salts and esters: RefVirkestoff)."""

    identity: dict[str, str] = field(default_factory=dict)  # "SubstanceDefinition/<id>" -> key
    parents: dict[str, set[str]] = field(default_factory=dict)  # salt reference -> parent references

    def add(self, substance: Json) -> None:
        ref = f"SubstanceDefinition/{substance.get('id')}"
        self.identity[ref] = substance_identity(substance) or ref
        for relation in substance.get("relationship") or []:
            target = (relation.get("substanceDefinitionReference") or {}).get("reference")
            if isinstance(target, str) and _is_salt(relation):
                self.parents.setdefault(target, set()).add(ref)

    def key(self, ref: str) -> str:
        return self.identity.get(ref, ref)

    def parent(self, ref: str) -> str | None:
        """The one parent (active moiety) of a salt or ester; None for any other substance."""
        found = self.parents.get(ref) or set()
        return next(iter(found)) if len(found) == 1 else None


def _is_salt(relation: Json) -> bool:
    codes = {c.get("code") for c in (relation.get("type") or {}).get("coding") or [] if isinstance(c, dict)}
    return "RefVirkestoff" in codes or bool(codes & {"Salt", "salt", "Ester", "ester"})


def substance_identity(substance: Json) -> str | None:
    """The best identifier of a substance: SMS id, else UNII, else FEST's Virkestoff Id."""
    pairs = [
        (i.get("system"), i.get("value")) for i in substance.get("identifier") or [] if isinstance(i, dict)
    ]
    for code in substance.get("code") or []:
        concept = code.get("code") if isinstance(code, dict) else None
        for coding in (concept or {}).get("coding") or []:
            if isinstance(coding, dict):
                pairs.append((coding.get("system"), coding.get("code")))
    for prefix, systems in (("sms", SMS_SYSTEMS), ("unii", (UNII_SYSTEM,)), ("fest", (s.NS_VIRKESTOFF,))):
        for system, value in pairs:
            if system in systems and isinstance(value, str) and value.strip():
                return f"{prefix}:{value.strip()}"
    return None


# --- the PhPIDs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Phpid:
    level: int
    stratum: str  # A or S
    canonical: str

    @property
    def value(self) -> str:
        digest = hashlib.sha256(self.canonical.encode()).hexdigest()[:DIGEST_HEX].upper()
        return f"L{self.level}{self.stratum}-{digest}"

    def identifier(self) -> Json:
        return {
            "type": {
                "coding": [
                    {
                        "system": LEVEL_SYSTEM,
                        "code": f"phpid-level-{self.level}",
                        "display": f"Level {self.level}",
                    }
                ],
                "text": f"PhPID level {self.level}, {STRATA[self.stratum]} stratum (experimental)",
            },
            "system": PHPID,
            "value": self.value,
        }


@dataclass(frozen=True, slots=True)
class _Part:
    substance: str  # the identity key
    strength: str | None


def _parts(ingredients: Iterable[Json], substances: Substances) -> dict[str, list[_Part]] | None:
    """Per stratum, each active ingredient's substance and strength; None when an ingredient names
    no substance we know (no PhPID then: a product is identified by all its substances)."""
    active: list[_Part] = []
    specified: list[_Part] = []
    names_salt = False
    for ingredient in ingredients:
        role = {
            c.get("code") for c in (ingredient.get("role") or {}).get("coding") or [] if isinstance(c, dict)
        }
        if role and ACTIVE_ROLE not in role:
            continue
        substance = ingredient.get("substance") or {}
        ref = ((substance.get("code") or {}).get("reference") or {}).get("reference")
        if not isinstance(ref, str):
            return None
        strengths = substance.get("strength") or []
        strength = strength_key(strengths[0]) if len(strengths) == 1 else None
        parent = substances.parent(ref)
        if parent is not None:  # a salt or ester: its strength is the salt's, not the parent's
            names_salt = True
            active.append(_Part(substances.key(parent), None))
        else:
            active.append(_Part(substances.key(ref), strength))
        specified.append(_Part(substances.key(ref), strength))
    if not active:
        return None
    return {"A": active, "S": specified} if names_salt else {"A": active}


def phpids(ingredients: Iterable[Json], dose_form: Any, substances: Substances) -> list[Phpid]:
    """The PhPIDs of a pharmaceutical product: its active ingredients and its dose form."""
    strata = _parts(ingredients, substances)
    if strata is None:
        return []
    form = edqm_dose_form(dose_form)
    found: list[Phpid] = []
    for stratum, parts in strata.items():
        names = "+".join(sorted({p.substance for p in parts}))
        strengths = (
            "+".join(sorted(f"{p.substance}={p.strength}" for p in parts))
            if all(p.strength is not None for p in parts)
            else None
        )
        head = f"{CANONICAL_VERSION}|{stratum}"
        found.append(Phpid(1, stratum, f"{head}|L1|{names}"))
        if strengths is not None:
            found.append(Phpid(2, stratum, f"{head}|L2|{strengths}"))
        if form is not None:
            found.append(Phpid(3, stratum, f"{head}|L3|{names}|edqm:{form}"))
            if strengths is not None:
                found.append(Phpid(4, stratum, f"{head}|L4|{strengths}|edqm:{form}"))
    return found


def add_identifiers(resource: Json, found: Iterable[Phpid]) -> None:
    """In place: `resource` with an identifier for each PhPID it does not carry yet (once: a package
    holding one item at two levels finds its PhPIDs twice)."""
    have = {
        (i.get("system"), i.get("value")) for i in resource.get("identifier") or [] if isinstance(i, dict)
    }
    new = []
    for p in found:
        if (PHPID, p.value) not in have:
            have.add((PHPID, p.value))
            new.append(p.identifier())
    if new:
        resource["identifier"] = [*(resource.get("identifier") or []), *new]


# --- a release's resources, as they are made -------------------------------------------------------

MPD, APD, PPD, ING = (
    "MedicinalProductDefinition",
    "AdministrableProductDefinition",
    "PackagedProductDefinition",
    "Ingredient",
)
_REF_PAKNING = s.ext_url("RefPakning")


def _refs(items: Any, key: str | None = None) -> list[str]:
    found = []
    for item in items or []:
        ref = item.get(key) if key and isinstance(item, dict) else item
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            found.append(ref["reference"])
    return found


@dataclass
class PhpidIndex:
    """Adds PhPIDs to a release's resources as they are made, and groups packages by them.

    Substances come before the products that name them (importers/national.py makes them first);
    a product's Ingredients come with it; a package whose product is not made yet waits
    (`package` again at the end)."""

    substances: Substances = field(default_factory=Substances)
    products: dict[str, list[Phpid]] = field(default_factory=dict)  # "MedicinalProductDefinition/<id>"
    substance_based: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # id -> (name, packages)
    packages: dict[str, list[Phpid]] = field(default_factory=dict)  # package id -> its PhPIDs

    def see(self, resources: list[Json]) -> None:
        """In place: the PhPIDs of what one source made together (a FEST entry's resources)."""
        by_type: dict[str, list[Json]] = {}
        for resource in resources:
            by_type.setdefault(str(resource.get("resourceType")), []).append(resource)
        for substance in by_type.get("SubstanceDefinition", []):
            self.substances.add(substance)
        ingredients: dict[str, list[Json]] = {}
        for ingredient in by_type.get(ING, []):
            for ref in _refs(ingredient.get("for")):
                ingredients.setdefault(ref, []).append(ingredient)
        for product in by_type.get(MPD, []):
            ref = f"{MPD}/{product.get('id')}"
            found = phpids(
                ingredients.get(ref, []), product.get("combinedPharmaceuticalDoseForm"), self.substances
            )
            self.products[ref] = found
            if any(i.get("system") == s.NS_LEGEMIDDELVIRKESTOFF for i in product.get("identifier") or []):
                add_identifiers(product, found)
                name = str(((product.get("name") or [{}])[0]).get("productName") or "")
                packs = [
                    str(e["valueReference"]["reference"]).removeprefix(PPD + "/")
                    for e in product.get("extension") or []
                    if e.get("url") == _REF_PAKNING
                    and isinstance((e.get("valueReference") or {}).get("reference"), str)
                ]
                self.substance_based[str(product.get("id"))] = (name, packs)
        for administrable in by_type.get(APD, []):
            ref = f"{APD}/{administrable.get('id')}"
            own = ingredients.get(ref) or [
                i for f in _refs(administrable.get("formOf")) for i in ingredients.get(f, [])
            ]
            add_identifiers(
                administrable, phpids(own, administrable.get("administrableDoseForm"), self.substances)
            )
        for package in by_type.get(PPD, []):
            self.package(package)

    def package(self, package: Json) -> bool:
        """In place: the package with the PhPIDs of the products it is for; False when one of them
        is not made yet (call again once it is)."""
        products = _refs(package.get("packageFor"))
        if not products or any(p not in self.products for p in products):
            return False
        found = [p for ref in products for p in self.products[ref]]
        add_identifiers(package, found)
        self.packages[str(package.get("id"))] = found
        return True

    def comparison(self) -> Json:
        """PhPID groups against FEST's LegemiddelVirkestoff grouping, at level 4 (what FEST groups
        by: substance, strength, form) and level 2 (no dose form, which has a PhPID far less often)."""
        return {"level4": self._compared(4), "level2": self._compared(2)}

    def _compared(self, level: int) -> Json:
        """A LegemiddelVirkestoff agrees when its served packages all have one PhPID of `level`
        (active substance stratum) and exactly its packages have that PhPID."""

        def at_level(found: list[Phpid]) -> set[str]:
            return {p.value for p in found if p.level == level and p.stratum == "A"}

        by_value: dict[str, set[str]] = {}
        for package, found in self.packages.items():
            for value in at_level(found):
                by_value.setdefault(value, set()).add(package)
        agreeing, differing = 0, []
        for lv_id, (name, packs) in sorted(self.substance_based.items()):
            served = sorted(p for p in packs if p in self.packages)
            values = sorted(set().union(*(at_level(self.packages[pack]) for pack in served)))
            missing = [pack for pack in served if not at_level(self.packages[pack])]
            group = set().union(*(by_value[v] for v in values))
            if served and not missing and len(values) == 1 and group == set(served):
                agreeing += 1
                continue
            if not served:
                why = "none of its packages is served"
            elif missing:
                why = f"packages without a level {level} PhPID" + (
                    " (no verified EDQM dose form, or a strength without UCUM)"
                    if level == 4
                    else " (a strength without UCUM)"
                )
            elif len(values) > 1:
                why = f"its packages have different level {level} PhPIDs"
            else:
                why = "the PhPID group also holds packages of other products"
            differing.append(
                {
                    "legemiddelvirkestoff": lv_id,
                    "name": name,
                    "packages": served,
                    "not_served": sorted(set(packs) - set(served)),
                    "phpids": values,
                    "without_phpid": missing,
                    "phpid_group_beyond": sorted(group - set(served)),
                    "why": why,
                }
            )
        compared = len(self.substance_based)
        return {
            "level": level,
            "stratum": "A",
            "fest_groups": compared,
            "agreeing": agreeing,
            "share": round(agreeing / compared, 4) if compared else 0.0,
            "packages": len(self.packages),
            "packages_with_phpid": sum(1 for found in self.packages.values() if at_level(found)),
            "phpid_groups": len(by_value),
            "differing": differing,
        }
