"""Locks across processes for what the tests install once and share: the suite runs in several
pytest-xdist worker processes, so one of them installs (npm packages, Debian's chromium) while the
others wait, then find it installed."""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

# apt installs for the whole machine, so its lock is the machine's too, not one checkout's
APT_LOCK = Path(tempfile.gettempdir()) / "grunndata-tests-apt.lock"


@contextmanager
def held(lock: Path) -> Iterator[None]:
    """The block runs holding an exclusive lock on the file `lock` (made when absent); another
    process asking for it waits until the block ends, or its process exits."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def installing(folder: Path) -> AbstractContextManager[None]:
    """The lock for installing into `folder`: a file beside it, `<folder>.lock`."""
    return held(folder.with_name(folder.name + ".lock"))
