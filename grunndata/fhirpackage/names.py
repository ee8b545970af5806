"""The package's name and canonical URLs, which its content and the CapabilityStatement both give."""

NAME = "no.grunndata.fhir"
CANONICAL = "https://grunndata.no/fhir"
IMPLEMENTATION_GUIDE = f"{CANONICAL}/ImplementationGuide/{NAME}"
"""The package's canonical, as the CapabilityStatement's implementationGuide names it."""
