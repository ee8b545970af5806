"""The catalogue as FHIR R5 Endpoint and Organization resources, and as the /catalog.json feed.

Pure functions from services (and what probing measured) to JSON-ready dicts; the server sends
them. What R5's Endpoint has no element for (tier, licence, cadence, operations...) travels in
extensions `https://grunndata.no/fhir/StructureDefinition/catalog-<field>`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from grunndata.catalog.model import TIERS, Availability, Service
from grunndata.store import OWNER_SOURCE, instant
from grunndata.store.searchparams import TIER_SYSTEM

EXT = "https://grunndata.no/fhir/StructureDefinition/catalog-"
INTERFACE_SYSTEM = "https://grunndata.no/fhir/CodeSystem/catalog-interface"
CONNECTION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
ENVIRONMENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/endpoint-environment"
FHIR_VERSION_EXT = "http://hl7.org/fhir/StructureDefinition/endpoint-fhir-version"
OWNER_SYSTEM = OWNER_SOURCE.rstrip("/")  # an owner's identifier; meta.source is this + "/" + id
CATALOGUE_SOURCE = "https://grunndata.no/catalog"
"""meta.source of the catalogue's Organizations: the record is the catalogue's (the owner it
describes is its identifier), which tells it apart from an Organization an owner imported (whose
meta.source is that owner) at the /fhir/Organization they share."""

# interface -> (FHIR version, code system of its resource types, payload MIME type)
_INTERFACES: dict[str, tuple[str | None, str | None, str]] = {
    "fhir-r5": ("5.0.0", "http://hl7.org/fhir/fhir-types", "application/fhir+json"),
    "fhir-r4": ("4.0.1", "http://hl7.org/fhir/resource-types", "application/fhir+json"),
    "m30-file": (None, None, "application/xml"),
    "soap": (None, None, "application/soap+xml"),
    "rest": (None, None, "application/json"),
}


def endpoint_status(service: Service, availability: Availability | None) -> str:
    """Endpoint.status: what the owner declared, unless the last probe found the service down."""
    if service.status == "retired":
        return "off"
    if availability is not None and availability.state == "down":
        return "error"
    return "test" if service.status == "test" else "active"


def endpoint_resource(service: Service, availability: Availability | None) -> dict[str, Any]:
    """One service as an R5 Endpoint (id = the service id)."""
    version, types_system, mime = _INTERFACES[service.interface]
    connection: list[dict[str, str]] = []
    if version is not None:
        connection.append({"system": CONNECTION_TYPE_SYSTEM, "code": "hl7-fhir-rest", "display": "HL7 FHIR"})
    connection.append({"system": INTERFACE_SYSTEM, "code": service.interface})
    payload = [
        {"type": [_concept(types_system, rtype)], "mimeType": [mime]} for rtype in service.resource_types
    ] or [{"mimeType": [mime]}]
    resource: dict[str, Any] = {
        "resourceType": "Endpoint",
        "id": service.id,
        "meta": _meta(service.owner, [service.tier]),
        "extension": _extensions(service, availability),
        "status": endpoint_status(service, availability),
        "connectionType": [{"coding": connection}],
        "name": service.name,
        "environmentType": [
            {
                "coding": [
                    {"system": ENVIRONMENT_SYSTEM, "code": "test" if service.status == "test" else "prod"}
                ]
            }
        ],
        "managingOrganization": {"reference": f"Organization/{service.owner}", "display": service.owner_name},
        "payload": payload,
        "address": service.base_url,
    }
    if service.description:
        resource["description"] = service.description
    return resource


def organization_resource(
    owner: str, owner_name: str, tiers: Sequence[str], endpoints: Sequence[str] = ()
) -> dict[str, Any]:
    """An owner of services as an R5 Organization, tagged with the tiers it offers services in."""
    ordered = [t for t in TIERS if t in tiers]
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": owner,
        "meta": _meta(owner, ordered) | {"source": CATALOGUE_SOURCE},
        "extension": [{"url": EXT + "tier", "valueCode": t} for t in ordered],
        "identifier": [{"system": OWNER_SYSTEM, "value": owner}],
        "active": True,
        "name": owner_name,
    }
    if not resource["extension"]:
        del resource["extension"]
    if endpoints:
        resource["endpoint"] = [{"reference": f"Endpoint/{e}"} for e in endpoints]
    return resource


def organization_resources(services: Sequence[Service]) -> list[dict[str, Any]]:
    """Every owner of the services as an Organization, by id; the first service names its owner."""
    names: dict[str, str] = {}
    tiers: dict[str, set[str]] = {}
    endpoints: dict[str, list[str]] = {}
    for s in services:
        names.setdefault(s.owner, s.owner_name)
        tiers.setdefault(s.owner, set()).add(s.tier)
        endpoints.setdefault(s.owner, []).append(s.id)
    return [organization_resource(o, names[o], sorted(tiers[o]), endpoints[o]) for o in sorted(names)]


def availability_json(availability: Availability) -> dict[str, Any]:
    """What probing measured, as the feed and the page give it."""
    share = availability.share
    return {
        "state": availability.state,
        "checks": availability.checks,
        "up": availability.up,
        "share": None if share is None else round(share, 4),
        "last_checked": None if availability.last_checked is None else instant(availability.last_checked),
        "last_up": availability.last_up,
        "last_latency_ms": availability.last_latency_ms,
        "last_message": availability.last_message,
    }


def service_json(service: Service, availability: Availability | None) -> dict[str, Any]:
    """Every field of a service (lists as lists) and its availability (None when never probed)."""
    fields = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(service).items()}
    return fields | {"availability": None if availability is None else availability_json(availability)}


def catalogue_json(
    services: Sequence[Service],
    availability: Mapping[str, Availability],
    *,
    generated: datetime | None = None,
) -> dict[str, Any]:
    """The /catalog.json feed: when it was made, and every service in catalogue order."""
    return {
        "generated": instant(generated or datetime.now(UTC)),
        "services": [service_json(s, availability.get(s.id)) for s in services],
    }


def _meta(owner: str, tiers: Sequence[str]) -> dict[str, Any]:
    """Tier and owner as every grunndata resource carries them (meta.tag, meta.source)."""
    return {"source": OWNER_SOURCE + owner, "tag": [{"system": TIER_SYSTEM, "code": t} for t in tiers]}


def _concept(system: str | None, code: str) -> dict[str, Any]:
    if system is None:
        return {"text": code}
    return {"coding": [{"system": system, "code": code}], "text": code}


def _extensions(service: Service, availability: Availability | None) -> list[dict[str, Any]]:
    ext: list[dict[str, Any]] = [
        {"url": EXT + "tier", "valueCode": service.tier},
        {"url": EXT + "status", "valueCode": service.status},
    ]
    version = _INTERFACES[service.interface][0]
    if version is not None:
        ext.append({"url": FHIR_VERSION_EXT, "valueCode": version})
    for field, value in (
        ("licence", service.licence),
        ("cadence", service.cadence),
        ("latest-release", service.latest_release),
    ):
        if value:
            ext.append({"url": EXT + field, "valueString": value})
    ext += [{"url": EXT + "operation", "valueCode": op} for op in service.operations]
    ext += [{"url": EXT + "code-system", "valueUri": url} for url in service.code_systems]
    if availability is not None:
        ext.append({"url": EXT + "availability", "extension": _availability_parts(availability)})
    return ext


def _availability_parts(a: Availability) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [
        {"url": "state", "valueCode": a.state},
        {"url": "checks", "valueInteger": a.checks},
        {"url": "up", "valueInteger": a.up},
    ]
    if a.share is not None:
        parts.append({"url": "share", "valueDecimal": round(a.share, 4)})
    if a.last_checked is not None:
        parts.append({"url": "lastChecked", "valueInstant": instant(a.last_checked)})
    if a.last_latency_ms is not None:
        parts.append({"url": "lastLatencyMs", "valueDecimal": round(a.last_latency_ms, 1)})
    if a.last_message:
        parts.append({"url": "lastMessage", "valueString": a.last_message})
    return parts
