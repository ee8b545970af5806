"""The catalogue as FHIR R5 Endpoint and Organization resources (valid for fhir.resources) and as JSON."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from fhir.resources.endpoint import Endpoint
from fhir.resources.organization import Organization

from grunndata.catalog import (
    Availability,
    Service,
    catalogue_json,
    endpoint_resource,
    endpoint_status,
    organization_resource,
    organization_resources,
)
from tests.catalog.test_files import DMP, FEST_WEBSERVICE, SAFEST, VENDOR_FEED
from tests.catalog.test_ours import CATALOG, CODE_SYSTEMS, FHIR, M30, TRANSLATE

EXT = "https://grunndata.no/fhir/StructureDefinition/catalog-"
TIER = "https://grunndata.no/fhir/CodeSystem/tier"
CHECKED = datetime(2026, 11, 20, 8, 30, 0, 123000, tzinfo=UTC)
UP = Availability("dmp-safest-fhir", 4, 3, CHECKED, True, 41.26, "ok")
DOWN = Availability("dmp-safest-fhir", 4, 3, CHECKED, False, None, "timed out after 5 s")
NEVER = Availability("dmp-safest-fhir", 0, 0, None, None, None, None)
EVERY = [FHIR, M30, TRANSLATE, CODE_SYSTEMS, CATALOG, SAFEST, FEST_WEBSERVICE, VENDOR_FEED]


def test_dmps_fhir_service_as_an_endpoint_with_what_probing_measured() -> None:
    endpoint = endpoint_resource(SAFEST, UP)
    assert endpoint == {
        "resourceType": "Endpoint",
        "id": "dmp-safest-fhir",
        "meta": {"source": "https://grunndata.no/owner/dmp", "tag": [{"system": TIER, "code": "national"}]},
        "extension": [
            {"url": EXT + "tier", "valueCode": "national"},
            {"url": EXT + "status", "valueCode": "active"},
            {"url": "http://hl7.org/fhir/StructureDefinition/endpoint-fhir-version", "valueCode": "4.0.1"},
            {"url": EXT + "licence", "valueString": "NLOD 2.0"},
            {"url": EXT + "cadence", "valueString": "twice a month, in step with FEST"},
            {"url": EXT + "operation", "valueCode": "read"},
            {"url": EXT + "operation", "valueCode": "search-type"},
            {"url": EXT + "operation", "valueCode": "history"},
            {
                "url": EXT + "code-system",
                "valueUri": "https://mpd.noma.no/codesystem/pharmaceutical-dose-form",
            },
            {
                "url": EXT + "availability",
                "extension": [
                    {"url": "state", "valueCode": "up"},
                    {"url": "checks", "valueInteger": 4},
                    {"url": "up", "valueInteger": 3},
                    {"url": "share", "valueDecimal": 0.75},
                    {"url": "lastChecked", "valueInstant": "2026-11-20T08:30:00.123Z"},
                    {"url": "lastLatencyMs", "valueDecimal": 41.3},
                    {"url": "lastMessage", "valueString": "ok"},
                ],
            },
        ],
        "status": "active",
        "connectionType": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                        "code": "hl7-fhir-rest",
                        "display": "HL7 FHIR",
                    },
                    {"system": "https://grunndata.no/fhir/CodeSystem/catalog-interface", "code": "fhir-r4"},
                ]
            }
        ],
        "name": "SAFEST FHIR API",
        "environmentType": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/endpoint-environment", "code": "prod"}
                ]
            }
        ],
        "managingOrganization": {"reference": "Organization/dmp", "display": DMP},
        "payload": [
            {
                "type": [
                    {
                        "coding": [{"system": "http://hl7.org/fhir/resource-types", "code": rtype}],
                        "text": rtype,
                    }
                ],
                "mimeType": ["application/fhir+json"],
            }
            for rtype in (
                "MedicinalProduct",
                "MedicinalProductPackaged",
                "MedicinalProductManufactured",
                "CodeSystem",
            )
        ],
        "address": "https://api.legemiddelverket.no/fhir-r4",
        "description": SAFEST.description,
    }
    Endpoint.model_validate(endpoint)


def test_the_fest_web_service_is_a_soap_endpoint_without_fhir_codes() -> None:
    endpoint = endpoint_resource(FEST_WEBSERVICE, None)
    assert endpoint["connectionType"] == [
        {"coding": [{"system": "https://grunndata.no/fhir/CodeSystem/catalog-interface", "code": "soap"}]}
    ]
    assert endpoint["payload"] == [{"mimeType": ["application/soap+xml"]}]
    assert [e["url"].removeprefix(EXT) for e in endpoint["extension"]] == [
        "tier",
        "status",
        "licence",
        "cadence",
        "operation",
        "code-system",
        "code-system",
    ]
    Endpoint.model_validate(endpoint)


@pytest.mark.parametrize(
    ("declared", "measured", "status", "environment"),
    [
        ("active", None, "active", "prod"),
        ("active", NEVER, "active", "prod"),
        ("active", UP, "active", "prod"),
        ("active", DOWN, "error", "prod"),
        ("test", None, "test", "test"),
        ("test", DOWN, "error", "test"),
        ("retired", DOWN, "off", "prod"),
        ("retired", None, "off", "prod"),
    ],
)
def test_endpoint_status_is_the_declared_one_unless_the_last_probe_found_it_down(
    declared: str, measured: Availability | None, status: str, environment: str
) -> None:
    service = Service(**{**_fields(SAFEST), "status": declared})
    endpoint = endpoint_resource(service, measured)
    assert endpoint_status(service, measured) == endpoint["status"] == status
    assert endpoint["environmentType"][0]["coding"][0]["code"] == environment
    assert {"url": EXT + "status", "valueCode": declared} in endpoint["extension"]
    Endpoint.model_validate(endpoint)


def _fields(service: Service) -> dict[str, object]:
    return {name: getattr(service, name) for name in Service.__dataclass_fields__}


@pytest.mark.parametrize("service", EVERY, ids=[s.id for s in EVERY])
@pytest.mark.parametrize("measured", [None, NEVER, UP, DOWN], ids=["unprobed", "never", "up", "down"])
def test_every_service_of_ours_and_the_example_is_a_valid_r5_endpoint(
    service: Service, measured: Availability | None
) -> None:
    endpoint = endpoint_resource(service, measured)
    parsed = Endpoint.model_validate(endpoint)
    assert parsed.id == service.id
    assert parsed.address == service.base_url
    assert parsed.managingOrganization.reference == f"Organization/{service.owner}"
    assert endpoint["meta"]["tag"] == [{"system": TIER, "code": service.tier}]
    assert [p["type"][0]["text"] for p in endpoint["payload"] if "type" in p] == list(service.resource_types)


def test_an_owner_is_an_organization_tagged_with_its_tiers() -> None:
    organization = organization_resource("dmp", DMP, ["sector", "national", "national"], ["fhir", "m30"])
    assert organization == {
        "resourceType": "Organization",
        "id": "dmp",
        "meta": {
            "source": "https://grunndata.no/catalog",
            "tag": [{"system": TIER, "code": "national"}, {"system": TIER, "code": "sector"}],
        },
        "extension": [
            {"url": EXT + "tier", "valueCode": "national"},
            {"url": EXT + "tier", "valueCode": "sector"},
        ],
        "identifier": [{"system": "https://grunndata.no/owner", "value": "dmp"}],
        "active": True,
        "name": DMP,
        "endpoint": [{"reference": "Endpoint/fhir"}, {"reference": "Endpoint/m30"}],
    }
    Organization.model_validate(organization)


def test_every_owner_of_the_catalogue_is_one_organization() -> None:
    organizations = organization_resources(EVERY)
    assert [(o["id"], o["name"], [t["code"] for t in o["meta"]["tag"]]) for o in organizations] == [
        ("dmp", DMP, ["national"]),
        ("vendor-a", "Vendor A AS", ["supplementary"]),
    ]
    assert organizations[1]["endpoint"] == [{"reference": "Endpoint/vendor-a-shelf-codes"}]
    for organization in organizations:
        Organization.model_validate(organization)


def test_the_json_feed_holds_every_field_and_the_availability() -> None:
    feed = catalogue_json([SAFEST, VENDOR_FEED], {"dmp-safest-fhir": DOWN}, generated=CHECKED)
    assert feed == {
        "generated": "2026-11-20T08:30:00.123Z",
        "services": [
            {
                "id": "dmp-safest-fhir",
                "name": "SAFEST FHIR API",
                "description": SAFEST.description,
                "owner": "dmp",
                "owner_name": DMP,
                "tier": "national",
                "interface": "fhir-r4",
                "base_url": "https://api.legemiddelverket.no/fhir-r4",
                "resource_types": [
                    "MedicinalProduct",
                    "MedicinalProductPackaged",
                    "MedicinalProductManufactured",
                    "CodeSystem",
                ],
                "operations": ["read", "search-type", "history"],
                "code_systems": ["https://mpd.noma.no/codesystem/pharmaceutical-dose-form"],
                "licence": "NLOD 2.0",
                "cadence": "twice a month, in step with FEST",
                "latest_release": None,
                "status": "active",
                "origin": SAFEST.origin,
                "availability": {
                    "state": "down",
                    "checks": 4,
                    "up": 3,
                    "share": 0.75,
                    "last_checked": "2026-11-20T08:30:00.123Z",
                    "last_up": False,
                    "last_latency_ms": None,
                    "last_message": "timed out after 5 s",
                },
            },
            {
                "id": "vendor-a-shelf-codes",
                "name": "Vendor A shelf codes",
                "description": VENDOR_FEED.description,
                "owner": "vendor-a",
                "owner_name": "Vendor A AS",
                "tier": "supplementary",
                "interface": "fhir-r5",
                "base_url": "https://fhir.vendor-a.example/r5",
                "resource_types": ["Basic"],
                "operations": ["read", "search-type"],
                "code_systems": [],
                "licence": "commercial, per subscription",
                "cadence": "daily",
                "latest_release": None,
                "status": "test",
                "origin": VENDOR_FEED.origin,
                "availability": None,
            },
        ],
    }
    assert orjson.loads(orjson.dumps(feed)) == feed


def test_the_feed_says_when_it_was_made() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    generated = datetime.fromisoformat(catalogue_json([], {})["generated"])
    assert before <= generated <= datetime.now(UTC)


def test_availability_share_and_state() -> None:
    assert (UP.share, UP.state) == (0.75, "up")
    assert (DOWN.share, DOWN.state) == (0.75, "down")
    assert (NEVER.share, NEVER.state) == (None, "unknown")
