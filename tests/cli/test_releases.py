"""What an operator reads from the command line: the releases with their whole HentetDato and a
short reason, one release's whole report, JSON for scripts, the version, M30 to standard output,
and commands that only read a store refusing to make one where there is none."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from grunndata import __version__, cli
from grunndata.importers.fest import import_fest
from grunndata.store import connect
from tests.cli.test_bad_input import run_cli
from tests.conftest import REAL_FEST, REAL_HENTET_DATO, require

MPD = "MedicinalProductDefinition"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store with the real extract (release 1) and a refused SAFEST delivery (release 2)."""
    folder = tmp_path_factory.mktemp("releases")
    path = folder / "store.db"
    engine = connect(f"sqlite:///{path}")
    import_fest(engine, require(REAL_FEST))
    engine.dispose()
    bad = folder / "bad.json"
    products = [{"resourceType": MPD, "id": f"bad-{n}", "name": n} for n in range(3)]
    bad.write_text(
        json.dumps(
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in products]}
        )
    )
    refused = run_cli("import", "safest", str(bad), "--db", f"sqlite:///{path}")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "refused: the delivery has 3 problem(s)" in refused.stderr
    assert "(and 2 more; the release report keeps all)" in refused.stderr
    return path


@pytest.fixture
def db(imported: Path, tmp_path: Path) -> str:
    target = tmp_path / "store.db"
    shutil.copy(imported, target)
    return f"sqlite:///{target}"


def test_releases_as_json_give_the_whole_hentet_dato_and_the_refusal(db: str) -> None:
    listed = run_cli("releases", "--db", db, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["status"], r["source"], r["hentet_dato"]) for r in rows] == [
        (1, "active", "fest", REAL_HENTET_DATO),
        (2, "failed", "safest", None),
    ]
    assert rows[0]["served"] == {"entries": 403, "fhir": 712}  # as the table counts them (test_commands)
    assert rows[1]["message"].startswith("refused: the delivery has 3 problem(s); the first: ")
    assert "report" not in rows[0]  # the listing stays small; `releases show N` has it


def test_the_table_shows_hentet_dato_whole_and_a_short_reason_in_80_columns(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = {
        r["id"]: r["started"][:16].replace("T", " ")
        for r in json.loads(run_cli("releases", "--db", db, "--json").stdout)
    }
    screen = io.StringIO()
    monkeypatch.setattr(cli, "out", Console(file=screen, width=80))
    result = CliRunner().invoke(cli.app, ["releases", "--db", db])
    assert result.exit_code == 0, result.output
    assert screen.getvalue().splitlines() == [  # one release a line or two: nothing cut
        f"1 active fest full national/dmp {started[1]}  403 entries, 712 FHIR",
        f"  HentetDato {REAL_HENTET_DATO}",  # exactly what `export m30 --since` takes
        f"2 failed safest full national/dmp {started[2]}",
        "  refused: the delivery has 3 problem(s)",  # the detail is `releases show 2`'s
    ]


def test_releases_show_lists_every_problem_the_import_counted(db: str) -> None:
    shown = run_cli("releases", "show", "2", "--db", db, "--json")
    assert shown.returncode == 0, shown.stderr
    release = json.loads(shown.stdout)
    assert release["status"] == "failed" and release["source"] == "safest"
    report = release["report"]
    assert report["problem_count"] == 3
    assert len(report["problems"]) == 3
    assert all(f"{MPD}/bad-" in p for p in report["problems"]), report["problems"]

    text = run_cli("releases", "show", "2", "--db", db)
    assert text.returncode == 0, text.stderr
    assert "Release 2: failed, safest" in text.stdout
    assert "3 problems:" in text.stdout
    listed = [line for line in text.stdout.splitlines() if line.startswith("  - ")]
    assert [line.split(" is not valid")[0] for line in listed] == [f"  - {MPD}/bad-{n}" for n in range(3)]


def test_releases_show_of_an_unknown_release_is_one_sentence(db: str) -> None:
    missing = run_cli("releases", "show", "9", "--db", db)
    assert missing.returncode == 2
    assert "there is no release 9; `grunndata releases` lists them" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_version() -> None:
    shown = run_cli("--version")
    assert shown.returncode == 0 and shown.stdout.strip() == f"grunndata {__version__}"


def test_export_to_standard_output_is_the_same_delivery_as_to_a_file(db: str, tmp_path: Path) -> None:
    to_file = run_cli("export", "m30", "--db", db, "-o", str(tmp_path / "fest251.xml"))
    assert to_file.returncode == 0, to_file.stderr
    piped = run_cli("export", "m30", "--db", db, "-o", "-")
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == (tmp_path / "fest251.xml").read_text(encoding="utf-8")
    assert "Wrote standard output" in piped.stderr
    assert not Path("-").exists()


def test_an_unknown_since_lists_the_hentet_datos_there_are(db: str, tmp_path: Path) -> None:
    refused = run_cli("export", "m30", "--db", db, "--since", "2017-04-12", "-o", str(tmp_path / "x.xml"))
    assert refused.returncode == 2
    assert f"(the deliveries here, newest first: {REAL_HENTET_DATO})" in refused.stderr
    assert not (tmp_path / "x.xml").exists()


@pytest.mark.parametrize(
    "command",
    [
        ("releases",),
        ("releases", "show", "1"),
        ("reindex",),
        ("rollback", "1"),
        ("export", "m30", "-o", "OUT"),
        ("validate", "--db"),
        ("import", "fest", "FEST", "--dry-run"),
    ],
)
def test_a_command_on_a_missing_store_says_so_and_makes_none(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    missing = tmp_path / "nothing.db"
    args = [a.replace("OUT", str(tmp_path / "out.xml")).replace("FEST", str(REAL_FEST)) for a in command]
    if command[0] == "validate":
        args.append(f"sqlite:///{missing}")
    else:
        args += ["--db", f"sqlite:///{missing}"]
    result = run_cli(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"there is no store at {missing}" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_file_that_is_no_database_and_an_empty_one_are_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("not a database\n" * 100)
    result = run_cli("releases", "--db", f"sqlite:///{text}")
    assert result.returncode == 2
    assert f"cannot open the database sqlite:///{text}: file is not a database" in result.stderr
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    result = run_cli("releases", "--db", f"sqlite:///{empty}")
    assert result.returncode == 2
    assert f"sqlite:///{empty} holds no grunndata store (no releases table)" in result.stderr


def test_import_still_makes_a_new_store(tmp_path: Path) -> None:
    new = tmp_path / "new.db"
    made = run_cli("import", "fest", str(require(REAL_FEST)), "--db", f"sqlite:///{new}")
    assert made.returncode == 0, made.stderr
    assert "Release 1 is now active." in made.stdout
