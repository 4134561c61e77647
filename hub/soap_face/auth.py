"""Who sent a SOAP request: the one place SOAP authentication is decided (XML-DSig plugs in here next)."""

from collections.abc import Mapping

from hub.errors import IdentifierError
from hub.gateway.auth import AuthError, Caller, authenticate_api_key
from hub.identifiers import encode_header, parse_client
from hub.settings import Settings
from hub.soap_face._envelope import SoapMessage


def authenticate_soap(settings: Settings, http_headers: Mapping[str, str], message: SoapMessage) -> Caller:
    """Authenticate a parsed SOAP request.

    The claimed client is the envelope's ``xrd:client`` when it has X-Road headers, else the
    ``X-Road-Client`` HTTP header; when both are given they must agree. ``X-Api-Key`` proves it.

    Raises:
        AuthError: no or malformed client, the two claims disagree, unknown member, wrong or missing key.
    """
    header = http_headers.get("x-road-client")
    if message.xroad is None:
        return authenticate_api_key(settings, header, http_headers.get("x-api-key"))
    claimed = message.xroad.client
    if header:
        other = _client_named(header)
        if other != str(claimed):
            raise AuthError(
                f"the X-Road-Client header ({other}) and xrd:client ({claimed}) name different clients",
                kind="malformed",
            )
    return authenticate_api_key(settings, encode_header(claimed), http_headers.get("x-api-key"))


def _client_named(header: str) -> str:
    try:
        return str(parse_client(header))
    except IdentifierError as exc:
        raise AuthError(f"X-Road-Client: {exc}", kind="malformed") from exc


__all__ = ["authenticate_soap"]
