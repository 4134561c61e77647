"""The population services through the real gateway: REST r1 and the SOAP face, the sandbox as a real server."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import zeep
import zeep.exceptions

from connectors.population_db._soap import LIMITS, NS, body_payload, read_fault
from connectors.population_db.data import Citizen
from connectors.population_db.demo import unknown_id
from connectors.population_db.hub_config import LOOKUP_SERVICE, VERIFY_SERVICE, population_fragment
from signing import parse_xml
from tests.conftest import free_port, unique_namespace
from tests.connectors.population_db.conftest import RunningSandbox, StartSandbox, national_envelope
from tests.hub.harness import CLIENT, KEY, RunningHub, running_hub

LOOKUP_PATH = f"/r1/{LOOKUP_SERVICE}"
VERIFY_PATH = f"/r1/{VERIFY_SERVICE}"
SOAP_XML = "text/xml; charset=utf-8"


def population_hub_config(
    endpoint: str,
    sandbox: RunningSandbox | None,
    *,
    broker_url: str,
    tmp_path: Path,
    **connector: Any,
) -> dict[str, Any]:
    """A hub whose only services are the population ones, granted to the test client."""
    fragment = population_fragment(
        endpoint, options=sandbox.sandbox.options if sandbox else None, **connector
    )
    return {
        "broker": {"url": broker_url, "namespace": unique_namespace()},
        "store": {"url": f"sqlite+aiosqlite:///{tmp_path}/hub.sqlite3"},
        "gateway": {"request_timeout": 5.0},
        "members": {CLIENT: {"api_keys": [KEY]}},
        "connectors": fragment["connectors"],
        "services": fragment["services"],
        "acl": [{"client": CLIENT, "services": fragment["allowed"]}],
    }


@contextlib.asynccontextmanager
async def hub_before(
    sandbox: RunningSandbox, tmp_path: Path, *, broker_url: str = "embedded://", **connector: Any
) -> AsyncIterator[RunningHub]:
    config = population_hub_config(
        sandbox.url, sandbox, broker_url=broker_url, tmp_path=tmp_path, **connector
    )
    async with running_hub(config) as running:
        yield running


def error_of(response: httpx.Response) -> tuple[int, str, Any]:
    body = response.json()
    assert response.headers["x-road-error"] == body["type"]
    return response.status_code, body["type"], body["detail"]


def identity(citizen: Citizen, **change: str) -> dict[str, str]:
    return {
        "personal_id": citizen.personal_id,
        "full_name": citizen.full_name,
        "birth_date": citizen.birth_date.isoformat(),
        **change,
    }


async def test_population_through_hub_looks_up_and_verifies_citizens_on_each_broker(
    broker_url: str, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    # Given the sandbox and a hub on this broker in front of it
    sandbox = await start_sandbox()
    population = sandbox.sandbox.population
    child = population.citizen(7)
    async with hub_before(sandbox, tmp_path, broker_url=broker_url) as running:
        http, headers = running.http, running.headers()
        # When a member looks a citizen up by id
        found = await http.post(LOOKUP_PATH, json={"personal_id": child.personal_id}, headers=headers)
        # Then it gets the canonical record, parents linked, with the X-Road headers
        assert found.status_code == 200, found.text
        record = found.json()
        assert (record["personal_id"], record["full_name"]) == (child.personal_id, child.full_name)
        assert record["birth_date"] == child.birth_date.isoformat()
        assert child.father is not None and record["father"]["personal_id"] == child.father.personal_id
        assert found.headers["x-road-service"] == LOOKUP_SERVICE

        # When it looks up a well-formed id nobody has
        missing = await http.post(
            LOOKUP_PATH, json={"personal_id": unknown_id(population, child)}, headers=headers
        )
        # Then the national "not found" is a 404 naming the national code
        status, kind, detail = error_of(missing)
        assert (status, kind) == (404, "Server.ServerProxy.NotFound")
        assert detail["detail"]["code"] == "KHONG_TIM_THAY"

        # When it verifies the citizen's true identity, then another name
        matching = await http.post(VERIFY_PATH, json=identity(child), headers=headers)
        other = await http.post(
            VERIFY_PATH, json=identity(child, full_name="Nguyễn Văn Khác"), headers=headers
        )
        # Then exists is true, then false
        assert (matching.status_code, matching.json()) == (200, {"exists": True})
        assert (other.status_code, other.json()) == (200, {"exists": False})
    assert sandbox.sandbox.stats.requests == 4


async def test_population_through_hub_answers_50_concurrent_lookups_on_each_broker(
    broker_url: str, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    # Given the sandbox (a little latency, so the calls overlap) and a hub on this broker
    sandbox = await start_sandbox(latency_ms=20)
    citizens = [sandbox.sandbox.population.citizen(index * 997) for index in range(50)]
    async with hub_before(sandbox, tmp_path, broker_url=broker_url) as running:
        # When 50 lookups are sent at once
        responses = await asyncio.gather(
            *(
                running.http.post(
                    LOOKUP_PATH, json={"personal_id": citizen.personal_id}, headers=running.headers()
                )
                for citizen in citizens
            )
        )
    # Then each gets its own citizen, each reached the sandbox exactly once
    assert [response.status_code for response in responses] == [200] * 50
    assert [response.json()["full_name"] for response in responses] == [c.full_name for c in citizens]
    assert sandbox.sandbox.stats.requests == 50


async def test_population_through_hub_refuses_invalid_input_before_the_sandbox(
    start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    # Given the sandbox and a hub in front of it
    sandbox = await start_sandbox()
    citizen = sandbox.sandbox.population.citizen(3)
    invalid = [
        (LOOKUP_PATH, {"personal_id": "12345"}, "personal_id"),
        (LOOKUP_PATH, {"personal_id": "999096001005"}, "personal_id"),
        (LOOKUP_PATH, {"personal_id": citizen.personal_id, "nickname": "x"}, "nickname"),
        (VERIFY_PATH, identity(citizen, birth_date="1996-02-30"), "birth_date"),
        (VERIFY_PATH, identity(citizen, full_name=" "), "full_name"),
    ]
    async with hub_before(sandbox, tmp_path) as running:
        for path, query, field in invalid:
            # When a member sends an invalid canonical query
            response = await running.http.post(path, json=query, headers=running.headers())
            # Then it is refused with 400 naming the field
            status, kind, detail = error_of(response)
            assert (status, kind, detail["field"]) == (400, "Client.InvalidRequest", field), query
        # When the invalid id comes as a national SOAP envelope
        response = await running.http.post(
            LOOKUP_PATH,
            content=national_envelope(SoDinhDanh="12345"),
            headers=running.headers(**{"Content-Type": SOAP_XML}),
        )
        # Then the national field is named
        status, kind, detail = error_of(response)
        assert (status, kind, detail["field"]) == (400, "Client.InvalidRequest", "SoDinhDanh")
    # And nothing reached the sandbox
    assert sandbox.sandbox.stats.requests == 0


async def test_population_through_hub_wrong_secret_is_backend_auth_failure(
    start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    # Given a hub configured with a secret the sandbox does not accept
    sandbox = await start_sandbox()
    citizen = sandbox.sandbox.population.citizen(0)
    async with hub_before(sandbox, tmp_path, secret="not-the-sandbox-secret") as running:
        # When a member looks a citizen up
        response = await running.http.post(
            LOOKUP_PATH, json={"personal_id": citizen.personal_id}, headers=running.headers()
        )
    # Then the sandbox's auth fault is a 502 BackendAuthFailure, not retried
    status, kind, detail = error_of(response)
    assert (status, kind) == (502, "Server.ServerProxy.BackendAuthFailure")
    assert detail["detail"]["code"] == "XAC_THUC_THAT_BAI"
    assert sandbox.sandbox.stats.faults["XAC_THUC_THAT_BAI"] == 1


async def test_population_through_hub_slow_sandbox_is_backend_timeout(
    start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    # Given a sandbox slower than the connector's timeout, and two attempts per message
    sandbox = await start_sandbox(latency_ms=800)
    citizen = sandbox.sandbox.population.citizen(0)
    async with hub_before(
        sandbox, tmp_path, timeout_seconds=0.3, retry={"attempts": 2, "backoff": 0.05}
    ) as running:
        # When a member looks a citizen up
        response = await running.http.post(
            LOOKUP_PATH, json={"personal_id": citizen.personal_id}, headers=running.headers()
        )
    # Then both attempts time out and the member gets 504 BackendTimeout
    assert error_of(response)[:2] == (504, "Server.ServerProxy.BackendTimeout")
    assert sandbox.sandbox.stats.requests == 2


async def test_population_through_hub_sandbox_down_is_backend_unavailable(tmp_path: Path) -> None:
    # Given a hub whose national endpoint has nothing listening
    endpoint = f"http://127.0.0.1:{free_port()}/dancuquocgia"
    config = population_hub_config(
        endpoint,
        None,
        broker_url="embedded://",
        tmp_path=tmp_path,
        connect_timeout_seconds=0.5,
        retry={"attempts": 2, "backoff": 0.05},
    )
    async with running_hub(config) as running:
        # When a member looks a citizen up
        response = await running.http.post(
            LOOKUP_PATH, json={"personal_id": "001096001005"}, headers=running.headers()
        )
    # Then it gets 502 BackendUnavailable
    assert error_of(response)[:2] == (502, "Server.ServerProxy.BackendUnavailable")


async def test_population_through_hub_passes_national_soap_answers_and_faults_through(
    start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    # Given the sandbox and a hub in front of it
    sandbox = await start_sandbox()
    citizen = sandbox.sandbox.population.citizen(1)
    nobody = unknown_id(sandbox.sandbox.population, citizen)
    async with hub_before(sandbox, tmp_path) as running:
        http = running.http
        soap_headers = running.headers(**{"Content-Type": SOAP_XML})
        # When a national envelope is posted to REST r1 and to the SOAP face
        rest = await http.post(
            LOOKUP_PATH, content=national_envelope(SoDinhDanh=citizen.personal_id), headers=soap_headers
        )
        face = await http.post(
            f"/soap/{LOOKUP_SERVICE}",
            content=national_envelope(SoDinhDanh=citizen.personal_id),
            headers=soap_headers,
        )
        # Then both carry the national answer
        for response in (rest, face):
            assert (response.status_code, response.headers["content-type"]) == (200, SOAP_XML)
            answer = body_payload(parse_xml(response.content, limits=LIMITS))
            assert answer.findtext(f"{{{NS}}}CongDan/{{{NS}}}SoDinhDanh") == citizen.personal_id

        # When the national system answers a fault: nobody, then a MaYeuCau used twice
        missing = await http.post(
            f"/soap/{LOOKUP_SERVICE}", content=national_envelope(SoDinhDanh=nobody), headers=soap_headers
        )
        twice = national_envelope(SoDinhDanh=citizen.personal_id, MaYeuCau="repeated-1")
        first = await http.post(f"/soap/{LOOKUP_SERVICE}", content=twice, headers=soap_headers)
        duplicate = await http.post(f"/soap/{LOOKUP_SERVICE}", content=twice, headers=soap_headers)
        on_rest = await http.post(LOOKUP_PATH, content=twice, headers=soap_headers)
    # Then the SOAP face answers the national fault envelope unchanged, with HTTP 500
    assert first.status_code == 200
    faults = {}
    for name, response in {"missing": missing, "duplicate": duplicate}.items():
        assert (response.status_code, response.headers["content-type"]) == (500, SOAP_XML)
        fault = read_fault(parse_xml(response.content, limits=LIMITS))
        assert fault is not None
        faults[name] = (fault.faultcode, fault.code)
    assert faults == {
        "missing": ("Client.NotFound", "KHONG_TIM_THAY"),
        "duplicate": ("Client.DuplicateRequest", "TRUNG_MA_YEU_CAU"),
    }
    # And REST r1 passes the same fault envelope, typed by its X-Road-Error header
    assert (on_rest.status_code, on_rest.headers["x-road-error"]) == (
        422,
        "Server.ServerProxy.BackendRejected",
    )
    assert on_rest.content == duplicate.content
    assert sandbox.sandbox.stats.faults["TRUNG_MA_YEU_CAU"] == 2


def provincial_client(wsdl_url: str, headers: Mapping[str, str]) -> zeep.Client:
    """A plain synchronous zeep client, as provincial software builds one from a WSDL URL."""
    session = requests.Session()
    session.trust_env = False
    session.headers.update(headers)
    return zeep.Client(wsdl_url, transport=zeep.Transport(session=session, timeout=10, operation_timeout=10))


def national_meta() -> dict[str, str]:
    return {
        "MaYeuCau": uuid.uuid4().hex,
        "MaDVC": "1.001001",
        "MaTichHop": "037",
        "MaCanBo": "001096001005",
        "MaDonVi": "000.00.00.H40",
        "TaiKhoan": "mot-cua-tinh",
    }


async def test_population_through_hub_serves_a_zeep_client_through_the_soap_face_wsdl(
    start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    # Given the sandbox and a hub in front of it
    sandbox = await start_sandbox()
    population = sandbox.sandbox.population
    citizen = population.citizen(12)
    born = {"NgayThangNam": citizen.birth_date.strftime("%Y%m%d")}
    async with hub_before(sandbox, tmp_path) as running:
        gateway, headers = running.gateway.url, running.headers()
        # When a provincial system builds zeep clients from the hub's WSDLs
        lookup = await asyncio.to_thread(provincial_client, f"{gateway}/soap/{LOOKUP_SERVICE}?wsdl", headers)
        verify = await asyncio.to_thread(provincial_client, f"{gateway}/soap/{VERIFY_SERVICE}?wsdl", headers)
        # And looks a citizen up, verifies it, then another name, then looks up nobody
        found = await asyncio.to_thread(
            lookup.service.TraCuuThongTinCongDan, SoDinhDanh=citizen.personal_id, **national_meta()
        )
        exists = await asyncio.to_thread(
            verify.service.XacThucThongTinCongDan,
            SoDinhDanh=citizen.personal_id,
            HoVaTen=citizen.full_name,
            NgayThangNamSinh=born,
            **national_meta(),
        )
        absent = await asyncio.to_thread(
            verify.service.XacThucThongTinCongDan,
            SoDinhDanh=citizen.personal_id,
            HoVaTen="Nguyễn Văn Khác",
            NgayThangNamSinh=born,
            **national_meta(),
        )
        with pytest.raises(zeep.exceptions.Fault) as fault:
            await asyncio.to_thread(
                lookup.service.TraCuuThongTinCongDan,
                SoDinhDanh=unknown_id(population, citizen),
                **national_meta(),
            )
    # Then the WSDL's address is the hub, and the answers are the national ones, typed by zeep
    port = lookup.wsdl.services["DanCuQuocGiaService"].ports["DanCuQuocGiaPort"]
    assert port.binding_options["address"] == f"{gateway}/soap/{LOOKUP_SERVICE}"
    assert (found.SoDinhDanh, found.HoVaTen.Ten) == (citizen.personal_id, citizen.given_name)
    assert found.NgayThangNamSinh.NgayThangNam == born["NgayThangNam"]
    assert (exists, absent) == (True, False)
    # And the national fault reaches the client as a SOAP fault
    assert fault.value.code == "soap:Client.NotFound"
    assert fault.value.detail.findtext(f".//{{{NS}}}MaLoi") == "KHONG_TIM_THAY"
    assert sandbox.sandbox.stats.requests == 4
    assert dict(sandbox.sandbox.stats.faults) == {"KHONG_TIM_THAY": 1}
