"""Imports over the API: the import scope, the same rules and the same report as the CLI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.server import create_app
from grunndata.store.releases import list_releases
from tests.conftest import REAL_FEST, REAL_HENTET_DATO, require
from tests.server.conftest import CERTICAN_PACKAGE
from tests.server.tokens import Issuer

CSV = "varenr;merknad\n014884;Oppbevares i kjøleskap\n".encode()
UNKNOWN_VARENR_CSV = b"varenr;merknad\n999999;finnes ikke\n"


@pytest.fixture
def server(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Issuer, Engine]]:
    issuer = Issuer(tmp_path_factory.mktemp("keys"))
    with TestClient(create_app(engine, issuer.authenticator())) as client:
        yield client, issuer, engine


def test_dmp_imports_a_fest_delivery_over_the_api_and_gets_the_cli_report(
    server: tuple[TestClient, Issuer, Engine],
) -> None:
    client, issuer, engine = server
    answer = client.post(
        "/import/fest", content=require(REAL_FEST).read_bytes(), headers=issuer.headers("grunndata:import")
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["outcome"] == "activated"
    assert body["report"]["hentet_dato"] == REAL_HENTET_DATO
    assert body["report"]["catalogues"]["Legemiddelpakning"]["new"] == 107
    assert client.get(f"/fhir/PackagedProductDefinition/{CERTICAN_PACKAGE}").status_code == 200
    again = client.post(
        "/import/fest", content=REAL_FEST.read_bytes(), headers=issuer.headers("grunndata:import")
    )
    assert again.json()["outcome"] == "unchanged" and again.json()["release_id"] is None
    assert [r.status for r in list_releases(engine)] == ["active"]


def test_a_vendor_imports_its_own_supplementary_csv_and_no_one_elses(
    server: tuple[TestClient, Issuer, Engine],
) -> None:
    client, issuer, _ = server
    client.post(
        "/import/fest", content=require(REAL_FEST).read_bytes(), headers=issuer.headers("grunndata:import")
    )
    own = issuer.headers("grunndata:import:supplementary:vendor-a")
    answer = client.post("/import/supplementary?owner=vendor-a&filename=notes.csv", content=CSV, headers=own)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "activated"
    assert answer.json()["report"]["resources"]["Basic"]["new"] == 1
    others = client.post("/import/supplementary?owner=vendor-b&filename=notes.csv", content=CSV, headers=own)
    assert others.status_code == 403
    assert (
        others.json()["issue"][0]["diagnostics"]
        == "this needs the scope grunndata:import:supplementary:vendor-b"
    )
    other_tier = client.post("/import/sector?owner=vendor-a&filename=notes.csv", content=CSV, headers=own)
    assert other_tier.status_code == 403  # its supplementary scope does not reach the sector tier
    assert (
        other_tier.json()["issue"][0]["diagnostics"]
        == "this needs the scope grunndata:import:sector:vendor-a"
    )
    national = client.post("/import/fest", content=REAL_FEST.read_bytes(), headers=own)
    assert national.status_code == 403
    assert national.json()["issue"][0]["diagnostics"] == "this needs the scope grunndata:import"
    # served to vendor A's readers, not to others
    search = f"/fhir/Basic?subject=PackagedProductDefinition/{CERTICAN_PACKAGE}&_tag=supplementary"
    seen = client.get(search, headers=issuer.headers("grunndata:supplementary.read:vendor-a")).json()
    assert [e["resource"]["meta"]["source"] for e in seen["entry"]] == ["https://grunndata.no/owner/vendor-a"]
    assert (
        client.get(search, headers=issuer.headers("grunndata:supplementary.read:vendor-b"))
        .json()
        .get("entry")
        is None
    )


def test_without_a_token_an_import_is_401_and_nothing_is_written(
    server: tuple[TestClient, Issuer, Engine],
) -> None:
    client, _, engine = server
    answer = client.post("/import/fest", content=require(REAL_FEST).read_bytes())
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="grunndata"'
    assert (
        answer.json()["issue"][0]["diagnostics"]
        == "this needs a bearer token with the scope grunndata:import"
    )
    assert list_releases(engine) == []


def test_a_refused_delivery_is_422_with_each_problem_and_the_active_release_stays(
    server: tuple[TestClient, Issuer, Engine],
) -> None:
    client, issuer, engine = server
    client.post(
        "/import/fest", content=require(REAL_FEST).read_bytes(), headers=issuer.headers("grunndata:import")
    )
    headers = issuer.headers("grunndata:import:supplementary:vendor-a")
    client.post("/import/supplementary?owner=vendor-a&filename=a.csv", content=CSV, headers=headers)
    refused = client.post(
        "/import/supplementary?owner=vendor-a&filename=a.csv", content=UNKNOWN_VARENR_CSV, headers=headers
    )
    assert refused.status_code == 422
    issues = [i["diagnostics"] for i in refused.json()["issue"]]
    assert issues[0].startswith("refused, nothing was imported:")
    assert len(issues) == 2 and "999999" in issues[1]
    statuses = [(r.tier, r.owner_id, r.status) for r in list_releases(engine)]
    assert statuses == [
        ("national", "dmp", "active"),
        ("supplementary", "vendor-a", "active"),
        ("supplementary", "vendor-a", "failed"),
    ]


@pytest.mark.parametrize(
    "path,body,headers,status,diagnostics",
    [
        ("/import/fest", b"", {}, 400, "the request has no body: send the delivery as the body"),
        (
            "/import/prices",
            b"x",
            {},
            404,
            "there is no import of 'prices': fest, safest, sector or supplementary",
        ),
        ("/import/sector", b"x", {}, 400, "a sector import needs ?owner=ORG, the data owner's id"),
        ("/import/fest?owner=vendor-a", b"x", {}, 400, "fest data is DMP's national data; it takes no owner"),
    ],
)
def test_malformed_import_requests(
    server: tuple[TestClient, Issuer, Engine],
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    diagnostics: str,
) -> None:
    client, issuer, _ = server
    answer = client.post(path, content=body, headers={**issuer.headers("grunndata:import"), **headers})
    assert answer.status_code == status, answer.text
    assert answer.json()["issue"][0]["diagnostics"] == diagnostics


def test_sector_data_without_a_format_is_415(server: tuple[TestClient, Issuer, Engine]) -> None:
    client, issuer, _ = server
    answer = client.post(
        "/import/sector?owner=hospital", content=b"{}", headers=issuer.headers("grunndata:import")
    )
    assert answer.status_code == 415


def test_a_token_without_the_scope_is_403_even_without_a_subject(
    server: tuple[TestClient, Issuer, Engine],
) -> None:
    client, issuer, _ = server
    token = issuer.token("grunndata:sector.read", sub="")
    answer = client.post("/import/fest", content=b"x", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403


def test_a_file_name_cannot_leave_the_upload_folder(server: tuple[TestClient, Issuer, Engine]) -> None:
    client, issuer, _ = server
    client.post(
        "/import/fest", content=require(REAL_FEST).read_bytes(), headers=issuer.headers("grunndata:import")
    )
    headers = issuer.headers("grunndata:import:supplementary:vendor-a", **{})
    for name in ("..", "../../etc/passwd.csv"):
        answer = client.post(
            f"/import/supplementary?owner=vendor-a&filename={name}", content=CSV, headers=headers
        )
        assert answer.status_code in (200, 415, 422), answer.text


@pytest.mark.parametrize(
    ("source", "name", "body", "diagnostics"),
    [
        (
            "safest",
            "idmp.ndjson",
            b'{"resourceType": "MedicinalProductDefinition", "id": "a", "name": [{"productName": "\\ud800"}]}\n',
            "idmp.ndjson line 1: MedicinalProductDefinition.name[0].productName holds U+D800 (half of a UTF-16 "
            "surrogate pair, alone), which no FHIR string or XML document can hold",
        ),
        (
            "supplementary?owner=vendor-a",
            "notes.csv",
            b"varenr;merknad\n014884;A\x00B\n",
            "refused, nothing was imported: notes.csv line 2: the column merknad holds U+0000 (a control "
            "character), which no FHIR string or XML document can hold",
        ),
    ],
)
def test_text_no_fhir_string_or_xml_can_hold_is_422_with_its_place(
    server: tuple[TestClient, Issuer, Engine], source: str, name: str, body: bytes, diagnostics: str
) -> None:
    client, issuer, engine = server
    joiner = "&" if "?" in source else "?"
    answer = client.post(
        f"/import/{source}{joiner}filename={name}", content=body, headers=issuer.headers("grunndata:import")
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["issue"][0]["diagnostics"] == diagnostics
    # SAFEST is refused as it is read; a CSV row's problem is recorded with the refused release
    assert [r.status for r in list_releases(engine)] == ([] if source == "safest" else ["failed"])
