"""How the connector reads national answers: XSD-checked, then mapped; a misfit is the backend's failure."""

import json

import httpx
import pytest
from lxml import etree

from connectors.population_db import PopulationDbConnector
from connectors.population_db._soap import NS, envelope
from connectors.population_db.data import Population
from connectors.population_db.sandbox import _citizen_element
from hub.errors import BackendUnavailable
from tests.connectors.population_db.conftest import json_request, settings

ENDPOINT = "http://national.invalid/dancuquocgia"


def _answering(body: bytes) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(200, content=body, headers={"Content-Type": "text/xml"})
        )
    )


def _verify_answer(text: str) -> bytes:
    result = etree.Element(f"{{{NS}}}KetQuaXacThucResponse", nsmap={"dc": NS})
    etree.SubElement(result, f"{{{NS}}}TonTai").text = text
    return envelope(result)


async def _call(body: bytes, operation: str, query: dict[str, str]) -> bytes:
    http = _answering(body)
    connector = PopulationDbConnector(settings(ENDPOINT), http_client=http)
    try:
        reply = await connector.call(json_request(operation, json.dumps(query, ensure_ascii=False)))
    finally:
        await connector.close()
        await http.aclose()
    return reply.body


@pytest.mark.parametrize(("text", "exists"), [("true", True), ("1", True), ("false", False), ("0", False)])
async def test_connector_reads_every_xsd_boolean_of_a_verify_answer(text: str, exists: bool) -> None:
    # Given a national verify answer spelling TonTai in one of the XSD's boolean forms
    query = {"personal_id": "001096001005", "full_name": "Nguyễn Văn An", "birth_date": "1996-01-01"}
    # When a verification is made
    body = await _call(_verify_answer(text), "citizen-verify", query)
    # Then exists is that boolean
    assert json.loads(body) == {"exists": exists}


async def test_connector_maps_a_national_citizen_answer_without_zeep() -> None:
    # Given the national answer for a citizen with parents
    citizen = Population(size=100).citizen(4)
    answer = envelope(_citizen_element(citizen))
    # When the citizen is looked up
    record = json.loads(await _call(answer, "citizen-lookup", {"personal_id": citizen.personal_id}))
    # Then the canonical record carries the name parts and relatives
    assert (record["full_name"], record["given_name"]) == (citizen.full_name, citizen.given_name)
    assert citizen.mother is not None and record["mother"]["full_name"] == citizen.mother.full_name
    assert record["old_id_number"] == citizen.old_id_number


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (_verify_answer("maybe"), "does not match the XSD"),
        (_verify_answer("true").replace(b"TonTai>", b"Ton>"), "does not match the XSD"),
        (
            envelope(etree.Element(f"{{{NS}}}TraCuuThongTinCongDanResponse")),
            "answered TraCuuThongTinCongDanResponse, not KetQuaXacThucResponse",
        ),
        (
            b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>',
            "Body",
        ),
    ],
)
async def test_connector_answer_outside_the_contract_is_backend_unavailable(
    answer: bytes, words: str
) -> None:
    # Given a national answer the vendored contract does not allow
    query = {"personal_id": "001096001005", "full_name": "Nguyễn Văn An", "birth_date": "1996"}
    # When a verification is made
    # Then the backend is reported unusable, saying why
    with pytest.raises(BackendUnavailable, match=words):
        await _call(answer, "citizen-verify", query)
