"""The FHIR package cache: where the R5 core definitions live, how they get there, how they are read.

FHIR tools share one convention, `~/.fhir/packages/<name>#<version>/package/*.json`, so a cache one
tool filled serves the others. The folder is an argument here; the CLI decides it (`--packages`,
GRUNNDATA_FHIR_PACKAGES, or ~/.fhir/packages).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import orjson

from grunndata.errors import GrunndataError
from grunndata.fhir import CORE_NAME, CORE_VERSION

KINDS = ("StructureDefinition", "ValueSet", "CodeSystem")
"""The resource types the validator reads from a package; the rest (SearchParameter...) is left."""


class PackageError(GrunndataError):
    """The package cache is empty, unreadable, or could not be filled."""


def default_cache() -> Path:
    return Path.home() / ".fhir" / "packages"


def package_folder(cache: Path, name: str = CORE_NAME, version: str = CORE_VERSION) -> Path:
    """`<cache>/<name>#<version>/package`: the folder of a package's JSON files."""
    return cache / f"{name}#{version}" / "package"


def how_to_fill(cache: Path) -> str:
    return (
        f"the FHIR package cache {cache} holds no {CORE_NAME}#{CORE_VERSION}; fill it with "
        f"`grunndata validate --fetch --packages {cache}` (needs npm), or unpack the package.tgz of "
        f"`npm pack {CORE_NAME}@{CORE_VERSION}` into {package_folder(cache)}"
    )


def install_tgz(tgz: bytes, cache: Path, name: str = CORE_NAME, version: str = CORE_VERSION) -> Path:
    """Unpack an npm package.tgz into the cache; only its `package/` JSON files, nothing outside it."""
    target = package_folder(cache, name, version)
    staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=_made(cache)))
    try:
        with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
            members = [
                m
                for m in tar.getmembers()
                if m.isfile()
                and m.name.startswith("package/")
                and "/" not in m.name[8:]
                and ".." not in m.name
            ]
            if not any(m.name == "package/package.json" for m in members):
                raise PackageError(f"the archive of {name}@{version} holds no package/package.json")
            tar.extractall(staging, members=members, filter="data")
        if target.parent.exists():
            shutil.rmtree(target.parent)
        target.parent.mkdir(parents=True)
        (staging / "package").rename(target)
    except tarfile.TarError as e:
        raise PackageError(f"the archive of {name}@{version} is not a readable .tgz ({e})") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _made(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PackageError(f"cannot create the FHIR package cache {folder} ({e.strerror})") from e
    return folder


def fetch_with_npm(cache: Path, name: str = CORE_NAME, version: str = CORE_VERSION) -> Path:
    """`npm pack name@version` into a temporary folder, then installed into the cache."""
    npm = shutil.which("npm")
    if npm is None:
        raise PackageError(
            f"npm is not on PATH; it is needed to fetch {name}@{version} from the npm registry"
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run(
                [npm, "pack", f"{name}@{version}", "--silent"],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise PackageError(
                f"npm pack {name}@{version} took more than 600 s; is the registry reachable?"
            ) from e
        tgz = sorted(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tgz:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise PackageError(f"npm pack {name}@{version} failed: {tail[0]}")
        return install_tgz(tgz[0].read_bytes(), cache, name, version)


def load_definitions(cache: Path, name: str = CORE_NAME, version: str = CORE_VERSION) -> list[dict[str, Any]]:
    """Every StructureDefinition, ValueSet and CodeSystem of an installed package."""
    folder = package_folder(cache, name, version)
    if not (folder / "package.json").is_file():
        raise PackageError(how_to_fill(cache))
    found: list[dict[str, Any]] = []
    for file in sorted(folder.glob("*.json")):
        if not file.name.startswith(KINDS):
            continue
        try:
            resource = orjson.loads(file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as e:
            raise PackageError(f"{file} in the FHIR package cache is not readable JSON ({e})") from e
        if isinstance(resource, dict) and resource.get("resourceType") in KINDS:
            found.append(resource)
    return found
