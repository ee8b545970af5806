"""A release builder's memory does not grow with what it puts (issue 23 item 5): the version number of
each version it writes lives in a compact array, not a dict entry a resource, and what it loads of
the past is only what the served versions do not already say. The version numbers stay exactly as
before: a resource put twice in one release, or put, taken out and put again, counts up."""

from __future__ import annotations

import hashlib
from array import array
from pathlib import Path

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Engine

from grunndata.store import ReleaseBuilder, connect, rollback
from grunndata.store.models import REL, R

OWNER = "memtest"


def store(tmp_path: Path) -> Engine:
    return connect(f"sqlite:///{tmp_path / 'store.db'}")


def put(builder: ReleaseBuilder, rid: str, text: str) -> str:
    body = orjson.dumps({"resourceType": "Basic", "id": rid, "text": text})
    return builder.put("Basic", rid, body, hashlib.sha256(body).hexdigest())


def release(engine: Engine, contents: dict[str, str]) -> ReleaseBuilder:
    with ReleaseBuilder(engine, "sector", "full", "sector", OWNER, OWNER) as builder:
        for rid, text in contents.items():
            put(builder, rid, text)
        builder.finish(None, {})
    return builder


def versions(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(R.c.id, R.c.version).order_by(R.c.pk))]  # type: ignore[misc]


def test_a_first_release_keeps_its_version_numbers_in_an_array_not_a_dict_entry_a_resource(
    tmp_path: Path,
) -> None:
    engine = store(tmp_path)
    builder = release(engine, {f"r{n}": "a" for n in range(500)})
    assert builder._latest == {}
    assert isinstance(builder._new_versions, array)
    assert list(builder._new_versions) == [1] * 500
    assert versions(engine) == [(f"r{n}", 1) for n in range(500)]


def test_a_follow_up_loads_only_the_newest_versions_its_served_ones_do_not_give(tmp_path: Path) -> None:
    engine = store(tmp_path)
    release(engine, {"kept": "a", "changed": "a", "gone": "a"})
    release(engine, {"kept": "a", "changed": "b"})  # gone expires
    third = release(engine, {"kept": "a", "changed": "c", "gone": "back"})
    # only "gone" was not served by the release the third one followed: its newest version is 1
    assert third._latest == {("Basic", "gone"): 1}
    assert versions(engine) == [
        ("kept", 1),
        ("changed", 1),
        ("gone", 1),
        ("changed", 2),
        ("changed", 3),
        ("gone", 2),
    ]


def test_after_a_rollback_a_changed_resource_is_numbered_after_every_version_it_had(tmp_path: Path) -> None:
    engine = store(tmp_path)
    release(engine, {"x": "a"})
    release(engine, {"x": "b"})
    with engine.connect() as conn:
        first = conn.execute(select(REL.c.id).order_by(REL.c.id)).scalar()
    rollback(engine, first)  # the earlier bytes again, as version 3 (the history is append-only)
    builder = release(engine, {"x": "c"})
    assert builder._latest == {}  # the served version 3 is the newest: nothing more to load
    assert versions(engine) == [("x", 1), ("x", 2), ("x", 3), ("x", 4)]


def test_a_resource_put_twice_or_put_taken_out_and_put_again_in_one_release_counts_up(tmp_path: Path) -> None:
    engine = store(tmp_path)
    release(engine, {"x": "a", "y": "a"})
    with ReleaseBuilder(engine, "sector", "incremental", "sector", OWNER, OWNER) as builder:
        assert put(builder, "x", "b") == "changed"
        assert put(builder, "x", "c") == "changed"
        assert put(builder, "x", "a") == "unchanged"  # served at version 1 again
        assert put(builder, "x", "d") == "changed"
        assert put(builder, "y", "b") == "changed"
        assert builder.expire(("Basic", "y"))
        assert put(builder, "y", "c") == "changed"
        builder.finish(None, {})
    assert versions(engine) == [("x", 1), ("y", 1), ("x", 2), ("x", 3), ("x", 4), ("y", 2), ("y", 3)]
