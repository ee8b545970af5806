"""The R5 resource types we serve, listed once: the store, the server and the translators read them here."""

from __future__ import annotations

CORE_NAME, CORE_VERSION = "hl7.fhir.r5.core", "5.0.0"
"""The FHIR core package our resources are defined by (and validated against)."""

_FEST = (
    "MedicinalProductDefinition",
    "PackagedProductDefinition",
    "ManufacturedItemDefinition",
    "AdministrableProductDefinition",
    "Ingredient",
    "SubstanceDefinition",
    "ClinicalUseDefinition",
    "CodeSystem",
    "Basic",
)
FEST_TYPES = frozenset((*_FEST, "RegulatedAuthorization"))
"""The types the FEST mapping tables make (Basic: FEST catalogues IDMP has no resource for;
RegulatedAuthorization: a product's holder, from its Produsent)."""

SERVED_TYPES = (
    *_FEST,
    "RegulatedAuthorization",  # SAFEST/IDMP's, and FEST's Produsent as a holder
    "ValueSet",  # from SAFEST
    "Composition",  # an ePI document about a product (SAFEST) ...
    "Organization",  # ... and who holds it
)
"""The types the store serves (read, vread, history and search from its releases), in the order the
CapabilityStatement lists them: FEST's, then SAFEST's. Every type a search answers for, these and
the listed ones, is `grunndata.store.SEARCHED_TYPES`."""

TERMINOLOGY_TYPES = frozenset({"CodeSystem", "ValueSet", "ConceptMap"})
"""The terminology types: R4 or R5 by what they hold; ConceptMaps are served from the terminology's map index."""
