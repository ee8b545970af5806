"""Typed FEST entries, kept as order-preserving element trees so nothing of M30 is lost.

A `Node` is ``[name, attributes, text, children]``: the element's local name, its attributes
(or None), its text when it is a leaf (or None), and its child nodes (or None). Lists rather
than objects so that an entry serialises to JSON and back with orjson unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grunndata.m30.schema import CATALOGUES

M30_NS = "http://www.kith.no/xmlstds/eresept/m30/2014-12-01"
FS_NS = "http://www.kith.no/xmlstds/eresept/forskrivning/2014-12-01"
NAMESPACES = {"m30": M30_NS, "fs": FS_NS}

Node = list[Any]
"""``[local name, {attr: value} | None, text | None, [child Node, ...] | None]``"""


@dataclass(frozen=True, slots=True)
class Catalogue:
    """One FEST catalogue (`Kat*`): its entries are `Oppf*` elements wrapping a payload."""

    name: str  # FEST name without "Kat": LegemiddelMerkevare, Legemiddelpakning, ...
    oppf: str  # the entry element: OppfLegemiddelMerkevare, ...
    payloads: dict[str, str]  # payload element local name -> namespace URI
    order: int  # position in the FEST sequence

    @property
    def kat(self) -> str:
        return "Kat" + self.name


def _build() -> tuple[Catalogue, ...]:
    return tuple(
        Catalogue(name, oppf, {p: NAMESPACES[ns] for p, ns in payloads}, i)
        for i, (name, oppf, payloads) in enumerate(CATALOGUES)
    )


_CATALOGUES = _build()
_BY_NAME = {c.name: c for c in _CATALOGUES}
CATALOGUE_BY_OPPF = {c.oppf: c for c in _CATALOGUES}
CATALOGUE_BY_KAT = {c.kat: c for c in _CATALOGUES}


def catalogues() -> tuple[Catalogue, ...]:
    """All 15 catalogues in XSD order."""
    return _CATALOGUES


def catalogue(name: str) -> Catalogue:
    """The catalogue called `name` (without "Kat"); KeyError if there is none."""
    return _BY_NAME[name]


def child(node: Node, name: str) -> Node | None:
    """The first child of `node` named `name`, or None."""
    children: list[Node] = node[3] or []
    for c in children:
        if c[0] == name:
            return c
    return None


def child_text(node: Node, name: str) -> str | None:
    found = child(node, name)
    return None if found is None else found[2]


@dataclass(frozen=True, slots=True)
class FestEntry:
    """One `Oppf*` entry of a FEST delivery.

    `oppf_id` identifies this listing (it changes when DMP replaces the entry); `key` is the
    stable identity we version on: the payload's inner Id (what `Ref*` elements point at), or
    the Oppf Id where the payload has no Id of its own.
    """

    catalogue: str
    oppf_id: str
    tidspunkt: str
    status: str  # "A" active, "U" expired (utgått)
    status_dn: str | None
    payload: tuple[Node, ...]  # Kodeverk has Info + Element+; the rest one node or none
    line: int = 0  # line of the Oppf element in its file, for messages only

    @property
    def kind(self) -> str | None:
        """The payload element's name (Virkestoff or VirkestoffMedStyrke, ...), None if empty."""
        return self.payload[0][0] if self.payload else None

    @property
    def inner_id(self) -> str | None:
        return child_text(self.payload[0], "Id") if self.payload else None

    @property
    def key(self) -> str:
        return self.inner_id or self.oppf_id

    def envelope(self) -> list[Node]:
        status_attrs = {"V": self.status}
        if self.status_dn is not None:
            status_attrs["DN"] = self.status_dn
        return [
            ["Id", None, self.oppf_id, None],
            ["Tidspunkt", None, self.tidspunkt, None],
            ["Status", status_attrs, None, None],
        ]

    def to_json(self) -> list[Any]:
        """The stored form: catalogue and every child of the Oppf element, in order."""
        return [self.catalogue, self.envelope() + list(self.payload)]

    @classmethod
    def from_json(cls, data: list[Any]) -> FestEntry:
        catalogue_name, nodes = data
        oppf_id, tidspunkt, status = nodes[0][2], nodes[1][2], nodes[2][1] or {}
        return cls(
            catalogue_name, oppf_id, tidspunkt, status.get("V", ""), status.get("DN"), tuple(nodes[3:])
        )
