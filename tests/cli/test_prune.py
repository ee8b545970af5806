"""`grunndata prune` as an operator runs it: a dry run that says what would go and changes nothing,
the prune itself with --vacuum, a rollback to a release it kept, and bad options as one sentence."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from grunndata.importers.fest import import_fest
from grunndata.sample import derive_followup, generate_delivery
from grunndata.store import connect
from tests.cli.test_bad_input import run_cli

NO_GRACE = {"GRUNNDATA_PRUNE_GRACE_SECONDS": "0", "GRUNNDATA_PRUNE_KEEP_ROLLBACK": "1"}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A SQLite store of 5 releases: a small generated delivery and 4 follow-ups."""
    paths = [tmp_path / "d0.xml"]
    generate_delivery(paths[0], scale=0.003, seed=5)
    for n in range(1, 5):
        paths.append(tmp_path / f"d{n}.xml")
        derive_followup(paths[n - 1], paths[n], seed=n)
    db = tmp_path / "store.db"
    engine = connect(f"sqlite:///{db}")
    for path in paths:
        import_fest(engine, path)
    engine.dispose()
    return db


def _statuses(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT id, status FROM release ORDER BY id"))


def _manifest_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM release_entry").fetchone()[0])


def test_a_dry_run_says_what_would_go_then_prune_and_roll_back_to_a_kept_release(store: Path) -> None:
    url = f"sqlite:///{store}"
    rows, size = _manifest_rows(store), store.stat().st_size
    dry = run_cli("prune", "--keep", "2", "--dry-run", "--db", url, env=NO_GRACE)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("Would prune 3 release(s): 1, 2, 3; ")
    assert "kept 4: a rollback may return to it" in dry.stdout
    assert "kept 5: active" in dry.stdout
    assert _manifest_rows(store) == rows and store.stat().st_size == size  # nothing changed
    assert [s for _, s in _statuses(store)] == ["superseded"] * 4 + ["active"]

    done = run_cli("prune", "--keep", "2", "--vacuum", "--db", url, env=NO_GRACE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Pruned 3 release(s): 1, 2, 3; ")
    assert "Vacuumed: the freed space is back with the file system." in done.stdout
    assert _statuses(store) == [(1, "pruned"), (2, "pruned"), (3, "pruned"), (4, "superseded"), (5, "active")]
    assert _manifest_rows(store) < rows and store.stat().st_size < size

    again = run_cli("prune", "--keep", "2", "--db", url, env=NO_GRACE)
    assert again.returncode == 0 and again.stdout.startswith("Nothing to prune: every release is kept.")
    refused = run_cli("rollback", "2", "--db", url)
    assert refused.returncode == 2
    assert "release 2 is pruned and holds no data to serve" in refused.stderr
    back = run_cli("rollback", "4", "--db", url)
    assert back.returncode == 0, back.stderr
    assert "Release 4's data" in back.stdout and "is served again, as release 6." in back.stdout
    assert _statuses(store)[3:] == [(4, "superseded"), (5, "rolled-back"), (6, "active")]
    gone = run_cli("releases", "diff", "2", "4", "--db", url)  # a pruned release's data is gone
    assert (gone.returncode, gone.stderr.strip()) == (
        2,
        "error: release 2 is pruned and holds no data to compare",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "say what to keep: --keep N (the newest releases of each line) or --older-than 90d"),
        (
            ("--older-than", "3 months"),
            "--older-than '3 months': give a whole number and a unit s, m, h, d or w",
        ),
        (("--older-than", "99999999999d"), "--older-than '99999999999d': at most 999999 of a unit"),
    ],
)
def test_prune_refuses_what_it_cannot_do_in_one_sentence(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    db = tmp_path / "store.db"
    engine = connect(f"sqlite:///{db}")  # an empty store
    engine.dispose()
    answer = run_cli("prune", *args, "--db", f"sqlite:///{db}")
    assert answer.returncode == 2
    assert message in answer.stderr
    assert "Traceback" not in answer.stderr
