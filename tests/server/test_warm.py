"""A new release is made ready before clients ask: terminology indexes and the full M30 file.

Also: the export runs in a child process, and server processes sharing GRUNNDATA_M30_DIR write
each export once between them.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.importers.fest import import_fest
from grunndata.server import create_app
from grunndata.server.m30 import M30Files
from grunndata.server.state import Served
from grunndata.store import Snapshot
from tests.conftest import REAL_FEST, REAL_HENTET_DATO, require
from tests.server.conftest import write_followup


def _wait_for(check, seconds: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not ready in time"
        time.sleep(0.1)


def _m30_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("m30-*.xml.gz"))


def test_a_new_snapshot_is_made_ready_without_a_request(engine: Engine, tmp_path: Path) -> None:
    import_fest(engine, require(REAL_FEST))
    app = create_app(engine, warm=True)
    folder: Path = app.state.m30.folder
    with TestClient(app) as client:
        _wait_for(lambda: _m30_files(folder) == ["m30-1-full.xml.gz"])
        _wait_for(lambda: app.state.terminology.current() is not None)
        assert app.state.terminology.current().token == "1"
        made = (folder / "m30-1-full.xml.gz").stat().st_mtime_ns
        text = gzip.decompress((folder / "m30-1-full.xml.gz").read_bytes()).decode()
        assert f"<HentetDato>{REAL_HENTET_DATO}</HentetDato>" in text

        # the first client gets the file made before it asked, not a new one
        r = client.get("/fest/m30", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and r.headers["etag"] == '"m30-1-full"'
        assert (folder / "m30-1-full.xml.gz").stat().st_mtime_ns == made

        # a new release: made ready too, the old file removed
        followup, _ = write_followup(tmp_path, "Certican Disperg tab 0,1 mg (ny)")
        import_fest(engine, followup)
        _wait_for(lambda: _m30_files(folder) == ["m30-2-full.xml.gz"])
        _wait_for(lambda: app.state.terminology.current() is not None)
        assert app.state.terminology.current().token == "2"
        new = gzip.decompress((folder / "m30-2-full.xml.gz").read_bytes()).decode()
        assert "Certican Disperg tab 0,1 mg (ny)" in new and "Certican Disperg tab 0,1 mg (ny)" not in text


def test_without_warming_nothing_is_made_until_asked(engine: Engine) -> None:
    import_fest(engine, require(REAL_FEST))
    app = create_app(engine, warm=False)
    folder: Path = app.state.m30.folder
    with TestClient(app) as client:
        time.sleep(1.5)  # longer than a snapshot check
        assert _m30_files(folder) == [] and app.state.terminology.current() is None
        assert client.get("/fest/m30").status_code == 200
        assert _m30_files(folder) == ["m30-1-full.xml.gz"]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_processes_sharing_a_folder_write_each_export_once(engine: Engine, tmp_path: Path) -> None:
    """Two servers' M30Files over one folder, asked at once: one writes, the other waits and sends it."""
    import_fest(engine, require(REAL_FEST))
    shared = tmp_path / "m30"
    shared.mkdir()
    first, second = (M30Files(Served(engine), shared) for _ in range(2))
    writes: list[str] = []

    def counting(files: M30Files) -> None:
        real = files.exporter.write

        async def write(path: Path, snapshot: Snapshot, since: str | None) -> None:
            writes.append(path.name)
            await asyncio.sleep(0.5)  # long enough for the other to reach the lock
            await real(path, snapshot, since)

        files.exporter.write = write  # type: ignore[method-assign]

    counting(first)
    counting(second)

    async def both() -> list[Path]:
        return list(
            await asyncio.gather(first.file(first.key(None), None), second.file(second.key(None), None))
        )

    paths = asyncio.run(both())
    assert paths == [shared / "m30-1-full.xml.gz"] * 2
    assert writes == ["m30-1-full.xml.gz"]
    assert sorted(p.name for p in shared.iterdir()) == ["m30-1-full.lock", "m30-1-full.xml.gz"]


def test_a_folder_that_cannot_be_made_is_one_sentence(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("GRUNNDATA_M30_DIR", str(tmp_path / "file" / "m30"))
    from grunndata.errors import ExportError

    with pytest.raises(
        ExportError, match=r"^GRUNNDATA_M30_DIR=.*/file/m30: cannot make the folder \(Not a directory\)$"
    ):
        create_app(engine)


def test_a_shared_folder_others_may_write_is_refused(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grunndata.errors import ExportError

    shared = tmp_path / "m30"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv("GRUNNDATA_M30_DIR", str(shared))
    with pytest.raises(
        ExportError,
        match=r"the folder must belong to this user and be writable by no one else \(it is mode 777, ",
    ):
        create_app(engine)
    shared.chmod(0o700)
    assert create_app(engine).state.m30.shared is True


def test_the_old_snapshot_is_served_whole_until_the_new_one_is_prepared(
    engine: Engine, tmp_path: Path
) -> None:
    import threading

    import_fest(engine, require(REAL_FEST))
    served = Served(engine, snapshot_seconds=0.0)
    release = threading.Event()
    seen: list[str] = []

    def slow(snapshot: Snapshot) -> None:
        seen.append(snapshot.token)
        release.wait(30)

    served.preparers.append(slow)
    assert served.snapshot().token == "1"  # the first snapshot is served at once, unprepared
    followup, _ = write_followup(tmp_path, "Certican Disperg tab 0,1 mg (ny)")
    import_fest(engine, followup)
    assert served.snapshot().token == "1"  # preparing 2 has begun
    _wait_for(lambda: seen == ["2"], 10)
    time.sleep(0.3)
    assert served.snapshot().token == "1"  # still: 2 is not prepared
    release.set()
    _wait_for(lambda: served.snapshot().token == "2", 10)
    assert seen == ["2"]  # prepared once, however often it was looked for


def test_a_failed_preparation_is_logged_and_the_snapshot_served(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import_fest(engine, require(REAL_FEST))
    served = Served(engine, snapshot_seconds=0.0)

    def broken(snapshot: Snapshot) -> None:
        raise RuntimeError("the store went away")

    served.preparers.append(broken)
    assert served.snapshot().token == "1"
    followup, _ = write_followup(tmp_path, "Certican Disperg tab 0,1 mg (ny)")
    import_fest(engine, followup)
    _wait_for(lambda: served.snapshot().token == "2", 10)
    assert "could not prepare snapshot 2" in caplog.text


def test_a_failed_terminology_build_fails_its_waiters_and_the_next_one_tries_again(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grunndata.server.terminology import Terminology

    import_fest(engine, require(REAL_FEST))
    terms = Terminology(Served(engine))
    real = Terminology._build_paced
    calls: list[str] = []

    def flaky(self: Terminology, snapshot: Snapshot):  # type: ignore[no-untyped-def]
        calls.append(snapshot.token)
        if len(calls) == 1:
            raise RuntimeError("the store went away")
        return real(self, snapshot)

    monkeypatch.setattr(Terminology, "_build_paced", flaky)
    with pytest.raises(RuntimeError, match="the store went away"):
        asyncio.run(terms.ready())
    assert asyncio.run(terms.ready()).token == "1" and calls == ["1", "1"]
