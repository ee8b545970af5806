"""`grunndata validate`: FHIR R5 resources checked against the R5 core definitions from a package cache;
and resources of any version checked against the differentials of the profiles they claim (profiles.py)."""

from grunndata.fhir import CORE_NAME, CORE_VERSION
from grunndata.validation.definitions import Definitions
from grunndata.validation.engine import Problem, Report, Validator
from grunndata.validation.packages import (
    PackageError,
    default_cache,
    fetch_with_npm,
    install_tgz,
    load_definitions,
    package_folder,
)
from grunndata.validation.profiles import ProfileValidator, read_folder, read_xml
from grunndata.validation.run import load_core, validate_files, validate_store

__all__ = [
    "CORE_NAME",
    "CORE_VERSION",
    "Definitions",
    "PackageError",
    "Problem",
    "ProfileValidator",
    "Report",
    "Validator",
    "default_cache",
    "fetch_with_npm",
    "install_tgz",
    "load_core",
    "load_definitions",
    "package_folder",
    "read_folder",
    "read_xml",
    "validate_files",
    "validate_store",
]
