"""A vendor downloads our FHIR package from the server the CapabilityStatement names it on."""

from __future__ import annotations

from fastapi.testclient import TestClient

from grunndata.fhirpackage import IMPLEMENTATION_GUIDE, build_tgz


def test_the_package_is_served_with_an_etag_and_named_in_the_capability_statement(api: TestClient) -> None:
    r = api.get("/fhir/package.tgz")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/gzip"
    assert r.content == build_tgz()
    etag = r.headers["etag"]
    again = api.get("/fhir/package.tgz", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert api.get("/fhir/metadata").json()["implementationGuide"] == [IMPLEMENTATION_GUIDE]
