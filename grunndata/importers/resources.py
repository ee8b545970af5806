"""Reading FHIR resources from files: a Bundle, ndjson, one resource, or a folder of them, JSON or XML.

SAFEST deliveries and sector data arrive in all of these shapes. Every resource comes out with the
place it was found ("file.ndjson line 12", "bundle.json entry 3") so a report can point at it.
XML is parsed with no DOCTYPE (so no entity is ever expanded) and no network. R5 XML is read
through fhir.resources' models, which know each element's type and cardinality; R4 resources have
no models there, so their XML is read by the FHIR XML rules alone (see `_element_json`).
Text no FHIR string or XML can hold is refused here, for every importer (importers/text.py).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from lxml import etree

from grunndata.errors import DeliveryError
from grunndata.importers.text import unfit_in_xml, unfit_sentence, unfit_text, xml_element_before

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
MAX_FILE_BYTES = int(os.environ.get("GRUNNDATA_MAX_RESOURCE_FILE_BYTES", str(1 << 30)))
SUFFIXES = (".json", ".ndjson", ".xml")

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
    """Type and id first (the server splices meta in after the first id), meta left out.

    The server sets meta (version, time, tier as tag, owner as source) from the store at read
    time; a sender's own meta would say something else.
    """
    rest = {k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")}
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
            found: Iterator[Found] = _ndjson(file)
        elif suffix == ".json":
            found = _unbundled(_json(file), file.name)
        else:
            found = _unbundled(_xml(file), file.name)
        for one in found:
            problem = _unfit(one.resource, one.where)
            if problem is not None:
                raise DeliveryError(problem)
            yield one


def _unfit(resource: Any, where: str) -> str | None:
    """`where: path holds U+0000 ...` when the resource holds text FHIR and XML refuse, else None."""
    path = str(resource.get("resourceType") or "") if isinstance(resource, dict) else ""
    unfit = unfit_text(resource, path)
    return None if unfit is None else f"{where}: {unfit_sentence(*unfit)}"


def _ndjson(file: Path) -> Iterator[Found]:
    with file.open("rb") as lines:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            parsed = _loads(line, f"{file.name} line {n}")
            if not isinstance(parsed, dict):
                raise DeliveryError(f"{file.name} line {n} is not a FHIR resource (a JSON object)")
            yield Found(parsed, f"{file.name} line {n}")


def _json(file: Path) -> dict[str, Any]:
    parsed = _loads(file.read_bytes(), file.name)
    if not isinstance(parsed, dict):
        raise DeliveryError(f"{file.name} is not a FHIR resource or Bundle (a JSON object)")
    return parsed


def _loads(raw: bytes, where: str) -> Any:
    """Parsed JSON; when orjson refuses it, our sentence for unfit text, else the reason it gives.

    orjson refuses a lone surrogate (`"\\ud800"`) and a raw control character itself, before we see
    a resource. Python's json, told to be lenient, reads both, so that the refusal can still name
    the entry and the element; it only runs for a file that is refused anyway.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        try:
            lenient = json.loads(raw.decode("utf-8", "surrogatepass"), strict=False)
        except (ValueError, RecursionError):
            lenient = None
        problem = None if lenient is None else _unfit(lenient, where)
        if problem is not None:  # name the entry that holds it, when it is in one
            try:
                found = list(_unbundled(lenient, where)) if isinstance(lenient, dict) else []
            except DeliveryError:
                found = []
            problem = next((p for f in found if (p := _unfit(f.resource, f.where))), problem)
            raise DeliveryError(problem) from None
        raise DeliveryError(f"{where} is not JSON ({e})") from None


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
        raise DeliveryError(
            _unfit_xml(raw, file.name, e.lineno) or f"{file.name} is not well-formed XML ({e})"
        ) from None
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise DeliveryError(f"{file.name} has a DOCTYPE; FHIR XML has none, and none is accepted")
    if etree.QName(root).namespace != FHIR_NS:
        raise DeliveryError(f"{file.name} is not FHIR XML: its root is not in the {FHIR_NS} namespace")
    return _resource_json(root, file.name)


def _unfit_xml(raw: bytes, name: str, error_line: int | None) -> str | None:
    """Our sentence, with line and element path, when unfit text is why the XML is not well-formed.

    lxml refuses such a character (raw or as `&#1;`) in its own words and names no element; so the
    first one is replaced by a marker (the others dropped), the patched document is read the usual
    way, and the marker's path in what was read is the element's. None when something else is wrong.
    """
    spans = list(unfit_in_xml(raw))
    if not spans or error_line is None:
        return None
    start, _, char = spans[0]
    line = raw.count(b"\n", 0, start) + 1
    if line > error_line:
        return None  # lxml stopped earlier, for another reason
    marker = f"unfit-{uuid.uuid4().hex}"
    parts, at = [], 0
    for n, (begin, end, _) in enumerate(spans):
        parts += [raw[at:begin], marker.encode() if n == 0 else b""]
        at = end
    try:
        document = _resource_json(etree.fromstring(b"".join(parts) + raw[at:], _safe_parser()), name)
        found = [*_unbundled(document, name), Found(document, name)]
    except (etree.XMLSyntaxError, DeliveryError):
        found = []
    pattern = re.compile(re.escape(marker))
    for f in found:
        path = unfit_text(f.resource, str(f.resource.get("resourceType") or ""), pattern)
        if path is not None:
            where = f"{f.where} line {line}" if f.where == name else f"{f.where}, line {line}"
            return f"{where}: {unfit_sentence(path[0], char)}"
    if line < error_line:
        return None
    return f"{name} line {line}: {unfit_sentence(xml_element_before(raw, start) or 'the XML', char)}"


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
