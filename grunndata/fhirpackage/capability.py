"""The CapabilityStatement at /fhir/metadata, generated from the served types and search parameters.

It is part of our package (content.py) and served by the server (routes/fhir.py): it lives here so
that the server uses the package and never the other way round."""

from __future__ import annotations

from functools import cache

import orjson

from grunndata import __version__
from grunndata.fhir import SERVED_TYPES
from grunndata.fhir.systems import NS_PHPID
from grunndata.fhirpackage.names import IMPLEMENTATION_GUIDE
from grunndata.store import SEARCHED_TYPES, STORE, params_for, sources_of
from grunndata.store.searchparams import CM, CONTENT_FILTER_PARAM, ENDPOINT, SearchParam, chain_targets

CHAIN_LINKS, ITERATE_ROUNDS = 2, 3
"""GRUNNDATA_SEARCH_MAX_CHAIN's and _ITERATE's defaults, for the package's own copy of the statement
(the package may not read settings; a server passes its own bounds)."""

_REFERENCE_PARAMS = {
    t: sorted(p.code for p in params_for(t).values() if p.type == "reference") for t in SERVED_TYPES
}


BULK_DATA = "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
BULK_EXPORT = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"


WEBSOCKET = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket"
WEBSOCKET_PATH = "/fhir/subscription-ws"  # the subscriptions' socket (server/subscriptions/websocket.py)


def websocket_url(base: str) -> str:
    """The subscriptions' socket at the FHIR base `http(s)://host/fhir`: `ws(s)://host/fhir/subscription-ws`."""
    scheme, _, rest = base.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest.split('/', 1)[0]}{WEBSOCKET_PATH}"


def _operation(name: str, definition: str, documentation: str) -> dict[str, str]:
    return {
        "name": name,
        "definition": f"http://hl7.org/fhir/OperationDefinition/{definition}",
        "documentation": documentation,
    }


_LISTED_ONLY: dict[str, dict[str, object]] = {  # types no release holds: read and search only
    CM: {
        "documentation": (
            "FEST code systems to EDQM and UCUM (reviewed files, sources stated), FEST ids to IDMP "
            "resources and GTIN (generated from each release), and the maps SAFEST delivered"
        ),
        "operation": [
            _operation(
                "translate", "ConceptMap-translate", "R5 names, and R4's code/coding/targetsystem/reverse"
            )
        ],
    },
    ENDPOINT: {"documentation": "The service catalogue: every grunndata service offered, ours and others'"},
}


_SUBSCRIPTIONS: list[dict[str, object]] = [  # server/routes/subscriptions.py
    {
        "type": "Subscription",
        "documentation": (
            "R5 topic-based subscriptions (rest-hook and websocket), with a token holding the scope "
            "grunndata:subscription; a client reads, finds and deletes only its own. Channel "
            "parameters (the headers sent with each notification) are kept but never read back."
        ),
        "interaction": [{"code": c} for c in ("create", "read", "delete", "search-type")],
        "searchParam": [
            {
                "name": "_id",
                "definition": "http://hl7.org/fhir/SearchParameter/Resource-id",
                "type": "token",
            },
            {
                "name": "status",
                "definition": "http://hl7.org/fhir/SearchParameter/Subscription-status",
                "type": "token",
            },
            {
                "name": "topic",
                "definition": "http://hl7.org/fhir/SearchParameter/Subscription-topic",
                "type": "uri",
            },
        ],
        "operation": [
            _operation("status", "Subscription-status", "The subscription's SubscriptionStatus"),
            _operation(
                "events", "Subscription-events", "The events kept (eventsSinceNumber, eventsUntilNumber)"
            ),
            _operation(
                "get-ws-binding-token",
                "Subscription-get-ws-binding-token",
                "A token a websocket client sends as `bind-with-token <token>` on the socket the "
                "rest's websocket extension names (POST; on the type with id parameters too)",
            ),
        ],
    },
    {
        "type": "SubscriptionTopic",
        "documentation": (
            "A release of a line served (one topic per line: national, each sector or supplementary "
            "owner, visible only to clients entitled to the line), resources changed (filters type, "
            "tier), and safety-relevant changes (filters kind, type)"
        ),
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": [
            {
                "name": "_id",
                "definition": "http://hl7.org/fhir/SearchParameter/Resource-id",
                "type": "token",
            },
            {
                "name": "url",
                "definition": "http://hl7.org/fhir/SearchParameter/CanonicalResource-url",
                "type": "uri",
            },
        ],
    },
]


_PHPID_TYPES = ("MedicinalProductDefinition", "AdministrableProductDefinition", "PackagedProductDefinition")
_PHPID_NOTE = (
    f"identifier also holds PhPIDs (ISO 11616, levels 1-4) in the system {NS_PHPID}, computed by this "
    "server and experimental until a national PhPID authority exists (docs/phpid.md): on the "
    "administrable products, the substance-based products (FEST LegemiddelVirkestoff) and every package, "
    "so identifier=<that system>|<PhPID> finds every package that can fill a prescription by active substance"
)


def _search_params(rtype: str, chain: int = CHAIN_LINKS) -> list[dict[str, str]]:
    return [
        {
            "name": p.code,
            "definition": p.definition,
            "type": p.type,
            "documentation": _documentation(p, chain),
        }
        for p in params_for(rtype).values()
    ]


def _documentation(param: SearchParam, chain: int) -> str:
    """A parameter's description and the grammar it answers: its modifiers (R5's CapabilityStatement
    has no element for them; the SearchParameter's `modifier` and `chain` do, and ours are not the
    HL7 definitions' to change) and, for a reference, what may be chained after it."""
    said = [param.description.rstrip(".") + "."]
    modifiers = [f":{m}" for m in param.modifiers]
    if param.type == "reference" and not param.canonical:
        modifiers.append(":[type] (" + ", ".join(param.targets) + ")")
    if modifiers:
        said.append("Modifiers: " + ", ".join(modifiers) + ".")
    chained = chain_targets(param)
    if chained:
        said.append(
            f"Chains: {param.code}.<parameter> to any parameter of "
            + ", ".join(chained)
            + f" ({param.code}:<Type>.<parameter> where it may point at several), "
            f"at most {chain} links deep with _has (GRUNNDATA_SEARCH_MAX_CHAIN)."
        )
    return " ".join(said)


def _has_param(chain: int) -> dict[str, str]:
    """`_has` (R5's Resource-has), on every type the store holds."""
    return {
        "name": "_has",
        "definition": "http://hl7.org/fhir/SearchParameter/Resource-has",
        "type": "special",
        "documentation": (
            "Reverse chaining: _has:<Type>:<reference>:<parameter>=<value> finds the resources a <Type> "
            "matching <parameter> points at by <reference> (nested _has and chains after it too); on the "
            f"types the store holds. Each _has and each chain step is a link: at most {chain} to a "
            "parameter (GRUNNDATA_SEARCH_MAX_CHAIN), each counted as one more parameter against "
            "GRUNNDATA_SEARCH_MAX_PARAMS."
        ),
    }


def _reachable(rtype: str, rounds: int) -> list[str]:
    """The types an `_include:iterate` from `rtype` may reach in `rounds` rounds, `rtype` apart."""
    found: list[str] = []
    frontier = [rtype]
    for _ in range(rounds):
        onward = [
            t
            for source in frontier
            for p in params_for(source).values()
            if p.type == "reference" and not p.canonical and p.resource != "Resource"
            for t in p.targets
            if t in SERVED_TYPES and t != rtype and t not in found
        ]
        frontier = list(dict.fromkeys(onward))
        found += frontier
    return found


def _includes(rtype: str, rounds: int) -> list[str]:
    """searchInclude: the type's own, `*`, and (R5: iterate support is listed on the root type) those
    of every type an `_include:iterate` may reach within the bound of rounds."""
    own = [f"{rtype}:{code}" for code in _REFERENCE_PARAMS[rtype]]
    if not own:
        return []
    onward = [f"{t}:{code}" for t in _reachable(rtype, rounds) for code in _REFERENCE_PARAMS[t]]
    return [*own, "*", *onward]


def _view_param(rtype: str) -> list[dict[str, str]]:
    """`content-filter` (store/searchparams.py CONTENT_FILTER_PARAM) on the types the store holds."""
    if STORE not in sources_of(rtype):
        return []
    p = CONTENT_FILTER_PARAM
    return [{"name": p.code, "definition": p.definition, "type": p.type, "documentation": p.description}]


def _security(issuer: str | None, read_scopes: tuple[str, ...], cors: bool) -> dict[str, object]:
    """rest.security: OAuth bearer tokens (HelseID) for what is not national; national data is open.

    The token service is named by its issuer (GRUNNDATA_TOKEN_ISSUER): its OpenID configuration
    gives the token endpoint. Without one this server accepts no token and serves national data
    only, and says so."""
    if issuer is None:
        how = (
            "National data is open and needs no token. This server is configured without a token "
            "issuer, so it accepts no token and serves national data only."
        )
    else:
        how = (
            "National data is open and needs no token. Sector and supplementary data need an OAuth 2.0 "
            f"access token (a JWT), sent as Bearer or bound to the client's key as DPoP (RFC 9449), from HelseID's token service {issuer} (its endpoints: "
            f"{issuer.rstrip('/')}/.well-known/openid-configuration), with one of the scopes: "
            + ", ".join(f"`{s}`" for s in read_scopes)
            + ". Data a token does not entitle the client to is left out of every answer, as if it "
            "did not exist."
        )
    return {
        "cors": cors,  # GRUNNDATA_CORS_ORIGINS: browser apps on other origins may call the API
        "service": [
            {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/restful-security-service",
                        "code": "OAuth",
                        "display": "OAuth",
                    }
                ],
                "text": "OAuth 2.0 bearer tokens (HelseID)",
            }
        ],
        "description": how,
    }


@cache
def capability_statement(
    base: str,
    issuer: str | None = None,
    read_scopes: tuple[str, ...] = (),
    cors: bool = False,
    chain: int = CHAIN_LINKS,
    iterate: int = ITERATE_ROUNDS,
) -> bytes:
    """The CapabilityStatement of a server at `base` whose tokens come from `issuer` and grant
    `read_scopes`, answering browsers on other origins if `cors` (the package's own copy has none),
    whose searches take `chain` links to a parameter and `iterate` rounds of includes at most."""
    resources: list[dict[str, object]] = []
    for rtype in SEARCHED_TYPES:
        if rtype not in SERVED_TYPES:
            interactions = [{"code": "read"}, {"code": "search-type"}]
            resources.append(
                {"type": rtype, "interaction": interactions, "searchParam": _search_params(rtype)}
                | _LISTED_ONLY[rtype]
            )
            continue
        includes = _includes(rtype, iterate)
        revincludes = [
            f"{source}:{p.code}"
            for source in SERVED_TYPES
            for p in params_for(source).values()
            if p.type == "reference" and rtype in p.targets
        ]
        entry: dict[str, object] = {
            "type": rtype,
            "interaction": [
                {"code": c} for c in ("read", "vread", "search-type", "history-instance", "history-type")
            ],
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": False,
            "conditionalRead": "full-support",  # If-None-Match and If-Modified-Since (routes/fhir.py)
            "searchParam": _search_params(rtype, chain) + _view_param(rtype),
        }
        if rtype in _PHPID_TYPES:
            entry["documentation"] = _PHPID_NOTE
        if includes:  # R5 allows no empty array
            entry["searchInclude"] = includes
        if revincludes:
            entry["searchRevInclude"] = [*sorted(revincludes), "*"]
        if rtype == "MedicinalProductDefinition":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/MedicinalProductDefinition-everything",
                    "documentation": "The product with its packages, items, ingredients, substances and interactions",
                }
            ]
        if rtype == "CodeSystem":
            entry["operation"] = [
                _operation(
                    "lookup",
                    "CodeSystem-lookup",
                    "A code of a FEST or SAFEST code system: display, designations, parent and children",
                ),
                _operation(
                    "validate-code",
                    "CodeSystem-validate-code",
                    "Whether a code (and display) is in a FEST or SAFEST code system",
                ),
            ]
        if rtype == "ValueSet":
            entry["operation"] = [
                _operation(
                    "expand",
                    "ValueSet-expand",
                    "A ValueSet SAFEST delivered (compose by whole code systems, listed concepts, other "
                    "value sets; no filters), or a code system's implicit value set (url = its url); "
                    "filter, offset, count, valueSetVersion",
                )
            ]
        resources.append(entry)
    resources += _SUBSCRIPTIONS
    statement = {
        "resourceType": "CapabilityStatement",
        "id": "grunndata",
        "url": f"{base}/metadata",
        "version": __version__,
        "name": "Grunndata",
        "title": "Grunndata: Norwegian medicinal-product master data over FHIR R5",
        "status": "active",
        "date": "2026-11-21",
        "publisher": "Grunndata",
        "description": "FEST/M30 deliveries served as FHIR R5 IDMP resources; read-only, release-versioned.",
        "kind": "instance",
        "software": {"name": "grunndata", "version": __version__},
        "implementation": {"description": "Grunndata FHIR R5 server", "url": base},
        "fhirVersion": "5.0.0",
        "instantiates": [BULK_DATA],  # the Bulk Data server's CapabilityStatement: $export
        "implementationGuide": [IMPLEMENTATION_GUIDE],  # our package, at /fhir/package.tgz
        "format": ["application/fhir+json", "application/fhir+xml"],
        "rest": [
            {
                "extension": [{"url": WEBSOCKET, "valueUrl": websocket_url(base)}],
                "mode": "server",
                "documentation": (
                    "Read-only. Search paging links carry the release snapshot (_snapshot) so they stay "
                    "correct while a new release is activated. _total defaults to none. "
                    "_include and _revinclude take :iterate (followed from what they bring, at most "
                    f"{iterate} rounds: GRUNNDATA_SEARCH_MAX_ITERATE) and * (every "
                    "reference; _include:iterate=* is refused as unbounded)."
                ),
                "security": _security(issuer, read_scopes, cors),
                "resource": resources,
                "interaction": [{"code": "history-system"}],
                "searchParam": [*_search_params("Resource", chain), _has_param(chain)],
                "operation": [
                    {
                        "name": "export",
                        "definition": BULK_EXPORT,
                        "documentation": (
                            "FHIR Bulk Data export (Prefer: respond-async), also per type as "
                            "/fhir/<type>/$export; _type, _since, _outputFormat (docs/bulk-export.md)"
                        ),
                    }
                ],
            }
        ],
    }
    return orjson.dumps(statement)
