"""The search parameters we serve: declared once, they drive indexing, queries and the CapabilityStatement.

To add a search parameter, add a row to `SEARCH_PARAMS`; the importer indexes it on the next
import (`grunndata reindex` redoes the releases already stored), the server accepts it, and
`/fhir/metadata` and the OpenAPI document list it. A path is a dotted walk over the resource's
JSON (lists are flattened); `|` separates alternatives.

To add a searchable type, add its rows and, unless the store holds it, its entry in `SOURCES`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from types import MappingProxyType
from typing import Any, NamedTuple

from grunndata.fhir import SERVED_TYPES
from grunndata.fhir.systems import ATC
from grunndata.store import barcodes

TIER_SYSTEM = "https://grunndata.no/fhir/CodeSystem/tier"
R5 = "http://hl7.org/fhir/SearchParameter/"
OURS = "https://grunndata.no/fhir/SearchParameter/"


@dataclass(frozen=True, slots=True)
class SearchParam:
    resource: str  # the resource type, or "Resource" for the ones every type has
    code: str
    type: str  # token, string, reference, uri, date
    path: str  # dotted JSON path; "|" separates alternatives; "" for the ones answered from columns
    description: str
    targets: tuple[str, ...] = ()  # reference: the types it may point at
    standard: bool = True  # False: ours, not in the R5 specification
    canonical: bool = False  # reference: to a canonical URL (matched whole), not to Type/id
    values: Callable[[dict[str, Any]], list[Any]] | None = None  # computed: the values, not `path`'s
    expression: str = ""  # FHIRPath, where `path` does not say it (computed values)
    hierarchy: str = ""  # token: the code system whose is-a hierarchy :above and :below follow

    @property
    def modifiers(self) -> tuple[str, ...]:
        """The modifiers this parameter answers (R5 3.2.1.5.5), as the CapabilityStatement and the
        package's SearchParameters list them; a reference's [type] modifiers are its `targets`."""
        return MODIFIERS[self.type] + (("above", "below") if self.hierarchy else ())

    @property
    def definition(self) -> str:
        name = (
            f"{self.resource}-{self.code}"
            if self.resource != "Resource"
            else f"Resource-{self.code.lstrip('_')}"
        )
        return (R5 if self.standard else OURS) + name


MODIFIERS: dict[str, tuple[str, ...]] = {
    "token": ("missing", "not"),
    "string": ("missing", "exact", "contains"),
    "reference": ("missing",),
    "uri": ("missing", "above", "below"),
    "date": ("missing",),
    "special": (),
}
"""The modifiers each type of parameter answers. :above/:below on a token follow a code system's
hierarchy (`SearchParam.hierarchy`: ATC's, where the code's levels are its prefixes); on a uri,
a URL's path; on a reference, R5 defines them for circular references that make a hierarchy
(Organization.partof): no data of ours has one, so they are refused there."""

ATC_LEVELS = (1, 3, 4, 5, 7)
"""The lengths of an ATC code at its five levels (anatomical group ... chemical substance): a
code's ancestors are its prefixes of these lengths."""
_ATC_CODE = re.compile(r"[A-Z](?:[0-9]{2}(?:[A-Z](?:[A-Z](?:[0-9]{2})?)?)?)?")


def hierarchy_ancestors(system: str, code: str) -> list[str] | None:
    """The code and every code above it in `system`'s hierarchy (ATC: its level prefixes), or None
    when the code is not one of the system's."""
    if system != ATC or not _ATC_CODE.fullmatch(code):
        return None
    return [code[:n] for n in ATC_LEVELS if n <= len(code)]


CONTENT_FILTER_PARAM = SearchParam(
    "Resource",
    "content-filter",
    "special",
    "",
    "A named view of the national data: h-resept leaves out what DMP's H-resept API does (ATC group Q, "
    "homeopathic products, packages not marketed in the last three months or without a current varenr, "
    "expired unit doses; docs/h-resept-filters.md); totals and paging are the view's. On searches of the "
    "store's types and on $everything",
    standard=False,
)
"""Not a parameter of the index: the search reads it as a view (fhir_io/params.py), the package
and the CapabilityStatement describe it."""


def _p(resource: str, code: str, type_: str, path: str, description: str, *targets: str) -> SearchParam:
    return SearchParam(resource, code, type_, path, description, targets)


def _ours(resource: str, code: str, type_: str, path: str, description: str, *targets: str) -> SearchParam:
    return SearchParam(resource, code, type_, path, description, targets, standard=False)


def _computed(
    resource: str,
    code: str,
    path: str,
    expression: str,
    values: Callable[[dict[str, Any]], list[Any]],
    description: str,
    *targets: str,
) -> SearchParam:
    """Ours, indexed from `values` (a function of the resource) rather than by walking `path`; `path`
    names the elements the values come from (an identifier path makes it an identifier parameter).
    A token, or a reference when `targets` are given."""
    type_ = "reference" if targets else "token"
    return SearchParam(
        resource,
        code,
        type_,
        path,
        description,
        targets,
        standard=False,
        values=values,
        expression=expression,
    )


def _level(depth: int) -> Callable[[dict[str, Any]], list[Any]]:
    return lambda resource: barcodes.level_codes(resource, depth)


_ANY_LEVEL = (
    "PackagedProductDefinition.identifier | PackagedProductDefinition.packaging.identifier"
    " | PackagedProductDefinition.packaging.repeat(packaging).identifier"
)
BARCODE_PARAMS = ("barcode", *(f"package-item-level-{w}" for w in barcodes.LEVEL_WORDS))
"""The product-code parameters whose matches say where the code was found (store/barcodes.py)."""


SUBSTITUTION_GROUP = "https://grunndata.no/fhir/StructureDefinition/fest-PakningByttegruppe"


def _substitution_groups(resource: dict[str, Any]) -> list[Any]:
    """The Basic/<id> references of a package's FEST substitution groups (PakningByttegruppe)."""
    return [
        part["valueReference"]["reference"]
        for ext in resource.get("extension", ())
        if ext.get("url") == SUBSTITUTION_GROUP
        for part in ext.get("extension", ())
        if part.get("url") == "RefByttegruppe" and "reference" in part.get("valueReference", {})
    ]


def _canonical(resource: str, code: str, path: str, description: str, *targets: str) -> SearchParam:
    return SearchParam(resource, code, "reference", path, description, targets, canonical=True)


MPD, PPD, MID = "MedicinalProductDefinition", "PackagedProductDefinition", "ManufacturedItemDefinition"
APD, ING, SD = "AdministrableProductDefinition", "Ingredient", "SubstanceDefinition"
CUD, CS, BASIC = "ClinicalUseDefinition", "CodeSystem", "Basic"
RA = "RegulatedAuthorization"  # from SAFEST/IDMP (FEST has no marketing authorisation of its own)
VS = "ValueSet"  # from SAFEST
COMP, ORG = "Composition", "Organization"  # an ePI document about a product, and who holds it
CM = "ConceptMap"  # the terminology service's maps: reviewed files, generated from a release, delivered
ENDPOINT = "Endpoint"  # a service of the catalogue

# Where a type's search looks. STORE: the store's index rows of the snapshot served (SQL). A list
# (CATALOGUE, TERMINOLOGY): resources a part of the server makes and keeps in memory: the service
# catalogue's, and the maps the terminology service indexes (its files, the FEST id maps made from
# a release, and the maps a delivery brought, which replace ours). A listed resource is matched by
# its `index_rows`, by the same rules as a stored one, so both answer a parameter the same way.
STORE, CATALOGUE, TERMINOLOGY = "store", "catalogue", "terminology"
SOURCES: dict[str, tuple[str, ...]] = {
    ORG: (CATALOGUE, STORE),  # the catalogue's owners (their ids reserved), then the store's
    ENDPOINT: (CATALOGUE,),
    CM: (TERMINOLOGY,),
}
SEARCHED_TYPES = (*SERVED_TYPES, CM, ENDPOINT)
"""Every type a search answers for: one parser, one matcher, one bundle (server/routes/fhir.py)."""


def sources_of(rtype: str) -> tuple[str, ...]:
    """Where a search for `rtype` looks, in the order its matches are listed."""
    return SOURCES.get(rtype, (STORE,))


def chain_targets(param: SearchParam) -> tuple[str, ...]:
    """The types a chain may go on into after `param` (`param.<code>`), and a `_has` come back
    from: a reference to Type/id between types searched in the store alone (a list in memory, as
    the catalogue's Organizations, has no index to join)."""
    if param.type != "reference" or param.canonical or sources_of(param.resource) != (STORE,):
        return ()
    return tuple(t for t in param.targets if t in SEARCHED_TYPES and sources_of(t) == (STORE,))


CONTAINED_ITEM = "packaging.containedItem.item.reference.reference"  # R5: one path, seven parameters
ITEM_TARGETS = (MID, "DeviceDefinition", "NutritionProduct", PPD, MPD, "BiologicallyDerivedProduct")
"""What a package's containedItem may name (R5's contained-item targets)."""

SEARCH_PARAMS: tuple[SearchParam, ...] = (
    # every type: answered from the store's own columns
    _p("Resource", "_id", "token", "", "Logical id of the resource"),
    _p("Resource", "_lastUpdated", "date", "", "When the version was activated"),
    _p("Resource", "_tag", "token", "", f"Tier of the data ({TIER_SYSTEM}: national, sector, supplementary)"),
    # MedicinalProductDefinition
    _p(MPD, "identifier", "token", "identifier", "FEST id (LegemiddelMerkevare, LegemiddelVirkestoff)"),
    _p(MPD, "name", "string", "name.productName", "The full product name"),
    _p(MPD, "name-language", "token", "name.usage.language", "Language of the product name"),
    replace(
        _p(MPD, "product-classification", "token", "classification", "ATC code and other classifications"),
        hierarchy=ATC,
    ),
    _p(MPD, "status", "token", "status", "Status of the product definition"),
    _p(MPD, "type", "token", "type", "Regulatory type, e.g. investigational or authorized"),
    _p(MPD, "domain", "token", "domain", "Human or veterinary use"),
    _p(MPD, "ingredient", "token", "ingredient", "An ingredient, as a code"),
    _p(MPD, "characteristic-type", "token", "characteristic.type", "A characteristic's type"),
    _p(
        MPD,
        "characteristic",
        "token",
        "characteristic.valueCodeableConcept",
        "A characteristic's coded value",
    ),
    _p(
        MPD,
        "contact",
        "reference",
        "contact.contact.reference",
        "A contact",
        "Organization",
        "PractitionerRole",
    ),
    _ours(
        MPD, "comprised-of", "reference", "comprisedOf.reference", "The manufactured items it is made of", MID
    ),
    _p(MPD, "master-file", "reference", "masterFile.reference", "A master file", "DocumentReference"),
    # PackagedProductDefinition
    _p(PPD, "identifier", "token", "identifier|packaging.identifier", "FEST id, varenr or GTIN"),
    _p(PPD, "name", "token", "name", "The package's name"),
    _p(PPD, "status", "token", "status", "Status of the package definition"),
    _p(PPD, "package-for", "reference", "packageFor.reference", "The product this is a package for", MPD),
    _p(
        PPD,
        "contained-item",
        "reference",
        CONTAINED_ITEM,
        "Any item in the package",
        *ITEM_TARGETS,
    ),
    _p(
        PPD,
        "manufactured-item",
        "reference",
        CONTAINED_ITEM,
        "A manufactured item in the package",
        MID,
    ),
    _p(
        PPD,
        "device",
        "reference",
        CONTAINED_ITEM,
        "A device in the package",
        "DeviceDefinition",
    ),
    _p(
        PPD,
        "nutrition",
        "reference",
        CONTAINED_ITEM,
        "A nutrition product in the package",
        "NutritionProduct",
    ),
    _p(
        PPD,
        "package",
        "reference",
        CONTAINED_ITEM,
        "A package in the package",
        PPD,
    ),
    _p(
        PPD,
        "medication",
        "reference",
        CONTAINED_ITEM,
        "A medicinal product in the package",
        MPD,
    ),
    _p(
        PPD,
        "biological",
        "reference",
        CONTAINED_ITEM,
        "A biologically derived product in the package",
        "BiologicallyDerivedProduct",
    ),
    _computed(
        PPD,
        "barcode",
        "identifier|packaging.identifier",
        _ANY_LEVEL,
        barcodes.any_level_codes,
        "A product code (GTIN, varenr, ...) of the package at any level: its own, each packaging level's "
        "however deep, and (matched at search time) a contained manufactured item's barcode",
    ),
    *(
        _computed(
            PPD,
            f"package-item-level-{word}",
            "packaging.identifier",
            ".".join(["PackagedProductDefinition", *["packaging"] * depth, "identifier"]),
            _level(depth),
            f"DMP's SAFEST parameter: a product code at packaging level {depth} counted from the top "
            "(1: the outer level; R5's one wrapper around several packages is no level)",
        )
        for depth, word in enumerate(barcodes.LEVEL_WORDS, 1)
    ),
    _computed(
        PPD,
        "any-level-item",
        "packaging.containedItem.item.reference.reference",
        "PackagedProductDefinition.packaging.containedItem.item.reference"
        " | PackagedProductDefinition.packaging.repeat(packaging).containedItem.item.reference",
        barcodes.any_level_items,
        "An item the package holds at any packaging level (contained-item looks at the outer level only)",
        *ITEM_TARGETS,
    ),
    _computed(
        PPD,
        "substitution-group",
        "extension",
        "PackagedProductDefinition.extension('"
        + SUBSTITUTION_GROUP
        + "').extension('RefByttegruppe').value.ofType(Reference)",
        _substitution_groups,
        "The FEST substitution group (Byttegruppe, a Basic) the package belongs to: its other packages "
        "are the ones a pharmacist may hand out instead",
        BASIC,
    ),
    # ManufacturedItemDefinition
    _p(MID, "identifier", "token", "identifier", "FEST id (Legemiddeldose)"),
    _ours(
        MID,
        "barcode",
        "token",
        "identifier",
        "A product code of the item (a unit dose's GTIN, LMR number, ...)",
    ),
    _p(MID, "dose-form", "token", "manufacturedDoseForm", "Dose form as manufactured"),
    _p(MID, "ingredient", "token", "ingredient", "An ingredient, as a code"),
    _p(MID, "name", "token", "name", "The item's name"),
    _p(MID, "status", "token", "status", "Status of the item definition"),
    # AdministrableProductDefinition
    _p(APD, "identifier", "token", "identifier", "Identifier of the administrable product"),
    _p(APD, "dose-form", "token", "administrableDoseForm", "Dose form as administered"),
    _p(APD, "form-of", "reference", "formOf.reference", "The product this is the administrable form of", MPD),
    _p(APD, "manufactured-item", "reference", "producedFrom.reference", "The items it is produced from", MID),
    _p(APD, "ingredient", "token", "ingredient", "An ingredient, as a code"),
    _p(APD, "route", "token", "routeOfAdministration.code", "Route of administration"),
    _p(APD, "target-species", "token", "routeOfAdministration.targetSpecies.code", "Target species"),
    _p(APD, "device", "reference", "device.reference", "A device used with it", "DeviceDefinition"),
    _p(APD, "status", "token", "status", "Status of the administrable product"),
    # Ingredient
    _p(ING, "identifier", "token", "identifier", "FEST id of the substance with strength"),
    _p(ING, "for", "reference", "for.reference", "The product the ingredient is part of", MPD, APD, MID),
    _p(ING, "role", "token", "role", "Role of the ingredient (active, ...)"),
    _p(ING, "function", "token", "function", "Function of the ingredient"),
    _p(ING, "status", "token", "status", "Status of the ingredient"),
    _p(ING, "substance-code", "token", "substance.code.concept", "The substance, as a code"),
    _p(ING, "substance", "reference", "substance.code.reference.reference", "The substance", SD),
    _p(
        ING,
        "substance-definition",
        "reference",
        "substance.code.reference.reference",
        "The substance definition",
        SD,
    ),
    _p(
        ING,
        "manufacturer",
        "reference",
        "manufacturer.manufacturer.reference",
        "A manufacturer",
        "Organization",
    ),
    # SubstanceDefinition
    _p(SD, "identifier", "token", "identifier", "FEST id (Virkestoff)"),
    _p(SD, "name", "string", "name.name", "A name of the substance"),
    _p(SD, "code", "token", "code.code", "A code for the substance"),
    _p(SD, "classification", "token", "classification", "Classification of the substance"),
    _p(SD, "domain", "token", "domain", "Human or veterinary use"),
    # ClinicalUseDefinition
    _p(CUD, "identifier", "token", "identifier", "FEST id (Interaksjon)"),
    _p(CUD, "type", "token", "type", "indication, contraindication, interaction, ..."),
    _p(
        CUD,
        "subject",
        "reference",
        "subject.reference",
        "What the clinical use is about",
        MPD,
        SD,
        "Medication",
        "ActivityDefinition",
        "PlanDefinition",
        "Device",
        "DeviceDefinition",
        "Substance",
        "NutritionProduct",
        "BiologicallyDerivedProduct",
    ),
    _p(CUD, "product", "reference", "subject.reference", "The medicinal product it is about", MPD),
    _p(CUD, "status", "token", "status", "Status of the clinical use"),
    _p(CUD, "interaction", "token", "interaction.type", "Type of interaction"),
    _p(
        CUD,
        "contraindication",
        "token",
        "contraindication.diseaseSymptomProcedure.concept",
        "A contraindication, as a code",
    ),
    _p(
        CUD,
        "contraindication-reference",
        "reference",
        "contraindication.diseaseSymptomProcedure.reference.reference",
        "A contraindication, as a reference",
        "ObservationDefinition",
    ),
    _p(CUD, "indication", "token", "indication.diseaseSymptomProcedure.concept", "An indication, as a code"),
    _p(
        CUD,
        "indication-reference",
        "reference",
        "indication.diseaseSymptomProcedure.reference.reference",
        "An indication, as a reference",
        "ObservationDefinition",
    ),
    _p(
        CUD,
        "effect",
        "token",
        "undesirableEffect.symptomConditionEffect.concept",
        "An undesirable effect, as a code",
    ),
    _p(
        CUD,
        "effect-reference",
        "reference",
        "undesirableEffect.symptomConditionEffect.reference.reference",
        "An undesirable effect, as a reference",
        "ObservationDefinition",
    ),
    replace(
        _ours(
            CUD,
            "interactant",
            "token",
            "interaction.interactant.itemCodeableConcept",
            "An interacting substance, as a code (ATC)",
        ),
        hierarchy=ATC,
    ),
    _ours(
        CUD,
        "interactant-reference",
        "reference",
        "interaction.interactant.itemReference.reference",
        "An interacting substance",
        SD,
        MPD,
    ),
    # CodeSystem (FEST Kodeverk)
    _p(CS, "url", "uri", "url", "The code system's canonical URL (urn:oid:...)"),
    _p(CS, "identifier", "token", "identifier", "Identifier of the code system"),
    _p(CS, "name", "string", "name", "Computer-friendly name"),
    _p(CS, "title", "string", "title", "Human-friendly name"),
    _p(CS, "status", "token", "status", "Publication status"),
    _p(CS, "code", "token", "concept.code", "A code defined by the code system"),
    _p(CS, "version", "token", "version", "The business version of the code system"),
    # ValueSet (from SAFEST)
    _p(VS, "url", "uri", "url", "The value set's canonical URL"),
    _p(VS, "version", "token", "version", "The business version of the value set"),
    _p(VS, "name", "string", "name", "Computer-friendly name"),
    _p(VS, "title", "string", "title", "Human-friendly name"),
    _p(VS, "status", "token", "status", "Publication status"),
    # RegulatedAuthorization (from SAFEST/IDMP)
    _p(RA, "identifier", "token", "identifier", "Marketing authorisation number"),
    _p(
        RA,
        "subject",
        "reference",
        "subject.reference",
        "The product the authorisation is for",
        MPD,
        PPD,
        MID,
        ING,
        SD,
    ),
    _p(RA, "status", "token", "status", "Status of the authorisation"),
    _p(RA, "region", "token", "region", "Where the authorisation applies"),
    _p(RA, "holder", "reference", "holder.reference", "The marketing authorisation holder", ORG),
    # Composition (an ePI: the package leaflet or SmPC of a product, from a document Bundle)
    _p(COMP, "identifier", "token", "identifier", "Version-independent identifier of the document"),
    _p(
        COMP,
        "subject",
        "reference",
        "subject.reference",
        "What the document is about: the product",
        MPD,
        PPD,
        MID,
        APD,
        SD,
        ING,
    ),
    _p(COMP, "type", "token", "type", "Kind of document (LOINC 60593-1: package insert)"),
    _p(COMP, "category", "token", "category", "Categorisation of the document"),
    _p(COMP, "status", "token", "status", "preliminary, final, amended, ..."),
    _p(COMP, "title", "string", "title", "The document's title"),
    _p(COMP, "date", "date", "date", "When the document was last edited"),
    _p(COMP, "author", "reference", "author.reference", "Who wrote the document", ORG),
    _p(COMP, "section", "token", "section.code", "Kind of a (top-level) section"),
    _p(COMP, "version", "token", "version", "The business version of the document"),
    # Organization (the marketing authorisation holder; also the catalogue's owners, server/catalog.py)
    _p(ORG, "identifier", "token", "identifier", "An identifier (organisation number, ...)"),
    _p(ORG, "name", "string", "name|alias", "The name or an alias"),
    _p(ORG, "type", "token", "type", "Kind of organisation"),
    _p(ORG, "active", "token", "active", "Whether the record is in active use"),
    _p(ORG, "partof", "reference", "partOf.reference", "The organisation it is part of", ORG),
    _ours(  # answered from the store's columns, as _tag; the catalogue's clients searched by it first
        ORG,
        "tier",
        "token",
        "",
        "Tier of the data; for the service catalogue's owners, a tier they offer services in",
    ),
    # Endpoint (a service of the catalogue; server/catalog.py)
    _p(ENDPOINT, "name", "string", "name", "The service's name"),
    _p(ENDPOINT, "status", "token", "status", "Declared status, or error when the last probe found it down"),
    _p(ENDPOINT, "organization", "reference", "managingOrganization.reference", "The service's owner", ORG),
    _ours(ENDPOINT, "owner", "reference", "managingOrganization.reference", "The service's owner", ORG),
    _ours(ENDPOINT, "tier", "token", "", "Tier of the data the service offers (as _tag)"),
    _ours(ENDPOINT, "resource-type", "token", "payload.type.text", "A resource type the service serves"),
    # ConceptMap (the terminology service's maps; server/terminology.py)
    _p(CM, "url", "uri", "url", "The map's canonical URL"),
    _p(CM, "version", "token", "version", "The business version of the map"),
    _p(CM, "name", "string", "name", "Computer-friendly name"),
    _p(CM, "status", "token", "status", "Publication status"),
    _canonical(CM, "source-group-system", "group.source", "A source code system of a group", CS),
    _canonical(CM, "target-group-system", "group.target", "A target code system of a group", CS),
    # Basic (FEST catalogues IDMP has no resource for)
    _p(BASIC, "identifier", "token", "identifier", "FEST id"),
    _p(BASIC, "code", "token", "code", "Which FEST catalogue the entry comes from"),
    _p(
        BASIC,
        "subject",
        "reference",
        "subject.reference",
        "What the entry is about",
        MPD,
        PPD,
        SD,
        MID,
        BASIC,
    ),
)

_BY_KEY = {(p.resource, p.code): p for p in SEARCH_PARAMS}

IDENTIFIER_PARAMS = frozenset(
    (p.resource, p.code)
    for p in SEARCH_PARAMS
    if p.type == "token" and any(alt.rsplit(".", 1)[-1] == "identifier" for alt in p.path.split("|"))
)
"""Token parameters over Identifiers: searched in any accepted system and value form of the
identifier's kind (fhir/identifiers.py, store/search.py)."""


R4_BARCODE_TYPES = {"MedicinalProductPackaged": PPD, "MedicinalProductManufactured": MID}


def r4_barcode_param(r4type: str, code: str) -> SearchParam | None:
    """The R5 parameter that answers a SAFEST R4 barcode parameter (DMP's package-item-level-one|
    two|three on MedicinalProductPackaged; our barcode on it and on MedicinalProductManufactured),
    for the R4 view: search the R5 type with it, and `search.barcode_matches` says where each match
    carries the code (an R4 Bundle.entry.search takes the same extension; `level` is the depth of
    R4's packageItem, since R5's wrapper around several R4 top levels is no level)."""
    rtype = R4_BARCODE_TYPES.get(r4type)
    if rtype is None or code not in BARCODE_PARAMS:
        return None
    return _BY_KEY.get((rtype, code))


@cache
def params_for(resource: str) -> Mapping[str, SearchParam]:
    """The search parameters of a resource type, the common ones included (made once per type:
    every search's parse asks, and a walk of the whole table was ~10 % of a first-time search)."""
    return MappingProxyType({p.code: p for p in SEARCH_PARAMS if p.resource in (resource, "Resource")})


def lookup(resource: str, code: str) -> SearchParam | None:
    return _BY_KEY.get((resource, code)) or _BY_KEY.get(("Resource", code))


def normalise(text: str) -> str:
    """The form strings are indexed and searched in: case and accents ignored (R5 string search)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip()


class IndexRow(NamedTuple):  # a tuple: made half a million times per full import
    param: str  # "Type.code"
    system: str  # token: the code system ("" when none); reference: ""; string: ""
    value: str  # token: the code; string: normalised text; reference: "Type/id"; uri: the uri;
    # date: the first instant the value covers (`stamp`)
    exact: str | None = None  # string: the text as written, for :exact; date: the end, exclusive


def date_span(text: str) -> tuple[datetime, datetime]:
    """The instants a FHIR date, dateTime or instant covers (end exclusive): `2025` is the whole
    year; ValueError for anything else (a time without a zone included)."""
    formats = (("%Y", "year"), ("%Y-%m", "month"), ("%Y-%m-%d", "day"))
    for fmt, unit in formats:
        try:
            start = datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        try:
            if unit == "year":
                end = start.replace(year=start.year + 1)
            elif unit == "month":
                end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
            else:
                end = datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=UTC)
        except (ValueError, OverflowError):  # the last year, month or day there is: to its end
            end = _END_OF_TIME
        return start, end
    start = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if start.tzinfo is None:
        raise ValueError(f"a time needs a time zone: {text!r} (e.g. 2026-11-21T10:00:00Z)")
    start = start.astimezone(UTC)
    precision = 1000 if "." in text else 1_000_000
    try:
        return start, datetime.fromtimestamp(start.timestamp() + precision / 1_000_000, UTC)
    except (ValueError, OverflowError):  # 9999-12-31T23:59:59Z: the last second there is
        return start, _END_OF_TIME


_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def stamp(t: datetime) -> str:
    """An instant as indexed: fixed width, UTC, so that text order is time order in every database."""
    t = t.astimezone(UTC)
    return f"{t.year:04d}-{t:%m-%dT%H:%M:%S}.{t.microsecond:06d}Z"


def _walk(node: Any, steps: list[str]) -> Iterator[Any]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, steps)
        return
    if not steps:
        if node is not None:
            yield node
        return
    if isinstance(node, dict):
        yield from _walk(node.get(steps[0]), steps[1:])


def _tokens(value: Any) -> Iterator[tuple[str, str]]:
    """(system, code) pairs of a token-typed value: code, Coding, CodeableConcept, Identifier, boolean."""
    if isinstance(value, bool):
        yield "", "true" if value else "false"
    elif isinstance(value, str):
        yield "", value
    elif isinstance(value, dict):
        if "coding" in value:  # CodeableConcept
            for coding in value["coding"]:
                yield from _tokens(coding)
        elif "code" in value:  # Coding
            yield value.get("system", ""), str(value["code"])
        elif "value" in value:  # Identifier
            yield value.get("system", ""), str(value["value"])
        elif "concept" in value:  # CodeableReference
            yield from _tokens(value["concept"])


_INDEXED: dict[str, list[tuple[str, SearchParam, list[list[str]]]]] = {}
for _param in SEARCH_PARAMS:
    if _param.path:
        _INDEXED.setdefault(_param.resource, []).append(
            (f"{_param.resource}.{_param.code}", _param, [alt.split(".") for alt in _param.path.split("|")])
        )


INDEXED_TYPES = frozenset(_INDEXED)
"""The types with index rows (a parameter with a path): what an import and a reindex index."""


def index_rows(resource: dict[str, Any]) -> list[IndexRow]:
    """Every indexed value of one resource, by its type's declared search parameters."""
    rows: set[IndexRow] = set()
    for name, param, paths in _INDEXED.get(resource["resourceType"], ()):
        walked = (
            [param.values(resource)]
            if param.values is not None
            else [list(_walk(resource, s)) for s in paths]
        )
        for found in walked:
            for value in found:
                if param.type == "token":
                    rows.update(IndexRow(name, system, code) for system, code in _tokens(value))
                elif not isinstance(value, str):
                    continue
                elif param.type == "string":
                    rows.add(IndexRow(name, "", normalise(value), value))
                elif param.type == "reference":
                    if param.canonical:
                        rows.add(IndexRow(name, "", value.partition("|")[0]))
                    elif value.split("/", 1)[0] in param.targets:
                        rows.add(IndexRow(name, "", value))
                elif param.type == "uri":
                    rows.add(IndexRow(name, "", value))
                elif param.type == "date":
                    try:
                        start, end = date_span(value)
                    except (ValueError, OverflowError):
                        continue  # not a FHIR date: validation refuses it before anything is indexed
                    rows.add(IndexRow(name, "", stamp(start), stamp(end)))
    return sorted(rows)
