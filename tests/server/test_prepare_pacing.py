"""A release switch nobody notices (issue 23, item 4): the server builds a new snapshot's indexes
in a thread beside the ones answering requests, paced to GRUNNDATA_PREPARE_SHARE of the wall time
(server/state.py Pace), the indexes the same as unpaced; once the new snapshot is served, the old
one's indexes are let go."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.importers.fest import import_fest
from grunndata.server import create_app
from grunndata.server.auth import ANONYMOUS
from grunndata.server.state import Pace, Served
from grunndata.server.terminology import Terminology
from grunndata.settings import Settings, SettingsError
from grunndata.store import SearchIndex
from tests.conftest import REAL_FEST, require
from tests.server.conftest import CERTICAN_PACKAGE, write_followup

PPD = "PackagedProductDefinition"


class _Clock:
    """A clock that moves `step` seconds each time it is read: a build of known speed."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_paced_build_sleeps_for_its_share_after_each_slice_of_work() -> None:
    """At a quarter, each millisecond of work is followed by three of sleep; the clock is read every
    CHECK calls only."""
    slept: list[float] = []
    pace = Pace(0.25, sleep=slept.append, clock=_Clock(0.0004))
    for _ in range(16 * 6):  # six looks at the clock, 0.4 ms apart
        pace()
    # looks 1-2: 0.8 ms, no pause; look 3 at 1.2 ms: pause; the clock read after it starts anew
    assert slept == pytest.approx([0.0012 * 3, 0.0012 * 3])
    assert (pace.calls, pace.pauses) == (96, 2)
    assert pace.slept == pytest.approx(0.0072)


def test_at_share_one_a_build_never_sleeps() -> None:
    slept: list[float] = []
    pace = Pace(1.0, sleep=slept.append, clock=_Clock(1.0))
    for _ in range(1000):
        pace()
    assert slept == [] and pace.calls == 0


@pytest.mark.parametrize("share", [0.0, -0.5, 1.01, float("nan"), float("inf")])
def test_a_share_out_of_bounds_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="more than 0 and at most 1"):
        Pace(share)


@pytest.mark.parametrize("value", ["0", "1.5", "half", "nan", "0.01", "1e-9"])
def test_the_setting_refuses_a_bad_share_with_one_sentence(value: str) -> None:
    """A share near 0 is refused too: at 1e-9 the build slept ~1e6 s after each millisecond of work
    and the server never served a new release (probe h10), while /health named it active."""
    with pytest.raises(SettingsError) as caught:
        Settings.load({"GRUNNDATA_PREPARE_SHARE": value})
    assert str(caught.value) == f"GRUNNDATA_PREPARE_SHARE must be a number from 0.05 to 1, not {value!r}"


def test_the_server_paces_its_builds_at_the_share_set(engine: Engine) -> None:
    assert Settings.load({}).prepare_share == 0.5
    app: Any = create_app(engine, warm=False, settings=Settings.load({"GRUNNDATA_PREPARE_SHARE": "0.2"}))
    pace = app.state.served.pace()
    assert isinstance(pace, Pace) and pace.share == 0.2


class _Counting:
    """A pause that counts its calls and sleeps at none."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def _fields(index: SearchIndex) -> tuple[Any, ...]:
    return (index.snapshot, index.dialect, index.types, index.params)


def test_the_search_index_built_with_pauses_is_the_one_built_without(engine: Engine) -> None:
    import_fest(engine, require(REAL_FEST))
    served = Served(engine)
    snapshot = served.snapshot(ANONYMOUS)
    counting = _Counting()
    with engine.connect() as conn:
        plain = SearchIndex.build(conn, snapshot)
        paced = SearchIndex.build(conn, snapshot, pause=counting)
        slowly = SearchIndex.build(conn, snapshot, pause=Pace(0.5))
    assert _fields(paced) == _fields(plain) and _fields(slowly) == _fields(plain)
    # a call per served row, per indexed row and per string value (twice) and its trigrams' pass
    rows = sum(len(t.pks) for t in plain.types.values())
    assert counting.calls > rows
    assert len(plain.types["PackagedProductDefinition"].pks) == 107  # the real extract's packages


def test_the_terminology_indexes_built_paced_are_the_ones_built_unpaced(engine: Engine) -> None:
    import_fest(engine, require(REAL_FEST))
    counted = _Counting()
    unpaced, paced = Served(engine, prepare_share=1.0), Served(engine)
    unpaced.pace = lambda: counted  # type: ignore[method-assign]
    public = unpaced.snapshot(ANONYMOUS)
    first = Terminology(unpaced)._build(public)
    second = Terminology(paced)._build(public)
    assert counted.calls > 1000  # every id map row and element
    assert first.map_bytes == second.map_bytes
    # each map's JSON dumped element by element is orjson's dump of the whole, byte for byte
    assert first.map_bytes == {m["id"]: orjson.dumps(m) for m in first.maps.maps}
    assert len(first.map_bytes) == 8  # every map the real extract's snapshot serves
    assert first.maps.maps == second.maps.maps


def test_once_a_new_snapshot_is_served_the_old_one_s_indexes_are_let_go(
    engine: Engine, tmp_path: Path
) -> None:
    import_fest(engine, require(REAL_FEST))
    followup, _ = write_followup(tmp_path, "Certican Nyttnavn tab")
    app: Any = create_app(engine, warm=False)
    with TestClient(app) as client:
        served, indexes = app.state.served, app.state.search_indexes
        old = served.snapshot(ANONYMOUS)
        indexes.future(old).result(timeout=120)
        assert client.get("/fhir/ConceptMap").status_code == 200  # the terminology indexes, built
        terminology = next(p.__self__ for p in served.preparers if p.__self__.name == "terminology")
        assert indexes.built(old.token) is not None and terminology.built(old.token) is not None
        import_fest(engine, followup)
        served.serve_newest()  # prepared (both indexes), swapped in, the old ones dropped
        new = served.snapshot(ANONYMOUS)
        assert new != old
        assert indexes.built(new.token) is not None and terminology.built(new.token) is not None
        assert indexes.built(old.token) is None and terminology.built(old.token) is None


def test_reads_the_new_snapshot_serves_unchanged_stay_cached_across_the_switch(
    engine: Engine, tmp_path: Path
) -> None:
    """The follow-up renames the Certican package and drops another: once it is served, every other
    package read before is still in the read cache (the same prepared answer, no store read), the
    renamed and the dropped ones are not, and reading them gives the new release's answers."""
    import_fest(engine, require(REAL_FEST))
    followup, dropped = write_followup(tmp_path, "Certican Nyttnavn tab")
    gone = dropped.removeprefix("ID_")
    app: Any = create_app(engine, warm=False)
    with TestClient(app) as client:
        served = app.state.served
        ids = [e["resource"]["id"] for e in client.get(f"/fhir/{PPD}?_count=200").json()["entry"]]
        assert len(ids) == 107 and CERTICAN_PACKAGE in ids and gone in ids
        for rid in ids:
            assert client.get(f"/fhir/{PPD}/{rid}").status_code == 200
        before = dict(served._reads)
        assert {(PPD, rid) for rid in ids} <= set(before)
        import_fest(engine, followup)
        served.serve_newest()
        after = served._reads
        unchanged = {(PPD, rid) for rid in ids} - {(PPD, CERTICAN_PACKAGE), (PPD, gone)}
        assert set(after) == {k for k in before if k not in {(PPD, CERTICAN_PACKAGE), (PPD, gone)}}
        assert all(after[k] is before[k] for k in unchanged)
        assert client.get(f"/fhir/{PPD}/{gone}").status_code == 410  # expired
        renamed = client.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}").json()
        assert renamed["name"] == "Certican Nyttnavn tab"
