"""The national business registry (REST/JSON via a provincial LGSP): connector, sandbox, synthetic data.

Example:
    connector = BusinessRegistryConnector.create(
        {"base_url": "http://127.0.0.1:8081", "access_key": "...", "secret_key": "...",
         "app_name": "lgsp-hub", "partner_code": "000.00.00.H40"},
        ConnectorContext(instance="business_registry", cache=MemoryCache()),
    )
"""

from connectors.business_registry.connector import (
    LOOKUP,
    SEARCH,
    BusinessRegistryConnector,
    BusinessRegistrySettings,
)
from connectors.business_registry.models import (
    BranchSummary,
    BusinessLine,
    Enterprise,
    EnterpriseLookupRequest,
    EnterpriseSearchRequest,
    EnterpriseSearchResult,
    EnterpriseSummary,
    LegalRepresentative,
    check_enterprise_code,
)

__all__ = [
    "LOOKUP",
    "SEARCH",
    "BranchSummary",
    "BusinessLine",
    "BusinessRegistryConnector",
    "BusinessRegistrySettings",
    "Enterprise",
    "EnterpriseLookupRequest",
    "EnterpriseSearchRequest",
    "EnterpriseSearchResult",
    "EnterpriseSummary",
    "LegalRepresentative",
    "check_enterprise_code",
]
