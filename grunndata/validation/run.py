"""What a run validates: resource files as the importers read them, or everything a store serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grunndata.importers.resources import read_resources
from grunndata.settings import DEFAULT_MAX_RESOURCE_FILE_BYTES
from grunndata.validation.definitions import Definitions
from grunndata.validation.engine import Report, Validator
from grunndata.validation.packages import KINDS, load_definitions


def load_core(cache: Path, ours: bool = True) -> Definitions:
    """The R5 core definitions from the package cache (PackageError saying how to fill an empty one),
    and ours (no.grunndata.fhir, as this code builds it), so our extensions are checked too."""
    if not ours:
        return Definitions(load_definitions(cache))
    return Definitions(load_definitions(cache) + our_definitions(), (tiered_definition,))


def our_definitions() -> list[dict[str, Any]]:
    """The StructureDefinitions, ValueSets and CodeSystems of our package, straight from the tables."""
    from grunndata.fhirpackage import package_resources

    return [r for r in package_resources() if r["resourceType"] in KINDS]


def tiered_definition(url: str) -> dict[str, Any] | None:
    """The StructureDefinition of a CSV column's extension (its url names tier, owner and column)."""
    from grunndata.fhirpackage.content import extension_definition
    from grunndata.fhirpackage.extensions import tiered_extension

    use = tiered_extension(url)
    return extension_definition(use) if use is not None else None


def validate_files(
    definitions: Definitions, path: Path, max_file_bytes: int = DEFAULT_MAX_RESOURCE_FILE_BYTES
) -> Report:
    """Every resource in `path` (a Bundle's entries one by one), read as the importers read them."""
    validator, report = Validator(definitions), Report()
    for found in read_resources(path, max_file_bytes):
        validator.validate(found.resource, found.where, report)
    return report


def validate_store(definitions: Definitions, engine: Any) -> Report:
    """Every resource the store's active releases serve, as the server sends it (meta included)."""
    from grunndata.store import served

    validator, report = Validator(definitions), Report()
    with engine.connect() as conn:
        for version in served(conn):
            validator.validate(version.resource(), f"{version.tier} data of {version.owner}", report)
    return report
