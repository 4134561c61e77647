"""Client authentication and authorization at the gateway (API keys now; signatures plug in here)."""

import functools
from dataclasses import dataclass

from hub.errors import HubError, IdentifierError
from hub.identifiers import ClientId, ServiceId, parse_client
from hub.settings import Settings

# Each client sends the same X-Road-Client on every request; identifiers are immutable values.
_parse_client = functools.lru_cache(maxsize=1024)(parse_client)


class AuthError(HubError):
    """Authentication or authorization failed; `kind` is 'malformed', 'unauthenticated' or 'denied'."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Caller:
    client: ClientId
    method: str  # "api-key" | "signature" | "system-secret"


def authenticate_api_key(settings: Settings, client_header: str | None, api_key: str | None) -> Caller:
    """Check ``X-Road-Client`` + ``X-Api-Key`` against the configured members.

    Raises:
        AuthError: header missing or malformed, unknown client, wrong key, or a member that must sign.
    """
    if not client_header:
        raise AuthError("the X-Road-Client header is required", kind="malformed")
    try:
        client = _parse_client(client_header) if len(client_header) <= 256 else parse_client(client_header)
    except IdentifierError as exc:
        raise AuthError(f"X-Road-Client: {exc}", kind="malformed") from exc
    member = settings.members.get(str(client))
    if member is None:
        raise AuthError(f"client {client} is not a registered member", kind="unauthenticated")
    if member.require_signature:
        raise AuthError(f"client {client} must sign its requests (require_signature)", kind="unauthenticated")
    if not api_key:
        raise AuthError("the X-Api-Key header is required", kind="unauthenticated")
    if not member.accepts_key(api_key):
        raise AuthError(f"the API key does not match client {client}", kind="unauthenticated")
    return Caller(client, "api-key")


def authorize(settings: Settings, caller: Caller, service: ServiceId) -> None:
    """Enforce the ACL (client × service).

    Raises:
        AuthError: the client may not call the service.
    """
    if not settings.allowed(str(caller.client), service):
        raise AuthError(f"client {caller.client} is not allowed to call {service}", kind="denied")


__all__ = ["AuthError", "Caller", "authenticate_api_key", "authorize"]
