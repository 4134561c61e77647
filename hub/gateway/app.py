"""The gateway: X-Road REST r1 in front of the broker, plus health, metrics and service metadata.

``{METHOD} /r1/{instance}/{class}/{member}/{subsystem}/{serviceCode}[/{version}][/path]``:
authenticate → authorize (ACL) → read the body (size-limited) → Envelope → broker RPC to the
service's connector queue → the worker's reply, with ``X-Road-Id``, ``X-Road-Request-Id`` and
``X-Road-Request-Hash``. Errors are JSON ``{type, message, detail}`` with the status the
disposition table gives.
"""

import functools
import inspect
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Message, Receive, Scope, Send

from hub.dispositions import (
    ACCESS_DENIED,
    INTERNAL,
    MAINTENANCE,
    MALFORMED,
    REPLAYED,
    TOO_LARGE,
    UNAUTHENTICATED,
    UNKNOWN_SERVICE,
    Disposition,
    disposition_for,
    error_body,
)
from hub.envelope import Envelope, new_id
from hub.errors import BrokerError, EnvelopeError, IdentifierError
from hub.gateway.auth import AuthError, Caller, authenticate_api_key, authorize
from hub.gateway.common import HUB_HEADERS, Attempt, TooLarge, dispatch, read_body, record, request_hash
from hub.gateway.signatures import SIGNATURE_HEADER, authenticate_signed
from hub.http import end_to_end
from hub.identifiers import encode_header, resolve_service, split_rest_path
from hub.registry import operation_for

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger(__name__)

_METADATA = {"listMethods", "allowedMethods"}
_R1_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

_HOP = f"gateway:{socket.gethostname()}:{os.getpid()}"

# Registered clients and services only (callers are authenticated first), so the cache stays small.
_header_value = functools.lru_cache(maxsize=1024)(encode_header)


def create_app(hub: "Hub") -> "GatewayApp":
    """Build the gateway ASGI app for a started Hub."""
    settings = hub.settings
    metrics = hub.metrics
    timeout = settings.gateway.request_timeout
    limit = settings.gateway.max_body_bytes

    def error(
        disposition: Disposition,
        message: str,
        *,
        service: str = "-",
        detail: object = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        metrics.count_error(service, disposition.error_type)
        return Response(
            error_body(disposition.error_type, message, detail),
            status_code=disposition.status,
            media_type="application/json",
            headers={"X-Road-Error": disposition.error_type, **(headers or {})},
        )

    def auth_failure(exc: AuthError, service: str) -> Response:
        disposition = {"malformed": MALFORMED, "unauthenticated": UNAUTHENTICATED}.get(
            exc.kind, ACCESS_DENIED
        )
        log.info("refused %s: %s", service, exc)
        return error(disposition, str(exc), service=service)

    async def healthz(request: Request) -> Response:
        if await hub.in_maintenance():
            return JSONResponse({"status": "maintenance"}, status_code=503)
        checks = await hub.healthy()
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
        )

    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    def metadata(caller: Caller, provider_path: str, which: str) -> Response:
        services = [s for s in hub.services if str(s.provider) == provider_path]
        if which == "allowedMethods":
            services = [s for s in services if settings.allowed(str(caller.client), s)]
        listed = [
            {
                "object_type": "SERVICE",
                "xroad_instance": s.instance,
                "member_class": s.member_class,
                "member_code": s.member_code,
                "subsystem_code": s.subsystem_code,
                "service_code": s.service_code,
                "service_version": s.version,
                "description": hub.services[s].description,
            }
            for s in sorted(services)
        ]
        return JSONResponse({"service": listed})

    async def r1(request: Request, rest: str) -> Response:
        attempt = Attempt(method=request.method, message_id=request.headers.get("x-road-id") or new_id())
        response = await handle(request, rest, attempt)
        attempt.error_type = response.headers.get("X-Road-Error")
        record(hub, attempt, response.status_code)
        return response

    async def handle(request: Request, rest: str, attempt: "Attempt") -> Response:
        if await hub.in_maintenance():
            return error(MAINTENANCE, "the hub is in maintenance mode; try again later")
        try:
            provider, tail = split_rest_path(rest)
        except IdentifierError as exc:
            return error(MALFORMED, str(exc))
        headers = request.headers
        attempt.client = headers.get("x-road-client", "-")[:512]
        if len(tail) == 1 and tail[0] in _METADATA and request.method == "GET":
            attempt.operation = tail[0]
            try:
                caller = authenticate_api_key(
                    settings, headers.get("x-road-client"), headers.get("x-api-key")
                )
            except AuthError as exc:
                return auth_failure(exc, "-")
            return metadata(caller, str(provider), tail[0])
        found = resolve_service(provider, tail, hub.service_set)
        if found is None:
            return error(
                UNKNOWN_SERVICE, f"no service {provider}/{'/'.join(tail[:2])} is registered on this hub"
            )
        service, sub_path = found
        attempt.service = label = str(service)
        attempt.operation = operation_for(service, hub.services[service].operation)
        try:
            body = await read_body(request, limit)
        except TooLarge as exc:
            return error(TOO_LARGE, str(exc), service=label)
        attempt.request_bytes = len(body)
        signature = headers.get(SIGNATURE_HEADER)
        signed_path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            if signature is None:
                caller = authenticate_api_key(
                    settings, headers.get("x-road-client"), headers.get("x-api-key")
                )
            else:
                caller = authenticate_signed(
                    settings,
                    hub.signatures,
                    headers.get("x-road-client"),
                    signature,
                    body,
                    method=request.method,
                    path=signed_path,
                    message_id=headers.get("x-road-id"),
                )
            authorize(settings, caller, service)
        except AuthError as exc:
            return auth_failure(exc, label)
        attempt.client = str(caller.client)
        if signature is not None and not await hub.store.remember_message(
            attempt.client, attempt.message_id, retention=2 * hub.signatures.window
        ):
            return error(
                REPLAYED,
                f"message id {attempt.message_id!r} of {attempt.client} was already received",
                service=label,
            )
        if len(attempt.message_id) > 128:
            return error(MALFORMED, "X-Road-Id is longer than 128 characters", service=label)
        envelope = Envelope(
            message_id=attempt.message_id,
            correlation_id=attempt.request_id,
            client=attempt.client,
            service=service,
            operation=attempt.operation,
            body=body,
            content_type=headers.get("content-type", "application/octet-stream"),
            method=request.method,
            path=sub_path,
            query=tuple(request.query_params.multi_items()),
            headers=end_to_end(headers, drop=HUB_HEADERS),
            user_id=headers.get("x-road-userid"),
            created_at=attempt.received_at,
            deadline=attempt.received_at + timedelta(seconds=timeout),
            trace=(_HOP,),
        )
        x_road = {
            "X-Road-Id": attempt.message_id,
            "X-Road-Request-Id": attempt.request_id,
            "X-Road-Client": _header_value(caller.client),
            "X-Road-Service": _header_value(service),
            "X-Road-Request-Hash": request_hash(
                request.method, request.url.path, attempt.client, attempt.message_id, body
            ),
        }
        metrics.in_flight.inc()
        try:
            reply = await dispatch(hub, envelope, timeout=timeout)
        except (BrokerError, EnvelopeError) as exc:
            log.warning("request %s to %s failed at the broker: %s", attempt.message_id, label, exc)
            return error(disposition_for(exc), str(exc), service=label, headers=x_road)
        finally:
            metrics.in_flight.dec()
        attempt.response_bytes = len(reply.body)
        out_headers = {**reply.headers, **x_road}
        if reply.error_type:
            out_headers["X-Road-Error"] = reply.error_type
            metrics.count_error(label, reply.error_type)
        hub_signature = hub.signatures.sign_response(
            reply.body,
            method=request.method,
            path=signed_path,
            client=attempt.client,
            message_id=attempt.message_id,
        )
        if hub_signature is not None:
            out_headers["X-Road-Signature"] = hub_signature
        return Response(
            reply.body, status_code=reply.status, media_type=reply.content_type, headers=out_headers
        )

    # The hot path (REST r1) runs on plain Starlette routes; extensions' FastAPI routers live in a
    # FastAPI sub-application mounted after them. A plain Starlette route in an extension's router
    # (`APIRouter.add_route`, for an extension's own hot path) is served ahead of the mount, without
    # FastAPI's per-request layers (about 0.15 ms of CPU a request), and, when its path has no
    # parameters, straight from GatewayApp, without Starlette's either; the router's API route for the
    # same path and method still describes it in the OpenAPI document.
    async def r1_route(request: Request) -> Response:
        return await r1(request, request.path_params["rest"])

    routes: list[Route | Mount] = [
        Route("/r1/{rest:path}", r1_route, methods=list(_R1_METHODS)),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
    direct: dict[tuple[str, str], Endpoint] = {}
    routers = [router for extension in hub.extensions for router in extension.routers()]
    if routers:
        extensions_app = FastAPI(title="lgsp-hub", version="0.1.0", docs_url=None, redoc_url=None)
        for router in routers:
            for route in router.routes:
                if isinstance(route, Route) and not isinstance(route, APIRoute):
                    routes.append(route)
                    if not route.param_convertors and inspect.iscoroutinefunction(route.endpoint):
                        for method in route.methods or ():
                            direct.setdefault((method, route.path), route.endpoint)
            extensions_app.include_router(router)
        routes.append(Mount("/", app=extensions_app))
    return GatewayApp(r1, Starlette(routes=routes), error, direct=direct)


Endpoint = Callable[[Request], Awaitable[Response]]


class GatewayApp:
    """REST r1 requests, and the extensions' plain routes without path parameters (their hot paths),
    go straight to their handler; everything else to the Starlette app.

    Starlette's middleware stack, router and endpoint wrapper cost about 60 µs of CPU a request on
    the hot path and add nothing to these handlers, which answer every outcome themselves. An
    exception escaping one still becomes a typed 500 (Starlette's error middleware would give a
    plain-text one).
    """

    def __init__(
        self,
        r1: "Callable[[Request, str], Awaitable[Response]]",
        app: Starlette,
        error: "Callable[..., Response]",
        *,
        direct: dict[tuple[str, str], Endpoint] | None = None,
    ) -> None:
        self._r1 = r1
        self.app = app
        self._error = error
        self._direct = dict(direct or {})

    @property
    def routes(self) -> list[BaseRoute]:
        return self.app.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/r1/") and method in _R1_METHODS:
            answering = self._r1(Request(scope, receive), path[4:])
        else:
            handler = self._direct.get((method, path))
            if handler is None:
                await self.app(scope, receive, send)
                return
            answering = handler(Request(scope, receive))
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            response = await answering
            await response(scope, receive, sending)
        except Exception:
            log.exception("unexpected error answering %s %s", method, path)
            if started:
                raise
            response = self._error(INTERNAL, "the hub failed to answer this request; see its log")
            await response(scope, receive, send)


__all__ = ["GatewayApp", "create_app"]
