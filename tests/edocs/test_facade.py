"""The LGSP-compatible facade, driven with the requests existing provincial software sends:
multipart ``edocFile`` + ``messageType``, ``X-SystemId`` / ``X-SecretKey``, ``yyyy/MM/dd`` dates, base64
edXML, and ``{status, ErrorCode, ErrorDesc, data}`` answers."""

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from hub.edocs.edxml import (
    NS,
    Organization,
    ResponseFor,
    StatusCode,
    StatusMessage,
    build_status,
    format_date,
    parse_edxml,
    strip_hub_trace,
)
from signing.trust import RevocationMode, TrustStore
from signing.xmldsig import SignaturePolicy, verify_xml
from tests.edocs.harness import (
    PULL_A,
    SENDER,
    SYSTEMS,
    Pki,
    RunningEdocs,
    edocs_config,
    eventually,
    headers,
    package,
    running_edocs,
)


def system(organ: str) -> dict[str, str]:
    system_id, (_, secret) = next((s, v) for s, v in SYSTEMS.items() if v[0] == organ)
    return {"X-SystemId": system_id, "X-SecretKey": secret}


@pytest.fixture
async def edocs(pki: Pki, tmp_path: Path) -> AsyncIterator[RunningEdocs]:
    config = edocs_config(pki, broker_url="embedded://", store_url=f"sqlite+aiosqlite:///{tmp_path}/s.db")
    async with running_edocs(config) as running:
        yield running


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["ErrorCode"], body["ErrorDesc"]) == ("OK", 0, ""), body
    return body["data"]


def fail(response: httpx.Response) -> tuple[int, str]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "FAIL" and body["data"] is None, body
    return body["ErrorCode"], body["ErrorDesc"]


async def send(
    edocs: RunningEdocs, data: bytes, organ: str = SENDER, message_type: str = "edoc"
) -> httpx.Response:
    return await edocs.http.post(
        "/v1/sendEdoc",
        files={"edocFile": ("van-ban.edxml", data, "application/octet-stream")},
        data={"messageType": message_type},
        headers=system(organ),
    )


async def test_facade_send_sync_get_update_round_trip(edocs: RunningEdocs, pki: Pki) -> None:
    # When the sender's software posts a package the way it posts to an LGSP
    sent = ok(await send(edocs, package(pki, recipients=(PULL_A,))))
    doc_id = sent["docId"]
    assert sent["duplicate"] is False and sent["to"] == [PULL_A]
    today = format_date(datetime.now(UTC))
    query = {"messageType": "edoc", "fromDate": today, "toDate": today}

    # Then the recipient's software finds it in syncReceivedEdocList for today's dates
    async def listed() -> list[dict[str, Any]]:
        return list(
            ok(await edocs.http.get("/v1/syncReceivedEdocList", params=query, headers=system(PULL_A)))
        )

    await eventually(lambda: _has(listed(), doc_id), what="the document in the list")
    (item,) = await listed()
    assert (item["docId"], item["from"], item["messageType"]) == (doc_id, SENDER, "edoc")
    assert len(item["createdDate"]) == 19 and item["createdDate"][4] == "/"
    # And getEdoc gives the edXML in base64, the sender's signature intact under the hub's trace
    got = ok(await edocs.http.get("/v1/getEdoc", params={"docId": doc_id}, headers=system(PULL_A)))
    root = parse_edxml(base64.b64decode(got["content"]))
    assert strip_hub_trace(root, "LGSP.H40")
    trust = TrustStore(anchors=[pki.ca.certificate], revocation=RevocationMode.OFF)
    policy = SignaturePolicy(
        trust=trust, location=f"./{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader/", excise_empty_xmlns=True
    )
    assert verify_xml(etree.tostring(root), policy).member_id == f"VN/GOV/{SENDER}"
    # When the recipient reports "acceptance" (JSON body)
    ok(
        await edocs.http.post(
            "/v1/updateStatus", json={"docId": doc_id, "status": "acceptance"}, headers=system(PULL_A)
        )
    )
    # Then the document leaves its list, and the sender's software lists the status (03)
    assert await listed() == []

    async def sender_statuses() -> list[dict[str, Any]]:
        return list(
            ok(
                await edocs.http.get(
                    "/v1/syncReceivedEdocList", params={"messageType": "status"}, headers=system(SENDER)
                )
            )
        )

    # (the status reaches the sender's inbox through the delivery worker, not within the request)
    await eventually(sender_statuses, what="the status in the sender's list")
    statuses = await sender_statuses()
    assert [(s["edocId"], s["statusCode"], s["from"]) for s in statuses] == [(doc_id, "03", PULL_A)]
    # And fetches it as edXML and acknowledges it (form-encoded, as older clients post)
    status_id = statuses[0]["docId"]
    message = ok(
        await edocs.http.get(
            "/v1/getEdoc", params={"docId": status_id, "messageType": "status"}, headers=system(SENDER)
        )
    )
    assert b"<StatusCode>03</StatusCode>" in base64.b64decode(message["content"])
    ok(
        await edocs.http.post(
            "/v1/updateStatus",
            data={"docId": status_id, "messageType": "status", "status": "done"},
            headers=system(SENDER),
        )
    )
    assert (
        ok(
            await edocs.http.get(
                "/v1/syncReceivedEdocList", params={"messageType": "status"}, headers=system(SENDER)
            )
        )
        == []
    )


async def _has(listed: Any, doc_id: str) -> bool:
    return any(item["docId"] == doc_id for item in await listed)


async def test_facade_status_as_edxml_through_send_edoc(edocs: RunningEdocs, pki: Pki) -> None:
    sent = ok(await send(edocs, package(pki, recipients=(PULL_A,))))
    history = (await edocs.http.get(f"/v1/edocs/{sent['docId']}/status", headers=headers(SENDER))).json()
    status = StatusMessage(
        Organization(PULL_A),
        ResponseFor(SENDER, history["document_id"]),
        StatusCode.ARRIVED,
        "2024/05/03 08:00:00",
    )
    # When the recipient's software sends the edXML status with messageType=status
    result = ok(await send(edocs, build_status(status), organ=PULL_A, message_type="status"))
    # Then it is recorded against the document its ResponseFor names
    assert (result["docId"], result["statusCode"]) == (sent["docId"], "01")
    history = (await edocs.http.get(f"/v1/edocs/{sent['docId']}/status", headers=headers(SENDER))).json()
    assert history["recipients"][PULL_A]["status"] == "01"


async def test_facade_agencies_list(edocs: RunningEdocs) -> None:
    agencies = {a["code"]: a for a in ok(await edocs.http.get("/v1/getAgenciesList", headers=system(PULL_A)))}
    assert agencies[PULL_A] == {"id": PULL_A, "code": PULL_A, "name": "Sở Tư pháp", "pcode": SENDER}
    assert agencies[SENDER]["pcode"] == ""


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        ({"X-SystemId": "VPUB-H40", "X-SecretKey": "wrong"}, 10),
        ({"X-SystemId": "nobody", "X-SecretKey": "secret-h40"}, 10),
        ({}, 10),
    ],
)
async def test_facade_bad_credentials_fail_with_code_10(
    edocs: RunningEdocs, credentials: dict[str, str], code: int
) -> None:
    got, text = fail(await edocs.http.get("/v1/getAgenciesList", headers=credentials))
    assert got == code and "secret-h40" not in text


async def test_facade_errors_carry_their_codes(edocs: RunningEdocs, pki: Pki) -> None:
    assert fail(await send(edocs, b"<edXML>not closed"))[0] == 18
    assert fail(await send(edocs, package(pki).replace("triển".encode(), b"trien", 1)))[0] == 19
    assert fail(await send(edocs, package(pki, recipients=("H40.98",))))[0] == 20
    assert (
        fail(await edocs.http.get("/v1/getEdoc", params={"docId": "nope"}, headers=system(PULL_A)))[0] == 21
    )
    sent = ok(await send(edocs, package(pki, recipients=(PULL_A,))))
    done_first = await edocs.http.post(
        "/v1/updateStatus", json={"docId": sent["docId"], "status": "done"}, headers=system(PULL_A)
    )
    assert fail(done_first)[0] == 22
    assert (
        fail(await edocs.http.post("/v1/updateStatus", json={"status": "done"}, headers=system(PULL_A)))[0]
        == 15
    )
    assert fail(await send(edocs, package(pki), message_type="memo"))[0] == 15
