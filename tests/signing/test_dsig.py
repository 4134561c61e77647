"""The copy-free verifier behind verify_xml: what it may change in a tree, and what it reads."""

import pytest
from lxml import etree

from signing.errors import Reason, SignatureInvalid
from signing.safe_xml import parse_xml
from signing.trust import RevocationMode, TrustStore
from signing.xmldsig import SignaturePolicy, sign_xml, verify_xml
from tests.signing.conftest import Pki

DOC = b'<Doc xmlns="urn:lgsp"><Header Id="h1"><To>H40</To></Header><Body Id="b1"><Amount>100</Amount></Body></Doc>'
DS = "{http://www.w3.org/2000/09/xmldsig#}"
NS = {"l": "urn:lgsp"}


def _without_key_info(signed: bytes) -> bytes:
    # KeyInfo is outside what an enveloped URI="" reference signs; without it the pinned keys are tried.
    root = etree.fromstring(signed)
    key_info = root.find(f".//{DS}KeyInfo")
    assert key_info is not None
    key_info.getparent().remove(key_info)  # type: ignore[union-attr]
    return etree.tostring(root)


def test_dsig_verify_xml_leaves_a_callers_tree_as_it_was(pki: Pki, trust: TrustStore) -> None:
    # Given a signed document the caller parsed itself
    signed = sign_xml(DOC, pki.member.key, pki.member.certificate)
    root = parse_xml(signed)
    before = etree.tostring(root)
    # When it is verified as an element and as bytes
    from_element = verify_xml(root, SignaturePolicy(trust=trust))
    from_bytes = verify_xml(signed, SignaturePolicy(trust=trust))
    # Then the caller's tree still carries its signature, and both ways vouch for the same bytes
    assert etree.tostring(root) == before
    assert from_element.signed_data == from_bytes.signed_data


def test_dsig_verify_xml_takes_a_subelement_through_signxmls_copies(pki: Pki, trust: TrustStore) -> None:
    # Given a signed document the caller holds inside a larger tree
    signed = sign_xml(DOC, pki.member.key, pki.member.certificate)
    outer = parse_xml(b"<Envelope>" + signed + b"</Envelope>")
    before = etree.tostring(outer)
    # When the inner document is verified as an element
    verified = verify_xml(outer[0], SignaturePolicy(trust=trust))
    # Then it vouches for the bytes the document alone was signed over, and the tree is unchanged
    assert verified.signed_data == verify_xml(signed, SignaturePolicy(trust=trust)).signed_data
    assert etree.tostring(outer) == before


def test_dsig_verify_xml_checks_coverage_against_the_document_as_received(
    pki: Pki, trust: TrustStore
) -> None:
    # Given a document whose Body alone is signed, and a policy that requires the Header
    signed = sign_xml(DOC, pki.member.key, pki.member.certificate, reference_ids=["b1"])
    policy = SignaturePolicy(trust=trust, namespaces=NS, required=("/l:Doc/l:Header", "/l:Doc/l:Body"))
    # When it is verified / Then the unsigned Header is reported, after the signature checks passed
    with pytest.raises(SignatureInvalid) as caught:
        verify_xml(signed, policy)
    assert caught.value.reason is Reason.NOT_COVERED
    # And with the whole document signed, the same policy accepts and names the reference
    whole = sign_xml(DOC, pki.member.key, pki.member.certificate)
    assert verify_xml(whole, policy).reference_uris == ("",)


def test_dsig_verify_xml_reads_digest_value_across_a_comment(pki: Pki, trust: TrustStore) -> None:
    # Given a valid signature whose DigestValue text is split by a comment (c14n drops the comment)
    root = etree.fromstring(sign_xml(DOC, pki.member.key, pki.member.certificate))
    digest_value = root.find(f".//{DS}DigestValue")
    assert digest_value is not None and digest_value.text
    head, tail = digest_value.text[:10], digest_value.text[10:]
    digest_value.text = head
    comment = etree.Comment(" split ")
    comment.tail = tail
    digest_value.append(comment)
    # When it is verified without the schema (which refuses the comment)
    verified = verify_xml(etree.tostring(root), SignaturePolicy(trust=trust, validate_schema=False))
    # Then the whole DigestValue was read, as signxml reads it from the canonical SignedInfo
    assert verified.reference_uris == ("",)


@pytest.mark.parametrize("tampered", [False, True])
def test_dsig_verify_xml_tries_each_pinned_key_once_per_step(pki: Pki, tampered: bool) -> None:
    # Given a signature without KeyInfo and two pinned keys, the signer's second, then first
    signed = _without_key_info(sign_xml(DOC, pki.member.key, pki.member.certificate))
    if tampered:
        signed = signed.replace(b"<Amount>100<", b"<Amount>900<")
    for pinned in (
        [pki.other.certificate, pki.member.certificate],
        [pki.member.certificate, pki.other.certificate],
    ):
        policy = SignaturePolicy(trust=TrustStore(pinned=pinned, revocation=RevocationMode.OFF))
        # When it is verified
        if tampered:
            # Then the digest mismatch is the reason, whichever key was tried first
            with pytest.raises(SignatureInvalid) as caught:
                verify_xml(signed, policy)
            assert caught.value.reason is Reason.DIGEST_MISMATCH
        else:
            # Then the signer's key is found
            assert verify_xml(signed, policy).signer_certificate == pki.member.certificate
