"""Every identifier a national resource is served with, in its kind's one served form (fhir/identifiers.py).

FEST's tables and SAFEST's conversion write identifiers in the systems and forms their sources
use; this pass, the one place an importer changes them, makes each one served-form before the
resources of both sources meet (importers/national.py `derive`): a FEST id sent without ``ID_`` or
under an ehelse.no, hl7.no or Nordic ePI system, a GTIN sent as 14 digits under Farmalogg's NTIN
system, all become the identifier FEST's own entry gives, so they link, merge and are found alike.
"""

from __future__ import annotations

from typing import Any

from grunndata.fhir import identifiers

Json = dict[str, Any]

_IDENTIFIER_KEYS = ("identifier", "valueIdentifier")
_IN_EXTENSIONS = frozenset(("extension", "valueIdentifier", "valueReference"))


def served_identifiers(resource: Json) -> Json:
    """`resource` with every Identifier in served form, a repeat of one left out; changed in place.

    Identifiers are found wherever they are: the resource's own (typed by its resourceType, which
    fixes what the generic FEST system names), packaging levels', logical references' and
    extensions' (valueIdentifier), and those of contained resources (typed by their own type)."""
    _walk(resource, str(resource.get("resourceType", "")), top=True)
    return resource


def _walk(node: Json, rtype: str, top: bool = False) -> None:
    """`top`: `node` is a resource (the one served or a contained one), whose type its own
    identifiers are read by; anywhere else the generic FEST system names any FEST id."""
    extension = "url" in node and not top  # an extension: its values hold no Identifier but these
    for key, child in node.items():
        if extension and key not in _IN_EXTENSIONS:
            continue
        if isinstance(child, list):
            if key in _IDENTIFIER_KEYS:
                child = node[key] = _served_list(child, rtype if top else None)
            for item in child:
                if isinstance(item, dict):
                    _walk_child(item, rtype)
        elif isinstance(child, dict):
            if key in _IDENTIFIER_KEYS:
                _serve(child, rtype if top else None)
            _walk_child(child, rtype)


def _walk_child(node: Json, rtype: str) -> None:
    contained = node.get("resourceType")
    if isinstance(contained, str):
        _walk(node, contained, top=True)
    else:
        _walk(node, rtype)


def _serve(identifier: Json, rtype: str | None) -> None:
    system, value = identifier.get("system"), identifier.get("value")
    if isinstance(system, str) and isinstance(value, str):
        found = identifiers.served(system, value, rtype)
        if found is not None:
            identifier["system"], identifier["value"] = found


def _served_list(items: list[Any], rtype: str | None) -> list[Any]:
    seen: set[tuple[str, str]] = set()
    kept = []
    for item in items:
        if isinstance(item, dict):
            _serve(item, rtype)
            system, value = item.get("system"), item.get("value")
            if isinstance(system, str) and isinstance(value, str):
                pair = (system, value)
                if pair in seen:
                    continue  # FEST's and SAFEST's, once both are served-form
                seen.add(pair)
        kept.append(item)
    return kept
