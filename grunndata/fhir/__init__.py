"""Shared FHIR vocabulary, no I/O: what importers, translators and the server all mean by the same word."""

from grunndata.fhir.text import UNFIT_TEXT, unfit_character

__all__ = ["UNFIT_TEXT", "unfit_character"]
