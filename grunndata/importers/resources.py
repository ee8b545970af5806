"""Reading FHIR resources from files: a Bundle, ndjson, one resource, or a folder of them, JSON or XML.

SAFEST deliveries and sector data arrive in all of these shapes. Every resource comes out with the
place it was found ("file.ndjson line 12", "bundle.json entry 3") so a report can point at it.
XML is parsed with no DOCTYPE (so no entity is ever expanded) and no network. R5 XML is read
through fhir.resources' models, which know each element's type and cardinality; R4 resources have
no models there, so their XML is read by the FHIR XML rules alone (see `_element_json`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from lxml import etree

from grunndata.errors import DeliveryError
from grunndata.translators.fest_to_idmp.systems import EXT_BASE

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
MAX_FILE_BYTES = int(os.environ.get("GRUNNDATA_MAX_RESOURCE_FILE_BYTES", str(1 << 30)))
SUFFIXES = (".json", ".ndjson", ".xml")
SOURCE_PROFILE = EXT_BASE + "source-profile"
"""Extension (valueCanonical, 0..*) on a resource a sender gave: a profile the sender's form claimed."""

# R4 elements that repeat (0..*) in the resources SAFEST serves: XML cannot say so for one item.
_R4_LISTS = frozenset(
    [
        "identifier",
        "extension",
        "modifierExtension",
        "contained",
        "name",
        "namePart",
        "countryLanguage",
        "productClassification",
        "marketingStatus",
        "packageItem",
        "packagedMedicinalProduct",
        "ingredient",
        "pharmaceuticalProduct",
        "manufacturedItem",
        "device",
        "material",
        "alternateMaterial",
        "shelfLifeStorage",
        "manufacturer",
        "otherCharacteristics",
        "routeOfAdministration",
        "characteristics",
        "specifiedSubstance",
        "strength",
        "referenceStrength",
        "country",
        "moiety",
        "property",
        "code",
        "relationship",
        "synonym",
        "translation",
        "official",
        "concept",
        "designation",
        "filter",
        "coding",
        "attachedDocument",
        "masterFile",
        "contact",
        "crossReference",
        "productClassification",
        "specialMeasures",
        "additionalMonitoringIndicator",
        "batchIdentifier",
        "legalStatusOfSupply",
        "target",
        "component",
    ]
)
_R4_TYPES = frozenset(
    {
        "MedicinalProduct",
        "MedicinalProductPackaged",
        "MedicinalProductManufactured",
        "MedicinalProductPharmaceutical",
        "MedicinalProductIngredient",
        "MedicinalProductAuthorization",
        "SubstanceSpecification",
    }
)
_NUMERIC_PARENTS = frozenset({"value", "numerator", "denominator", "low", "high"})


@dataclass(frozen=True, slots=True)
class Found:
    resource: dict[str, Any]
    where: str  # "file.ndjson line 12", "bundle.json entry 3"


def stored_form(resource: dict[str, Any]) -> dict[str, Any]:
    """Type and id first (the server splices meta in after the first id), meta left out but for
    the sender's profiles, which become `source-profile` extensions.

    The server sets meta (version, time, tier as tag, owner as source) from the store at read
    time; a sender's own meta would say something else. Its profiles say what the sender's
    resource conformed to (an R4 profile cannot describe the R5 resource served), so they are
    kept as a fact about the source rather than claimed in meta.profile.
    """
    rest = {k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")}
    meta = resource.get("meta")
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    given = rest.get("extension", [])
    if isinstance(profiles, list) and profiles and isinstance(given, list):
        others = [e for e in given if not (isinstance(e, dict) and e.get("url") == SOURCE_PROFILE)]
        rest["extension"] = others + [
            {"url": SOURCE_PROFILE, "valueCanonical": p} for p in profiles if isinstance(p, str)
        ]
    return {"resourceType": resource["resourceType"], "id": resource["id"], **rest}


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def files_of(path: Path) -> list[Path]:
    """The files a path stands for: itself, or the resource files of a folder (sorted, recursive)."""
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not found:
            raise DeliveryError(f"the folder {path} holds no .json, .ndjson or .xml files")
        return found
    if not path.exists():
        raise DeliveryError(f"there is no file {path}")
    if path.suffix.lower() not in SUFFIXES:
        raise DeliveryError(f"{path.name} is not a .json, .ndjson or .xml file (or a folder of them)")
    return [path]


def read_resources(path: Path) -> Iterator[Found]:
    """Every resource in `path`, with where it was; DeliveryError for anything unreadable."""
    for file in files_of(path):
        size = file.stat().st_size
        if size == 0:
            raise DeliveryError(f"{file.name} is empty")
        if size > MAX_FILE_BYTES:
            raise DeliveryError(
                f"{file.name} is {size} bytes, more than the {MAX_FILE_BYTES} a resource file may be "
                "(GRUNNDATA_MAX_RESOURCE_FILE_BYTES); split it, or send ndjson"
            )
        suffix = file.suffix.lower()
        if suffix == ".ndjson":
            yield from _ndjson(file)
        elif suffix == ".json":
            yield from _unbundled(_json(file), file.name)
        else:
            yield from _unbundled(_xml(file), file.name)


def _ndjson(file: Path) -> Iterator[Found]:
    with file.open("rb") as lines:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                parsed = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise DeliveryError(f"{file.name} line {n} is not JSON ({e})") from None
            if not isinstance(parsed, dict):
                raise DeliveryError(f"{file.name} line {n} is not a FHIR resource (a JSON object)")
            yield Found(parsed, f"{file.name} line {n}")


def _json(file: Path) -> dict[str, Any]:
    try:
        parsed = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError as e:
        raise DeliveryError(f"{file.name} is not JSON ({e})") from None
    if not isinstance(parsed, dict):
        raise DeliveryError(f"{file.name} is not a FHIR resource or Bundle (a JSON object)")
    return parsed


def _unbundled(resource: dict[str, Any], name: str) -> Iterator[Found]:
    if resource.get("resourceType") != "Bundle":
        yield Found(resource, name)
        return
    entries = resource.get("entry") or []
    if not isinstance(entries, list):
        raise DeliveryError(f"{name}: Bundle.entry is not a list")
    for n, entry in enumerate(entries, 1):
        inner = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(inner, dict):
            raise DeliveryError(f"{name} entry {n} holds no resource")
        yield Found(inner, f"{name} entry {n}")


# -- XML -----------------------------------------------------------------------------------------


def _xml(file: Path) -> dict[str, Any]:
    raw = file.read_bytes()
    if b"<!DOCTYPE" in raw[:65536].upper():  # a DOCTYPE comes before the root; the parser refuses the rest
        raise DeliveryError(f"{file.name} has a DOCTYPE; FHIR XML has none, and none is accepted")
    try:
        root = etree.fromstring(raw, _safe_parser())
    except etree.XMLSyntaxError as e:
        raise DeliveryError(f"{file.name} is not well-formed XML ({e})") from None
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise DeliveryError(f"{file.name} has a DOCTYPE; FHIR XML has none, and none is accepted")
    if etree.QName(root).namespace != FHIR_NS:
        raise DeliveryError(f"{file.name} is not FHIR XML: its root is not in the {FHIR_NS} namespace")
    return _resource_json(root, file.name)


def _resource_json(element: Any, name: str) -> dict[str, Any]:
    rtype = etree.QName(element).localname
    if rtype == "Bundle":
        bundle = _element_json(element)
        bundle["resourceType"] = "Bundle"
        entries = []
        for entry in element.findall(f"{{{FHIR_NS}}}entry"):
            holder = entry.find(f"{{{FHIR_NS}}}resource")
            inner = holder[0] if holder is not None and len(holder) else None
            entries.append({"resource": _resource_json(inner, name)} if inner is not None else {})
        bundle["entry"] = entries
        return bundle
    if rtype in _R4_TYPES:
        return {"resourceType": rtype, **_element_json(element)}
    return _r5_json(element, rtype, name)


def _r5_json(element: Any, rtype: str, name: str) -> dict[str, Any]:
    """An R5 resource in XML, read through its fhir.resources model (types and cardinality)."""
    from fhir.resources import get_fhir_model_class

    try:
        model = get_fhir_model_class(rtype)
    except KeyError:
        raise DeliveryError(f"{name}: {rtype} is not a FHIR R5 resource type") from None
    try:
        parsed = model.model_validate_xml(etree.tostring(element))
    except Exception as e:  # noqa: BLE001  pydantic's and the XML reader's errors, in one sentence
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DeliveryError(f"{name}: the {rtype} in it is not valid FHIR R5 XML ({first})") from None
    data: dict[str, Any] = orjson.loads(parsed.model_dump_json(exclude_none=True))
    return data


def _element_json(element: Any) -> dict[str, Any]:
    """FHIR XML -> JSON by the rules of https://hl7.org/fhir/R5/xml.html, for R4 types.

    Without a model, two things are guessed: an element is a list when it repeats or is named in
    `_R4_LISTS`, and a `value` is a number when it reads as one inside a quantity-like element.
    """
    out: dict[str, Any] = {}
    if element.get("id") is not None:
        out["id"] = element.get("id")
    if element.get("url") is not None:
        out["url"] = element.get("url")
    for child in element:
        if not isinstance(child.tag, str):
            continue  # comments and processing instructions
        qname = etree.QName(child)
        if qname.namespace == XHTML_NS:
            out["div"] = etree.tostring(child, encoding="unicode")
            continue
        key = qname.localname
        if key == "id" and child.get("value") is not None and not len(child):
            out["id"] = child.get("value")
            continue
        value = _child_value(child, key, etree.QName(element).localname)
        if key in out:
            if not isinstance(out[key], list):
                out[key] = [out[key]]
            out[key].append(value)
        else:
            out[key] = [value] if key in _R4_LISTS and isinstance(value, dict) else value
    return out


def _child_value(child: Any, key: str, parent: str) -> Any:
    if child.get("value") is not None and not len(child):
        return _primitive(child.get("value"), key, parent)
    if key == "resource" or (len(child) == 1 and etree.QName(child[0]).localname[:1].isupper()):
        inner = child[0]
        return {"resourceType": etree.QName(inner).localname, **_element_json(inner)}
    return _element_json(child)


def _primitive(text: str, key: str, parent: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if key == "value" and parent in _NUMERIC_PARENTS | {"quantity", "amount", "molecularWeight"}:
        try:
            return int(text) if text.lstrip("-").isdigit() else float(text)
        except ValueError:
            return text
    return text
