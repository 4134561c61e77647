"""`lgsp demo`'s document exchange story: a signed document from the provincial People's Committee to
three departments (two pull, one push to a small local endpoint), their statuses back, and a recall."""

import asyncio
import contextlib
import functools
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.demo.flow import DemoContext, DemoFlow, Outcome, Scenario
from hub.edocs.edxml import (
    Attachment,
    Organization,
    PackageHeader,
    ResponseFor,
    StatusCode,
    StatusMessage,
    build_package,
    build_status,
    document_id,
    format_timestamp,
    parse_edxml,
    sign_package,
    strip_hub_trace,
)
from hub.serving import AppServer
from signing.errors import SigningError
from signing.pki import DevPki, IssuedCertificate
from signing.trust import TrustStore
from signing.xmldsig import SignaturePolicy, verify_xml

SENDER = "000.00.00.H40"
PULL = ("H40.12", "H40.13")
PUSHED = "H40.14"
HUB_ORGAN = "LGSP.H40"
NAMES = {
    SENDER: "Văn phòng UBND tỉnh",
    "H40.12": "Sở Tư pháp",
    "H40.13": "Sở Tài chính",
    PUSHED: "Sở Nội vụ",
}


def _client(organ: str) -> str:
    return f"VN/GOV/{organ}/edoc"


def _key(organ: str) -> str:
    return f"demo-edoc-{organ}"


def _headers(organ: str, **extra: str) -> dict[str, str]:
    return {"X-Road-Client": _client(organ), "X-Api-Key": _key(organ), **extra}


class EdocsFlow(DemoFlow):
    """Signed document exchange with statuses and a recall."""

    name = "edocs"

    def __init__(self) -> None:
        self._directory: Path | None = None
        self._certificates: dict[str, IssuedCertificate] = {}
        self._pushed: list[dict[str, Any]] = []
        self._endpoint = AppServer(Starlette(routes=[Route("/inbox", self._receive, methods=["POST"])]))
        self._document: str | None = None
        self._trust: TrustStore | None = None

    async def _receive(self, request: Request) -> JSONResponse:
        self._pushed.append({"headers": dict(request.headers), "body": await request.body()})
        return JSONResponse({"received": True})

    async def start(self) -> dict[str, Any]:
        self._directory = Path(tempfile.mkdtemp(prefix="lgsp-demo-pki-"))
        pki = DevPki(self._directory)
        await asyncio.to_thread(pki.init)
        for organ in NAMES:
            self._certificates[organ] = await asyncio.to_thread(pki.issue, f"VN/GOV/{organ}")
        self._trust = TrustStore.from_files(anchors=[pki.ca_cert_path], crls=[pki.crl_path])
        await self._endpoint.start()
        agencies: dict[str, Any] = {SENDER: {"name": NAMES[SENDER]}}
        for organ in (*PULL, PUSHED):
            agencies[organ] = {"name": NAMES[organ], "parent": SENDER}
        agencies[PUSHED]["endpoint"] = f"{self._endpoint.url}/inbox"
        return {
            "members": {_client(o): {"name": NAMES[o], "api_keys": [_key(o)]} for o in NAMES},
            "edocs": {
                "enabled": True,
                "hub_organ_id": HUB_ORGAN,
                "members": {_client(o): {} for o in NAMES},
                "agencies": agencies,
                "trust": {"anchors": [str(pki.ca_cert_path)], "crls": [str(pki.crl_path)]},
                "push": {"timeout": 5.0, "retry_delays_ms": [200, 1000, 5000]},
                "outbox_interval": 1.0,
                "outbox_grace": 5.0,
            },
        }

    async def stop(self) -> None:
        await self._endpoint.stop()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)

    def _package(self) -> bytes:
        issued = self._certificates[SENDER]
        header = PackageHeader(
            sender=Organization(SENDER, organ_name=NAMES[SENDER]),
            recipients=tuple(Organization(o, organ_name=NAMES[o]) for o in (*PULL, PUSHED)),
            document_id=document_id(SENDER, date.today(), str(int(time.time()) % 100000), "UBND-VP"),
            subject="Về việc triển khai trục liên thông văn bản tỉnh",
            code_number="123",
            code_notation="UBND-VP",
            place="Hà Tĩnh",
            promulgation_date=format_timestamp()[:10],
            doc_type=1,
            type_name="Công văn",
            signer_full_name="Nguyễn Văn A",
        )
        attachment = Attachment("cid:1", "cong-van.pdf", "application/pdf", b"%PDF-1.4 demo\n" * 2000)
        return sign_package(build_package(header, [attachment]), issued.key, [issued.certificate])

    def scenarios(self) -> list[Scenario]:
        return [
            Scenario("edocs: signed document to three agencies", "201, 3 recipients", self._send),
            Scenario("edocs: two pull recipients fetch and ack", "2 inboxes, signature ok", self._pull),
            Scenario("edocs: push recipient gets one POST", "1 push", self._push),
            Scenario("edocs: statuses back to the sender", "01, 03, 03 in sender's inbox", self._statuses),
            Scenario("edocs: 06 before 03 is refused", "409", self._bad_transition),
            Scenario("edocs: recall (13, then 15)", "recall accepted", self._recall),
            Scenario("edocs: tampered package refused", "403 digest mismatch", self._tampered),
        ]

    async def _send(self, context: DemoContext) -> Outcome:
        response = await context.http.post(
            "/v1/edocs",
            content=self._package(),
            headers=_headers(SENDER, **{"Content-Type": "application/xml"}),
        )
        if response.status_code != 201:
            return Outcome(False, f"{response.status_code} {response.text[:120]}")
        body = response.json()
        self._document = body["id"]
        return Outcome(len(body["recipients"]) == 3, f"201, {len(body['recipients'])} recipients")

    async def _pull(self, context: DemoContext) -> Outcome:
        if self._document is None:
            return Outcome(False, "no document was sent")
        verified = 0
        for organ in PULL:
            fetch = functools.partial(_inbox_ids, context.http, organ)
            listed = await _poll(fetch, lambda ids: self._document in ids)
            if self._document not in listed:
                return Outcome(False, f"not in {organ}'s inbox")
            fetched = await context.http.get(f"/v1/edocs/{self._document}", headers=_headers(organ))
            if self._signature_ok(fetched.content):
                verified += 1
            await context.http.post(f"/v1/edocs/{self._document}/ack", headers=_headers(organ))
        return Outcome(verified == 2, f"2 inboxes, signature {'ok' if verified == 2 else 'FAILED'}")

    def _signature_ok(self, data: bytes) -> bool:
        # A recipient removes the hub's TraceHeader and checks the sender's signature itself.
        assert self._trust is not None
        root = parse_edxml(data)
        strip_hub_trace(root, HUB_ORGAN)
        ns = "{http://www.mic.gov.vn/TBT/QCVN_102_2016}"
        policy = SignaturePolicy(
            trust=self._trust, location=f"./{ns}edXMLEnvelope/{ns}edXMLHeader/", excise_empty_xmlns=True
        )
        with contextlib.suppress(SigningError):
            return verify_xml(etree.tostring(root), policy).member_id == f"VN/GOV/{SENDER}"
        return False

    async def _push(self, context: DemoContext) -> Outcome:
        await _poll(lambda: _value(len(self._pushed)), lambda n: n >= 1)
        keys = {p["headers"].get("idempotency-key") for p in self._pushed}
        return Outcome(len(keys) == 1 and len(self._pushed) >= 1, f"{len(keys)} push")

    async def _statuses(self, context: DemoContext) -> Outcome:
        if self._document is None:
            return Outcome(False, "no document was sent")
        http = context.http
        first, _ = PULL
        await http.post(f"/v1/edocs/{self._document}/status", json={"code": "01"}, headers=_headers(first))
        await http.post(
            f"/v1/edocs/{self._document}/status",
            json={
                "code": "03",
                "description": "Tiếp nhận vào sổ văn bản đến",
                "staff": {"staff": "Trần Thị B"},
            },
            headers=_headers(first),
        )
        status = build_status(
            StatusMessage(
                sender=Organization(PUSHED, organ_name=NAMES[PUSHED]),
                response_for=ResponseFor(SENDER, await self._document_id(http)),
                code=StatusCode.ACCEPTED,
                timestamp=format_timestamp(),
                description="Đã tiếp nhận",
            )
        )
        await http.post(
            f"/v1/edocs/{self._document}/status",
            content=status,
            headers=_headers(PUSHED, **{"Content-Type": "application/xml"}),
        )
        codes = await _poll(lambda: _status_codes(http), lambda found: len(found) >= 3)
        return Outcome(sorted(codes) == ["01", "03", "03"], ", ".join(sorted(codes)) + " in sender's inbox")

    async def _document_id(self, http: httpx.AsyncClient) -> str:
        response = await http.get(f"/v1/edocs/{self._document}/status", headers=_headers(SENDER))
        return str(response.json()["document_id"])

    async def _bad_transition(self, context: DemoContext) -> Outcome:
        response = await context.http.post(
            f"/v1/edocs/{self._document}/status", json={"code": "06"}, headers=_headers(PULL[1])
        )
        return Outcome(response.status_code == 409, str(response.status_code))

    async def _recall(self, context: DemoContext) -> Outcome:
        http = context.http
        first = PULL[0]
        asked = await http.post(
            f"/v1/edocs/{self._document}/status",
            json={"code": "13", "description": "Văn bản gửi nhầm", "recipients": [first]},
            headers=_headers(SENDER),
        )
        answered = await http.post(
            f"/v1/edocs/{self._document}/status", json={"code": "15"}, headers=_headers(first)
        )
        history = (await http.get(f"/v1/edocs/{self._document}/status", headers=_headers(SENDER))).json()
        recall = history.get("recipients", {}).get(first, {}).get("recall")
        ok = asked.status_code == 201 and answered.status_code == 201 and recall == "accepted"
        return Outcome(ok, f"recall {recall}")

    async def _tampered(self, context: DemoContext) -> Outcome:
        tampered = self._package().replace("Về việc".encode(), "Về viec".encode(), 1)
        response = await context.http.post(
            "/v1/edocs", content=tampered, headers=_headers(SENDER, **{"Content-Type": "application/xml"})
        )
        reason = (
            (response.json().get("detail") or {}).get("reason", "") if response.status_code == 403 else ""
        )
        return Outcome(
            response.status_code == 403 and reason == "digest mismatch", f"{response.status_code} {reason}"
        )


async def _value(value: Any) -> Any:
    return value


async def _inbox_ids(http: httpx.AsyncClient, organ: str) -> list[str]:
    response = await http.get("/v1/edocs/inbox", headers=_headers(organ))
    return [item["id"] for item in response.json().get("items", [])] if response.status_code == 200 else []


async def _status_codes(http: httpx.AsyncClient) -> list[str]:
    response = await http.get("/v1/edocs/inbox", params={"kind": "status"}, headers=_headers(SENDER))
    items = response.json().get("items", []) if response.status_code == 200 else []
    return [item["status"]["code"] for item in items]


async def _poll(
    fetch: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], timeout: float = 10.0
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


__all__ = ["EdocsFlow"]
