"""What a request may read and import (`Access`), from a token's scopes; the scopes and tiers."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from grunndata.server.auth.settings import ENV_DEV_AUTH

# The store's tiers (grunndata.store.models.TIERS), named here so this module needs nothing else.
NATIONAL, SECTOR, SUPPLEMENTARY = "national", "sector", "supplementary"

SCOPE_SECTOR_READ = "grunndata:sector.read"
SCOPE_SUPPLEMENTARY_READ = "grunndata:supplementary.read:"  # + owner id, or + ALL_OWNERS
SCOPE_IMPORT = "grunndata:import"
SCOPE_IMPORT_OWNER = "grunndata:import:"  # + "sector:" or "supplementary:" + owner id
SCOPE_SUBSCRIBE = "grunndata:subscription"  # make, read and delete one's own R5 Subscriptions
ALL_OWNERS = "*"
OWNER_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class Access:
    """What one request may read and import; built from a token's scopes (or ANONYMOUS/EVERYTHING)."""

    subject: str | None = None
    sector: bool = False
    supplementary: frozenset[str] = frozenset()  # owner ids, or ALL_OWNERS
    import_owners: frozenset[str] = frozenset()  # "<tier>:<owner>" lines it may import
    import_all: bool = False
    dev: bool = False
    subscribe: bool = False  # may keep R5 Subscriptions (SCOPE_SUBSCRIBE)
    # the application (the token's `client_id`), which the request log names; not part of what two
    # Access are compared by: it changes nothing the request may read or import
    client_id: str | None = field(default=None, compare=False)

    @classmethod
    def from_scopes(
        cls, scopes: Iterable[str], subject: str | None = None, client_id: str | None = None
    ) -> Access:
        """The entitlement the scopes grant; unknown scopes and malformed owner ids are ignored."""
        sector, import_all, subscribe = False, False, False
        supplementary: set[str] = set()
        import_owners: set[str] = set()
        for scope in scopes:
            if scope == SCOPE_SECTOR_READ:
                sector = True
            elif scope == SCOPE_IMPORT:
                import_all = True
            elif scope == SCOPE_SUBSCRIBE:
                subscribe = True
            elif scope.startswith(SCOPE_SUPPLEMENTARY_READ):
                owner = scope.removeprefix(SCOPE_SUPPLEMENTARY_READ)
                if owner == ALL_OWNERS or OWNER_ID.fullmatch(owner):
                    supplementary.add(owner)
            elif scope.startswith(SCOPE_IMPORT_OWNER):
                tier, _, owner = scope.removeprefix(SCOPE_IMPORT_OWNER).partition(":")
                if tier in (SECTOR, SUPPLEMENTARY) and OWNER_ID.fullmatch(owner):
                    import_owners.add(f"{tier}:{owner}")
        return cls(
            subject,
            sector,
            frozenset(supplementary),
            frozenset(import_owners),
            import_all,
            subscribe=subscribe,
            client_id=client_id,
        )

    def can_read(self, tier: str, owner: str) -> bool:
        _check_tier(tier)
        if tier == NATIONAL:
            return True
        if tier == SECTOR:
            return self.sector
        return owner in self.supplementary or ALL_OWNERS in self.supplementary

    def can_import(self, tier: str, owner: str) -> bool:
        _check_tier(tier)
        if tier == NATIONAL:
            return self.import_all
        return self.import_all or f"{tier}:{owner}" in self.import_owners

    @property
    def key(self) -> str:
        """The read entitlement as a short stable string: two Access with one key see the same data.

        "n" (national), "ns" (and sector), then ":" and the readable supplementary owners ("*" for
        all; a hash when the list is long). Subject, import rights and dev do not change what is
        read, so they are left out, and a response cache keyed on this is shared as widely as safe.
        """
        key = "ns" if self.sector else "n"
        if ALL_OWNERS in self.supplementary:
            return key + ":*"
        if not self.supplementary:
            return key
        owners = ",".join(sorted(self.supplementary))
        if len(owners) > 64:
            owners = "#" + hashlib.sha256(owners.encode()).hexdigest()[:16]
        return f"{key}:{owners}"

    def scopes_missing_message(
        self, tier: str, owner: str, action: Literal["read", "import"] = "read"
    ) -> str:
        """The 403 sentence for a tier/owner this access may not read (or import)."""
        _check_tier(tier)
        if action == "import":
            needed = SCOPE_IMPORT if tier == NATIONAL else f"{SCOPE_IMPORT_OWNER}{tier}:{owner}"
        elif tier == SECTOR:
            needed = SCOPE_SECTOR_READ
        elif tier == SUPPLEMENTARY:
            needed = f"{SCOPE_SUPPLEMENTARY_READ}{owner}"
        else:
            raise ValueError("national data is open: reading it needs no scope")
        if self == ANONYMOUS:  # no token (or one granting nothing): say that a token is the way in
            return f"this needs a bearer token with the scope {needed}"
        return f"this needs the scope {needed}"


def _check_tier(tier: str) -> None:
    if tier not in (NATIONAL, SECTOR, SUPPLEMENTARY):
        raise ValueError(f"unknown tier {tier!r}: expected national, sector or supplementary")


ANONYMOUS = Access()
EVERYTHING = Access(sector=True, supplementary=frozenset({ALL_OWNERS}), import_all=True, subscribe=True)
DEV_EVERYTHING = replace(EVERYTHING, dev=True)


def dev_mode_banner() -> str:
    """The warning the server prints and logs when it starts in development mode."""
    return (
        f"WARNING: DEVELOPMENT AUTH MODE ({ENV_DEV_AUTH}=1). Every request, with or without a "
        "token, may read ALL tiers (national, sector and every owner's supplementary data) and "
        "import anything, unless a JWKS is configured to check the tokens that are sent. Never "
        "run this mode where sector or supplementary data can be reached by anyone but you."
    )
