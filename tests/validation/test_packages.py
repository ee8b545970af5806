"""The FHIR package cache: `--fetch` installs what `npm pack` gives into `<cache>/<name>#<version>/package`,
and an archive that is no FHIR package is one sentence, with nothing left half-installed."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from grunndata.validation import PackageError, install_tgz, load_definitions, package_folder
from tests.cli.test_bad_input import run_cli

CODE_SYSTEM = b'{"resourceType": "CodeSystem", "url": "http://example.org/cs", "content": "complete"}'


def _tgz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_fetch_installs_what_npm_pack_gives_into_the_cache(tmp_path: Path) -> None:
    """A stand-in npm on PATH writes the package.tgz `npm pack` would (no registry needed)."""
    archive = tmp_path / "hl7.fhir.r5.core-5.0.0.tgz"
    archive.write_bytes(
        _tgz(
            {
                "package/package.json": b'{"name": "hl7.fhir.r5.core"}',
                "package/CodeSystem-x.json": CODE_SYSTEM,
            }
        )
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(
        f'#!/bin/sh\n[ "$1" = pack ] && [ "$2" = hl7.fhir.r5.core@5.0.0 ] && cp {archive} .\n', "utf-8"
    )
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    cache = tmp_path / "packages"
    done = run_cli(
        "validate", "--fetch", "--packages", str(cache), env={"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"Installed hl7.fhir.r5.core 5.0.0 into {package_folder(cache)}.\n"
    assert sorted(p.name for p in package_folder(cache).iterdir()) == ["CodeSystem-x.json", "package.json"]
    assert load_definitions(cache) == [
        {"resourceType": "CodeSystem", "url": "http://example.org/cs", "content": "complete"}
    ]


@pytest.mark.parametrize(
    ("archive", "sentence"),
    [
        (b"not gzip", "the archive of hl7.fhir.r5.core@5.0.0 is not a readable .tgz (not a gzip file)"),
        (
            _tgz({"package/CodeSystem-x.json": CODE_SYSTEM}),
            "the archive of hl7.fhir.r5.core@5.0.0 holds no package/package.json",
        ),
    ],
    ids=["not an archive", "no package.json"],
)
def test_an_archive_that_is_no_fhir_package_is_refused(tmp_path: Path, archive: bytes, sentence: str) -> None:
    with pytest.raises(PackageError) as refused:
        install_tgz(archive, tmp_path)
    assert str(refused.value) == sentence
    assert list(tmp_path.iterdir()) == []
