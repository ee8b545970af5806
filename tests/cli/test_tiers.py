"""`grunndata import safest|sector|supplementary` as DMP staff and data owners run them."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_bad_input import run_cli
from tests.conftest import REAL_FEST, require

PLANTED = Path(__file__).parents[1] / "importers" / "safest_data" / "planted.json"


def test_import_safest_prints_the_reconciliation(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    assert run_cli("import", "fest", str(require(REAL_FEST)), "--db", db).returncode == 0
    done = run_cli("import", "safest", str(PLANTED), "--db", db)
    assert done.returncode == 0, done.stderr
    assert "planted.json: 10 resources read" in done.stdout
    assert "18 disagreements" in done.stdout
    assert "From SAFEST only: MedicinalProductDefinition 1" in done.stdout
    assert "Release 2 is now active." in done.stdout
    again = run_cli("import", "safest", str(PLANTED), "--db", db)
    assert "Nothing changed: the delivery is identical to the active release 2." in again.stdout


def test_import_supplementary_and_its_refusal_are_one_report_or_one_sentence(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    assert run_cli("import", "fest", str(require(REAL_FEST)), "--db", db).returncode == 0
    notes = tmp_path / "notes.csv"
    notes.write_text("varenr;merknad\n014884;Oppbevares i kjøleskap\n", encoding="utf-8")
    done = run_cli("import", "supplementary", str(notes), "--owner", "vendor-a", "--db", db)
    assert done.returncode == 0, done.stderr
    assert "notes.csv: 1 records for vendor-a (supplementary)." in done.stdout
    assert "Release 2 is now active." in done.stdout
    notes.write_text("varenr;merknad\n999999;x\n", encoding="utf-8")
    refused = run_cli("import", "supplementary", str(notes), "--owner", "vendor-a", "--db", db)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: refused, nothing was imported: notes.csv line 2: varenr 999999 names no national package"
    )
    assert "Traceback" not in refused.stderr
    notes.write_text("varenr;merknad\n999999;x\n14884;y\n014884;z\n;w\n", encoding="utf-8")
    refused = run_cli("import", "supplementary", str(notes), "--owner", "vendor-a", "--db", db)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()  # every problem with its line, the first in the last
    assert [line.split(": ", 2)[1] for line in lines[:-1]] == ["notes.csv line 3", "notes.csv line 5"]
    assert lines[-1].startswith(
        "error: refused, nothing was imported: 3 problems, the first: notes.csv line 2: varenr 999999"
    )


def test_serve_refuses_bad_auth_settings_in_one_sentence(tmp_path: Path) -> None:
    done = run_cli(
        "serve", "--db", f"sqlite:///{tmp_path / 's.db'}", env={"GRUNNDATA_JWKS": str(tmp_path / "none.json")}
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
