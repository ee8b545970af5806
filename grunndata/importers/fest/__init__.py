"""FEST/M30 deliveries: the importer that turns one into a release (the file is read by `grunndata.m30`)."""

from grunndata.importers.fest.importer import ImportResult, Warning, import_fest, resource_type

__all__ = ["ImportResult", "Warning", "import_fest", "resource_type"]
