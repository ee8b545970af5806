"""Our own FHIR package (`no.grunndata.fhir`): the definitions of what we serve, for vendors and validators."""

from grunndata.fhirpackage.archive import build_tgz, index, manifest
from grunndata.fhirpackage.capability import capability_statement
from grunndata.fhirpackage.content import package_resources
from grunndata.fhirpackage.extensions import ExtensionUse, extension_uses
from grunndata.fhirpackage.names import CANONICAL, IMPLEMENTATION_GUIDE, NAME

__all__ = [
    "CANONICAL",
    "IMPLEMENTATION_GUIDE",
    "NAME",
    "ExtensionUse",
    "build_tgz",
    "capability_statement",
    "extension_uses",
    "index",
    "manifest",
    "package_resources",
]
