"""`grunndata package build`: the package a vendor downloads is the same bytes for the same code, and
FHIR tools find every resource in it through its index."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from grunndata import __version__
from grunndata.cli import app
from grunndata.fhirpackage import NAME, build_tgz, package_resources
from grunndata.validation import install_tgz, load_definitions


def _files(tgz: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def test_the_package_builds_twice_to_the_same_bytes_with_nothing_of_the_time_or_the_machine_in_it() -> None:
    first, second = build_tgz(), build_tgz()
    assert first == second
    assert first[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert gzip.decompress(first)  # and no file name in the header: flags byte 0
    assert first[3] == 0
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o644)}
    assert all(m.name.startswith("package/") and m.isfile() for m in members)


def test_package_json_names_the_package_its_fhir_version_and_the_r5_core_it_builds_on() -> None:
    manifest = orjson.loads(_files(build_tgz())["package/package.json"])
    assert manifest["name"] == "no.grunndata.fhir"
    assert manifest["version"] == __version__
    assert manifest["fhirVersions"] == ["5.0.0"]
    assert manifest["dependencies"] == {"hl7.fhir.r5.core": "5.0.0"}


def test_the_index_lists_every_resource_file_with_its_type_id_and_url() -> None:
    files = _files(build_tgz())
    listed = orjson.loads(files["package/.index.json"])["files"]
    resources = {n.removeprefix("package/"): orjson.loads(b) for n, b in files.items()}
    del resources["package.json"], resources[".index.json"]
    assert sorted(f["filename"] for f in listed) == sorted(resources)
    for entry in listed:
        resource: dict[str, Any] = resources[entry["filename"]]
        assert entry["resourceType"] == resource["resourceType"]
        assert entry["id"] == resource["id"]
        assert entry.get("url") == resource.get("url")
        assert entry.get("version") == resource.get("version")
    kinds = sorted({f["resourceType"] for f in listed})
    assert kinds == [
        "CapabilityStatement",
        "CodeSystem",
        "ImplementationGuide",
        "NamingSystem",
        "SearchParameter",
        "StructureDefinition",
    ]


def test_the_command_writes_the_package_where_asked(tmp_path: Path) -> None:
    target = tmp_path / "out.tgz"
    result = CliRunner().invoke(app, ["package", "build", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == build_tgz()
    assert "no.grunndata.fhir" in result.output


def test_the_package_installs_into_a_fhir_package_cache_as_fhir_tools_lay_it_out(tmp_path: Path) -> None:
    folder = install_tgz(build_tgz(), tmp_path, NAME, __version__)
    assert folder == tmp_path / f"no.grunndata.fhir#{__version__}" / "package"
    read = load_definitions(tmp_path, NAME, __version__)
    made = [r for r in package_resources() if r["resourceType"] in ("StructureDefinition", "CodeSystem")]
    assert sorted(r["url"] for r in read) == sorted(r["url"] for r in made)
