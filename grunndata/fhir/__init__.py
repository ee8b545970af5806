"""Shared FHIR vocabulary, no I/O: what importers, translators and the server all mean by the same word."""

from grunndata.fhir.text import MAX_STRING_CHARS, UNFIT_TEXT, unfit_character

__all__ = ["MAX_STRING_CHARS", "UNFIT_TEXT", "unfit_character"]
