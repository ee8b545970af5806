"""The M30 element tree (XSD types by path, from xsd_paths.py), for walking entries and for coverage."""

from __future__ import annotations

from typing import Any

from grunndata.m30 import catalogue
from grunndata.translators.fest_to_idmp.values import XsdNode
from grunndata.translators.fest_to_idmp.xsd_paths import XSD_PATHS


def build(paths: dict[str, str]) -> XsdNode:
    """The nested (type, {child: ...}) tree of a path table whose first path is the root."""
    nodes: dict[str, tuple[str, dict[str, Any]]] = {}
    root: XsdNode | None = None
    for path, xsd_type in paths.items():
        node: XsdNode = (xsd_type, {})
        nodes[path] = node
        parent, _, name = path.rpartition("/")
        if parent:
            nodes[parent][1][name] = node
        elif root is None:
            root = node
    if root is None:
        raise ValueError("no XSD paths")
    return root


FEST = build(XSD_PATHS)


def oppf_xsd(catalogue_name: str) -> XsdNode:
    """The XSD node of the Oppf element of catalogue `catalogue_name` (LegemiddelMerkevare, ...)."""
    found = _OPPF.get(catalogue_name)
    if found is None:
        cat = catalogue(catalogue_name)
        found = _OPPF[catalogue_name] = FEST[1][cat.kat][1][cat.oppf]
    return found


_OPPF: dict[str, XsdNode] = {}
