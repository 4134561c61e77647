"""The LGSP-compatible facade over the same core, for existing provincial document software.

Routes (Lạng Sơn LGSP shapes): ``POST /v1/sendEdoc`` (multipart ``edocFile``, ``messageType=edoc|status``),
``GET /v1/syncReceivedEdocList?messageType=&fromDate=yyyy/MM/dd&toDate=``, ``GET /v1/getEdoc?docId=``
(base64 edXML), ``POST /v1/updateStatus``, ``GET /v1/getAgenciesList``; authenticated with
``X-SystemId`` / ``X-SecretKey``. Every answer is HTTP 200 with
``{"status": "OK"|"FAIL", "ErrorCode": n, "ErrorDesc": "...", "data": ...}`` (⚠ the code numbers and
the updateStatus values are inferred; docs/edocs.md lists the mapping).
"""

import base64
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from hub.edocs.api import Endpoint, parse_moment, read_package_body
from hub.edocs.auth import authenticate_system
from hub.edocs.edxml import StatusCode, format_timestamp
from hub.edocs.errors import (
    CallerRefused,
    DocumentNotFound,
    PackageInvalid,
    PackageMalformed,
    PackageRefused,
    PackageTooLarge,
    SignatureRefused,
    TransitionRefused,
    UnknownAgency,
)
from hub.edocs.ingest import spool_body
from hub.edocs.service import EdocCaller, EdocsService, StatusInput

if TYPE_CHECKING:
    from hub.runtime import Hub

OK = 0
AUTH_FAILED = 10
BAD_REQUEST = 15
INVALID_EDXML = 18
SIGNATURE_INVALID = 19
UNKNOWN_AGENCY = 20
NOT_FOUND = 21
INVALID_STATUS = 22
INTERNAL = 23

# VXP-style updateStatus values -> the QĐ 28 status code they record (None: acknowledge only).
UPDATE_STATUS_CODES: dict[str, StatusCode | None] = {
    "inbox": StatusCode.ARRIVED,
    "acceptance": StatusCode.ACCEPTED,
    "rejection": StatusCode.REJECTED,
    "processing": StatusCode.PROCESSING,
    "done": StatusCode.DONE,
}
EDOC_TYPES = frozenset({"edoc", "replacement", "revocation", "update"})


def facade_code(exc: Exception) -> int:
    """The facade ErrorCode of a failure."""
    if isinstance(exc, CallerRefused):
        return AUTH_FAILED if exc.kind != "denied" else SIGNATURE_INVALID
    table: tuple[tuple[type[Exception], int], ...] = (
        (PackageTooLarge, BAD_REQUEST),
        (PackageMalformed, INVALID_EDXML),
        (PackageInvalid, INVALID_EDXML),
        (PackageRefused, BAD_REQUEST),
        (SignatureRefused, SIGNATURE_INVALID),
        (UnknownAgency, UNKNOWN_AGENCY),
        (DocumentNotFound, NOT_FOUND),
        (TransitionRefused, INVALID_STATUS),
    )
    return next((code for kind, code in table if isinstance(exc, kind)), INTERNAL)


def answer(data: Any = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"status": "OK", "ErrorCode": OK, "ErrorDesc": "", "data": data, **extra})


def failure(exc: Exception) -> Response:
    code = facade_code(exc)
    text = str(exc) if code != INTERNAL else "internal error; try again"
    return JSONResponse({"status": "FAIL", "ErrorCode": code, "ErrorDesc": text, "data": None})


class _BadParameter(PackageRefused):
    """A facade parameter is missing or wrong."""


def _param(values: dict[str, str], *names: str) -> str:
    for name in names:
        value = values.get(name)
        if value:
            return value
    return ""


async def _request_values(request: Request) -> dict[str, str]:
    """Query parameters, then a JSON or form body's fields (body wins)."""
    values = dict(request.query_params)
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == "application/json":
        spool = await spool_body(request.stream(), 256 * 1024, request.headers.get("content-length"))
        with spool:
            try:
                payload = json.loads(spool.read_all() or b"{}")
            except ValueError as exc:
                raise PackageMalformed(f"the body is not JSON: {exc}", reason="json") from exc
        if not isinstance(payload, dict):
            raise _BadParameter("the body must be a JSON object")
        values.update({k: "" if v is None else str(v) for k, v in payload.items()})
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form(max_files=0, max_fields=50)
        values.update({k: v for k, v in form.items() if isinstance(v, str)})
    return values


def facade_router(hub: "Hub", service: EdocsService) -> APIRouter:
    """The LGSP facade routes over ``service``."""
    router = APIRouter(prefix="/v1")
    endpoint = Endpoint(hub, service, authenticate_system, "edocs-lgsp")
    limit = service.settings.max_package_bytes

    async def run(request: Request, operation: str, work: Any) -> Response:
        return await endpoint.run(request, operation, work, on_error=failure)

    @router.post("/sendEdoc")
    async def send_edoc(request: Request) -> Response:
        async def work(caller: EdocCaller) -> Response:
            spool, fields = await read_package_body(request, limit, parts=("edocFile", "file", "edxml"))
            message_type = (
                fields.get("messageType") or request.query_params.get("messageType") or "edoc"
            ).lower()
            with spool:
                if message_type == "status":
                    result = await service.submit_status_message(caller, spool.read_all())
                    return answer(
                        {
                            "docId": result["id"],
                            "statusCode": result["code"],
                            "statusIds": [s["id"] for s in result["statuses"]],
                        },
                        DocID=result["id"],
                    )
                if message_type not in EDOC_TYPES:
                    raise _BadParameter(f"messageType {message_type!r} is not edoc or status")
                submission = await service.submit(caller, spool)
            body = submission.body
            return answer(
                {
                    "docId": body["id"],
                    "documentId": body["document_id"],
                    "duplicate": submission.replayed,
                    "to": [r["organ_id"] for r in body["recipients"]],
                },
                DocID=body["id"],
            )

        return await run(request, "sendEdoc", work)

    @router.get("/syncReceivedEdocList")
    async def sync_received(request: Request) -> Response:
        async def work(caller: EdocCaller) -> Response:
            query = request.query_params
            message_type = (query.get("messageType") or "edoc").lower()
            if message_type not in ("edoc", "status"):
                raise _BadParameter(f"messageType {message_type!r} is not edoc or status")
            since = parse_moment(query.get("fromDate"), "fromDate")
            until = parse_moment(query.get("toDate"), "toDate")
            page = await service.inbox(
                caller,
                kind=message_type,
                state="available",
                since=since,
                until=until + timedelta(days=1) if until else None,
                limit=service.settings.page_size,
            )
            items = [_knobstick(item) for item in page["items"]]
            return answer(items, knobsticks=items, total=len(items))

        return await run(request, "syncReceivedEdocList", work)

    @router.get("/getEdoc")
    async def get_edoc(request: Request) -> Response:
        async def work(caller: EdocCaller) -> Response:
            doc_id = request.query_params.get("docId") or ""
            if not doc_id:
                raise _BadParameter("docId is required")
            if (request.query_params.get("messageType") or "edoc").lower() == "status":
                raw = await service.status_message(caller, doc_id)
                return answer(
                    {"docId": doc_id, "messageType": "status", "content": base64.b64encode(raw).decode()}
                )
            content = await service.open_document(caller, doc_id)
            return StreamingResponse(_base64_json(doc_id, content.stream), media_type="application/json")

        return await run(request, "getEdoc", work)

    @router.post("/updateStatus")
    async def update_status(request: Request) -> Response:
        async def work(caller: EdocCaller) -> Response:
            values = await _request_values(request)
            doc_id = _param(values, "docId", "docid", "id")
            if not doc_id:
                raise _BadParameter("docId is required")
            message_type = _param(values, "messageType").lower() or "edoc"
            status = _param(values, "status").lower()
            code_text = _param(values, "statusCode", "code")
            if message_type == "status":
                acked = await service.ack_status(caller, doc_id)
                return answer({"docId": doc_id, "state": acked["state"]})
            if status == "fail":
                await service.record_failure(
                    caller, doc_id, _param(values, "description", "reason") or "fail"
                )
                return answer({"docId": doc_id, "state": "fail"})
            if status and status not in UPDATE_STATUS_CODES:
                known = ", ".join([*UPDATE_STATUS_CODES, "fail"])
                raise _BadParameter(f"status {status!r} is not one of {known}")
            code: StatusCode | None
            try:
                code = StatusCode(code_text) if code_text else UPDATE_STATUS_CODES.get(status)
            except ValueError:
                raise _BadParameter(f"statusCode {code_text!r} is not a status code") from None
            if code is None:
                raise _BadParameter(
                    "give status (inbox, acceptance, rejection, processing, done, fail) or statusCode"
                )
            if code is not StatusCode.RECALL_REQUESTED:
                await service.ack_if_recipient(caller, doc_id)
            result = await service.post_status(
                caller,
                doc_id,
                StatusInput(code=code, description=_param(values, "description")[:1000]),
            )
            return answer(
                {
                    "docId": doc_id,
                    "statusCode": code.value,
                    "statusIds": [s["id"] for s in result["statuses"]],
                }
            )

        return await run(request, "updateStatus", work)

    @router.get("/getAgenciesList")
    async def agencies(request: Request) -> Response:
        async def work(caller: EdocCaller) -> Response:
            listed = await service.directory.all()
            return answer(
                [{"id": a.code, "code": a.code, "name": a.name, "pcode": a.parent or ""} for a in listed]
            )

        return await run(request, "getAgenciesList", work)

    return router


def _knobstick(item: dict[str, Any]) -> dict[str, Any]:
    created = item["available_at"] or item["received_at"]
    common = {
        "messageType": item["kind"],
        "documentId": item["document_id"],
        "createdDate": format_timestamp(datetime.fromisoformat(created)) if created else "",
    }
    if item["kind"] == "status":
        status = item["status"]
        return {
            "docId": status["id"],
            "id": status["id"],
            "edocId": item["id"],
            "from": status["from"],
            "statusCode": status["code"],
            "description": status["description"],
            "timestamp": status["timestamp"],
            **common,
        }
    return {
        "docId": item["id"],
        "id": item["id"],
        "from": item["from"],
        "code": item["code"],
        "subject": item["subject"],
        "promulgationDate": item["promulgation_date"],
        "businessDocType": item["business_type"],
        **common,
    }


async def _base64_json(doc_id: str, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    # {"status":"OK",...,"data":{"docId":..,"content":"<base64>"}} without holding the package in memory.
    head = json.dumps(
        {"status": "OK", "ErrorCode": OK, "ErrorDesc": "", "data": {"docId": doc_id, "content": ""}}
    )
    prefix, _, suffix = head.rpartition('""')
    yield (prefix + '"').encode()
    carry = b""
    async for piece in stream:
        data = carry + piece
        cut = len(data) - len(data) % 3
        carry = data[cut:]
        if cut:
            yield base64.b64encode(data[:cut])
    if carry:
        yield base64.b64encode(carry)
    yield ('"' + suffix).encode()


__all__ = ["UPDATE_STATUS_CODES", "facade_code", "facade_router"]
