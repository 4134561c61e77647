"""Sandbox of the national population DB: a SOAP 1.1 service over the synthetic population.

Run alone with ``lgsp sandbox population_db --port P [--config YAML]``; the YAML keys are the
fields of :class:`SandboxOptions`. The service answers at ``options.path``: ``POST`` for the two
operations, ``GET ?wsdl`` for the WSDL (address rewritten to the URL it was fetched from) and
``GET ?xsd=dancuquocgia.xsd`` for the schema. Every fault is a SOAP 1.1 fault with HTTP 500.
Request checks run in this order: injected latency/faults, auth headers, size, safe parse, XSD,
duplicate ``MaYeuCau``, then the operation.
"""

import asyncio
import base64
import binascii
import hmac
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from xml.sax.saxutils import quoteattr

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from connectors.population_db._soap import (
    LOOKUP,
    NS,
    SOAP_CONTENT_TYPE,
    VERIFY,
    WSDL_PATH,
    XSD_PATH,
    ErrorCode,
    Schema,
    body_payload,
    envelope,
    fault_envelope,
    local_name,
    parse_envelope,
    signature,
)
from connectors.population_db.data import MAX_SIZE, Citizen, Population, Relative, normalize_name
from hub.errors import ConfigError, IdentifierError, InvalidInput
from hub.identifiers import parse_client

_WSDL_ADDRESS = 'location="http://localhost:8080/dancuquocgia"'
_XSD_LOCATION = 'schemaLocation="dancuquocgia.xsd"'
_XML_TYPES = ("text/xml", "application/xml", "application/soap+xml")


class SandboxOptions(BaseModel):
    """Sandbox options (YAML keys of ``lgsp sandbox population_db --config``); frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(20240601, ge=0)
    population_size: int = Field(100_000, ge=1, le=MAX_SIZE)
    path: str = "/dancuquocgia"
    users: Mapping[str, str] = Field(default_factory=lambda: {"lgsp-hub": "sandbox-secret"})
    api_keys: tuple[str, ...] = ("sandbox-api-key",)
    clock_window_seconds: float = Field(300.0, gt=0, le=86_400)
    latency_ms: float = Field(0.0, ge=0, le=60_000)
    latency_jitter_ms: float = Field(0.0, ge=0, le=60_000)
    error_rate: float = Field(0.0, ge=0, le=1)
    timeout_rate: float = Field(0.0, ge=0, le=1)
    hang_seconds: float = Field(30.0, gt=0, le=600)
    request_id_ttl_seconds: float = Field(86_400.0, gt=0)
    request_id_cache_size: int = Field(100_000, ge=1, le=10_000_000)
    max_request_bytes: int = Field(256 * 1024, ge=1024, le=10 * 1024 * 1024)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or "?" in value:
            raise ValueError("must start with '/' and hold no query")
        return value

    @field_validator("users")
    @classmethod
    def _users(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        if not value or any(not user or ":" in user or not secret for user, secret in value.items()):
            raise ValueError("needs at least one user; names without ':' and non-empty secrets")
        return dict(value)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "SandboxOptions":
        """Validate raw options.

        Raises:
            ConfigError: an option is unknown or invalid (``key`` names it).
        """
        try:
            return cls.model_validate(dict(options))
        except ValidationError as exc:
            error = exc.errors()[0]
            key = ".".join(str(part) for part in error["loc"]) or "options"
            raise ConfigError(f"population_db sandbox option {key!r}: {error['msg']}", key=key) from exc


@dataclass
class SandboxStats:
    """What the sandbox has seen: HTTP POSTs received and faults answered, by error code."""

    requests: int = 0
    answered: int = 0
    faults: Counter[str] = field(default_factory=Counter)


class _RequestIds:
    """Recently seen ``MaYeuCau`` values: bounded by count and age (insertion order = age order)."""

    def __init__(self, ttl: float, size: int, clock: Callable[[], float]) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._ttl = ttl
        self._size = size
        self._clock = clock

    def add(self, key: str) -> bool:
        now = self._clock()
        while self._seen:
            oldest, seen_at = next(iter(self._seen.items()))
            if now - seen_at < self._ttl and len(self._seen) < self._size:
                break
            del self._seen[oldest]
        if key in self._seen:
            return False
        self._seen[key] = now
        return True


class PopulationSandbox:
    """The simulated national service; ``create_app`` wraps it in a Starlette app."""

    def __init__(
        self,
        options: SandboxOptions,
        *,
        population: Population | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self.population = population or Population(options.seed, options.population_size)
        self.stats = SandboxStats()
        self._clock = clock
        self._schema = Schema()
        self._request_ids = _RequestIds(
            options.request_id_ttl_seconds, options.request_id_cache_size, monotonic
        )
        self._random = random.Random(options.seed)
        self._wsdl = WSDL_PATH.read_text(encoding="utf-8")
        self._xsd = XSD_PATH.read_bytes()

    async def endpoint(self, request: Request) -> Response:
        """``GET ?wsdl`` / ``GET ?xsd=...`` serve the contract; ``POST`` runs an operation."""
        if request.method == "GET":
            return self._contract(request)
        self.stats.requests += 1
        response = await self._post(request)
        self.stats.answered += 1
        return response

    def _contract(self, request: Request) -> Response:
        url = _service_url(request)
        if "wsdl" in request.query_params:
            text = self._wsdl.replace(_WSDL_ADDRESS, f"location={quoteattr(url)}").replace(
                _XSD_LOCATION, f"schemaLocation={quoteattr(url + '?xsd=dancuquocgia.xsd')}"
            )
            return Response(text.encode("utf-8"), media_type=SOAP_CONTENT_TYPE)
        if request.query_params.get("xsd") == "dancuquocgia.xsd":
            return Response(self._xsd, media_type=SOAP_CONTENT_TYPE)
        return PlainTextResponse("GET ?wsdl for the WSDL; POST SOAP 1.1 requests", status_code=404)

    async def _post(self, request: Request) -> Response:
        options = self.options
        delay = options.latency_ms + self._random.uniform(0, options.latency_jitter_ms)
        if delay:
            await asyncio.sleep(delay / 1000)
        if options.timeout_rate and self._random.random() < options.timeout_rate:
            await _hang(request, options.hang_seconds)
            return self._fault(ErrorCode.TIMEOUT, "the national system did not answer in time")
        if options.error_rate and self._random.random() < options.error_rate:
            return self._fault(ErrorCode.SERVER, "internal error (injected)")
        user, problem = self._authenticate(request)
        if user is None:
            return self._fault(ErrorCode.AUTH, f"authentication failed: {problem}")
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in _XML_TYPES:
            return self._fault(
                ErrorCode.INVALID, f"unsupported content type {media_type!r}", field="Content-Type"
            )
        body = await _read_body(request, options.max_request_bytes)
        if body is None:
            return self._fault(ErrorCode.INVALID, f"request larger than {options.max_request_bytes} bytes")
        try:
            payload = body_payload(parse_envelope(body))
            if payload.tag not in {f"{{{NS}}}{LOOKUP}", f"{{{NS}}}{VERIFY}"}:
                raise InvalidInput(f"unknown operation {payload.tag}", field=local_name(payload.tag))
            self._schema.check(payload)
        except InvalidInput as exc:
            return self._fault(ErrorCode.INVALID, str(exc), field=exc.field)
        request_id = _text(payload, "MaYeuCau")
        if not self._request_ids.add(f"{user}\x00{request_id}"):
            return self._fault(
                ErrorCode.DUPLICATE, f"MaYeuCau {request_id!r} was already used", field="MaYeuCau"
            )
        if local_name(payload.tag) == VERIFY:
            return self._verify(payload)
        return self._lookup(payload)

    def _authenticate(self, request: Request) -> tuple[str | None, str]:
        # (user, "") or (None, a sentence saying what is wrong): a refusal is an answer, not an error.
        headers = request.headers
        timestamp = headers.get("timestamp", "")
        if not timestamp.isdigit():
            return None, "Timestamp header missing or not epoch milliseconds"
        skew = abs(self._clock() * 1000 - int(timestamp)) / 1000
        if skew > self.options.clock_window_seconds:
            return (
                None,
                f"Timestamp is {skew:.0f} s off, outside the ±{self.options.clock_window_seconds:.0f} s window",
            )
        api_key = headers.get("apikey", "")
        if not any(hmac.compare_digest(api_key, known) for known in self.options.api_keys):
            return None, "ApiKey missing or not recognised"
        try:
            parse_client(headers.get("x-road-client", ""))
        except IdentifierError as exc:
            return None, f"X-Road-Client header missing or invalid ({exc})"
        authorization = headers.get("authorization", "")
        user = _basic_user(authorization)
        if user is None:
            return None, "Authorization header missing or not Basic user:signature"
        secret = self.options.users.get(user)
        if secret is None:
            return None, f"unknown user {user!r}"
        expected = signature(_service_url(request), user, int(timestamp), secret)
        if not hmac.compare_digest(authorization.encode(), expected.encode()):
            return None, "Authorization signature does not match"
        return user, ""

    def _lookup(self, payload: etree._Element) -> Response:
        citizen = self._match(payload)
        if citizen is None:
            return self._fault(ErrorCode.NOT_FOUND, "no citizen matches the request")
        return Response(envelope(_citizen_element(citizen)), media_type=SOAP_CONTENT_TYPE)

    def _verify(self, payload: etree._Element) -> Response:
        result = etree.Element(f"{{{NS}}}KetQuaXacThucResponse", nsmap={"dc": NS})
        _sub(result, "TonTai", "true" if self._match(payload) is not None else "false")
        return Response(envelope(result), media_type=SOAP_CONTENT_TYPE)

    def _match(self, payload: etree._Element) -> Citizen | None:
        citizen = self.population.find(_text(payload, "SoDinhDanh"))
        if citizen is None:
            return None
        name = payload.findtext(f"{{{NS}}}HoVaTen")
        if name is not None and normalize_name(name) != normalize_name(citizen.full_name):
            return None
        born = payload.find(f"{{{NS}}}NgayThangNamSinh")
        if born is not None and not _same_birth(born, citizen.birth_date):
            return None
        return citizen

    def _fault(self, code: ErrorCode, message: str, *, field: str | None = None) -> Response:
        self.stats.faults[code.value] += 1
        return Response(
            fault_envelope(code, message, field=field), status_code=500, media_type=SOAP_CONTENT_TYPE
        )


def create_app(**options: Any) -> Starlette:
    """Build the sandbox app from options (see :class:`SandboxOptions`); ``app.state.sandbox`` is the service.

    Raises:
        ConfigError: an option is unknown or invalid.
    """
    sandbox = PopulationSandbox(SandboxOptions.from_options(options))

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route(sandbox.options.path, sandbox.endpoint, methods=["GET", "POST"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )
    app.state.sandbox = sandbox
    return app


def _service_url(request: Request) -> str:
    url = request.url
    return f"{url.scheme}://{url.netloc}{url.path}"


def _basic_user(authorization: str) -> str | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, _ = decoded.partition(":")
    return user if colon and user else None


async def _read_body(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _hang(request: Request, seconds: float) -> None:
    # Stops early when the client gives up, so a test server can shut down promptly.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


def _text(parent: etree._Element, name: str) -> str:
    return (parent.findtext(f"{{{NS}}}{name}") or "").strip()


def _same_birth(born: etree._Element, birth_date: date) -> bool:
    year = born.findtext(f"{{{NS}}}Nam")
    if year is not None:
        return year.strip() == f"{birth_date.year:04d}"
    return (born.findtext(f"{{{NS}}}NgayThangNam") or "").strip() == birth_date.strftime("%Y%m%d")


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, f"{{{NS}}}{name}")
    if text is not None:
        child.text = text
    return child


def _relative(parent: etree._Element, name: str, relative: Relative) -> None:
    node = _sub(parent, name)
    _sub(node, "SoDinhDanh", relative.personal_id)
    _sub(node, "HoVaTen", relative.full_name)


def _citizen_element(citizen: Citizen) -> etree._Element:
    response = etree.Element(f"{{{NS}}}TraCuuThongTinCongDanResponse", nsmap={"dc": NS})
    node = _sub(response, "CongDan")
    _sub(node, "SoDinhDanh", citizen.personal_id)
    if citizen.old_id_number:
        _sub(node, "SoCMND", citizen.old_id_number)
    name = _sub(node, "HoVaTen")
    _sub(name, "Ho", citizen.family_name)
    if citizen.middle_name:
        _sub(name, "ChuDem", citizen.middle_name)
    _sub(name, "Ten", citizen.given_name)
    _sub(_sub(node, "NgayThangNamSinh"), "NgayThangNam", citizen.birth_date.strftime("%Y%m%d"))
    _sub(node, "GioiTinh", citizen.sex)
    _sub(node, "DanToc", citizen.ethnicity)
    _sub(node, "TonGiao", citizen.religion)
    _sub(node, "QuocTich", citizen.nationality)
    _sub(node, "QueQuan", citizen.hometown)
    _sub(node, "NoiThuongTru", citizen.permanent_address)
    _sub(node, "NoiOHienTai", citizen.current_address)
    for tag, relative in (("Cha", citizen.father), ("Me", citizen.mother), ("VoChong", citizen.spouse)):
        if relative is not None:
            _relative(node, tag, relative)
    _relative(node, "ChuHo", citizen.household_head)
    _sub(node, "MaHoGiaDinh", citizen.household_id)
    return response


__all__ = ["PopulationSandbox", "SandboxOptions", "SandboxStats", "create_app"]
