"""Reading FHIR resources from files: a Bundle, ndjson, one resource, or a folder of them, JSON or XML.

SAFEST deliveries and sector data arrive in all of these shapes. Every resource comes out with the
place it was found ("file.ndjson line 12", "bundle.json entry 3") so a report can point at it.
XML is parsed with no DOCTYPE (so no entity is ever expanded) and no network. R5 XML is read
through fhir.resources' models, which know each element's type and cardinality; R4 resources have
no models there, so their XML is read by the R4 element definitions (r4_elements.py, generated from
the specification by tools/gen_r4_elements.py): see `_R4Reader`.
Text no FHIR string or XML can hold is refused here, for every importer (fhir/text.py).
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from lxml import etree

from grunndata.errors import DeliveryError
from grunndata.fhir import EXT_BASE, unfit_in_xml, unfit_sentence, unfit_text, xml_element_before
from grunndata.fhir.r4_elements import ELEMENTS as R4_ELEMENTS
from grunndata.fhir.r4_elements import RESOURCES as R4_RESOURCES
from grunndata.m30 import safe_parser
from grunndata.settings import DEFAULT_MAX_RESOURCE_FILE_BYTES

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
SUFFIXES = (".json", ".ndjson", ".xml")
SOURCE_PROFILE = EXT_BASE + "source-profile"
"""Extension (valueCanonical, 0..*) on a resource a sender gave: a profile the sender's form claimed."""


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


def read_resources(path: Path, max_file_bytes: int = DEFAULT_MAX_RESOURCE_FILE_BYTES) -> Iterator[Found]:
    """Every resource in `path`, with where it was; DeliveryError for anything unreadable (or a file
    larger than `max_file_bytes`, GRUNNDATA_MAX_RESOURCE_FILE_BYTES)."""
    for file in files_of(path):
        size = file.stat().st_size
        if size == 0:
            raise DeliveryError(f"{file.name} is empty")
        if size > max_file_bytes:
            raise DeliveryError(
                f"{file.name} is {size} bytes, more than the {max_file_bytes} a resource file may be "
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
    inner_resources = []
    for n, entry in enumerate(entries, 1):
        inner = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(inner, dict):
            raise DeliveryError(f"{name} entry {n} holds no resource")
        inner_resources.append(inner)
    full_urls = _full_urls(entries)
    for n, inner in enumerate(inner_resources, 1):
        try:
            resolved = _resolved(inner, full_urls) if full_urls else inner
        except RecursionError:
            raise DeliveryError(f"{name} entry {n} is nested too deeply to be read") from None
        yield Found(resolved, f"{name} entry {n}")


def _full_urls(entries: list[dict[str, Any]]) -> dict[str, str]:
    """fullUrl -> `Type/id` of the Bundle's entries that have both (a document Bundle names its
    entries `urn:uuid:...` and refers to them so)."""
    found = {}
    for entry in entries:
        url, inner = entry.get("fullUrl"), entry["resource"]
        rtype, rid = inner.get("resourceType"), inner.get("id")
        if isinstance(url, str) and isinstance(rtype, str) and isinstance(rid, str) and "/" not in rid:
            found[url] = f"{rtype}/{rid}"
    return found


def _resolved(value: Any, full_urls: dict[str, str]) -> Any:
    """`value` with every reference to another entry's fullUrl made `Type/id`, as FHIR resolves
    references inside a Bundle: what is stored refers the way the server serves."""
    if isinstance(value, list):
        return [_resolved(v, full_urls) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _resolved(v, full_urls) for k, v in value.items()}
    reference = out.get("reference")
    if isinstance(reference, str) and reference in full_urls:
        out["reference"] = full_urls[reference]
    return out


# -- XML -----------------------------------------------------------------------------------------


def _xml(file: Path) -> dict[str, Any]:
    raw = file.read_bytes()
    if b"<!DOCTYPE" in raw[:65536].upper():  # a DOCTYPE comes before the root; the parser refuses the rest
        raise DeliveryError(f"{file.name} has a DOCTYPE; FHIR XML has none, and none is accepted")
    try:
        root = etree.fromstring(raw, safe_parser())
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
        document = _resource_json(etree.fromstring(b"".join(parts) + raw[at:], safe_parser()), name)
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


IN_R4_AND_R5 = frozenset({"CodeSystem", "ValueSet", "ConceptMap"})
"""Terminology types both releases have, under one name and one XML root: such a resource is read
by the R4 definitions (SAFEST publishes R4), and as R5 when it holds an element R4 does not have."""


def _resource_json(element: Any, name: str) -> dict[str, Any]:
    """A resource read from its XML element: R4 types by the R4 definitions, R5 by fhir.resources."""
    rtype = etree.QName(element).localname
    if rtype in R4_RESOURCES:
        return _r4_or_r5(element, rtype, name, rtype)
    return _r5_json(element, rtype, name)


def _r4_or_r5(element: Any, rtype: str, name: str, path: str) -> dict[str, Any]:
    """An R4 type by the R4 definitions; a type of both releases as R5 when it is not R4."""
    try:
        return _R4Reader(name).resource(element, rtype, path)
    except DeliveryError as as_r4:
        if rtype not in IN_R4_AND_R5:
            raise
        try:
            return _r5_json(element, rtype, name)
        except DeliveryError as as_r5:
            raise DeliveryError(f"{as_r4} (and read as R5: {str(as_r5).removeprefix(name + ': ')})") from None


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


# -- R4 XML, by the R4 element definitions ----------------------------------------------------------

# The lexical forms of the R4 numeric primitives (https://hl7.org/fhir/R4/datatypes.html); every other
# primitive is a JSON string, boolean is true or false.
_NUMBER_FORMS = {
    "integer": re.compile(r"-?(0|[1-9][0-9]*)\Z"),
    "positiveInt": re.compile(r"\+?[1-9][0-9]*\Z"),
    "unsignedInt": re.compile(r"(0|[1-9][0-9]*)\Z"),
    "decimal": re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z"),
}
_INT32 = range(-(2**31), 2**31)


class _R4Reader:
    """FHIR R4 XML -> JSON by the rules of https://hl7.org/fhir/R4/xml.html and json.html.

    Each element is looked up in the R4 definitions (r4_elements.py) under its owner's type: that
    says whether it is a list in JSON (0..*, also when it comes once) and what its value is: a
    boolean, an integer, a `Decimal` (the precision of the text kept: 1.50 stays 1.50, as R4's
    decimal asks), a string, the XHTML of a narrative, a resource, or an object of more elements.
    An element the definitions do not have is refused with its file, line and path.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def refuse(self, element: Any, sentence: str) -> DeliveryError:
        return DeliveryError(f"{self.name} line {element.sourceline}: {sentence}")

    def resource(self, element: Any, rtype: str, path: str) -> dict[str, Any]:
        return {"resourceType": rtype, **self.complex(element, rtype, path, is_resource=True)}

    def complex(self, element: Any, kind: str, path: str, *, is_resource: bool = False) -> dict[str, Any]:
        """An element of complex type `kind` (a datatype, resource or backbone path) as a JSON object."""
        out: dict[str, Any] = {}
        for attribute, value in element.attrib.items():
            if attribute.startswith("{"):
                continue  # xsi:schemaLocation and other attributes of other namespaces
            if attribute not in _attributes(kind, is_resource):
                raise self.refuse(
                    element, f"{path} has an attribute {attribute}, which FHIR XML does not give it"
                )
            out[attribute] = value
        if (element.text or "").strip():
            raise self.refuse(element, f"{path} holds text; FHIR XML puts values in value attributes")
        groups: dict[str, list[Any]] = {}
        for child in element:
            if not isinstance(child.tag, str):
                continue  # comments and processing instructions
            qname = etree.QName(child)
            inside_primitive = kind[0].islower() and qname.localname != "extension"  # value, id: attributes
            definition = None if inside_primitive else R4_ELEMENTS.get(f"{kind}.{qname.localname}")
            if definition is None:
                raise self.refuse(child, f"{path}.{qname.localname} is not an element of R4 {kind}")
            namespace = XHTML_NS if definition[0] == "xhtml" else FHIR_NS
            if qname.namespace != namespace:
                raise self.refuse(child, f"{path}.{qname.localname} is not in the namespace {namespace}")
            if (child.tail or "").strip():
                raise self.refuse(child, f"{path} holds text; FHIR XML puts values in value attributes")
            groups.setdefault(qname.localname, []).append(child)
        for key, children in groups.items():
            kind_of, repeats = R4_ELEMENTS[f"{kind}.{key}"]
            if len(children) > 1 and not repeats:
                raise self.refuse(children[1], f"{path}.{key} comes {len(children)} times; R4 allows it once")
            paths = [f"{path}.{key}[{n}]" if repeats else f"{path}.{key}" for n in range(len(children))]
            if kind_of[0].islower():
                self.primitives(out, key, kind_of, repeats, children, paths)
                continue
            if kind_of == "Resource":
                values = [self.inner_resource(child, p) for child, p in zip(children, paths, strict=True)]
            else:
                values = [self.complex(child, kind_of, p) for child, p in zip(children, paths, strict=True)]
            out[key] = values if repeats else values[0]
        return out

    def primitives(
        self, out: dict[str, Any], key: str, kind: str, repeats: bool, children: list[Any], paths: list[str]
    ) -> None:
        """`key` with its value(s), and `_key` with the id and extensions of those that have them."""
        if kind == "xhtml":
            out[key] = _xhtml(children[0])
            return
        values, extras = [], []
        for child, path in zip(children, paths, strict=True):
            text = child.get("value")
            values.append(None if text is None else self.typed(child, text, kind, path))
            extra = self.complex(child, kind, path)
            extra.pop("value", None)
            extras.append(extra or None)
            if text is None and not extra:
                raise self.refuse(
                    child, f"{path} has no value, id or extension; FHIR XML has no empty elements"
                )
        if any(v is not None for v in values):
            out[key] = values if repeats else values[0]
        if any(extras):
            out[f"_{key}"] = extras if repeats else extras[0]

    def typed(self, element: Any, text: str, kind: str, path: str) -> Any:
        """The JSON value of a primitive's `value` attribute."""
        if kind == "boolean":
            if text not in ("true", "false"):
                raise self.refuse(element, f"{path} is {text!r}, not a FHIR boolean (true or false)")
            return text == "true"
        form = _NUMBER_FORMS.get(kind)
        if form is None:
            return text
        if not form.match(text):
            raise self.refuse(element, f"{path} is {text!r}, not a FHIR {kind}")
        if kind == "decimal":
            return Decimal(text)
        number = int(text)
        if number not in _INT32:
            raise self.refuse(element, f"{path} is {text}, beyond the 32 bits of a FHIR {kind}")
        return number

    def inner_resource(self, holder: Any, path: str) -> dict[str, Any]:
        """`<contained><Organization>...</Organization></contained>`: the one resource inside."""
        inner = [child for child in holder if isinstance(child.tag, str)]
        if holder.attrib or (holder.text or "").strip() or len(inner) != 1:
            raise self.refuse(holder, f"{path} must hold exactly one resource and nothing else")
        rtype = etree.QName(inner[0]).localname
        if rtype in R4_RESOURCES:
            return _r4_or_r5(inner[0], rtype, self.name, f"{path}.{rtype}")
        return _r5_json(inner[0], rtype, self.name)


def _attributes(kind: str, is_resource: bool) -> tuple[str, ...]:
    """The attributes FHIR XML gives an element: Element.id, Extension.url, a primitive's value."""
    if is_resource:
        return ()  # a resource's id is an element
    if kind == "Extension":
        return ("id", "url")
    return ("id", "value") if kind[0].islower() else ("id",)


def _xhtml(div: Any) -> str:
    """A narrative's XHTML `div` as a string, without namespaces declared outside and unused in it."""
    detached = copy.deepcopy(div)
    detached.tail = None
    etree.cleanup_namespaces(detached)
    return etree.tostring(detached, encoding="unicode", with_tail=False)
