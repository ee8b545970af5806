"""The R5 core package, fetched once with npm into the tests' cache and read once per session."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from grunndata.validation import CORE_NAME, CORE_VERSION, Definitions, install_tgz, load_core, package_folder
from tests.npm import cache_folder, installing, npm, unavailable


@pytest.fixture(scope="session")
def fhir_packages(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FHIR package cache holding hl7.fhir.r5.core#5.0.0 (`npm pack` the first time only)."""
    cache = cache_folder(pytestconfig, tmp_path_factory, "fhir-packages")
    with installing(cache):  # install_tgz replaces the package's folder: nobody reads it meanwhile
        if not (package_folder(cache) / "package.json").is_file():
            with tempfile.TemporaryDirectory() as tmp:
                spec = f"{CORE_NAME}@{CORE_VERSION}"
                npm(["pack", spec, "--silent"], Path(tmp), f"the FHIR R5 core package ({spec})")
                tgz = sorted(Path(tmp).glob("*.tgz"))
                if not tgz:
                    unavailable(f"npm pack {spec} wrote no .tgz")
                install_tgz(tgz[0].read_bytes(), cache)
    return cache


@pytest.fixture(scope="session")
def r5(fhir_packages: Path) -> Definitions:
    return load_core(fhir_packages)
