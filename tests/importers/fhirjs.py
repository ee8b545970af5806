"""FHIR.js (npm `fhir` 4.12.0, Lantana), installed with npm into a cache and run with node: an outside
converter of FHIR R4 between XML and JSON, for checking our own R4 XML reading against, and an
outside R4 validator (its `validate`: elements, types, cardinalities of R4) of our R4 view.

Installed once into the tests' npm cache (tests/npm.py: skipped with a reason without npm, failed on CI).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.npm import cache_folder, installing, npm_install, unavailable

VERSION = "4.12.0"

# Reads [[mode, in, out], ...] from argv[2] and converts each file with FHIR.js's Fhir class.
_CONVERT = """
const fs = require("fs");
const { Fhir } = require(process.argv[2]);
const fhir = new Fhir();
for (const [mode, from, to] of JSON.parse(fs.readFileSync(process.argv[3], "utf8"))) {
  const text = fs.readFileSync(from, "utf8");
  fs.writeFileSync(to, mode === "xmlToJson" ? fhir.xmlToJson(text) : fhir.jsonToXml(text));
}
"""

# Reads a JSON array of R4 resources from argv[3]; writes, per resource, the messages of FHIR.js's
# validation (an element R4 does not define is an error too) to argv[4].
_VALIDATE = """
const fs = require("fs");
const { Fhir } = require(process.argv[2]);
const fhir = new Fhir();
const found = JSON.parse(fs.readFileSync(process.argv[3], "utf8")).map(
  (resource) => fhir.validate(resource, { errorOnUnexpected: true }).messages
);
fs.writeFileSync(process.argv[4], JSON.stringify(found));
"""


def install(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the installed package (holding profiles/types.json), installing it when absent."""
    root = cache_folder(pytestconfig, tmp_path_factory, f"fhir-js-{VERSION}")
    package = root / "node_modules" / "fhir"
    with installing(root):
        if not (package / "package.json").is_file():
            npm_install(root, f"fhir@{VERSION}", f"FHIR.js (npm fhir@{VERSION})")
            if not (package / "package.json").is_file():
                unavailable(f"npm install fhir@{VERSION} left no node_modules/fhir/package.json")
    return package


def convert(package: Path, jobs: list[tuple[str, Path, Path]]) -> None:
    """Run FHIR.js once over every (mode, from, to): mode "xmlToJson" or "jsonToXml"."""
    listing = jobs[0][2].parent / "jobs.json"
    listing.write_text(json.dumps([[mode, str(a), str(b)] for mode, a, b in jobs]), "utf-8")
    _node(package, "convert.js", _CONVERT, [str(listing)])


def validate(package: Path, resources: list[dict[str, Any]], folder: Path) -> list[list[dict[str, Any]]]:
    """FHIR.js's R4 validation of each resource, in one node run: its messages (location, severity,
    message) per resource, in order."""
    given, found = folder / "resources.json", folder / "messages.json"
    given.write_text(json.dumps(resources), "utf-8")
    _node(package, "validate.js", _VALIDATE, [str(given), str(found)])
    messages: list[list[dict[str, Any]]] = json.loads(found.read_text("utf-8"))
    return messages


def _node(package: Path, name: str, code: str, args: list[str]) -> None:
    script = package.parent.parent / name
    script.write_text(code, "utf-8")
    node = shutil.which("node") or "node"
    done = subprocess.run(
        [node, str(script), str(package), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"FHIR.js failed: {done.stderr.strip()}"
