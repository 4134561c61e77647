"""The hub's immutable message model: a request Envelope and the Reply that answers it.

The message id is the idempotency key (X-Road-Id); the correlation id ties a reply to its
request; ``body`` holds exactly the bytes the client sent (the signed bytes when signed).
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hub.identifiers import ServiceId


def new_id() -> str:
    """A fresh message id (UUID4, as X-Road generates)."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A request travelling from a gateway to a connector worker."""

    message_id: str
    client: str
    service: ServiceId
    operation: str
    body: bytes = b""
    content_type: str = "application/octet-stream"
    correlation_id: str = field(default_factory=new_id)
    method: str = "POST"
    path: str = ""
    query: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    user_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    deadline: datetime | None = None
    trace: tuple[str, ...] = ()

    def expired(self, now: datetime | None = None) -> bool:
        """True when the caller has stopped waiting for an answer."""
        return self.deadline is not None and (now or utcnow()) >= self.deadline


@dataclass(frozen=True, slots=True)
class Reply:
    """A worker's answer: an HTTP-shaped response, or a hub error when ``error_type`` is set."""

    message_id: str
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    error_type: str | None = None
    trace: tuple[str, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.error_type is not None


__all__ = ["Envelope", "Reply", "new_id", "utcnow"]
