"""One YAML configuration, validated at start-up; environment overrides with the prefix ``LGSP_``.

A wrong or unknown key fails with a sentence naming it (``ConfigError``). Overrides use ``__`` for
nesting: ``LGSP_BROKER__URL=amqp://...``, ``LGSP_STORE__URL=postgresql+asyncpg://...``.
"""

import difflib
import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from hub.edocs.settings import EdocsSettings
from hub.errors import ConfigError
from hub.identifiers import ServiceId, parse_client

ENV_PREFIX = "LGSP_"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GatewaySettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)
    request_timeout: float = Field(30.0, gt=0, description="seconds the gateway waits for a worker's reply")
    workers_in_process: bool | None = Field(
        None,
        description="run connector workers inside the gateway process (default: only with the embedded broker)",
    )


class BrokerSettings(_Strict):
    url: str = "embedded://"
    namespace: str = Field(
        "lgsp",
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$",
        description="prefix of every exchange and queue the hub declares",
    )
    prefetch: int = Field(32, ge=1, le=10_000)
    connect_timeout: float = Field(10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("embedded:", "amqp://", "amqps://")):
            raise ValueError("expected amqp://..., amqps://... or embedded://")
        return value

    @property
    def request_exchange(self) -> str:
        return f"{self.namespace}.requests"


class StoreSettings(_Strict):
    url: str = "sqlite+aiosqlite:///lgsp-hub.sqlite3"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("expected sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB")
        return value


class SharedStateSettings(_Strict):
    """Stores every worker process shares: the response cache and the rate limits towards national systems."""

    cache_url: str = Field("memory://", description="memory:// (one process) or redis://host:6379/0")
    rate_limit_url: str = Field("async+memory://", description="async+memory:// or async+redis://host:6379/0")

    @field_validator("cache_url")
    @classmethod
    def _cache(cls, value: str) -> str:
        if not value.startswith(("memory:", "redis://", "rediss://")):
            raise ValueError("expected memory:// or redis://host:port/db")
        return value


class SigningSettings(_Strict):
    """Signed requests (members) and signed responses (the hub)."""

    trust_anchors: tuple[str, ...] = Field(
        (), description="PEM files of the CAs that issue member certificates"
    )
    crls: tuple[str, ...] = Field((), description="CRL files or http(s) URLs, refreshed hourly")
    revocation: Literal["required", "off"] = "required"
    hub_key: str | None = Field(None, description="PEM private key the hub signs its responses with")
    hub_certificate: str | None = None
    timestamp_window: float = Field(
        300.0, gt=0, le=3600, description="seconds a signed request stays acceptable"
    )

    @model_validator(mode="after")
    def _pair(self) -> "SigningSettings":
        if bool(self.hub_key) != bool(self.hub_certificate):
            raise ValueError("signing.hub_key and signing.hub_certificate go together")
        return self


class MemberSettings(_Strict):
    """A client member or subsystem allowed to call the hub."""

    name: str = ""
    api_keys: tuple[SecretStr, ...] = Field(
        (), description="accepted X-Api-Key values; plain text or 'sha256:<hex>' of the key"
    )
    require_signature: bool = False
    certificates: tuple[str, ...] = Field((), description="PEM files of this member's signing certificates")

    def accepts_key(self, presented: str) -> bool:
        """Constant-time check of a presented API key against every configured one."""
        ok = False
        digest = hashlib.sha256(presented.encode()).hexdigest()
        for key in self.api_keys:
            secret = key.get_secret_value()
            if secret.startswith("sha256:"):
                ok |= hmac.compare_digest(secret[7:].lower(), digest)
            else:
                ok |= hmac.compare_digest(secret.encode(), presented.encode())
        return ok


class RetrySettings(_Strict):
    attempts: int = Field(2, ge=1, le=10, description="total attempts for retryable backend failures")
    backoff: float = Field(0.1, ge=0, description="seconds before the first retry; doubles each time")


class ConnectorInstance(_Strict):
    """A configured connector: its type (entry-point name) and that type's settings."""

    type: str
    settings: Mapping[str, Any] = Field(default_factory=dict)
    retry: RetrySettings = RetrySettings()
    concurrency: int = Field(64, ge=1, le=10_000, description="messages a worker handles at once")


class ServiceSettings(_Strict):
    connector: str
    operation: str | None = None
    description: str = ""


class AclEntry(_Strict):
    client: str
    services: tuple[str, ...] = Field(..., min_length=1, description="service ids, or '*' for all")

    @field_validator("client")
    @classmethod
    def _client(cls, value: str) -> str:
        parse_client(value)  # an IdentifierError is a ValueError: pydantic reports it
        return value

    @field_validator("services")
    @classmethod
    def _services(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if item != "*":
                ServiceId.parse(item)  # an IdentifierError is a ValueError: pydantic reports it
        return value


class Settings(_Strict):
    """The whole hub configuration."""

    instance: str = "VN"
    gateway: GatewaySettings = GatewaySettings()
    broker: BrokerSettings = BrokerSettings()
    store: StoreSettings = StoreSettings()
    members: Mapping[str, MemberSettings] = Field(default_factory=dict)
    connectors: Mapping[str, ConnectorInstance] = Field(default_factory=dict)
    services: Mapping[str, ServiceSettings] = Field(default_factory=dict)
    acl: tuple[AclEntry, ...] = ()
    edocs: EdocsSettings = EdocsSettings()
    shared: SharedStateSettings = SharedStateSettings()
    signing: SigningSettings = SigningSettings()
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("members")
    @classmethod
    def _member_ids(cls, value: Mapping[str, MemberSettings]) -> Mapping[str, MemberSettings]:
        for key in value:
            parse_client(key)  # an IdentifierError is a ValueError: pydantic reports it
        return value

    @field_validator("services")
    @classmethod
    def _service_ids(cls, value: Mapping[str, ServiceSettings]) -> Mapping[str, ServiceSettings]:
        for key in value:
            ServiceId.parse(key)  # an IdentifierError is a ValueError: pydantic reports it
        return value

    @model_validator(mode="after")
    def _references(self) -> "Settings":
        for service_id, service in self.services.items():
            if service.connector not in self.connectors:
                known = ", ".join(sorted(self.connectors)) or "none configured"
                raise ValueError(
                    f"services.{service_id}.connector: {service.connector!r} is not a configured connector "
                    f"(known: {known})"
                )
        for index, entry in enumerate(self.acl):
            for service_id in entry.services:
                if service_id != "*" and service_id not in self.services:
                    raise ValueError(f"acl[{index}].services: {service_id!r} is not a configured service")
        return self

    def service_ids(self) -> dict[ServiceId, ServiceSettings]:
        return {ServiceId.parse(k): v for k, v in self.services.items()}

    def allowed(self, client: str, service: ServiceId) -> bool:
        """Whether the ACL lets `client` (a member or subsystem id) call `service`."""
        wanted = str(service)
        for entry in self.acl:
            if entry.client == client and ("*" in entry.services or wanted in entry.services):
                return True
        return False


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in {"LGSP_CONFIG"}:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = yaml.safe_load(value) if value else value
    return overrides


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _known_fields(loc: tuple[int | str, ...], root: type[BaseModel]) -> list[str]:
    model: Any = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return []
        model = candidates[-1]
    return list(getattr(model, "model_fields", {}))


def _explain(exc: ValidationError, source: str) -> str:
    return f"invalid configuration in {source}: " + "; ".join(explain_errors(exc, Settings))


def explain_errors(exc: ValidationError, model: type[BaseModel]) -> list[str]:
    """One sentence per problem `model` found: an unknown key with the closest known one, else where and what."""
    lines = []
    for error in exc.errors():
        where = _location(tuple(error["loc"]))
        if error["type"] == "extra_forbidden":
            known = _known_fields(tuple(error["loc"]), model)
            guess = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
            hint = (
                f" (did you mean {guess[0]!r}?)"
                if guess
                else (f" (known keys: {', '.join(known)})" if known else "")
            )
            lines.append(f"unknown key {where!r}{hint}")
        else:
            message = error["msg"].removeprefix("Value error, ")
            lines.append(message if not error["loc"] else f"{where}: {message}")
    return lines


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    data: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Load and validate the configuration from a YAML file (or a dict), then apply ``LGSP_*`` overrides.

    Raises:
        ConfigError: the file is missing or unreadable, or a key is unknown or invalid.
    """
    source = "defaults"
    raw: dict[str, Any] = dict(data or {})
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {source}: {exc.strerror}") from exc
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"configuration file {source} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"configuration file {source} must hold a mapping at the top level")
        raw = _deep_merge(raw, loaded)
    raw = _deep_merge(raw, _env_overrides(os.environ if environ is None else environ))
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, source)) from exc


__all__ = [
    "AclEntry",
    "BrokerSettings",
    "ConnectorInstance",
    "GatewaySettings",
    "MemberSettings",
    "RetrySettings",
    "ServiceSettings",
    "Settings",
    "SharedStateSettings",
    "SigningSettings",
    "StoreSettings",
    "explain_errors",
    "load_settings",
]
