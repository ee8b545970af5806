"""The OpenAPI document tells the truth: schemathesis with every check (`--checks all`) against the
live server, without a token and with one, on SQLite and PostgreSQL, finds nothing.

Where a check asks for what FHIR itself rules otherwise, the exception is written below with its
place in the FHIR R5 specification, scoped to the operations it concerns; no check is turned off.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from schemathesis.config._checks import POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES

from grunndata.server import create_app
from tests.conftest import fresh_pg_database
from tests.server.conftest import served_store
from tests.server.live import running
from tests.server.tokens import Issuer

DEFAULTS = {"positive_data_acceptance": POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES}  # schemathesis's
MAX_EXAMPLES = 5  # per operation and phase; SCHEMATHESIS_EXAMPLES=50 for a longer run
SEARCH = r"^/fhir(-r4)?/([A-Z][A-Za-z]+|\{rtype\})(/_search)?$"  # R5's and the R4 view's
TERMINOLOGY = r"\$(translate|lookup|validate-code|expand)$"


@dataclass(frozen=True)
class Allowance:
    """A check told to expect more statuses on some operations, and why (FHIR's place for it)."""

    check: str
    statuses: tuple[str, ...]
    paths: str  # a regular expression over the operations' paths
    why: str


EXCEPTIONS = [
    Allowance(
        "positive_data_acceptance",
        ("406",),
        r"^/fhir(-r4)?/(?!package\.tgz$)",
        "Accept is content negotiation: any list of media ranges (RFC 9110 12.5.1), so every string "
        "is a valid request; when it names no format served and no _format overrides it (_format "
        "wins over Accept, http.html#parameters), FHIR's answer is 406 (http.html#mime-type).",
    ),
    Allowance(
        "positive_data_acceptance",
        ("400", "410"),
        SEARCH,
        "A FHIR search value has a grammar per parameter type (search.html#ptypes: a token is "
        "[system]|[code], a reference [type]/[id], ...) and an escaping (search.html#escaping) that a "
        "JSON Schema string cannot spell out; search.html#errors lists a parameter whose content is "
        "not valid among the errors a server answers with a 4xx status and an OperationOutcome. "
        "_snapshot comes from a paging link, and paging links are the server's to expire "
        "(http.html#paging): a page of releases no longer kept is 410, as the document says.",
    ),
    Allowance(
        "positive_data_acceptance",
        ("400",),
        r"(/_history|/delta(/.*)?)$",
        "A history's _snapshot comes from its paging links, which are the server's (http.html#paging): "
        "it names the newest release the first page saw, so one naming a release not yet served is "
        "no link of ours and is refused (the page would change under it when that release came).",
    ),
    Allowance(
        "positive_data_acceptance",
        ("400",),
        TERMINOLOGY,
        "An operation's inputs come in combinations its OperationDefinition fixes in its comments "
        "(conceptmap-operation-translate.html: one source concept, or one target; "
        "codesystem-operation-lookup.html: a code with a system, or a coding); each input alone is "
        "valid to the schema, a combination the operation refuses is a 400 (operations.html).",
    ),
    Allowance(
        "positive_data_acceptance",
        ("400",),
        r"^/fhir(/\{rtype\})?/\$export$",
        "Bulk Data's POST kick-off takes a Parameters resource whose parameters each need one value "
        "of the kind the parameter takes (`_since` an instant, once; `_type` a type served here): "
        "a Parameters schema cannot tie a value's kind to a name (operations.html), so such a body "
        "is a 400 with a sentence (export.html#bulk-data-kick-off-request). A path holds both "
        "methods: the GET's query is documented exactly as before.",
    ),
    Allowance(
        "positive_data_acceptance",
        ("400",),
        r"^/fest/m30$",
        "since names a delivery by its HentetDato: whether this server had that delivery is a fact "
        "of the data, which no schema can list; another is refused with a sentence, 400 (README, "
        "M30 export). Not FHIR: M30 is DMP's format.",
    ),
]


def config_toml(paths: list[str]) -> str:
    """schemathesis's configuration: one [[operations]] entry per group of `paths` the exceptions
    treat alike (entries must not overlap), each check's statuses its defaults and the exceptions'."""
    groups: dict[tuple[tuple[str, tuple[str, ...]], ...], list[str]] = {}
    for path in paths:
        extra: dict[str, set[str]] = {}
        for e in EXCEPTIONS:
            if re.search(e.paths, path):
                extra.setdefault(e.check, set()).update(e.statuses)
        if extra:
            groups.setdefault(tuple(sorted((c, tuple(sorted(s))) for c, s in extra.items())), []).append(path)
    lines = ["[phases.stateful]", "enabled = false  # nothing here is created, so nothing to chain", ""]
    for checks, members in groups.items():
        lines += ["[[operations]]", f"include-path = {members!r}"]
        for check, statuses in checks:
            lines.append(f"checks.{check}.expected-statuses = {DEFAULTS[check] + list(statuses)!r}")
        lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True)
class Site:
    url: str
    issuer: Issuer
    store: str


SLOW = os.environ.get("GRUNNDATA_SLOW") == "1"
IN_CI = {("sqlite", False), ("postgres", True)}
"""A run takes 70 to 100 s: CI runs each store once and each token state once; GRUNNDATA_SLOW=1 all four."""


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The server over the real extract, checking tokens against a test JWKS."""
    folder = tmp_path_factory.mktemp("openapi")
    issuer = Issuer(folder)

    def serve(url: str) -> Iterator[Site]:
        engine = served_store(url)
        try:
            with running(create_app(engine, auth=issuer.authenticator(), warm=False)) as base:
                yield Site(base, issuer, request.param)
        finally:
            engine.dispose()

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{folder / 'store.db'}")
        return
    with fresh_pg_database() as url:
        yield from serve(url)


def run_schemathesis(
    site: Site, folder: Path, token: str | None, examples: int
) -> subprocess.CompletedProcess[str]:
    config = folder / "schemathesis.toml"
    config.write_text(config_toml(list(httpx.get(site.url + "/openapi.json").json()["paths"])))
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
        "run", site.url + "/openapi.json",
        "--checks", "all",
        "--max-examples", str(examples),
        "--generation-deterministic",
        "--suppress-health-check", "all",
        "--workers", "1",
    ]  # fmt: skip
    if token is not None:
        command += ["--header", f"Authorization: Bearer {token}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=folder)


@pytest.mark.parametrize("with_token", [False, True], ids=["no token", "token"])
def test_every_check_of_schemathesis_passes(site: Site, with_token: bool, tmp_path: Path) -> None:
    """Every status, media type and parameter a route uses is in the document, and nothing else."""
    if not SLOW and (site.store, with_token) not in IN_CI:
        pytest.skip(
            "the other two of the four runs are GRUNNDATA_SLOW=1's (each store and token state runs once in CI)"
        )
    scopes = ("grunndata:sector.read", "grunndata:supplementary.read:*")  # every tier, no import
    token = site.issuer.token(*scopes, expires_in=3600) if with_token else None
    started = time.monotonic()
    done = run_schemathesis(site, tmp_path, token, int(os.environ.get("SCHEMATHESIS_EXAMPLES", MAX_EXAMPLES)))
    # what failed (the operation, the status, a curl line to repeat it), then the summary
    failures = done.stdout.partition("= FAILURES =")[2].partition("= SUMMARY =")[0][:8000]
    summary = done.stdout[-3000:]
    print(f"schemathesis took {time.monotonic() - started:.0f} s\n{summary}")
    assert done.returncode == 0, failures + summary + done.stderr[-2000:]


def test_operation_ids_are_unique_and_errors_are_described_once(site: Site) -> None:
    doc = httpx.get(site.url + "/openapi.json").json()
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    read = doc["paths"]["/fhir/PackagedProductDefinition/{rid}"]["get"]["responses"]
    assert read["404"] == {"$ref": "#/components/responses/NotFound"}
    assert read["406"] == {"$ref": "#/components/responses/NotAcceptable"}
    assert set(read["200"]["content"]) == {"application/fhir+json", "application/fhir+xml"}
    assert "HTTPValidationError" not in str(doc)
    m30 = doc["paths"]["/fest/m30"]["get"]["responses"]
    assert sorted(m30) == ["200", "304", "400", "401", "500", "503"]
