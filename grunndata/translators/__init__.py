"""Translators: pure functions between FEST records and IDMP resources (FHIR R5). No I/O."""
