"""Signed gateway requests: X-Road-Signature (REST) and XML-DSig in the SOAP header."""

from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from signing.errors import Reason, SignatureInvalid
from signing.gateway import sign_request, sign_soap, soap_policy, verify_request, verify_soap
from signing.trust import TrustStore, certificate_kid
from tests.signing.conftest import MEMBER, Pki

CLIENT = MEMBER + "/EGOV"
PATH = "/r1/VN/GOV/000.00.00.G22/DB/persons/001099000001"
BODY = b'{"purpose": "verify"}'
ENVELOPE = b"""<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xroad="http://x-road.eu/xsd/xroad.xsd" xmlns:id="http://x-road.eu/xsd/identifiers"><soapenv:Header>
<xroad:client id:objectType="SUBSYSTEM"><id:xRoadInstance>VN</id:xRoadInstance><id:memberClass>GOV</id:memberClass>
<id:memberCode>000.00.00.H40</id:memberCode><id:subsystemCode>EGOV</id:subsystemCode></xroad:client>
<xroad:service id:objectType="SERVICE"><id:xRoadInstance>VN</id:xRoadInstance><id:memberClass>GOV</id:memberClass>
<id:memberCode>000.00.00.G22</id:memberCode><id:subsystemCode>DB</id:subsystemCode>
<id:serviceCode>getPerson</id:serviceCode></xroad:service>
<xroad:id>4894e35d-bf0f-44a6-867a-8e51f1daa7e0</xroad:id><xroad:protocolVersion>4.0</xroad:protocolVersion>
</soapenv:Header><soapenv:Body><getPerson><id>001099000001</id></getPerson></soapenv:Body></soapenv:Envelope>"""


def _signed_request(pki: Pki, *, now: datetime | None = None, signer: str = "member") -> str:
    issued = getattr(pki, signer)
    return sign_request(
        BODY,
        issued.key,
        kid=certificate_kid(issued.certificate),
        method="post",
        path=PATH,
        client=CLIENT,
        message_id="msg-1",
        now=now,
    )


def _verify(signature: str, trust: TrustStore, body: bytes = BODY, **overrides: str) -> object:
    expected = {
        "method": "POST",
        "path": PATH,
        "client": CLIENT,
        "member_id": MEMBER,
        "message_id": "msg-1",
    } | overrides
    return verify_request(signature, body, trust, **expected)  # type: ignore[arg-type]


def test_verify_request_returns_member_and_message_id(pki: Pki, trust: TrustStore) -> None:
    verified = verify_request(
        _signed_request(pki),
        BODY,
        trust,
        method="POST",
        path=PATH,
        client=CLIENT,
        member_id=MEMBER,
        message_id="msg-1",
    )
    assert verified.member_id == MEMBER and verified.message_id == "msg-1" and verified.client == CLIENT


def test_verify_request_refuses_tampered_body(pki: Pki, trust: TrustStore) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        _verify(_signed_request(pki), trust, body=BODY + b" ")
    assert caught.value.reason is Reason.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("field", "value"),
    [("method", "GET"), ("path", PATH + "x"), ("client", MEMBER + "/OTHER"), ("message_id", "msg-2")],
)
def test_verify_request_refuses_other_request_binding(
    pki: Pki, trust: TrustStore, field: str, value: str
) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        _verify(_signed_request(pki), trust, **{field: value})
    assert caught.value.reason is Reason.BINDING_MISMATCH
    assert value in caught.value.detail


def test_verify_request_refuses_stale_timestamp(pki: Pki, trust: TrustStore) -> None:
    old = datetime.now(UTC) - timedelta(minutes=10)
    with pytest.raises(SignatureInvalid) as caught:
        _verify(_signed_request(pki, now=old), trust)
    assert caught.value.reason is Reason.STALE_TIMESTAMP


def test_verify_request_refuses_signer_of_another_member(pki: Pki, trust: TrustStore) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        _verify(_signed_request(pki, signer="other"), trust)
    assert caught.value.reason is Reason.WRONG_MEMBER


def test_verify_request_refuses_revoked_signer(pki: Pki, trust: TrustStore) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        _verify(_signed_request(pki, signer="revoked"), trust)
    assert caught.value.reason is Reason.REVOKED


def test_verify_soap_reads_headers_from_signed_elements(pki: Pki, trust: TrustStore) -> None:
    signed = sign_soap(ENVELOPE, pki.member.key, pki.member.certificate)
    verified = verify_soap(signed, soap_policy(trust))
    assert verified.member_id == MEMBER and verified.client == CLIENT
    assert verified.service == "VN/GOV/000.00.00.G22/DB/getPerson"
    assert (
        verified.message_id == "4894e35d-bf0f-44a6-867a-8e51f1daa7e0" and verified.protocol_version == "4.0"
    )
    assert verified.body.findtext("getPerson/id") == "001099000001"
    assert len(verified.xml.reference_uris) == 5


def test_verify_soap_refuses_tampered_body(pki: Pki, trust: TrustStore) -> None:
    signed = sign_soap(ENVELOPE, pki.member.key, pki.member.certificate)
    with pytest.raises(SignatureInvalid) as caught:
        verify_soap(signed.replace(b"001099000001", b"001099000002"), soap_policy(trust))
    assert caught.value.reason is Reason.DIGEST_MISMATCH


def test_verify_soap_refuses_tampered_header(pki: Pki, trust: TrustStore) -> None:
    signed = sign_soap(ENVELOPE, pki.member.key, pki.member.certificate)
    with pytest.raises(SignatureInvalid) as caught:
        verify_soap(
            signed.replace(b"<id:serviceCode>getPerson<", b"<id:serviceCode>deletePerson<"),
            soap_policy(trust),
        )
    assert caught.value.reason is Reason.DIGEST_MISMATCH


def test_verify_soap_refuses_forged_body_beside_signed_one(pki: Pki, trust: TrustStore) -> None:
    signed = sign_soap(ENVELOPE, pki.member.key, pki.member.certificate)
    root = etree.fromstring(signed)
    forged = etree.SubElement(root, "{http://schemas.xmlsoap.org/soap/envelope/}Body")
    etree.SubElement(forged, "deletePerson")
    with pytest.raises(SignatureInvalid) as caught:
        verify_soap(etree.tostring(root), soap_policy(trust))
    assert caught.value.reason is Reason.WRAPPING


def test_verify_soap_refuses_duplicate_body_id(pki: Pki, trust: TrustStore) -> None:
    signed = sign_soap(ENVELOPE, pki.member.key, pki.member.certificate)
    root = etree.fromstring(signed)
    body = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    assert body is not None
    header = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Header")
    assert header is not None
    etree.SubElement(header, "decoy", Id=str(body.get("Id")))
    with pytest.raises(SignatureInvalid) as caught:
        verify_soap(etree.tostring(root), soap_policy(trust))
    assert caught.value.reason is Reason.DUPLICATE_ID


def test_verify_soap_refuses_signer_not_the_client(pki: Pki, trust: TrustStore) -> None:
    signed = sign_soap(ENVELOPE, pki.other.key, pki.other.certificate)
    with pytest.raises(SignatureInvalid) as caught:
        verify_soap(signed, soap_policy(trust))
    assert caught.value.reason is Reason.WRONG_MEMBER
