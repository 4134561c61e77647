"""A simulator of the national business registry as a provincial LGSP publishes it (REST/JSON).

Same paths, field names, auth header and failure envelope as the platform; backed by the
deterministic synthetic registry of ``data.py``. Faults (latency, errors, outage, a quota answered
with 429 + Retry-After) are options, and can be changed at run time through ``/_sandbox/faults``.

Example::

    app = create_app(seed=7, size=50_000, latency_ms=20, rate_limit=50)
    # lgsp sandbox business_registry --port 8081 --config sandbox.yaml
"""

import asyncio
import base64
import binascii
import json
import math
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from typing import Any

import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from stdnum.vn import mst

from connectors.business_registry.data import Branch, Enterprise, Registry
from hub.errors import ConfigError

LOOKUP_PATH = "/TraCuuThongTinDoanhNghiep"
SEARCH_PATH = "/TimKiemDoanhNghiep"

SANDBOX_CREDENTIALS: dict[str, str] = {
    "AccessKey": "sandbox-access-key",
    "SecretKey": "sandbox-secret-key",
    "AppName": "lgsp-hub",
    "PartnerCode": "000.00.00.H40",
    "PartnerCodeCus": "000.00.00.H40",
}
CREDENTIAL_FIELDS = tuple(SANDBOX_CREDENTIALS)


class SandboxOptions(BaseModel):
    """Options of ``create_app`` (also the keys of ``lgsp sandbox business_registry --config``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 7
    size: int = Field(50_000, ge=1)
    search_limit: int = Field(200_000, ge=1)
    credentials: dict[str, str] = Field(default_factory=lambda: dict(SANDBOX_CREDENTIALS))
    latency_ms: float = Field(0.0, ge=0)
    latency_jitter_ms: float = Field(0.0, ge=0)
    error_rate: float = Field(0.0, ge=0, le=1)
    rate_limit: float | None = Field(None, gt=0)
    retry_after: int | None = Field(None, ge=1)
    max_page_size: int = Field(100, ge=1)
    control: bool = True


class FaultSettings(BaseModel):
    """Run-time fault knobs (``PUT /_sandbox/faults``); unset fields keep their value."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0.0, ge=0)
    latency_jitter_ms: float = Field(0.0, ge=0)
    error_rate: float = Field(0.0, ge=0, le=1)
    rate_limit: float | None = Field(None, gt=0)
    down: bool = False


@dataclass
class SandboxState:
    """Counters and live fault knobs of one sandbox; tests read and change them directly.

    ``served_at`` holds the arrival time (epoch seconds) of every request answered with success.
    """

    latency_ms: float
    latency_jitter_ms: float
    error_rate: float
    rate_limit: float | None
    retry_after: int | None
    down: bool = False
    requests: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)
    by_outcome: Counter[int] = field(default_factory=Counter)
    served_at: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    window: deque[float] = field(default_factory=deque)

    def reset(self) -> None:
        self.requests = 0
        self.by_endpoint.clear()
        self.by_outcome.clear()
        self.served_at.clear()
        self.window.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_endpoint": dict(self.by_endpoint),
            "by_outcome": {str(k): v for k, v in self.by_outcome.items()},
            "served_at": list(self.served_at),
            "faults": {
                "latency_ms": self.latency_ms,
                "latency_jitter_ms": self.latency_jitter_ms,
                "error_rate": self.error_rate,
                "rate_limit": self.rate_limit,
                "down": self.down,
            },
        }


class _Failure(Exception):
    def __init__(self, status: int, label: str, description: str, headers: dict[str, str] | None = None):
        super().__init__(description)
        self.status = status
        self.label = label
        self.description = description
        self.headers = headers or {}


def envelope(status: int, label: str, description: str, result: Any = None) -> dict[str, Any]:
    """The platform's answer envelope."""
    return {
        "StatusCode": status,
        "Status": label,
        "Description": description,
        "ThrowException": status >= 500 or status in (401, 429),
        "ResultObject": result,
    }


def encode_credentials(credentials: dict[str, str]) -> str:
    """The ``Authorization`` header value for ``credentials``: base64 of their JSON."""
    return base64.b64encode(json.dumps(credentials, ensure_ascii=False).encode()).decode("ascii")


def _date(value: date) -> str:
    return value.strftime("%d/%m/%Y")


def _person(person: Any) -> dict[str, str]:
    return {"FULL_NAME": person.full_name, "POSITION": person.position, "ID_NUMBER": person.id_number}


def enterprise_record(enterprise: Enterprise) -> dict[str, Any]:
    """An enterprise as the platform's ResultObject."""
    return {
        "NAME": enterprise.name,
        "NAME_F": enterprise.foreign_name,
        "SHORT_NAME": enterprise.short_name,
        "ENTERPRISE_GDT_CODE": enterprise.code,
        "ENTERPRISE_CODE": enterprise.code,
        "PARENT_ENTERPRISE_CODE": None,
        "ENTERPRISE_TYPE": enterprise.enterprise_type,
        "ENTERPRISE_STATUS_NAME": enterprise.status_name,
        "FOUNDING_DATE": _date(enterprise.founding_date),
        "HO_ADDRESS_FULLTEXT": enterprise.address,
        "LEGAL_REPRESENTATIVE": _person(enterprise.representative),
        "CAPITAL": enterprise.capital,
        "MAIN_BUSINESS_LINE": {"CODE": enterprise.business_line, "NAME": enterprise.business_line_name},
        "BRANCHES": [
            {
                "ENTERPRISE_GDT_CODE": b.code,
                "NAME": b.name,
                "HO_ADDRESS_FULLTEXT": b.address,
                "ENTERPRISE_STATUS_NAME": b.status_name,
            }
            for b in enterprise.branches
        ],
    }


def branch_record(branch: Branch, parent: Enterprise) -> dict[str, Any]:
    """A branch (10-3 code) as the platform's ResultObject."""
    return {
        "NAME": branch.name,
        "NAME_F": "",
        "SHORT_NAME": "",
        "ENTERPRISE_GDT_CODE": branch.code,
        "ENTERPRISE_CODE": branch.code,
        "PARENT_ENTERPRISE_CODE": parent.code,
        "ENTERPRISE_TYPE": "Chi nhánh",
        "ENTERPRISE_STATUS_NAME": branch.status_name,
        "FOUNDING_DATE": _date(branch.founding_date),
        "HO_ADDRESS_FULLTEXT": branch.address,
        "LEGAL_REPRESENTATIVE": _person(branch.head),
        "CAPITAL": None,
        "MAIN_BUSINESS_LINE": {"CODE": parent.business_line, "NAME": parent.business_line_name},
        "BRANCHES": [],
    }


def _openapi() -> dict[str, Any]:
    text = resources.files("connectors.business_registry").joinpath("schemas/openapi.yaml").read_text("utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


class _Platform:
    def __init__(self, options: SandboxOptions, state: SandboxState) -> None:
        self.options = options
        self.state = state
        self.registry = Registry(options.seed, options.size, search_limit=options.search_limit)
        self._random = random.Random(options.seed)

    async def handle(self, request: Request, endpoint: str) -> Response:
        state = self.state
        arrived = time.time()
        state.requests += 1
        state.by_endpoint[endpoint] += 1
        try:
            await self._delay()
            self._admit()
            self._authenticate(request.headers.get("authorization"))
            if state.down:
                raise _Failure(503, "SERVICE_UNAVAILABLE", "Hệ thống đang bảo trì")
            if state.error_rate and self._random.random() < state.error_rate:
                raise _Failure(500, "ERROR", "Lỗi hệ thống, vui lòng thử lại sau")
            result = self._lookup(request) if endpoint == "lookup" else self._search(request)
        except _Failure as failure:
            state.by_outcome[failure.status] += 1
            return JSONResponse(
                envelope(failure.status, failure.label, failure.description),
                status_code=failure.status,
                headers=failure.headers,
            )
        state.by_outcome[200] += 1
        state.served_at.append(arrived)
        return JSONResponse(envelope(200, "SUCCESS", "Thành công", result))

    async def _delay(self) -> None:
        jitter = self._random.uniform(0, self.state.latency_jitter_ms) if self.state.latency_jitter_ms else 0
        delay = (self.state.latency_ms + jitter) / 1000
        if delay > 0:
            await asyncio.sleep(delay)

    def _admit(self) -> None:
        limit = self.state.rate_limit
        if not limit:
            return
        now = time.monotonic()
        window = self.state.window
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= limit:
            wait = self.state.retry_after or max(1, math.ceil(window[0] + 1.0 - now))
            raise _Failure(
                429,
                "TOO_MANY_REQUESTS",
                "Vượt quá số lượng yêu cầu cho phép, vui lòng thử lại sau",
                {"Retry-After": str(wait)},
            )
        window.append(now)

    def _authenticate(self, header: str | None) -> None:
        refused = _Failure(401, "UNAUTHORIZED", "Thông tin xác thực không hợp lệ")
        if not header:
            raise refused
        try:
            presented = json.loads(base64.b64decode(header.strip(), validate=True))
        except (binascii.Error, ValueError) as exc:
            raise refused from exc
        if not isinstance(presented, dict):
            raise refused
        expected = self.options.credentials
        if any(presented.get(key) != value for key, value in expected.items()):
            raise refused

    def _lookup(self, request: Request) -> dict[str, Any]:
        code = (request.query_params.get("MaSoDoanhNghiep") or "").strip()
        if not (len(code) in (10, 14) and mst.is_valid(code) and (len(code) == 10 or code[10] == "-")):
            raise _Failure(400, "BAD_REQUEST", f"Mã số doanh nghiệp không hợp lệ: {code!r}")
        found = self.registry.lookup(code)
        if found is None:
            raise _Failure(404, "NOT_FOUND", f"Không tìm thấy doanh nghiệp có mã số {code}")
        if isinstance(found, Branch):
            parent = self.registry.lookup(found.parent_code)
            assert isinstance(parent, Enterprise)
            return branch_record(found, parent)
        return enterprise_record(found)

    def _search(self, request: Request) -> dict[str, Any]:
        params = request.query_params
        name = (params.get("TenDoanhNghiep") or "").strip()
        if len(name) < 2:
            raise _Failure(400, "BAD_REQUEST", "TenDoanhNghiep phải có ít nhất 2 ký tự")
        try:
            page = int(params.get("PageIndex") or 1)
            size = int(params.get("PageSize") or 20)
        except ValueError as exc:
            raise _Failure(400, "BAD_REQUEST", "PageIndex và PageSize phải là số nguyên") from exc
        if page < 1 or not 1 <= size <= self.options.max_page_size:
            raise _Failure(
                400, "BAD_REQUEST", f"PageIndex ≥ 1 và 1 ≤ PageSize ≤ {self.options.max_page_size}"
            )
        total, items = self.registry.search(name, page, size)
        return {
            "TOTAL_COUNT": total,
            "PAGE_INDEX": page,
            "PAGE_SIZE": size,
            "DATA": [
                {
                    "ENTERPRISE_GDT_CODE": e.code,
                    "NAME": e.name,
                    "NAME_F": e.foreign_name,
                    "ENTERPRISE_STATUS_NAME": e.status_name,
                    "HO_ADDRESS_FULLTEXT": e.address,
                }
                for e in items
            ],
        }


def create_app(**options: Any) -> FastAPI:
    """Build the sandbox application; ``options`` are the fields of ``SandboxOptions``.

    Raises:
        ConfigError: an option is unknown or invalid (names it).
    """
    try:
        settings = SandboxOptions(**options)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"business_registry sandbox option {key!r}: {first['msg']}", key=key) from exc
    missing = [k for k in CREDENTIAL_FIELDS if k not in settings.credentials]
    if missing:
        raise ConfigError(
            f"business_registry sandbox option 'credentials' lacks {', '.join(missing)}", key="credentials"
        )
    state = SandboxState(
        latency_ms=settings.latency_ms,
        latency_jitter_ms=settings.latency_jitter_ms,
        error_rate=settings.error_rate,
        rate_limit=settings.rate_limit,
        retry_after=settings.retry_after,
    )
    platform = _Platform(settings, state)
    document = _openapi()
    app = FastAPI(title="business_registry sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.sandbox = state
    app.state.registry = platform.registry

    @app.get(LOOKUP_PATH)
    async def lookup(request: Request) -> Response:
        return await platform.handle(request, "lookup")

    @app.get(SEARCH_PATH)
    async def search(request: Request) -> Response:
        return await platform.handle(request, "search")

    @app.get("/openapi.json")
    async def openapi_json() -> JSONResponse:
        return JSONResponse(document)

    @app.get("/openapi.yaml")
    async def openapi_yaml() -> Response:
        return Response(yaml.safe_dump(document, allow_unicode=True), media_type="application/yaml")

    if settings.control:

        @app.get("/_sandbox/stats")
        async def stats() -> JSONResponse:
            return JSONResponse(state.stats())

        @app.put("/_sandbox/faults")
        async def faults(change: FaultSettings) -> JSONResponse:
            for key, value in change.model_dump(exclude_unset=True).items():
                setattr(state, key, value)
            return JSONResponse(state.stats()["faults"])

        @app.post("/_sandbox/reset")
        async def reset() -> JSONResponse:
            state.reset()
            return JSONResponse({"requests": 0})

    return app


__all__ = [
    "LOOKUP_PATH",
    "SANDBOX_CREDENTIALS",
    "SEARCH_PATH",
    "SandboxOptions",
    "SandboxState",
    "create_app",
    "encode_credentials",
    "envelope",
]
