"""The values the SAFEST translator hands back: converted resources and problems, each with its place."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

Json = dict[str, Any]


def json_bytes(value: Any) -> bytes:
    """FHIR JSON of `value`; a `Decimal` (an R4 XML decimal, read with its precision) is written as
    the number it is, trailing zeros kept: 1.50 stays 1.50 (orjson alone would refuse it)."""
    return orjson.dumps(value, default=_decimal)


def _decimal(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} {value!r} has no JSON form")


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in a delivery that could not be converted as it stood, said as a sentence.

    `resource` is the resource's ``Type/id`` as given (``?`` for a missing part), so the import
    report can point at the SAFEST resource the user would look up.
    """

    resource: str
    message: str
    warning: bool = (
        False  # converted all the same (kept as extension, left out, defaulted): reported, not refused
    )


@dataclass(slots=True)
class Conversion:
    """A whole delivery in R5: the resources (in delivery order) and what went wrong on the way.

    A problem that is a warning changed how a resource is served; any other kept the resource out."""

    resources: list[Json] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.warning]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.warning]
