"""The SubscriptionTopics a client may see, the filters each takes, and what a served release tells
each subscriber (server/subscriptions/topics.py)."""

from __future__ import annotations

import hashlib

import pytest
from fhir.resources.subscriptiontopic import SubscriptionTopic

from grunndata.server.auth.access import ANONYMOUS, EVERYTHING, Access
from grunndata.server.subscriptions.topics import BASE, check_filters, matching, topic, visible_topics
from grunndata.store.changes import Change

LINES = [
    ("national", "dmp"),
    ("sector", "helse-vest"),
    ("supplementary", "apotek1"),
    ("supplementary", "vendor"),
]
SECTOR_READER = Access.from_scopes(["grunndata:sector.read"], subject="epj")
APOTEK1 = Access.from_scopes(["grunndata:supplementary.read:apotek1"], subject="apotek")
LONG_OWNER = "a" + "b" * 62  # the longest owner id there may be


def _ids(topics: list[dict]) -> list[str]:
    return [t["id"] for t in topics]


def test_each_client_sees_the_release_topics_of_the_lines_it_may_read_and_the_two_others() -> None:
    assert _ids(visible_topics(LINES, EVERYTHING)) == [
        "release-national",
        "release-sector-helse-vest",
        "release-supplementary-apotek1",
        "release-supplementary-vendor",
        "resource-changed",
        "safety",
    ]
    assert _ids(visible_topics(LINES, ANONYMOUS)) == ["release-national", "resource-changed", "safety"]
    assert _ids(visible_topics(LINES, SECTOR_READER)) == [
        "release-national",
        "release-sector-helse-vest",
        "resource-changed",
        "safety",
    ]
    assert _ids(visible_topics(LINES, APOTEK1)) == [
        "release-national",
        "release-supplementary-apotek1",
        "resource-changed",
        "safety",
    ]
    # the national line's topic is there before its first release; a line with no release has none
    assert _ids(visible_topics([], EVERYTHING)) == ["release-national", "resource-changed", "safety"]


def test_every_topic_is_a_valid_r5_subscription_topic_named_by_its_canonical_url() -> None:
    topics = visible_topics([*LINES, ("sector", LONG_OWNER)], EVERYTHING)
    for resource in topics:
        parsed = SubscriptionTopic.model_validate(resource)
        assert (parsed.url, parsed.status) == (BASE + resource["id"], "active")
        assert len(resource["id"]) <= 64 and resource["name"].isalnum()
    long_id = topics[1]["id"]  # owners in order: "abbb..." before "helse-vest"
    assert (
        long_id == "release-sector-a" + "b" * 37 + "-" + hashlib.sha256(LONG_OWNER.encode()).hexdigest()[:10]
    )
    assert topic(long_id, [("sector", LONG_OWNER)], EVERYTHING) == topics[1]
    sector = topics[2]
    assert sector["title"] == "A release of helse-vest's sector line is served"
    assert (
        "canFilterBy" not in sector
        and sector["eventTrigger"][0]["event"]["coding"][0]["code"] == "release-served"
    )
    changed = topic("resource-changed", LINES, ANONYMOUS)
    assert changed is not None
    assert [f["filterParameter"] for f in changed["canFilterBy"]] == ["type", "tier"]
    assert changed["resourceTrigger"][0]["resource"] == (
        "http://hl7.org/fhir/StructureDefinition/MedicinalProductDefinition"
    )
    safety = topic(BASE + "safety", LINES, ANONYMOUS)
    assert safety is not None and [f["filterParameter"] for f in safety["canFilterBy"]] == ["kind", "type"]
    assert [
        (t["resource"].rsplit("/", 1)[1], t["supportedInteraction"]) for t in safety["resourceTrigger"]
    ] == [
        ("PackagedProductDefinition", ["update", "delete"]),
        ("MedicinalProductDefinition", ["update", "delete"]),
        ("Basic", ["create", "update"]),
        ("ClinicalUseDefinition", ["create", "update"]),
    ]


def test_a_topic_is_found_by_id_or_url_and_a_line_a_client_may_not_read_is_as_unknown_as_none() -> None:
    assert topic("release-national", LINES, ANONYMOUS) == visible_topics(LINES, ANONYMOUS)[0]
    assert (
        topic(BASE + "release-sector-helse-vest", LINES, SECTOR_READER)
        == visible_topics(LINES, SECTOR_READER)[1]
    )
    assert topic("release-sector-helse-vest", LINES, ANONYMOUS) is None
    assert topic("release-sector-helse-vest", LINES, APOTEK1) is None
    assert topic("release-supplementary-vendor", LINES, APOTEK1) is None
    assert topic("release-sector-helse-vest", [("national", "dmp")], EVERYTHING) is None  # no such line
    for unknown in ("release-nowhere", "resource-changed/x", "", "http://example.org/safety", BASE):
        assert topic(unknown, LINES, EVERYTHING) is None


@pytest.mark.parametrize(
    ("topic_id", "filters", "sentence"),
    [
        ("resource-changed", [], None),
        ("resource-changed", [("type", "PackagedProductDefinition,Basic"), ("tier", "sector")], None),
        ("safety", [("kind", "withdrawn,expired"), ("type", "PackagedProductDefinition")], None),
        ("release-national", [], None),
        (
            "resource-changed",
            [("kind", "withdrawn")],
            f"the topic {BASE}resource-changed filters by type and tier, not by 'kind'",
        ),
        ("safety", [("tier", "national")], f"the topic {BASE}safety filters by kind and type, not by 'tier'"),
        (
            "resource-changed",
            [("tier", "regional")],
            "the filter tier takes national, sector or supplementary, not 'regional'",
        ),
        (
            "safety",
            [("kind", "withdrawn,recalled")],
            "the filter kind takes withdrawn, expired, slv-notice, interaction, not 'recalled'",
        ),
        (
            "resource-changed",
            [("type", "Patient")],
            "the filter type takes a type this server serves (MedicinalProductDefinition, "
            "PackagedProductDefinition, ManufacturedItemDefinition, AdministrableProductDefinition, "
            "Ingredient, SubstanceDefinition, ClinicalUseDefinition, CodeSystem, Basic, "
            "RegulatedAuthorization, ValueSet, Composition, Organization), not 'Patient'",
        ),
        (
            "safety",
            [("type", "Ingredient")],
            "the safety topic's changes are of the types PackagedProductDefinition, "
            "MedicinalProductDefinition, Basic, ClinicalUseDefinition; 'Ingredient' is none of them",
        ),
        (
            "resource-changed",
            [("type", "Basic,")],
            "the filter type has an empty value; give one or more values joined by commas",
        ),
        (
            "release-sector-helse-vest",
            [("type", "Basic")],
            f"the topic {BASE}release-sector-helse-vest takes no filters: it tells of every release of its line",
        ),
        ("changes", [], f"there is no topic '{BASE}changes'"),
        (
            "resource-changed",
            [("type", "X" * 10_000)],
            "the filter type takes a type this server serves (MedicinalProductDefinition, "
            "PackagedProductDefinition, ManufacturedItemDefinition, AdministrableProductDefinition, "
            "Ingredient, SubstanceDefinition, ClinicalUseDefinition, CodeSystem, Basic, "
            "RegulatedAuthorization, ValueSet, Composition, Organization), not '" + "X" * 64 + "...'",
        ),
    ],
)
def test_filters_are_checked_against_the_topics_can_filter_by(
    topic_id: str, filters: list[tuple[str, str]], sentence: str | None
) -> None:
    assert check_filters(BASE + topic_id, filters) == sentence


def _change(rtype: str, rid: str, tier: str, owner: str, action: str, *safety: str) -> Change:
    return Change(rtype, rid, 2, tier, owner, action, frozenset(safety))


WITHDRAWN = _change("PackagedProductDefinition", "p1", "national", "dmp", "update", "withdrawn")
NOTICE = _change("Basic", "b1", "national", "dmp", "create", "slv-notice")
INGREDIENT = _change("Ingredient", "i1", "national", "dmp", "update")
GONE = _change("MedicinalProductDefinition", "m1", "national", "dmp", "delete", "expired")
NATIONAL = [GONE, NOTICE, INGREDIENT, WITHDRAWN]
SECTOR_PACKAGE = _change("PackagedProductDefinition", "s1", "sector", "helse-vest", "delete", "expired")
SUPPLEMENTARY = _change("Ingredient", "x1", "supplementary", "apotek1", "create")


def test_a_release_topic_has_an_event_for_each_release_of_its_line_only() -> None:
    national, sector = ("national", "dmp"), ("sector", "helse-vest")
    assert matching(BASE + "release-national", [], national, NATIONAL, ANONYMOUS) == NATIONAL
    assert matching(BASE + "release-national", [], national, [], ANONYMOUS) == []  # an event all the same
    assert matching(BASE + "release-national", [], sector, [SECTOR_PACKAGE], EVERYTHING) is None
    topic_url = BASE + "release-sector-helse-vest"
    assert matching(topic_url, [], sector, [SECTOR_PACKAGE], SECTOR_READER) == [SECTOR_PACKAGE]
    assert matching(topic_url, [], ("sector", "helse-nord"), [], EVERYTHING) is None
    # a subscriber who lost the line's scope hears nothing of it, not even that a release came
    assert matching(topic_url, [], sector, [SECTOR_PACKAGE], ANONYMOUS) is None
    assert matching(topic_url, [], sector, [], APOTEK1) is None


def test_resource_changed_gives_the_changes_its_filters_pass_that_the_subscriber_may_read() -> None:
    changed = BASE + "resource-changed"
    everything = [*NATIONAL, SECTOR_PACKAGE, SUPPLEMENTARY]  # as a test: lines are never mixed
    line = ("national", "dmp")
    assert matching(changed, [], line, everything, ANONYMOUS) == NATIONAL
    assert matching(changed, [], line, everything, APOTEK1) == [*NATIONAL, SUPPLEMENTARY]
    assert matching(changed, [], line, everything, EVERYTHING) == everything
    assert matching(changed, [("type", "Ingredient")], line, everything, APOTEK1) == [
        INGREDIENT,
        SUPPLEMENTARY,
    ]
    assert matching(
        changed, [("type", "Ingredient"), ("tier", "supplementary")], line, everything, APOTEK1
    ) == [SUPPLEMENTARY]
    # two filters of one name both hold: only values in both
    assert matching(
        changed, [("type", "Basic,Ingredient"), ("type", "Ingredient")], line, NATIONAL, ANONYMOUS
    ) == [INGREDIENT]
    # changes only of what the subscriber may not read are no event
    assert matching(changed, [("tier", "sector")], line, everything, ANONYMOUS) is None
    assert matching(changed, [("type", "CodeSystem")], line, everything, EVERYTHING) is None
    assert matching(changed, [], line, [], EVERYTHING) is None


def test_the_safety_topic_gives_the_safety_changes_of_the_kinds_and_types_asked() -> None:
    safety = BASE + "safety"
    line = ("national", "dmp")
    assert matching(safety, [], line, NATIONAL, ANONYMOUS) == [GONE, NOTICE, WITHDRAWN]
    assert matching(safety, [("kind", "withdrawn")], line, NATIONAL, ANONYMOUS) == [WITHDRAWN]
    assert matching(safety, [("kind", "slv-notice,expired")], line, NATIONAL, ANONYMOUS) == [GONE, NOTICE]
    assert matching(safety, [("type", "PackagedProductDefinition")], line, NATIONAL, ANONYMOUS) == [WITHDRAWN]
    assert matching(safety, [("kind", "interaction")], line, NATIONAL, ANONYMOUS) is None
    assert matching(safety, [], line, [INGREDIENT], EVERYTHING) is None
    sector = ("sector", "helse-vest")
    assert matching(safety, [("kind", "expired")], sector, [SECTOR_PACKAGE], ANONYMOUS) is None
    assert matching(safety, [("kind", "expired")], sector, [SECTOR_PACKAGE], SECTOR_READER) == [
        SECTOR_PACKAGE
    ]


def test_an_unknown_topic_matches_nothing() -> None:
    for unknown in ("changes", "release-", "release-nowhere-x", ""):
        assert matching(BASE + unknown, [], ("national", "dmp"), NATIONAL, EVERYTHING) is None


def test_the_not_modifier_leaves_out_the_changes_with_any_of_its_values() -> None:
    """canFilterBy declares the comparator eq and the modifier not for every filter; a `not`
    filter (kept as "<parameter>:not") passes the changes with none of its values, and holds
    beside the others."""
    changed, safety, line = BASE + "resource-changed", BASE + "safety", ("national", "dmp")
    everything = [*NATIONAL, SECTOR_PACKAGE, SUPPLEMENTARY]
    assert matching(changed, [("type:not", "Ingredient,Basic")], line, NATIONAL, ANONYMOUS) == [
        GONE,
        WITHDRAWN,
    ]
    assert matching(changed, [("tier:not", "national")], line, everything, EVERYTHING) == [
        SECTOR_PACKAGE,
        SUPPLEMENTARY,
    ]
    assert matching(
        changed,
        [("tier", "national"), ("type:not", "MedicinalProductDefinition")],
        line,
        everything,
        EVERYTHING,
    ) == [NOTICE, INGREDIENT, WITHDRAWN]
    assert (
        matching(changed, [("tier:not", "national,sector,supplementary")], line, everything, EVERYTHING)
        is None
    )
    assert matching(safety, [("kind:not", "expired,slv-notice")], line, NATIONAL, ANONYMOUS) == [WITHDRAWN]
    both = _change("PackagedProductDefinition", "p2", "national", "dmp", "delete", "expired", "withdrawn")
    assert matching(safety, [("kind:not", "expired")], line, [both], ANONYMOUS) == [both]  # withdrawn too
    assert matching(safety, [("kind:not", "expired,withdrawn")], line, [both], ANONYMOUS) is None
    assert check_filters(changed, [("type:not", "Basic")]) is None
    assert check_filters(changed, [("type:not", "Nothing")]) == (
        "the filter type takes a type this server serves (MedicinalProductDefinition, "
        "PackagedProductDefinition, ManufacturedItemDefinition, AdministrableProductDefinition, "
        "Ingredient, SubstanceDefinition, ClinicalUseDefinition, CodeSystem, Basic, "
        "RegulatedAuthorization, ValueSet, Composition, Organization), not 'Nothing'"
    )
    assert check_filters(changed, [("kind:not", "expired")]) == (
        f"the topic {changed} filters by type and tier, not by 'kind'"
    )
    for found in (topic("resource-changed", LINES, ANONYMOUS), topic("safety", LINES, ANONYMOUS)):
        assert found is not None
        assert [(f["comparator"], f["modifier"]) for f in found["canFilterBy"]] == [(["eq"], ["not"])] * 2
