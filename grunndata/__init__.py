"""Grunndata: Norwegian medicinal-product master data, from FEST/M30 and IDMP, served as FHIR R5."""

__version__ = "0.1.0"
