"""Problems with a place: what a refused sector or supplementary delivery is told, line by line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from grunndata.errors import DeliveryError
from grunndata.importers.run import MAX_REPORTED

MAX_LISTED_PROBLEMS = MAX_REPORTED
_WHERE = re.compile(r"^(?P<file>.*) (?P<kind>line|entry) (?P<number>\d+)$")


@dataclass(frozen=True, slots=True)
class Place:
    """Where in the delivery: a file, and a line (CSV, ndjson) or an entry (Bundle) of it."""

    file: str
    kind: str = ""  # "line", "entry", or "" for the file as a whole
    number: int | None = None

    @classmethod
    def parse(cls, where: str) -> Place:
        """The place from a resource reader's "file line 3" / "file entry 2" / "file"."""
        m = _WHERE.match(where)
        return cls(m["file"], m["kind"], int(m["number"])) if m else cls(where)

    def __str__(self) -> str:
        return f"{self.file} {self.kind} {self.number}" if self.number is not None else self.file


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a delivery, as a sentence with its place (and resource, when known)."""

    place: Place
    message: str
    resource: str | None = None  # "Type/id"

    def __str__(self) -> str:
        if self.message.startswith((self.place.file + " ", self.place.file + ":")):
            return self.message  # a sentence that names its own place ("x.json is empty")
        about = f"{self.resource}: " if self.resource else ""
        return f"{self.place}: {about}{self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.place.file,
            "line": self.place.number if self.place.kind == "line" else None,
            "entry": self.place.number if self.place.kind == "entry" else None,
            "resource": self.resource,
            "message": self.message,
        }


class TieredDeliveryError(DeliveryError):
    """A refused sector or supplementary delivery: every problem found, and nothing imported."""

    def __init__(self, problems: list[Problem], report: dict[str, Any] | None = None) -> None:
        self.problems = problems
        first = problems[0]
        if len(problems) == 1:
            sentence = f"refused, nothing was imported: {first}"
        else:
            sentence = f"refused, nothing was imported: {len(problems)} problems, the first: {first}"
        super().__init__(sentence)
        self.report = report or {"problems": [p.as_dict() for p in problems[:MAX_LISTED_PROBLEMS]]}


def refuse(place: Place, message: str) -> TieredDeliveryError:
    """A delivery refused as a whole (unreadable, empty, no key column) for one reason."""
    return TieredDeliveryError([Problem(place, message)])


def refuse_unreadable(file: str, sentence: str) -> TieredDeliveryError:
    """A reader's refusal ("x.ndjson line 3 is not JSON (...)"), with the place it names."""
    m = re.match(rf"^{re.escape(file)} (?P<kind>line|entry) (?P<number>\d+)\b", sentence)
    place = Place(file, m["kind"], int(m["number"])) if m else Place(file)
    return refuse(place, sentence)
