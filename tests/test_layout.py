"""The rooms of grunndata/ use each other one way (docs/architecture.md, "The rooms"): an import
that goes against the map, lazy ones inside functions included, fails here."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "grunndata"
_BASE = {"errors", "settings", "memory", "fhir"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "memory": set(),
    "fhir": set(),
    "settings": {"errors"},
    "m30": {"errors", "fhir", "settings"},
    "terminology": {"fhir"},
    "translators": {"fhir", "m30", "terminology"},
    "store": {"errors", "fhir", "settings"},
    "catalog": {"errors", "fhir", "store"},
    "importers": _BASE | {"m30", "store", "terminology", "translators"},
    "exporters": _BASE | {"m30", "store", "terminology", "translators"},
    "fhirpackage": {"catalog", "fhir", "importers", "m30", "store", "translators"},
    "validation": _BASE | {"fhirpackage", "importers", "m30", "store"},
    "server": _BASE
    | {"m30", "store", "terminology", "translators", "catalog", "importers", "exporters", "fhirpackage"},
    "sample": {"m30"},
}


def _room(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def room_imports() -> dict[str, dict[str, list[str]]]:
    """room -> {room it imports -> the files that do}, for every import of grunndata.* in the tree."""
    found: dict[str, dict[str, list[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        room = _room(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "grunndata" and len(parts) > 1 and parts[1] != room:
                    found.setdefault(room, {}).setdefault(parts[1], []).append(str(path.relative_to(PACKAGE)))
    return found


def test_every_room_imports_only_what_the_map_allows() -> None:
    wrong = [
        f"{room} imports {target} ({', '.join(sorted(set(files)))})"
        for room, targets in room_imports().items()
        if room != "cli"  # the edge: it may use every room
        for target, files in targets.items()
        if target not in ALLOWED.get(room, set())
    ]
    assert wrong == []


def test_the_map_itself_has_no_cycle() -> None:
    try:
        order = list(TopologicalSorter(ALLOWED).static_order())
    except CycleError as e:  # pragma: no cover - the message names the cycle
        raise AssertionError(f"the rooms' map has a cycle: {e.args[1]}") from None
    assert set(order) >= set(ALLOWED)


def test_every_room_of_the_package_is_in_the_map() -> None:
    rooms = {_room(p) for p in PACKAGE.rglob("*.py")} - {"__init__", "__main__", "cli"}
    assert sorted(rooms - set(ALLOWED)) == []
