"""An operator stages a delivery from the command line, reviews what it changes, then activates it
(or discards it): `import fest --stage`, `releases diff`, `activate`, `discard`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from grunndata import cli
from grunndata.sample import derive_followup, generate_delivery
from grunndata.store import connect, release_number
from tests.cli.test_bad_input import run_cli


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, dict[str, int]]]:
    folder = tmp_path_factory.mktemp("generated")
    base, followup = folder / "base.xml", folder / "followup.xml"
    generate_delivery(base, scale=0.02, seed=7)
    return base, followup, derive_followup(base, followup, seed=3)


# what a FEST store's releases hold: the catalogues (without the store's FEST. prefix) and FHIR types
HELD = [
    "AdministrableProductDefinition",
    "Basic",
    "Byttegruppe",
    "ClinicalUseDefinition",
    "CodeSystem",
    "Diagnose",
    "Handelsvare",
    "Ingredient",
    "Interaksjon",
    "Kodeverk",
    "LegemiddelMerkevare",
    "LegemiddelVirkestoff",
    "Legemiddeldose",
    "Legemiddelpakning",
    "ManufacturedItemDefinition",
    "MedicinalProductDefinition",
    "OrdineringVirkestoff",
    "PackagedProductDefinition",
    "Refusjon",
    "RegulatedAuthorization",
    "StrDosering",
    "SubstanceDefinition",
    "VarselSlv",
    "Vilkar",
    "Virkestoff",
]


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli.app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_stage_review_activate_from_the_command_line(
    generated: tuple[Path, Path, dict[str, dict[str, int]]], tmp_path: Path
) -> None:
    base, followup, stats = generated
    db = f"sqlite:///{tmp_path / 'store.db'}"
    invoke("import", "fest", str(base), "--db", db)
    staged = invoke("import", "fest", str(followup), "--db", db, "--stage")
    assert staged.splitlines()[-1] == (
        "Release 2 is staged: checked, not served. Review it (`grunndata releases diff 1 2`), then "
        "`grunndata activate 2` or `grunndata discard 2`."
    )
    listed = json.loads(invoke("releases", "--db", db, "--json"))
    assert [(r["id"], r["status"], r["activated"]) for r in listed][1] == (2, "staged", None)

    diff: dict[str, Any] = json.loads(
        invoke("releases", "diff", "2", "--db", db, "--json")
    )  # against its base
    assert (diff["base"]["id"], diff["target"]["id"]) == (1, 2)
    assert diff["counts"]["catalogues"] == {cat: c for cat, c in sorted(stats.items()) if any(c.values())}
    packages = stats["Legemiddelpakning"]
    text = invoke("releases", "diff", "1", "2", "--db", db, "--type", "Legemiddelpakning", "--show", "100")
    listed_entries = [
        line.split()[0] for line in text.splitlines() if line.startswith("  ") and "/ID_" in line
    ]
    assert listed_entries.count("new") == packages["new"]
    assert listed_entries.count("changed") == packages["changed"]
    assert listed_entries.count("expired") == packages["expired"]
    assert f"Entries 1 to {sum(packages.values())} of {sum(packages.values())}:" in text
    assert "      Tidspunkt: " in text  # each changed entry's elements, old -> new
    # a type the releases hold but that did not change, and a typo, which is refused
    unchanged = invoke("releases", "diff", "1", "2", "--db", db, "--type", "Diagnose")
    assert unchanged.splitlines()[-1] == "No Diagnose entries differ."
    typo = run_cli("releases", "diff", "1", "2", "--db", db, "--type", "Legemiddelpaknig")
    assert (typo.returncode, typo.stderr.strip()) == (
        2,
        "error: neither release 1 nor 2 holds entries of type 'Legemiddelpaknig'; they hold "
        + ", ".join(HELD),
    )

    hentet = diff["target"]["hentet_dato"]
    assert (
        invoke("activate", "2", "--db", db).strip() == f"Release 2 (fest, HentetDato {hentet}) is now active."
    )
    statuses = [(r["id"], r["status"]) for r in json.loads(invoke("releases", "--db", db, "--json"))]
    assert statuses == [(1, "superseded"), (2, "active")]

    again = run_cli("activate", "2", "--db", db)
    assert (again.returncode, again.stderr.strip()) == (
        2,
        "error: release 2 is active, not staged; only a staged release can be activated",
    )
    missing = run_cli("discard", "7", "--db", db)
    assert (missing.returncode, missing.stderr.strip()) == (2, "error: there is no release 7")


def test_a_staged_release_is_discarded_and_leaves_the_served_one_alone(
    generated: tuple[Path, Path, dict[str, dict[str, int]]], tmp_path: Path
) -> None:
    base, followup, _ = generated
    db = f"sqlite:///{tmp_path / 'store.db'}"
    invoke("import", "fest", str(base), "--db", db)
    invoke("import", "fest", str(followup), "--db", db, "--stage")
    assert (
        invoke("discard", "2", "--db", db).strip() == "Release 2 (fest) is discarded; nothing served changed."
    )
    rows = json.loads(invoke("releases", "--db", db, "--json"))
    assert [(r["id"], r["status"], r["message"]) for r in rows] == [
        (1, "active", None),
        (2, "discarded", "staged, then discarded; its data was removed unserved"),
    ]
    gone = run_cli("releases", "diff", "1", "2", "--db", db)
    assert (gone.returncode, gone.stderr.strip()) == (
        2,
        "error: release 2 is discarded and holds no data to compare",
    )


BIG = "99999999999999999999"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (("activate", BIG), f"there is no release {BIG}"),
        (("discard", BIG), f"there is no release {BIG}"),
        (("rollback", BIG), f"there is no release {BIG}"),
        (("releases", "diff", BIG), f"there is no release {BIG}; `grunndata releases` lists them"),
        (("releases", "diff", BIG, BIG), f"there is no release {BIG}"),
        (("releases", "show", BIG), f"there is no release {BIG}; `grunndata releases` lists them"),
    ],
)
def test_a_release_number_beyond_the_store_is_one_that_does_not_exist(
    command: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    """The store numbers releases up to 2**31-1; a larger number is a release it does not hold (as
    the HTTP routes answer 404), not the driver's overflow."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    connect(db).dispose()  # an empty store
    answer = run_cli(*command, "--db", db)
    assert (answer.returncode, answer.stderr.strip()) == (2, f"error: {message}")


@pytest.mark.parametrize("written", ["004", " 4"])
@pytest.mark.parametrize(
    ("command", "hint"),
    [
        (("activate",), ""),
        (("discard",), ""),
        (("rollback",), ""),
        (("releases", "show"), "; `grunndata releases` lists them"),
        (("releases", "diff"), "; `grunndata releases` lists them"),
        (("releases", "diff", "1"), ""),
    ],
)
def test_a_release_number_not_written_as_digits_is_one_that_does_not_exist(
    written: str, command: tuple[str, ...], hint: str, tmp_path: Path
) -> None:
    """A release number is its digits as written, as the HTTP routes take it: `004` or ` 4` is no
    release 4 (the command line took them, through int, where `/releases/004` refused them)."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    connect(db).dispose()  # an empty store
    answer = run_cli(*command, written, "--db", db)
    assert (answer.returncode, answer.stderr.rstrip("\n")) == (
        2,
        f"error: there is no release {written}{hint}",
    )
    assert answer.stdout == ""


def test_the_command_line_and_the_routes_read_a_release_number_by_one_rule() -> None:
    assert [release_number(t) for t in ("4", "2147483647", "1234567890")] == [4, 2147483647, 1234567890]
    for text in ("004", " 4", "4 ", "+4", "-4", "4_0", "0", "", "four", "٤", "2147483648", "99999999999"):
        assert release_number(text) is None, text
