"""Deliveries written from the store for systems that still need the old formats (M30)."""

from grunndata.exporters.m30 import ExportError, ExportResult, export_m30, write_m30

__all__ = ["ExportError", "ExportResult", "export_m30", "write_m30"]
