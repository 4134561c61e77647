"""Who sent a SOAP request: the one place SOAP authentication is decided (XML-DSig plugs in here next)."""

from collections.abc import Mapping

from hub.errors import IdentifierError
from hub.gateway.auth import AuthError, Caller, authenticate_api_key
from hub.gateway.signatures import GatewaySignatures
from hub.identifiers import encode_header, parse_client
from hub.settings import Settings
from hub.soap_face._envelope import SOAP_ENV, SoapMessage

DSIG = "http://www.w3.org/2000/09/xmldsig#"


def authenticate_soap(
    settings: Settings, http_headers: Mapping[str, str], message: SoapMessage, signatures: GatewaySignatures
) -> Caller:
    """Authenticate a parsed SOAP request.

    The claimed client is the envelope's ``xrd:client`` when it has X-Road headers, else the
    ``X-Road-Client`` HTTP header; when both are given they must agree. An XML-DSig in soap:Header
    over Body and the X-Road headers proves it (the signer bound to the client's member); without
    one, ``X-Api-Key`` does.

    Raises:
        AuthError: no or malformed client, the two claims disagree, unknown member, wrong or missing
            key, or a signature that does not verify (its reason named).
    """
    header = http_headers.get("x-road-client")
    if (
        message.xroad is not None
        and message.root.find(f"{{{SOAP_ENV}}}Header/{{{DSIG}}}Signature") is not None
    ):
        claimed = message.xroad.client
        if str(claimed) not in settings.members:
            raise AuthError(f"client {claimed} is not a registered member", kind="unauthenticated")
        verified = signatures.verify_soap(message.raw)
        if verified.client != str(claimed) or verified.message_id != message.xroad.message_id:
            raise AuthError(
                "the signed X-Road headers differ from the ones the request carries", kind="unauthenticated"
            )
        return Caller(claimed, "signature")
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
