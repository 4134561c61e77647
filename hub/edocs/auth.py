"""Who is calling: X-Road-Client + X-Api-Key (as at the gateway), or the LGSP facade's
X-SystemId + X-SecretKey; either way an edocs member acting for one organ. Secrets are compared in
constant time and never logged."""

from collections.abc import Mapping

from pydantic import SecretStr

from hub.edocs.errors import CallerRefused
from hub.edocs.service import EdocCaller
from hub.edocs.settings import secret_matches
from hub.gateway.auth import AuthError, authenticate_api_key
from hub.settings import Settings

# Compared against when the system id is unknown, so both paths take the same time.
_DUMMY_SECRET = SecretStr("sha256:" + "0" * 64)


def _caller(settings: Settings, client: str, method: str) -> EdocCaller:
    member = settings.edocs.members.get(client)
    if member is None:
        raise CallerRefused(f"client {client} is not a document exchange member", kind="denied")
    return EdocCaller(client, settings.edocs.organ_of(client), member, method)


def authenticate_member(settings: Settings, headers: Mapping[str, str]) -> EdocCaller:
    """Authenticate ``X-Road-Client`` + ``X-Api-Key`` against the members, then the edocs membership.

    Raises:
        CallerRefused: malformed or missing headers, unknown client, wrong key, or not an edocs member.
    """
    try:
        caller = authenticate_api_key(settings, headers.get("x-road-client"), headers.get("x-api-key"))
    except AuthError as exc:
        raise CallerRefused(str(exc), kind=exc.kind) from exc
    return _caller(settings, str(caller.client), "api-key")


def authenticate_system(settings: Settings, headers: Mapping[str, str]) -> EdocCaller:
    """Authenticate the facade's ``X-SystemId`` + ``X-SecretKey``.

    Raises:
        CallerRefused: missing headers, unknown system or wrong secret (one message for both).
    """
    system_id = headers.get("x-systemid") or ""
    presented = headers.get("x-secretkey") or ""
    if not system_id or not presented:
        raise CallerRefused("the X-SystemId and X-SecretKey headers are required", kind="unauthenticated")
    system = settings.edocs.systems.get(system_id)
    ok = secret_matches(system.secret if system else _DUMMY_SECRET, presented)
    if system is None or not ok:
        raise CallerRefused(
            f"system {system_id!r}: unknown system or wrong secret key", kind="unauthenticated"
        )
    return _caller(settings, system.client, "system-secret")


__all__ = ["authenticate_member", "authenticate_system"]
