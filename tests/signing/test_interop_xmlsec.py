"""Interop with an independent implementation: xmlsec1 (libxmlsec1) in both directions."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from signing.errors import Reason, SignatureInvalid
from signing.trust import RevocationMode, TrustStore
from signing.xmldsig import SignaturePolicy, sign_xml, verify_xml
from tests.signing.conftest import MEMBER, Pki

XMLSEC1 = shutil.which("xmlsec1")
DOC = b'<Doc xmlns="urn:lgsp"><Body Id="b1"><Amount>100</Amount></Body></Doc>'
TEMPLATE = b"""<Doc xmlns="urn:lgsp"><Body Id="b1"><Amount>100</Amount></Body>
<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>
<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
<ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>
<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>
</ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data></ds:KeyInfo>
</ds:Signature></Doc>"""


@pytest.fixture
def xmlsec1() -> str:
    if XMLSEC1 is None:
        if os.environ.get("CI") == "true":
            pytest.fail("xmlsec1 is required in CI (apt-get install xmlsec1)")
        pytest.skip("xmlsec1 not installed")
    return XMLSEC1


def _write(tmp_path: Path, pki: Pki) -> tuple[Path, Path, Path]:
    ca, key, cert = tmp_path / "ca.pem", tmp_path / "key.pem", tmp_path / "cert.pem"
    ca.write_bytes(pki.ca.certificate.public_bytes(serialization.Encoding.PEM))
    cert.write_bytes(pki.member.certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        pki.member.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return ca, key, cert


def _xmlsec_verify(xmlsec1: str, ca: Path, document: Path) -> subprocess.CompletedProcess[str]:
    command = [xmlsec1, "--verify", "--enabled-key-data", "x509", "--trusted-pem", str(ca), str(document)]
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def test_interop_hub_signature_verifies_in_xmlsec1(xmlsec1: str, pki: Pki, tmp_path: Path) -> None:
    # Given a document signed by the hub
    ca, _, _ = _write(tmp_path, pki)
    signed = tmp_path / "signed.xml"
    signed.write_bytes(sign_xml(DOC, pki.member.key, pki.member.certificate))
    # When xmlsec1 verifies it against the CA / Then it is accepted
    result = _xmlsec_verify(xmlsec1, ca, signed)
    assert result.returncode == 0, result.stderr
    # And a tampered copy is refused by xmlsec1 too
    signed.write_bytes(signed.read_bytes().replace(b">100<", b">900<"))
    assert _xmlsec_verify(xmlsec1, ca, signed).returncode != 0


def test_interop_xmlsec1_signature_verifies_in_hub(xmlsec1: str, pki: Pki, tmp_path: Path) -> None:
    # Given a document signed by xmlsec1 with the member's key
    _, key, cert = _write(tmp_path, pki)
    template, out = tmp_path / "template.xml", tmp_path / "out.xml"
    template.write_bytes(TEMPLATE)
    command = [xmlsec1, "--sign", "--privkey-pem", f"{key},{cert}", "--output", str(out), str(template)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    # When the hub verifies it / Then the signer and content are the member's
    trust = TrustStore(anchors=[pki.ca.certificate], revocation=RevocationMode.OFF)
    verified = verify_xml(out.read_bytes(), SignaturePolicy(trust=trust))
    assert verified.member_id == MEMBER
    assert b"<Amount>100</Amount>" in verified.signed_data[0]
    # And the hub refuses xmlsec1's signature once the content changes
    with pytest.raises(SignatureInvalid) as caught:
        verify_xml(out.read_bytes().replace(b">100<", b">900<"), SignaturePolicy(trust=trust))
    assert caught.value.reason is Reason.DIGEST_MISMATCH
