"""The CapabilityStatement says how to get in (rest.security: OAuth via HelseID, the scopes) and
what conditional reads do, and both claims hold."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources import get_fhir_model_class

from grunndata.server import create_app
from tests.server.conftest import CERTICAN_PACKAGE, served_store
from tests.server.tokens import ISSUER, Issuer

OAUTH = {"system": "http://hl7.org/fhir/restful-security-service", "code": "OAuth", "display": "OAuth"}


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return Issuer(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, issuer: Issuer) -> Iterator[TestClient]:
    engine = served_store(f"sqlite:///{tmp_path_factory.mktemp('cs') / 'store.db'}")
    with TestClient(create_app(engine, issuer.authenticator(), warm=False)) as client:
        yield client
    engine.dispose()


def _rest(client: TestClient) -> dict[str, Any]:
    answer = client.get("/fhir/metadata")
    assert answer.status_code == 200
    get_fhir_model_class("CapabilityStatement").model_validate(answer.json())  # still valid R5
    rest: dict[str, Any] = answer.json()["rest"][0]
    return rest


def test_security_names_the_token_service_and_the_scopes(secured: TestClient) -> None:
    security = _rest(secured)["security"]
    assert security["service"] == [{"coding": [OAUTH], "text": "OAuth 2.0 bearer tokens (HelseID)"}]
    assert security["cors"] is True  # GRUNNDATA_CORS_ORIGINS defaults to any origin
    text = security["description"]
    assert (
        f"token service {ISSUER} (its endpoints: {ISSUER.rstrip('/')}/.well-known/openid-configuration)"
        in text
    )
    for scope in (
        "grunndata:sector.read",
        "grunndata:supplementary.read:<owner>",
        "grunndata:supplementary.read:*",
    ):
        assert f"`{scope}`" in text


def test_without_a_token_issuer_it_says_national_data_only(api: TestClient) -> None:
    security = _rest(api)["security"]
    assert security["description"].endswith("so it accepts no token and serves national data only.")


def test_conditional_read_is_full_support_and_both_headers_give_304(secured: TestClient) -> None:
    stored = [r for r in _rest(secured)["resource"] if "vread" in {i["code"] for i in r["interaction"]}]
    assert stored and {r["conditionalRead"] for r in stored} == {"full-support"}
    path = f"/fhir/PackagedProductDefinition/{CERTICAN_PACKAGE}"
    first = secured.get(path)
    by_etag = secured.get(path, headers={"If-None-Match": first.headers["etag"]})
    by_date = secured.get(path, headers={"If-Modified-Since": first.headers["last-modified"]})
    assert (by_etag.status_code, by_date.status_code) == (304, 304)
