"""The GRUNNDATA_* settings live in one typed place, read at the edge, and the README says what they are."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grunndata.errors import GrunndataError
from grunndata.settings import Settings, SettingsError, readme_with_table, settings_table

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "grunndata"
ALLOWED = {PACKAGE / "settings.py"}  # the one module that knows the environment


def _reads_of_the_environment(path: Path, root: Path = ROOT) -> list[str]:
    """`os.environ`, `os.getenv`, `os.putenv`, and `environ`/`getenv` imported from os, with their lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ("environ", "environb", "getenv", "getenvb", "putenv")
        ):
            found.append((node.lineno, f"{path.relative_to(root)}:{node.lineno}: os.{node.attr}"))
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            for alias in node.names:
                if alias.name in ("environ", "environb", "getenv", "getenvb"):
                    found.append(
                        (node.lineno, f"{path.relative_to(root)}:{node.lineno}: from os import {alias.name}")
                    )
    return [where for _, where in sorted(found)]


def test_no_module_but_settings_reads_the_environment() -> None:
    found = [
        read
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in ALLOWED
        for read in _reads_of_the_environment(path)
    ]
    assert found == [], "read it in grunndata/settings.py and pass the value down from the edge"


def test_the_scan_finds_a_read_of_the_environment(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom os import getenv\nA = os.environ.get('X')\nB = os.getenv('Y')\n")
    assert _reads_of_the_environment(sample, tmp_path) == [
        "sample.py:2: from os import getenv",
        "sample.py:3: os.environ",
        "sample.py:4: os.getenv",
    ]


def test_the_readme_settings_table_is_made_from_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme == readme_with_table(readme), (
        "the README's settings table differs from grunndata/settings.py: run "
        "`python -m grunndata.settings --readme` from the repository"
    )


def test_every_variable_has_a_type_a_default_and_a_description() -> None:
    rows = settings_table().splitlines()[2:]
    assert len(rows) == len(Settings.model_fields) == 63
    for name, field in Settings.model_fields.items():
        assert field.description and field.description.endswith("."), name
    assert rows[0] == (
        "| `GRUNNDATA_DB` | text | sqlite:///grunndata.db | The store's database URL when `--db` is not given. |"
    )
    by_name = {row.split("`")[1]: row for row in rows}
    assert by_name["GRUNNDATA_MAX_XML_BYTES"].startswith(
        "| `GRUNNDATA_MAX_XML_BYTES` | integer | 2147483648 (2 GiB) |"
    )
    assert by_name["GRUNNDATA_CORS_ORIGINS"].startswith("| `GRUNNDATA_CORS_ORIGINS` | words | * |")
    assert by_name["GRUNNDATA_READY_CHECKS"].startswith(
        "| `GRUNNDATA_READY_CHECKS` | words | store,national |"
    )


def test_the_defaults_are_those_the_code_had() -> None:
    settings = Settings.load({})
    assert settings.db == "sqlite:///grunndata.db"
    assert (settings.debug, settings.dev_auth, settings.warm) == (False, False, True)
    assert (settings.jwks, settings.token_issuer, settings.token_audience) == (None, None, None)
    assert settings.clock_skew == 60
    assert (settings.dpop, settings.dpop_max_age) == ("allowed", 60)
    assert (settings.snapshot_seconds, settings.read_cache, settings.search_cache_mb) == (1.0, 50_000, 256.0)
    assert settings.search_cache_bytes == 256 * 1024 * 1024
    assert (settings.m30_dir, settings.catalog, settings.base_url, settings.fhir_packages) == (
        None,
        (),
        None,
        None,
    )
    assert settings.max_upload_bytes == settings.max_resource_file_bytes == 1 << 30
    assert settings.max_xml_bytes == 2 * 1024**3
    bounds = {
        name: getattr(settings, name) for name in Settings.model_fields if name.startswith("search_max_")
    }
    assert bounds == {
        "search_max_bytes": 32 * 1024,
        "search_max_params": 40,
        "search_max_repeats": 8,
        "search_max_values": 100,
        "search_max_values_total": 200,
        "search_max_value_chars": 500,
        "search_max_sort": 5,
        "search_max_includes": 10,
        "search_max_elements": 50,
        "search_max_chain": 2,
        "search_max_iterate": 3,
    }


def test_values_are_read_as_the_code_read_them() -> None:
    settings = Settings.load(
        {
            "GRUNNDATA_DB": "postgresql://postgres@127.0.0.1/g",
            "GRUNNDATA_DEBUG": "0",  # set at all: on, as `if os.environ.get(...)` had it
            "GRUNNDATA_WARM": " Off ",
            "GRUNNDATA_CATALOG": os.pathsep.join(["a.yaml", "", "b.json"]),
            "GRUNNDATA_BASE_URL": "https://grunndata.example/ ",
            "GRUNNDATA_M30_DIR": "  ",  # blank: unset
            "GRUNNDATA_SEARCH_CACHE_MB": "0",
            "GRUNNDATA_MAX_XML_BYTES": "100000",
            "OTHER": "ignored",
        }
    )
    assert settings.db == "postgresql://postgres@127.0.0.1/g"
    assert settings.debug is True and settings.warm is False
    assert settings.catalog == (Path("a.yaml"), Path("b.json"))
    assert settings.base_url == "https://grunndata.example"
    assert settings.m30_dir is None
    assert settings.search_cache_bytes == 0
    assert settings.max_xml_bytes == 100_000
    assert Settings.load({"GRUNNDATA_WARM": "yes"}).warm is True


def test_the_environment_is_read_by_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRUNNDATA_READ_CACHE", "7")
    monkeypatch.setenv("GRUNNDATA_JWKS", "")  # empty: unset
    monkeypatch.setenv("GRUNNDATA_CATALOG", os.pathsep.join(["x.yaml", "y.yaml"]))
    monkeypatch.setenv("GRUNNDATA_CORS_ORIGINS", " https://a.example/, http://localhost:3000 ")
    settings = Settings.load()
    assert (settings.read_cache, settings.jwks) == (7, None)
    assert settings.catalog == (Path("x.yaml"), Path("y.yaml"))
    assert settings.cors_origins == ("https://a.example", "http://localhost:3000")
    assert Settings.load({}).read_cache == 50_000  # a mapping alone: the environment is not read


def test_the_http_settings() -> None:
    defaults = Settings.load({})
    assert (defaults.cors_origins, defaults.cache_max_age, defaults.compress_min_bytes) == (("*",), 0, 1400)
    assert Settings.load({"GRUNNDATA_CORS_ORIGINS": "none"}).cors_origins == ()
    assert Settings.load({"GRUNNDATA_CORS_ORIGINS": "NONE"}).cors_origins == ()
    assert Settings.load({"GRUNNDATA_CORS_ORIGINS": "*"}).cors_origins == ("*",)
    assert Settings.load({"GRUNNDATA_CACHE_MAX_AGE": "300"}).cache_max_age == 300
    assert Settings.load({"GRUNNDATA_COMPRESS_MIN_BYTES": "0"}).compress_min_bytes == 0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "GRUNNDATA_MAX_XML_BYTES",
            "abc",
            "GRUNNDATA_MAX_XML_BYTES must be a whole number of bytes, more than 0, not 'abc'",
        ),
        (
            "GRUNNDATA_MAX_UPLOAD_BYTES",
            "0",
            "GRUNNDATA_MAX_UPLOAD_BYTES must be a whole number of bytes, more than 0, not '0'",
        ),
        (
            "GRUNNDATA_MAX_RESOURCE_FILE_BYTES",
            "1.5",
            "GRUNNDATA_MAX_RESOURCE_FILE_BYTES must be a whole number of bytes, more than 0, not '1.5'",
        ),
        (
            "GRUNNDATA_SNAPSHOT_SECONDS",
            "soon",
            "GRUNNDATA_SNAPSHOT_SECONDS must be a number of seconds from 0 to 3600, not 'soon'",
        ),
        (  # never: a server would not pick up a new release
            "GRUNNDATA_SNAPSHOT_SECONDS",
            "inf",
            "GRUNNDATA_SNAPSHOT_SECONDS must be a number of seconds from 0 to 3600, not 'inf'",
        ),
        (
            "GRUNNDATA_READ_CACHE",
            "-1",
            "GRUNNDATA_READ_CACHE must be a whole number of versions, 0 or more, not '-1'",
        ),
        (
            "GRUNNDATA_SEARCH_CACHE_MB",
            "lots",
            "GRUNNDATA_SEARCH_CACHE_MB must be a number of megabytes from 0 to 1000000, not 'lots'",
        ),
        (  # as bytes, no whole number: the server could not start
            "GRUNNDATA_SEARCH_CACHE_MB",
            "1e308",
            "GRUNNDATA_SEARCH_CACHE_MB must be a number of megabytes from 0 to 1000000, not '1e308'",
        ),
        (
            "GRUNNDATA_SEARCH_CACHE_MB",
            "nan",
            "GRUNNDATA_SEARCH_CACHE_MB must be a number of megabytes from 0 to 1000000, not 'nan'",
        ),
        ("GRUNNDATA_WARM", "abc", "GRUNNDATA_WARM must be 1 or 0 (or true/false, yes/no, on/off), not 'abc'"),
        (
            "GRUNNDATA_CLOCK_SKEW",
            "1m",
            "GRUNNDATA_CLOCK_SKEW must be a whole number of seconds from 0 to 300, not '1m'",
        ),
        ("GRUNNDATA_DEV_AUTH", "true", "GRUNNDATA_DEV_AUTH must be 1 (development mode) or 0, not 'true'"),
        (  # more would let a search reach SQLite's limit on an expression's depth
            "GRUNNDATA_SEARCH_MAX_VALUES",
            "251",
            "GRUNNDATA_SEARCH_MAX_VALUES must be a whole number from 1 to 250, not '251'",
        ),
        (
            "GRUNNDATA_SEARCH_MAX_BYTES",
            "0",
            "GRUNNDATA_SEARCH_MAX_BYTES must be a whole number from 1 to 1,048,576, not '0'",
        ),
        (  # an Origin header never has a path: it would never match
            "GRUNNDATA_CORS_ORIGINS",
            "https://a.example/app",
            "GRUNNDATA_CORS_ORIGINS must be `*`, `none` or origins such as https://app.example "
            "separated by commas, not 'https://a.example/app'",
        ),
        (
            "GRUNNDATA_CORS_ORIGINS",
            "a.example",
            "GRUNNDATA_CORS_ORIGINS must be `*`, `none` or origins such as https://app.example "
            "separated by commas, not 'a.example'",
        ),
        (
            "GRUNNDATA_CACHE_MAX_AGE",
            "86401",
            "GRUNNDATA_CACHE_MAX_AGE must be a whole number of seconds from 0 to 86,400, not '86401'",
        ),
        (
            "GRUNNDATA_COMPRESS_MIN_BYTES",
            "1k",
            "GRUNNDATA_COMPRESS_MIN_BYTES must be a whole number of bytes, 0 or more, not '1k'",
        ),
        (
            "GRUNNDATA_SEARCH_MAX_PARAMS",
            "many",
            "GRUNNDATA_SEARCH_MAX_PARAMS must be a whole number from 1 to 50, not 'many'",
        ),
        (
            "GRUNNDATA_EXPORT_JOBS_PER_ENTITLEMENT",
            "0",
            "GRUNNDATA_EXPORT_JOBS_PER_ENTITLEMENT cannot be used: Input should be greater than or equal "
            "to 1 (it is '0')",
        ),
    ],
)
def test_a_bad_value_is_one_sentence(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.load({name: value})
    assert str(caught.value) == message
    assert isinstance(caught.value, GrunndataError)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grunndata.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env, "COLUMNS": "200"},
    )


def test_a_bad_value_stops_the_cli_with_one_sentence_and_exit_2(tmp_path: Path) -> None:
    done = _cli("releases", "--db", f"sqlite:///{tmp_path / 's.db'}", env={"GRUNNDATA_MAX_XML_BYTES": "abc"})
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "error: GRUNNDATA_MAX_XML_BYTES must be a whole number of bytes, more than 0, not 'abc'\n"
    )


def test_a_bad_value_stops_serve_before_it_listens(tmp_path: Path) -> None:
    done = _cli("serve", "--db", f"sqlite:///{tmp_path / 's.db'}", env={"GRUNNDATA_SNAPSHOT_SECONDS": "-1"})
    assert done.returncode == 2
    assert (
        done.stderr
        == "error: GRUNNDATA_SNAPSHOT_SECONDS must be a number of seconds from 0 to 3600, not '-1'\n"
    )
    assert "Serving" not in done.stdout


def test_the_server_factory_refuses_a_bad_value_with_one_sentence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from grunndata.server import create_app
    from grunndata.store import connect

    monkeypatch.setenv("GRUNNDATA_READ_CACHE", "many")
    engine = connect(f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(
        SettingsError,
        match=r"^GRUNNDATA_READ_CACHE must be a whole number of versions, 0 or more, not 'many'$",
    ):
        create_app(engine)
    engine.dispose()


def test_the_factory_takes_its_values_from_the_settings_given(tmp_path: Path) -> None:
    from grunndata.server import create_app
    from grunndata.store import connect

    engine = connect(f"sqlite:///{tmp_path / 's.db'}")
    settings = Settings.load(
        {"GRUNNDATA_SNAPSHOT_SECONDS": "0.25", "GRUNNDATA_READ_CACHE": "10", "GRUNNDATA_SEARCH_CACHE_MB": "0"}
    )
    served = create_app(engine, settings=settings, warm=False).state.served
    assert (served.snapshot_seconds, served.cache_size, served.search_cache_bytes) == (0.25, 10, 0)
    engine.dispose()


def test_the_subscription_settings_are_read_and_a_bad_one_is_a_sentence() -> None:
    settings = Settings.load(
        {
            "GRUNNDATA_SUBSCRIPTION_HTTP_HOSTS": " 127.0.0.1, LocalHost ,",
            "GRUNNDATA_SUBSCRIPTION_PRIVATE_ADDRESSES": "yes",
            "GRUNNDATA_SUBSCRIPTION_TICK_SECONDS": "0.2",
        }
    )
    assert settings.subscription_http_hosts == ("127.0.0.1", "localhost")
    assert settings.subscription_private_addresses is True
    assert settings.subscription_tick_seconds == 0.2
    assert Settings.load({}).subscription_http_hosts == ()
    with pytest.raises(SettingsError) as e:
        Settings.load({"GRUNNDATA_SUBSCRIPTION_LEASE_SECONDS": "0"})
    assert (
        str(e.value)
        == "GRUNNDATA_SUBSCRIPTION_LEASE_SECONDS must be a number of seconds from 0.5 to 600, not '0'"
    )
