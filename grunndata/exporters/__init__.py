"""Deliveries written from the store for systems that still need the old formats (M30)."""

from grunndata.errors import ExportError
from grunndata.exporters.m30 import ExportResult, base_release, export_m30

__all__ = ["ExportError", "ExportResult", "base_release", "export_m30"]
