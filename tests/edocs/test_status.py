"""Status feedback: statuses travel back to the sender (and a recall to the recipients) through the
same guaranteed path; transitions are enforced; revoke, update and replace change the original."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.edocs.edxml import (
    BusinessDocType,
    Organization,
    ResponseFor,
    StatusCode,
    StatusMessage,
    build_status,
    sign_package,
)
from tests.edocs.harness import (
    PULL_A,
    PULL_B,
    PUSHED,
    SENDER,
    UNSIGNED,
    Pki,
    PushEndpoint,
    RunningEdocs,
    edocs_config,
    eventually,
    headers,
    package,
    push_endpoint,
    revoke_of,
    running_edocs,
)


@pytest.fixture
async def endpoint() -> AsyncIterator[PushEndpoint]:
    async with push_endpoint() as found:
        yield found


@pytest.fixture
async def edocs(pki: Pki, tmp_path: Path, endpoint: PushEndpoint) -> AsyncIterator[RunningEdocs]:
    config = edocs_config(
        pki, broker_url="embedded://", store_url=f"sqlite+aiosqlite:///{tmp_path}/s.db", push_url=endpoint.url
    )
    async with running_edocs(config) as running:
        yield running


async def _sent(edocs: RunningEdocs, pki: Pki, **kw: Any) -> dict[str, Any]:
    response = await edocs.submit(package(pki, **kw))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _status_codes(edocs: RunningEdocs, organ: str) -> list[tuple[str, str]]:
    items = (await edocs.inbox(organ, kind="status"))["items"]
    return [(item["status"]["from"], item["status"]["code"]) for item in items]


async def test_status_recipients_statuses_reach_the_sender_in_order(edocs: RunningEdocs, pki: Pki) -> None:
    hub_id = (await _sent(edocs, pki))["id"]
    # When two recipients report their progress
    for organ, code in (
        (PULL_A, "01"),
        (PULL_A, "03"),
        (PULL_B, "03"),
        (PULL_A, "04"),
        (PULL_A, "05"),
        (PULL_A, "06"),
    ):
        response = await edocs.status(
            organ, hub_id, code, description=f"{organ} {code}", staff={"staff": "Văn thư"}
        )
        assert response.status_code == 201, response.text
    # Then the sender receives each status, in order, through its inbox
    expected = [
        (PULL_A, "01"),
        (PULL_A, "03"),
        (PULL_B, "03"),
        (PULL_A, "04"),
        (PULL_A, "05"),
        (PULL_A, "06"),
    ]
    await eventually(lambda: _equals(_status_codes(edocs, SENDER), expected), what="the statuses")
    # And can read each as an edXML status message and acknowledge it
    item = (await edocs.inbox(SENDER, kind="status"))["items"][0]
    message = await edocs.http.get(f"/v1/edocs/statuses/{item['status']['id']}", headers=headers(SENDER))
    assert (
        b"<StatusCode>01</StatusCode>" in message.content
        and "<Staff>Văn thư</Staff>".encode() in message.content
    )
    ack = await edocs.http.post(f"/v1/edocs/deliveries/{item['delivery']}/ack", headers=headers(SENDER))
    assert ack.json()["state"] == "acked"
    assert len((await edocs.inbox(SENDER, kind="status"))["items"]) == 5
    # And the history per recipient reads back
    history = (await edocs.http.get(f"/v1/edocs/{hub_id}/status", headers=headers(SENDER))).json()
    assert history["recipients"][PULL_A]["status"] == "06"
    assert [h["code"] for h in history["recipients"][PULL_A]["history"]] == ["01", "03", "04", "05", "06"]
    assert history["recipients"][PULL_B]["history"][0]["staff"]["staff"] == "Văn thư"
    assert history["recipients"][PUSHED] == {"status": None, "recall": None, "history": []}


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


@pytest.mark.parametrize(
    ("before", "organ", "code", "why"),
    [
        ([], PULL_A, "06", "06 only after 03"),
        ([(PULL_A, "01")], PULL_A, "06", "06 only after 03"),
        ([(PULL_A, "02")], PULL_A, "03", "nothing follows 02"),
        ([(PULL_A, "03")], PULL_A, "15", "only answers a pending recall"),
        ([], PULL_A, "13", "only the sender"),
        ([], SENDER, "03", "sender may only send 13"),
    ],
)
async def test_status_invalid_transitions_are_refused(
    edocs: RunningEdocs, pki: Pki, before: list[tuple[str, str]], organ: str, code: str, why: str
) -> None:
    hub_id = (await _sent(edocs, pki))["id"]
    for who, earlier in before:
        assert (await edocs.status(who, hub_id, earlier)).status_code == 201
    # When the refused status is posted / Then 409 names the rule, and the state is unchanged
    response = await edocs.status(organ, hub_id, code)
    body = response.json()
    assert (response.status_code, body["type"]) == (409, "Client.InvalidTransition")
    assert why in body["message"] and body["detail"]["code"] == code


async def test_status_only_parties_see_or_change_a_document(edocs: RunningEdocs, pki: Pki) -> None:
    hub_id = (await _sent(edocs, pki, recipients=(PULL_A,)))["id"]
    # A member that is neither sender nor recipient gets 404 for everything about it
    for response in (
        await edocs.status(PULL_B, hub_id, "01"),
        await edocs.http.get(f"/v1/edocs/{hub_id}", headers=headers(PULL_B)),
        await edocs.http.get(f"/v1/edocs/{hub_id}/status", headers=headers(PULL_B)),
        await edocs.http.post(f"/v1/edocs/{hub_id}/ack", headers=headers(PULL_B)),
    ):
        assert response.status_code == 404, response.text
    # And a recipient sees only its own history
    await edocs.status(PULL_A, hub_id, "01")
    own = (await edocs.http.get(f"/v1/edocs/{hub_id}/status", headers=headers(PULL_A))).json()
    assert list(own["recipients"]) == [PULL_A]


async def test_status_recall_13_then_15_and_16(edocs: RunningEdocs, pki: Pki, endpoint: PushEndpoint) -> None:
    hub_id = (await _sent(edocs, pki))["id"]
    await edocs.status(PULL_A, hub_id, "03")
    # When the sender asks every recipient to give the document back
    asked = await edocs.status(SENDER, hub_id, "13", description="Văn bản gửi nhầm")
    assert asked.status_code == 201
    assert sorted(s["recipient"] for s in asked.json()["statuses"]) == [PULL_A, PULL_B, PUSHED]
    # Then pull recipients find the request in their inbox, the push recipient gets it pushed
    await eventually(lambda: _equals(_status_codes(edocs, PULL_A), [(SENDER, "13")]), what="13 to H40.12")
    await eventually(lambda: len(endpoint.for_kind("status")) == 1, what="13 pushed to H40.14")
    (pushed,) = endpoint.for_kind("status").values()
    assert b"<StatusCode>13</StatusCode>" in pushed
    # When one accepts (15) and another refuses (16)
    assert (await edocs.status(PULL_A, hub_id, "15")).status_code == 201
    assert (await edocs.status(PULL_B, hub_id, "16")).status_code == 201
    # Then the sender hears both, and the states say recalled / refused
    await eventually(
        lambda: _equals(_status_codes(edocs, SENDER), [(PULL_A, "03"), (PULL_A, "15"), (PULL_B, "16")]),
        what="the answers",
    )
    recipients = (await edocs.http.get(f"/v1/edocs/{hub_id}/status", headers=headers(SENDER))).json()[
        "recipients"
    ]
    assert (recipients[PULL_A]["recall"], recipients[PULL_B]["recall"], recipients[PUSHED]["recall"]) == (
        "accepted",
        "refused",
        "requested",
    )
    # And a recalled document takes no more statuses, while a refusing recipient carries on
    assert (await edocs.status(PULL_A, hub_id, "05")).status_code == 409
    assert (await edocs.status(PULL_B, hub_id, "03")).status_code == 201
    # And a second recall only reaches those still able to answer it
    again = await edocs.status(SENDER, hub_id, "13", recipients=[PULL_B])
    assert again.status_code == 201
    assert (await edocs.status(SENDER, hub_id, "13", recipients=[PUSHED])).status_code == 409


async def test_status_edxml_message_is_verified_and_must_match_the_document(
    edocs: RunningEdocs, pki: Pki
) -> None:
    sent = await _sent(edocs, pki)
    hub_id, document_id = sent["id"], sent["document_id"]

    def status(organ: str, doc: str, code: StatusCode = StatusCode.ACCEPTED) -> bytes:
        message = StatusMessage(
            Organization(organ), ResponseFor(SENDER, doc), code, "2024/05/03 08:00:00", "ok"
        )
        issued = pki.members[organ]
        return sign_package(build_status(message), issued.key, [issued.certificate])

    xml = {"Content-Type": "application/xml"}
    # A signed status from the recipient is accepted and recorded as signed
    response = await edocs.http.post(
        f"/v1/edocs/{hub_id}/status", content=status(PULL_A, document_id), headers=headers(PULL_A, **xml)
    )
    assert response.status_code == 201, response.text
    history = (await edocs.http.get(f"/v1/edocs/{hub_id}/status", headers=headers(PULL_A))).json()
    assert history["recipients"][PULL_A]["history"][0]["signed"] is True
    # The same message again is a replay with the same answer
    replay = await edocs.http.post(
        f"/v1/edocs/{hub_id}/status", content=status(PULL_A, document_id), headers=headers(PULL_A, **xml)
    )
    assert replay.status_code == 201 and replay.json()["statuses"] == response.json()["statuses"]
    assert replay.headers["idempotent-replayed"] == "true"
    # A status naming another document, or sent as another organ, or tampered, is refused
    other = await edocs.http.post(
        f"/v1/edocs/{hub_id}/status",
        content=status(PULL_B, "X,2024/01/01,1/A"),
        headers=headers(PULL_B, **xml),
    )
    assert (other.status_code, other.json()["detail"]["element"]) == (400, "ResponseFor/DocumentId")
    spoofed = await edocs.http.post(
        f"/v1/edocs/{hub_id}/status", content=status(PULL_B, document_id), headers=headers(PULL_A, **xml)
    )
    assert spoofed.status_code == 403
    tampered = status(PULL_B, document_id).replace(b"<Description>ok<", b"<Description>ko<")
    refused = await edocs.http.post(
        f"/v1/edocs/{hub_id}/status", content=tampered, headers=headers(PULL_B, **xml)
    )
    assert (refused.status_code, refused.json()["detail"]["reason"]) == (403, "digest mismatch")


async def test_status_json_is_validated(edocs: RunningEdocs, pki: Pki) -> None:
    hub_id = (await _sent(edocs, pki))["id"]
    bad_code = await edocs.status(PULL_A, hub_id, "07")
    bad_time = await edocs.status(PULL_A, hub_id, "01", timestamp="03/05/2024")
    assert (bad_code.status_code, bad_code.json()["detail"]["element"]) == (400, "code")
    assert (bad_time.status_code, bad_time.json()["detail"]["element"]) == (400, "timestamp")


@pytest.mark.parametrize(
    ("kind", "state"),
    [
        (BusinessDocType.REVOKE, "revoked"),
        (BusinessDocType.UPDATE, "updated"),
        (BusinessDocType.REPLACE, "replaced"),
    ],
)
async def test_status_revoke_update_replace_change_the_original(
    edocs: RunningEdocs, pki: Pki, kind: BusinessDocType, state: str
) -> None:
    original = await _sent(edocs, pki, recipients=(PULL_A, PULL_B))
    # When the sender sends a package of this business type referring to the original
    response = await edocs.submit(revoke_of(pki, original["document_id"], kind, recipients=(PULL_A, PULL_B)))
    assert response.status_code == 201, response.text
    follow_up = response.json()
    # Then it refers to the original, is delivered like any package, and the original's state changed
    assert (follow_up["refers_to"], follow_up["business_type"]) == (original["id"], int(kind))
    await eventually(lambda: _inbox_len(edocs, PULL_A, 2), what="both packages")
    items = {item["id"]: item for item in (await edocs.inbox(PULL_A))["items"]}
    assert items[original["id"]]["document_state"] == state
    assert items[follow_up["id"]]["refers_to"] == original["id"]
    # And a revocation of the changed document is refused (or, repeated, replays the first answer)
    again = await edocs.submit(
        revoke_of(pki, original["document_id"], BusinessDocType.REVOKE, recipients=(PULL_A,))
    )
    if kind is BusinessDocType.REVOKE:
        assert again.headers["idempotent-replayed"] == "true" and again.json() == follow_up
    else:
        assert (again.status_code, again.json()["type"]) == (409, "Client.InvalidTransition")


async def _inbox_len(edocs: RunningEdocs, organ: str, size: int) -> bool:
    return len((await edocs.inbox(organ))["items"]) == size


async def test_status_change_of_an_unknown_document_is_refused(edocs: RunningEdocs, pki: Pki) -> None:
    response = await edocs.submit(revoke_of(pki, "000.00.00.H40,2020/01/01,9/NONE", recipients=(PULL_A,)))
    assert (response.status_code, response.json()["detail"]["element"]) == (400, "Bussiness/DocumentId")


async def test_status_unsigned_member_statuses_are_accepted_unsigned(edocs: RunningEdocs, pki: Pki) -> None:
    # Given a package to a member that does not sign
    hub_id = (await _sent(edocs, pki, recipients=(UNSIGNED, PULL_A)))["id"]
    # When it reports a status / Then it is accepted: statuses never need a signature
    response = await edocs.status(UNSIGNED, hub_id, "01")
    assert response.status_code == 201, response.text
