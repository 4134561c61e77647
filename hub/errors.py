"""The hub's exception tree. Foreign exceptions are translated once, at the boundary, into these.

HubError
├── ConfigError                 configuration missing, unknown or invalid (names the key)
├── IdentifierError             a member / subsystem / service identifier is malformed
├── EnvelopeError               an AMQP message cannot be decoded into an Envelope
├── RegistryError               a connector plugin cannot be registered (names the connector)
├── StoreError                  the store refused or lost a write
├── BrokerError                 the broker could not do what was asked
│   ├── BrokerConnectionError   the connection dropped; in-flight publishes fail with this
│   ├── UnroutableError         a mandatory publish matched no queue
│   ├── PublishNackedError      the broker refused to take responsibility for a message
│   └── ReplyTimeout            no reply to a request within its timeout
└── ConnectorError              a connector call failed (carries connector, status_code, detail)
    ├── InvalidInput            the request is wrong; carries the field; never retried
    ├── NotFound                the national system has no such record; passed back
    ├── BackendRejected         the national system answered 4xx / a business fault; passed back
    ├── BackendAuthFailure      the national system refused the hub's credentials
    ├── BackendUnavailable      5xx, connection refused, reset; retried, then 502
    └── BackendTimeout          no answer in time; retried, then 504
"""

from typing import Any


class HubError(Exception):
    """Root of every error the hub raises on purpose."""


class ConfigError(HubError):
    """Configuration is missing, unknown or invalid."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class IdentifierError(HubError, ValueError):
    """An X-Road style identifier is malformed."""

    def __init__(self, message: str, *, value: str) -> None:
        super().__init__(message)
        self.value = value


class EnvelopeError(HubError):
    """A broker message cannot be decoded into an Envelope."""


class RegistryError(HubError):
    """A connector plugin is refused at registration."""

    def __init__(self, message: str, *, connector: str) -> None:
        super().__init__(message)
        self.connector = connector


class StoreError(HubError):
    """The store refused or lost a write."""


class Replayed(HubError):
    """A signed request repeats a message id its client already used."""


class BrokerError(HubError):
    """The broker could not do what was asked."""


class BrokerConnectionError(BrokerError):
    """The broker connection is down; the operation did not complete and may be retried."""


class UnroutableError(BrokerError):
    """A mandatory publish was returned: no queue is bound for its routing key."""

    def __init__(self, message: str, *, exchange: str, routing_key: str) -> None:
        super().__init__(message)
        self.exchange = exchange
        self.routing_key = routing_key


class PublishNackedError(BrokerError):
    """The broker nacked a publish: it did not take responsibility for the message."""


class ReplyTimeout(BrokerError):
    """No reply arrived for a request within its timeout."""

    def __init__(self, message: str, *, timeout: float) -> None:
        super().__init__(message)
        self.timeout = timeout


class ConnectorError(HubError):
    """A connector call failed. Subclasses say how; the disposition table says what follows."""

    default_status = 502

    def __init__(
        self,
        message: str,
        *,
        connector: str = "",
        status_code: int | None = None,
        detail: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.connector = connector
        self.status_code = status_code if status_code is not None else self.default_status
        self.detail = detail
        self.body = body
        self.content_type = content_type


class InvalidInput(ConnectorError):
    """The request is invalid; `field` names the offending field (dotted path)."""

    default_status = 400

    def __init__(self, message: str, *, field: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.field = field


class NotFound(ConnectorError):
    """The national system has no such record."""

    default_status = 404


class BackendRejected(ConnectorError):
    """The national system answered with a 4xx or a business fault; passed back, never retried."""

    default_status = 422


class BackendAuthFailure(ConnectorError):
    """The national system refused the hub's credentials."""

    default_status = 502


class BackendUnavailable(ConnectorError):
    """The national system is down (5xx, connection refused or reset); retried, then 502."""

    default_status = 502


class BackendTimeout(ConnectorError):
    """The national system did not answer in time; retried, then 504."""

    default_status = 504


__all__ = [
    "BackendAuthFailure",
    "BackendRejected",
    "BackendTimeout",
    "BackendUnavailable",
    "BrokerConnectionError",
    "BrokerError",
    "ConfigError",
    "ConnectorError",
    "EnvelopeError",
    "HubError",
    "IdentifierError",
    "InvalidInput",
    "NotFound",
    "PublishNackedError",
    "RegistryError",
    "Replayed",
    "ReplyTimeout",
    "StoreError",
    "UnroutableError",
]
