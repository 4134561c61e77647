"""National population DB (C06) connector, its sandbox and its synthetic population.

The connector is registered as ``population_db`` (entry point group ``lgsp_hub.connectors``), the
sandbox as ``population_db`` (``lgsp_hub.sandboxes``, ``sandbox:create_app``). The WSDL and XSD are
vendored beside this file (``PopulationDbConnector.wsdl_path``, ``.xsd_path``).
"""

from connectors.population_db.connector import (
    LOOKUP_OPERATION,
    VERIFY_OPERATION,
    PopulationDbConnector,
    PopulationDbSettings,
)

__all__ = ["LOOKUP_OPERATION", "VERIFY_OPERATION", "PopulationDbConnector", "PopulationDbSettings"]
