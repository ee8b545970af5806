"""`grunndata export m30`, as an operator feeding the e-prescription chain uses it."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_bad_input import run_cli
from tests.conftest import REAL_FEST, require
from tests.exporters.trees import differences


def test_export_writes_dmps_zip_that_imports_back_as_nothing_changed(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    assert run_cli("import", "fest", str(require(REAL_FEST)), "--db", db).returncode == 0
    out = tmp_path / "fest251.zip"
    done = run_cli("export", "m30", "--db", db, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "│ Legemiddelpakning    │     107 │                  0 │" in done.stdout
    assert "entries) in " in done.stdout and "from release 1." in done.stdout
    assert differences(REAL_FEST, out) == []
    again = run_cli("import", "fest", str(out), "--db", db)
    assert "Nothing changed: the delivery is identical to the active release 1." in again.stdout


def test_export_errors_are_one_sentence(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    assert run_cli("import", "fest", str(require(REAL_FEST)), "--db", db).returncode == 0
    cases = {
        (
            "-o",
            str(tmp_path / "missing" / "fest251.xml"),
        ): f"the folder for {tmp_path / 'missing' / 'fest251.xml'} does not exist",
        ("-o", str(tmp_path)): f"{tmp_path} is a folder",
        (
            "--since",
            "yesterday",
            "-o",
            str(tmp_path / "x.xml"),
        ): "no FEST delivery here had HentetDato 'yesterday'",
    }
    for args, words in cases.items():
        r = run_cli("export", "m30", "--db", db, *args)
        assert r.returncode == 2, r.stderr
        assert words in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.xml").exists()
