"""The SOAP face's HTTP routes and their pipeline.

In: maintenance → body (size-limited) → safe parse (no DTD, no entities) → SOAP 1.1 envelope and
X-Road headers → service → authenticate → authorize → mediate → Envelope → broker RPC. Out: the
worker's reply as a SOAP response (mediated from JSON, or the service's own SOAP with the X-Road
headers echoed), or a SOAP 1.1 Fault whose code is the disposition's X-Road type. Every request
ends as one exchange record and in the metrics, as on the REST face.
"""

import json
import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hub.dispositions import (
    ACCESS_DENIED,
    MAINTENANCE,
    MALFORMED,
    TOO_LARGE,
    UNAUTHENTICATED,
    Disposition,
    disposition_for,
)
from hub.envelope import Envelope, Reply, new_id
from hub.errors import BackendRejected, HubError, IdentifierError, NotFound, Replayed
from hub.gateway.auth import AuthError, authorize
from hub.gateway.common import HUB_HEADERS, Attempt, TooLarge, dispatch, read_body
from hub.gateway.common import record as record_exchange
from hub.http import end_to_end
from hub.identifiers import ServiceId, encode_header, resolve_service, split_rest_path
from hub.registry import operation_for
from hub.soap_face import _envelope as soap
from hub.soap_face._schema import read_request, write_response
from hub.soap_face._wsdl import Face, Faces, ModelFace, addressed
from hub.soap_face.auth import authenticate_soap
from hub.soap_face.errors import BadReply, InvalidBody, SoapProtocolError, UnknownService, disposition_of
from signing import XmlError, parse_xml

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger(__name__)

_HOP = f"gateway:{socket.gethostname()}:{os.getpid()}"
_PATH_SHAPE = "/soap/INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE[/VERSION]"
# What a mediated (JSON) request must not inherit from the SOAP request it came in.
_SOAP_ONLY = frozenset({"content-type", "soapaction", "accept", "accept-encoding", "user-agent"})
_AUTH_DISPOSITIONS = {"malformed": MALFORMED, "unauthenticated": UNAUTHENTICATED}
# What the request pipeline refuses with a fault (everything else is a bug and propagates).
_REFUSABLE = (HubError, XmlError, TooLarge)


@dataclass(frozen=True, slots=True)
class _Refusal:
    disposition: Disposition
    message: str
    field: str | None = None


def _refusal(exc: BaseException) -> _Refusal:
    """The one translation of what the pipeline can meet into a disposition (foreign types included)."""
    if isinstance(exc, AuthError):
        return _Refusal(_AUTH_DISPOSITIONS.get(exc.kind, ACCESS_DENIED), str(exc))
    if isinstance(exc, TooLarge):
        return _Refusal(TOO_LARGE, str(exc))
    if isinstance(exc, XmlError):
        return _Refusal(MALFORMED, f"the request is not safe, well-formed XML ({exc})", "Envelope")
    return _Refusal(disposition_of(exc), str(exc), getattr(exc, "field", None))


def soap_router(hub: "Hub", faces: Faces) -> APIRouter:
    """The routes of the SOAP face over a started Hub."""
    settings = hub.settings
    metrics = hub.metrics
    timeout = settings.gateway.request_timeout
    limit = settings.gateway.max_body_bytes
    router = APIRouter()

    def fault(attempt: Attempt, refusal: _Refusal, *, status: int | None = None) -> Response:
        disposition = refusal.disposition
        attempt.error_type = disposition.error_type
        metrics.errors.labels(attempt.service, disposition.error_type).inc()
        body = soap.fault(
            disposition.error_type,
            refusal.message,
            client_fault=disposition.client_fault,
            field=refusal.field,
        )
        # SOAP 1.1 answers faults with HTTP 500; a body over the limit is refused as 413 before it is read.
        if status is None:
            status = TOO_LARGE.status if disposition is TOO_LARGE else 500
        return Response(body, status_code=status, media_type=soap.CONTENT_TYPE)

    def record(attempt: Attempt, response: Response) -> Response:
        record_exchange(hub, attempt, response.status_code)
        return response

    def service_in(rest: str) -> ServiceId:
        try:
            provider, tail = split_rest_path(rest)
        except IdentifierError as exc:
            raise SoapProtocolError(f"the path must be {_PATH_SHAPE}: {exc}", field="path") from exc
        found = resolve_service(provider, tail, hub.service_set)
        if found is None or found[1]:
            raise UnknownService(f"no service {rest.strip('/')} is registered on this hub")
        return found[0]

    @router.post("/soap")
    async def xroad(request: Request) -> Response:
        attempt = Attempt(method="POST", message_id=new_id())
        return record(attempt, await exchange(request, attempt, None))

    @router.post("/soap/{rest:path}")
    async def plain(request: Request, rest: str) -> Response:
        attempt = Attempt(method="POST", message_id=request.headers.get("x-road-id") or new_id())
        attempt.client = request.headers.get("x-road-client", "-")[:512]
        try:
            service = service_in(rest)
        except HubError as exc:
            return record(attempt, fault(attempt, _refusal(exc)))
        return record(attempt, await exchange(request, attempt, service))

    @router.get("/soap")
    async def xroad_contract(request: Request) -> Response:
        attempt = Attempt(method="GET", message_id=new_id(), operation="wsdl")
        refusal = _Refusal(MALFORMED, f"POST X-Road SOAP requests here; GET {_PATH_SHAPE}?wsdl for a WSDL")
        return record(attempt, fault(attempt, refusal, status=404))

    @router.get("/soap/{rest:path}")
    async def contract(request: Request, rest: str) -> Response:
        query = request.query_params
        name = query.get("xsd")
        attempt = Attempt(method="GET", message_id=new_id(), operation="xsd" if name else "wsdl")
        try:
            service = service_in(rest)
            attempt.service = str(service)
            face = faces.get(service)
        except HubError as exc:
            refusal = _refusal(exc)
            return record(attempt, fault(attempt, refusal, status=refusal.disposition.status))
        endpoint = str(request.base_url).rstrip("/") + "/soap/" + encode_header(service)
        if name is not None:
            document = face.documents.get(name) if not isinstance(face, ModelFace) else None
            if document is None:
                refusal = _Refusal(MALFORMED, f"the WSDL of {service} imports no document {name!r}", "xsd")
                return record(attempt, fault(attempt, refusal, status=404))
        elif "wsdl" in query:
            document = face.wsdl
        else:
            refusal = _Refusal(MALFORMED, f"GET {endpoint}?wsdl for the WSDL; POST SOAP requests")
            return record(attempt, fault(attempt, refusal, status=404))
        body = addressed(document, endpoint)
        attempt.response_bytes = len(body)
        return record(attempt, Response(body, media_type=soap.CONTENT_TYPE))

    async def exchange(request: Request, attempt: Attempt, path_service: ServiceId | None) -> Response:
        if await hub.in_maintenance():
            return fault(attempt, _Refusal(MAINTENANCE, "the hub is in maintenance mode; try again later"))
        try:
            body = await read_body(request, limit)
            attempt.request_bytes = len(body)
            content_type = soap.media_type(request.headers.get("content-type"))
            if content_type and content_type not in soap.XML_TYPES:
                raise SoapProtocolError(
                    f"a SOAP request is text/xml, not {content_type!r}", field="Content-Type"
                )
            message = soap.read_message(body, parse_xml(body))
            service = _service_of(message, path_service, hub.service_set)
            if message.xroad is not None:
                attempt.message_id = message.xroad.message_id
            elif len(attempt.message_id) > 128:
                raise SoapProtocolError("X-Road-Id is longer than 128 characters", field="X-Road-Id")
            attempt.service = label = str(service)
            attempt.operation = operation_for(service, hub.services[service].operation)
            caller = authenticate_soap(settings, request.headers, message, hub.signatures)
            authorize(settings, caller, service)
            attempt.client = str(caller.client)
            if caller.method == "signature" and not await hub.store.remember_message(
                attempt.client, attempt.message_id, retention=2 * hub.signatures.window
            ):
                raise Replayed(f"message id {attempt.message_id!r} of {attempt.client} was already received")
            face = faces.get(service)
            envelope = _envelope(request, attempt, service, message, face, timeout)
        except _REFUSABLE as exc:
            if isinstance(exc, AuthError):
                log.info("refused %s: %s", attempt.service, exc)
            return fault(attempt, _refusal(exc))
        metrics.in_flight.inc()
        try:
            reply = await dispatch(hub, envelope, timeout=timeout)
        except HubError as exc:
            log.warning("request %s to %s failed at the broker: %s", attempt.message_id, label, exc)
            return fault(attempt, _refusal(exc))
        finally:
            metrics.in_flight.dec()
        try:
            response = _answer(reply, message, face)
        except (HubError, XmlError) as exc:
            return fault(attempt, _refusal(exc if isinstance(exc, HubError) else BadReply(str(exc))))
        if isinstance(response, _Refusal):
            return fault(attempt, response)
        attempt.response_bytes = len(response.body)
        if reply.error_type:
            attempt.error_type = reply.error_type
            metrics.errors.labels(label, reply.error_type).inc()
        return response

    return router


def _service_of(
    message: soap.SoapMessage, path_service: ServiceId | None, known: frozenset[ServiceId]
) -> ServiceId:
    named = message.xroad.service if message.xroad is not None else None
    if path_service is None:
        if message.xroad is None:
            raise SoapProtocolError(
                "POST /soap takes X-Road SOAP headers (xrd:client, xrd:service, xrd:id, xrd:protocolVersion); "
                f"without them, POST to {_PATH_SHAPE}",
                field="Header",
            )
        if named is None:
            raise SoapProtocolError("the X-Road header xrd:service is required", field="service")
        if named not in known:
            raise UnknownService(f"no service {named} is registered on this hub")
        return named
    if named is not None and named != path_service:
        raise SoapProtocolError(
            f"xrd:service names {named} but the URL names {path_service}", field="service"
        )
    return path_service


def _envelope(
    request: Request,
    attempt: Attempt,
    service: ServiceId,
    message: soap.SoapMessage,
    face: Face,
    timeout: float,
) -> Envelope:
    """The broker envelope: the SOAP request as it came (native) or its body as validated JSON (models)."""
    if isinstance(face, ModelFace):
        payload = message.payload
        expected = f"{{{face.namespace}}}{face.request_tag}"
        if payload is None or payload.tag != expected:
            raise InvalidBody(
                f"the SOAP Body must hold {face.request_tag} in namespace {face.namespace}",
                field=face.request_tag,
            )
        body = read_request(payload, face.request).model_dump_json(by_alias=True, exclude_unset=True).encode()
        content_type = "application/json"
        headers = end_to_end(request.headers, drop=HUB_HEADERS | _SOAP_ONLY)
    else:
        body = message.raw
        given = request.headers.get("content-type", "")
        content_type = given if soap.media_type(given) in soap.XML_TYPES else soap.CONTENT_TYPE
        headers = end_to_end(request.headers, drop=HUB_HEADERS)
    xroad = message.xroad
    return Envelope(
        message_id=attempt.message_id,
        client=attempt.client,
        service=service,
        operation=attempt.operation,
        body=body,
        content_type=content_type,
        method="POST",
        headers=headers,
        user_id=xroad.user_id if xroad is not None else request.headers.get("x-road-userid"),
        created_at=attempt.received_at,
        deadline=attempt.received_at + timedelta(seconds=timeout),
        trace=(_HOP,),
    )


def _answer(reply: Reply, message: soap.SoapMessage, face: Face) -> Response | _Refusal:
    """The client's answer to a worker's reply.

    Raises:
        BadReply: the service's answer cannot become the SOAP response its WSDL promises.
        XmlError: the service's SOAP answer is not safe, well-formed XML (X-Road headers to echo).
    """
    if isinstance(face, ModelFace):
        if reply.error_type or reply.status >= 400:
            return _reply_refusal(reply)
        try:
            document = json.loads(reply.body)
        except ValueError as exc:
            raise BadReply("the service's answer is not JSON") from exc
        payload = write_response(document, face.response, face.response_tag, face.namespace)
        return Response(soap.response(payload, message), media_type=soap.CONTENT_TYPE)
    if soap.media_type(reply.content_type) not in soap.XML_TYPES or not reply.body:
        return _reply_refusal(reply)
    # The service's own SOAP answer (or fault) passes back; only the X-Road headers are the hub's.
    body = reply.body
    status = reply.status
    answer = parse_xml(body)
    if not soap.is_envelope(answer):
        raise BadReply("the service's answer is not a SOAP envelope")
    if soap.is_fault(answer):
        status = 500
    elif message.xroad is not None:
        body = soap.with_echo(answer, message)
    return Response(body, status_code=status, media_type=reply.content_type)


def _reply_refusal(reply: Reply) -> _Refusal:
    """A worker's error reply (hub error body) or a backend's 4xx passed back, as a fault."""
    document: Any = None
    try:
        document = json.loads(reply.body) if reply.body else None
    except ValueError:
        document = None
    found = document if isinstance(document, dict) else {}
    detail = found.get("detail")
    field_name = detail.get("field") if isinstance(detail, dict) else None
    text = found.get("message") or found.get("error")
    if reply.error_type:
        error_type = reply.error_type
        message = str(text) if text else f"the service failed ({error_type})"
        return _Refusal(
            Disposition(error_type, reply.status, client_fault=error_type.startswith("Client")),
            message,
            str(field_name) if field_name else None,
        )
    message = str(text) if text else f"the service answered HTTP {reply.status}"
    kind = NotFound if reply.status == 404 else BackendRejected
    return _Refusal(disposition_for(kind(message, status_code=reply.status)), message)


__all__ = ["soap_router"]
