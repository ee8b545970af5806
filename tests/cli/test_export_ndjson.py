"""`grunndata export ndjson`: an operator hands a record system the catalogue as Bulk Data files."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
from typer.testing import CliRunner

from grunndata.cli import app
from grunndata.errors import GrunndataError
from grunndata.importers.fest import import_fest
from grunndata.settings import Settings
from grunndata.store import connect
from tests.cli.test_bad_input import run_cli
from tests.conftest import REAL_FEST, require
from tests.server.conftest import CERTICAN_PACKAGE, publish
from tests.server.test_access import RESTRICTED


def _lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]


def test_export_ndjson_writes_one_gzip_file_per_type_and_the_next_since(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    engine = connect(db)
    import_fest(engine, require(REAL_FEST))
    publish(engine, RESTRICTED)
    engine.dispose()
    out = tmp_path / "export"
    done = run_cli("export", "ndjson", "--db", db, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "│ PackagedProductDefinition.ndjson.gz      │       107 │" in done.stdout
    assert "Wrote 712 resources in " in done.stdout and "from release 1; transactionTime " in done.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{t}.ndjson.gz"
        for t in (
            "MedicinalProductDefinition",
            "PackagedProductDefinition",
            "ManufacturedItemDefinition",
            "AdministrableProductDefinition",
            "Ingredient",
            "SubstanceDefinition",
            "ClinicalUseDefinition",
            "Basic",
            "RegulatedAuthorization",
        )
    )
    packages = _lines(out / "PackagedProductDefinition.ndjson.gz")
    assert len(packages) == 107 and CERTICAN_PACKAGE in {p["id"] for p in packages}
    assert {p["meta"]["tag"][0]["code"] for p in packages} == {"national"}  # type: ignore[index]
    # with the sector scope's data, as an entitled client's $export; nothing changed since the last
    sector = tmp_path / "sector"
    done = run_cli(
        "export", "ndjson", "--db", db, "-o", str(sector), "--sector", "--type", "Basic,Composition"
    )
    assert done.returncode == 0, done.stderr
    assert {len(_lines(sector / "Basic.ndjson.gz")), len(_lines(sector / "Composition.ndjson.gz"))} == {68, 1}
    since = done.stdout.rsplit("transactionTime ", 1)[1].split(" ", 1)[0]
    later = run_cli("export", "ndjson", "--db", db, "-o", str(tmp_path / "later"), "--since", since)
    assert later.returncode == 0, later.stderr
    assert "Wrote 0 resources and 0 deletions in " in later.stdout


def test_export_ndjson_errors_are_one_sentence(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    connect(db).dispose()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "Basic.ndjson.gz").write_bytes(b"")
    x = str(tmp_path / "x")
    cases = {
        ("--type", "Patient", "-o", x): "'Patient' is not a resource type served here",
        ("--type", "Endpoint", "-o", x): "Endpoint is served here but not exported",
        ("--since", "yesterday", "-o", x): "not a date or time: 'yesterday'",
        ("-o", str(tmp_path / "full")): f"{tmp_path / 'full'} holds an export already",
        ("-o", str(tmp_path / "missing" / "export")): f"the folder {tmp_path / 'missing'} does not exist",
    }
    for args, words in cases.items():  # in this process: main() prints the sentence of the error
        result = CliRunner().invoke(app, ["export", "ndjson", "--db", db, *args], obj=Settings.load({}))
        assert isinstance(result.exception, GrunndataError), result.output
        assert words in str(result.exception)
    r = run_cli("export", "ndjson", "--db", db, "--type", "Patient", "-o", x)  # and as the user sees it
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "error: 'Patient' is not a resource type served here" in r.stderr
    assert not (tmp_path / "x").exists()
