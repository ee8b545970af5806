"""The release commands and the server, as a DMP operator and a health check use them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from grunndata.importers.fest import import_fest
from grunndata.server import create_app
from grunndata.store import connect
from tests.cli.test_bad_input import run_cli
from tests.conftest import REAL_FEST, require


def test_import_releases_and_rollback_from_the_command_line(tmp_path, real_fest_xml):
    db = f"sqlite:///{tmp_path / 'ops.db'}"
    first = run_cli("import", "fest", str(require(REAL_FEST)), "--db", db)
    assert first.returncode == 0, first.stderr
    assert "Release 1 is now active." in first.stdout
    assert "│ Legemiddelpakning    │     107 │ 107 │       0 │         0 │       0 │" in first.stdout
    assert "Payload kinds: Refusjonshjemmel 26, VirkestoffMedStyrke 55" in first.stdout
    assert (
        "H-resept view leaves out (now = HentetDato 2017-04-12): atc-q 0, homeopathic 0, not-marketed 0, "
        "no-varenr 0, varenr-expired 0, unit-dose-expired 0"
    ) in " ".join(first.stdout.split())

    dry = run_cli("import", "fest", str(REAL_FEST), "--db", db, "--dry-run")
    assert (
        dry.returncode == 0 and "Dry run: the delivery passed every check; nothing was written." in dry.stdout
    )

    changed = tmp_path / "changed.xml"
    changed.write_bytes(real_fest_xml.replace(b"2017-04-12T18:26:27.336Z", b"2017-04-26T18:00:00Z"))
    second = run_cli("import", "fest", str(changed), "--db", db)
    assert "Release 2 is now active." in second.stdout
    # two weeks on, three months back passes the two packages deregistered on 2017-01-18
    assert "(now = HentetDato 2017-04-26): atc-q 0, homeopathic 0, not-marketed 2," in " ".join(
        second.stdout.split()
    )
    assert _h_resept_packages(db) == 105

    listing = run_cli("releases", "--db", db)
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in listing.stdout.splitlines()
        if line.startswith("│ ")
    ]
    assert [row[:6] for row in rows] == [
        ["1", "superseded", "fest", "full", "national/dmp", "2017-04-12T18:26:27.336Z"],
        ["2", "active", "fest", "full", "national/dmp", "2017-04-26T18:00:00Z"],
    ]
    assert [row[8:10] for row in rows] == [["403", "712"], ["403", "712"]]  # FEST entries, FHIR resources

    back = run_cli("rollback", "1", "--db", db)
    assert back.returncode == 0, back.stderr
    assert back.stdout.strip() == (
        "Release 1's data (HentetDato 2017-04-12T18:26:27.336Z) is served again, as release 3."
    )
    assert _h_resept_packages(db) == 107  # release 1's content filters: the view is its data's
    again = run_cli("rollback", "1", "--db", db)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        "error: release 1 serves what release 3, the active one, serves; there is nothing to roll back"
    )
    active = run_cli("rollback", "3", "--db", db)
    assert active.returncode == 2 and active.stderr.strip() == "error: release 3 is already the active one"


def _h_resept_packages(db: str) -> int:
    engine = connect(db)
    with TestClient(create_app(engine)) as client:
        bundle = client.get("/fhir/PackagedProductDefinition?content-filter=h-resept&_summary=count").json()
    engine.dispose()
    return int(bundle["total"])


def test_an_unreachable_database_is_one_sentence(tmp_path):
    result = run_cli("releases", "--db", "postgresql://nobody@127.0.0.1:1/none")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: cannot open the database postgresql+psycopg://nobody@127.0.0.1:1/none"
    )
    assert "Traceback" not in result.stderr


def test_health_names_the_release_being_served(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'serve.db'}")
    client = TestClient(create_app(engine))
    assert client.get("/health").json()["active_releases"] == []
    release = import_fest(engine, require(REAL_FEST)).release_id
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["active_releases"] == [
        {
            "id": release,
            "source": "fest",
            "tier": "national",
            "owner": "dmp",
            "hentet_dato": "2017-04-12T18:26:27.336Z",
        }
    ]
    [listed] = client.get("/releases").json()
    assert listed["counts"]["FEST.Interaksjon"] == {"new": 25, "changed": 0, "unchanged": 0, "expired": 0}
