"""Our own FHIR package (`no.grunndata.fhir`): the definitions of what we serve, for vendors and validators."""

from grunndata.fhirpackage.archive import build_tgz, index, manifest
from grunndata.fhirpackage.content import CANONICAL, IMPLEMENTATION_GUIDE, NAME, package_resources
from grunndata.fhirpackage.extensions import ExtensionUse, extension_uses

__all__ = [
    "CANONICAL",
    "IMPLEMENTATION_GUIDE",
    "NAME",
    "ExtensionUse",
    "build_tgz",
    "extension_uses",
    "index",
    "manifest",
    "package_resources",
]
