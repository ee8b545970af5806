"""`GET /releases/{N}`: the whole report of any release, refused ones included, the same JSON as
`grunndata releases show N --json` (who may read which line: the access matrix, test_access.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from grunndata.server import create_app
from grunndata.store import connect
from tests.cli.test_bad_input import run_cli
from tests.cli.test_releases import MPD, imported

__all__ = ["imported"]  # the CLI tests' store: the real extract (1) and a refused SAFEST delivery (2)


@pytest.fixture(scope="module")
def client(imported: Path) -> Iterator[TestClient]:
    engine = connect(f"sqlite:///{imported}", must_exist=True)
    with TestClient(create_app(engine, warm=False)) as c:
        yield c
    engine.dispose()


def test_a_refused_delivery_lists_every_problem_the_cli_counted(client: TestClient, imported: Path) -> None:
    answer = client.get("/releases/2")
    assert answer.status_code == 200, answer.text
    release = answer.json()
    assert (release["status"], release["source"], release["tier"]) == ("failed", "safest", "national")
    assert release["message"].startswith("refused: the delivery has 3 problem(s); the first: ")
    report = release["report"]
    assert report["problem_count"] == 3
    assert [p.split(" is not valid")[0] for p in report["problems"]] == [f"{MPD}/bad-{n}" for n in range(3)]
    shown = run_cli("releases", "show", "2", "--db", f"sqlite:///{imported}", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == release  # one function makes both


def test_an_active_release_has_its_counts(client: TestClient) -> None:
    release = client.get("/releases/1").json()
    assert (release["id"], release["status"], release["served"]) == (
        1,
        "active",
        {"entries": 403, "fhir": 712},
    )
    assert release["counts"]["PackagedProductDefinition"]["new"] == 107


@pytest.mark.parametrize(
    "path,status",
    [
        ("/releases/3", 404),
        ("/releases/0", 400),
        ("/releases/x", 400),
        ("/releases/99999999999", 400),  # beyond the path's 10 digits
        ("/releases/2147483648", 404),  # beyond what the store numbers: no such release, as in a diff
    ]
    + [(f"/releases/{loose}", 400) for loose in ("1.0", "01", "%2B1", "1%20", "1e0")],
)
def test_no_such_release(client: TestClient, path: str, status: int) -> None:
    answer = client.get(path)
    assert answer.status_code == status, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_times_are_utc_with_one_z_from_either_store() -> None:
    """SQLite hands back naive UTC times, PostgreSQL aware ones: both are written `...Z` once."""
    from datetime import UTC, datetime, timedelta, timezone
    from types import SimpleNamespace

    from grunndata.store import release_json

    naive = datetime(2026, 12, 7, 17, 35, 0, 120000)
    aware = naive.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=1)))  # 18:35 in Oslo
    fields = dict.fromkeys(
        ("id", "status", "source", "kind", "tier", "owner_id", "hentet_dato", "file_name", "based_on")
    )
    rows = [
        SimpleNamespace(**fields, started_at=t, ended_at=t, activated_at=None, counts=None, message=None)
        for t in (naive, aware)
    ]
    written = [release_json(r, report=False) for r in rows]
    assert [(w["started"], w["ended"], w["activated"]) for w in written] == [
        ("2026-12-07T17:35:00.120000Z", "2026-12-07T17:35:00.120000Z", None)
    ] * 2
