"""Pausing Python's cycle collector while long jobs build many short-lived, acyclic objects.

Parsing or building a hundred thousand JSON trees makes the collector walk the growing heap over
and over: a full-size M30 export spent 40 % of its time there. JSON trees hold no cycles, so
reference counting frees them anyway; the collector runs again when the last job ends.

Not every object a long job makes is acyclic, though: a recursive nested function (a `walk`
closure that calls itself) is a cycle of function and cell, and holds what it collected. With the
collector paused for a whole import those were never freed (a full-size import kept the packaging
levels of every package that way). `collect_young` collects what was made since the last call
only, which costs milliseconds; long loops call it every so many items.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_holders = 0
_was_enabled = True


YOUNG_EVERY = 1000  # items between two `collect_young` calls in a long loop


def collect_young() -> None:
    """Free the cycles among the objects made since the last collection (the youngest two
    generations: not the whole heap, which is what pausing the collector saves)."""
    gc.collect(1)


@contextlib.contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """No cycle collection while any holder is inside; nests, and works across threads."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
