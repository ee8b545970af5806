"""SAFEST (DMP's IDMP FHIR service, R4 with NOMA profiles) -> FHIR R5, and the FEST ids SAFEST carries.

Pure functions, no I/O. `to_r5` converts a whole delivery at once, because R5 turns some
references around (R4 MedicinalProductManufactured.ingredient -> R5 Ingredient.for). `fest_links`
reads the FEST ids of an R5 resource so the importer can link it to what FEST made.

Read tables.py for the mapping (one table per R4 element; `mapping()` lists it). In short:

=================================  ==========================================================
R4                                 R5
=================================  ==========================================================
MedicinalProduct                   MedicinalProductDefinition: productClassification ->
                                   classification, name.namePart -> name.part,
                                   name.countryLanguage -> name.usage, NOMA extension
                                   authorizedPharmaceuticalDoseForm -> combinedPharmaceuticalDoseForm;
                                   pharmaceuticalProduct / packagedMedicinalProduct turned around
                                   into APD.formOf / PPD.packageFor
MedicinalProductPackaged           PackagedProductDefinition: subject -> packageFor, packageItem ->
                                   packaging (quantity an integer, manufacturedItem/device ->
                                   containedItem), pack size -> containedItemQuantity, SAFEST
                                   itemnumber extension -> identifier (fest-varenummer)
MedicinalProductManufactured       ManufacturedItemDefinition (status active); quantity -> the
                                   packages' containedItem.amount; legemiddeldoseId -> identifier
MedicinalProductPharmaceutical     AdministrableProductDefinition (status active)
MedicinalProductIngredient         Ingredient (status active): for = the MID/APD listing it and
                                   their product; substance.code -> CodeableReference; strength
                                   with low limit -> RatioRange
SubstanceSpecification             SubstanceDefinition: type -> classification, relationship.
                                   relationship -> type, amountType -> comparator
MedicinalProductAuthorization      RegulatedAuthorization: country/jurisdiction -> region,
                                   procedure -> case, legalBasis -> basis
R5 IDMP types, Basic               unchanged
CodeSystem, ValueSet, ConceptMap   R4 or R5 by what they hold; ConceptMap's R4 form converted
                                   (terminology.py: equivalence -> relationship, ...)
=================================  ==========================================================

Kept as extension ``https://grunndata.no/fhir/StructureDefinition/r4-<R4 path>`` (valueString: a
string as it is, anything else as its JSON text), because R5 has no element for them: MedicinalProduct.specialDesignation,
manufacturingBusinessOperation.authorisationReferenceNumber/regulator; MedicinalProductPackaged.
batchIdentifier, shelfLifeStorage.identifier; MedicinalProductIngredient.specifiedSubstance.group/
confidentiality; SubstanceSpecification.source, sourceMaterial, structure.isotope, structure.
representation.attachment, property with category/parameters/reference, relationship.amountRange;
MedicinalProductAuthorization.restoreDate, dataExclusivityPeriod, dateOfFirstAuthorization,
internationalBirthDate, jurisdictionalAuthorization; meta.profile (R4 profiles). A reference R5
turns around whose target is not an R4 resource of the delivery stays as ``r4-<path>`` with a
valueReference. Other NOMA extensions (maHolderOrManufacturer, repackagingManufacturer, the FEST id,
SMS ID and UNII of a substance, nutrition dose form, ...) have no R5 element and stay as they are.
"""

from grunndata.fhir.systems import CS_PACKAGING_PROPERTY, PACKAGING_PROPERTIES
from grunndata.translators.safest.delivery import R5_TYPES, label_of, to_r5
from grunndata.translators.safest.links import FEST_SYSTEMS, GENERIC_KINDS, FestLink, fest_links
from grunndata.translators.safest.model import Conversion, Problem, json_bytes
from grunndata.translators.safest.rules import KEPT_BASE, R4_TO_R5, kept_url
from grunndata.translators.safest.tables import (
    CS_R4_CHARACTERISTIC,
    Row,
    mapping,
    primitive_keeps,
)
from grunndata.translators.safest.terminology import EQUIVALENCE

__all__ = [
    "CS_PACKAGING_PROPERTY",
    "CS_R4_CHARACTERISTIC",
    "EQUIVALENCE",
    "FEST_SYSTEMS",
    "GENERIC_KINDS",
    "KEPT_BASE",
    "PACKAGING_PROPERTIES",
    "R4_TO_R5",
    "R5_TYPES",
    "Conversion",
    "FestLink",
    "Problem",
    "Row",
    "fest_links",
    "json_bytes",
    "kept_url",
    "label_of",
    "mapping",
    "primitive_keeps",
    "to_r5",
]
