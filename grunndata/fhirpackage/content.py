"""The resources of our FHIR package, each made from the table that drives what we serve, so none can drift.

Extensions from the mapping tables (extensions.py), SearchParameters from the `standard=False`
rows of store/searchparams.py, NamingSystems for the identifier systems we mint (systems.py),
our CodeSystems, and the CapabilityStatement as the server makes it.
"""

from __future__ import annotations

import hashlib
import importlib
from typing import Any, cast

import orjson
from fhir.resources import get_fhir_model_class

from grunndata import __version__
from grunndata.catalog.fhir import INTERFACE_SYSTEM
from grunndata.catalog.model import TIERS
from grunndata.fhir import identifiers
from grunndata.fhir import systems as s
from grunndata.fhir.systems import CS_PACKAGING_PROPERTY, PACKAGING_PROPERTIES
from grunndata.fhirpackage.capability import capability_statement
from grunndata.fhirpackage.extensions import ExtensionUse, extension_uses
from grunndata.fhirpackage.names import CANONICAL, IMPLEMENTATION_GUIDE, NAME
from grunndata.importers.tiered.csvrows import TIERED_DATA_SYSTEM
from grunndata.store import SEARCH_PARAMS, SEARCHED_TYPES, STORE, TIER_SYSTEM, SearchParam, sources_of
from grunndata.store.searchparams import CONTENT_FILTER_PARAM, chain_targets, params_for
from grunndata.translators.fest_to_idmp.tables import MAPPINGS
from grunndata.translators.fest_to_idmp.xsd_paths import XSD_PATHS
from grunndata.translators.safest import CS_R4_CHARACTERISTIC

Json = dict[str, Any]

PUBLISHER = "Grunndata"
DATE = "2026-11-21"
"""A fixed date: the package's bytes depend on the code only (the version says which code)."""

_COMMON: Json = {"version": __version__, "status": "active", "date": DATE, "publisher": PUBLISHER}


def _id(url: str) -> str:
    """The url's last part as a FHIR id (at most 64 characters: a long one ends in a digest of it)."""
    tail = url.rstrip("/").rsplit("/", 1)[-1].replace("_", "-")
    return tail if len(tail) <= 64 else f"{tail[:55]}-{hashlib.sha256(tail.encode()).hexdigest()[:8]}"


def _name(text: str) -> str:
    """A computer-friendly name (FHIR cnl-0): letters and digits, each part capitalised."""
    parts = [p for p in "".join(c if c.isalnum() else " " for c in text).split() if p]
    return "".join(p[:1].upper() + p[1:] for p in parts)


# --- extensions ---------------------------------------------------------------------------------

_EXTENSION = "http://hl7.org/fhir/StructureDefinition/Extension"


def _element(path: str, minimum: int, maximum: str, short: str, **more: Any) -> Json:
    return {
        "id": path,
        "path": path,
        "short": short,
        "definition": short,
        "min": minimum,
        "max": maximum,
        **more,
    }


def extension_definition(use: ExtensionUse) -> Json:
    """A StructureDefinition of an extension: its url fixed, its value types (or none: sub-extensions
    only), and its `context`, the FHIR element paths where it may appear. The snapshot is written out
    (five elements, Extension's own) so a validator needs no snapshot generator."""
    ident = _id(use.url)
    value: Json
    if use.types:
        value = {"min": 0, "max": "1", "type": [{"code": t} for t in sorted(use.types)]}
    else:
        value = {"min": 0, "max": "0"}
    root_constraints = [
        {
            "key": "ele-1",
            "severity": "error",
            "human": "All FHIR elements must have a @value or children",
            "expression": "hasValue() or (children().count() > id.count())",
            "source": _EXTENSION,
        },
        {
            "key": "ext-1",
            "severity": "error",
            "human": "Must have either extensions or value[x], not both",
            "expression": "extension.exists() != value.exists()",
            "source": _EXTENSION,
        },
    ]
    root = _element("Extension", 0, "*", use.description, base={"path": "Extension", "min": 0, "max": "*"})
    snapshot = [
        {**root, "constraint": root_constraints},
        _element(
            "Extension.id",
            0,
            "1",
            "Unique id for inter-element referencing",
            base={"path": "Element.id", "min": 0, "max": "1"},
            type=_system_string("string"),
        ),
        _element(
            "Extension.extension",
            1 if use.complex and not use.types else 0,
            "*",
            "Sub-extensions: one per child element, its url the child's name"
            if use.complex
            else "Additional content",
            base={"path": "Element.extension", "min": 0, "max": "*"},
            type=[{"code": "Extension"}],
        ),
        _element(
            "Extension.url",
            1,
            "1",
            "identifies the meaning of the extension",
            base={"path": "Extension.url", "min": 1, "max": "1"},
            type=_system_string("uri"),
            fixedUri=use.url,
        ),
        _element(
            "Extension.value[x]",
            value["min"],
            value["max"],
            "Value of extension",
            base={"path": "Extension.value[x]", "min": 0, "max": "1"},
            **({"type": value["type"]} if "type" in value else {}),
        ),
    ]
    differential = [
        {"id": "Extension", "path": "Extension", "short": use.description},
        {"id": "Extension.url", "path": "Extension.url", "fixedUri": use.url},
        {"id": "Extension.value[x]", "path": "Extension.value[x]", **value},
    ]
    return {
        "resourceType": "StructureDefinition",
        "id": ident,
        "url": use.url,
        **_COMMON,
        "name": _name(ident),
        "title": ident,
        "description": use.description,
        "fhirVersion": "5.0.0",
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": c} for c in sorted(use.contexts)],
        "type": "Extension",
        "baseDefinition": _EXTENSION,
        "derivation": "constraint",
        "snapshot": {"element": snapshot},
        "differential": {"element": differential},
    }


# --- search parameters --------------------------------------------------------------------------


def _choice_names(resource: str) -> dict[str, tuple[str, str]]:
    """JSON name -> (element name, type) of every choice element in `resource`'s module of
    fhir.resources, e.g. itemCodeableConcept -> (item, CodeableConcept), from its field metadata."""
    module = importlib.import_module(get_fhir_model_class(resource).__module__)
    found: dict[str, tuple[str, str]] = {}
    for model in vars(module).values():
        for name, info in getattr(model, "model_fields", {}).items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            stem = extra.get("one_of_many")
            if isinstance(stem, str) and name.startswith(stem) and name != stem:
                found[name] = (stem, name[len(stem) :])
    return found


def expression(param: SearchParam) -> str | None:
    """The FHIRPath of a search parameter's path: ``comprisedOf.reference`` -> the Reference element
    ``MedicinalProductDefinition.comprisedOf``; a choice's JSON name as ``item.ofType(CodeableConcept)``."""
    if not param.path:
        return None
    if param.expression:
        return param.expression
    choices = _choice_names(param.resource)
    out = []
    for alternative in param.path.split("|"):
        steps = alternative.split(".")
        if param.type == "reference" and steps[-1] == "reference":
            steps = steps[:-1]
        shown = []
        for step in steps:
            stem, type_ = choices.get(step, (step, ""))
            shown.append(f"{stem}.ofType({type_})" if type_ else stem)
        out.append(".".join([param.resource, *shown]))
    return " | ".join(out)


def search_parameter(param: SearchParam) -> Json:
    ident = _id(param.definition)
    out: Json = {
        "resourceType": "SearchParameter",
        "id": ident,
        "url": param.definition,
        **_COMMON,
        "name": _name(ident),
        "description": param.description,
        "code": param.code,
        "base": [param.resource],
        "type": param.type,
    }
    found = expression(param)
    if found is not None:
        out["expression"] = found
        out["processingMode"] = "normal"
    else:  # answered from the store's own columns (Organization tier): no FHIRPath says it
        out["description"] = f"{param.description} (answered from the server's own records, not a FHIRPath)"
    if param.targets:
        out["target"] = sorted(param.targets)
    modifiers = list(param.modifiers) + (
        ["type"] if param.type == "reference" and not param.canonical else []
    )
    if modifiers:  # R5 search-modifier-code: a reference's [type] modifiers are `type`
        out["modifier"] = modifiers
    chained = sorted({code for t in chain_targets(param) for code in params_for(t)})
    if chained:
        out["chain"] = chained
    return out


# --- naming systems -----------------------------------------------------------------------------


def naming_system(kind: identifiers.IdentifierKind) -> Json:
    """The NamingSystem of an identifier system we mint: its served URI preferred, the aliases we
    accept for it beside (fhir/identifiers.py), and the value's served form as its usage."""
    ident = _id(kind.served)
    aliases = [
        {"type": "uri", "value": alias, "preferred": False, "comment": "accepted in deliveries and searches"}
        for alias in kind.aliases
    ]
    return {
        "resourceType": "NamingSystem",
        "id": ident,
        "url": kind.served,
        **_COMMON,
        "name": _name(ident),
        **({"experimental": True} if kind.experimental else {}),
        "kind": "identifier",
        "description": kind.name,
        "usage": identifiers.VALUE_FORMS[kind.value],
        "uniqueId": [{"type": "uri", "value": kind.served, "preferred": True}, *aliases],
    }


def naming_systems() -> list[Json]:
    """One per identifier system we mint (under systems.NS_BASE). The published ones (LMDI's FEST
    systems, GS1's GTIN) and SAFEST's own are theirs to publish, and are not in our package."""
    return [naming_system(kind) for kind in identifiers.KINDS if kind.ours]


# --- code systems -------------------------------------------------------------------------------


def code_system(url: str, title: str, concepts: list[tuple[str, str]] | None, description: str) -> Json:
    """A complete code system (`concepts` given) or one whose codes are FEST's (content not-present)."""
    ident = _id(url)
    out: Json = {
        "resourceType": "CodeSystem",
        "id": ident,
        "url": url,
        **_COMMON,
        "name": _name(ident),
        "title": title,
        "description": description,
        "caseSensitive": True,
    }
    if concepts is None:
        out["content"] = "not-present"
    else:
        out["content"] = "complete"
        out["count"] = len(concepts)
        out["concept"] = [{"code": code, "display": display} for code, display in concepts]
    return out


def _fest_cs_elements() -> list[str]:
    """The FEST elements of type CS (a code without a code system), each with a code system of ours."""
    names = {p.rsplit("/", 1)[-1] for p, t in XSD_PATHS.items() if t == "kith:CS"}
    return sorted(n for n in names if s.cs_system(n).startswith(s.CS_BASE))


def code_systems() -> list[Json]:
    refs = sorted({p.rsplit("/", 1)[-1] for p in XSD_PATHS if p.rsplit("/", 1)[-1].startswith("Ref")})
    kinds = []
    for m in MAPPINGS.values():
        if m.resource == "Basic" and m.table.start is not None:
            basic: Json = {}
            m.table.start(basic, cast(Any, None))  # sets Basic.code, the context unused
            coding = basic["code"]["coding"][0]
            kinds.append((str(coding["code"]), str(coding["display"])))
    found = [
        code_system(
            TIER_SYSTEM,
            "Tier of the data",
            [(t, t.capitalize()) for t in TIERS],
            "Who stands behind the data: national (DMP's FEST and SAFEST), sector, supplementary",
        ),
        code_system(
            s.CS_KIND,
            "FEST payload kind of a Basic",
            kinds,
            "The FEST catalogue entry a Basic resource was made from",
        ),
        code_system(
            s.CS_REFERENCE,
            "FEST reference element",
            [(r, r) for r in refs],
            "The FEST Ref* element a relationship or cross-reference came from",
        ),
        code_system(
            s.CS_MARKETING_STATUS,
            "Marketing status of a FEST package",
            [
                ("avregistrert", "Has a deregistration date (AvregDato)"),
                ("markedsfort", "Marketed"),
                ("midlertidig-utgatt", "Temporarily unavailable (MidlUtgattDato)"),
            ],
            "PackagedProductDefinition.marketingStatus.status, from FEST Markedsforingsinfo's dates",
        ),
        code_system(
            s.CS_INTERACTION_TYPE,
            "FEST interaction type",
            [("ikke-vurdert", "Interactions not assessed (FEST InteraksjonIkkeVurdert)")],
            "ClinicalUseDefinition.interaction.type for FEST's flag",
        ),
        code_system(
            CS_R4_CHARACTERISTIC,
            "R4 product characteristic",
            [
                (c, c)
                for c in (
                    "color",
                    "depth",
                    "externalDiameter",
                    "height",
                    "image",
                    "imprint",
                    "nominalVolume",
                    "otherCharacteristics",
                    "scoring",
                    "shape",
                    "weight",
                )
            ],
            "Property types for R4 ProdCharacteristic elements and otherCharacteristics (code = R4 element name)",
        ),
        code_system(
            CS_PACKAGING_PROPERTY,
            "Package level property",
            sorted(PACKAGING_PROPERTIES.values()),
            "Property types of a package level R5 has no element for: SAFEST's flags (safest-retailPack, "
            "safest-singleUnit) and the level's place (valued in DMP's PackageLevel)",
        ),
        code_system(
            TIERED_DATA_SYSTEM,
            "Tier of a CSV row",
            [(t, t.capitalize()) for t in TIERS],
            "Basic.code of a row of a CSV delivery: the tier it was delivered in",
        ),
        code_system(
            INTERFACE_SYSTEM, "Service interface", None, "The interface of a service in the catalogue"
        ),
    ]
    for element in _fest_cs_elements():
        found.append(
            code_system(
                s.cs_system(element),
                f"FEST {element}",
                None,
                f"The codes of FEST element {element} (a CS: FEST gives no code system); the codes are FEST's",
            )
        )
    return found


# --- everything ---------------------------------------------------------------------------------


def package_resources() -> list[Json]:
    """Every resource of the package, in a fixed order."""
    resources: list[Json] = [extension_definition(u) for u in extension_uses()]
    resources += [search_parameter(p) for p in SEARCH_PARAMS if not p.standard]
    view = search_parameter(CONTENT_FILTER_PARAM)
    view["base"] = [t for t in SEARCHED_TYPES if STORE in sources_of(t)]
    resources.append(view)
    resources += naming_systems()
    resources += code_systems()
    resources.append(orjson.loads(capability_statement(CANONICAL)))
    return [implementation_guide(resources), *resources]


def implementation_guide(resources: list[Json]) -> Json:
    """The package as a resource: what the CapabilityStatement's implementationGuide names."""
    return {
        "resourceType": "ImplementationGuide",
        "id": NAME,
        "url": IMPLEMENTATION_GUIDE,
        **_COMMON,
        "name": "GrunndataFhir",
        "title": "Grunndata's FHIR R5 definitions",
        "description": "The extensions, search parameters, naming systems and code systems of what "
        "Grunndata serves, and its CapabilityStatement",
        "packageId": NAME,
        "license": "CC0-1.0",
        "fhirVersion": ["5.0.0"],
        "dependsOn": [
            {
                "uri": "http://hl7.org/fhir/ImplementationGuide/hl7.fhir.r5.core",
                "packageId": "hl7.fhir.r5.core",
                "version": "5.0.0",
            }
        ],
        "definition": {
            "resource": [{"reference": {"reference": f"{r['resourceType']}/{r['id']}"}} for r in resources]
        },
    }


def _system_string(fhir_type: str) -> list[dict[str, Any]]:
    """The type of an element FHIR writes as a plain string (Element.id, Extension.url): FHIRPath's
    System.String, with the FHIR type it stands for."""
    url = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
    return [
        {"code": "http://hl7.org/fhirpath/System.String", "extension": [{"url": url, "valueUrl": fhir_type}]}
    ]
