"""What the catalogue knows about a service, and what probing measured about it.

Plain frozen values: the loader, the store, the probe, the page and the FHIR views all pass
these around, so none of them depends on another's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

TIERS = ("national", "sector", "supplementary")
INTERFACES = ("fhir-r5", "fhir-r4", "m30-file", "soap", "rest")  # FHIR R5/R4 REST, M30, other REST
STATUSES = ("active", "test", "retired")  # declared by the owner
FHIR_INTERFACES = ("fhir-r5", "fhir-r4")  # the ones a probe can ask for a CapabilityStatement


@dataclass(frozen=True, slots=True)
class Service:
    """One service an owner offers: where it is, what it serves, under which terms."""

    id: str  # ^[a-z0-9][a-z0-9-]{0,63}$, unique in the catalogue
    name: str
    description: str
    owner: str  # organisation id (^[a-z0-9][a-z0-9-]{0,62}$), e.g. "dmp", "sykehusapotek-vest"
    owner_name: str
    tier: str  # one of TIERS
    interface: str  # one of INTERFACES
    base_url: str  # absolute http(s) URL
    resource_types: tuple[str, ...] = ()
    operations: tuple[str, ...] = ()  # e.g. ("read", "search-type", "$translate")
    code_systems: tuple[str, ...] = ()  # canonical URLs
    licence: str = ""  # data licence, e.g. "NLOD 2.0"
    cadence: str = ""  # update cadence, e.g. "every 14 days"
    latest_release: str | None = None  # e.g. "release 12, HentetDato 2017-04-12T18:26:27.336Z"
    status: str = "active"  # one of STATUSES
    origin: str = "grunndata"  # "grunndata" when registered automatically, else "FILE:LINE"


@dataclass(frozen=True, slots=True)
class Availability:
    """How a service answered `grunndata catalog probe`: counts and the last probe."""

    service_id: str
    checks: int  # probes recorded
    up: int  # of them answered with a FHIR CapabilityStatement
    last_checked: datetime | None
    last_up: bool | None
    last_latency_ms: float | None
    last_message: str | None  # "ok", "timed out after 5 s", "connection refused", ...

    @property
    def share(self) -> float | None:
        """The share of probes that found the service up; None when it was never checked."""
        return self.up / self.checks if self.checks else None

    @property
    def state(self) -> str:
        """Up or down after the last probe; unknown when never probed (or not a FHIR interface)."""
        if self.last_up is None:
            return "unknown"
        return "up" if self.last_up else "down"
