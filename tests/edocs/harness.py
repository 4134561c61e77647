"""A real hub with the document exchange on, agencies with keys from a dev PKI, and a push endpoint."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pika
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.broker import Broker, create_broker
from hub.edocs.delivery import EdocsTopology
from hub.edocs.edxml import (
    Attachment,
    Business,
    BusinessDocType,
    Organization,
    PackageHeader,
    build_package,
    document_id,
    sign_package,
)
from hub.registry import ConnectorRegistry
from hub.runtime import Hub
from hub.serving import AppServer
from hub.settings import load_settings
from hub.store import Store
from signing.pki import IssuedCertificate, issue_certificate, make_ca, make_crl
from tests.conftest import unique_namespace

SENDER = "000.00.00.H40"
PULL_A = "H40.12"
PULL_B = "H40.13"
PUSHED = "H40.14"
LEGACY = "000.00.00.G22"
UNSIGNED = "000.00.00.H41"
STRANGER = "H40.99"  # has a certificate and a member, but no agency entry
CLIENTS = {
    organ: f"VN/GOV/{organ}/edoc" for organ in (SENDER, PULL_A, PULL_B, PUSHED, LEGACY, UNSIGNED, STRANGER)
}
KEYS = {organ: f"key-{organ}" for organ in CLIENTS}
SYSTEMS = {"VPUB-H40": (SENDER, "secret-h40"), "VPUB-H40.12": (PULL_A, "secret-12")}


@dataclass(frozen=True)
class Pki:
    """A CA, its CRL on disk, and a signing certificate per organ (plus one from an untrusted CA)."""

    directory: Path
    ca: IssuedCertificate
    members: dict[str, IssuedCertificate]
    rogue: IssuedCertificate

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def crl_path(self) -> Path:
        return self.directory / "crl.pem"


def make_pki(directory: Path) -> Pki:
    ca = make_ca(not_before=datetime.now(UTC) - timedelta(days=10))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.pem").write_bytes(ca.certificate.public_bytes(Encoding.PEM))
    (directory / "crl.pem").write_bytes(make_crl(ca).public_bytes(Encoding.PEM))
    members = {organ: issue_certificate(ca, f"VN/GOV/{organ}") for organ in CLIENTS}
    rogue = issue_certificate(make_ca("Rogue CA"), f"VN/GOV/{SENDER}")
    return Pki(directory, ca, members, rogue)


def edocs_config(
    pki: Pki, *, broker_url: str, store_url: str, push_url: str | None = None, **edocs: Any
) -> dict[str, Any]:
    agencies: dict[str, Any] = {
        SENDER: {"name": "UBND tỉnh Hà Tĩnh"},
        PULL_A: {"name": "Sở Tư pháp", "parent": SENDER},
        PULL_B: {"name": "Sở Tài chính", "parent": SENDER},
        PUSHED: {"name": "Sở Nội vụ", "parent": SENDER, "endpoint": push_url or "http://127.0.0.1:9/none"},
        LEGACY: {"name": "Văn phòng Chính phủ"},
        UNSIGNED: {"name": "UBND tỉnh Nghệ An"},
    }
    section: dict[str, Any] = {
        "enabled": True,
        "hub_organ_id": "LGSP.H40",
        "members": {
            CLIENTS[SENDER]: {},
            CLIENTS[PULL_A]: {},
            CLIENTS[PULL_B]: {},
            CLIENTS[PUSHED]: {},
            CLIENTS[LEGACY]: {"legacy_sha1": True},
            CLIENTS[UNSIGNED]: {"require_signature": False},
            CLIENTS[STRANGER]: {},
        },
        "systems": {
            system: {"client": CLIENTS[organ], "secret": secret}
            for system, (organ, secret) in SYSTEMS.items()
        },
        "agencies": agencies,
        "trust": {"anchors": [str(pki.ca_path)], "crls": [str(pki.crl_path)]},
        "push": {"timeout": 2.0, "retry_delays_ms": [50, 100, 200]},
        "outbox_interval": 0.2,
        "outbox_grace": 1.0,
    }
    section.update(edocs)
    return {
        "broker": {"url": broker_url, "namespace": unique_namespace()},
        "store": {"url": store_url},
        "members": {CLIENTS[o]: {"api_keys": [KEYS[o]]} for o in CLIENTS},
        "edocs": section,
    }


def headers(organ: str, **extra: str) -> dict[str, str]:
    return {"X-Road-Client": CLIENTS[organ], "X-Api-Key": KEYS[organ], **extra}


_counter = iter(range(1, 10**9))


def package(
    pki: Pki | None,
    *,
    sender: str = SENDER,
    recipients: Sequence[str] = (PULL_A, PULL_B, PUSHED),
    number: int | None = None,
    attachments: Sequence[Attachment] = (),
    business: Business = Business(),
    subject: str = "Về việc triển khai trục liên thông văn bản",
    doc_id: str | None = None,
    signer: IssuedCertificate | None = None,
) -> bytes:
    """A package from ``sender``; signed by its certificate unless ``pki`` is None."""
    n = number if number is not None else next(_counter)
    header = PackageHeader(
        sender=Organization(sender, organ_name="UBND tỉnh"),
        recipients=tuple(Organization(r) for r in recipients),
        document_id=doc_id or document_id(sender, date(2024, 5, 2), str(n), "UBND-VP"),
        subject=subject,
        code_number=str(n),
        code_notation="UBND-VP",
        place="Hà Tĩnh",
        promulgation_date="2024/05/02",
        doc_type=1,
        type_name="Công văn",
        business=business,
    )
    data = build_package(header, attachments)
    if pki is None:
        return data
    issued = signer or pki.members[sender]
    return sign_package(data, issued.key, [issued.certificate])


def revoke_of(
    pki: Pki, original_doc_id: str, kind: BusinessDocType = BusinessDocType.REVOKE, **kw: Any
) -> bytes:
    return package(
        pki,
        doc_id=original_doc_id,
        business=Business(kind, document_id=original_doc_id, reason="Văn bản ban hành nhầm"),
        **kw,
    )


@dataclass
class PushEndpoint:
    """A real local HTTP endpoint taking pushes; it keeps one copy per Idempotency-Key, as a receiver should."""

    fail_next: int = 0
    hang_next: int = 0
    status_on_failure: int = 503
    calls: list[dict[str, Any]] = field(default_factory=list)
    accepted: dict[str, bytes] = field(default_factory=dict)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    server: AppServer | None = None

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        call = {"headers": dict(request.headers), "body": body, "at": time.monotonic()}
        self.calls.append(call)
        self.entered.set()
        if self.hang_next > 0:
            self.hang_next -= 1
            await self.release.wait()  # until the test ends: the caller gave up long before
            return JSONResponse({"error": "too late"}, status_code=503)
        if self.fail_next > 0:
            self.fail_next -= 1
            return JSONResponse({"error": "temporarily broken"}, status_code=self.status_on_failure)
        self.accepted.setdefault(request.headers["idempotency-key"], body)
        return JSONResponse({"ok": True})

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/edocs"

    def for_kind(self, kind: str) -> dict[str, bytes]:
        return {k: v for k, v in self.accepted.items() if k.startswith(f"{kind}:")}


@contextlib.asynccontextmanager
async def push_endpoint() -> AsyncIterator[PushEndpoint]:
    endpoint = PushEndpoint()
    endpoint.server = AppServer(Starlette(routes=[Route("/edocs", endpoint._handle, methods=["POST"])]))
    await endpoint.server.start()
    try:
        yield endpoint
    finally:
        endpoint.release.set()
        await endpoint.server.stop()


@dataclass
class RunningEdocs:
    hub: Hub
    gateway: AppServer
    http: httpx.AsyncClient

    async def submit(self, data: bytes, organ: str = SENDER, **kw: Any) -> httpx.Response:
        return await self.http.post(
            "/v1/edocs", content=data, headers=headers(organ, **{"Content-Type": "application/xml"}), **kw
        )

    async def inbox(self, organ: str, **params: Any) -> dict[str, Any]:
        response = await self.http.get("/v1/edocs/inbox", params=params, headers=headers(organ))
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def status(self, organ: str, hub_id: str, code: str, **body: Any) -> httpx.Response:
        return await self.http.post(
            f"/v1/edocs/{hub_id}/status", json={"code": code, **body}, headers=headers(organ)
        )

    @property
    def extension(self) -> Any:
        return next(e for e in self.hub.extensions if e.name == "edocs")


@contextlib.asynccontextmanager
async def running_edocs(
    config: dict[str, Any], *, workers: bool = True, broker: Broker | None = None
) -> AsyncIterator[RunningEdocs]:
    settings = load_settings(data=config, environ={})
    hub = Hub(
        settings,
        broker=broker or create_broker(settings.broker.url),
        store=Store.from_url(settings.store.url),
        registry=ConnectorRegistry([]),
    )
    await hub.start()
    try:
        await hub.start_extensions(workers=workers)
        gateway = await AppServer(hub.gateway_app()).start()
        try:
            async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as http:
                yield RunningEdocs(hub, gateway, http)
        finally:
            await gateway.stop()
    finally:
        await hub.stop(timeout=5)
        if settings.broker.url.startswith("amqp"):
            await asyncio.to_thread(delete_namespace, settings.broker.url, settings.broker.namespace)


def delete_namespace(url: str, namespace: str) -> None:
    """Delete the edocs exchange and queues of a test's broker namespace from RabbitMQ."""
    names = EdocsTopology(namespace, (50, 100, 200, 1000, 5000))
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(url))) as connection:
        channel = connection.channel()
        for spec in (names.pull, names.push):
            for queue in (
                spec.name,
                spec.dlq_name,
                *(f"{spec.name}.retry.{d}" for d in names.retry_delays_ms),
            ):
                channel.queue_delete(queue)
        channel.exchange_delete(names.exchange)


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    timeout: float = 10.0,
    what: str = "condition",
) -> None:
    """Wait until ``check()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)
