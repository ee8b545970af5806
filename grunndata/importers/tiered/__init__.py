"""Sector and supplementary data: each owner's FHIR resources or CSV rows, keyed on the national ids.

`import_tiered` reads a Bundle, ndjson, a single resource or a CSV (one row, one Basic), checks it
against what the national tier serves, and serves it as a new release of the owner's line.
"""

from grunndata.importers.tiered.csvrows import TIERED_DATA_SYSTEM, extension_url
from grunndata.importers.tiered.importer import TIERS, TieredResult, import_tiered
from grunndata.importers.tiered.keys import CODE_COLUMNS, KEY_COLUMNS, NATIONAL_IDS
from grunndata.importers.tiered.problems import Place, Problem, TieredDeliveryError

__all__ = [
    "CODE_COLUMNS",
    "KEY_COLUMNS",
    "NATIONAL_IDS",
    "TIERED_DATA_SYSTEM",
    "TIERS",
    "Place",
    "Problem",
    "TieredDeliveryError",
    "TieredResult",
    "extension_url",
    "import_tiered",
]
