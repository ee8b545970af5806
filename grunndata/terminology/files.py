"""The reviewed ConceptMaps we publish, from FEST code systems to international ones.

The maps are files (conceptmaps/*.json, their sources in conceptmaps/SOURCES.md) so that a
terminologist can review and change them without touching code.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson

FOLDER = Path(__file__).parent / "conceptmaps"


@cache
def concept_map_files() -> tuple[dict[str, Any], ...]:
    """The ConceptMap resources in conceptmaps/, by file name."""
    return tuple(orjson.loads(p.read_bytes()) for p in sorted(FOLDER.glob("*.json")))
