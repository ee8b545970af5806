"""The locks and pyproject.toml agree: a dependency added to one and not the other fails here.

requirements/test.lock holds runtime, test and build dependencies; requirements/runtime.lock the
runtime ones, at the same versions. Both are written by tools/lock, and the README's commands and
.ci/run install from them, so a new release on PyPI changes nothing until the locks are refreshed.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCKS = {"runtime": ROOT / "requirements" / "runtime.lock", "test": ROOT / "requirements" / "test.lock"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def _declared(which: str) -> list[Requirement]:
    """What pyproject.toml asks for: runtime, or runtime + test + the build backend."""
    wanted = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    wanted += [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    if which == "test":
        wanted += [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]]
    return wanted


def _locked(which: str) -> dict[str, tuple[str, Marker | None]]:
    """Every pin in a lock: name -> (version, marker), each with at least one hash."""
    pins: dict[str, tuple[str, Marker | None]] = {}
    lines = LOCKS[which].read_text().splitlines()
    for i, line in enumerate(lines):
        match = _PIN.match(line)
        if not match:
            continue
        assert i + 1 < len(lines) and "--hash=sha256:" in lines[i + 1], f"{line}: no hash"
        name, version, marker = match.groups()
        pins[canonicalize_name(name)] = (version, Marker(marker) if marker else None)
    assert pins, f"{LOCKS[which]} holds no pinned package"
    return pins


def _applies(marker: Marker | None, extras: set[str]) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({"extra": extra}) for extra in extras or {""})


def _closure(roots: list[Requirement]) -> set[str]:
    """The distributions these requirements pull in on this machine, extras followed."""
    names: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in roots if _applies(r.marker, set())]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        names.add(name)
        if not _is_installed(name):
            continue  # named, not installed: the comparison with the lock reports it
        for text in metadata.requires(name) or []:
            sub = Requirement(text)
            if _applies(sub.marker, set(extras)):
                todo.append((canonicalize_name(sub.name), frozenset(sub.extras)))
    return names


@pytest.mark.parametrize("which", ["runtime", "test"])
def test_every_declared_dependency_is_locked_at_a_version_it_accepts(which: str) -> None:
    pins = _locked(which)
    for req in _declared(which):
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} is in pyproject.toml but not in {LOCKS[which].name}: run tools/lock"
        version = pins[name][0]
        assert req.specifier.contains(version, prereleases=True), (
            f"{LOCKS[which].name} pins {name}=={version}, which pyproject.toml's {req} refuses: run tools/lock"
        )


@pytest.mark.parametrize("which", ["runtime", "test"])
def test_the_lock_holds_nothing_pyproject_does_not_pull_in(which: str) -> None:
    pins = _locked(which)
    for name, (version, _) in pins.items():
        installed = metadata.version(name) if _is_installed(name) else None
        if _applies(pins[name][1], set()):
            assert installed == version, (
                f"{name} {installed} is installed but the lock says {version}: install with the README's command"
            )
    needed = _closure(_declared(which))
    here = {name for name, (_, marker) in pins.items() if _applies(marker, set())}
    assert here - needed == set(), (
        f"locked but not needed by pyproject.toml: run tools/lock ({LOCKS[which].name})"
    )
    assert needed - here == set(), (
        f"needed by pyproject.toml but not locked: run tools/lock ({LOCKS[which].name})"
    )


def test_both_locks_name_the_same_version_of_what_they_share() -> None:
    runtime, test = _locked("runtime"), _locked("test")
    assert set(runtime) <= set(test)
    assert {n: v for n, (v, _) in runtime.items()} == {n: test[n][0] for n in runtime}


def _is_installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_ci_runs_the_readme_test_command_and_both_commands_install_from_the_locks() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if "pip install" in line]
    assert len(ci) == 1 and f"```sh\n{ci[0]}\n```" in readme, (
        ".ci/run no longer runs the README's test command"
    )
    assert "pip install -q -r requirements/test.lock &&" in ci[0]
    main_job = next(line for line in readme.splitlines() if "grunndata serve" in line and "venv" in line)
    assert ".venv/bin/pip install -q -r requirements/runtime.lock &&" in main_job
    assert "--no-deps" in main_job and "--no-deps" in ci[0]
