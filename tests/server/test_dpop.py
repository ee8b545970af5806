"""DPoP-bound tokens (RFC 9449): a client with its own key reads sector data with a token bound to
that key and a fresh proof per request; every way a proof can be wrong, stolen or replayed is a
401 that says so, with the DPoP challenge."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.api_jws import PyJWS
from jwt.exceptions import DecodeError
from sqlalchemy.engine import Engine

from grunndata.server import create_app
from grunndata.server.auth import AuthError, AuthSettings, ProofRequest, thumbprint
from grunndata.server.auth.dpop import SeenProofs, _Segments, same_url
from grunndata.server.auth.errors import DPOP_ALGS
from grunndata.server.auth.keys import ALGORITHMS
from grunndata.settings import Settings, SettingsError
from grunndata.store import connect
from grunndata.store.releases import ReleaseBuilder
from grunndata.store.searchparams import index_rows
from tests.conftest import REAL_FEST, require
from tests.server.tokens import DpopKey, Issuer, ath

SECTOR_READ = "grunndata:sector.read"
OWNER = "sykehusapotek-vest"
NOTE = {
    "resourceType": "Basic",
    "id": "sector-note-1",
    "code": {"coding": [{"system": "https://grunndata.no/fhir/CodeSystem/tiered-data", "code": "note"}]},
    "extension": [
        {"url": "https://grunndata.no/fhir/StructureDefinition/note", "valueString": "store below 25 C"}
    ],
}
BASE = "http://testserver"
NOTE_URL = f"{BASE}/fhir/Basic/sector-note-1"


def _publish_note(engine: Engine) -> None:
    with ReleaseBuilder(engine, "sector", "full", "sector", OWNER, OWNER) as builder:
        body = orjson.dumps(NOTE)
        builder.put("Basic", NOTE["id"], body, hashlib.sha256(body).hexdigest(), fhir_index=index_rows(NOTE))
        builder.finish(None, {})


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return Issuer(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def key() -> DpopKey:
    return DpopKey()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = connect(f"sqlite:///{tmp_path_factory.mktemp('dpop') / 'store.db'}")
    _publish_note(engine)
    yield engine
    engine.dispose()


def _client(store: Engine, issuer: Issuer, **settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(store, issuer.authenticator(**settings))) as client:
        yield client


@pytest.fixture(scope="module")
def api(store: Engine, issuer: Issuer) -> Iterator[TestClient]:
    """The default: Bearer and DPoP both taken."""
    yield from _client(store, issuer)


@pytest.fixture(scope="module")
def strict(store: Engine, issuer: Issuer) -> Iterator[TestClient]:
    """GRUNNDATA_DPOP=required."""
    yield from _client(store, issuer, dpop="required")


def refused(answer: Any, error: str = "invalid_dpop_proof") -> str:
    """The 401's diagnostics, once its challenge is checked: DPoP, the error code, the algorithms."""
    assert answer.status_code == 401, answer.text
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith(f'DPoP realm="grunndata", error="{error}", error_description="'), challenge
    assert challenge.endswith(f'algs="{DPOP_ALGS}"')
    assert answer.json()["issue"][0]["code"] == "login"
    diagnostics: str = answer.json()["issue"][0]["diagnostics"]
    return diagnostics


# -- the thumbprint -------------------------------------------------------------------------------

RFC_7638_KEY = {  # RFC 7638, section 3.1
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


def test_the_thumbprint_is_rfc_7638s_example_value() -> None:
    assert thumbprint(RFC_7638_KEY) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_the_thumbprint_of_an_ec_key_hashes_its_four_members_in_order(key: DpopKey) -> None:
    members = {m: key.jwk[m] for m in ("crv", "kty", "x", "y")}
    text = f'{{"crv":"P-256","kty":"EC","x":"{members["x"]}","y":"{members["y"]}"}}'
    digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
    assert thumbprint({**key.jwk, "kid": "ignored", "use": "sig"}) == digest


def test_a_thumbprint_needs_the_required_members() -> None:
    with pytest.raises(ValueError, match="needs the members e, kty, n"):
        thumbprint({"kty": "RSA", "n": "abc"})
    with pytest.raises(ValueError, match="'oct'"):
        thumbprint({"kty": "oct", "k": "secret"})


def test_the_challenge_lists_the_algorithms_a_token_may_use() -> None:
    assert sorted(DPOP_ALGS.split()) == sorted(ALGORITHMS)


# -- a client with its own key ---------------------------------------------------------------------


def test_a_client_with_its_own_key_reads_sector_data_with_a_bound_token(
    api: TestClient, issuer: Issuer, key: DpopKey
) -> None:
    answer = api.get(
        "/fhir/Basic/sector-note-1", headers=issuer.dpop_headers(key, "GET", NOTE_URL, SECTOR_READ)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["extension"][0]["valueString"] == "store below 25 C"
    # a search (its query is not part of htu) and a POST, each with its own proof
    search = api.get(
        "/fhir/Basic?_id=sector-note-1",
        headers=issuer.dpop_headers(key, "GET", f"{BASE}/fhir/Basic", SECTOR_READ),
    )
    assert [e["resource"]["id"] for e in search.json()["entry"]] == ["sector-note-1"]
    posted = api.post(
        "/fhir/Basic/_search",
        data={"_id": "sector-note-1"},
        headers=issuer.dpop_headers(key, "POST", f"{BASE}/fhir/Basic/_search", SECTOR_READ),
    )
    assert [e["resource"]["id"] for e in posted.json()["entry"]] == ["sector-note-1"]


def test_without_the_scope_a_bound_token_does_not_read_sector_data(
    api: TestClient, issuer: Issuer, key: DpopKey
) -> None:
    answer = api.get("/fhir/Basic/sector-note-1", headers=issuer.dpop_headers(key, "GET", NOTE_URL))
    assert answer.status_code == 404


def test_one_token_many_proofs_the_token_verified_once_each_proof_every_time(
    api: TestClient, issuer: Issuer, key: DpopKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    decode = jwt.PyJWS._verify_signature

    def counting(self: Any, signing_input: bytes, header: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        checked.append(header.get("typ", ""))
        decode(self, signing_input, header, *args, **kwargs)

    monkeypatch.setattr(jwt.PyJWS, "_verify_signature", counting)
    token = issuer.token(SECTOR_READ, cnf={"jkt": key.jkt}, jti="not-seen-before")
    for _ in range(3):
        headers = {"Authorization": f"DPoP {token}", "DPoP": key.proof("GET", NOTE_URL, token)}
        assert api.get("/fhir/Basic/sector-note-1", headers=headers).status_code == 200
    assert checked == ["at+jwt", "dpop+jwt", "dpop+jwt", "dpop+jwt"]


def test_an_rsa_key_may_sign_proofs_too(api: TestClient, issuer: Issuer) -> None:
    for alg in ("RS256", "PS256"):
        rsa_key = DpopKey(alg)
        answer = api.get(
            "/fhir/Basic/sector-note-1", headers=issuer.dpop_headers(rsa_key, "GET", NOTE_URL, SECTOR_READ)
        )
        assert answer.status_code == 200, (alg, answer.text)


def test_the_url_compares_scheme_and_host_without_case_and_a_default_port_as_none(
    api: TestClient, issuer: Issuer, key: DpopKey
) -> None:
    for htu in (
        "HTTP://TestServer/fhir/Basic/sector-note-1",
        "http://testserver:80/fhir/Basic/sector-note-1#x",
    ):
        answer = api.get(
            "/fhir/Basic/sector-note-1", headers=issuer.dpop_headers(key, "GET", htu, SECTOR_READ)
        )
        assert answer.status_code == 200, (htu, answer.text)
    assert not same_url(
        "http://testserver/fhir/Basic/sector-note-1", "https://testserver/fhir/Basic/sector-note-1"
    )
    assert not same_url(
        "http://testserver/fhir/basic/sector-note-1", "http://testserver/fhir/Basic/sector-note-1"
    )
    assert not same_url("http://testserver:8080/fhir", "http://testserver/fhir")
    assert not same_url("ftp://testserver/fhir", "ftp://testserver/fhir")


def test_the_url_compares_escapes_as_rfc_3986_normalises_them(
    api: TestClient, issuer: Issuer, key: DpopKey
) -> None:
    # an escaped unreserved character is the character, in the proof and in the request alike
    for sent, htu in (
        ("/fhir/Basic/sector-note-1", "http://testserver/fhir/Basic/sector%2Dnote%2d1"),
        ("/fhir/Basic/sector%2Dnote-1", "http://testserver/fhir/Basic/sector-note-1"),
        ("/fhir/Basic/sector%2dnote-1", "http://testserver/fhir/Basic/sector%2Dnote-1"),
    ):
        answer = api.get(sent, headers=issuer.dpop_headers(key, "GET", htu, SECTOR_READ))
        assert answer.status_code == 200, (sent, htu, answer.text)
    assert same_url("http://h/fhir/a%7Eb", "http://h/fhir/a~b")
    assert same_url("http://h/fhir/%c3%a6", "http://h/fhir/%C3%A6")
    assert same_url("http://h/fhir/\u00e6", "http://h/fhir/%C3%A6")
    assert same_url("http://h", "http://h/")
    assert not same_url("http://h/fhir/a%2Fb", "http://h/fhir/a/b")  # "/" is reserved: not the same
    assert not same_url("http://h/fhir/a%20b", "http://h/fhir/a+b")


def test_a_url_with_user_information_names_no_request(api: TestClient, issuer: Issuer, key: DpopKey) -> None:
    htu = "http://someone@testserver/fhir/Basic/sector-note-1"
    answer = api.get("/fhir/Basic/sector-note-1", headers=issuer.dpop_headers(key, "GET", htu, SECTOR_READ))
    assert (
        refused(answer)
        == "the DPoP proof is for another URL (htu is not http://testserver/fhir/Basic/sector-note-1)"
    )
    assert not same_url("http://a:b@h/fhir", "http://h/fhir")


def test_behind_a_proxy_the_url_is_the_public_base_url(store: Engine, issuer: Issuer, key: DpopKey) -> None:
    for client in _client(store, issuer, public_url="https://grunndata.example.no"):
        public = "https://grunndata.example.no/fhir/Basic/sector-note-1"
        ok = client.get(
            "/fhir/Basic/sector-note-1", headers=issuer.dpop_headers(key, "GET", public, SECTOR_READ)
        )
        assert ok.status_code == 200, ok.text
        # the address the proxy used to reach us is not the one the client signed
        inner = client.get(
            "/fhir/Basic/sector-note-1", headers=issuer.dpop_headers(key, "GET", NOTE_URL, SECTOR_READ)
        )
        assert refused(inner) == f"the DPoP proof is for another URL (htu is not {public})"
        # and a forwarded header the client sends itself changes nothing
        forged = issuer.dpop_headers(key, "GET", NOTE_URL, SECTOR_READ)
        forged |= {"X-Forwarded-Host": "testserver", "X-Forwarded-Proto": "http"}
        assert client.get("/fhir/Basic/sector-note-1", headers=forged).status_code == 401


# -- refused, with what is wrong ---------------------------------------------------------------------


def test_a_replayed_proof_is_refused(api: TestClient, issuer: Issuer, key: DpopKey) -> None:
    headers = issuer.dpop_headers(key, "GET", NOTE_URL, SECTOR_READ)
    assert api.get("/fhir/Basic/sector-note-1", headers=headers).status_code == 200
    again = api.get("/fhir/Basic/sector-note-1", headers=headers)
    assert refused(again) == "the DPoP proof was used before (its jti was seen): make a new proof per request"


def test_a_replayed_jti_in_a_new_proof_is_refused(api: TestClient, issuer: Issuer, key: DpopKey) -> None:
    token = issuer.token(SECTOR_READ, cnf={"jkt": key.jkt})
    first = {"Authorization": f"DPoP {token}", "DPoP": key.proof("GET", NOTE_URL, token, jti="same-jti")}
    assert api.get("/fhir/Basic/sector-note-1", headers=first).status_code == 200
    search = f"{BASE}/fhir/Basic"
    second = {"Authorization": f"DPoP {token}", "DPoP": key.proof("GET", search, token, jti="same-jti")}
    assert "used before" in refused(api.get("/fhir/Basic", headers=second))


def _proof_case(issuer: Issuer, key: DpopKey, other: DpopKey, case: str) -> dict[str, str]:
    """The headers of a request for the sector note whose proof is wrong in one way."""
    token = issuer.token(SECTOR_READ, cnf={"jkt": key.jkt})
    now = int(time.time())
    proofs = {
        "wrong htu": lambda: key.proof("GET", f"{BASE}/fhir/Basic/other-note", token),
        "wrong host": lambda: key.proof("GET", "http://attacker.example/fhir/Basic/sector-note-1", token),
        "https for http": lambda: key.proof("GET", "https://testserver/fhir/Basic/sector-note-1", token),
        "wrong htm": lambda: key.proof("POST", NOTE_URL, token),
        "stale iat": lambda: key.proof("GET", NOTE_URL, token, iat=now - 61),
        "future iat": lambda: key.proof("GET", NOTE_URL, token, iat=now + 120),
        "missing ath": lambda: key.proof("GET", NOTE_URL, token, ath=None),
        "wrong ath": lambda: key.proof("GET", NOTE_URL, token, ath=ath(token + "x")),
        "another key": lambda: other.proof("GET", NOTE_URL, token),
        "no jti": lambda: key.proof("GET", NOTE_URL, token, jti=None),
        "no htu": lambda: key.proof("GET", NOTE_URL, token, htu=None),
        "jti not a string": lambda: key.proof("GET", NOTE_URL, token, jti=7),
        "iat a string": lambda: key.proof("GET", NOTE_URL, token, iat=str(now)),
        "typ JWT": lambda: key.proof("GET", NOTE_URL, token, header={"typ": "JWT"}),
        "another key in the header": lambda: key.proof("GET", NOTE_URL, token, header={"jwk": other.jwk}),
        "private key in the header": lambda: key.proof(
            "GET", NOTE_URL, token, header={"jwk": {**key.jwk, "d": "c2VjcmV0"}}
        ),
        "critical header": lambda: key.proof("GET", NOTE_URL, token, header={"crit": ["exp"], "exp": 1}),
        "HS256": lambda: jwt.encode(
            {"jti": "j", "htm": "GET", "htu": NOTE_URL, "iat": now, "ath": ath(token)},
            "secret",
            algorithm="HS256",
            headers={"typ": "dpop+jwt", "jwk": {"kty": "oct", "k": "c2VjcmV0"}},
        ),
        "ES384": lambda: _p384_proof(token, now),
    }
    return {"Authorization": f"DPoP {token}", "DPoP": proofs[case]()}


def _p384_proof(token: str, now: int) -> str:
    private = ec.generate_private_key(ec.SECP384R1())
    public = jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    claims = {"jti": "j384", "htm": "GET", "htu": NOTE_URL, "iat": now, "ath": ath(token)}
    return jwt.encode(claims, private, algorithm="ES384", headers={"typ": "dpop+jwt", "jwk": public})


PROOF_REFUSALS = {
    "wrong htu": f"the DPoP proof is for another URL (htu is not {NOTE_URL})",
    "wrong host": f"the DPoP proof is for another URL (htu is not {NOTE_URL})",
    "https for http": f"the DPoP proof is for another URL (htu is not {NOTE_URL})",
    "wrong htm": "the DPoP proof is for another method (htm is not GET)",
    "stale iat": "the DPoP proof is too old (iat more than 60 seconds ago)",
    "future iat": "the DPoP proof was made in the future (iat)",
    "missing ath": "the DPoP proof has no hash of the access token (ath)",
    "wrong ath": "the DPoP proof is for another access token (ath)",
    "another key": "the DPoP proof is signed by another key than the one the token is bound to (cnf.jkt)",
    "no jti": "the DPoP proof has no jti, which RFC 9449 requires",
    "no htu": "the DPoP proof has no htu, which RFC 9449 requires",
    "jti not a string": "the DPoP proof's jti must be a string of 1 to 256 characters",
    "iat a string": "the DPoP proof is malformed (its iat is not a time)",
    "typ JWT": "the DPoP proof's typ must be dpop+jwt",
    "another key in the header": "the DPoP proof's signature does not verify with its jwk",
    "private key in the header": "the DPoP proof's jwk holds a private key, which must never be sent",
    "critical header": "the DPoP proof has critical header parameters (crit) this service does not understand",
    "HS256": "the DPoP proof's alg must be one of RS256 PS256 ES256",
    "ES384": "the DPoP proof's alg must be one of RS256 PS256 ES256",
}


@pytest.mark.parametrize("case", list(PROOF_REFUSALS))
def test_a_wrong_proof_is_refused_with_what_is_wrong(
    api: TestClient, issuer: Issuer, key: DpopKey, case: str
) -> None:
    headers = _proof_case(issuer, key, DpopKey(), case)
    assert refused(api.get("/fhir/Basic/sector-note-1", headers=headers)) == PROOF_REFUSALS[case]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


DEEP = b"[" * 2500 + b"]" * 2500  # past Python's recursion limit, within 8 KB
DEEP_HEADER = _b64(b'{"typ":"dpop+jwt","x":' + DEEP + b"}")
DEEP_PAYLOAD = _b64(b'{"x":' + DEEP + b"}")
MALFORMED = {
    "not a JWT": ("not-a-proof", "the DPoP proof is malformed (a JWT has three parts separated by dots)"),
    "four parts": ("a.b.c.d", "the DPoP proof is malformed (a JWT has three parts separated by dots)"),
    "not base64url": ("!!!.???.***", "the DPoP proof is malformed (its header is not base64url JSON)"),
    "header not an object": (
        f"{_b64(b'[1]')}.e30.sig",
        "the DPoP proof is malformed (its header is not base64url JSON)",
    ),
    "deep header": (
        f"{DEEP_HEADER}.e30.sig",
        "the DPoP proof is malformed (its header is not base64url JSON)",
    ),
    "huge": ("a" * 9000 + ".b.c", "the DPoP proof is too long (more than 8192 characters)"),
    "jwk a string": (
        f"{_b64(json.dumps({'typ': 'dpop+jwt', 'alg': 'ES256', 'jwk': 'k'}).encode())}.e30.sig",
        "the DPoP proof has no public key (jwk) in its header",
    ),
    "jwk without members": (
        f"{_b64(json.dumps({'typ': 'dpop+jwt', 'alg': 'ES256', 'jwk': {'kty': 'EC'}}).encode())}.e30.sig",
        "the DPoP proof's jwk is not an RSA (2048 bits or more) or EC P-256 key for ES256",
    ),
    "EC jwk for RS256": (
        "{header}.e30.sig",
        "the DPoP proof's jwk is not an RSA (2048 bits or more) or EC P-256 key for RS256",
    ),
    "alg none": (
        f"{_b64(json.dumps({'typ': 'dpop+jwt', 'alg': 'none'}).encode())}.e30.",
        "the DPoP proof's alg must be one of RS256 PS256 ES256",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_proof_is_a_401_never_a_500(
    api: TestClient, issuer: Issuer, key: DpopKey, case: str
) -> None:
    proof, message = MALFORMED[case]
    header = json.dumps({"typ": "dpop+jwt", "alg": "RS256", "jwk": key.jwk}).encode()
    token = issuer.token(SECTOR_READ, cnf={"jkt": key.jkt})
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof.replace("{header}", _b64(header))}
    assert refused(api.get("/fhir/Basic/sector-note-1", headers=headers)) == message


def test_a_deep_payload_is_never_read_before_the_signature(
    api: TestClient, issuer: Issuer, key: DpopKey
) -> None:
    token = issuer.token(SECTOR_READ, cnf={"jkt": key.jkt})
    header = _b64(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk}).encode())
    forged = f"{header}.{DEEP_PAYLOAD}.{_b64(b'forged')}"
    headers = {"Authorization": f"DPoP {token}", "DPoP": forged}
    assert refused(api.get("/fhir/Basic/sector-note-1", headers=headers)) == (
        "the DPoP proof's signature does not verify with its jwk"
    )


def test_two_dpop_headers_or_none_are_refused(api: TestClient, issuer: Issuer, key: DpopKey) -> None:
    token = issuer.token(SECTOR_READ, cnf={"jkt": key.jkt})
    two = [
        ("Authorization", f"DPoP {token}"),
        ("DPoP", key.proof("GET", NOTE_URL, token)),
        ("DPoP", key.proof("GET", NOTE_URL, token)),
    ]
    assert (
        refused(api.get("/fhir/Basic/sector-note-1", headers=two))
        == "the request has more than one DPoP header"
    )
    none = {"Authorization": f"DPoP {token}"}
    assert (
        refused(api.get("/fhir/Basic/sector-note-1", headers=none))
        == "a DPoP token needs a DPoP header with a proof"
    )


def test_a_bound_token_sent_as_bearer_is_refused(api: TestClient, issuer: Issuer, key: DpopKey) -> None:
    token = issuer.token(SECTOR_READ, cnf={"jkt": key.jkt})
    for headers in (
        {"Authorization": f"Bearer {token}"},
        {"Authorization": f"Bearer {token}", "DPoP": key.proof("GET", NOTE_URL, token)},
    ):
        answer = api.get("/fhir/Basic/sector-note-1", headers=headers)
        assert refused(answer, "invalid_token") == (
            "the token is bound to a key (cnf.jkt): send it as Authorization: DPoP, with a DPoP proof"
        )


def test_an_unbound_token_sent_as_dpop_is_refused(api: TestClient, issuer: Issuer, key: DpopKey) -> None:
    token = issuer.token(SECTOR_READ)
    headers = {"Authorization": f"DPoP {token}", "DPoP": key.proof("GET", NOTE_URL, token)}
    assert refused(api.get("/fhir/Basic/sector-note-1", headers=headers), "invalid_token") == (
        "the token is not bound to a key (no cnf.jkt), so it is not a DPoP token"
    )


def test_a_token_bound_to_a_certificate_is_refused(api: TestClient, issuer: Issuer) -> None:
    token = issuer.token(SECTOR_READ, cnf={"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"})
    answer = api.get("/fhir/Basic/sector-note-1", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert answer.json()["issue"][0]["diagnostics"] == (
        "the token is bound (cnf) but not to a key thumbprint (jkt), which is all this service checks"
    )


def test_a_bad_access_token_keeps_the_bearer_challenge(api: TestClient, issuer: Issuer) -> None:
    answer = api.get("/fhir/Basic/sector-note-1", headers={"Authorization": "Bearer not-a-token"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith('Bearer realm="grunndata", error="invalid_token"')
    assert "algs=" not in answer.headers["www-authenticate"]


# -- the setting ------------------------------------------------------------------------------------


def test_dpop_required_refuses_bearer_tokens_and_takes_bound_ones(
    strict: TestClient, issuer: Issuer, key: DpopKey
) -> None:
    bearer = strict.get("/fhir/Basic/sector-note-1", headers=issuer.headers(SECTOR_READ))
    assert refused(bearer, "invalid_token") == (
        "this service takes DPoP-bound tokens only (GRUNNDATA_DPOP=required): ask for a DPoP token"
    )
    bound = strict.get(
        "/fhir/Basic/sector-note-1", headers=issuer.dpop_headers(key, "GET", NOTE_URL, SECTOR_READ)
    )
    assert bound.status_code == 200, bound.text
    # national data stays open without a token
    assert strict.get("/fhir/Basic/sector-note-1").status_code == 404
    assert strict.get("/fhir/metadata").status_code == 200


def test_dpop_required_covers_imports(store: Engine, issuer: Issuer, key: DpopKey, tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    for client in _client(engine, issuer, dpop="required"):
        fest = require(REAL_FEST).read_bytes()
        bearer = client.post("/import/fest", content=fest, headers=issuer.headers("grunndata:import"))
        assert "DPoP-bound tokens only" in refused(bearer, "invalid_token")
        headers = issuer.dpop_headers(key, "POST", f"{BASE}/import/fest", "grunndata:import")
        answer = client.post("/import/fest", content=fest, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outcome"] == "activated"
    engine.dispose()


def test_dpop_off_refuses_the_dpop_scheme(store: Engine, issuer: Issuer, key: DpopKey) -> None:
    for client in _client(store, issuer, dpop="off"):
        answer = client.get(
            "/fhir/Basic/sector-note-1", headers=issuer.dpop_headers(key, "GET", NOTE_URL, SECTOR_READ)
        )
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith(
            'Bearer realm="grunndata", error="invalid_token"'
        )
        assert (
            answer.json()["issue"][0]["diagnostics"]
            == "this service does not take DPoP tokens (GRUNNDATA_DPOP=off)"
        )
        assert client.get("/fhir/Basic/sector-note-1", headers=issuer.headers(SECTOR_READ)).status_code == 200


def test_the_settings_are_read_and_checked() -> None:
    settings = Settings.load({"GRUNNDATA_DPOP": " Required ", "GRUNNDATA_DPOP_MAX_AGE": "30"})
    assert (settings.dpop, settings.dpop_max_age) == ("required", 30)
    assert Settings.load({}).dpop == "allowed"
    with pytest.raises(SettingsError, match="GRUNNDATA_DPOP must be off, allowed or required, not 'maybe'"):
        Settings.load({"GRUNNDATA_DPOP": "maybe"})
    with pytest.raises(
        SettingsError, match="GRUNNDATA_DPOP_MAX_AGE must be a whole number of seconds from 1 to 300"
    ):
        Settings.load({"GRUNNDATA_DPOP_MAX_AGE": "301"})
    auth = AuthSettings.from_settings(
        Settings.load({"GRUNNDATA_DPOP": "off", "GRUNNDATA_BASE_URL": "https://x.no/"})
    )
    assert (auth.dpop, auth.public_url) == ("off", "https://x.no")


def test_the_max_age_is_the_configured_one(store: Engine, issuer: Issuer, key: DpopKey) -> None:
    token = issuer.token(SECTOR_READ, cnf={"jkt": key.jkt})
    for client in _client(store, issuer, dpop_max_age=10):
        old = {
            "Authorization": f"DPoP {token}",
            "DPoP": key.proof("GET", NOTE_URL, token, iat=int(time.time()) - 12),
        }
        assert refused(client.get("/fhir/Basic/sector-note-1", headers=old)) == (
            "the DPoP proof is too old (iat more than 10 seconds ago)"
        )


# -- the seen proofs ---------------------------------------------------------------------------------


def test_a_proof_id_is_remembered_for_the_window_and_then_forgotten() -> None:
    seen = SeenProofs(ttl=120, size=3)
    assert seen.first_use("a", 1000.0) and not seen.first_use("a", 1119.0)
    assert seen.first_use("a", 1120.0)  # a proof this old is refused as stale anyway
    assert seen.first_use("b", 1121.0) and seen.first_use("c", 1122.0)
    with pytest.raises(AuthError) as full:  # never forget an id early: refuse instead
        seen.first_use("d", 1123.0)
    assert full.value.status == 503
    assert seen.first_use("d", 1240.0)  # "a" has gone, room again


def test_the_window_covers_the_clock_skew(issuer: Issuer, key: DpopKey) -> None:
    """A proof dated the skew ahead is fresh until max_age after its iat: its id is kept that long."""
    auth = issuer.authenticator(dpop_max_age=60, clock_skew=30)
    assert auth._seen._ttl == 90
    token = issuer.token(SECTOR_READ, cnf={"jkt": key.jkt})
    proof = key.proof("GET", NOTE_URL, token)
    request = ProofRequest("GET", NOTE_URL, (proof,))
    auth.access(f"DPoP {token}", request)
    with pytest.raises(AuthError, match="used before"):
        auth.access(f"DPoP {token}", request)


def test_a_clients_proof_header_is_read_once_and_the_kept_ones_are_bounded(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grunndata.server.auth import dpop

    monkeypatch.setattr(dpop, "_KEYS", {})
    monkeypatch.setattr(dpop, "KNOWN_HEADERS", 2)
    auth = issuer.authenticator()
    clients = [DpopKey() for _ in range(3)]
    for client in clients + clients[-1:]:
        token = issuer.token(SECTOR_READ, cnf={"jkt": client.jkt})
        proof = client.proof("GET", NOTE_URL, token)
        assert auth.access(f"DPoP {token}", ProofRequest("GET", NOTE_URL, (proof,))).sector
    kept = {jkt for _, _, jkt in dpop._KEYS.values()}
    assert kept == {clients[1].jkt, clients[2].jkt}  # the first client's went first
    # a header that fails is not kept: asking again says the same
    token = issuer.token(SECTOR_READ, cnf={"jkt": clients[0].jkt})
    bad = clients[0].proof("GET", NOTE_URL, token, header={"typ": "JWT"})
    for _ in range(2):
        with pytest.raises(AuthError, match="typ must be dpop"):
            auth.access(f"DPoP {token}", ProofRequest("GET", NOTE_URL, (bad,)))
    assert len(dpop._KEYS) == 2


def test_a_head_request_is_proved_as_head_not_as_the_get_it_is_answered_as(
    api: TestClient, issuer: Issuer, key: DpopKey
) -> None:
    # HEAD is served as GET without the body (server/conventions.py); the proof names what was sent
    head = api.head(
        "/fhir/Basic/sector-note-1", headers=issuer.dpop_headers(key, "HEAD", NOTE_URL, SECTOR_READ)
    )
    assert (head.status_code, head.content) == (200, b"")
    as_get = api.head(
        "/fhir/Basic/sector-note-1", headers=issuer.dpop_headers(key, "GET", NOTE_URL, SECTOR_READ)
    )
    assert as_get.status_code == 401
    assert as_get.headers["www-authenticate"].startswith(
        'DPoP realm="grunndata", error="invalid_dpop_proof", '
        'error_description="the DPoP proof is for another method (htm is not HEAD)"'
    )


def test_two_authorization_headers_are_refused_whichever_comes_first(api: TestClient, issuer: Issuer) -> None:
    # a proxy that reads the last one and a server that reads the first would disagree about who asks
    good, bad = f"Bearer {issuer.token(SECTOR_READ)}", "Bearer not-a-token"
    for first, second in ((good, bad), (bad, good), (good, good)):
        answer = api.get(
            "/fhir/Basic/sector-note-1", headers=[("Authorization", first), ("Authorization", second)]
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["issue"][0]["diagnostics"] == "more than one Authorization header"
        assert "store below" not in answer.text


# each part of a proof is read by our PyJWS (an alphabet check by regular expression instead of
# PyJWT's loop per character): the same parts must pass and fail, with the same bytes out
SEGMENT_CHARS = "ABCXYZabcxyz0189-_=+/!. \u00e6"


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=SEGMENT_CHARS, max_size=14))
def test_our_base64url_check_takes_and_refuses_exactly_what_pyjwts_does(text: str) -> None:
    segment = text.encode()
    outcomes = []
    for decode in (PyJWS._decode_base64url_segment, _Segments._decode_base64url_segment):
        try:
            outcomes.append(decode(segment, "payload"))
        except DecodeError as error:
            outcomes.append(str(error))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize(
    ("segment", "decoded"),
    [(b"e30", b"{}"), (b"e30=", b"{}"), (b"", b""), (b"YQ==", b"a"), (b"-_8", b"\xfb\xff")],
)
def test_our_base64url_check_reads_canonical_parts(segment: bytes, decoded: bytes) -> None:
    assert _Segments._decode_base64url_segment(segment, "payload") == decoded


@pytest.mark.parametrize("segment", [b"e30==", b"e3", b"e31", b"e3+", b"e3/0", b"YQ===", b"Y", b"e30\n"])
def test_our_base64url_check_refuses_what_is_not_base64url(segment: bytes) -> None:
    with pytest.raises(DecodeError, match="Invalid payload padding"):
        _Segments._decode_base64url_segment(segment, "payload")


def test_a_proof_in_standard_base64_is_refused(api: TestClient, issuer: Issuer, key: DpopKey) -> None:
    token = issuer.token(SECTOR_READ, cnf={"jkt": key.jkt})
    header, payload, signature = key.proof("GET", NOTE_URL, token).split(".")
    for proof, message in (
        (
            f"{header}.{payload}.{signature.replace('-', '+').replace('_', '/')}+",
            "the DPoP proof's signature does not verify with its jwk",
        ),
        (f"{header}.{payload}+.{signature}", "the DPoP proof is malformed"),
    ):
        headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
        assert refused(api.get("/fhir/Basic/sector-note-1", headers=headers)) == message
