"""The URIs the FHIR resources use: identifier systems, code systems and our extension base.

The Norwegian identifier systems for FEST ids come from the LMDI NamingSystems (DMP/FHI; every
kind's served system, its source and its accepted aliases: fhir/identifiers.py); FEST's
Volven code systems keep their OID (`urn:oid:2.16.578.1.12.4.1.1.NNNN`, the CV's S attribute),
except ATC, which uses WHO's URI. Everything FEST has and no published system covers gets a URI
under grunndata.no, so that the M30 writer can tell where each value came from.
"""

from __future__ import annotations

EXT_BASE = "https://grunndata.no/fhir/StructureDefinition/"
"""The one base URL of our extensions: ``EXT_BASE + "fest-<FEST element>"``."""

CS_BASE = "https://grunndata.no/fhir/CodeSystem/"
NS_BASE = "https://grunndata.no/fhir/NamingSystem/"

# identifier systems (NamingSystem URIs) -- published ones first
NS_MERKEVARE = "http://dmp.no/fhir/NamingSystem/festLegemiddelMerkevare"
NS_PAKNING = "http://dmp.no/fhir/NamingSystem/festLegemiddelPakning"
NS_LEGEMIDDELVIRKESTOFF = "http://dmp.no/fhir/NamingSystem/festLegemiddelVirkestoff"
NS_DOSE = "http://dmp.no/fhir/NamingSystem/festLegemiddelDose"
NS_VARENR = "http://dmp.no/fhir/NamingSystem/fest-varenummer"
NS_LMR = "http://dmp.no/fhir/NamingSystem/lmrLopenummer"
NS_GTIN = "https://www.gs1.org/gtin"
# ... and ours, for FEST ids no published NamingSystem covers (LMDI has none for Virkestoff: the
# dmp.no festVirkestoff we served before was ours, minted under DMP's domain; fhir/identifiers.py)
NS_VIRKESTOFF = NS_BASE + "festVirkestoff"
NS_VIRKESTOFF_MED_STYRKE = NS_BASE + "festVirkestoffMedStyrke"
NS_ORDINERING_VIRKESTOFF = NS_BASE + "festOrdineringVirkestoff"
NS_INTERAKSJON = NS_BASE + "festInteraksjon"
NS_BYTTEGRUPPE = NS_BASE + "festByttegruppe"
NS_VILKAR = NS_BASE + "festVilkar"
NS_DIAGNOSE = NS_BASE + "festDiagnose"
NS_REFUSJONSGRUPPE = NS_BASE + "festRefusjonsgruppe"
NS_FEST_ID = NS_BASE + "festId"
"""Any FEST Id, for references whose target catalogue FEST does not fix (RefElement, ...)."""
NS_PHPID = NS_BASE + "phpid"
"""Our PhPIDs (ISO 11616), levels 1-4 in one system, the level in the value (terminology/phpid.py);
experimental until a national PhPID authority exists (docs/phpid.md)."""
NS_URI = "urn:ietf:rfc:3986"

# code systems
ATC = "http://www.whocc.no/atc"
ATC_OID = "2.16.578.1.12.4.1.1.7180"
VOLVEN_PREFIX = "urn:oid:"
RESEPTGRUPPE = "urn:oid:2.16.578.1.12.4.1.1.7421"
"""Reseptgruppe is a CS (no S attribute) in M30, but has a Volven OID that no-basis uses."""
PUBLICATION_STATUS = "http://hl7.org/fhir/publication-status"
INGREDIENT_ROLE = "http://hl7.org/fhir/ingredient-role"
NAME_PART_TYPE = "http://hl7.org/fhir/medicinal-product-name-part-type"
COUNTRY = "urn:iso:std:iso:3166"
LANGUAGE = "urn:ietf:bcp:47"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
CONCEPT_PARENT = "http://hl7.org/fhir/concept-properties#parent"

CS_KIND = CS_BASE + "fest-kind"
"""Codes naming the FEST payload kind a Basic resource carries (Byttegruppe, Vilkar, ...)."""
CS_REFERENCE = CS_BASE + "fest-reference"
"""Codes naming the FEST Ref* element a relationship or cross-reference came from."""
CS_MARKETING_STATUS = CS_BASE + "fest-marketing-status"
CS_INTERACTION_TYPE = CS_BASE + "fest-interaction-type"
CS_PACKAGING_PROPERTY = CS_BASE + "packaging-property"
"""Property types of a package level that R5 has no element for: SAFEST's flags (retail pack, unit
dose) and the level's place counted from the item (package-level, valued in DMP's PackageLevel)."""
PACKAGING_PROPERTIES = {
    "retailpack": ("retail-pack", "Retail pack"),  # SAFEST safest-retailPack
    "singleunit": ("unit-dose", "Unit dose"),  # SAFEST safest-singleUnit
    "packagelevel": ("package-level", "Package level"),  # SAFEST's PackageLevel code system
}
"""The tail of a SAFEST package item flag's URL (lower case) -> its property code and display."""
DMP_PACKAGE_LEVEL = "http://legemiddelverket.no/fhir/CodeSystem/PackageLevel"
"""DMP's code system of package levels (SAFEST, 2020): 1 Primary .. 4 Quaternary."""
PACKAGE_LEVELS = {1: "Primary", 2: "Secondary", 3: "Tertiary", 4: "Quaternary"}


def cs_system(element: str) -> str:
    """The code system of a FEST CS element (a code without an S attribute)."""
    return RESEPTGRUPPE if element == "Reseptgruppe" else CS_BASE + "fest-" + element


def ext_url(element: str) -> str:
    """The URL of the extension that carries FEST element `element` on a resource or element."""
    return EXT_BASE + "fest-" + element


EXT_OPPFORING = ext_url("oppforing")
"""The Oppf envelope (Id, Tidspunkt, Status) of the entry a resource was made from."""
EXT_LEXICAL = ext_url("lexical")
"""The FEST text of a number whose FHIR form would not give the same text back (``1.50``)."""
EXT_EMPTY = ext_url("empty")
"""Marks a FEST element that was present but empty, which FHIR cannot hold as a value."""
EXT_ORIGINAL_TEXT = ext_url("OT")
"""A CV's OT (original text) attribute, on the Coding made from the CV."""
EXT_EMPTY_ATTRIBUTE = ext_url("empty-attribute")
"""Names an attribute that FEST gave as an empty string, which FHIR cannot hold."""

EDQM = "http://standardterms.edqm.eu"
"""EDQM Standard Terms, as our reviewed ConceptMaps name it."""
EDQM_ALIASES = (
    "https://mpd.noma.no/codesystem/pharmaceutical-dose-form",
    "https://mpd.noma.no/codesystem/combined-pharmaceutical-dose-form",
)
"""DMP's code systems that publish EDQM Standard Terms codes as they are (reference/idmp-fhir.md a)."""
