"""One served form per identifier kind, every known alias accepted: the table, and the lookups on it.

FEST, SAFEST, LMDI, the Nordic ePI and FEST's 2020 SAFEST drafts name the same ids in different
systems (and cases), and give FEST ids with or without ``ID_`` and GTINs as 13 or 14 digits. Each
kind below has the one system we serve (the published one where there is one; `source` says whose)
and the aliases we accept; `served` turns any accepted (system, value) into the served one. The
importers apply it to every identifier of what they serve (importers/national.py), the search to
every identifier token it is asked for (store/search.py), so a search in any accepted form finds
what either source gave. Every lookup is a dictionary lookup on the system.

A value that is not well formed for its kind (a FEST id that is not a GUID, a GTIN whose check
digit is wrong) is left exactly as sent, system included, by the importers and the search alike:
it is not claimed for a served system it does not fit, and a search for it finds only a resource
that carries it so, as FHIR token search matches codes, never an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from grunndata.fhir import systems as s

Format = Callable[[str], str | None]  # a value -> its served form, None when not well formed

_GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
FEST_ID_PREFIX = "ID_"
# the whitespace a value may carry around it, for every kind alike: ASCII's only (a no-break or em
# space is a character of the value, and ``"ıd_".upper()`` is ``"ID_"``: prefixes compare as ASCII)
ASCII_SPACE = " \t\r\n\f\v"


def fest_id(value: str) -> str | None:
    """A FEST Id as FEST and our served systems have it: ``ID_`` and an uppercase GUID.

    SAFEST and the 2020 drafts send the GUID without ``ID_``; GUIDs are case-insensitive."""
    text = value.strip(ASCII_SPACE)
    prefix = text[: len(FEST_ID_PREFIX)]
    bare = text[len(FEST_ID_PREFIX) :] if prefix.isascii() and prefix.upper() == FEST_ID_PREFIX else text
    return FEST_ID_PREFIX + bare.upper() if _GUID.fullmatch(bare) else None


def gtin_check_digit(digits: str) -> int:
    """GS1's check digit of a GTIN's other digits (weights 3, 1, 3, ... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def gtin(value: str) -> str | None:
    """A GTIN-8, -12, -13 or -14 with a right check digit, as served: the 13 digits of an EAN-13
    (FEST's ``Ean``, the barcode on the pack), or 14 where the indicator digit is not 0 (a GTIN-14
    of a trade unit, which has no 13-digit form). Spaces are ignored."""
    digits = value.strip(ASCII_SPACE).replace(" ", "")
    if len(digits) not in (8, 12, 13, 14) or not digits.isascii() or not digits.isdigit():
        return None
    if gtin_check_digit(digits[:-1]) != int(digits[-1]):
        return None
    fourteen = digits.zfill(14)
    return fourteen[1:] if fourteen[0] == "0" else fourteen


# GS1 application identifiers whose element has a predefined length (the AI's first two digits ->
# the length of AI and data together); every other element runs to a group separator (FNC1,
# sent by scanners as ASCII GS) or the end (GS1 General Specifications, "pre-defined length").
_GS1_FIXED = {
    **dict.fromkeys(("00",), 20),
    **dict.fromkeys(("01", "02", "03", "41"), 16),
    "04": 18,
    **dict.fromkeys(("11", "12", "13", "14", "15", "16", "17", "18", "19"), 8),
    "20": 4,
    **dict.fromkeys(("31", "32", "33", "34", "35", "36"), 10),
}
_GS = "\x1d"
_GS1_BRACKETED = re.compile(r"\(01\)\s*([0-9]{14})(?![0-9])")
_GS1_DIGITAL_LINK = re.compile(r"^(?i:https?://[^/?#\s]+)(?:/[^?#\s]*)?/(?:01|gtin)/([0-9]{8,14})(?:[/?#]|$)")
_AIM_PREFIX = re.compile(r"^\][A-Za-z][0-9]")
GS1_ELEMENT_MAX = 512
"""The longest GS1 element string or Digital Link read for its GTIN (a pack's DataMatrix holds
well under 100 characters)."""


def gs1_gtin(value: str) -> str | None:
    """The GTIN (as served, `gtin`) a scanned GS1 code carries in application identifier 01, or None.

    A 2D code on a medicine pack (the EU Falsified Medicines Directive's DataMatrix) holds more than
    the GTIN: expiry (17), batch (10) and serial number (21). Scanners send it as an element string,
    raw (``0107046260148840172801311012345\\x1d21ABC``, with the AIM symbology prefix ``]d2`` or
    without) or bracketed as printed (``(01)07046260148840(17)280131``), or, for newer codes, as a
    GS1 Digital Link URI (``https://id.gs1.org/01/07046260148840/21/ABC``). A plain GTIN is no
    element string (None: `gtin` reads it)."""
    text = value.strip(ASCII_SPACE)
    if len(text) > GS1_ELEMENT_MAX or not text.isascii():
        return None
    found = _GS1_DIGITAL_LINK.match(text) or _GS1_BRACKETED.search(text)
    if found is not None:
        return gtin(found.group(1))
    text = _AIM_PREFIX.sub("", text, count=1).lstrip(_GS)
    if len(text) <= 16 and not (len(text) == 16 and text.startswith("01")):
        return None  # at most a GTIN (14 digits) or less: not an element string
    at = 0
    while at < len(text):
        ai = text[at : at + 2]
        if not ai.isdigit():
            return None
        length = _GS1_FIXED.get(ai)
        if ai == "01":
            digits = text[at + 2 : at + 16]
            return gtin(digits) if len(digits) == 14 else None
        if length is not None:
            at += length
            if at > len(text):
                return None
        else:
            end = text.find(_GS, at)
            if end < 0:
                return None
            at = end
        while text[at : at + 1] == _GS:
            at += 1
    return None


def varenr(value: str) -> str | None:
    """A Nordic article number (varenummer): six digits, leading zeros kept (``014884``)."""
    digits = value.strip(ASCII_SPACE).replace(" ", "")
    if not 1 <= len(digits) <= 6 or not digits.isascii() or not digits.isdigit():
        return None
    return digits.zfill(6)


_PHPID = re.compile(r"L[1-4][AS]-[0-9A-F]{24}")


def phpid(value: str) -> str | None:
    """One of our PhPIDs (terminology/phpid.py): ``L``, the level, the stratum, ``-`` and 24
    uppercase hex digits (``L1A-78428EDE06DA2A83AAD26F3F``); hex digits are taken in any case."""
    text = value.strip(ASCII_SPACE)
    form = text.upper() if text.isascii() else text
    return form if _PHPID.fullmatch(form) else None


def as_given(value: str) -> str | None:
    """Ids with no known format: the value without surrounding (ASCII) whitespace."""
    text = value.strip(ASCII_SPACE)
    return text or None


VALUE_FORMS: dict[Format, str] = {
    fest_id: "ID_ and an uppercase GUID, as FEST has it (accepted without ID_, in any case)",
    gtin: "13 digits (GTIN-13), or 14 for a GTIN-14 whose first digit is not 0; accepted as GTIN-8, "
    "-12, -13 or -14 with a right check digit",
    varenr: "six digits, leading zeros kept (accepted without them)",
    phpid: "L, the level (1-4), the stratum (A active substance, S specified substance), - and 24 "
    "uppercase hex digits, as grunndata computes it (accepted in any case)",
    as_given: "as the source gives it",
}
"""Each value format's served form and what is accepted, in one sentence (the README, NamingSystem.usage)."""


@dataclass(frozen=True, slots=True)
class IdentifierKind:
    """One kind of identifier: the system we serve it in, where that system comes from, the
    systems we accept for it, and its value's one served form."""

    name: str  # what it identifies, for people
    served: str  # the system we serve
    source: str  # who publishes `served` (or that we mint it)
    aliases: tuple[str, ...]  # other systems that mean the same (case variants need no row)
    value: Format
    ours: bool = False  # minted under our domain: we publish its NamingSystem (fhirpackage/)
    experimental: bool = False  # ours, and may change before an authority publishes one


LMDI = "HL7 Norway LMDI, NamingSystem {} (github.com/HL7Norway/LMDI, input/fsh/namingsystems)"
LMDI_CODING = (
    "HL7 Norway LMDI 1.1.0, the {} coding of the lmdi-Medication profile (no NamingSystem instance "
    "published; github.com/folkehelseinstituttet/LMDI)"
)
HL7NO = "http://hl7.no/fhir/NamingSystem/"  # LMDI's systems before 2024-06-10 (commit cad0f7cb)
KAT = "http://ehelse.no/fhir/CodeSystem/FEST/Kat"  # SAFEST 2020 drafts: Merkevare, Pakning, dose only
FEST_GENERIC = "http://ehelse.no/fhir/CodeSystem/FEST"
"""SAFEST's and no-basis' system for any FEST id: which catalogue depends on the resource type."""
NORDIC_EPI = "http://legemiddelverket.no/FEST/"
FARMALOGG = "https://farmalogg.no/produktkode"
SAFEST_IDS = "http://legemiddelverket.no/fhir/SAFEST/"
OURS = "ours: no published system covers it (grunndata.no)"
NS_BASE_FEST = s.NS_BASE + "fest"


def _fest(served: str, source: str, *aliases: str, ours: bool = False, meaning: str = "") -> IdentifierKind:
    catalogue = served.rsplit("/", 1)[-1].removeprefix("fest")
    name = f"FEST {catalogue} Id" + (f" ({meaning})" if meaning else "")
    return IdentifierKind(name, served, source, aliases, fest_id, ours)


MERKEVARE = _fest(
    s.NS_MERKEVARE,
    LMDI.format("no-basis-fest-legemiddelmerkevare"),
    HL7NO + "festLegemiddelmerkevare",
    KAT + "LegemiddelMerkevare",
    NORDIC_EPI + "LegemiddelMerkevareID",
    meaning="brand: a product's strength and form",
)
PAKNING = _fest(
    s.NS_PAKNING,
    LMDI.format("no-basis-fest-legemiddelpakning"),
    HL7NO + "festLegemiddelpakning",
    KAT + "LegemiddelPakning",
    NORDIC_EPI + "LegemiddelPakningID",
    meaning="package",
)
LEGEMIDDELVIRKESTOFF = _fest(
    s.NS_LEGEMIDDELVIRKESTOFF,
    LMDI.format("no-basis-fest-legemiddelvirkestoff"),
    HL7NO + "festLegemiddelvirkestoff",
    meaning="substance-based product",
)
DOSE = _fest(
    s.NS_DOSE, LMDI.format("no-basis-fest-legemiddeldose"), KAT + "Legemiddeldose", meaning="single dose"
)
VIRKESTOFF = _fest(
    s.NS_VIRKESTOFF,
    OURS + "; LMDI publishes no Virkestoff system, and http://dmp.no/fhir/NamingSystem/festVirkestoff, "
    "which we served before, was minted by us under DMP's domain",
    "http://dmp.no/fhir/NamingSystem/festVirkestoff",
    ours=True,
    meaning="substance",
)
FEST_ID = IdentifierKind(
    "Any FEST Id, where FEST does not fix the target catalogue", s.NS_FEST_ID, OURS, (), fest_id, ours=True
)
_OURS_FEST = (
    (s.NS_VIRKESTOFF_MED_STYRKE, "substance with strength"),
    (s.NS_ORDINERING_VIRKESTOFF, "substance-based ordering"),
    (s.NS_INTERAKSJON, "interaction"),
    (s.NS_BYTTEGRUPPE, "substitution group"),
    (s.NS_VILKAR, "condition"),
    (s.NS_DIAGNOSE, "diagnosis"),
    (s.NS_REFUSJONSGRUPPE, "reimbursement group"),
)

VARENR = IdentifierKind(
    "Varenummer (Nordic article number)",
    s.NS_VARENR,
    LMDI_CODING.format("Varenummer"),
    ("https://farmalogg.no/varenummer",),  # Nordic ePI
    varenr,
)
LMR = IdentifierKind(
    "LMR løpenummer (the LMR number of a Legemiddeldose)",
    s.NS_LMR,
    LMDI_CODING.format("FestLmrLopenr"),
    (),
    as_given,
)
GTIN = IdentifierKind(
    "GTIN (the pack's barcode; FEST Ean, Farmalogg's NTIN)",
    s.NS_GTIN,
    "HL7 terminology (THO): GS1 GTIN, OID 1.3.160",
    (FARMALOGG, FARMALOGG + "/GTIN", FARMALOGG + "/NTIN", "urn:oid:1.3.160"),
    gtin,
)

PHPID = IdentifierKind(
    "PhPID (ISO 11616), levels 1-4, computed by grunndata; experimental (docs/phpid.md)",
    s.NS_PHPID,
    OURS,
    (),
    phpid,
    ours=True,
    experimental=True,
)

KINDS: tuple[IdentifierKind, ...] = (
    MERKEVARE,
    PAKNING,
    LEGEMIDDELVIRKESTOFF,
    DOSE,
    VIRKESTOFF,
    *(_fest(system, OURS, ours=True, meaning=meaning) for system, meaning in _OURS_FEST),
    FEST_ID,
    PHPID,
    VARENR,
    LMR,
    GTIN,
    *(
        IdentifierKind(
            f"SAFEST {r4type} id",
            SAFEST_IDS + r4type,
            "DMP's SAFEST (R4 examples, github.com/HL7Norway/SAFEST)",
            (),
            as_given,
        )
        for r4type in (
            "MedicinalProduct",
            "MedicinalProductPackaged",
            "MedicinalProductManufactured",
            "MedicinalProductPharmaceutical",
            "MedicinalProductIngredient",
            "MedicinalProductAuthorization",
            "SubstanceSpecification",
        )
    ),
)
"""Every identifier kind we normalise. A system in none of them is served and searched as given."""

GENERIC_KINDS: dict[str, IdentifierKind] = {
    "MedicinalProductDefinition": MERKEVARE,
    "PackagedProductDefinition": PAKNING,
    "ManufacturedItemDefinition": DOSE,
    "SubstanceDefinition": VIRKESTOFF,
}
"""The FEST catalogue the generic FEST system names, by the type of the resource carrying the id;
on any other type it is `FEST_ID`'s (any FEST Id)."""

FEST_ID_SYSTEMS = tuple(k.served for k in KINDS if k.value is fest_id)
"""Every served system whose values are FEST Ids: what a generic FEST id may be, searched on a type
whose FEST catalogue the generic system does not fix."""


def _key(system: str) -> str:
    return system.strip().rstrip("/").casefold()


_BY_SYSTEM: dict[str, IdentifierKind] = {}
for _kind in KINDS:
    for _system in (_kind.served, *_kind.aliases):
        if _key(_system) in _BY_SYSTEM:
            raise ValueError(f"{_system} is in two identifier kinds")
        _BY_SYSTEM[_key(_system)] = _kind
_GENERIC = _key(FEST_GENERIC)


def kind_of(system: str, rtype: str | None = None) -> IdentifierKind | None:
    """The kind a system names (any case, a trailing ``/`` ignored) on a resource of `rtype`."""
    key = _key(system)
    if key == _GENERIC:
        return GENERIC_KINDS.get(rtype or "", FEST_ID)
    return _BY_SYSTEM.get(key)


def served(system: str, value: str, rtype: str | None = None) -> tuple[str, str] | None:
    """The served (system, value) of an identifier in an accepted system; None when the system is
    not one we know, or the value is not well formed for its kind (it stays as sent)."""
    kind = kind_of(system, rtype)
    if kind is None:
        return None
    value_form = kind.value(value)
    return (kind.served, value_form) if value_form is not None else None


_VALUE_FORMATS: tuple[Format, ...] = (fest_id, gtin, varenr)


def value_forms(value: str) -> tuple[str, ...]:
    """The value, and its served form under every value format that takes it: what a search
    without a system matches (a GUID also as ``ID_`` + GUID, 14 GTIN digits also as 13)."""
    found = [value]
    for value_format in _VALUE_FORMATS:
        form = value_format(value)
        if form is not None and form not in found:
            found.append(form)
    return tuple(found)


def searched(system: str, value: str | None, rtype: str) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """The (systems, values) an identifier token ``system|value`` of a search on `rtype` matches;
    values None: any. An accepted system and a well-formed value: the served pair; the generic
    FEST system: the value in every FEST id system (a GUID names one entry in all of FEST). A
    system we do not know, or a value not well formed: as given. `system|` alone: the served
    system and the one given (which holds the values that were not well formed)."""
    kind = kind_of(system, rtype)
    if kind is None or not system:
        return (system,), (value,) if value is not None else None
    systems = FEST_ID_SYSTEMS if _key(system) == _GENERIC else (kind.served,)
    if value is None:
        return (*systems, system) if system not in systems else systems, None
    form = kind.value(value)
    if form is None:
        return (system,), (value,)
    return systems, (form,)


def markdown_table() -> str:
    """The table as README shows it (a test compares): kind, served system, accepted aliases, value.
    Kinds alike but for their catalogue or type (ours with no alias, SAFEST's) share a row."""
    rows = ["| kind | served system (source) | also accepted | value served |", "|---|---|---|---|"]
    grouped: dict[str, list[IdentifierKind]] = {}
    for kind in KINDS:
        plain_fest = kind.ours and not kind.aliases and kind not in (FEST_ID, PHPID)
        group = "ours" if plain_fest else "safest" if kind.served.startswith(SAFEST_IDS) else kind.served
        grouped.setdefault(group, []).append(kind)
    for group, kinds in grouped.items():
        kind = kinds[0]
        aliases = [f"`{a}`" for a in kind.aliases]
        on = [t for t, k in GENERIC_KINDS.items() if k is kind] or (
            ["other types"] if kind is FEST_ID else []
        )
        if on:
            aliases.append(f"`{FEST_GENERIC}` (on {', '.join(on)})")
        source = "ours" if kind.ours else kind.source.split(" (")[0].split(",")[0]
        name, served = kind.name, f"`{kind.served}`"
        if group == "ours":
            name = "FEST " + ", ".join(k.name.split(" ")[1] for k in kinds) + " Ids"
            served = f"`{NS_BASE_FEST}<catalogue>`"
        elif group == "safest":
            name, served = "SAFEST ids", f"`{SAFEST_IDS}<R4 type>`"
        rows.append(
            f"| {name} | {served} ({source}) | {', '.join(aliases) or '-'} | {VALUE_FORMS[kind.value]} |"
        )
    return "\n".join(rows) + "\n"
