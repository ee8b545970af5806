"""Deliveries written from the store: M30 for systems that still need the old format, FHIR Bulk
Data ndjson (ndjson.py), and the runner that writes each in a child process (runner.py)."""

from grunndata.errors import ExportError, ExportFailed
from grunndata.exporters.m30 import ExportResult, base_release, export_m30
from grunndata.exporters.ndjson import (
    NDJSON,
    NdjsonResult,
    export_ndjson,
    export_types,
    job_folder,
    not_exported,
    since_instant,
)
from grunndata.exporters.runner import EXPORT_DIR, Exporter, export_folder

__all__ = [
    "NDJSON",
    "export_types",
    "job_folder",
    "not_exported",
    "since_instant",
    "EXPORT_DIR",
    "NdjsonResult",
    "export_ndjson",
    "ExportError",
    "ExportFailed",
    "ExportResult",
    "Exporter",
    "base_release",
    "export_folder",
    "export_m30",
]
