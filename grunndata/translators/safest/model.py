"""The values the SAFEST translator hands back: converted resources and problems, each with its place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]


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
