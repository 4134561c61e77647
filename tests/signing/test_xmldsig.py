"""XML-DSig: sign, verify, and every way a signature must be refused, each with its reason."""

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import XMLSigner

from signing.errors import Reason, SignatureInvalid, SigningConfigError, SigningFailed, XmlRefused
from signing.trust import MemberBindings, RevocationMode, TrustStore, load_certificates
from signing.xmldsig import SignaturePolicy, sign_xml, verify_xml
from tests.signing.conftest import MEMBER, Pki

DOC = b'<Doc xmlns="urn:lgsp"><Header Id="h1"><To>H40</To></Header><Body Id="b1"><Amount>100</Amount></Body></Doc>'
NS = {"l": "urn:lgsp"}
DATA = Path(__file__).parent / "data"


def _policy(trust: TrustStore, **options: object) -> SignaturePolicy:
    return SignaturePolicy(trust=trust, namespaces=NS, **options)  # type: ignore[arg-type]


def _reason(call: Callable[[], object]) -> Reason:
    with pytest.raises(SignatureInvalid) as caught:
        call()
    return caught.value.reason


def test_verify_xml_returns_signed_elements_and_signer(pki: Pki, trust: TrustStore) -> None:
    # Given a document signed by a member whose certificate chains to the anchor
    signed = sign_xml(DOC, pki.member.key, pki.member.certificate)
    # When it is verified
    verified = verify_xml(signed, _policy(trust, member_id=MEMBER, required=("/l:Doc/l:Body",)))
    # Then the result names the signer, the algorithm and carries only signed content
    assert verified.member_id == MEMBER
    assert verified.signer_certificate == pki.member.certificate
    assert verified.algorithm.endswith("rsa-sha256")
    assert verified.reference_uris == ("",)
    body = verified.signed_elements[0].find("l:Body/l:Amount", NS)
    assert body is not None and body.text == "100"
    assert verified.signed_elements[0].find(".//{http://www.w3.org/2000/09/xmldsig#}Signature") is None


def test_verify_xml_refuses_tampered_body_as_digest_mismatch(pki: Pki, trust: TrustStore) -> None:
    signed = sign_xml(DOC, pki.member.key, pki.member.certificate)
    tampered = signed.replace(b"<Amount>100<", b"<Amount>900<")
    assert _reason(lambda: verify_xml(tampered, _policy(trust))) is Reason.DIGEST_MISMATCH


def test_verify_xml_refuses_tampered_signature_value(pki: Pki, trust: TrustStore) -> None:
    signed = sign_xml(DOC, pki.member.key, pki.member.certificate)
    root = etree.fromstring(signed)
    value = root.find(".//{http://www.w3.org/2000/09/xmldsig#}SignatureValue")
    assert value is not None and value.text
    value.text = ("A" if value.text[0] != "A" else "B") + value.text[1:]
    assert _reason(lambda: verify_xml(etree.tostring(root), _policy(trust))) is Reason.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("signer", "reason"),
    [
        ("revoked", Reason.REVOKED),
        ("expired", Reason.EXPIRED),
        ("stranger", Reason.UNTRUSTED_SIGNER),
    ],
)
def test_verify_xml_refuses_bad_signers(pki: Pki, trust: TrustStore, signer: str, reason: Reason) -> None:
    # Given a document signed by a revoked / expired / untrusted certificate
    issued = getattr(pki, signer)
    signed = sign_xml(DOC, issued.key, issued.certificate)
    # When verified / Then the reason names the certificate problem
    assert _reason(lambda: verify_xml(signed, _policy(trust))) is reason


def test_verify_xml_refuses_signer_of_another_member(pki: Pki, trust: TrustStore) -> None:
    signed = sign_xml(DOC, pki.other.key, pki.other.certificate)
    with pytest.raises(SignatureInvalid) as caught:
        verify_xml(signed, _policy(trust, member_id=MEMBER))
    assert caught.value.reason is Reason.WRONG_MEMBER
    assert "000.00.00.G22" in caught.value.detail


def test_verify_xml_refuses_forged_unsigned_copy_beside_signed_element(pki: Pki, trust: TrustStore) -> None:
    # Given a signature over Body#b1 only, and a forged unsigned Body placed beside it
    signed = sign_xml(DOC, pki.member.key, pki.member.certificate, reference_ids=["b1"])
    root = etree.fromstring(signed)
    forged = etree.SubElement(root, "{urn:lgsp}Body")
    etree.SubElement(forged, "{urn:lgsp}Amount").text = "999999"
    policy = _policy(trust, required=("/l:Doc/l:Body",))
    # When verified with a policy that requires the Body to be signed / Then it is a wrapping attempt
    assert _reason(lambda: verify_xml(etree.tostring(root), policy)) is Reason.WRAPPING


def test_verify_xml_refuses_unsigned_required_element(pki: Pki, trust: TrustStore) -> None:
    signed = sign_xml(DOC, pki.member.key, pki.member.certificate, reference_ids=["b1"])
    policy = _policy(trust, required=("/l:Doc/l:Header",))
    assert _reason(lambda: verify_xml(signed, policy)) is Reason.NOT_COVERED


def test_verify_xml_refuses_duplicate_referenced_id(pki: Pki, trust: TrustStore) -> None:
    signed = sign_xml(DOC, pki.member.key, pki.member.certificate, reference_ids=["b1"])
    root = etree.fromstring(signed)
    copy = etree.SubElement(root, "{urn:lgsp}Body", Id="b1")
    etree.SubElement(copy, "{urn:lgsp}Amount").text = "999999"
    assert _reason(lambda: verify_xml(etree.tostring(root), _policy(trust))) is Reason.DUPLICATE_ID


def test_verify_xml_refuses_extra_signature(pki: Pki, trust: TrustStore) -> None:
    once = sign_xml(DOC, pki.member.key, pki.member.certificate, reference_ids=["b1"])
    twice = sign_xml(once, pki.other.key, pki.other.certificate, reference_ids=["h1"])
    assert _reason(lambda: verify_xml(twice, _policy(trust))) is Reason.EXTRA_SIGNATURE


def test_verify_xml_refuses_signature_outside_expected_location(pki: Pki, trust: TrustStore) -> None:
    signed = sign_xml(DOC, pki.member.key, pki.member.certificate)
    policy = _policy(trust, location="./{urn:lgsp}Header/")
    assert _reason(lambda: verify_xml(signed, policy)) is Reason.WRONG_LOCATION


def test_verify_xml_refuses_document_without_signature(trust: TrustStore) -> None:
    assert _reason(lambda: verify_xml(DOC, _policy(trust))) is Reason.NO_SIGNATURE


class _LegacySigner(XMLSigner):
    def check_deprecated_methods(self) -> None:  # an old edXML sender: SHA-1 on purpose
        return None


def _signxml_sign(pki: Pki, algorithm: str, digest: str, **kw: object) -> bytes:
    pem = pki.member.certificate.public_bytes(serialization.Encoding.PEM).decode()
    signer = _LegacySigner(signature_algorithm=algorithm, digest_algorithm=digest)
    return etree.tostring(signer.sign(etree.fromstring(DOC), key=pki.member.key, cert=[pem], **kw))


def test_verify_xml_refuses_rsa_sha1_unless_legacy_sha1(pki: Pki, trust: TrustStore) -> None:
    # Given an edXML-style sender still signing with RSA-SHA1
    signed = _signxml_sign(pki, "rsa-sha1", "sha1")
    # When verified under the default policy / Then it is a weak algorithm
    assert _reason(lambda: verify_xml(signed, _policy(trust))) is Reason.WEAK_ALGORITHM
    # When the member's policy opts in / Then it verifies
    assert verify_xml(signed, _policy(trust, legacy_sha1=True)).algorithm.endswith("rsa-sha1")


def test_verify_xml_refuses_manifest(pki: Pki, trust: TrustStore) -> None:
    signed = sign_xml(DOC, pki.member.key, pki.member.certificate)
    root = etree.fromstring(signed)
    signature = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    assert signature is not None
    obj = etree.SubElement(signature, "{http://www.w3.org/2000/09/xmldsig#}Object")
    etree.SubElement(obj, "{http://www.w3.org/2000/09/xmldsig#}Manifest")
    assert _reason(lambda: verify_xml(etree.tostring(root), _policy(trust))) is Reason.MANIFEST_REFUSED


def test_verify_xml_refuses_xpath_transform(pki: Pki, trust: TrustStore) -> None:
    signed = sign_xml(DOC, pki.member.key, pki.member.certificate)
    xpath = b'<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"/></ds:Transforms>'
    tampered = signed.replace(b"</ds:Transforms>", xpath, 1)
    assert _reason(lambda: verify_xml(tampered, _policy(trust))) is Reason.UNSUPPORTED_TRANSFORM


def test_verify_xml_never_trusts_a_bare_keyvalue(pki: Pki, trust: TrustStore) -> None:
    # Given a valid signature whose KeyInfo carries only the raw public key
    signer = XMLSigner()
    signed = etree.tostring(signer.sign(etree.fromstring(DOC), key=pki.stranger.key))
    assert b"KeyValue" in signed and b"X509Certificate" not in signed
    # When verified / Then the key is not trusted: it chains to nothing
    assert _reason(lambda: verify_xml(signed, _policy(trust))) is Reason.UNTRUSTED_SIGNER


def test_verify_xml_refuses_dtd_before_any_crypto(trust: TrustStore) -> None:
    attack = b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Doc>&x;</Doc>'
    with pytest.raises(XmlRefused) as caught:
        verify_xml(attack, _policy(trust))
    assert caught.value.reason is Reason.DTD_REFUSED


def test_verify_xml_edxml_default_namespace_needs_excise(tmp_path: Path) -> None:
    # Given an edXML package signed by xmlsec1 with a default-namespace Signature and inclusive c14n
    signed = (DATA / "edxml-signed-xmlsec1.xml").read_bytes()
    anchors = load_certificates((DATA / "edxml-ca.pem").read_bytes())
    trust = TrustStore(anchors=anchors, revocation=RevocationMode.OFF)
    location = "./{http://www.mic.gov.vn/TBT/QCVN_102_2016}edXMLHeader/"
    strict = SignaturePolicy(trust=trust, location=location)
    # When verified strictly / Then libxml2's spurious xmlns="" breaks the valid signature
    assert _reason(lambda: verify_xml(signed, strict)) is Reason.BAD_SIGNATURE
    # When the edXML policy sets excise_empty_xmlns / Then it verifies and binds the sender
    verified = verify_xml(signed, replace(strict, excise_empty_xmlns=True))
    assert verified.member_id == "VN/GOV/000.00.00.G22"
    assert b'xmlns=""' not in verified.signed_data[0]


def test_verify_xml_with_pinned_certificate_and_explicit_binding(pki: Pki) -> None:
    # Given a trust store that pins one certificate and maps its SKI to a member id
    ski = pki.stranger.certificate.extensions.get_extension_for_oid(
        __import__("cryptography").x509.oid.ExtensionOID.SUBJECT_KEY_IDENTIFIER
    ).value.digest.hex()
    trust = TrustStore(
        pinned=[pki.stranger.certificate],
        bindings=MemberBindings(by_ski={ski: "VN/GOV/PINNED"}, embedded=False),
    )
    signed = sign_xml(DOC, pki.stranger.key, pki.stranger.certificate)
    verified = verify_xml(signed, _policy(trust))
    assert verified.signer.pinned and verified.member_id == "VN/GOV/PINNED"


def test_verify_xml_at_past_verification_time_accepts_expired_signer(
    pki: Pki, trust: TrustStore, trust_no_revocation: TrustStore
) -> None:
    # Given a signature by a certificate that has since expired
    signed = sign_xml(DOC, pki.expired.key, pki.expired.certificate)
    when = pki.expired.certificate.not_valid_before_utc + timedelta(days=1)
    # When verified at a time inside its validity, with today's CRL / Then its status then is unknown
    assert (
        _reason(lambda: verify_xml(signed, _policy(trust, verification_time=when)))
        is Reason.REVOCATION_UNKNOWN
    )
    # When revocation is explicitly off / Then it verifies at that time
    assert verify_xml(signed, _policy(trust_no_revocation, verification_time=when)).verified_at == when


def test_signature_policy_rejects_bad_settings(trust: TrustStore) -> None:
    with pytest.raises(SigningConfigError, match="location"):
        SignaturePolicy(trust=trust, location=".")
    with pytest.raises(SigningConfigError, match="timezone"):
        SignaturePolicy(trust=trust, verification_time=datetime(2024, 1, 1))
    with pytest.raises(SigningConfigError, match="XPath"):
        SignaturePolicy(trust=trust, required=("//[",))
    assert datetime.now(UTC)


def test_sign_xml_refuses_weak_algorithm(pki: Pki) -> None:
    with pytest.raises(SigningFailed, match="refusing"):
        sign_xml(DOC, pki.member.key, pki.member.certificate, digest="http://www.w3.org/2000/09/xmldsig#sha1")
