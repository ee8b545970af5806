"""The checks sector and supplementary resources pass before they are served beside the national data.

In order: a type these tiers may hold and a valid id, unique in the delivery (`shape`); then, against
what the national tier serves (`against_national`): valid FHIR R5, no id another line already
serves, references only to national resources or to this delivery, national identifiers that name
a national entry, and codes of a national code system that are in it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from fhir.resources import get_fhir_model_class
from pydantic import ValidationError

from grunndata.fhir import SERVED_TYPES
from grunndata.importers.resources import stored_form
from grunndata.importers.tiered.keys import BY_SYSTEM, find_national, unknown_code, unknown_key
from grunndata.importers.tiered.problems import Place, Problem
from grunndata.store import Key, Line, NationalKeys, reserved_organization_sentence

NATIONAL_ONLY = ("CodeSystem", "ValueSet")
ALLOWED_TYPES = tuple(t for t in SERVED_TYPES if t not in NATIONAL_ONLY)
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_REFERENCE = re.compile(
    r"^(?P<type>[A-Z][A-Za-z]*)/(?P<id>[A-Za-z0-9\-.]{1,64})(?P<version>/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_ID_RULE = "1 to 64 letters, digits, '-' and '.'"


@dataclass(frozen=True, slots=True)
class Checked:
    """A resource that passed `shape`, in the form it is stored: type and id first, no meta."""

    place: Place
    key: Key
    resource: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.key[0]}/{self.key[1]}"


def shape(items: list[tuple[Place, dict[str, Any]]]) -> tuple[list[Checked], list[Problem]]:
    """Resources of a type these tiers may hold, with a valid id that is unique in the delivery."""
    checked: list[Checked] = []
    problems: list[Problem] = []
    seen: dict[Key, Place] = {}
    for place, resource in items:
        wrong = _shape_problem(resource)
        if wrong is not None:
            problems.append(Problem(place, wrong))
            continue
        key = (resource["resourceType"], resource["id"])
        if key in seen:
            problems.append(
                Problem(
                    place,
                    f"the id is used twice in this delivery (also at {seen[key]})",
                    f"{key[0]}/{key[1]}",
                )
            )
            continue
        seen[key] = place
        checked.append(Checked(place, key, stored_form(resource)))
    return checked, problems


def _shape_problem(resource: dict[str, Any]) -> str | None:
    rtype, rid = resource.get("resourceType"), resource.get("id")
    if not isinstance(rtype, str) or not rtype:
        return "the resource has no resourceType"
    if rtype in NATIONAL_ONLY:
        return f"{rtype} is national only: sector and supplementary data use the national code systems"
    if rtype not in ALLOWED_TYPES:
        return f"{rtype} is not a type sector and supplementary data may hold ({', '.join(ALLOWED_TYPES)})"
    if rid is None:
        return f"the {rtype} has no id; every resource needs a stable id ({_ID_RULE})"
    if not isinstance(rid, str) or not FHIR_ID.match(rid):
        return f"the {rtype} id {rid!r} is not a FHIR id ({_ID_RULE})"
    return None


def referenced(checked: list[Checked]) -> set[Key]:
    """Every resource the delivery refers to by Type/id."""
    found = set()
    for c in checked:
        for _, node in _nodes(c.resource, ""):
            ref = node.get("reference")
            if isinstance(ref, str) and (m := _REFERENCE.match(ref)):
                found.add((m["type"], m["id"]))
    return found


def against_national(
    checked: list[Checked],
    national: NationalKeys,
    elsewhere: dict[Key, Line],
    reserved: Collection[str] = (),
) -> list[Problem]:
    """Problems of resources that passed `shape`; `elsewhere` says which other line serves a key,
    `reserved` which Organization ids the service catalogue holds."""
    ours = {c.key for c in checked}
    problems = []
    for c in checked:
        if c.key[0] == "Organization" and c.key[1] in reserved:
            problems.append(Problem(c.place, reserved_organization_sentence(c.key[1]), c.label))
        if c.key in elsewhere:
            line = elsewhere[c.key]
            problems.append(
                Problem(
                    c.place,
                    f"the id is already served as {line.tier} data of {line.owner}; no id may be served "
                    "twice, so choose another",
                    c.label,
                )
            )
        invalid = _fhir_problem(c.resource)
        if invalid is not None:
            problems.append(Problem(c.place, invalid, c.label))
        try:
            for path, node in _nodes(c.resource, ""):
                for message in _node_problems(path, node, national, ours, elsewhere):
                    problems.append(Problem(c.place, message, c.label))
        except RecursionError:
            problems.append(Problem(c.place, "the resource is nested too deeply to be checked", c.label))
    return problems


def _nodes(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every JSON object in a resource, with its path (`packageFor[0]`)."""
    if isinstance(node, dict):
        yield path, node
        for name, value in node.items():
            yield from _nodes(value, f"{path}.{name}" if path else name)
    elif isinstance(node, list):
        for n, item in enumerate(node):
            yield from _nodes(item, f"{path}[{n}]")


def _node_problems(
    path: str, node: dict[str, Any], national: NationalKeys, ours: set[Key], elsewhere: dict[Key, Line]
) -> Iterator[str]:
    ref = node.get("reference")
    if isinstance(ref, str):
        problem = _reference_problem(ref, national, ours, elsewhere)
        if problem is not None:
            yield f"{path}.reference: {problem}"
    system = node.get("system")
    if not isinstance(system, str):
        return
    value = node.get("value")
    if system in BY_SYSTEM and isinstance(value, str) and find_national(national, system, value) is None:
        yield f"{path}: {unknown_key(system, value)}"
    code_system = national.code_systems.get(system)
    if code_system is not None and "code" in node and str(node["code"]) not in code_system.codes:
        yield f"{path}: {unknown_code(str(node['code']), code_system)}"


def _reference_problem(
    ref: str, national: NationalKeys, ours: set[Key], elsewhere: dict[Key, Line]
) -> str | None:
    if ref.startswith("#"):
        return None  # a contained resource
    m = _REFERENCE.match(ref)
    if m is None:
        return (
            f"{ref} is not a reference Type/id; refer to national resources and to this delivery's by Type/id"
        )
    key = (m["type"], m["id"])
    if m["version"]:
        return f"{ref} names a version; the store numbers versions itself, so refer to {key[0]}/{key[1]}"
    if key in ours or national.exists(key):
        return None
    if key in elsewhere:
        line = elsewhere[key]
        return (
            f"{key[0]}/{key[1]} is {line.tier} data of {line.owner}; only national resources and "
            "resources in this delivery may be referred to"
        )
    return f"{key[0]}/{key[1]} is neither a national resource nor in this delivery"


def _fhir_problem(resource: dict[str, Any]) -> str | None:
    """The first reason the resource is not valid FHIR R5, in one sentence, or None."""
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p != "__root__")
        why = str(first["msg"]).removeprefix("Value error, ").rstrip(".")
        return f"not valid FHIR R5: {where + ': ' if where else ''}{why}"
    except RecursionError:
        return "not valid FHIR R5: nested too deeply"
    except (ValueError, TypeError, AttributeError, KeyError) as e:
        return f"not valid FHIR R5: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    return None
