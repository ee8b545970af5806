"""DMP's SAFEST examples and FHIR.js, the outside converter that gives each example in its other form."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED, require
from tests.importers import fhirjs

EXAMPLES = SHARED / "data" / "safest-r4" / "Examples"
EXAMPLE_NAMES = sorted(p.name for p in EXAMPLES.iterdir()) if EXAMPLES.is_dir() else []


@pytest.fixture(scope="session")
def fhir_js(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fhirjs.install(pytestconfig, tmp_path_factory)


@pytest.fixture(scope="session")
def other_forms(fhir_js: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each published example converted to the other form by FHIR.js, in one node run."""
    require(EXAMPLES)
    out = tmp_path_factory.mktemp("fhir-js-converted")
    jobs = []
    for name in EXAMPLE_NAMES:
        source = EXAMPLES / name
        if source.suffix == ".xml":
            jobs.append(("xmlToJson", source, out / (source.stem + ".json")))
        else:
            jobs.append(("jsonToXml", source, out / (source.stem + ".xml")))
    fhirjs.convert(fhir_js, jobs)
    return {source.name: converted for _, source, converted in jobs}
