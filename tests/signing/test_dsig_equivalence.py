"""The copy-free verifier digests the same bytes as signxml's copying one, on every conformance document.

signing/_dsig.py canonicalises SignedInfo and most references in place instead of serialising and
re-parsing them. These tests compare, for every Signature and Reference in the shared vectors and for both
values of the edXML switch, the canonical bytes of both paths.
"""

from collections.abc import Callable

import pytest
from lxml import etree
from signxml import SignatureConfiguration
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from signing._dsig import Prepared, Verifier
from signing.safe_xml import parse_xml
from tests.signing.vectors import follow, parsable_documents, path_to

DS = "{http://www.w3.org/2000/09/xmldsig#}"


DOCUMENTS = list(parsable_documents())


def _verifier(excise: bool) -> Verifier:
    # Every algorithm signxml knows, so that SignedInfo of every vector is read.
    config = SignatureConfiguration(
        location=".//",
        expect_references=True,
        signature_methods=frozenset(SignatureMethod),
        digest_algorithms=frozenset(DigestAlgorithm),
    )
    return Verifier(config, excise_empty_xmlns=excise)


def _outcome(call: Callable[..., object], *args: object, **kwargs: object) -> object:
    # The value, or the type of the exception: both paths must fail the same way where they fail.
    try:
        return call(*args, **kwargs)
    except Exception as exc:
        return type(exc)


def _signxml_reference_bytes(
    verifier: Verifier, root: etree._Element, signature_path: list[int], reference: etree._Element
) -> object:
    # signxml 5.2's _verify_reference up to the digest: copy the root, resolve, apply the transforms.
    copied_root = verifier._fromstring(verifier._tostring(root))
    copied_signature = follow(copied_root, signature_path)
    transforms = verifier._find(reference, "Transforms", require=False)
    payload = verifier._resolve_reference(copied_root, reference)
    return verifier._apply_transforms(payload, transforms_node=transforms, signature=copied_signature)


def _fast_bytes(
    verifier: Verifier,
    root: etree._Element,
    signature: etree._Element,
    reference: etree._Element,
    *,
    detach: bool,
) -> object:
    payload = verifier._resolve_reference(root, reference)
    transforms = verifier._find(reference, "Transforms", require=False)
    return verifier._canonical_payload(payload, transforms, signature, detach=detach)


def test_dsig_equivalence_covers_the_vectors() -> None:
    # Given the shared vectors / Then most documents parse and carry at least one signature
    signatures = sum(1 for _, data in DOCUMENTS for _ in parse_xml(data).iter(f"{DS}Signature"))
    assert len(DOCUMENTS) >= 400
    assert signatures >= 400


@pytest.mark.parametrize("excise", [False, True])
@pytest.mark.parametrize(("name", "data"), DOCUMENTS, ids=[name for name, _ in DOCUMENTS])
def test_dsig_equivalence_in_place_bytes_match_signxml_copies(name: str, data: bytes, excise: bool) -> None:
    verifier = _verifier(excise)
    root = parse_xml(data)
    before = etree.tostring(root)
    for signature in root.iter(f"{DS}Signature"):
        signed_info = signature.find(f"{DS}SignedInfo")
        if signed_info is None:
            continue
        # Given one signature of the document
        # When SignedInfo is canonicalised in place / Then it equals signxml's copy of the signature
        prepared = _outcome(verifier.prepare, signature)
        if isinstance(prepared, Prepared):
            copy = verifier._fromstring(verifier._tostring(signature))
            method = copy.find(f"{DS}SignedInfo/{DS}CanonicalizationMethod")
            assert method is not None
            expected = verifier._c14n(
                copy.find(f"{DS}SignedInfo"),
                algorithm=CanonicalizationMethod(method.get("Algorithm")),
                inclusive_ns_prefixes=verifier._get_inclusive_ns_prefixes(method),
            )
            assert prepared.signed_info_c14n == expected, name
        signature_path = path_to(root, signature)
        for index, reference in enumerate(signed_info.iterfind(f"{DS}Reference")):
            # When a reference is canonicalised without signxml's copies, keeping the tree
            fast = _outcome(_fast_bytes, verifier, root, signature, reference, detach=False)
            if fast is None:
                continue  # handed to signxml's own _verify_reference
            # Then the bytes (or the failure) are the ones signxml's copying path produces
            slow = _outcome(_signxml_reference_bytes, verifier, root, signature_path, reference)
            assert fast == slow, f"{name} {reference.get('URI')!r}"
            # And so are they when the signature is detached from a tree of its own (the last reference)
            own = parse_xml(data)
            own_signature = follow(own, signature_path)
            own_reference = own_signature.findall(f"{DS}SignedInfo/{DS}Reference")[index]
            detached = _outcome(_fast_bytes, verifier, own, own_signature, own_reference, detach=True)
            assert detached == slow, f"{name} {reference.get('URI')!r} detached"
    # And the caller's tree is untouched
    assert etree.tostring(root) == before


def _reading(signed_info: etree._Element) -> list[tuple[object, ...]]:
    # What the reference checks read from SignedInfo: URI, transforms, digest method and value.
    return [
        (
            reference.get("URI"),
            [(t.get("Algorithm"), t.get("PrefixList")) for t in reference.iter()],
            [(node.tag, node.text) for node in reference.iter(f"{DS}DigestMethod", f"{DS}DigestValue")],
        )
        for reference in signed_info.iterchildren(f"{DS}Reference")
    ]


@pytest.mark.parametrize("excise", [False, True])
@pytest.mark.parametrize(("name", "data"), DOCUMENTS, ids=[name for name, _ in DOCUMENTS])
def test_dsig_equivalence_reads_the_references_signxml_reads(name: str, data: bytes, excise: bool) -> None:
    verifier = _verifier(excise)
    for signature in parse_xml(data).iter(f"{DS}Signature"):
        # Given a SignedInfo that the verifier would read in place
        prepared = _outcome(verifier.prepare, signature)
        if not isinstance(prepared, Prepared):
            continue
        if b'xmlns=""' in prepared.signed_info_c14n or any(prepared.signed_info.iter(etree.Comment)):
            continue  # re-parsed, as in signxml
        # When both are read / Then they say the same
        reparsed = verifier._fromstring(prepared.signed_info_c14n)
        assert _reading(prepared.signed_info) == _reading(reparsed), name
