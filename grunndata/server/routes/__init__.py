"""The HTTP routes, one module per area; each holds a module-level `router` of named handlers that
receive what they need through server/deps.py. The app factory includes them in order."""

from grunndata.server.routes import (
    bulk,
    catalog,
    fhir,
    home,
    imports,
    m30,
    migration,
    ops,
    package,
    pages,
    r4,
    subscription_ws,
    subscriptions,
    terminology,
)

__all__ = [
    "bulk",
    "catalog",
    "fhir",
    "home",
    "imports",
    "m30",
    "migration",
    "ops",
    "package",
    "pages",
    "r4",
    "subscription_ws",
    "subscriptions",
    "terminology",
]
