"""FHIR on the wire: search parameters parsed (`params.py`), the searchset and history Bundles and
`_summary`/`_elements` (`bundles.py`), formats, errors and sending (`responses.py`), JSON to XML
(`fhirxml.py`), the CapabilityStatement (`capability.py`) and the OpenAPI description (`openapi.py`)."""
