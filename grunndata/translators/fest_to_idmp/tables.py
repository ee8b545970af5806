"""The FEST -> IDMP mapping: one table per FEST payload kind, in XSD element order.

Read a table as "FEST element -> where it goes". `To` rows name the FHIR element, `Ext` rows
the extension (``fest-<element>``, the generic tree encoding of values.tree) that carries what
IDMP has no place for, `Into` rows a FHIR element filled by the nested table, `Custom` rows a
function below. Shared FEST structures (the typeLegemiddel base fields, AdministreringLegemiddel)
are written once and placed in each table. Everything here also feeds the coverage report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from grunndata.fhir import systems as s
from grunndata.m30 import Node, child, child_order
from grunndata.translators.fest_to_idmp import values as v
from grunndata.translators.fest_to_idmp.rules import (
    Context,
    Custom,
    Ext,
    Into,
    Row,
    Rule,
    Table,
    To,
    locate,
    parse_path,
    walk,
)
from grunndata.translators.fest_to_idmp.schema import oppf_xsd
from grunndata.translators.fest_to_idmp.values import Json, NotRepresentable, XsdNode
from grunndata.translators.shape import holder_authorization, packaging_property, strength_as_ratio

MPD = "MedicinalProductDefinition"
PPD = "PackagedProductDefinition"
MID = "ManufacturedItemDefinition"
APD = "AdministrableProductDefinition"
ING = "Ingredient"
RA = "RegulatedAuthorization"
SD = "SubstanceDefinition"
CUD = "ClinicalUseDefinition"
CS = "CodeSystem"
BASIC = "Basic"


@dataclass(frozen=True)
class Mapping:
    """How one FEST payload kind becomes FHIR: its primary resource and table."""

    kind: str  # payload element: LegemiddelMerkevare, VirkestoffMedStyrke, Info (Kodeverk), ...
    resource: str  # the primary resource type; its id is fhir_id(entry key)
    table: Table
    summary: str  # one line for the report
    makes: tuple[str, ...] = ()  # further resource types the entry yields


def _code(system: str, code: str, display: str | None = None) -> Json:
    c: Json = {"system": system, "code": code}
    if display is not None:
        c["display"] = display
    return {"coding": [c]}


def _status_concept(ctx: Context) -> Json:
    """FHIR publication status from the FEST Status: A (active) -> active, U (expired) -> retired."""
    return _code(s.PUBLICATION_STATUS, "active" if ctx.entry.status == "A" else "retired")


def _status_code(ctx: Context) -> str:
    return "active" if ctx.entry.status == "A" else "inactive"


def _set_status_concept(obj: Json, ctx: Context) -> None:
    obj["status"] = _status_concept(ctx)


STATUS_NOTE = "from the entry's Status: A -> active, U -> retired/inactive"
DOSE_FORM_NOTE = (
    "dose form (CV 7448); EDQM's code beside it where our ConceptMap calls the two equivalent "
    "(translators/shape.py), also on the item and administrable form that copy it"
)

# --- typeLegemiddel: the base of LegemiddelMerkevare, Legemiddelpakning, LegemiddelVirkestoff and
#     Legemiddeldose, whose fields come before the subtype's own Id -----------------------------------

REFUSJON_NOTE = (
    "reimbursement (no IDMP element); RefRefusjonsgruppe is a Reference by identifier "
    f"({s.NS_REFUSJONSGRUPPE}) to the Basic of the Refusjonshjemmel that holds the group"
)
BYTTEGRUPPE_NOTE = "substitution group (no IDMP element); RefByttegruppe -> Basic made from the Byttegruppe"
VILKAR_NOTE = "conditions (no IDMP element): Reference to the Basic made from the Vilkar"

_ADMINISTRERING_REST: tuple[Rule, ...] = (
    Ext("KanKnuses", "can be crushed (CS)"),
    Ext("KanApnes", "can be opened (CS)"),
    Ext("Bolus"),
    Ext("InjeksjonshastighetBolus"),
    Ext("Deling", "can be divided (CS)"),
    Ext("EnhetDosering", "dosing unit (CV 7480)"),
    Ext("Kortdose", "short dosing codes (CV 7478); the StrDosering catalogue is their Basic"),
    Ext("ForhandsregelInntak", "intake precautions (CV 7479)"),
    Ext("BruksomradeEtikett", "label indication (CV 7488)"),
)
_MIXING = (
    Ext("Blandingsveske", "is a mixing fluid"),
    Ext("RefBlandingsveske", "mixing fluids (logical Reference by FEST Id)"),
)

ADMINISTRERING_APD = Table(
    (
        *_MIXING,
        To("Administrasjonsvei", "routeOfAdministration[].code", v.concept, "route (CV 7477)"),
        *_ADMINISTRERING_REST,
    )
)
ADMINISTRERING_MPD = Table(
    (*_MIXING, To("Administrasjonsvei", "route[]", v.concept, "route (CV 7477)"), *_ADMINISTRERING_REST)
)

_LEGEMIDDEL_EXTENSIONS_A: tuple[Rule, ...] = (Ext("RefVilkar", VILKAR_NOTE),)
_LEGEMIDDEL_EXTENSIONS_B: tuple[Rule, ...] = (
    Ext("TypeSoknadSlv", "type of application to NoMA (CS)"),
    Ext("Opioidsoknad", "opioid application"),
    Ext("Refusjon", REFUSJON_NOTE),
    Ext("PakningByttegruppe", BYTTEGRUPPE_NOTE),
)


def _legemiddel_as_product(administrering: Rule) -> tuple[Rule, ...]:
    """typeLegemiddel on a MedicinalProductDefinition (merkevare, legemiddel virkestoff)."""
    return (
        To("Atc", "classification[]", v.concept, "ATC, system http://www.whocc.no/atc"),
        To("NavnFormStyrke", "name[0].productName", v.text, "name, form and strength: the full name"),
        To(
            "Reseptgruppe",
            "legalStatusOfSupply",
            v.cs_concept,
            f"prescription group, system {s.RESEPTGRUPPE}",
        ),
        To("LegemiddelformKort", "combinedPharmaceuticalDoseForm.coding[]", v.cv, DOSE_FORM_NOTE),
        *_LEGEMIDDEL_EXTENSIONS_A,
        To("Preparattype", "type", v.cs_concept, "regulatory type of product (CS): 7 Legemiddel, 11 ..."),
        *_LEGEMIDDEL_EXTENSIONS_B,
        administrering,
        To(
            "SvartTrekant",
            "additionalMonitoringIndicator",
            v.concept,
            "black triangle = additional monitoring",
        ),
    )


def _legemiddel_as(resource: str) -> tuple[Rule, ...]:
    """typeLegemiddel on a package (PPD) or unit dose (MID): what they cannot hold goes to extensions."""
    return (
        Ext("Atc", f"ATC ({resource} has no classification); valueCoding system http://www.whocc.no/atc"),
        To("NavnFormStyrke", "name", v.text),
        To("Reseptgruppe", "legalStatusOfSupply[].code", v.cs_concept, f"system {s.RESEPTGRUPPE}")
        if resource == PPD
        else Ext("Reseptgruppe", f"prescription group, valueCoding system {s.RESEPTGRUPPE}"),
        To("LegemiddelformKort", "manufacturedDoseForm.coding[]", v.cv, DOSE_FORM_NOTE)
        if resource == MID
        else Ext(
            "LegemiddelformKort", "dose form (CV 7448); the merkevare's MID has it as manufacturedDoseForm"
        ),
        *_LEGEMIDDEL_EXTENSIONS_A,
        Ext("Preparattype"),
        *_LEGEMIDDEL_EXTENSIONS_B,
        Ext("AdministreringLegemiddel", "the merkevare's AdministrableProductDefinition has the route"),
        Ext("SvartTrekant", "black triangle (CV)"),
    )


# --- Ingredients of a product: one Ingredient per SortertVirkestoffMedStyrke/-UtenStyrke -------------


def _product_ingredient(ingredient: Json, ctx: Context) -> None:
    ingredient["status"] = _status_code(ctx)
    ingredient["for"] = [{"reference": f"{ctx.primary['resourceType']}/{ctx.id}"}]
    ingredient["role"] = _code(s.INGREDIENT_ROLE, "100000072072", "Active")


def _substance_of_vms(node: Node, ingredient: Json, ctx: Context, xsd: XsdNode, occurrence: int) -> None:
    """The product's Ingredient gets the FEST VirkestoffMedStyrke Id as identifier, and the substance
    and strength of that VirkestoffMedStyrke (looked up; a copy of its own Ingredient's substance)."""
    fest_id = v.text(node)
    ingredient["identifier"] = {"system": s.NS_VIRKESTOFF_MED_STYRKE, "value": fest_id}
    found = ctx.lookup.get(fest_id)
    if found is None or found.kind != "VirkestoffMedStyrke":
        absent = {"url": s.DATA_ABSENT_REASON, "valueCode": "unknown"}
        ingredient["substance"] = {"code": {"concept": {"extension": [absent]}}}
        return
    standalone: Json = {"resourceType": ING, "id": ctx.id}
    sub = Context(found, ctx.lookup, standalone)
    walk(
        found.payload[0],
        VIRKESTOFF_MED_STYRKE,
        standalone,
        sub,
        _payload_xsd("Virkestoff", "VirkestoffMedStyrke"),
    )
    _strengths_as_ratios(standalone, ctx)
    ingredient["substance"] = standalone["substance"]


SORTERING_NOTE = "order among the product's substances, on the Ingredient"
INGREDIENT_DERIVED = (
    ("Ingredient.id", "the product's id + -<n>, n counting its Ingredients"),
    ("Ingredient.status", STATUS_NOTE),
    ("Ingredient.for", "the product; a merkevare's also names its manufactured item and administrable form"),
    ("Ingredient.role", "Active (http://hl7.org/fhir/ingredient-role 100000072072)"),
)
SORTERT_MED_STYRKE = Table(
    (
        Ext("Sortering", SORTERING_NOTE),
        Custom(
            "RefVirkestoffMedStyrke",
            f"Ingredient.identifier ({s.NS_VIRKESTOFF_MED_STYRKE}); Ingredient.substance",
            _substance_of_vms,
            "the substance and strength are those of the looked-up VirkestoffMedStyrke",
        ),
    ),
    derived=INGREDIENT_DERIVED,
    start=_product_ingredient,
)
SORTERT_UTEN_STYRKE = Table(
    (Ext("Sortering", SORTERING_NOTE), To("RefVirkestoff", "substance.code.reference", v.reference)),
    derived=INGREDIENT_DERIVED,
    start=_product_ingredient,
)
_INGREDIENTS = (
    Into(
        "SortertVirkestoffMedStyrke", "", SORTERT_MED_STYRKE, "one Ingredient (for -> this product)", new=ING
    ),
    Into(
        "SortertVirkestoffUtenStyrke",
        "",
        SORTERT_UTEN_STYRKE,
        "one Ingredient (for -> this product)",
        new=ING,
    ),
)


# --- LegemiddelMerkevare -> MedicinalProductDefinition (+ MID, APD, Ingredients) -----------------------


def _invented_name(node: Node) -> Json:
    return {"part": v.text(node), "type": _code(s.NAME_PART_TYPE, "InventedNamePart", "Invented name part")}


def _merkevare_finish(mpd: Json, ctx: Context) -> None:
    mpd["status"] = _status_concept(ctx)
    mid = ctx.resource(MID)
    mid["status"] = _status_code(ctx)
    mid["manufacturedDoseForm"] = _dose_form(mpd)
    mpd["comprisedOf"] = [{"reference": f"{MID}/{ctx.id}"}]
    apd = ctx.secondary.get(APD)
    if apd is not None:
        apd["status"] = _status_code(ctx)
        apd["formOf"] = [{"reference": f"{MPD}/{ctx.id}"}]
        apd["administrableDoseForm"] = _dose_form(mpd)
        apd["producedFrom"] = [{"reference": f"{MID}/{ctx.id}"}]
    mid["identifier"] = [dict(i) for i in mpd.get("identifier", ()) if i.get("system") == s.NS_MERKEVARE]
    parts = [MPD, MID] + ([APD] if apd is not None else [])
    for ingredient in ctx.extra:
        if ingredient["resourceType"] == ING:
            ingredient["for"] = [{"reference": f"{part}/{ctx.id}"} for part in sorted(parts)]
    holder = _produsent(mpd)
    if holder is not None:
        ctx.resource(RA).update(holder_authorization(ctx.id, f"{MPD}/{ctx.id}", holder))


def _produsent(mpd: Json) -> str | None:
    """ProduktInfo/Produsent: in FEST the name of the marketing-authorisation holder (Roche
    Registration Ltd, Orion Corporation - Espoo), kept on the product and named as its holder."""
    for info in mpd.get("extension", ()):
        if info.get("url") == s.ext_url("ProduktInfo"):
            for part in info.get("extension", ()):
                if part.get("url") == "Produsent" and str(part.get("valueString") or "").strip():
                    return str(part["valueString"])
    return None


def _dose_form(mpd: Json) -> Json:
    """The product's dose form for its MID and APD: the codings and text, not the fest-* extensions
    that keep FEST's own elements (they belong to the product, and are defined on it only)."""
    form = mpd.get("combinedPharmaceuticalDoseForm") or {}
    copy: Json = {k: (list(val) if isinstance(val, list) else val) for k, val in form.items()}
    kept = [e for e in copy.pop("extension", ()) if not str(e.get("url", "")).startswith(s.EXT_BASE)]
    if kept:
        copy = {"extension": kept, **copy}
    if not copy:
        return {"extension": [{"url": s.DATA_ABSENT_REASON, "valueCode": "unknown"}]}
    return copy


MERKEVARE = Table(
    (
        *_legemiddel_as_product(
            Into(
                "AdministreringLegemiddel",
                APD,
                ADMINISTRERING_APD,
                "administration: the AdministrableProductDefinition (id = the merkevare's)",
            )
        ),
        To("Id", "identifier[]", v.Identifier(s.NS_MERKEVARE), "and id = fhir_id(Id)"),
        To(
            "Varenavn",
            "name[0].part[]",
            _invented_name,
            "brand name, part type InventedNamePart (and SPOR's 220000000002 beside it)",
        ),
        To("LegemiddelformLang", "combinedPharmaceuticalDoseForm.text", v.text, "dose form in full"),
        *_INGREDIENTS,
        Ext("Smak", "taste (CS)"),
        Ext("ProduktInfo", "warning triangle, reference product, vaccine standard, producer"),
        Ext("Reseptgyldighet", "prescription validity by sex (xs:duration as valueString)"),
        Ext("Hjelpestoff", "excipients by name"),
        Ext("Preparatomtaleavsnitt", "SPC sections and their links"),
    ),
    derived=(
        ("MedicinalProductDefinition.status", STATUS_NOTE),
        ("MedicinalProductDefinition.comprisedOf", "the ManufacturedItemDefinition below"),
        ("ManufacturedItemDefinition (id = the merkevare's)", "the product's manufactured item"),
        ("ManufacturedItemDefinition.status", STATUS_NOTE),
        ("ManufacturedItemDefinition.identifier", "the merkevare's Id, as SAFEST's items carry it"),
        ("ManufacturedItemDefinition.manufacturedDoseForm", "copy of combinedPharmaceuticalDoseForm"),
        ("AdministrableProductDefinition.status, formOf, producedFrom", "the product and its item"),
        ("AdministrableProductDefinition.administrableDoseForm", "copy of combinedPharmaceuticalDoseForm"),
        (
            "RegulatedAuthorization (id = the merkevare's)",
            "subject = the product, holder = a contained Organization named by ProduktInfo/Produsent",
        ),
    ),
    finish=_merkevare_finish,
)


# --- Legemiddelpakning -> PackagedProductDefinition ------------------------------------------------


def _marketing_status(status: Json, ctx: Context) -> None:
    status["country"] = _code(s.COUNTRY, "NO")
    names = {e["url"] for e in status.get("extension", ())}
    if "end" in status.get("dateRange", {}):
        status["status"] = _code(
            s.CS_MARKETING_STATUS, "avregistrert", "Has a deregistration date (AvregDato)"
        )
    elif s.ext_url("MidlUtgattDato") in names:
        status["status"] = _code(
            s.CS_MARKETING_STATUS, "midlertidig-utgatt", "Temporarily unavailable (MidlUtgattDato)"
        )
    else:
        status["status"] = _code(s.CS_MARKETING_STATUS, "markedsfort", "Marketed")


MARKEDSFORINGSINFO = Table(
    (
        Ext("VarenrUtgaende", "the varenr this package replaces"),
        To("Markedsforingsdato", "dateRange.start", v.fhir_date, "marketed from"),
        To("AvregDato", "dateRange.end", v.fhir_date, "deregistered from"),
        Ext("MidlUtgattDato", "temporarily unavailable since"),
        Ext("OmpakkerAvEndose", "repackager of unit doses"),
    ),
    derived=(
        ("country", "NO"),
        (
            "status",
            f"{s.CS_MARKETING_STATUS}: avregistrert | midlertidig-utgatt | markedsfort, from the dates; "
            "DMP's code beside markedsfort (5) and midlertidig-utgatt (6) (translators/shape.py)",
        ),
    ),
    finish=_marketing_status,
)

PAKNINGSINFO = Table(
    (
        To(
            "RefLegemiddelMerkevare",
            "PackagedProductDefinition.packageFor[@]",
            v.reference,
            "the merkevare (MPD)",
        ),
        Ext("Pakningsstr", "pack size as printed"),
        To(
            "EnhetPakning",
            "PackagedProductDefinition.containedItemQuantity[@]",
            v.unit_coding,
            "unit = DN, system = S, code = V",
        ),
        To("Pakningstype", "type", v.concept, "package type (CV 7449)"),
        Ext("Multippel"),
        Ext("Antall"),
        To(
            "Mengde",
            "PackagedProductDefinition.containedItemQuantity[@]",
            v.quantity_value,
            "the value: pack size",
        ),
        Ext("Sortering"),
        Ext("DDD", "defined daily dose (PQ)"),
        Ext("Statistikkfaktor"),
        Ext("Pakningskomponent", "components of a multi-part package"),
    ),
    derived=(
        (
            "containedItem",
            "item = the merkevare's ManufacturedItemDefinition, amount = containedItemQuantity",
        ),
    ),
)


def _pakning_finish(ppd: Json, ctx: Context) -> None:
    ppd["status"] = _status_concept(ctx)
    gtins = [i for i in ppd.get("identifier", ()) if i["system"] == s.NS_GTIN]
    if gtins:
        ppd.setdefault("packaging", {})["identifier"] = [dict(i) for i in gtins]
    _retail_level(ppd.get("packaging"))
    count = sum(1 for c in ctx.entry.payload[0][3] or () if c[0] == "Pakningsinfo")
    products, sizes = ppd.get("packageFor", []), ppd.get("containedItemQuantity", [])
    if not count or len(products) != count:
        return
    levels = [ppd["packaging"]] if count == 1 else ppd["packaging"]["packaging"]
    for level, product, size in zip(levels, products, sizes + [None] * count, strict=False):
        item: Json = {
            "item": {"reference": {**product, "reference": product["reference"].replace(MPD, MID, 1)}}
        }
        if size and "value" in size:
            item["amount"] = dict(size)
        level["containedItem"] = [item]


def _retail_level(packaging: Json | None) -> None:
    """A Legemiddelpakning is the retail article (a varenr a pharmacy sells): its outer level is the
    retail pack and is no unit dose (FEST's unit doses are Legemiddeldose entries naming the packages
    they come in), the levels inside it are no retail pack, as DMP's SAFEST examples flag theirs."""
    if packaging is None:
        return
    flags = packaging.setdefault("property", [])
    flags.append(packaging_property("retail-pack", {"valueBoolean": True}))
    flags.append(packaging_property("unit-dose", {"valueBoolean": False}))
    for inner in packaging.get("packaging", ()):
        inner.setdefault("property", []).append(packaging_property("retail-pack", {"valueBoolean": False}))


PAKNING = Table(
    (
        *_legemiddel_as(PPD),
        To("Id", "identifier[]", v.Identifier(s.NS_PAKNING), "and id = fhir_id(Id)"),
        To("Varenr", "identifier[]", v.Identifier(s.NS_VARENR), "Nordic article number"),
        To("Ean", "identifier[]", v.Identifier(s.NS_GTIN), "GTIN; copied to packaging.identifier"),
        Ext("IkkeKonservering", "without preservative"),
        To(
            "Oppbevaring",
            "packaging.shelfLifeStorage[0].specialPrecautionsForStorage[]",
            v.cs_concept,
            "storage (CS)",
        ),
        Into(
            "Pakningsinfo",
            "packaging",
            PAKNINGSINFO,
            "one per product in the package",
            many="packaging.packaging[]",
        ),
        Ext("PakningsinfoResept", "package info for the prescription"),
        Ext("PrisVare", "prices (no IDMP element): Type (CV 7453), Pris as valueMoney, validity"),
        Into("Markedsforingsinfo", "marketingStatus[]", MARKEDSFORINGSINFO),
        Ext("Preparatomtaleavsnitt", "SPC sections and their links"),
    ),
    derived=(
        ("PackagedProductDefinition.status", STATUS_NOTE),
        (
            "PackagedProductDefinition.packaging.identifier",
            "copy of the GTINs (IDMP data carrier identifier)",
        ),
        (
            "PackagedProductDefinition.packaging.property",
            "retail-pack true and unit-dose false on the outer level, retail-pack false inside; "
            "package-level (DMP's PackageLevel) from how the levels nest (translators/shape.py)",
        ),
    ),
    finish=_pakning_finish,
)


# --- Virkestoff -> SubstanceDefinition; VirkestoffMedStyrke -> Ingredient -----------------------------


@dataclass(frozen=True)
class SubstanceName:
    """A converter: a substance name in `language` (preferred: the Norwegian one)."""

    language: str
    preferred: bool

    def __call__(self, node: Node) -> Json:
        out: Json = {"name": v.text(node)}
        if self.preferred:
            out["preferred"] = True
        out["language"] = [_code(s.LANGUAGE, self.language)]
        return out


def _salt(node: Node) -> Json:
    return {
        "substanceDefinitionReference": v.reference(node),
        "type": _code(
            s.CS_REFERENCE, "RefVirkestoff", "Salt or ester of this substance (FEST RefVirkestoff)"
        ),
    }


VIRKESTOFF = Table(
    (
        To("Id", "identifier[]", v.Identifier(s.NS_VIRKESTOFF), "and id = fhir_id(Id)"),
        To("Navn", "name[]", SubstanceName("nb", True), "Norwegian name, preferred, language nb"),
        To("NavnEngelsk", "name[]", SubstanceName("en", False), "English name, language en"),
        To("RefVirkestoff", "relationship[]", _salt, "salt or ester: substanceDefinitionReference"),
        Ext("Refusjon", REFUSJON_NOTE),
    ),
    derived=(("SubstanceDefinition.status", STATUS_NOTE),),
    start=_set_status_concept,
)


def _denominator(node: Node, ingredient: Json, ctx: Context, xsd: XsdNode, occurrence: int) -> None:
    strength = locate(ingredient, _STRENGTH, 0)
    try:
        denominator = v.quantity(node)
    except NotRepresentable:
        strength.setdefault("extension", []).append(v.tree(node, xsd, s.ext_url(node[0])))
        return
    ratio: Json = {}
    if "presentationQuantity" in strength:
        ratio["numerator"] = strength.pop("presentationQuantity")
    ratio["denominator"] = denominator
    strength["presentationRatio"] = ratio


_STRENGTH = parse_path("substance.strength[0]")[1]


def _strengths_as_ratios(ingredient: Json, ctx: Context) -> None:
    for strength in ingredient.get("substance", {}).get("strength", ()):
        strength_as_ratio(strength)


def _standalone_ingredient(ingredient: Json, ctx: Context) -> None:
    ingredient["status"] = _status_code(ctx)
    ingredient["role"] = _code(s.INGREDIENT_ROLE, "100000072072", "Active")


VIRKESTOFF_MED_STYRKE = Table(
    (
        To("Id", "identifier", v.Identifier(s.NS_VIRKESTOFF_MED_STYRKE), "and id = fhir_id(Id)"),
        To("Styrke", "substance.strength[0].presentationQuantity", v.quantity, "strength (PQ)"),
        Custom(
            "StyrkeNevner",
            "Ingredient.substance.strength.presentationRatio.denominator",
            _denominator,
            "with a denominator, Styrke becomes presentationRatio.numerator",
            keeps_at="substance.strength[0]",
        ),
        To("RefVirkestoff", "substance.code.reference", v.reference, "the SubstanceDefinition"),
        Ext("AlternativStyrke", at="substance.strength[0]"),
        Ext("AlternativStyrkeNevner", at="substance.strength[0]"),
        Ext("Styrkeoperator", "strength operator (CV 7445), L = equal", at="substance.strength[0]"),
        Ext("StyrkeOvreVerdi", "upper strength for a range", at="substance.strength[0]"),
        Ext("AtcKombipreparat", "ATC of the combination", at="substance.strength[0]"),
    ),
    derived=(
        ("Ingredient.status", STATUS_NOTE),
        ("Ingredient.role", "Active (http://hl7.org/fhir/ingredient-role 100000072072)"),
        (
            "Ingredient.for",
            "none: FEST's substance with strength is shared; each product's own Ingredient copies it",
        ),
        (
            "Ingredient.substance.strength.presentationRatio",
            "always a Ratio: without StyrkeNevner over 1 (UCUM 1, no unit text); FEST's unit text kept "
            "as unit, UCUM system and code beside it where certain (translators/shape.py STRENGTH_UNITS)",
        ),
    ),
    start=_standalone_ingredient,
    finish=_strengths_as_ratios,
)


# --- LegemiddelVirkestoff and OrdineringVirkestoff -> substance-based MedicinalProductDefinition -------


def _cross_reference(node: Node) -> Json:
    return {"product": {"reference": v.reference(node)}, "type": _code(s.CS_REFERENCE, node[0])}


LEGEMIDDEL_VIRKESTOFF = Table(
    (
        *_legemiddel_as_product(
            Into(
                "AdministreringLegemiddel",
                "",
                ADMINISTRERING_MPD,
                "route on the product, the rest in extensions",
            )
        ),
        To("Id", "identifier[]", v.Identifier(s.NS_LEGEMIDDELVIRKESTOFF), "and id = fhir_id(Id)"),
        *_INGREDIENTS,
        To(
            "RefLegemiddelMerkevare",
            "crossReference[]",
            _cross_reference,
            "the brands; type RefLegemiddelMerkevare",
        ),
        Ext("RefPakning", "the packages (MPD has no reference to a PPD): valueReference"),
        Ext("ForskrivningsenhetResept", "prescribing unit (CV)"),
    ),
    derived=(("MedicinalProductDefinition.status", STATUS_NOTE),),
    start=_set_status_concept,
)

ORDINERING_VIRKESTOFF = Table(
    (
        To("Id", "identifier[]", v.Identifier(s.NS_ORDINERING_VIRKESTOFF), "and id = fhir_id(Id)"),
        To("NavnVirkestoffOrdinering", "name[0].productName", v.text),
        To("LegemiddelformKort", "combinedPharmaceuticalDoseForm.coding[]", v.cv, DOSE_FORM_NOTE),
        To("Reseptgruppe", "legalStatusOfSupply", v.cs_concept, f"system {s.RESEPTGRUPPE}"),
        Ext("RefByttegruppe", BYTTEGRUPPE_NOTE),
        Ext("EnhetOrdinering", "ordering unit (CV 7480)"),
        To("Atc", "classification[]", v.concept, "ATC"),
        Into(
            "AdministreringLegemiddel", "", ADMINISTRERING_MPD, "route on the product, the rest in extensions"
        ),
        To("SvartTrekant", "additionalMonitoringIndicator", v.concept),
        To("RefLegemiddelVirkestoff", "crossReference[]", _cross_reference, "type RefLegemiddelVirkestoff"),
        To("RefLegemiddelDose", "comprisedOf[]", v.reference, "the unit doses (ManufacturedItemDefinition)"),
    ),
    derived=(("MedicinalProductDefinition.status", STATUS_NOTE),),
    start=_set_status_concept,
)


# --- Legemiddeldose -> ManufacturedItemDefinition ------------------------------------------------------


def _dose_finish(mid: Json, ctx: Context) -> None:
    mid["status"] = _status_code(ctx)
    if "manufacturedDoseForm" not in mid:  # required in FHIR, optional in FEST
        mid["manufacturedDoseForm"] = {"extension": [{"url": s.DATA_ABSENT_REASON, "valueCode": "unknown"}]}


LEGEMIDDELDOSE = Table(
    (
        *_legemiddel_as(MID),
        To("Id", "identifier[]", v.Identifier(s.NS_DOSE), "and id = fhir_id(Id)"),
        To("LmrLopenr", "identifier[]", v.Identifier(s.NS_LMR), "LMR serial number"),
        Ext("Mengde", "amount of one dose (PQ)"),
        Ext("Pakningstype", "package type (CV 7449)"),
        Ext("RefLegemiddelMerkevare", "the merkevare (MPD): valueReference"),
        Ext("RefPakning", "the packages (PPD): valueReference"),
        Ext("Pakningskomponent"),
        Ext("EnhetOrdinering", "ordering unit (CV 7480)"),
    ),
    derived=(
        ("ManufacturedItemDefinition.status", STATUS_NOTE),
        (
            "ManufacturedItemDefinition.manufacturedDoseForm",
            "data-absent-reason when FEST has no LegemiddelformKort",
        ),
    ),
    finish=_dose_finish,
)


# --- Interaksjon -> ClinicalUseDefinition ----------------------------------------------------------------


_INTERACTANT = "ClinicalUseDefinition.interaction.interactant"


def _interactants(node: Node, cud: Json, ctx: Context, xsd: XsdNode, occurrence: int) -> None:
    """One interactant per ATC or RefVirkestoff of each Substans, grouped by extension fest-Substansgruppe."""
    interactants = cud.setdefault("interaction", {}).setdefault("interactant", [])
    group_name: str | None = None
    substans_index = 0
    for part in node[3] or ():
        if part[0] == "Navn":
            group_name = v.text(part)
            continue
        if part[0] != "Substans":
            raise ValueError(f"Substansgruppe cannot hold {part[0]}")
        substans_index += 1
        label: str | None = None
        atc: Json | None = None
        refs: list[Json] = []
        for item in part[3] or ():
            if item[0] == "Substans":
                label = v.text(item)
            elif item[0] == "Atc":
                atc = v.cv(item)
            elif item[0] == "RefVirkestoff":
                refs.append(v.reference(item))
            else:
                raise ValueError(f"Substans cannot hold {item[0]}")
        group = [{"url": "gruppe", "valueInteger": occurrence + 1}]
        if group_name is not None:
            group.append({"url": "Navn", "valueString": group_name})
        group.append({"url": "substans", "valueInteger": substans_index})
        extension = [{"extension": group, "url": s.ext_url("Substansgruppe")}]
        if atc is not None or not refs:
            concept: Json = {"coding": [atc]} if atc is not None else {}
            if label is not None:
                concept["text"] = label
            interactants.append({"extension": extension, "itemCodeableConcept": concept})
        for ref in refs:
            if label is not None:
                ref = {**ref, "display": label}
            interactants.append({"extension": extension, "itemReference": ref})


def _interaction(cud: Json, ctx: Context) -> None:
    cud["type"] = "interaction"
    cud["status"] = _status_concept(ctx)


INTERAKSJON = Table(
    (
        To("Id", "identifier[]", v.Identifier(s.NS_INTERAKSJON), "and id = fhir_id(Id)"),
        To(
            "Relevans",
            "interaction.management[]",
            v.cs_concept,
            "relevance = what to do (CS): 1 Bør unngås, ...",
        ),
        Ext("Situasjonskriterium", "when the interaction applies"),
        To("KliniskKonsekvens", "interaction.effect.concept.text", v.text, "clinical consequence"),
        Ext("Interaksjonsmekanisme", "mechanism"),
        Ext("Kildegrunnlag", "kind of evidence (CS)"),
        To("Handtering", "interaction.management[]", v.text_concept, "handling, as text (after Relevans)"),
        Ext("Visningsregel", "who sees it (CV 7442)"),
        Ext("Referanse", "literature: Kilde, Lenke (valueUri)"),
        Custom(
            "Substansgruppe",
            "ClinicalUseDefinition.interaction.interactant[]",
            _interactants,
            "2 or more groups; every interactant has extension fest-Substansgruppe (gruppe, Navn, substans "
            "= 1-based positions and the group name)",
            covers=(
                Row("Navn", "extension", f"{_INTERACTANT}.extension[fest-Substansgruppe].extension[Navn]"),
                Row(
                    "Substans",
                    "fhir",
                    f"{_INTERACTANT}[] (one per Atc, one per RefVirkestoff, one if neither)",
                ),
                Row(
                    "Substans/Substans",
                    "fhir",
                    f"{_INTERACTANT}.itemCodeableConcept.text / .itemReference.display",
                ),
                Row("Substans/Atc", "fhir", f"{_INTERACTANT}.itemCodeableConcept.coding (ATC)"),
                Row("Substans/RefVirkestoff", "fhir", f"{_INTERACTANT}.itemReference -> SubstanceDefinition"),
            ),
        ),
    ),
    derived=(
        ("ClinicalUseDefinition.type", "interaction"),
        ("ClinicalUseDefinition.status", STATUS_NOTE),
    ),
    finish=_interaction,
)


def _not_assessed(cud: Json, ctx: Context) -> None:
    _interaction(cud, ctx)
    cud.setdefault("interaction", {})["type"] = _code(
        s.CS_INTERACTION_TYPE, "ikke-vurdert", "Interactions not assessed (FEST InteraksjonIkkeVurdert)"
    )


INTERAKSJON_IKKE_VURDERT = Table(
    (To("Atc", "interaction.interactant[].itemCodeableConcept", v.concept, "the ATC group not assessed"),),
    derived=(
        ("ClinicalUseDefinition.type", "interaction"),
        ("ClinicalUseDefinition.interaction.type", f"{s.CS_INTERACTION_TYPE}#ikke-vurdert: the flag"),
        ("ClinicalUseDefinition.status", STATUS_NOTE),
    ),
    finish=_not_assessed,
)


# --- Kodeverk (Info + Element+) -> CodeSystem --------------------------------------------------------


def _oid_url(node: Node) -> str:
    return "urn:oid:" + v.text(node)


def _parent(node: Node, concept: Json, ctx: Context, xsd: XsdNode, occurrence: int) -> None:
    """ParentId names the parent Element's Id; FHIR's parent property names its code (when that
    code is unique in the Kodeverk, so the Id can be found again), else fest-ParentId keeps the Id."""
    parent_id = v.text(node)
    code = ctx.scratch["codes"].get(parent_id)
    if code is not None and code not in ctx.scratch["repeated"]:
        prop: Json = {"code": "parent", "valueCode": code}
    else:
        prop = {"code": "fest-ParentId", "valueString": parent_id}
    concept.setdefault("property", []).append(prop)


def _designation_finish(concept: Json, ctx: Context) -> None:
    designations = concept.get("designation")
    if designations and "value" in designations[0]:
        concept["display"] = designations[0]["value"]
        for e in designations[0].get("extension", ()):
            if e["url"] == s.ext_url("BeskrivelseTerm") and "valueString" in e:
                concept["definition"] = e["valueString"]


TERM = Table(
    (
        To("Term", "value", v.text),
        Ext("BeskrivelseTerm", "description; the first Term's is also concept.definition"),
        Ext("Sprak", "language (CS)"),
    )
)
ELEMENT = Table(
    (
        To("Id", "id", v.text, "the Element's FEST Id as the concept's element id"),
        Custom(
            "ParentId",
            "CodeSystem.concept.property (code parent = the parent Element's Kode)",
            _parent,
            "fest-ParentId (valueString) when the parent is not in the Kodeverk or its code is not unique",
        ),
        To("Kode", "code", v.text),
        Into("Term", "designation[]", TERM, "every Term, in order"),
    ),
    derived=(("display", "copy of the first Term"),),
    finish=_designation_finish,
)
INFO = Table(
    (
        To("Id", "url", _oid_url, "urn:oid:<Id>; CodeSystem.id = fhir_id(Id)"),
        To("Betegnelse", "title", v.text),
        To("Kortnavn", "name", v.text),
        To("AnsvarligUtgiver", "publisher", v.text),
        To("Merknad", "description", v.text),
    )
)


def _kodeverk_start(cs: Json, ctx: Context) -> None:
    codes: dict[str, str] = {}
    seen: set[str] = set()
    repeated: set[str] = set()
    for element in ctx.entry.payload[1:]:
        fest_id, code = child(element, "Id"), child(element, "Kode")
        if code is not None and code[2]:
            (repeated if code[2] in seen else seen).add(code[2])
            if fest_id is not None and fest_id[2]:
                codes[fest_id[2]] = code[2]
    ctx.scratch["codes"], ctx.scratch["repeated"] = codes, repeated


def _kodeverk_finish(cs: Json, ctx: Context) -> None:
    if "url" in cs:
        cs["identifier"] = [{"system": s.NS_URI, "value": cs["url"]}]
    cs["status"] = "active" if ctx.entry.status == "A" else "retired"
    cs["content"] = "complete"
    concepts = cs.get("concept", [])
    cs["count"] = len(concepts)
    used = {p["code"] for c in concepts for p in c.get("property", ())}
    declared = []
    if "parent" in used:
        declared.append({"code": "parent", "uri": s.CONCEPT_PARENT, "type": "code"})
    if "fest-ParentId" in used:
        declared.append(
            {"code": "fest-ParentId", "description": "FEST ParentId outside this Kodeverk", "type": "string"}
        )
    if declared:
        cs["property"] = declared


KODEVERK = Table(
    (
        Into("Info", "", INFO, "the code system"),
        Into("Element", "concept[]", ELEMENT, "one concept per Element, in order"),
    ),
    derived=(
        ("CodeSystem.identifier", "urn:ietf:rfc:3986 | the url"),
        ("CodeSystem.status", "active (retired for Status U)"),
        ("CodeSystem.content", "complete"),
        ("CodeSystem.count", "the number of Elements"),
        ("CodeSystem.property", "declares parent / fest-ParentId when used"),
    ),
    start=_kodeverk_start,
    finish=_kodeverk_finish,
)


# --- catalogues IDMP has no resource for -> Basic ---------------------------------------------------


def _basic(
    kind: str,
    display: str,
    identifier: tuple[str, str] | None,
    finish: Callable[[Json, Context], None] | None = None,
    derived: tuple[tuple[str, str], ...] = (),
) -> Table:
    """A Basic (code = the FEST kind) whose content is one extension per child element, the
    children as the XSD orders them (m30.child_order)."""
    rules: list[Rule] = []
    for name in child_order(kind):
        if identifier is not None and name == identifier[0]:
            rules.append(To(name, "identifier[]", v.Identifier(identifier[1]), "and id = fhir_id(Id)"))
        else:
            rules.append(Ext(name))
    code = _code(s.CS_KIND, kind, display)

    def start(basic: Json, ctx: Context) -> None:
        basic["code"] = code

    return Table(tuple(rules), (("Basic.code", f"{s.CS_KIND}#{kind}"), *derived), start, finish)


def _refusjonsgrupper(basic: Json, ctx: Context) -> None:
    """The Ids of the Refusjonsgrupper inside, as identifiers: RefRefusjonsgruppe references find them."""
    for node in ctx.entry.payload[0][3] or ():
        if node[0] == "Refusjonsgruppe":
            found = child(node, "Id")
            if found is not None and found[2]:
                basic.setdefault("identifier", []).append({"system": s.NS_REFUSJONSGRUPPE, "value": found[2]})


_VARE_NOTE = "merchandise (Handelsvare): Basic, identifier = Nr (varenr), id = fhir_id(Oppf Id)"
_HJEMMEL_DERIVED = (("Basic.identifier", f"copy of every Refusjonsgruppe/Id ({s.NS_REFUSJONSGRUPPE})"),)

MAPPINGS: dict[str, Mapping] = {
    m.kind: m
    for m in (
        Mapping(
            "LegemiddelMerkevare",
            MPD,
            MERKEVARE,
            "brand product: MedicinalProductDefinition, plus its ManufacturedItemDefinition, "
            "AdministrableProductDefinition and one Ingredient per substance",
            (MID, APD, ING),
        ),
        Mapping("Legemiddelpakning", PPD, PAKNING, "package: PackagedProductDefinition"),
        Mapping("Virkestoff", SD, VIRKESTOFF, "substance: SubstanceDefinition"),
        Mapping(
            "VirkestoffMedStyrke",
            ING,
            VIRKESTOFF_MED_STYRKE,
            "substance with strength: an Ingredient of its own, without `for` (the only resource with its "
            "Oppf envelope, and the one a VirkestoffMedStyrke no product names still has). Each product's "
            "Ingredient copies its substance and strength and names it by identifier "
            f"({s.NS_VIRKESTOFF_MED_STYRKE}), so Ingredient?identifier=<that>|<Id> finds it and every use",
        ),
        Mapping(
            "OrdineringVirkestoff",
            MPD,
            ORDINERING_VIRKESTOFF,
            "substance-based ordering: MedicinalProductDefinition",
        ),
        Mapping(
            "LegemiddelVirkestoff",
            MPD,
            LEGEMIDDEL_VIRKESTOFF,
            "substance-based product: MedicinalProductDefinition, plus one Ingredient per substance",
            (ING,),
        ),
        Mapping("Legemiddeldose", MID, LEGEMIDDELDOSE, "unit dose: ManufacturedItemDefinition"),
        Mapping("Interaksjon", CUD, INTERAKSJON, "interaction: ClinicalUseDefinition (type interaction)"),
        Mapping(
            "InteraksjonIkkeVurdert",
            CUD,
            INTERAKSJON_IKKE_VURDERT,
            "ATC group whose interactions are not assessed: ClinicalUseDefinition, interaction.type ikke-vurdert",
        ),
        Mapping("Info", CS, KODEVERK, "code system (Info + Element+): CodeSystem"),
        Mapping(
            "Byttegruppe",
            BASIC,
            _basic("Byttegruppe", "Substitution group", ("Id", s.NS_BYTTEGRUPPE)),
            "substitution group: Basic",
        ),
        Mapping("Vilkar", BASIC, _basic("Vilkar", "Condition", ("Id", s.NS_VILKAR)), "condition: Basic"),
        Mapping(
            "VarselSlv",
            BASIC,
            _basic("VarselSlv", "Notice from NoMA", None),
            "notice from NoMA (SLV): Basic, id = fhir_id(Oppf Id)",
        ),
        Mapping(
            "Refusjonshjemmel",
            BASIC,
            _basic(
                "Refusjonshjemmel",
                "Reimbursement regulation",
                None,
                _refusjonsgrupper,
                _HJEMMEL_DERIVED,
            ),
            "reimbursement regulation and its groups: Basic, id = fhir_id(Oppf Id)",
        ),
        Mapping(
            "Kortdose",
            BASIC,
            _basic("Kortdose", "Structured dosing", None),
            "structured dosing (StrDosering): Basic, id = fhir_id(Oppf Id)",
        ),
        Mapping(
            "Diagnose",
            BASIC,
            _basic("Diagnose", "Diagnosis", ("Id", s.NS_DIAGNOSE)),
            "diagnosis with treatment suggestions: Basic",
        ),
        Mapping(
            "Brystprotese",
            BASIC,
            _basic("Brystprotese", "Breast prosthesis", ("Nr", s.NS_VARENR)),
            _VARE_NOTE,
        ),
        Mapping(
            "MedForbMatr",
            BASIC,
            _basic("MedForbMatr", "Medical consumables", ("Nr", s.NS_VARENR)),
            _VARE_NOTE,
        ),
        Mapping(
            "Naringsmiddel",
            BASIC,
            _basic("Naringsmiddel", "Food for special medical purposes", ("Nr", s.NS_VARENR)),
            _VARE_NOTE,
        ),
    )
}
"""Payload kind (FestEntry.kind) -> its mapping. Kodeverk is keyed by its first payload, Info."""


def _payload_xsd(catalogue: str, kind: str) -> XsdNode:
    node: XsdNode = oppf_xsd(catalogue)[1][kind]
    return node
