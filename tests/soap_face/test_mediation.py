"""SOAP client → hub → REST/JSON backend, end to end: a real zeep client on the hub's generated WSDL."""

import asyncio
import datetime as dt
from pathlib import Path

import pytest
import zeep.exceptions

from tests.hub.harness import running_hub
from tests.soap_face.support import (
    PEOPLE,
    config,
    registry,
    running_backends,
    zeep_client,
)


async def test_soap_face_zeep_calls_a_rest_service_through_its_generated_wsdl(
    broker_url: str, tmp_path: Path
) -> None:
    # Given a hub on this broker whose person-lookup service is a JSON backend with pydantic models
    async with (
        running_backends() as backends,
        running_hub(
            config(backends, broker_url=broker_url, store_url=f"sqlite+aiosqlite:///{tmp_path}/h.db"),
            registry=registry(),
        ) as running,
    ):
        wsdl_url = f"{running.gateway.url}/soap/{PEOPLE}?wsdl"
        # When a provincial system's zeep client loads the hub's WSDL and calls the operation
        client = await asyncio.to_thread(zeep_client, wsdl_url, running.headers(**{"X-Road-Id": "soap-1"}))
        person = await asyncio.to_thread(
            client.service.PersonLookup, personal_id="001096001005", include_addresses=True
        )

        # Then the backend got validated JSON and zeep got typed values back
        call = backends.json_calls[-1]
        assert call["headers"]["content-type"] == "application/json"
        assert call["body"] == {"personal_id": "001096001005", "include_addresses": True}
        assert "x-api-key" not in call["headers"]
        assert person.full_name == "Nguyễn Văn An"
        assert person.birth_date == dt.date(1996, 5, 1)
        assert person.updated_at == dt.datetime(2024, 3, 1, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=7)))
        assert (person.height_m, person.children, person.verified) == (1.72, 2, True)
        assert (person.status, person.favourite) == ("alive", "green")
        assert person.address.street == "1 Tràng Tiền" and person.address.postcode is None
        assert [a.street for a in person.previous] == ["2 Hàng Bài", "3 Lý Thái Tổ"]
        assert person.nicknames == []

        # And a value the request model refuses is a Client fault naming the field, never sent on
        with pytest.raises(zeep.exceptions.Fault) as refused:
            await asyncio.to_thread(client.service.PersonLookup, personal_id="12345")
        assert refused.value.code == "SOAP-ENV:Client.InvalidRequest"
        assert "personal_id" in refused.value.message
        assert refused.value.detail.findtext("{urn:lgsp-hub:soap-face:fault}field") == "personal_id"
        assert len(backends.json_calls) == 1

        # And the backend's 404 comes back as a typed Server fault
        with pytest.raises(zeep.exceptions.Fault) as missing:
            await asyncio.to_thread(client.service.PersonLookup, personal_id="000000000404")
        assert missing.value.code == "SOAP-ENV:Server.ServerProxy.NotFound"
        assert missing.value.message == "no such person"

        # And each exchange is recorded like a REST one
        await running.hub.exchange_log.flush()
        records = await running.hub.store.exchanges(limit=20)
        ok = next(r for r in records if r["message_id"] == "soap-1" and r["status"] == 200)
        assert ok["service"] == PEOPLE and ok["operation"] == "person-lookup" and ok["method"] == "POST"
        assert {r["error_type"] for r in records} >= {"Client.InvalidRequest", "Server.ServerProxy.NotFound"}
        metrics = (await running.http.get("/metrics")).text
        assert f'lgsp_errors_total{{service="{PEOPLE}",type="Client.InvalidRequest"}} 1.0' in metrics
