"""What a run validates: resource files as the importers read them, or everything a store serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grunndata.importers.resources import read_resources
from grunndata.validation.definitions import Definitions
from grunndata.validation.engine import Report, Validator
from grunndata.validation.packages import load_definitions


def load_core(cache: Path) -> Definitions:
    """The R5 core definitions from the package cache; PackageError saying how to fill an empty one."""
    return Definitions(load_definitions(cache))


def validate_files(definitions: Definitions, path: Path) -> Report:
    """Every resource in `path` (a Bundle's entries one by one), read as the importers read them."""
    validator, report = Validator(definitions), Report()
    for found in read_resources(path):
        validator.validate(found.resource, found.where, report)
    return report


def validate_store(definitions: Definitions, engine: Any) -> Report:
    """Every resource the store's active releases serve, as the server sends it (meta included)."""
    from grunndata.store.reads import served

    validator, report = Validator(definitions), Report()
    with engine.connect() as conn:
        for version in served(conn):
            validator.validate(version.resource(), f"{version.tier} data of {version.owner}", report)
    return report
