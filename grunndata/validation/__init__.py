"""`grunndata validate`: FHIR R5 resources checked against the R5 core definitions from a package cache."""

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
from grunndata.validation.run import load_core, validate_files, validate_store

__all__ = [
    "CORE_NAME",
    "CORE_VERSION",
    "Definitions",
    "PackageError",
    "Problem",
    "Report",
    "Validator",
    "default_cache",
    "fetch_with_npm",
    "install_tgz",
    "load_core",
    "load_definitions",
    "package_folder",
    "validate_files",
    "validate_store",
]
