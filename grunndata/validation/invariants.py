"""FHIRPath invariants, evaluated with fhirpathpy over the R5 model; what it cannot evaluate is None.

fhirpathpy 2.2 lacks `hasValue()` (which ele-1 uses on every element) and `lowBoundary()` /
`highBoundary()` (per-1 on every Period): they are added here as the FHIRPath specification defines
them, the boundaries for dates and times only (anything else gives no result, so "not checked").
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fhirpathpy import compile as fhirpath_compile
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models


def _has_value(coll: list[Any]) -> list[bool]:
    if len(coll) != 1:
        return [False]
    data = coll[0].data if isinstance(coll[0], ResourceNode) else coll[0]
    return [data is not None and not isinstance(data, dict | list)]


_WHEN = re.compile(
    r"(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})(T(?P<H>\d{2}):(?P<M>\d{2})(:(?P<S>\d{2})(\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def _boundary(value: Any, high: bool) -> str | None:
    """The earliest (or latest) instant a date or dateTime of any precision can mean, in UTC, as text
    of one fixed width, so that `<=` between two boundaries compares instants. Without a time zone the
    widest ones are assumed (+14:00 for the earliest, -12:00 for the latest), as FHIRPath says."""
    found = _WHEN.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        return None
    g = found.groupdict()
    year, month = int(g["y"]), int(g["m"] or (12 if high else 1))
    day = int(g["d"] or (calendar.monthrange(year, month)[1] if high else 1))
    hour, minute = int(g["H"] or (23 if high else 0)), int(g["M"] or (59 if high else 0))
    second = int(g["S"] or (59 if high else 0))
    micro = int(((g["f"] or "") + ("9" if high else "0") * 6)[:6]) if g["S"] else (999999 if high else 0)
    zone = g["tz"] or ("-12:00" if high else "+14:00")
    offset = (
        timedelta(0)
        if zone == "Z"
        else (1 if zone[0] == "+" else -1) * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    )
    instant = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC) - offset
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _low_boundary(coll: list[Any]) -> list[str]:
    found = _boundary(coll[0], high=False) if len(coll) == 1 else None
    return [] if found is None else [found]


def _high_boundary(coll: list[Any]) -> list[str]:
    found = _boundary(coll[0], high=True) if len(coll) == 1 else None
    return [] if found is None else [found]


def _quiet(*_: Any) -> None:
    """trace() in an expression (dom-3 uses it) would print to stdout; a validator stays quiet."""


_OPTIONS = {
    "userInvocationTable": {
        "hasValue": {"fn": _has_value, "arity": {0: []}},
        "lowBoundary": {"fn": _low_boundary, "arity": {0: []}},
        "highBoundary": {"fn": _high_boundary, "arity": {0: []}},
    },
    "traceFn": _quiet,
}


_REMEMBERED = 20_000
"""Outcomes kept at most (then forgotten all at once), each of a node of at most _SMALL bytes of JSON."""
_SMALL = 400


class Invariants:
    """Compiled expressions, kept for the run; `holds` is True, False, or None (not evaluable)."""

    def __init__(self) -> None:
        self._compiled: dict[str, Callable[..., Any] | None] = {}
        self._known: dict[tuple[str, str, bytes], bool | None] = {}

    def holds(
        self,
        expression: str,
        node: dict[str, Any],
        type_path: str,
        resource: dict[str, Any],
        root: dict[str, Any],
    ) -> bool | None:
        """Whether the invariant holds on `node` (an instance of `type_path`); None when it cannot be told
        (an error in the engine, or a result that is not one boolean: an empty one included).

        An expression that names no %variable depends on the node alone, and the same small nodes
        (codings, extensions, quantities) recur thousands of times: their outcome is remembered, which
        takes a third off a run (46 s instead of 76 s for the 24,635 resources of a generated delivery
        of a quarter of the real size, 20 MB more)."""
        if "%" in expression or "resourceType" in node:
            return self._evaluate(expression, node, type_path, resource, root)
        content = orjson.dumps(node, option=orjson.OPT_SORT_KEYS)
        if len(content) > _SMALL:
            return self._evaluate(expression, node, type_path, resource, root)
        key = (expression, type_path, content)
        if key not in self._known:
            if len(self._known) >= _REMEMBERED:
                self._known.clear()
            self._known[key] = self._evaluate(expression, node, type_path, resource, root)
        return self._known[key]

    def _compile(self, expression: str) -> Callable[..., Any] | None:
        if expression not in self._compiled:
            try:
                self._compiled[expression] = fhirpath_compile(expression, models["r5"], _OPTIONS)
            except Exception:  # noqa: BLE001  a grammar fhirpathpy does not know: not checked
                self._compiled[expression] = None
        return self._compiled[expression]

    def _evaluate(
        self,
        expression: str,
        node: dict[str, Any],
        type_path: str,
        resource: dict[str, Any],
        root: dict[str, Any],
    ) -> bool | None:
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
