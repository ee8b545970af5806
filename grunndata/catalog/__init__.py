"""The service catalogue of grunndata services (Endpoint/Organization, a feed and a page).

Every service offered, ours and others', across the three tiers: ours registered from the store
(`ours`), others' from catalogue files (`files`), served as FHIR and JSON (`fhir`), probed for
availability (`probe`) and shown to people (`page`). The probe and the page are imported on
first use, so the model and the loader work without httpx or the page's templates.
"""

from __future__ import annotations

import importlib
from typing import Any

from grunndata.catalog.fhir import (
    availability_json,
    catalogue_json,
    endpoint_resource,
    endpoint_status,
    organization_resource,
    organization_resources,
    service_json,
)
from grunndata.catalog.files import CatalogueError, check_unique, load_catalogue
from grunndata.catalog.model import FHIR_INTERFACES, INTERFACES, STATUSES, TIERS, Availability, Service
from grunndata.catalog.ours import all_services, own_services, search

# name -> the submodule that defines it, imported when the name is first asked for. The function
# `probe` is not among them: `grunndata.catalog.probe` is its module (import it from there).
_LAZY = {
    "ProbeResult": "probe",
    "availability": "probe",
    "probe_async": "probe",
    "probe_and_record": "probe",
    "probed": "probe",
    "render_page": "page",
    "render_error": "page",
    "state_of": "page",
}

__all__ = [
    "FHIR_INTERFACES",
    "INTERFACES",
    "STATUSES",
    "TIERS",
    "Availability",
    "CatalogueError",
    "Service",
    "all_services",
    "availability_json",
    "catalogue_json",
    "check_unique",
    "endpoint_resource",
    "endpoint_status",
    "load_catalogue",
    "organization_resource",
    "organization_resources",
    "own_services",
    "search",
    "service_json",
]


def __getattr__(name: str) -> Any:
    """The probe's and the page's public names, imported on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
