"""`grunndata catalog check|probe` as an operator runs them, from cron too."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_bad_input import run_cli

DATA = Path(__file__).parents[1] / "server" / "catalog_data"
EXAMPLE = Path(__file__).parents[2] / "docs" / "catalogue.example.yaml"


def test_check_lists_every_problem_of_every_file_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  - id: x\n    name: X\n")
    done = run_cli("catalog", "check", str(DATA / "broken.yaml"), str(bad))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith(f"error: {DATA / 'broken.yaml'}:")
    assert any(line.startswith(f"error: {bad}:2: ") for line in lines)
    assert "Traceback" not in done.stderr


def test_check_of_a_good_file_counts_its_services() -> None:
    done = run_cli("catalog", "check", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3 services in 1 file: all well-formed."


def test_probe_marks_unreachable_services_and_exits_1_for_cron(tmp_path: Path) -> None:
    down = tmp_path / "down.yaml"
    down.write_text(
        "services:\n  - id: nobody-home\n    name: Nobody\n    owner: vendor-z\n    tier: supplementary\n"
        "    interface: fhir-r5\n    base_url: http://127.0.0.1:9/fhir\n"
    )
    db = f"sqlite:///{tmp_path / 'store.db'}"
    done = run_cli(
        "catalog",
        "probe",
        "--db",
        db,
        "--catalog",
        str(down),
        "--base-url",
        "http://127.0.0.1:9",
        "--timeout",
        "1",
        "--retries",
        "0",
    )
    assert done.returncode == 1, done.stderr
    assert "nobody-home" in done.stdout and "connection refused" in done.stdout
    assert "Traceback" not in done.stderr


def test_probe_options_out_of_range_are_one_sentence() -> None:
    done = run_cli("catalog", "probe", "--timeout", "0")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --timeout must be more than 0 and at most 300 seconds"
