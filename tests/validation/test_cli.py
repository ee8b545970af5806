"""`grunndata validate`: exit 0 when valid, 1 with every error on a line, 2 with one sentence for bad usage."""

from __future__ import annotations

import json
from pathlib import Path

from grunndata.importers.fest import import_fest
from grunndata.store import connect
from tests.cli.test_bad_input import run_cli
from tests.conftest import REAL_FEST, require

VALID = {"resourceType": "Ingredient", "id": "i1", "status": "active", "role": {"text": "active"}}
VALID["substance"] = {"code": {"concept": {"text": "paracetamol"}}}


def _file(tmp_path: Path, *resources: dict[str, object]) -> Path:
    path = tmp_path / "resources.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in resources), "utf-8")
    return path


def test_valid_resources_exit_0(fhir_packages: Path, tmp_path: Path) -> None:
    done = run_cli("validate", str(_file(tmp_path, VALID)), "--packages", str(fhir_packages))
    assert (done.returncode, done.stdout, done.stderr) == (0, "1 resource validated; 0 errors.\n", "")


def test_errors_exit_1_each_with_resource_path_and_rule(fhir_packages: Path, tmp_path: Path) -> None:
    wrong = {**VALID, "id": "i2", "status": "final", "colour": "red"}
    done = run_cli(
        "validate", str(_file(tmp_path, VALID, wrong)), env={"GRUNNDATA_FHIR_PACKAGES": str(fhir_packages)}
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        "resources.ndjson line 2: Ingredient/i2 Ingredient.colour: colour is not an element of Ingredient [unknown element]",
        "resources.ndjson line 2: Ingredient/i2 Ingredient.status: code 'final' is not in the value set "
        "[binding required http://hl7.org/fhir/ValueSet/publication-status]",
        "2 resources validated; 2 errors (binding required 1, unknown element 1).",
    ]


def test_an_empty_cache_says_how_to_fill_it(tmp_path: Path) -> None:
    empty = tmp_path / "packages"
    done = run_cli("validate", str(_file(tmp_path, VALID)), "--packages", str(empty))
    assert done.returncode == 2
    assert done.stderr == (
        f"error: the FHIR package cache {empty} holds no hl7.fhir.r5.core#5.0.0; fill it with "
        f"`grunndata validate --fetch --packages {empty}` (needs npm), or unpack the package.tgz of "
        f"`npm pack hl7.fhir.r5.core@5.0.0` into {empty}/hl7.fhir.r5.core#5.0.0/package\n"
    )


def test_bad_usage_and_bad_input_exit_2_with_one_sentence(fhir_packages: Path, tmp_path: Path) -> None:
    packages = ("--packages", str(fhir_packages))
    neither = run_cli("validate", *packages)
    both = run_cli("validate", str(_file(tmp_path, VALID)), "--db", "sqlite:///x.db", *packages)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", "utf-8")
    unreadable = run_cli("validate", str(broken), *packages)
    assert (neither.returncode, both.returncode, unreadable.returncode) == (2, 2, 2)
    assert "give a PATH of FHIR resources or --db URL of a store to validate" in neither.stderr
    assert "give a PATH or --db, not both" in both.stderr
    assert unreadable.stderr.startswith("error: broken.json") and len(unreadable.stderr.splitlines()) == 1
    assert "Traceback" not in neither.stderr + both.stderr + unreadable.stderr


def test_a_store_is_validated_as_it_serves(fhir_packages: Path, tmp_path: Path) -> None:
    """Everything the real extract makes is valid R5 and by our package (every extension of ours has a
    definition, so none is left unchecked); what cannot be checked is listed with counts."""
    db = f"sqlite:///{tmp_path / 'fest.db'}"
    import_fest(connect(db), require(REAL_FEST))
    done = run_cli("validate", "--db", db, "--packages", str(fhir_packages))
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines[:2] == ["712 resources validated; 0 errors.", "Not checked (563):"]
    assert lines[2:] == [
        "  346 binding http://hl7.org/fhir/ValueSet/currencies (cannot expand)",
        "  142 binding http://hl7.org/fhir/ValueSet/all-languages (cannot expand)",
        "  75 invariant apd-1",
    ]
