"""Fixtures for the FEST -> IDMP translator tests: FEST entries read the way the importer reads them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from grunndata.m30 import FestReader
from grunndata.m30.records import FestEntry
from grunndata.translators.fest_to_idmp import LOOKUP_KINDS, translate
from tests.conftest import REAL_FEST, require


def read(path: Path) -> list[FestEntry]:
    return [entry for entry, _ in FestReader(path).entries()]


def lookup_of(entries: Iterable[FestEntry]) -> dict[str, FestEntry]:
    """What the importer preloads: entries of LOOKUP_KINDS by inner Id (a dict has the Lookup's get)."""
    return {e.key: e for e in entries if e.kind in LOOKUP_KINDS}


def translate_all(entries: list[FestEntry]) -> list[dict[str, Any]]:
    lookup = lookup_of(entries)
    return [resource for entry in entries for resource in translate(entry, lookup)]


@pytest.fixture(scope="session")
def real_entries() -> list[FestEntry]:
    return read(require(REAL_FEST))


@pytest.fixture(scope="session")
def real_resources(real_entries: list[FestEntry]) -> list[dict[str, Any]]:
    return translate_all(real_entries)


@pytest.fixture(scope="session")
def by_id(real_resources: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The real extract's resources by (type, id)."""
    return {(r["resourceType"], r["id"]): r for r in real_resources}
