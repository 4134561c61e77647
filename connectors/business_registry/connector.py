"""The business registry connector: canonical JSON in, the registry's REST API out, and back.

Pipeline per call: parse and check the input (nothing leaves the hub on bad input) → cache (shared,
TTL, ``Cache-Control: no-cache`` bypass) → shared rate limit → ``GET`` through the instance's one
HTTP client (``hub.http.ClientPool``: httpx over aiohttp) → translate failures (``_errors``) → map
``ResultObject`` to the canonical model (``mappings/specs/business_registry``) → reply. When the
registry is down, a cached answer up to ``cache_max_stale`` seconds past its TTL is served, marked
stale.
"""

import asyncio
import base64
import email.utils
import hashlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator

from connectors.business_registry._errors import CONNECTOR, platform_error, translated
from connectors.business_registry.models import (
    Enterprise,
    EnterpriseLookupRequest,
    EnterpriseSearchRequest,
    EnterpriseSearchResult,
    check_enterprise_code,
)
from hub.cache import Cache, CacheEntry, CacheError
from hub.connector import (
    Connector,
    ConnectorContext,
    ConnectorReply,
    ConnectorRequest,
    ConnectorSettings,
    Operation,
)
from hub.errors import (
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
    InvalidInput,
    NotFound,
)
from hub.http import ClientPool, HttpSettings
from hub.ratelimit import Rate, RateLimiter
from mappings import Spec, shipped

log = logging.getLogger(__name__)

LOOKUP = "enterprise-lookup"
SEARCH = "enterprise-search"
LOOKUP_PATH = "/TraCuuThongTinDoanhNghiep"
SEARCH_PATH = "/TimKiemDoanhNghiep"
STALE_WARNING = '110 - "Response is Stale"'


class BusinessRegistrySettings(ConnectorSettings):
    """Settings of one business registry connector instance (frozen; unknown keys refused)."""

    base_url: str = Field(description="the LGSP base URL the registry paths hang from")
    access_key: str = Field(min_length=1)
    secret_key: SecretStr
    app_name: str = Field(min_length=1)
    partner_code: str = Field(min_length=1)
    partner_code_cus: str = ""
    connect_timeout: float = Field(3.0, gt=0)
    read_timeout: float = Field(10.0, gt=0)
    write_timeout: float = Field(5.0, gt=0)
    pool_timeout: float = Field(5.0, gt=0)
    total_timeout: float = Field(15.0, gt=0, description="bound on one HTTP exchange, all phases together")
    max_connections: int = Field(64, ge=1, description="open connections to the registry at most")
    keepalive_expiry: float = Field(30.0, gt=0)
    cache_ttl: float = Field(3600.0, ge=0, description="seconds a look-up stays fresh; 0 disables caching")
    search_cache_ttl: float = Field(300.0, ge=0, description="seconds a search page stays fresh; 0 disables")
    cache_max_stale: float = Field(
        86_400.0, ge=0, description="seconds past the TTL served when the registry is down"
    )
    rate_limit_per_second: float | None = Field(
        None, gt=0, description="the province's quota; None: unlimited"
    )
    rate_limit_burst: int | None = Field(None, ge=1)
    rate_limit_timeout: float = Field(5.0, ge=0, description="longest wait for a rate-limit slot")
    retry_after_max: float = Field(
        60.0, ge=0, description="longest Retry-After honoured; longer is a refusal"
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("base_url must be an absolute http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _burst_needs_rate(self) -> "BusinessRegistrySettings":
        if self.rate_limit_burst is not None and self.rate_limit_per_second is None:
            raise ValueError("rate_limit_burst needs rate_limit_per_second")
        return self

    def authorization(self) -> str:
        """The LGSP ``Authorization`` header: base64 of the JSON credentials."""
        credentials = {
            "AccessKey": self.access_key,
            "SecretKey": self.secret_key.get_secret_value(),
            "AppName": self.app_name,
            "PartnerCode": self.partner_code,
            "PartnerCodeCus": self.partner_code_cus,
        }
        return base64.b64encode(json.dumps(credentials, ensure_ascii=False).encode()).decode("ascii")


def _http_settings(settings: BusinessRegistrySettings) -> HttpSettings:
    return HttpSettings(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        write_timeout=settings.write_timeout,
        pool_timeout=settings.pool_timeout,
        max_connections=settings.max_connections,
        keepalive_expiry=settings.keepalive_expiry,
    )


def _decoded(response: httpx.Response, body: bytes) -> bytes:
    # ClientPool.send hands the body over as received; undo its Content-Encoding as httpx would.
    if "content-encoding" not in response.headers:
        return body
    return httpx.Response(response.status_code, headers=response.headers, content=body).content


def _validated(model: type[BaseModel], document: Any) -> Any:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(
            f"{field}: {first['msg']}", field=field, connector=CONNECTOR, detail={"reason": first["type"]}
        ) from exc


def _document(request: ConnectorRequest) -> dict[str, Any]:
    if request.body.strip():
        try:
            document = json.loads(request.body)
        except ValueError as exc:
            raise InvalidInput(f"the body is not JSON: {exc}", field="body", connector=CONNECTOR) from exc
        if not isinstance(document, dict):
            raise InvalidInput("the body must be a JSON object", field="body", connector=CONNECTOR)
        return document
    return dict(request.query)


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), "")


def _directives(headers: Mapping[str, str]) -> set[str]:
    return {
        d.strip().lower().replace(" ", "") for d in _header(headers, "cache-control").split(",") if d.strip()
    }


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class BusinessRegistryConnector(Connector):
    """Enterprise look-up and search against the national business registry (REST via LGSP)."""

    name: ClassVar[str] = "business_registry"
    Settings: ClassVar[type[ConnectorSettings]] = BusinessRegistrySettings
    operations: ClassVar[Mapping[str, Operation]] = {
        LOOKUP: Operation(
            LOOKUP,
            "Look an enterprise (10-digit code) or a branch (10-3 code) up.",
            EnterpriseLookupRequest,
            Enterprise,
            ("GET", "POST"),
        ),
        SEARCH: Operation(
            SEARCH,
            "Search enterprises by name, one page at a time.",
            EnterpriseSearchRequest,
            EnterpriseSearchResult,
            ("GET", "POST"),
        ),
    }

    def __init__(
        self,
        settings: BusinessRegistrySettings,
        context: ConnectorContext,
        *,
        specs: Mapping[str, Spec] | None = None,
        transport_factory: Callable[[], httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.settings = settings
        self.context = context
        self._key = f"{self.name}:{context.instance}"
        self._cache: Cache | None = context.cache
        limiter = context.rate_limiter
        self._owns_limiter = limiter is None
        self._limiter: RateLimiter = limiter if limiter is not None else RateLimiter("async+memory://")
        if settings.rate_limit_per_second is not None:
            self._limiter.register(self._key, Rate(settings.rate_limit_per_second, settings.rate_limit_burst))
        specs = specs or {}
        self._specs = {
            name: specs.get(name) or shipped(f"business_registry/{name}")
            for name in (
                "enterprise_lookup_to_platform",
                "enterprise_from_platform",
                "enterprise_search_to_platform",
                "enterprise_search_from_platform",
            )
        }
        self._http = ClientPool(
            _http_settings(settings),
            headers={
                "Authorization": settings.authorization(),
                "Accept": "application/json",
                "Accept-Encoding": "gzip, deflate",
            },
            transport_factory=transport_factory,
        )

    @classmethod
    def create(cls, settings: Any, context: ConnectorContext) -> "BusinessRegistryConnector":
        """Build the connector from its settings (a mapping or ``BusinessRegistrySettings``).

        Raises:
            ConfigError: a setting is missing, unknown or invalid (names it).
        """
        if not isinstance(settings, BusinessRegistrySettings):
            try:
                settings = BusinessRegistrySettings.model_validate(settings)
            except ValidationError as exc:
                first = exc.errors()[0]
                key = ".".join(str(p) for p in first["loc"]) or "settings"
                raise ConfigError(f"business_registry setting {key!r}: {first['msg']}", key=key) from exc
        return cls(settings, context)

    async def call(self, request: ConnectorRequest) -> ConnectorReply:
        """Perform ``enterprise-lookup`` or ``enterprise-search``.

        Raises:
            InvalidInput: the request is malformed or the code fails its check digit (nothing is sent).
            NotFound: the registry has no such enterprise or branch.
            BackendAuthFailure: the registry refused the hub's credentials.
            BackendRejected: the registry refused the request, or its quota is exhausted for long.
            BackendUnavailable: the registry is down, or a rate-limit slot did not come in time.
            BackendTimeout: the registry did not answer in time.
        """
        document = _document(request)
        if request.operation == LOOKUP:
            lookup: EnterpriseLookupRequest = _validated(EnterpriseLookupRequest, document)
            code = check_enterprise_code(lookup.enterprise_code)
            return await self._cached(
                f"{self._key}:lookup:{code}",
                self.settings.cache_ttl,
                request.headers,
                lambda: self._lookup(code),
            )
        if request.operation == SEARCH:
            search: EnterpriseSearchRequest = _validated(EnterpriseSearchRequest, document)
            digest = hashlib.sha256(search.model_dump_json().encode()).hexdigest()[:32]
            return await self._cached(
                f"{self._key}:search:{digest}",
                self.settings.search_cache_ttl,
                request.headers,
                lambda: self._search(search),
            )
        raise InvalidInput(
            f"unknown operation {request.operation!r} (offered: {', '.join(self.operations)})",
            field="operation",
            connector=CONNECTOR,
        )

    async def close(self) -> None:
        """Close the HTTP client (and the rate limiter when the connector made its own)."""
        await self._http.aclose()
        if self._owns_limiter:
            await self._limiter.close()

    # -- cache -----------------------------------------------------------------------------------

    async def _cached(
        self, key: str, ttl: float, headers: Mapping[str, str], fetch: Callable[[], Awaitable[bytes]]
    ) -> ConnectorReply:
        cache = self._cache
        if cache is None or ttl <= 0:
            return ConnectorReply(body=await fetch())
        directives = _directives(headers)
        bypass = bool(directives & {"no-cache", "no-store", "max-age=0"})
        entry = None if bypass else await self._cache_get(cache, key)
        now = time.time()
        if entry is not None and entry.age(now) <= ttl:
            return self._reply(entry, "HIT", ttl, now)
        try:
            body = await fetch()
        except (BackendUnavailable, BackendTimeout) as exc:
            if entry is not None and entry.age(now) <= ttl + self.settings.cache_max_stale:
                log.warning("serving a stale %s entry (%.0fs old): %s", self.name, entry.age(now), exc)
                return self._reply(entry, "STALE", ttl, now)
            raise
        if "no-store" not in directives:
            await self._cache_set(cache, key, body, ttl + self.settings.cache_max_stale)
        return ConnectorReply(
            body=body,
            headers={
                "X-Cache": "BYPASS" if bypass else "MISS",
                "Cache-Control": f"max-age={math.floor(ttl)}",
            },
        )

    def _reply(self, entry: CacheEntry, outcome: str, ttl: float, now: float) -> ConnectorReply:
        age = math.floor(entry.age(now))
        headers = {"X-Cache": outcome, "Age": str(age), "Cache-Control": f"max-age={math.floor(ttl)}"}
        if outcome == "STALE":
            headers["Warning"] = STALE_WARNING
        return ConnectorReply(body=entry.value, headers=headers)

    async def _cache_get(self, cache: Cache, key: str) -> CacheEntry | None:
        try:
            return await cache.get(key)
        except CacheError as exc:
            log.warning("cache read failed, going to the registry: %s", exc)
            return None

    async def _cache_set(self, cache: Cache, key: str, body: bytes, keep: float) -> None:
        try:
            await cache.set(key, body, keep)
        except CacheError as exc:
            log.warning("cache write failed: %s", exc)

    # -- the registry ----------------------------------------------------------------------------

    async def _lookup(self, code: str) -> bytes:
        with translated(LOOKUP):
            query = self._specs["enterprise_lookup_to_platform"].apply({"enterprise_code": code})
        result = await self._exchange(LOOKUP, LOOKUP_PATH, query)
        if result is None:
            raise NotFound(
                f"{LOOKUP}: the registry has no enterprise {code}",
                connector=CONNECTOR,
                detail={"platform_status": 200, "enterprise_code": code},
            )
        with translated(LOOKUP):
            enterprise = Enterprise.model_validate(self._specs["enterprise_from_platform"].apply(result))
        return enterprise.model_dump_json().encode()

    async def _search(self, search: EnterpriseSearchRequest) -> bytes:
        with translated(SEARCH):
            query = self._specs["enterprise_search_to_platform"].apply(search.model_dump())
        result = await self._exchange(SEARCH, SEARCH_PATH, query)
        with translated(SEARCH):
            page = EnterpriseSearchResult.model_validate(
                self._specs["enterprise_search_from_platform"].apply(result or {"TOTAL_COUNT": 0})
            )
        return page.model_dump_json().encode()

    async def _exchange(self, operation: str, path: str, query: Mapping[str, Any]) -> Any:
        """One GET under the rate limit; a short Retry-After is honoured once. Returns ResultObject."""
        retry_after: float | None = None
        description = ""
        for _ in range(2):
            with translated(operation):
                await self._limiter.acquire(self._key, self.settings.rate_limit_timeout)
                async with asyncio.timeout(self.settings.total_timeout):
                    response, body = await self._http.send(
                        "GET", f"{self.settings.base_url}{path}", params=list(query.items())
                    )
                log.info("registry call: GET %s -> HTTP %d", path, response.status_code)
                body = _decoded(response, body)
            status, description, result = self._envelope(operation, response, body)
            if status == 200:
                return result
            if status != 429:
                raise platform_error(operation, status, description)
            retry_after = _retry_after(response.headers.get("retry-after"))
            if retry_after is None or retry_after > self.settings.retry_after_max:
                raise BackendRejected(
                    f"{operation}: the registry's quota is exhausted (Retry-After {retry_after})",
                    connector=CONNECTOR,
                    status_code=429,
                    detail={"platform_status": 429, "retry_after": retry_after, "description": description},
                )
            with translated(operation):
                await self._limiter.pause(self._key, retry_after)
        raise BackendUnavailable(
            f"{operation}: the registry still answers 429 after waiting {retry_after}s",
            connector=CONNECTOR,
            status_code=503,
            detail={"platform_status": 429, "retry_after": retry_after, "description": description},
        )

    def _envelope(self, operation: str, response: httpx.Response, body: bytes) -> tuple[int, str, Any]:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("StatusCode"), int):
            if response.status_code == 200:
                raise BackendRejected(
                    f"{operation}: the registry's answer is not its JSON envelope",
                    connector=CONNECTOR,
                    status_code=502,
                    detail={"reason": "envelope", "content_type": response.headers.get("content-type")},
                )
            return response.status_code, body.decode("utf-8", "replace")[:200], None
        # Some LGSPs answer HTTP 200 with the failure in the envelope: trust the envelope then.
        status = payload["StatusCode"] if response.status_code == 200 else response.status_code
        return status, str(payload.get("Description") or ""), payload.get("ResultObject")


__all__ = ["LOOKUP", "SEARCH", "STALE_WARNING", "BusinessRegistryConnector", "BusinessRegistrySettings"]
