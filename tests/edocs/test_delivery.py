"""Guaranteed delivery: pull and push mixed, retries with backoff, the DLQ and its replay, a worker
gone mid-push, publishes the broker never confirmed; each (document, recipient) delivered once."""

import asyncio
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from lxml import etree
from typer.testing import CliRunner

from hub.broker.base import Message
from hub.broker.embedded import EmbeddedBroker
from hub.edocs import tables
from hub.edocs.cli import edocs_app
from hub.edocs.edxml import NS, Attachment, parse_edxml, strip_hub_trace
from hub.errors import BrokerConnectionError
from signing.trust import RevocationMode, TrustStore
from signing.xmldsig import SignaturePolicy, verify_xml
from tests.edocs.harness import (
    PULL_A,
    PULL_B,
    PUSHED,
    SENDER,
    Pki,
    RunningEdocs,
    edocs_config,
    eventually,
    headers,
    package,
    push_endpoint,
    running_edocs,
)


async def _deliveries(running: RunningEdocs) -> list[dict[str, Any]]:
    async with running.hub.store.engine.connect() as connection:
        rows = await connection.execute(sa.select(tables.deliveries).order_by(tables.deliveries.c.id))
        return [dict(r._mapping) for r in rows]


async def _settled(running: RunningEdocs, state: str = "delivered") -> dict[str, Any]:
    """The only delivery, once it reached ``state`` (the endpoint answers before the hub records it)."""
    await eventually(lambda: _in_state(running, state), what=f"the delivery {state}")
    (row,) = await _deliveries(running)
    return row


async def _in_state(running: RunningEdocs, state: str) -> bool:
    return [r["state"] for r in await _deliveries(running)] == [state]


def _signature_verifies(data: bytes, pki: Pki) -> bool:
    root = parse_edxml(data)
    assert strip_hub_trace(root, "LGSP.H40")
    trust = TrustStore(anchors=[pki.ca.certificate], revocation=RevocationMode.OFF)
    policy = SignaturePolicy(
        trust=trust, location=f"./{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader/", excise_empty_xmlns=True
    )
    return verify_xml(etree.tostring(root), policy).member_id == f"VN/GOV/{SENDER}"


async def test_delivery_one_sender_three_recipients_pull_and_push_each_once(
    pki: Pki, broker_url: str, store_url: str
) -> None:
    async with push_endpoint() as endpoint:
        config = edocs_config(pki, broker_url=broker_url, store_url=store_url, push_url=endpoint.url)
        async with running_edocs(config) as running:
            # Given three packages from one sender to two pull recipients and one push recipient
            attachment = Attachment("cid:1", "phu-luc.pdf", "application/pdf", b"%PDF-1.4\n" * 30_000)
            submitted = []
            for n in range(3):
                response = await running.submit(package(pki, attachments=[attachment] if n == 0 else []))
                assert response.status_code == 201, response.text
                submitted.append(response.json()["id"])

            # When the workers deliver them
            async def pulled(organ: str) -> list[str]:
                return [item["id"] for item in (await running.inbox(organ))["items"]]

            for organ in (PULL_A, PULL_B):
                await eventually(lambda o=organ: _same(pulled(o), submitted), what=f"{organ}'s inbox")
            await eventually(lambda: len(endpoint.for_kind("edoc")) == 3, what="three pushes")

            # Then each pull recipient fetches each package as sent, plus the hub's trace, and acks it
            for organ in (PULL_A, PULL_B):
                for hub_id in submitted:
                    fetched = await running.http.get(f"/v1/edocs/{hub_id}", headers=headers(organ))
                    assert fetched.status_code == 200 and _signature_verifies(fetched.content, pki)
                    ack = await running.http.post(f"/v1/edocs/{hub_id}/ack", headers=headers(organ))
                    assert ack.json()["state"] == "acked"
                assert (await running.inbox(organ))["items"] == []
                assert len((await running.inbox(organ, state="acked"))["items"]) == 3
            # And the push recipient got each package exactly once, with the hub's headers
            assert len(endpoint.calls) == 3
            for call in endpoint.calls:
                assert call["headers"]["x-edoc-id"] in submitted and call["headers"]["x-edoc-kind"] == "edoc"
                assert _signature_verifies(call["body"], pki)
            attachment_back = await running.http.get(
                f"/v1/edocs/{submitted[0]}/attachments/0", headers=headers(PULL_A)
            )
            assert attachment_back.content == attachment.data
            # And the store holds one settled delivery per (document, recipient)
            await eventually(lambda: _pushes_delivered(running), what="the pushes recorded")
            rows = await _deliveries(running)
            assert sorted((r["document"], r["recipient"]) for r in rows) == sorted(
                (d, o) for d in submitted for o in (PULL_A, PULL_B, PUSHED)
            )
            assert {r["state"] for r in rows if r["mode"] == "push"} == {"delivered"}


async def _pushes_delivered(running: RunningEdocs) -> bool:
    return {r["state"] for r in await _deliveries(running) if r["mode"] == "push"} == {"delivered"}


async def _same(listed: Any, expected: list[str]) -> bool:
    return sorted(await listed) == sorted(expected)


async def test_delivery_push_failing_twice_then_succeeding_is_delivered_once(
    pki: Pki, broker_url: str, tmp_path: Path
) -> None:
    async with push_endpoint() as endpoint:
        # Given a push endpoint that answers 503 twice
        endpoint.fail_next = 2
        config = edocs_config(
            pki,
            broker_url=broker_url,
            store_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
            push_url=endpoint.url,
        )
        async with running_edocs(config) as running:
            # When a package is sent to it
            response = await running.submit(package(pki, recipients=(PUSHED,)))
            hub_id = response.json()["id"]
            await eventually(lambda: len(endpoint.accepted) == 1, what="the push")
            # Then it was attempted three times with one idempotency key, after the configured backoff
            keys = {call["headers"]["idempotency-key"] for call in endpoint.calls}
            assert len(endpoint.calls) == 3 and keys == {f"edoc:{hub_id}:{PUSHED}"}
            gaps = [b["at"] - a["at"] for a, b in zip(endpoint.calls, endpoint.calls[1:], strict=False)]
            assert gaps[0] >= 0.045 and gaps[1] >= 0.095
            row = await _settled(running)
            assert (row["state"], row["attempts"]) == ("delivered", 3)
            # And the recipient sees it once among its delivered documents
            delivered = await running.inbox(PUSHED, state="delivered")
            assert [item["id"] for item in delivered["items"]] == [hub_id]


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_delivery_push_exhausting_retries_dead_letters_alerts_and_is_replayed(
    pki: Pki, tmp_path: Path
) -> None:
    async with push_endpoint() as endpoint:
        # Given an endpoint down for good, and a 404 endpoint for another package
        endpoint.fail_next = 1000
        store_url = f"sqlite+aiosqlite:///{tmp_path}/s.db"
        config = edocs_config(pki, broker_url="embedded://", store_url=store_url, push_url=endpoint.url)
        config_file = tmp_path / "lgsp.yaml"
        config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
        async with running_edocs(config) as running:
            hub_id = (await running.submit(package(pki, recipients=(PUSHED,)))).json()["id"]
            # When every attempt fails
            await eventually(lambda: len(endpoint.calls) == 4, what="the first attempt and three retries")
            await eventually(lambda: _dead(running), what="the dead letter")
            # Then the delivery is dead-lettered to the DLQ and an alert is raised
            broker = running.hub.broker
            assert isinstance(broker, EmbeddedBroker)
            dlq = running.extension.names.push.dlq_name
            assert await broker.message_count(dlq) == 1
            metrics = (await running.http.get("/metrics")).text
            assert _metric(metrics, 'lgsp_alerts_total{kind="edocs-dead-letter"}') == 1.0
            # And `lgsp edocs dlq` lists it
            runner = CliRunner()
            listed = await asyncio.to_thread(runner.invoke, edocs_app, ["dlq", "-c", str(config_file)])
            assert listed.exit_code == 0, listed.output
            assert "H40.14" in listed.output and "503" in listed.output
            (row,) = await _deliveries(running)
            # When the endpoint is back and `lgsp edocs retry ID` replays it
            endpoint.fail_next = 0
            replay = await asyncio.to_thread(
                runner.invoke, edocs_app, ["retry", str(row["id"]), "-c", str(config_file)]
            )
            assert replay.exit_code == 0, replay.output
            # Then it is delivered, once
            await eventually(lambda: len(endpoint.accepted) == 1, what="the replayed push")
            row = await _settled(running)
            assert row["state"] == "delivered" and row["key"] == f"edoc:{hub_id}:{PUSHED}"
            again = await asyncio.to_thread(
                runner.invoke, edocs_app, ["retry", str(row["id"]), "-c", str(config_file)]
            )
            assert again.exit_code == 1


async def _dead(running: RunningEdocs) -> bool:
    return any(r["state"] == "dead" for r in await _deliveries(running))


async def test_delivery_permanent_refusal_dead_letters_at_once(pki: Pki, tmp_path: Path) -> None:
    async with push_endpoint() as endpoint:
        endpoint.fail_next, endpoint.status_on_failure = 1, 422
        config = edocs_config(
            pki,
            broker_url="embedded://",
            store_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
            push_url=endpoint.url,
        )
        async with running_edocs(config) as running:
            await running.submit(package(pki, recipients=(PUSHED,)))
            await eventually(lambda: _dead(running), what="the dead letter")
            (row,) = await _deliveries(running)
            assert row["attempts"] == 1 and "422" in row["last_error"] and len(endpoint.calls) == 1


async def test_delivery_worker_gone_mid_push_is_redelivered_and_delivered_once(
    pki: Pki, tmp_path: Path
) -> None:
    async with push_endpoint() as endpoint:
        # Given a push endpoint that hangs on the first request
        endpoint.hang_next = 1
        config = edocs_config(
            pki,
            broker_url="embedded://",
            store_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
            push_url=endpoint.url,
            push={"timeout": 0.5, "retry_delays_ms": [50, 100, 200]},
        )
        async with running_edocs(config) as running:
            hub_id = (await running.submit(package(pki, recipients=(PUSHED,)))).json()["id"]
            await asyncio.wait_for(endpoint.entered.wait(), 5)
            # When the worker dies mid-push (its consumer and its work gone, nothing acked)
            extension = running.extension
            await extension.workers.stop(timeout=0)
            extension.workers = None
            # And another worker comes up
            await extension.start(workers=True)
            # Then the message comes back, waits out the dead worker's lease, and is delivered once
            await eventually(lambda: len(endpoint.accepted) == 1, what="the redelivered push")
            assert len(endpoint.calls) == 2
            assert {c["headers"]["idempotency-key"] for c in endpoint.calls} == {f"edoc:{hub_id}:{PUSHED}"}
            row = await _settled(running)
            assert (row["state"], row["attempts"]) == ("delivered", 2)


class _DroppingBroker(EmbeddedBroker):
    """An embedded broker whose connection 'drops' for the first few edocs publishes."""

    def __init__(self, drops: int) -> None:
        super().__init__()
        self.drops = drops

    async def publish(
        self, exchange: str, routing_key: str, message: Message, *, mandatory: bool = True
    ) -> None:
        if exchange.endswith(".edocs") and self.drops > 0:
            self.drops -= 1
            raise BrokerConnectionError("connection lost before the confirm")
        await super().publish(exchange, routing_key, message, mandatory=mandatory)


async def test_delivery_unconfirmed_publishes_are_resent_by_the_outbox(pki: Pki, tmp_path: Path) -> None:
    async with push_endpoint() as endpoint:
        # Given a broker that loses the first three publishes
        config = edocs_config(
            pki,
            broker_url="embedded://",
            store_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
            push_url=endpoint.url,
        )
        async with running_edocs(config, broker=_DroppingBroker(3)) as running:
            # When a package is submitted
            response = await running.submit(package(pki))
            # Then it is accepted (it is stored), and every delivery arrives once the outbox resends it
            assert response.status_code == 201
            assert {r["published_at"] for r in await _deliveries(running)} == {None}
            await eventually(lambda: len(endpoint.accepted) == 1, what="the resent push")
            for organ in (PULL_A, PULL_B):
                await eventually(lambda o=organ: _inbox_size(running, o, 1), what=f"{organ}'s inbox")
            assert all(r["published_at"] is not None for r in await _deliveries(running))


async def _inbox_size(running: RunningEdocs, organ: str, size: int) -> bool:
    return len((await running.inbox(organ))["items"]) == size


async def test_delivery_embedded_restart_recovers_unsettled_deliveries(pki: Pki, tmp_path: Path) -> None:
    # Given a hub that stored a package and stopped before any worker ran (its in-memory broker gone)
    store_url = f"sqlite+aiosqlite:///{tmp_path}/s.db"
    config = edocs_config(pki, broker_url="embedded://", store_url=store_url)
    async with running_edocs(config, workers=False) as running:
        assert (await running.submit(package(pki, recipients=(PULL_A,)))).status_code == 201
    # When a new process starts with workers on the same store
    async with running_edocs(
        {**config, "broker": {"url": "embedded://", "namespace": "recovered"}}
    ) as running:
        # Then the delivery reaches the inbox
        await eventually(lambda: _inbox_size(running, PULL_A, 1), what="the recovered delivery")
