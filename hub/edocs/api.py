"""The document exchange REST API (``/v1/edocs``), authenticated like the gateway (X-Road-Client +
X-Api-Key); errors are ``{type, message, detail}``.

| route | what |
|---|---|
| ``POST /v1/edocs`` | submit a package: raw edXML, or multipart with an ``edxml`` (or ``edocFile``) part |
| ``GET /v1/edocs/inbox`` | the caller's deliveries (``kind``, ``state``, ``from``, ``since``, ``until``, ``after``, ``limit``) |
| ``GET /v1/edocs/{id}`` | the package as received plus the hub's TraceHeader |
| ``POST /v1/edocs/{id}/ack`` | acknowledge the caller's delivery of it |
| ``POST /v1/edocs/{id}/status`` | a status: edXML status message, or JSON ``{code, description, ...}`` |
| ``GET /v1/edocs/{id}/status`` | each recipient's state and history |
| ``GET /v1/edocs/{id}/attachments/{n}`` | one attachment, decoded |
| ``GET /v1/edocs/statuses/{status_id}`` | a status message as edXML |
| ``POST /v1/edocs/deliveries/{delivery}/ack`` | acknowledge any delivery (statuses too) |
| ``GET /v1/edocs/agencies`` | the agencies directory |
"""

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from hub.dispositions import MAINTENANCE, MALFORMED, TOO_LARGE, UNAUTHENTICATED, Disposition, error_body
from hub.edocs.auth import authenticate_member
from hub.edocs.edxml import VN_TIME, StaffInfo, StatusCode
from hub.edocs.errors import (
    CallerRefused,
    DocumentNotFound,
    EdocsError,
    PackageInvalid,
    PackageMalformed,
    PackageRefused,
    PackageTooLarge,
    SignatureRefused,
    TransitionRefused,
    UnknownAgency,
)
from hub.edocs.ingest import MULTIPART_OVERHEAD, Spool, is_multipart, split_multipart, spool_body
from hub.edocs.service import EdocCaller, EdocsService, StatusInput
from hub.envelope import new_id
from hub.errors import StoreError
from hub.gateway.common import Attempt, record

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger(__name__)

PACKAGE_PARTS = ("edxml", "edocFile", "edoc", "file", "package")
_FILE_FIELDS = frozenset(PACKAGE_PARTS)

_TABLE: tuple[tuple[type[Exception], Disposition], ...] = (
    (PackageTooLarge, TOO_LARGE),
    (PackageMalformed, Disposition("Client.BadRequest", 400, client_fault=True)),
    (PackageInvalid, Disposition("Client.InvalidRequest", 400, client_fault=True)),
    (PackageRefused, Disposition("Client.InvalidRequest", 400, client_fault=True)),
    (SignatureRefused, Disposition("Client.InvalidSignature", 403, client_fault=True)),
    (UnknownAgency, Disposition("Client.UnknownRecipient", 400, client_fault=True)),
    (DocumentNotFound, Disposition("Client.NotFound", 404, client_fault=True)),
    (TransitionRefused, Disposition("Client.InvalidTransition", 409, client_fault=True)),
    (StoreError, Disposition("Server.ClientProxy.StoreUnavailable", 503)),
)
_CALLER = {
    "malformed": MALFORMED,
    "unauthenticated": UNAUTHENTICATED,
    "denied": Disposition("Client.AccessDenied", 403, client_fault=True),
}


def disposition_of(exc: Exception) -> Disposition:
    """The HTTP status and X-Road error type of a document exchange failure."""
    if isinstance(exc, CallerRefused):
        return _CALLER.get(exc.kind, UNAUTHENTICATED)
    for kind, disposition in _TABLE:
        if isinstance(exc, kind):
            return disposition
    return Disposition("Server.ServerProxy.InternalError", 500)


def detail_of(exc: Exception) -> dict[str, Any] | None:
    """The data an error carries, for the ``detail`` of the error body."""
    names = ("element", "line", "reason", "codes", "current", "code", "limit", "kind")
    found = {n: getattr(exc, n) for n in names if getattr(exc, n, None) is not None}
    if isinstance(exc, CallerRefused):
        found.pop("kind", None)
    return found or None


def error_response(exc: Exception) -> Response:
    disposition = disposition_of(exc)
    message = str(exc) if disposition.status < 500 or isinstance(exc, StoreError) else "internal error"
    if isinstance(exc, StoreError):
        message = "the store is unavailable; try again"
    return Response(
        error_body(disposition.error_type, message, detail_of(exc)),
        status_code=disposition.status,
        media_type="application/json",
        headers={"X-Road-Error": disposition.error_type},
    )


def parse_moment(value: str | None, name: str) -> datetime | None:
    """ISO 8601, or ``yyyy/MM/dd`` (Vietnam time, start of day).

    Raises:
        PackageInvalid: neither.
    """
    if not value:
        return None
    for parse in (
        lambda v: datetime.strptime(v, "%Y/%m/%d").replace(tzinfo=VN_TIME),
        datetime.fromisoformat,
    ):
        try:
            moment = parse(value)
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=VN_TIME)
    raise PackageInvalid(f"{name}: {value!r} is neither ISO 8601 nor yyyy/MM/dd", element=name)


def parse_int(value: str | None, name: str, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise PackageInvalid(f"{name}: {value!r} is not an integer", element=name) from None


def status_input(payload: Any) -> StatusInput:
    """A JSON status: ``{code, description?, timestamp?, staff?{department, staff, mobile, email}, recipients?}``.

    Raises:
        PackageInvalid: a field is missing or wrong (named).
    """
    if not isinstance(payload, dict):
        raise PackageInvalid("the status must be a JSON object", element="(body)")
    code = str(payload.get("code") or payload.get("statusCode") or "")
    try:
        status_code = StatusCode(code)
    except ValueError:
        known = ", ".join(c.value for c in StatusCode)
        raise PackageInvalid(f"code: {code!r} is not a status code ({known})", element="code") from None
    staff = payload.get("staff")
    if staff is not None and not isinstance(staff, dict):
        raise PackageInvalid("staff must be an object", element="staff")
    recipients = payload.get("recipients") or ()
    if not isinstance(recipients, list | tuple) or not all(isinstance(r, str) for r in recipients):
        raise PackageInvalid("recipients must be a list of organ codes", element="recipients")
    timestamp = payload.get("timestamp")
    if timestamp is not None:
        try:
            datetime.strptime(str(timestamp), "%Y/%m/%d %H:%M:%S")
        except ValueError:
            raise PackageInvalid("timestamp must be yyyy/MM/dd HH:mm:ss", element="timestamp") from None
    return StatusInput(
        code=status_code,
        description=str(payload.get("description") or "")[:1000],
        timestamp=str(timestamp) if timestamp else None,
        staff=StaffInfo(
            **{k: str(staff.get(k, ""))[:255] for k in ("department", "staff", "mobile", "email")}
        )
        if staff
        else None,
        recipients=tuple(recipients),
    )


async def read_package_body(
    request: Request, limit: int, parts: tuple[str, ...] = PACKAGE_PARTS
) -> tuple[Spool, dict[str, str]]:
    """The edXML of a request: the raw body, or the named part of a multipart body; plus form fields.

    Raises:
        PackageTooLarge: over the limit.
        PackageMalformed: a multipart body that cannot be parsed.
        PackageInvalid: a multipart body without an edXML part.
    """
    content_type = request.headers.get("content-type")
    multipart = is_multipart(content_type)
    body = await spool_body(
        request.stream(),
        limit + (MULTIPART_OVERHEAD if multipart else 0),
        request.headers.get("content-length"),
    )
    if not multipart:
        return body, {}
    assert content_type is not None
    try:
        split = split_multipart(body, content_type, part_limit=limit, file_fields=_FILE_FIELDS)
    finally:
        body.close()
    chosen = next((split.files.pop(name) for name in parts if name in split.files), None)
    if chosen is None and split.files:
        chosen = split.files.pop(next(iter(split.files)))
    split.close()
    if chosen is None:
        raise PackageInvalid(
            f"the multipart body has no edXML part (expected one of: {', '.join(parts)})", element="edxml"
        )
    return chosen, split.fields


class Endpoint:
    """Runs one document exchange request: maintenance, authentication, errors, metrics, exchange log."""

    def __init__(
        self, hub: "Hub", service: EdocsService, authenticate: Callable[..., EdocCaller], label: str
    ) -> None:
        self.hub = hub
        self.service = service
        self._authenticate = authenticate
        self._label = label

    async def run(
        self,
        request: Request,
        operation: str,
        work: Callable[[EdocCaller], Awaitable[Response]],
        *,
        on_error: Callable[[Exception], Response] = error_response,
    ) -> Response:
        attempt = Attempt(
            method=request.method,
            message_id=new_id(),
            client=request.headers.get("x-road-client") or request.headers.get("x-systemid") or "-",
            service=self._label,
            operation=operation,
            request_bytes=int(request.headers.get("content-length") or 0),
        )
        client = attempt.client
        try:
            if await self.hub.in_maintenance():
                response = Response(
                    error_body(MAINTENANCE.error_type, "the hub is in maintenance mode; try again later"),
                    status_code=503,
                    media_type="application/json",
                    headers={"X-Road-Error": MAINTENANCE.error_type},
                )
            else:
                caller = self._authenticate(self.hub.settings, request.headers)
                client = caller.client
                response = await work(caller)
        except (EdocsError, StoreError) as exc:
            level = (
                logging.WARNING
                if isinstance(exc, StoreError | SignatureRefused | CallerRefused)
                else logging.INFO
            )
            log.log(level, "edocs %s refused for %s: %s", operation, client, exc)
            response = on_error(exc)
        attempt.client = client[:512]
        attempt.response_bytes = int(response.headers.get("content-length") or 0)
        attempt.error_type = response.headers.get("X-Road-Error")
        if attempt.error_type:
            self.hub.metrics.count_error(self._label, attempt.error_type)
        record(self.hub, attempt, response.status_code)
        return response


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def edocs_router(hub: "Hub", service: EdocsService) -> APIRouter:
    """The ``/v1/edocs`` routes over ``service``."""
    router = APIRouter(prefix="/v1/edocs")
    endpoint = Endpoint(hub, service, authenticate_member, "edocs")
    limit = service.settings.max_package_bytes

    @router.post("")
    async def submit(request: Request) -> Response:
        async def work(caller: EdocCaller) -> Response:
            spool, _ = await read_package_body(request, limit)
            with spool:
                submission = await service.submit(caller, spool)
            headers = {"Location": f"/v1/edocs/{submission.body['id']}"}
            if submission.replayed:
                headers["Idempotent-Replayed"] = "true"
            return Response(submission.content, 201, headers, media_type="application/json")

        return await endpoint.run(request, "submit", work)

    # The submission is the hot path: the gateway serves this plain route ahead of its FastAPI
    # sub-application (hub/gateway/app.py); the API route above describes it in the OpenAPI document.
    router.add_route(router.prefix, submit, methods=["POST"], include_in_schema=False)

    @router.get("/inbox")
    async def inbox(request: Request) -> Response:
        async def work(caller: EdocCaller) -> Response:
            query = request.query_params
            kind = query.get("kind", "edoc")
            if kind not in ("edoc", "status", "all"):
                raise PackageInvalid("kind must be edoc, status or all", element="kind")
            page = await service.inbox(
                caller,
                kind=kind,
                state=query.get("state", "available"),
                sender=query.get("from") or None,
                since=parse_moment(query.get("since"), "since"),
                until=parse_moment(query.get("until"), "until"),
                after=parse_int(query.get("after"), "after", 0),
                limit=parse_int(query.get("limit"), "limit", 50),
            )
            return _json(page)

        return await endpoint.run(request, "inbox", work)

    @router.get("/agencies")
    async def agencies(request: Request) -> Response:
        async def work(caller: EdocCaller) -> Response:
            listed = await service.directory.all()
            return _json(
                {
                    "agencies": [
                        {"code": a.code, "name": a.name, "parent": a.parent, "mode": a.mode} for a in listed
                    ]
                }
            )

        return await endpoint.run(request, "agencies", work)

    @router.get("/statuses/{status_id}")
    async def status_message(request: Request, status_id: str) -> Response:
        async def work(caller: EdocCaller) -> Response:
            raw = await service.status_message(caller, status_id)
            return Response(raw, media_type="application/xml")

        return await endpoint.run(request, "status-message", work)

    @router.post("/deliveries/{delivery_id}/ack")
    async def ack_delivery(request: Request, delivery_id: int) -> Response:
        async def work(caller: EdocCaller) -> Response:
            return _json(await service.ack(caller, delivery_id=delivery_id))

        return await endpoint.run(request, "ack", work)

    @router.get("/{hub_id}")
    async def document(request: Request, hub_id: str) -> Response:
        async def work(caller: EdocCaller) -> Response:
            content = await service.open_document(caller, hub_id)
            return StreamingResponse(content.stream, media_type="application/xml", headers=content.headers)

        return await endpoint.run(request, "document", work)

    @router.post("/{hub_id}/ack")
    async def ack(request: Request, hub_id: str) -> Response:
        async def work(caller: EdocCaller) -> Response:
            return _json(await service.ack(caller, hub_id))

        return await endpoint.run(request, "ack", work)

    @router.post("/{hub_id}/status")
    async def post_status(request: Request, hub_id: str) -> Response:
        async def work(caller: EdocCaller) -> Response:
            content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
            if content_type == "application/json":
                spool = await spool_body(request.stream(), 1024 * 1024, request.headers.get("content-length"))
                with spool:
                    try:
                        payload = json.loads(spool.read_all())
                    except ValueError as exc:
                        raise PackageMalformed(f"the body is not JSON: {exc}", reason="json") from exc
                result = await service.post_status(caller, hub_id, status_input(payload))
            else:
                spool, _ = await read_package_body(request, limit)
                with spool:
                    result = await service.submit_status_message(caller, spool.read_all(), hub_id)
            headers = {"Idempotent-Replayed": "true"} if result["replayed"] else None
            return _json(result, 201, headers)

        return await endpoint.run(request, "status", work)

    @router.get("/{hub_id}/status")
    async def status_history(request: Request, hub_id: str) -> Response:
        async def work(caller: EdocCaller) -> Response:
            return _json(await service.status_history(caller, hub_id))

        return await endpoint.run(request, "status-history", work)

    @router.get("/{hub_id}/attachments/{position}")
    async def attachment(request: Request, hub_id: str, position: int) -> Response:
        async def work(caller: EdocCaller) -> Response:
            content = await service.attachment(caller, hub_id, position)
            name = str(content.meta["name"]).replace('"', "")
            return StreamingResponse(
                content.stream,
                media_type=str(content.meta["content_type"]) or "application/octet-stream",
                headers={
                    "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(name)}",
                    "X-Edoc-Sha256": str(content.meta["sha256"]),
                },
            )

        return await endpoint.run(request, "attachment", work)

    return router


def _quote(text: str) -> str:
    return quote(text, safe="")


__all__ = [
    "Endpoint",
    "detail_of",
    "disposition_of",
    "edocs_router",
    "error_response",
    "parse_moment",
    "read_package_body",
    "status_input",
]
