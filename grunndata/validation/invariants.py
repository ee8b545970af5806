"""FHIRPath invariants, evaluated with fhirpathpy over the R5 model; what it cannot evaluate is None.

fhirpathpy 2.2 lacks `hasValue()` (which ele-1 uses on every element): it is added here as the
FHIRPath specification defines it (true for a single primitive with a value).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhirpathpy import compile as fhirpath_compile
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models


def _has_value(coll: list[Any]) -> list[bool]:
    if len(coll) != 1:
        return [False]
    data = coll[0].data if isinstance(coll[0], ResourceNode) else coll[0]
    return [data is not None and not isinstance(data, dict | list)]


def _quiet(*_: Any) -> None:
    """trace() in an expression (dom-3 uses it) would print to stdout; a validator stays quiet."""


_OPTIONS = {"userInvocationTable": {"hasValue": {"fn": _has_value, "arity": {0: []}}}, "traceFn": _quiet}


class Invariants:
    """Compiled expressions, kept for the run; `holds` is True, False, or None (not evaluable)."""

    def __init__(self) -> None:
        self._compiled: dict[str, Callable[..., Any] | None] = {}

    def _compile(self, expression: str) -> Callable[..., Any] | None:
        if expression not in self._compiled:
            try:
                self._compiled[expression] = fhirpath_compile(expression, models["r5"], _OPTIONS)
            except Exception:  # noqa: BLE001  a grammar fhirpathpy does not know: not checked
                self._compiled[expression] = None
        return self._compiled[expression]

    def holds(
        self,
        expression: str,
        node: dict[str, Any],
        type_path: str,
        resource: dict[str, Any],
        root: dict[str, Any],
    ) -> bool | None:
        """Whether the invariant holds on `node` (an instance of `type_path`); None when it cannot be told
        (an error in the engine, or a result that is not one boolean: an empty one included)."""
        compiled = self._compile(expression)
        if compiled is None:
            return None
        try:
            # A resource goes in as itself (so `Ingredient.where(...)` starts at it); an element carries
            # its type's path, which the model needs for choice types, ofType() and children().
            start = node if "resourceType" in node else ResourceNode(node, type_path)  # type: ignore[no-untyped-call]
            result = compiled(start, {"resource": resource, "rootResource": root or resource})
        except Exception:  # noqa: BLE001  a function or type fhirpathpy cannot evaluate: not checked
            return None
        if result == [True]:
            return True
        if result == [False]:
            return False
        return None
