"""Deliveries written from the store for systems that still need the old formats (M30), and the
runner that writes each in a child process (runner.py)."""

from grunndata.errors import ExportError, ExportFailed
from grunndata.exporters.m30 import ExportResult, base_release, export_m30
from grunndata.exporters.ndjson import NdjsonResult, export_ndjson
from grunndata.exporters.runner import EXPORT_DIR, Exporter, export_folder

__all__ = [
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
