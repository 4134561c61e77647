"""Settings of the document exchange (the `edocs:` section of the configuration)."""

import functools
import hashlib
import hmac
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from hub.identifiers import parse_client

MIB = 1024 * 1024
ORGAN_CODE = re.compile(r"^[A-Za-z0-9]+(\.[A-Za-z0-9]+)*$")
DEFAULT_RETRY_DELAYS_MS = (60_000, 300_000, 1_800_000, 7_200_000, 21_600_000)


def check_organ_code(value: str) -> str:
    """Return ``value`` if it is an organ code (``000.00.00.H40``, ``H40.12``).

    Raises:
        ValueError: it is not.
    """
    if not (1 <= len(value) <= 64 and ORGAN_CODE.match(value)):
        raise ValueError(f"{value!r} is not an organ code (letters and digits in dot-separated groups)")
    return value


def secret_matches(configured: SecretStr, presented: str) -> bool:
    """Constant-time check of a presented secret against a plain or ``sha256:<hex>`` configured one."""
    secret = configured.get_secret_value()
    if secret.startswith("sha256:"):
        digest = hashlib.sha256(presented.encode()).hexdigest()
        return hmac.compare_digest(secret[7:].lower(), digest)
    return hmac.compare_digest(secret.encode(), presented.encode())


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EdocMember(_Strict):
    """A client (member or subsystem) allowed to exchange documents, and its signature policy."""

    organ_id: str | None = Field(None, description="organ code it acts for (default: its member code)")
    require_signature: bool = Field(True, description="refuse packages without a valid XML signature")
    legacy_sha1: bool = Field(False, description="accept RSA-SHA1 / SHA-1 signatures from this member")
    excise_empty_xmlns: bool = Field(
        True,
        description="accept packages signed with inclusive c14n under a default-namespace Signature, as "
        "real edXML senders do (docs/signing.md, 'the edXML trap'); turn off for exc-c14n senders",
    )

    @field_validator("organ_id")
    @classmethod
    def _organ(cls, value: str | None) -> str | None:
        return None if value is None else check_organ_code(value)


class FacadeSystem(_Strict):
    """LGSP-style credentials (``X-SystemId`` / ``X-SecretKey``) of one edocs member."""

    client: str = Field(..., description="the edocs member (a key of edocs.members) these credentials act as")
    secret: SecretStr = Field(..., description="plain text or 'sha256:<hex>' of the secret key")

    def accepts(self, presented: str) -> bool:
        return secret_matches(self.secret, presented)


class AgencySettings(_Strict):
    """An agency of the directory, as configured (CSV imports add more in the store)."""

    name: str = Field(..., min_length=1, max_length=512)
    parent: str | None = None
    endpoint: str | None = Field(None, description="push deliveries to this URL (else: pull)")

    @field_validator("parent")
    @classmethod
    def _parent(cls, value: str | None) -> str | None:
        return None if value is None else check_organ_code(value)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value


class TrustSettings(_Strict):
    """Where signer certificates must chain to, and how revocation is checked."""

    anchors: tuple[Path, ...] = Field((), description="PEM/DER CA certificates signers must chain to")
    crls: tuple[str, ...] = Field((), description="CRL files or http(s) URLs")
    revocation: Literal["required", "off"] = "required"
    clock_skew_seconds: float = Field(300.0, ge=0)


class PushSettings(_Strict):
    """Push deliveries to agencies with an endpoint."""

    timeout: float = Field(30.0, gt=0, description="seconds for one POST to an endpoint")
    retry_delays_ms: tuple[int, ...] = Field(
        DEFAULT_RETRY_DELAYS_MS, min_length=1, description="delay before each retry; then the DLQ"
    )
    concurrency: int = Field(16, ge=1, le=1000, description="pushes in flight per worker process")

    @field_validator("retry_delays_ms")
    @classmethod
    def _delays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(d <= 0 for d in value):
            raise ValueError("every retry delay must be a positive number of milliseconds")
        if len(set(value)) != len(value):
            raise ValueError("retry delays must be distinct (one retry queue each)")
        return value


class EdocsSettings(_Strict):
    """Document exchange between agencies; disabled unless `enabled: true`."""

    enabled: bool = False
    hub_organ_id: str = Field("LGSP", description="OrganId of the TraceHeader the hub appends")
    max_package_bytes: int = Field(50 * MIB, gt=0, description="largest edXML package accepted")
    members: Mapping[str, EdocMember] = Field(default_factory=dict)
    systems: Mapping[str, FacadeSystem] = Field(
        default_factory=dict, description="LGSP facade credentials: X-SystemId -> member and secret"
    )
    agencies: Mapping[str, AgencySettings] = Field(default_factory=dict)
    trust: TrustSettings = TrustSettings()
    push: PushSettings = PushSettings()
    prefetch: int = Field(64, ge=1, le=10_000, description="unacked pull deliveries per worker process")
    outbox_interval: float = Field(5.0, gt=0, description="seconds between scans for unpublished deliveries")
    outbox_grace: float = Field(30.0, gt=0, description="age after which an unpublished delivery is re-sent")
    page_size: int = Field(100, ge=1, le=1000, description="largest inbox page")

    @field_validator("hub_organ_id")
    @classmethod
    def _hub_organ(cls, value: str) -> str:
        return check_organ_code(value)

    @field_validator("members")
    @classmethod
    def _members(cls, value: Mapping[str, EdocMember]) -> Mapping[str, EdocMember]:
        for key in value:
            parse_client(key)  # an IdentifierError is a ValueError: pydantic reports it
        return value

    @field_validator("agencies")
    @classmethod
    def _agencies(cls, value: Mapping[str, AgencySettings]) -> Mapping[str, AgencySettings]:
        for code in value:
            check_organ_code(code)
        return value

    @model_validator(mode="after")
    def _references(self) -> "EdocsSettings":
        for system_id, system in self.systems.items():
            if system.client not in self.members:
                raise ValueError(f"systems.{system_id}.client: {system.client!r} is not in edocs.members")
        for code, agency in self.agencies.items():
            if agency.parent is not None and agency.parent == code:
                raise ValueError(f"agencies.{code}.parent: an agency cannot be its own parent")
        if (
            self.enabled
            and not self.trust.anchors
            and any(m.require_signature for m in self.members.values())
        ):
            raise ValueError(
                "trust.anchors: members require signatures, so at least one trust anchor is needed"
            )
        return self

    def organ_of(self, client: str) -> str:
        """The organ code an edocs member acts for."""
        member = self.members[client]
        return member.organ_id or _member_code(client)


@functools.lru_cache(maxsize=1024)
def _member_code(client: str) -> str:
    # Asked on every request; the client ids are the configured members', so the cache stays small.
    return parse_client(client).member.member_code


__all__ = [
    "AgencySettings",
    "EdocMember",
    "EdocsSettings",
    "FacadeSystem",
    "PushSettings",
    "TrustSettings",
    "check_organ_code",
    "secret_matches",
]
