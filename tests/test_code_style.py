"""The code stays as STYLE.md asks: ruff clean, and mypy --strict on the store, translators, M30 model and server."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_finds_nothing():
    result = _run("ruff", "check", "grunndata", "tests", "tools", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_store_translators_m30_and_server():
    result = _run(
        "mypy",
        "--strict",
        "grunndata/store",
        "grunndata/translators",
        "grunndata/m30",
        "grunndata/server",
        "grunndata/exporters",
        "grunndata/validation",
        "grunndata/fhirpackage",
        "grunndata/fhir",
        "grunndata/terminology",
        "grunndata/settings.py",
    )
    assert result.returncode == 0, result.stdout + result.stderr
