"""Every `grunndata import` lowers its own priority (GRUNNDATA_IMPORT_NICE): a server beside it keeps its tail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grunndata import cli
from tests.cli.test_bad_input import run_cli
from tests.conftest import REAL_FEST, require


def _asked(monkeypatch: pytest.MonkeyPatch, folder: Path, env: dict[str, str]) -> list[tuple[int, int, int]]:
    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(cli.os, "setpriority", lambda which, who, prio: calls.append((which, who, prio)))
    monkeypatch.setattr(cli.os, "getpriority", lambda which, who: 0)
    folder.mkdir()
    db = f"sqlite:///{folder / 'store.db'}"
    result = CliRunner().invoke(cli.app, ["import", "fest", str(require(REAL_FEST)), "--db", db], env=env)
    assert result.exit_code == 0, result.output
    return calls


def test_an_import_runs_at_the_configured_niceness(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _asked(monkeypatch, tmp_path / "a", {}) == [(os.PRIO_PROCESS, 0, 10)]  # the default
    assert _asked(monkeypatch, tmp_path / "b", {"GRUNNDATA_IMPORT_NICE": "3"}) == [(os.PRIO_PROCESS, 0, 3)]
    assert _asked(monkeypatch, tmp_path / "c", {"GRUNNDATA_IMPORT_NICE": "0"}) == []


def test_a_bad_niceness_is_one_sentence(tmp_path: Path) -> None:
    r = run_cli(
        "import",
        "fest",
        str(REAL_FEST),
        "--db",
        f"sqlite:///{tmp_path / 's.db'}",
        env={"GRUNNDATA_IMPORT_NICE": "20"},
    )
    assert r.returncode == 2
    assert r.stderr.strip() == "error: GRUNNDATA_IMPORT_NICE must be a whole number from 0 to 19, not '20'"
