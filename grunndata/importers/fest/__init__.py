"""FEST/M30 deliveries: a streaming reader and the importer that turns one into a release."""

from grunndata.importers.fest.importer import ImportResult, Warning, import_fest, resource_type
from grunndata.importers.fest.reader import EntryFacts, FestReader

__all__ = ["EntryFacts", "FestReader", "ImportResult", "Warning", "import_fest", "resource_type"]
