"""Every SubscriptionTopic the server offers is valid R5: checked against the core package's
definitions, as what the store serves is."""

from __future__ import annotations

from grunndata.server.auth.access import EVERYTHING
from grunndata.server.subscriptions.topics import visible_topics
from grunndata.validation import Definitions, Report, Validator


def test_every_subscription_topic_is_valid_r5(r5: Definitions) -> None:
    lines = [("national", "dmp"), ("sector", "helse-vest"), ("supplementary", "a" + "b" * 62)]
    report = Report()
    validator = Validator(r5)
    for topic in visible_topics(lines, EVERYTHING):
        validator.validate(topic, "topics", report)
    assert [p.sentence() for p in report.problems] == []
    assert (report.resources, dict(report.not_checked)) == (5, {})
