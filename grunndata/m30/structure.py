"""The XSD's content models as the FEST reader checks them: which children, how many, which required.

Order is not checked: real extracts and other producers' files put elements out of XSD order
(reference/fest-m30.md §6.2), the entry is stored as a tree and M30 exports always write XSD
order. What would make an export fail the XSD, or be the sender's error blamed on our mapping,
is refused: an element the parent cannot hold, more of one than its maxOccurs, a required one
missing, or two arms of one choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from grunndata.m30.schema import CONTENT_MODELS


def listed(names: list[str] | tuple[str, ...], last: str = "and") -> str:
    """'A', 'A and B', 'A, B and C': names as a sentence lists them."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


@dataclass(frozen=True, slots=True)
class Model:
    """One content model, compiled for counting: children by name, and the rules counts must keep."""

    children: dict[str, tuple[int | None, Model | None]]  # child -> (maxOccurs, its content model)
    required: tuple[tuple[str, int], ...]  # (element, minOccurs) of the elements always required
    groups: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]  # choices and optional sequences

    @property
    def names(self) -> str:
        return listed(list(self.children))


def _compile(particles: tuple[tuple[str, tuple[tuple[str, int, int | None, str | None], ...]], ...]) -> Model:
    """A model whose children are filled in once every model exists (they refer to each other)."""
    required = tuple((m[0], m[1]) for kind, (m, *_) in particles if kind == "element" and m[1] > 0)
    groups = tuple(
        (kind, tuple((name, low) for name, low, _, _ in members))
        for kind, members in particles
        if kind != "element"
    )
    return Model({}, required, groups)


MODELS: dict[str, Model] = {key: _compile(particles) for key, particles in CONTENT_MODELS.items()}
for _key, _particles in CONTENT_MODELS.items():
    MODELS[_key].children.update(
        (name, (high, None if model is None else MODELS[model]))
        for _, members in _particles
        for name, _, high, model in members
    )


def _models_by_element() -> dict[str, set[str]]:
    """Element name -> the content models elements of that name have, wherever they occur."""
    found: dict[str, set[str]] = {}
    for particles in CONTENT_MODELS.values():
        for _kind, members in particles:
            for name, _low, _high, model in members:
                if model is not None:
                    found.setdefault(name, set()).add(model)
    return found


_MODELS_OF = _models_by_element()


@cache
def child_order(element: str) -> tuple[str, ...]:
    """The children `element` may hold, in XSD order: where a writer inserts one so the XSD holds.

    Refused (ValueError) for a name that holds no elements, or that the XSD gives two content models.
    """
    models = _MODELS_OF.get(element, set())
    if len(models) != 1:
        found = f"{len(models)} content models ({listed(sorted(models))})" if models else "no content model"
        raise ValueError(f"{element} has {found}; its child order must come from one")
    (key,) = models
    return tuple(member[0] for _kind, members in CONTENT_MODELS[key] for member in members)


def unknown(parent: str, model: Model | None, child: str) -> str:
    """The sentence for a child element the parent's content model does not name."""
    may = f"it may hold {model.names}" if model is not None else "it may hold no elements"
    return f"{parent} cannot hold {child}; {may}"


def too_many(parent: str, child: str, count: int, high: int) -> str:
    times = "twice" if count == 2 else f"{count} times"
    return f"{parent} holds {child} {times}; it may hold {'one' if high == 1 else f'at most {high}'}"


def missing(parent: str, model: Model, counts: dict[str, int]) -> str | None:
    """What the counted children lack that the XSD requires, or two arms of one choice; None if nothing."""
    for name, low in model.required:
        if counts.get(name, 0) < low:
            return _fewer(parent, name, low, counts)
    for kind, members in model.groups:
        present = [(name, low) for name, low in members if counts.get(name)]
        if kind == "optional sequence":
            checked = members if present else ()
        elif len(present) > 1:
            return f"{parent} holds both {present[0][0]} and {present[1][0]}; it may hold only one of them"
        elif not present and kind == "choice":
            names = [name for name, _ in members]
            none = (
                f"neither {names[0]} nor {names[1]}" if len(names) == 2 else f"none of {listed(names, 'or')}"
            )
            return f"{parent} has {none}; the XSD requires one of them"
        else:
            checked = tuple(present)
        for name, low in checked:
            if counts.get(name, 0) < low:
                return _fewer(parent, name, low, counts)
    return None


def _fewer(parent: str, name: str, low: int, counts: dict[str, int]) -> str:
    count = counts.get(name, 0)
    if count == 0:
        return f"{parent} has no {name}, which the XSD requires"
    return f"{parent} holds {count} {name}; the XSD requires at least {low}"
