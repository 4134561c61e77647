"""Declarative schema mappings: YAML specs compiled once, pure `apply`, code tables, transforms, XML.

Example:
    from mappings import shipped
    item = shipped("public_service_portal/dossier_to_dvcqg").apply(dossier)
"""

from mappings.codes import CodeTable, Unknown
from mappings.errors import MappingError, MappingsError, RegistryError, SpecError, TransformError
from mappings.examples import CaseResult, run_examples
from mappings.loader import SpecLoader, default_loader, discover_specs, load_spec, shipped, shipped_names
from mappings.spec import Spec
from mappings.transforms import ENTRY_POINT_GROUP, TransformRegistry
from mappings.xml import XmlTemplate, from_dict, to_dict

__all__ = [
    "ENTRY_POINT_GROUP",
    "CaseResult",
    "CodeTable",
    "MappingError",
    "MappingsError",
    "RegistryError",
    "Spec",
    "SpecError",
    "SpecLoader",
    "TransformError",
    "TransformRegistry",
    "Unknown",
    "XmlTemplate",
    "default_loader",
    "discover_specs",
    "from_dict",
    "load_spec",
    "run_examples",
    "shipped",
    "shipped_names",
    "to_dict",
]
