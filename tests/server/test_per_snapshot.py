"""The per-snapshot builder (server/state.py PerSnapshot) that the terminology and search indexes share."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from grunndata.server.state import PerSnapshot, Served
from grunndata.store import Snapshot


@dataclass
class _FakeServed:
    served: Snapshot
    preparers: list[Any] = field(default_factory=list)
    forgetters: list[Any] = field(default_factory=list)

    def snapshot(self, entitled: object = None) -> Snapshot:
        return self.served


def _builder(release: threading.Event, made: list[int]) -> tuple[PerSnapshot[str], _FakeServed]:
    fake = _FakeServed(Snapshot((1,)))

    def make(snapshot: Snapshot) -> str:
        release.wait(10)
        made.append(1)
        return f"made for {snapshot.token}"

    return PerSnapshot(cast(Served, fake), "test-build", make), fake


def test_a_waiter_that_goes_away_cannot_cancel_the_build_others_wait_for(
    threading_excepthook: list[BaseException],
) -> None:
    release, made = threading.Event(), []
    builder, _ = _builder(release, made)
    first = builder.future(Snapshot((1,)))
    assert first.cancel() is False  # running from the start: the warm-up task at shutdown cancels
    second = builder.future(Snapshot((1,)))
    assert second is first  # one build shared
    release.set()
    assert second.result(timeout=10) == "made for 1"
    assert builder.built("1") == "made for 1"
    assert made == [1]
    assert threading_excepthook == []  # the build thread settled its future without an error


def test_a_failed_build_is_forgotten_and_tried_again() -> None:
    calls: list[int] = []

    def make(snapshot: Snapshot) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("the store is gone for a moment")
        return "second try"

    builder: PerSnapshot[str] = PerSnapshot(cast(Served, _FakeServed(Snapshot((1,)))), "test-build", make)
    with pytest.raises(OSError, match="gone for a moment"):
        builder.future(Snapshot((1,))).result(timeout=10)
    assert builder.built("1") is None
    assert builder.future(Snapshot((1,))).result(timeout=10) == "second try"
    assert calls == [1, 1]


def test_the_served_snapshot_and_the_newest_are_kept() -> None:
    fake = _FakeServed(Snapshot((1,)))
    builder: PerSnapshot[str] = PerSnapshot(cast(Served, fake), "test-build", lambda s: s.token)
    assert fake.preparers == [builder.prepare]
    for releases in ((1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)):
        builder.prepare(Snapshot(releases))
    # served: "1"; the KEEP (2) newest: "1-2-3"... whatever their tokens, the served one stays
    kept = [Snapshot(r).token for r in ((1,), (1, 2, 3), (1, 2, 3, 4))]
    assert [t for t in kept if builder.built(t) is not None] == kept
    assert builder.built(Snapshot((1, 2)).token) is None


def test_after_a_swap_the_values_made_before_the_served_one_are_dropped() -> None:
    """The snapshot served until now goes at once; one made since (a newer snapshot being prepared)
    stays, and a token never made changes nothing."""
    fake = _FakeServed(Snapshot((1,)))
    builder: PerSnapshot[str] = PerSnapshot(cast(Served, fake), "test-build", lambda s: s.token)
    assert fake.forgetters == [builder.forget]
    tokens = [Snapshot(r).token for r in ((1,), (1, 2), (1, 2, 3))]
    for releases in ((1,), (1, 2), (1, 2, 3)):
        builder.prepare(Snapshot(releases))
    builder.forget("no such snapshot")
    assert [builder.built(t) for t in tokens] == tokens[:1] + tokens[1:]
    builder.forget(tokens[1])
    assert [builder.built(t) for t in tokens] == [None, tokens[1], tokens[2]]


@pytest.fixture
def threading_excepthook(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    seen: list[BaseException] = []

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            seen.append(args.exc_value)

    monkeypatch.setattr(threading, "excepthook", hook)
    return seen
