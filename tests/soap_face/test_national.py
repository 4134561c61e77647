"""The real national connectors over SOAP: business registry (REST, generated WSDL), population DB (native)."""

import asyncio
import uuid
from pathlib import Path
from typing import Any

from connectors.business_registry.sandbox import SANDBOX_CREDENTIALS
from connectors.business_registry.sandbox import create_app as business_sandbox
from connectors.population_db.sandbox import create_app as population_sandbox
from hub.serving import serving
from tests.hub.harness import CLIENT, running_hub
from tests.soap_face.support import zeep_client

BUSINESS = "VN/GOV/000.00.00.G22/business/enterprise-lookup/v1"
POPULATION = "VN/GOV/000.00.00.G06/population/citizen-lookup/v1"


def _config(business_url: str, population_url: str, tmp_path: Path) -> dict[str, Any]:
    return {
        "broker": {"url": "embedded://", "namespace": f"t{uuid.uuid4().hex[:10]}"},
        "store": {"url": f"sqlite+aiosqlite:///{tmp_path}/h.db"},
        "gateway": {"request_timeout": 5.0},
        "members": {CLIENT: {"api_keys": ["test-key"]}},
        "connectors": {
            "business": {
                "type": "business_registry",
                "settings": {
                    "base_url": business_url,
                    "access_key": SANDBOX_CREDENTIALS["AccessKey"],
                    "secret_key": SANDBOX_CREDENTIALS["SecretKey"],
                    "app_name": SANDBOX_CREDENTIALS["AppName"],
                    "partner_code": SANDBOX_CREDENTIALS["PartnerCode"],
                    "partner_code_cus": SANDBOX_CREDENTIALS["PartnerCodeCus"],
                },
            },
            "population": {
                "type": "population_db",
                "settings": {
                    "endpoint": population_url,
                    "username": "lgsp-hub",
                    "secret": "sandbox-secret",
                    "api_key": "sandbox-api-key",
                    "x_road_client": "VN/GOV/000.00.00.H40/lgsp",
                    "public_service_code": "1.001001",
                    "officer_id": "001096001005",
                    "unit_code": "000.00.00.H40",
                    "account": "lgsp-hub",
                },
            },
        },
        "services": {BUSINESS: {"connector": "business"}, POPULATION: {"connector": "population"}},
        "acl": [{"client": CLIENT, "services": [BUSINESS, POPULATION]}],
    }


async def test_soap_face_serves_the_national_connectors_to_a_zeep_client(tmp_path: Path) -> None:
    # Given both national sandboxes and a hub in front of them
    business_app = business_sandbox(size=100)
    population_app = population_sandbox(population_size=100)
    async with (
        serving(business_app) as business,
        serving(population_app) as population,
        running_hub(_config(business.url, f"{population.url}/dancuquocgia", tmp_path)) as running,
    ):
        headers = running.headers()
        gateway = running.gateway.url
        # When a zeep client calls the business registry (REST/JSON) through the generated WSDL
        enterprise = business_app.state.registry.enterprise(0)
        client = await asyncio.to_thread(zeep_client, f"{gateway}/soap/{BUSINESS}?wsdl", headers)
        found = await asyncio.to_thread(client.service.EnterpriseLookup, enterprise_code=enterprise.code)
        # Then it gets the enterprise as typed XML
        assert (found.enterprise_code, found.name) == (enterprise.code, enterprise.name)

        # When a zeep client calls the population DB (native SOAP) through its vendored WSDL
        citizen = population_app.state.sandbox.population.citizen(0)
        client = await asyncio.to_thread(zeep_client, f"{gateway}/soap/{POPULATION}?wsdl", headers)
        answer = await asyncio.to_thread(
            client.service.TraCuuThongTinCongDan,
            MaYeuCau=uuid.uuid4().hex,
            MaDVC="1.001001",
            MaTichHop="037",
            MaCanBo="001096001005",
            MaDonVi="000.00.00.H40",
            TaiKhoan="lgsp-hub",
            SoDinhDanh=citizen.personal_id,
        )
        # Then the national answer comes back through the hub
        assert answer.SoDinhDanh == citizen.personal_id
