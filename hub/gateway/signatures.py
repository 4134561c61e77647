"""Signed requests and responses at the gateway, over the standalone `signing` library.

REST: ``X-Road-Signature`` (detached JWS over the exact body, bound to method, path, client, id and a
timestamp). SOAP: an XML-DSig in soap:Header over Body and the X-Road headers. The signer must be
bound to the client's member; the message id is then remembered (hub.store) so a replay is refused.
The hub signs its responses with its own key so clients can keep them as evidence.
"""

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509

from hub.errors import ConfigError, IdentifierError
from hub.gateway.auth import AuthError, Caller
from hub.identifiers import ClientId, parse_client
from hub.settings import Settings
from signing import SigningError
from signing.gateway import (
    VerifiedRequest,
    VerifiedSoap,
    sign_request,
    soap_policy,
    verify_request,
    verify_soap,
)
from signing.trust import MemberBindings, RevocationMode, TrustStore, certificate_kid, load_certificates
from signing.xmldsig import SignaturePolicy, SigningKey, load_private_key

SIGNATURE_HEADER = "x-road-signature"


@dataclass(frozen=True, slots=True)
class HubIdentity:
    """The hub's own signing key and certificate."""

    key: SigningKey
    certificate: x509.Certificate
    kid: str


class GatewaySignatures:
    """Verifies members' signatures and signs the hub's responses (both optional, per configuration)."""

    def __init__(self, trust: TrustStore | None, identity: HubIdentity | None, *, window: timedelta) -> None:
        self.trust = trust
        self.identity = identity
        self.window = window
        self._soap_policy: SignaturePolicy | None = soap_policy(trust) if trust is not None else None

    @classmethod
    def from_settings(cls, settings: Settings) -> "GatewaySignatures":
        """Build the trust store (anchors, CRLs, member certificates) and load the hub's key.

        Raises:
            ConfigError: a file is missing or unreadable, or the key does not match the certificate.
        """
        config = settings.signing
        window = timedelta(seconds=config.timestamp_window)
        trust = None
        if config.trust_anchors:
            try:
                trust = TrustStore.from_files(
                    anchors=config.trust_anchors,
                    crls=config.crls,
                    revocation=RevocationMode.REQUIRED
                    if config.revocation == "required"
                    else RevocationMode.OFF,
                    bindings=MemberBindings(embedded=True),
                )
                for member in settings.members.values():
                    for path in member.certificates:
                        for certificate in load_certificates(Path(path).read_bytes()):
                            trust.add_signer(certificate)
            except (OSError, SigningError) as exc:
                raise ConfigError(
                    f"signing: cannot build the trust store: {exc}", key="signing.trust_anchors"
                ) from exc
        identity = None
        if config.hub_key and config.hub_certificate:
            try:
                key = load_private_key(Path(config.hub_key).read_bytes())
                certificate = load_certificates(Path(config.hub_certificate).read_bytes())[0]
            except (OSError, SigningError, IndexError, ValueError) as exc:
                raise ConfigError(
                    f"signing: cannot load the hub key or certificate: {exc}", key="signing.hub_key"
                ) from exc
            identity = HubIdentity(key, certificate, certificate_kid(certificate))
        return cls(trust, identity, window=window)

    def verify_rest(
        self, signature: str, body: bytes, *, method: str, path: str, client: ClientId, message_id: str
    ) -> VerifiedRequest:
        """Verify a REST request's ``X-Road-Signature``; the signer must be bound to ``client``'s member.

        Raises:
            AuthError: signatures are not configured, or the signature is invalid (the reason is named).
        """
        if self.trust is None:
            raise AuthError(
                "this hub has no trust anchors configured; signed requests cannot be verified",
                kind="unauthenticated",
            )
        try:
            return verify_request(
                signature,
                body,
                self.trust,
                method=method,
                path=path,
                client=str(client),
                member_id=str(client.member),
                message_id=message_id,
                window=self.window,
            )
        except SigningError as exc:
            raise AuthError(
                f"X-Road-Signature refused ({exc.reason.name}): {exc}", kind="unauthenticated"
            ) from exc

    def verify_soap(self, envelope: bytes) -> VerifiedSoap:
        """Verify a SOAP request's XML-DSig over Body and the X-Road headers.

        Raises:
            AuthError: signatures are not configured, or the signature is invalid (the reason is named).
        """
        if self._soap_policy is None:
            raise AuthError(
                "this hub has no trust anchors configured; signed requests cannot be verified",
                kind="unauthenticated",
            )
        try:
            return verify_soap(envelope, self._soap_policy)
        except SigningError as exc:
            raise AuthError(
                f"SOAP signature refused ({exc.reason.name}): {exc}", kind="unauthenticated"
            ) from exc

    def sign_response(
        self, body: bytes, *, method: str, path: str, client: str, message_id: str
    ) -> str | None:
        """The hub's ``X-Road-Signature`` over a response body, or None when the hub has no key."""
        if self.identity is None:
            return None
        return sign_request(
            body,
            self.identity.key,
            kid=self.identity.kid,
            method=method,
            path=path,
            client=client,
            message_id=message_id,
        )


def authenticate_signed(
    settings: Settings,
    signatures: GatewaySignatures,
    client_header: str | None,
    signature: str,
    body: bytes,
    *,
    method: str,
    path: str,
    message_id: str | None,
) -> Caller:
    """Authenticate a REST request by its ``X-Road-Signature`` (instead of an API key).

    Raises:
        AuthError: malformed or unknown client, no X-Road-Id, or a signature that does not verify.
    """
    if not client_header:
        raise AuthError("the X-Road-Client header is required", kind="malformed")
    try:
        client = parse_client(client_header)
    except IdentifierError as exc:
        raise AuthError(f"X-Road-Client: {exc}", kind="malformed") from exc
    if str(client) not in settings.members:
        raise AuthError(f"client {client} is not a registered member", kind="unauthenticated")
    if not message_id:
        raise AuthError("a signed request must carry the X-Road-Id its signature binds", kind="malformed")
    signatures.verify_rest(signature, body, method=method, path=path, client=client, message_id=message_id)
    return Caller(client, "signature")


__all__ = ["SIGNATURE_HEADER", "GatewaySignatures", "HubIdentity", "authenticate_signed"]
