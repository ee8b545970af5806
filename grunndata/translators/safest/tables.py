"""The R4 -> R5 mapping, one table per R4 resource and backbone element (read this file for the mapping).

Sources: the R4 (4.0.1) and R5 resource definitions, and reference/idmp-fhir.md (b) for the renames
and moves. What has no R5 element is kept as extension ``r4-<R4 path>`` holding the element's JSON
(`Keep`); `mapping()` lists every rule, so nothing leaves the table undocumented.

Derived in R5 (nothing in R4 says it; see the `Spec` notes): ManufacturedItemDefinition.status,
AdministrableProductDefinition.status and Ingredient.status are ``active``, because SAFEST publishes
only what is current (its snapshot holds the latest version of active resources); an Ingredient
without a role (invalid R4) gets the role Active, with a problem; PackagedProductDefinition.
containedItemQuantity (the pack size) is counted from the packaging levels and item amounts.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from grunndata.fhir import (
    DATA_ABSENT_REASON,
    INGREDIENT_ROLE,
    NS_DOSE,
    NS_LMR,
    NS_MERKEVARE,
    NS_VARENR,
    PUBLICATION_STATUS,
)
from grunndata.fhir.r4_elements import ELEMENTS as R4_ELEMENTS
from grunndata.fhir.systems import CS_PACKAGING_PROPERTY, PACKAGING_PROPERTIES
from grunndata.translators.safest.model import Json
from grunndata.translators.safest.rules import (
    KEEP,
    At,
    Back,
    Consumed,
    Custom,
    ExtensionRule,
    Into,
    Keep,
    Rule,
    Spec,
    Table,
    To,
    find_r4,
    kept_url,
    renames_only,
    walk,
)

CS_R4_CHARACTERISTIC = "https://grunndata.no/fhir/CodeSystem/r4-characteristic"
"""Property types for R4 ProdCharacteristic elements and otherCharacteristics (code = R4 element name)."""
ITEMNUMBER_STATUS = "http://legemiddelverket.no/FHIR/CodeSystem/itemnumberstatus"
"""SAFEST's status of a varenr (its 2020 examples: A, Active), spelt as DMP's examples spell it."""
ACTIVE_ROLE: Json = {"coding": [{"system": INGREDIENT_ROLE, "code": "100000072072", "display": "Active"}]}

# --- value converters ------------------------------------------------------------------------------


def concept_of_coding(coding: Any, at: At) -> Json:
    """R4 Coding -> R5 CodeableConcept (domain, name part type)."""
    return {"coding": [copy.deepcopy(coding)]}


def concept_of_text(text: Any, at: At) -> Json:
    """R4 string -> R5 CodeableConcept with that text (specialMeasures)."""
    return {"text": text}


SUBSTANCE_REFERENCE = "http://legemiddelverket.no/fhir/StructureDefinition/safest-substanceReference"
"""SAFEST's extension on a CodeableConcept naming a SubstanceSpecification (valueReference)."""


def concept_reference(concept: Any, at: At) -> Json:
    """R4 CodeableConcept -> R5 CodeableReference (substance codes, operation type); a concept that
    is only SAFEST's substanceReference extension -> the CodeableReference's reference."""
    extensions = concept.get("extension") if isinstance(concept, dict) else None
    if (
        set(concept) == {"extension"}
        and isinstance(extensions, list)
        and len(extensions) == 1
        and isinstance(extensions[0], dict)
        and str(extensions[0].get("url", "")).lower().endswith("safest-substancereference")
        and isinstance(extensions[0].get("valueReference"), dict)
    ):
        return {"reference": copy.deepcopy(extensions[0]["valueReference"])}
    return {"concept": copy.deepcopy(concept)}


def annotation(text: Any, at: At) -> Json:
    """R4 comment string -> R5 Annotation."""
    return {"text": text}


def period_from(date_time: Any, at: At) -> Json:
    """R4 dateTime -> R5 Period starting then (the operation's effective date)."""
    return {"start": date_time}


@dataclass(frozen=True, slots=True)
class wrapped:  # noqa: N801 (a converter, named as the functions beside it)
    """A converter putting the value one level down, under `name` (contact -> contact.contact).
    A value, not a closure, so the R5 -> R4 direction (to_r4.py) can read `name` back."""

    name: str

    def __call__(self, value: Any, at: At) -> Json:
        return {self.name: copy.deepcopy(value)}


def cross_reference(identifier: Any, at: At) -> Json:
    """R4 crossReference (an Identifier) -> R5 crossReference.product, a logical Reference."""
    return {"product": {"reference": {"identifier": copy.deepcopy(identifier)}}}


def whole_number(quantity: Any, at: At) -> Any:
    """R4 packageItem.quantity (a Quantity, count of this level in its parent) -> R5 integer."""
    value = quantity.get("value")
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    at.warn(
        f"{at.path} {value!r} is not a whole number as R5 packaging.quantity is; kept as extension {kept_url(at.path)}"
    )
    return KEEP


def contained_device(reference: Any, at: At) -> Json:
    """R4 packageItem.device -> R5 packaging.containedItem (the device is an item of the package)."""
    return {"item": {"reference": copy.deepcopy(reference)}}


def contained_manufactured_item(reference: Any, at: At) -> Json:
    """R4 packageItem.manufacturedItem -> R5 containedItem, its amount the item's R4 quantity."""
    item: Json = {"item": {"reference": copy.deepcopy(reference)}}
    target = find_r4(reference.get("reference"), at.node, at.ctx)
    if target is None:
        at.warn(
            f"{at.path} points at {reference.get('reference')}, which is not in this delivery; its amount (and the pack size) is unknown"
        )
    elif isinstance(target.get("quantity"), dict):
        item["amount"] = copy.deepcopy(target["quantity"])
    return item


def _property(code: str, value_type: str, value: Any) -> Json:
    return {"type": {"coding": [{"system": CS_R4_CHARACTERISTIC, "code": code}]}, value_type: value}


_CHARACTERISTIC_VALUE = {
    "height": "valueQuantity",
    "width": "valueQuantity",
    "depth": "valueQuantity",
    "weight": "valueQuantity",
    "nominalVolume": "valueQuantity",
    "externalDiameter": "valueQuantity",
    "shape": "text",
    "color": "text",
    "imprint": "text",
    "image": "valueAttachment",
    "scoring": "valueCodeableConcept",
}


def physical_properties(characteristic: Any, at: At) -> list[Json]:
    """R4 ProdCharacteristic -> one R5 property per value (strings as CodeableConcept text, since
    PackagedProductDefinition.packaging.property has no string value)."""
    properties = []
    for name, value in characteristic.items():
        kind = _CHARACTERISTIC_VALUE.get(name)
        if kind is None:  # id, extension: the ProdCharacteristic element itself has no R5 counterpart
            continue
        for item in value if isinstance(value, list) else [value]:
            if kind == "text":
                properties.append(_property(name, "valueCodeableConcept", {"text": item}))
            else:
                properties.append(_property(name, kind, copy.deepcopy(item)))
    return properties


def other_property(concept: Any, at: At) -> Json:
    """R4 otherCharacteristics (a CodeableConcept) -> R5 property typed otherCharacteristics."""
    return _property("otherCharacteristics", "valueCodeableConcept", copy.deepcopy(concept))


_PROPERTY_VALUES = {
    "amountQuantity": "valueQuantity",
    "definingSubstanceCodeableConcept": "valueCodeableConcept",
}


def substance_property(prop: Any, at: At) -> Any:
    """R4 SubstanceSpecification.property -> R5 property {type: code, value} when nothing else is set;
    category, parameters, a defining substance reference or a string amount have no R5 home, so
    such a property is kept whole."""
    names = set(prop) - {"id", "extension"}
    values = names & set(_PROPERTY_VALUES)
    if "code" not in prop or not names <= {"code", *values} or len(values) > 1:
        return KEEP
    out = {name: copy.deepcopy(prop[name]) for name in ("id", "extension") if name in prop}
    out["type"] = copy.deepcopy(prop["code"])
    for name in values:
        out[_PROPERTY_VALUES[name]] = copy.deepcopy(prop[name])
    return out


# --- custom element functions ---------------------------------------------------------------------


def ratio_or_range(value: str, low: str, ratio: str, ratio_range: str) -> Custom:
    """R4 strength ratio with its optional low limit -> R5 Ratio, or RatioRange when both are set."""

    def convert(src: Json, name: str, out: Json, at: At) -> None:
        high, lowest = src[value], src.get(low)
        if lowest is None:
            out[ratio] = copy.deepcopy(high)
        elif lowest.get("denominator") == high.get("denominator"):
            parts = {
                "lowNumerator": lowest.get("numerator"),
                "highNumerator": high.get("numerator"),
                "denominator": high.get("denominator"),
            }
            out[ratio_range] = {key: copy.deepcopy(part) for key, part in parts.items() if part is not None}
        else:
            out[ratio] = copy.deepcopy(high)
            url = at.keep(out, low, lowest, warn=False)
            at.warn(
                f"{at.path}.{low} has another denominator than {value}, so R5 cannot make one RatioRange of them; kept as extension {url}"
            )

    return Custom(f"{ratio} | {ratio_range}", convert, f"{ratio_range} when {low} is set")


def _amount_ratio(src: Json, name: str, out: Json, at: At) -> None:
    """R4 amountRatio with amountRatioLowLimit (a range) -> R5 amountRatio (low) + ratioHighLimitAmount."""
    low = src.get("amountRatioLowLimit")
    if low is None:
        out["amountRatio"] = copy.deepcopy(src[name])
    else:
        out["amountRatio"] = copy.deepcopy(low)
        out["ratioHighLimitAmount"] = copy.deepcopy(src[name])


def _packaging(src: Json, name: str, out: Json, at: At) -> None:
    """R4 packageItem (1..*) -> R5 packaging (0..1): one item is the packaging; several become the
    inner packaging of an outer packaging level that has nothing else."""
    value = src[name]
    items = value if isinstance(value, list) else [value]
    levels = [walk(item, "MedicinalProductPackaged.packageItem", at.child(name)) for item in items]
    if levels:
        out["packaging"] = levels[0] if len(levels) == 1 else {"packaging": levels}


def _manufactured_quantity(src: Json, name: str, out: Json, at: At) -> None:
    """R4 MedicinalProductManufactured.quantity: R5 has it per package (packaging.containedItem.amount),
    so it is kept here only when no package of the delivery counts this item; one that only says it
    is unknown (a data-absent-reason, as our R4 view sends it: R4 requires the element) says nothing."""
    quantity = src[name]
    unknown = (
        isinstance(quantity, dict)
        and set(quantity) == {"extension"}
        and all(e.get("url") == DATA_ABSENT_REASON for e in quantity["extension"] if isinstance(e, dict))
    )
    if id(at.node.r4) not in at.ctx.consumed and not unknown:
        at.keep(out, name, quantity)


def _specified_substance(src: Json, name: str, out: Json, at: At) -> None:
    """R4 specifiedSubstance -> R5 Ingredient.substance when R4 gives no substance (R5 has one
    substance per Ingredient: any further specified substance is kept, with a problem)."""
    items = src[name] if isinstance(src[name], list) else [src[name]]
    if "substance" in src or not items:
        at.keep(out, name, items)
        return
    out["substance"] = walk(items[0], "MedicinalProductIngredient.specifiedSubstance", at.child(name))
    if items[1:]:
        url = at.keep(out, name, items[1:], warn=False)
        at.warn(
            f"{at.path}.{name} has {len(items)} substances where R5 Ingredient has one; all but the first are kept as extension {url}"
        )


# --- NOMA extensions with an R5 element ------------------------------------------------------------


def _dose_form(extension: Json, out: Json, at: At) -> bool:
    """NOMA authorizedPharmaceuticalDoseForm -> MedicinalProductDefinition.combinedPharmaceuticalDoseForm
    (R5's authorised dose form; NOMA's profile forbids the R4 element, so it is free)."""
    if "valueCodeableConcept" not in extension or "combinedPharmaceuticalDoseForm" in out:
        return False
    out["combinedPharmaceuticalDoseForm"] = copy.deepcopy(extension["valueCodeableConcept"])
    return True


def _item_number(extension: Json, out: Json, at: At) -> bool:
    """SAFEST itemnumber (varenr) -> PackagedProductDefinition.identifier in the fest-varenummer system,
    and its status -> PackagedProductDefinition.status (R4 has no package status; FEST-made packages
    have theirs there): SAFEST's coding kept, and publication status active beside it for A (Active).

    A plain valueString, or (as DMP's examples send it) a part holding the number beside a part
    holding its status coding."""
    number, status = extension.get("valueString"), None
    if number is None:
        parts = _parts(extension, {"itemnumber": "valueString", "status": "valueCoding"}, at)
        number, status = parts.get("itemnumber"), parts.get("status")
    if not isinstance(number, str):
        return False
    out.setdefault("identifier", []).append({"system": NS_VARENR, "value": number})
    if isinstance(status, dict) and "status" not in out:
        codings = [copy.deepcopy(status)]
        if status.get("system") == ITEMNUMBER_STATUS and status.get("code") == "A":
            codings.insert(0, {"system": PUBLICATION_STATUS, "code": "active"})
        out["status"] = {"coding": codings}
    return True


@dataclass(frozen=True, slots=True)
class _fest_identifier:  # noqa: N801 (an extension function, named as the functions beside it)
    """A SAFEST extension holding a FEST id (legemiddeldoseId, legemiddelMerkevareId) or the LMR
    number -> an identifier of the resource: an Identifier as SAFEST gives it (its system too: the
    import maps systems to the served form), a plain string in `system`. A value, not a closure, so
    the R5 -> R4 direction can read `system` back."""

    system: str

    def __call__(self, extension: Json, out: Json, at: At) -> bool:
        if isinstance(extension.get("valueIdentifier"), dict):
            identifier = copy.deepcopy(extension["valueIdentifier"])
        elif isinstance(extension.get("valueString"), str):
            identifier = {"system": self.system, "value": extension["valueString"]}
        else:
            return False
        out.setdefault("identifier", []).append(identifier)
        return True


def _contained_item(extension: Json, out: Json, at: At) -> bool:
    """SAFEST containedItem (parts item: Reference, quantity: integer) -> packaging.containedItem,
    the quantity as its amount."""
    parts = _parts(extension, {"item": "valueReference", "quantity": "valueInteger"}, at)
    reference = parts.get("item")
    if not isinstance(reference, dict):
        return False
    item: Json = {"item": {"reference": copy.deepcopy(reference)}}
    amount = parts.get("quantity")
    if isinstance(amount, int) and not isinstance(amount, bool):
        item["amount"] = {"value": amount}
    out.setdefault("containedItem", []).append(item)
    return True


def _packaging_flag(extension: Json, out: Json, at: At) -> bool:
    """SAFEST retailPack / singleUnit (valueBoolean) on a package item -> packaging.property."""
    tail = str(extension.get("url")).rstrip("/").rsplit("/", 1)[-1].lower()
    found = next((v for k, v in PACKAGING_PROPERTIES.items() if k in tail), None)
    value = typed_value("valueBoolean", extension.get("valueBoolean"))
    if found is None or not isinstance(value, bool):
        return False
    code, display = found
    out.setdefault("property", []).append(
        {
            "type": {"coding": [{"system": CS_PACKAGING_PROPERTY, "code": code, "display": display}]},
            "valueBoolean": value,
        }
    )
    return True


def _parts(extension: Json, wanted: dict[str, str], at: At) -> dict[str, Any]:
    """The values of a complex extension's parts by their url; a part sent without a url (DMP's
    2020 examples do so) is taken by its value type when exactly one part has that type, with a warning.
    A value sent as text (``"valueInteger": "1"``, as a converter of R4 XML may give it) is read as its type."""
    subs = [e for e in extension.get("extension") or [] if isinstance(e, dict)]
    found = {name: e.get(kind) for name, kind in wanted.items() for e in subs if e.get("url") == name}
    for name, kind in wanted.items():
        typed = [e[kind] for e in subs if "url" not in e and kind in e]
        if name not in found and len(typed) == 1:
            found[name] = typed[0]
            at.warn(
                f"{at.path}.extension ({extension.get('url')}) has a part without url; its {kind} is read as {name}"
            )
    return {name: typed_value(wanted[name], value) for name, value in found.items()}


TYPED_VALUES = ("valueInteger", "valuePositiveInt", "valueUnsignedInt", "valueBoolean", "valueDecimal")
"""Extension values JSON writes as a number or true/false, which a sender may give as text."""


def typed_value(kind: str, value: Any) -> Any:
    """`value` of extension value `kind` as JSON types it: ``"1"`` -> 1 for an integer, ``"true"`` ->
    True for a boolean, ``"1.50"`` -> Decimal("1.50"); anything else as it is."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if kind == "valueBoolean":
        return {"true": True, "false": False}.get(text, value)
    if kind == "valueDecimal":
        try:
            number = Decimal(text)
        except ArithmeticError:
            return value
        return number if number.is_finite() and text[:1] in "-0123456789" else value
    if kind in TYPED_VALUES and re.fullmatch(r"[+-]?[0-9]+", text):
        return int(text)
    return value


# --- the tables ------------------------------------------------------------------------------------


def same(*names: str) -> dict[str, Rule]:
    """Elements whose name, type and meaning R5 keeps."""
    return {name: To(name) for name in names}


META = Table(
    {
        **same("versionId", "lastUpdated", "source", "security", "tag"),
        "profile": To("profile", note="kept as a source-profile extension when stored"),
    }
)
NO_HOME = "no R5 element"

TABLES: dict[str, Table] = {
    "Meta": META,
    # MedicinalProduct -> MedicinalProductDefinition
    "MedicinalProduct": Table(
        {
            "meta": Into("meta", "Meta"),
            **same("identifier", "type", "combinedPharmaceuticalDoseForm", "legalStatusOfSupply"),
            **same("additionalMonitoringIndicator", "marketingStatus", "attachedDocument", "masterFile"),
            **same("clinicalTrial"),
            "domain": To("domain", concept_of_coding),
            "specialMeasures": To("specialMeasures", concept_of_text),
            "paediatricUseIndicator": To("pediatricUseIndicator"),
            "productClassification": To("classification"),
            "pharmaceuticalProduct": Back("AdministrableProductDefinition", "formOf"),
            "packagedMedicinalProduct": Back("PackagedProductDefinition", "packageFor"),
            "contact": To("contact", wrapped("contact")),
            "name": Into("name", "MedicinalProduct.name"),
            "crossReference": To("crossReference", cross_reference),
            "manufacturingBusinessOperation": Into(
                "operation", "MedicinalProduct.manufacturingBusinessOperation"
            ),
            "specialDesignation": Keep(
                "R5 has no special designation (orphan status is a RegulatedAuthorization)"
            ),
        },
        (
            ExtensionRule(
                "authorizedpharmaceuticaldoseform", "combinedPharmaceuticalDoseForm", _dose_form, "EDQM codes"
            ),
        ),
    ),
    "MedicinalProduct.name": Table(
        {
            **same("productName"),
            "namePart": Into("part", "MedicinalProduct.name.namePart"),
            "countryLanguage": Into("usage", "MedicinalProduct.name.countryLanguage"),
        }
    ),
    "MedicinalProduct.name.namePart": Table({**same("part"), "type": To("type", concept_of_coding)}),
    "MedicinalProduct.name.countryLanguage": Table(same("country", "jurisdiction", "language")),
    "MedicinalProduct.manufacturingBusinessOperation": Table(
        {
            "operationType": To("type", concept_reference),
            "authorisationReferenceNumber": Keep(NO_HOME),
            "effectiveDate": To("effectiveDate", period_from),
            **same("confidentialityIndicator"),
            "manufacturer": To("organization"),
            "regulator": Keep(NO_HOME),
        }
    ),
    # MedicinalProductPackaged -> PackagedProductDefinition
    "MedicinalProductPackaged": Table(
        {
            "meta": Into("meta", "Meta"),
            **same("identifier", "description", "marketingStatus", "manufacturer"),
            "subject": To("packageFor"),
            "legalStatusOfSupply": To("legalStatusOfSupply", wrapped("code"), as_list=True),
            "marketingAuthorization": Back("RegulatedAuthorization", "subject"),
            "batchIdentifier": Keep("R5 describes a package type, not batches"),
            "packageItem": Custom(
                "packaging",
                _packaging,
                "several R4 items go under one outer level",
                "MedicinalProductPackaged.packageItem",
            ),
        },
        (
            ExtensionRule(
                "itemnumber", "identifier | status", _item_number, f"system {NS_VARENR}; its status as status"
            ),
        ),
    ),
    "MedicinalProductPackaged.packageItem": Table(
        {
            **same("identifier", "type", "material", "alternateMaterial", "manufacturer"),
            "quantity": To("quantity", whole_number),
            "device": To("containedItem", contained_device),
            "manufacturedItem": To("containedItem", contained_manufactured_item),
            "packageItem": Into("packaging", "MedicinalProductPackaged.packageItem"),
            "physicalCharacteristics": To("property", physical_properties),
            "otherCharacteristics": To("property", other_property),
            "shelfLifeStorage": Into("shelfLifeStorage", "ProductShelfLife"),
        },
        (
            ExtensionRule(
                "containeditem", "containedItem", _contained_item, "SAFEST containedItem (item, quantity)"
            ),
            ExtensionRule(
                "retailpack", "property", _packaging_flag, f"type {CS_PACKAGING_PROPERTY}#retail-pack"
            ),
            ExtensionRule(
                "singleunit", "property", _packaging_flag, f"type {CS_PACKAGING_PROPERTY}#unit-dose"
            ),
        ),
    ),
    "ProductShelfLife": Table(
        {
            "identifier": Keep(NO_HOME),
            **same("type", "specialPrecautionsForStorage"),
            "period": To("periodDuration"),
        }
    ),
    # MedicinalProductManufactured -> ManufacturedItemDefinition
    "MedicinalProductManufactured": Table(
        {
            "meta": Into("meta", "Meta"),
            **same("manufacturedDoseForm", "unitOfPresentation", "manufacturer"),
            "quantity": Custom(
                "PackagedProductDefinition.packaging.containedItem.amount", _manufactured_quantity
            ),
            "ingredient": Back("Ingredient", "for"),
            "physicalCharacteristics": To("property", physical_properties),
            "otherCharacteristics": To("property", other_property),
        },
        (
            ExtensionRule(
                "legemiddeldoseid", "identifier", _fest_identifier(NS_DOSE), f"as given, or system {NS_DOSE}"
            ),
            ExtensionRule(
                "legemiddelmerkevareid",
                "identifier",
                _fest_identifier(NS_MERKEVARE),
                f"as given, or system {NS_MERKEVARE}",
            ),
            ExtensionRule("lmrnumber", "identifier", _fest_identifier(NS_LMR), f"system {NS_LMR}"),
        ),
    ),
    # MedicinalProductPharmaceutical -> AdministrableProductDefinition
    "MedicinalProductPharmaceutical": Table(
        {
            "meta": Into("meta", "Meta"),
            **same("identifier", "administrableDoseForm", "unitOfPresentation", "routeOfAdministration"),
            "ingredient": Back("Ingredient", "for"),
            "device": To("device", first=True),
            "characteristics": Into("property", "MedicinalProductPharmaceutical.characteristics"),
        }
    ),
    "MedicinalProductPharmaceutical.characteristics": Table({"code": To("type"), **same("status")}),
    # MedicinalProductIngredient -> Ingredient
    "MedicinalProductIngredient": Table(
        {
            "meta": Into("meta", "Meta"),
            **same("identifier", "role", "allergenicIndicator"),
            "manufacturer": To("manufacturer", wrapped("manufacturer")),
            "specifiedSubstance": Custom(
                "substance",
                _specified_substance,
                "when R4 has no substance",
                "MedicinalProductIngredient.specifiedSubstance",
            ),
            "substance": Into("substance", "MedicinalProductIngredient.substance"),
        }
    ),
    "MedicinalProductIngredient.substance": Table(
        {
            "code": To("code", concept_reference),
            "strength": Into("strength", "MedicinalProductIngredient.strength"),
        }
    ),
    "MedicinalProductIngredient.specifiedSubstance": Table(
        {
            "code": To("code", concept_reference),
            "group": Keep("R5 Ingredient.group is where in the item, not the ISO 11238 group"),
            "confidentiality": Keep(NO_HOME),
            "strength": Into("strength", "MedicinalProductIngredient.strength"),
        }
    ),
    "MedicinalProductIngredient.strength": Table(
        {
            "presentation": ratio_or_range(
                "presentation", "presentationLowLimit", "presentationRatio", "presentationRatioRange"
            ),
            "presentationLowLimit": Consumed("presentation"),
            "concentration": ratio_or_range(
                "concentration", "concentrationLowLimit", "concentrationRatio", "concentrationRatioRange"
            ),
            "concentrationLowLimit": Consumed("concentration"),
            **same("measurementPoint", "country"),
            "referenceStrength": Into(
                "referenceStrength",
                "MedicinalProductIngredient.strength.referenceStrength",
                required=("substance",),
            ),
        }
    ),
    "MedicinalProductIngredient.strength.referenceStrength": Table(
        {
            "substance": To("substance", concept_reference),
            "strength": ratio_or_range("strength", "strengthLowLimit", "strengthRatio", "strengthRatioRange"),
            "strengthLowLimit": Consumed("strength"),
            **same("measurementPoint", "country"),
        }
    ),
    # SubstanceSpecification -> SubstanceDefinition
    "SubstanceSpecification": Table(
        {
            "meta": Into("meta", "Meta"),
            "identifier": To("identifier", as_list=True),
            "type": To("classification", as_list=True),
            **same("status", "domain", "description", "moiety", "referenceInformation"),
            **same("nucleicAcid", "polymer", "protein"),
            "source": Keep("R5 informationSource is a Citation, not a DocumentReference"),
            "comment": To("note", annotation, as_list=True),
            "property": To("property", substance_property),
            "structure": Into("structure", "SubstanceSpecification.structure"),
            "code": Into("code", "SubstanceSpecification.code"),
            "name": Into("name", "SubstanceSpecification.name"),
            "molecularWeight": Into("molecularWeight", "MolecularWeight", required=("amount",)),
            "relationship": Into("relationship", "SubstanceSpecification.relationship", required=("type",)),
            "sourceMaterial": Keep("R5 sourceMaterial is a backbone element, not a reference"),
        }
    ),
    "MolecularWeight": Table(same("method", "type", "amount")),
    "SubstanceSpecification.structure": Table(
        {
            **same("stereochemistry", "opticalActivity", "molecularFormula", "molecularFormulaByMoiety"),
            "isotope": Keep(NO_HOME),
            "molecularWeight": Into("molecularWeight", "MolecularWeight", required=("amount",)),
            "source": To("sourceDocument"),
            "representation": Into("representation", "SubstanceSpecification.structure.representation"),
        }
    ),
    "SubstanceSpecification.structure.representation": Table(
        {
            **same("type", "representation"),
            "attachment": Keep("R5 has a DocumentReference, not an Attachment"),
        }
    ),
    "SubstanceSpecification.code": Table(
        {**same("code", "status", "statusDate", "source"), "comment": To("note", annotation, as_list=True)}
    ),
    "SubstanceSpecification.name": Table(
        {
            **same("name", "type", "status", "preferred", "language", "domain", "jurisdiction"),
            **same("official", "source"),
            "synonym": Into("synonym", "SubstanceSpecification.name"),
            "translation": Into("translation", "SubstanceSpecification.name"),
        }
    ),
    "SubstanceSpecification.relationship": Table(
        {
            "substanceReference": To("substanceDefinitionReference"),
            "substanceCodeableConcept": To("substanceDefinitionCodeableConcept"),
            "relationship": To("type"),
            **same("isDefining", "amountQuantity", "amountString", "source"),
            "amountRange": Keep("R5 has no range amount"),
            "amountRatio": Custom("amountRatio | ratioHighLimitAmount", _amount_ratio),
            "amountRatioLowLimit": Consumed("amountRatio"),
            "amountType": To("comparator"),
        }
    ),
    # MedicinalProductAuthorization -> RegulatedAuthorization
    "MedicinalProductAuthorization": Table(
        {
            "meta": Into("meta", "Meta"),
            **same("identifier", "status", "statusDate", "validityPeriod", "holder", "regulator"),
            "country": To("region"),
            "jurisdiction": To("region"),
            "legalBasis": To("basis", as_list=True),
            "procedure": Into("case", "MedicinalProductAuthorization.procedure"),
            "subject": To("subject", as_list=True),
            "restoreDate": Keep(NO_HOME),
            "dataExclusivityPeriod": Keep(NO_HOME),
            "dateOfFirstAuthorization": Keep(NO_HOME),
            "internationalBirthDate": Keep(NO_HOME),
            "jurisdictionalAuthorization": Keep("R5 makes one RegulatedAuthorization per jurisdiction"),
        }
    ),
    "MedicinalProductAuthorization.procedure": Table(
        {
            **same("identifier", "type", "dateDateTime", "datePeriod"),
            "application": Into("application", "MedicinalProductAuthorization.procedure"),
        }
    ),
}


# --- the resources ---------------------------------------------------------------------------------


def _active(out: Json, at: At) -> None:
    out.setdefault("status", "active")


def _ingredient(out: Json, at: At) -> None:
    out.setdefault("status", "active")
    if "role" not in out:
        out["role"] = copy.deepcopy(ACTIVE_ROLE)
        at.warn("has no role (R4 requires one); Ingredient.role is set to Active (100000072072)")


def _pack_size(out: Json, at: At) -> None:
    """containedItemQuantity: each contained item's amount times the count of every level above it;
    unless given exactly (our R4 view's ``r5-`` extension: two levels of one item stay two)."""
    if "containedItemQuantity" in out:
        return
    totals: dict[tuple[Any, ...], Json] = {}
    if isinstance(out.get("packaging"), dict):
        _count(out["packaging"], 1, totals)
    if totals:
        out["containedItemQuantity"] = list(totals.values())


def _count(packaging: Json, factor: int, totals: dict[tuple[Any, ...], Json]) -> None:
    quantity = packaging.get("quantity")
    factor *= quantity if isinstance(quantity, int) else 1
    for item in packaging.get("containedItem", []):
        amount = item.get("amount")
        value = amount.get("value") if isinstance(amount, dict) else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        unit = {name: amount[name] for name in ("unit", "system", "code") if name in amount}
        total = totals.setdefault(tuple(unit.items()), {"value": 0, **unit})
        total["value"] += factor * value
    for inner in packaging.get("packaging", []):
        _count(inner, factor, totals)


SPECS: dict[str, Spec] = {
    "MedicinalProduct": Spec("MedicinalProductDefinition", ("name",)),
    "MedicinalProductPackaged": Spec("PackagedProductDefinition", finish=_pack_size),
    "MedicinalProductManufactured": Spec(
        "ManufacturedItemDefinition", ("status", "manufacturedDoseForm"), _active, "status active"
    ),
    "MedicinalProductPharmaceutical": Spec(
        "AdministrableProductDefinition", ("status", "routeOfAdministration"), _active, "status active"
    ),
    "MedicinalProductIngredient": Spec(
        "Ingredient", ("status", "role", "substance"), _ingredient, "status active; role Active if missing"
    ),
    "SubstanceSpecification": Spec("SubstanceDefinition"),
    "MedicinalProductAuthorization": Spec("RegulatedAuthorization"),
}


class Row(NamedTuple):
    """One line of the mapping: an R4 element, where it goes, how, and why."""

    r4: str  # R4 path, e.g. "MedicinalProduct.name.namePart"
    r5: str  # R5 path(s), " | " between alternatives; for "extension" the extension URL
    how: str  # "element" | "custom" | "reversed" | "extension" | "with <sibling>" | "NOMA extension"
    note: str


def mapping() -> Iterator[Row]:
    """Every rule of the tables, resource by resource: the documentation of the mapping."""
    for rtype, spec in SPECS.items():
        yield from _rows(rtype, rtype, spec.r5, set())


def _rows(table: str, r4: str, r5: str, seen: set[str]) -> Iterator[Row]:
    rules = TABLES[table]
    for name, rule in rules.elements.items():
        path = f"{r4}.{name}"
        if isinstance(rule, Keep):
            yield Row(path, kept_url(path), "extension", rule.note)
        elif isinstance(rule, Back):
            yield Row(path, f"{rule.target}.{rule.field}", "reversed", rule.note)
        elif isinstance(rule, Consumed):
            yield Row(path, "", f"with {rule.by}", rule.note)
        else:
            targets = " | ".join(t if t[0].isupper() else f"{r5}.{t}" for t in rule.r5.split(" | "))
            yield Row(path, targets, "element" if isinstance(rule, To) else "custom", rule.note)
            if rule.table and rule.table not in seen:
                yield from _rows(rule.table, path, f"{r5}.{rule.r5}", seen | {rule.table})
    for extension in rules.extensions:
        targets = " | ".join(f"{r5}.{t}" for t in extension.r5.split(" | "))
        yield Row(f"{r4}.extension(*{extension.tail}*)", targets, "NOMA extension", extension.note)


def primitive_keeps() -> Iterator[str]:
    """The R4 paths ``<parent>._<name>`` walk() keeps as extension ``r4-<parent>._<name>``: the
    extensions on a primitive whose rule does more than rename it (rules._primitive_extension)."""
    for rtype in SPECS:
        yield from _primitive_keeps(rtype, rtype, set())


def _primitive_keeps(table: str, r4: str, seen: set[str]) -> Iterator[str]:
    for name, rule in TABLES[table].elements.items():
        path = f"{r4}.{name}"
        found = _r4_type(path)
        if found[:1].islower() and not renames_only(rule):
            yield f"{r4}._{name}"
        inner = getattr(rule, "table", None)
        if inner and inner not in seen:
            yield from _primitive_keeps(inner, path, seen | {inner})


def _r4_type(path: str) -> str:
    """The R4 type of the element at `path` ("" when R4 has none), through referenced elements."""
    names = path.split(".")
    owner = names[0]
    for name in names[1:]:
        found = R4_ELEMENTS.get(f"{owner}.{name}")
        if found is None:
            return ""
        owner = found[0]
    return owner
