"""FHIR.js (npm `fhir` 4.12.0, Lantana), installed with npm into a cache and run with node: an outside
converter of FHIR R4 between XML and JSON, for checking our own R4 XML reading against.

Installed once into pytest's cache folder (.pytest_cache, kept between runs; a temp folder when the
cache is off), so the tests pay for npm only the first time. Without node or npm, or without the
registry, the tests skip with one line saying why, except on CI (CI set), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

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


def unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is a failure)")
    pytest.skip(message)


def install(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the installed package (holding profiles/types.json), installing it when absent."""
    cache = getattr(pytestconfig, "cache", None)
    root = cache.mkdir(f"fhir-js-{VERSION}") if cache is not None else tmp_path_factory.mktemp("fhir-js")
    package = root / "node_modules" / "fhir"
    if (package / "package.json").is_file():
        return package
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        unavailable(f"node and npm are needed to install FHIR.js (npm fhir@{VERSION}) and are not on PATH")
    command = [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", str(root)]
    try:
        done = subprocess.run(
            [*command, f"fhir@{VERSION}"], capture_output=True, text=True, timeout=300, check=False
        )
    except subprocess.TimeoutExpired:
        unavailable(f"npm install fhir@{VERSION} took more than 300 s; is the npm registry reachable?")
    if done.returncode != 0 or not (package / "package.json").is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        unavailable(f"npm install fhir@{VERSION} failed: {tail[0]}")
    return package


def convert(package: Path, jobs: list[tuple[str, Path, Path]]) -> None:
    """Run FHIR.js once over every (mode, from, to): mode "xmlToJson" or "jsonToXml"."""
    script = package.parent.parent / "convert.js"
    script.write_text(_CONVERT, "utf-8")
    listing = jobs[0][2].parent / "jobs.json"
    listing.write_text(json.dumps([[mode, str(a), str(b)] for mode, a, b in jobs]), "utf-8")
    node = shutil.which("node") or "node"
    done = subprocess.run(
        [node, str(script), str(package), str(listing)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"FHIR.js failed: {done.stderr.strip()}"
