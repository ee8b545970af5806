"""The HTTP server: thin routes over the store (the FHIR R5 API grows here)."""

from grunndata.server.app import create_app

__all__ = ["create_app"]
