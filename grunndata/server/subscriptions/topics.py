"""The SubscriptionTopics a record system can subscribe to, and which changes of a release each
subscription is told about: a release of a line served, resources of given types or tiers changed,
and the safety-relevant changes (store/changes.py classes them).

A sector or supplementary line's release topic exists only for a client that may read the line:
to anyone else it is unknown, so its name tells nobody that the line exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from grunndata.fhir import SERVED_TYPES
from grunndata.server.auth.access import NATIONAL, SECTOR, SUPPLEMENTARY, Access
from grunndata.store.changes import SAFETY_KINDS, Change

BASE = "https://grunndata.no/fhir/SubscriptionTopic/"
RELEASE_EVENT = "https://grunndata.no/fhir/CodeSystem/subscription-event"
RESOURCE_CHANGED, SAFETY = "resource-changed", "safety"
TIERS = (NATIONAL, SECTOR, SUPPLEMENTARY)

# what each safety kind is about: the types whose changes the safety topic carries
_SAFETY_TYPES = {
    "withdrawn": ("PackagedProductDefinition", "MedicinalProductDefinition"),
    "expired": ("PackagedProductDefinition", "MedicinalProductDefinition"),
    "slv-notice": ("Basic",),
    "interaction": ("ClinicalUseDefinition",),
}
SAFETY_TYPES = tuple(dict.fromkeys(t for kind in SAFETY_KINDS for t in _SAFETY_TYPES[kind]))
_FILTERS = {RESOURCE_CHANGED: ("type", "tier"), SAFETY: ("kind", "type")}
# What a filterBy may say beside its parameter and value (every topic's canFilterBy declares the
# same): the comparator eq (R5's default; the values are codes, so no ordering one applies), and
# the modifier not (none of the values). A filter with the modifier is kept as "<parameter>:not".
COMPARATORS, MODIFIERS = ("eq",), ("not",)
NOT = ":not"
_MAX_ID = 64  # FHIR's id


def _definition(rtype: str) -> str:
    return f"http://hl7.org/fhir/StructureDefinition/{rtype}"


def _line_id(tier: str, owner: str) -> str:
    """The release topic id of a line: release-national, release-<tier>-<owner> (shortened with a
    hash of the owner when an owner id is too long for a FHIR id)."""
    if tier == NATIONAL:
        return "release-national"
    whole = f"release-{tier}-{owner}"
    if len(whole) <= _MAX_ID:
        return whole
    digest = hashlib.sha256(owner.encode()).hexdigest()[:10]
    return f"{whole[: _MAX_ID - 11]}-{digest}"


def _line_name(tier: str, owner: str) -> str:
    return "the national line" if tier == NATIONAL else f"{owner}'s {tier} line"


def _common(topic_id: str, name: str, title: str, description: str) -> dict[str, Any]:
    return {
        "resourceType": "SubscriptionTopic",
        "id": topic_id,
        "url": BASE + topic_id,
        "name": name,
        "title": title,
        "status": "active",
        "publisher": "grunndata",
        "description": description,
    }


def _release_topic(tier: str, owner: str) -> dict[str, Any]:
    topic_id = _line_id(tier, owner)
    line = _line_name(tier, owner)
    resource = _common(
        topic_id,
        "".join(part.capitalize() for part in topic_id.split("-")),
        f"A release of {line} is served",
        f"A notification each time a new release of {line} is served (a rollback, which serves an "
        "earlier release's data again, is a release too). Its focus names the release (identifier system https://grunndata.no/fhir/release); "
        "the references it carries are the resources the release changed that the subscriber may "
        "read. Takes no filters.",
    )
    resource["eventTrigger"] = [
        {
            "description": f"A release of {line} becomes the one served",
            "event": {
                "coding": [
                    {"system": RELEASE_EVENT, "code": "release-served", "display": "A release is served"}
                ],
                "text": "a release is served",
            },
            "resource": _definition("Resource"),
        }
    ]
    return resource


def _resource_changed() -> dict[str, Any]:
    resource = _common(
        RESOURCE_CHANGED,
        "ResourceChanged",
        "Resources changed by a release",
        "A notification for each served release that created, updated or deleted resources of the "
        "types and tiers the filters name (every type and tier the subscriber may read without "
        "filters); it carries the changed resources' references.",
    )
    resource["resourceTrigger"] = [
        {
            "description": f"A release creates, updates or stops serving a {rtype}",
            "resource": _definition(rtype),
            "supportedInteraction": ["create", "update", "delete"],
        }
        for rtype in SERVED_TYPES
    ]
    resource["canFilterBy"] = [
        {
            "description": "The resource type, one of the served types; several joined by commas "
            "(type=PackagedProductDefinition,MedicinalProductDefinition)",
            "filterParameter": "type",
            "comparator": ["eq"],
            "modifier": ["not"],
        },
        {
            "description": "The tier the resource is published in: national, sector or supplementary; "
            "several joined by commas",
            "filterParameter": "tier",
            "comparator": ["eq"],
            "modifier": ["not"],
        },
    ]
    return resource


_KIND_TEXT = {
    "withdrawn": "a package or product whose marketing status became deregistered (avregistrert) or "
    "temporarily unavailable (midlertidig-utgatt), or which was retired",
    "expired": "a package or product no longer served (expired)",
    "slv-notice": "a new or changed notice from NoMA (Basic, code VarselSlv)",
    "interaction": "a new or changed interaction (ClinicalUseDefinition, type interaction)",
}


def _safety() -> dict[str, Any]:
    resource = _common(
        SAFETY,
        "Safety",
        "Safety-relevant changes",
        "A notification for each served release with safety-relevant changes: "
        + "; ".join(f"{kind}: {_KIND_TEXT[kind]}" for kind in SAFETY_KINDS)
        + ". It carries the references of those changes only.",
    )
    resource["resourceTrigger"] = [
        {
            "description": "A package or product withdrawn (updated) or expired (deleted)",
            "resource": _definition(rtype),
            "supportedInteraction": ["update", "delete"],
        }
        for rtype in _SAFETY_TYPES["withdrawn"]
    ] + [
        {
            "description": f"A new or changed {what}",
            "resource": _definition(rtype),
            "supportedInteraction": ["create", "update"],
        }
        for rtype, what in (
            ("Basic", "notice from NoMA (code VarselSlv)"),
            ("ClinicalUseDefinition", "interaction"),
        )
    ]
    resource["canFilterBy"] = [
        {
            "description": "The kind of change: " + ", ".join(SAFETY_KINDS) + "; several joined by commas",
            "filterParameter": "kind",
            "comparator": ["eq"],
            "modifier": ["not"],
        },
        {
            "description": "The resource type: " + ", ".join(SAFETY_TYPES) + "; several joined by commas",
            "filterParameter": "type",
            "comparator": ["eq"],
            "modifier": ["not"],
        },
    ]
    return resource


def _lines(lines: Sequence[tuple[str, str]], access: Access) -> list[tuple[str, str]]:
    """The lines with a release topic the access may see, national first, then by tier and owner;
    the national line always (it is what the service is for, released or not yet)."""
    found = {(NATIONAL, "")} | {
        (tier, owner)
        for tier, owner in lines
        if tier != NATIONAL and tier in TIERS and access.can_read(tier, owner)
    }
    return sorted(found, key=lambda line: (TIERS.index(line[0]), line[1]))


def visible_topics(lines: Sequence[tuple[str, str]], access: Access) -> list[dict[str, Any]]:
    """Every topic `access` may subscribe to, given the store's lines ((tier, owner) pairs)."""
    return [_release_topic(t, o) for t, o in _lines(lines, access)] + [_resource_changed(), _safety()]


def _topic_id(url_or_id: str) -> str:
    return url_or_id.removeprefix(BASE)


def topic(url_or_id: str, lines: Sequence[tuple[str, str]], access: Access) -> dict[str, Any] | None:
    """The topic by canonical URL or id; None when there is none, or `access` may not see it (the
    two are the same answer, so a caller cannot learn of a line it may not read)."""
    wanted = _topic_id(url_or_id)
    if wanted == RESOURCE_CHANGED:
        return _resource_changed()
    if wanted == SAFETY:
        return _safety()
    for tier, owner in _lines(lines, access):
        if _line_id(tier, owner) == wanted:
            return _release_topic(tier, owner)
    return None


def _values(value: str) -> list[str]:
    return [v.strip() for v in value.split(",")]


def check_filters(topic_url: str, filters: Sequence[tuple[str, str]]) -> str | None:
    """Why the filters ((filterParameter, value) pairs) do not fit the topic's canFilterBy, as one
    sentence; None when they do. Commas join values of one filter (any of them); filters are all
    to hold. The topic is one `topic` found for the client: a release topic's line is not looked
    up again here."""
    topic_id = _topic_id(topic_url)
    allowed = _FILTERS.get(topic_id)
    if allowed is None:
        if not topic_id.startswith("release-"):
            return f"there is no topic {_shown(topic_url)}"
        if filters:
            return f"the topic {topic_url} takes no filters: it tells of every release of its line"
        return None
    for given, value in filters:
        name = given.removesuffix(NOT)
        if name not in allowed:
            return f"the topic {topic_url} filters by {' and '.join(allowed)}, not by {_shown(name)}"
        for v in _values(value):
            problem = _value_problem(topic_id, name, v)
            if problem:
                return problem
    return None


def _shown(text: str) -> str:
    """A client's text quoted in a sentence, cut short: the sentence is not to echo a megabyte."""
    return repr(text if len(text) <= 64 else text[:64] + "...")


def _value_problem(topic_id: str, name: str, value: str) -> str | None:
    if not value:
        return f"the filter {name} has an empty value; give one or more values joined by commas"
    if name == "tier" and value not in TIERS:
        return f"the filter tier takes national, sector or supplementary, not {_shown(value)}"
    if name == "kind" and value not in SAFETY_KINDS:
        return f"the filter kind takes {', '.join(SAFETY_KINDS)}, not {_shown(value)}"
    if name == "type" and topic_id == SAFETY and value not in SAFETY_TYPES:
        return f"the safety topic's changes are of the types {', '.join(SAFETY_TYPES)}; {_shown(value)} is none of them"
    if name == "type" and value not in SERVED_TYPES:
        return f"the filter type takes a type this server serves ({', '.join(SERVED_TYPES)}), not {_shown(value)}"
    return None


def matching(
    topic_url: str,
    filters: Sequence[tuple[str, str]],
    line: tuple[str, str],
    changes: Sequence[Change],
    access: Access,
) -> list[Change] | None:
    """The changes a subscription to the topic with these filters is told about, when the release
    of `line` with `changes` is served; None when the release is no event for it.

    A release topic's event is the release itself (its list may be empty); the other topics have
    an event only when a change passes the filters. Either way only changes `access` (the
    subscriber's entitlement) may read are given.
    """
    topic_id = _topic_id(topic_url)
    tier, owner = line
    readable = [c for c in changes if access.can_read(c.tier, c.owner)]
    if topic_id.startswith("release-"):
        if tier not in TIERS or not access.can_read(tier, owner) or _line_id(tier, owner) != topic_id:
            return None
        return readable
    if topic_id not in _FILTERS:
        return None
    wanted: dict[str, set[str]] = {}
    unwanted: dict[str, set[str]] = {}
    for name, value in filters:  # each filter holds: the intersection of their values
        values = set(_values(value))
        if name.endswith(NOT):  # none of them: the union of what the `not` filters name
            base = name.removesuffix(NOT)
            unwanted[base] = unwanted.get(base, set()) | values
            continue
        wanted[name] = wanted[name] & values if name in wanted else values
    if topic_id == SAFETY:
        readable = [c for c in readable if c.safety]
    found = [c for c in readable if _passes(c, wanted, unwanted)]
    return found or None


def _passes(change: Change, wanted: dict[str, set[str]], unwanted: dict[str, set[str]]) -> bool:
    """Whether the change holds every filter: its type, tier and one of its safety kinds among the
    values (a filter not given holds), and none of them among a `not` filter's values (a change
    of several safety kinds is left out only when each of them is)."""
    return (
        change.type in wanted.get("type", {change.type})
        and change.tier in wanted.get("tier", {change.tier})
        and ("kind" not in wanted or bool(change.safety & wanted["kind"]))
        and change.type not in unwanted.get("type", set())
        and change.tier not in unwanted.get("tier", set())
        and ("kind" not in unwanted or bool(change.safety - unwanted["kind"]))
    )
