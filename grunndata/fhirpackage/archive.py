"""The npm-style package.tgz FHIR tools read: `package/package.json`, `package/.index.json`, one file
per resource. Reproducible: the same code gives the same bytes (sorted entries, fixed tar headers,
gzip without a time or a file name)."""

from __future__ import annotations

import gzip
import io
import tarfile
from typing import Any

import orjson

from grunndata import __version__
from grunndata.fhir import CORE_NAME, CORE_VERSION
from grunndata.fhirpackage.content import package_resources
from grunndata.fhirpackage.names import CANONICAL, NAME

Json = dict[str, Any]


def file_name(resource: Json) -> str:
    return f"{resource['resourceType']}-{resource['id']}.json"


def manifest() -> Json:
    return {
        "name": NAME,
        "version": __version__,
        "description": "Grunndata's own FHIR R5 definitions: the extensions, search parameters, naming "
        "systems and code systems of the resources it serves, and its CapabilityStatement",
        "canonical": CANONICAL,
        "url": CANONICAL,
        "fhirVersions": ["5.0.0"],
        "dependencies": {CORE_NAME: CORE_VERSION},
        "type": "fhir.ig",
        "license": "CC0-1.0",
    }


def index(resources: list[Json]) -> Json:
    """`.index.json` (index-version 2): what FHIR tools read instead of opening every file."""
    files = []
    for r in resources:
        entry: Json = {"filename": file_name(r), "resourceType": r["resourceType"], "id": r["id"]}
        for key in ("url", "version", "kind", "type"):
            if isinstance(r.get(key), str):
                entry[key] = r[key]
        if r["resourceType"] == "StructureDefinition":
            entry["derivation"] = r["derivation"]
        files.append(entry)
    return {"index-version": 2, "files": sorted(files, key=lambda f: f["filename"])}


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def build_tgz() -> bytes:
    """The package as .tgz bytes."""
    resources = package_resources()
    files = {f"package/{file_name(r)}": _json(r) for r in resources}
    if len(files) != len(resources):
        raise ValueError("two resources of the package have the same type and id")
    files["package/package.json"] = _json(manifest())
    files["package/.index.json"] = _json(index(resources))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()
