"""Signed gateway requests and responses: ``X-Road-Signature`` for REST, XML-DSig in the SOAP header.

REST: a detached RFC 7797 JWS over the exact body bytes whose protected header binds the method, path,
``X-Road-Client``, ``X-Road-Id`` and a timestamp. SOAP: an XML signature in ``soap:Header`` whose references
cover ``soap:Body`` and the X-Road ``client``, ``service``, ``id`` and ``protocolVersion`` headers by Id.
Replay detection (the seen-ids store) belongs to the caller: both verifiers return the message id.
The hub signs its responses with the same functions and its own key.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from lxml import etree

from signing.errors import Reason, SignatureInvalid, SigningFailed
from signing.jws import sign_jws, verify_jws
from signing.safe_xml import DEFAULT_LIMITS, XmlLimits, parse_xml
from signing.trust import TrustStore, ValidatedSigner
from signing.xmldsig import SignaturePolicy, SigningKey, VerifiedXml, sign_xml, verify_xml

__all__ = [
    "SIGNATURE_HEADER",
    "SOAP_NS",
    "XROAD_NS",
    "VerifiedRequest",
    "VerifiedSoap",
    "sign_request",
    "sign_soap",
    "soap_policy",
    "verify_request",
    "verify_soap",
]

SIGNATURE_HEADER = "X-Road-Signature"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XROAD_NS = "http://x-road.eu/xsd/xroad.xsd"
ID_NS = "http://x-road.eu/xsd/identifiers"
_NS = {"soap": SOAP_NS, "xrd": XROAD_NS, "id": ID_NS}
_SIGNED_HEADERS = ("client", "service", "id", "protocolVersion")
_TIMESTAMP_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True)
class VerifiedRequest:
    """What a valid ``X-Road-Signature`` established about a REST request (or response)."""

    member_id: str
    client: str
    message_id: str
    method: str
    path: str
    signed_at: datetime
    signer: ValidatedSigner
    algorithm: str


def sign_request(
    body: bytes,
    key: SigningKey,
    *,
    kid: str,
    method: str,
    path: str,
    client: str,
    message_id: str,
    now: datetime | None = None,
    algorithm: str = "RS256",
) -> str:
    """Return the ``X-Road-Signature`` header value for a request or response body.

    Raises:
        SigningFailed: the key or algorithm cannot sign.
    """
    signed_at = int((now or datetime.now(UTC)).timestamp())
    return sign_jws(
        body,
        key,
        kid=kid,
        algorithm=algorithm,
        encode_payload=False,
        headers={"htm": method.upper(), "htp": path, "xrc": client, "xid": message_id, "iat": signed_at},
    )


def verify_request(
    signature: str,
    body: bytes,
    trust: TrustStore,
    *,
    method: str,
    path: str,
    client: str,
    member_id: str,
    message_id: str,
    now: datetime | None = None,
    window: timedelta = _TIMESTAMP_WINDOW,
) -> VerifiedRequest:
    """Verify an ``X-Road-Signature`` against the body and the request it arrived with.

    ``member_id`` is the member ``client`` belongs to, as the caller's identifier parser reads it
    (signing/ does not split identifiers); the signer must be bound to it.

    Raises:
        SignatureInvalid: BINDING_MISMATCH (method, path, client or id differ), STALE_TIMESTAMP,
            WRONG_MEMBER (signer is not the client's member), or any JWS / trust store reason.
    """
    when = (now or trust.now()).astimezone(UTC)
    verified = verify_jws(signature, trust, payload=body, at=when)
    header = verified.header
    if verified.header.get("b64", True) is not False:
        raise SignatureInvalid(
            Reason.BAD_HEADER, "X-Road-Signature must use an unencoded (b64: false) payload"
        )
    expected = {"htm": method.upper(), "htp": path, "xrc": client, "xid": message_id}
    for name, value in expected.items():
        if header.get(name) != value:
            raise SignatureInvalid(
                Reason.BINDING_MISMATCH, f"signed {name}={header.get(name)!r} but request has {value!r}"
            )
    issued = header.get("iat")
    if not isinstance(issued, int) or isinstance(issued, bool):
        raise SignatureInvalid(Reason.BAD_HEADER, "iat missing or not an integer")
    signed_at = datetime.fromtimestamp(issued, UTC)
    if abs(when - signed_at) > window:
        raise SignatureInvalid(
            Reason.STALE_TIMESTAMP,
            f"signed at {signed_at.isoformat()}, outside {window} of {when.isoformat()}",
        )
    if verified.signer.member_id != member_id:
        raise SignatureInvalid(
            Reason.WRONG_MEMBER,
            f"signer is bound to {verified.signer.member_id!r}, client {client!r} is of {member_id!r}",
        )
    return VerifiedRequest(
        member_id=member_id,
        client=client,
        message_id=message_id,
        method=method.upper(),
        path=path,
        signed_at=signed_at,
        signer=verified.signer,
        algorithm=verified.algorithm,
    )


@dataclass(frozen=True)
class VerifiedSoap:
    """What a valid SOAP signature established; every field is read from the signed elements."""

    member_id: str
    client: str
    service: str
    message_id: str
    protocol_version: str
    body: etree._Element
    signer: ValidatedSigner
    xml: VerifiedXml


def soap_policy(trust: TrustStore, **options: object) -> SignaturePolicy:
    """The signature policy for X-Road SOAP messages: one signature in soap:Header covering Body and headers.

    Build it once per trust store and reuse it; ``options`` are further :class:`SignaturePolicy` fields.
    """
    required = ("/soap:Envelope/soap:Body", *(f"/soap:Envelope/soap:Header/xrd:{h}" for h in _SIGNED_HEADERS))
    return SignaturePolicy(
        trust=trust,
        location=f"./{{{SOAP_NS}}}Header/",
        required=required,
        namespaces=_NS,
        **options,  # type: ignore[arg-type]
    )


def _id_of(element: etree._Element, prefix: str) -> str:
    existing = element.get("Id")
    if existing:
        return existing
    value = f"{prefix}-{uuid.uuid4().hex[:12]}"
    element.set("Id", value)
    return value


def sign_soap(
    envelope: bytes,
    key: SigningKey,
    cert: x509.Certificate,
    *,
    limits: XmlLimits = DEFAULT_LIMITS,
) -> bytes:
    """Return the envelope with an XML signature in soap:Header over Body and the X-Road headers.

    Raises:
        XmlError: the envelope is refused by the safe parser.
        SigningFailed: the envelope lacks soap:Header, soap:Body or one of the X-Road headers.
    """
    root = parse_xml(envelope, limits=limits)
    header = root.find("soap:Header", _NS)
    body = root.find("soap:Body", _NS)
    if root.tag != f"{{{SOAP_NS}}}Envelope" or header is None or body is None:
        raise SigningFailed("not a SOAP 1.1 envelope with Header and Body")
    ids = [_id_of(body, "body")]
    for name in _SIGNED_HEADERS:
        element = header.find(f"xrd:{name}", _NS)
        if element is None:
            raise SigningFailed(f"X-Road header {name} missing")
        ids.append(_id_of(element, name))
    placeholder = etree.SubElement(header, "{http://www.w3.org/2000/09/xmldsig#}Signature")
    placeholder.set("Id", "placeholder")
    return sign_xml(root, key, cert, reference_ids=ids)


def _identifier(element: etree._Element, parts: tuple[str, ...]) -> str:
    values = [element.findtext(f"id:{part}", default="", namespaces=_NS).strip() for part in parts]
    return "/".join(v for v in values if v)


def verify_soap(envelope: bytes | etree._Element, policy: SignaturePolicy) -> VerifiedSoap:
    """Verify a signed X-Road SOAP message under ``policy`` (see :func:`soap_policy`).

    Raises:
        XmlError: refused by the safe parser.
        SignatureInvalid: any XML-DSig reason, NOT_COVERED / WRAPPING when Body or a header is unsigned,
            WRONG_MEMBER when the signer is not the client's member.
    """
    verified = verify_xml(envelope, policy)
    signed = {etree.QName(e).localname: e for e in verified.signed_elements}
    body = signed.get("Body")
    headers = {name: signed.get(name) for name in _SIGNED_HEADERS}
    if body is None or any(v is None for v in headers.values()):
        raise SignatureInvalid(
            Reason.NOT_COVERED, "Body and the X-Road headers must each be a signed reference"
        )
    client_el, service_el = headers["client"], headers["service"]
    assert client_el is not None and service_el is not None
    client = _identifier(client_el, ("xRoadInstance", "memberClass", "memberCode", "subsystemCode"))
    member = _identifier(client_el, ("xRoadInstance", "memberClass", "memberCode"))
    service = _identifier(
        service_el,
        ("xRoadInstance", "memberClass", "memberCode", "subsystemCode", "serviceCode", "serviceVersion"),
    )
    if verified.member_id != member:
        raise SignatureInvalid(
            Reason.WRONG_MEMBER, f"signer is bound to {verified.member_id!r}, client is {member!r}"
        )
    return VerifiedSoap(
        member_id=member,
        client=client,
        service=service,
        message_id=(headers["id"].text or "").strip() if headers["id"] is not None else "",
        protocol_version=(headers["protocolVersion"].text or "").strip()
        if headers["protocolVersion"] is not None
        else "",
        body=body,
        signer=verified.signer,
        xml=verified,
    )
