"""Installing an npm package into the tests' cache, the way the browser tests get Chromium.

The cache is pytest's (.pytest_cache, kept between runs; a temp folder when the cache is off), so
the tests pay for npm only the first time. The test workers (pytest-xdist) share the cache: an
install runs `with installing(folder):`, so one worker installs while the others wait and then find
it there. Without node or npm, or without the registry, the tests skip with one line saying why,
except on CI (CI set), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

from tests.locks import installing

__all__ = ["cache_folder", "installing", "npm", "npm_install", "unavailable"]


def unavailable(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is a failure)")
    pytest.skip(message)


def cache_folder(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder kept between runs (pytest's cache), or a session temp folder when the cache is off."""
    cache = getattr(pytestconfig, "cache", None)
    return cache.mkdir(name) if cache is not None else tmp_path_factory.mktemp(name)


def npm(args: list[str], cwd: Path, what: str) -> None:
    """Run `npm ARGS` in `cwd` to get `what`; skip (fail on CI) with one line when it cannot."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        unavailable(f"node and npm are needed to install {what} and are not on PATH")
    shown = " ".join(["npm", *args[:2]])
    try:
        done = subprocess.run([npm, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        unavailable(f"{shown} took more than 300 s; is the npm registry reachable?")
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        unavailable(f"{shown} failed: {tail[0]}")


def npm_install(root: Path, spec: str, what: str) -> None:
    """`npm install SPEC` into `root` (its node_modules), no scripts run, no audit or funding asked."""
    npm(["install", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", str(root), spec], root, what)
