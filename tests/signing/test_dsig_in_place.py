"""The root of a tree the verifier owns is digested and returned without a copy of the document.

signing/_dsig.py digests an enveloped URI="" reference on the tree itself, with long text nodes held out
of libxml2's c14n and hashed in slices, and returns the root (signature detached) as the signed element
where it reads exactly as the re-parsed canonical bytes would. These tests hold both to signxml's own
copying path on every shared vector, with every text held out as well as with none.
"""

import base64
import gc
import hashlib
import os
import random
from collections.abc import Iterator

import pytest
from lxml import etree
from signxml import SignatureConfiguration
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.util import _remove_sig

import signing._dsig as dsig
from signing._dsig import Verifier, _StreamDigest
from signing.errors import Reason, SignatureInvalid
from signing.safe_xml import parse_xml
from signing.trust import TrustStore
from signing.xmldsig import EXC_C14N, SignaturePolicy, sign_xml, verify_xml
from tests.signing.conftest import Pki
from tests.signing.vectors import follow, parsable_documents, path_to

DS = "{http://www.w3.org/2000/09/xmldsig#}"
INCLUSIVE_C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
EMPTY_XMLNS = b' xmlns=""'


DOCUMENTS = list(parsable_documents())


def _verifier(excise: bool, source_bytes: int | None = None) -> Verifier:
    config = SignatureConfiguration(
        location=".//",
        expect_references=True,
        signature_methods=frozenset(SignatureMethod),
        digest_algorithms=frozenset(DigestAlgorithm),
    )
    return Verifier(config, excise_empty_xmlns=excise, source_bytes=source_bytes)


def _signxml_bytes(verifier: Verifier, data: bytes, signature_path: list[int], index: int) -> object:
    # signxml 5.2's _verify_reference up to the digest, on a copy of its own.
    root = verifier._fromstring(verifier._tostring(parse_xml(data)))
    signature = follow(root, signature_path)
    reference = signature.findall(f"{DS}SignedInfo/{DS}Reference")[index]
    transforms = verifier._find(reference, "Transforms", require=False)
    payload = verifier._resolve_reference(root, reference)
    try:
        return verifier._apply_transforms(payload, transforms_node=transforms, signature=signature)
    except Exception as exc:
        return type(exc)


def _same_tree(a: etree._Element, b: etree._Element, *, root: bool = True) -> None:
    assert a.tag == b.tag
    assert (a.text or "") == (b.text or "")
    if not root:
        assert (a.tail or "") == (b.tail or "")
    if isinstance(a.tag, str):
        assert dict(a.attrib) == dict(b.attrib)
        assert a.nsmap == b.nsmap
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        _same_tree(x, y, root=False)


def _root_references(data: bytes) -> Iterator[tuple[list[int], int]]:
    # (path to the signature, index of the reference) for each enveloped reference to the whole document.
    verifier = _verifier(False)
    root = parse_xml(data)
    for signature in root.iter(f"{DS}Signature"):
        for index, reference in enumerate(signature.iterfind(f"{DS}SignedInfo/{DS}Reference")):
            try:
                payload = verifier._resolve_reference(root, reference)
            except Exception:
                continue
            transforms = reference.find(f"{DS}Transforms")
            plan = verifier._plan(payload, transforms, signature, detach=True)
            if payload is root and plan is not None and plan.detach:
                yield path_to(root, signature), index


ROOT_REFERENCES = [
    (name, data, path, index) for name, data in DOCUMENTS for path, index in _root_references(data)
]


def test_dsig_in_place_covers_the_vectors() -> None:
    # Given the shared vectors / Then enveloped whole-document references are well represented
    assert len(ROOT_REFERENCES) >= 100


@pytest.mark.parametrize("excise", [False, True])
@pytest.mark.parametrize(
    ("name", "data", "signature_path", "index"),
    ROOT_REFERENCES,
    ids=[f"{name}#{index}" for name, _, _, index in ROOT_REFERENCES],
)
def test_dsig_in_place_digest_and_element_match_signxml(
    name: str,
    data: bytes,
    signature_path: list[int],
    index: int,
    excise: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = _verifier(excise, source_bytes=len(data))
    expected = _signxml_bytes(verifier, data, signature_path, index)
    if not isinstance(expected, bytes):
        return  # signxml fails on it; _check_reference hands such payloads to signxml
    for held_out in (dsig.HELD_OUT, 0):
        # Given the document's own tree, its signature detached, and every text over `held_out` held out
        monkeypatch.setattr(dsig, "HELD_OUT", held_out)
        monkeypatch.setattr(dsig, "SEARCH_ABOVE", 0 if held_out == 0 else dsig.SEARCH_ABOVE)
        root = parse_xml(data)
        signature = follow(root, signature_path)
        reference = signature.findall(f"{DS}SignedInfo/{DS}Reference")[index]
        plan = verifier._plan(root, reference.find(f"{DS}Transforms"), signature, detach=True)
        assert plan is not None
        _remove_sig(signature, idempotent=True)
        before = etree.tostring(root)
        # When the root is digested in place
        digest, empty_xmlns = verifier._root_digest(root, plan, DigestAlgorithm.SHA256)
        # Then it is the digest of signxml's bytes, and the tree is as it was
        assert digest == hashlib.sha256(expected).digest(), f"{name} held out over {held_out}"
        assert empty_xmlns == (EMPTY_XMLNS in etree.tostring(root, method="c14n"))
        assert etree.tostring(root) == before
        # And where the root stands for the signed bytes, it canonicalises to them and reads like their parse
        if not empty_xmlns and verifier._reads_as_signed(root, plan):
            assert (
                verifier._c14n(root, algorithm=plan.algorithm, inclusive_ns_prefixes=plan.prefixes)
                == expected
            )
            _same_tree(root, verifier._fromstring(expected))


def test_dsig_in_place_stream_digest_excises_across_any_cut() -> None:
    # Given canonical bytes with ' xmlns=""' at, across and next to every kind of boundary
    rng = random.Random(7)
    data = b"".join(rng.choice([EMPTY_XMLNS, b" xmlns", b'=""', b" ", b"<a>", b"x" * 5]) for _ in range(400))
    for excise in (False, True):
        expected = hashlib.sha256(data.replace(EMPTY_XMLNS, b"") if excise else data).digest()
        for _ in range(50):
            # When they are fed in random pieces
            stream = _StreamDigest(DigestAlgorithm.SHA256, excise=excise)
            cuts = sorted(rng.sample(range(1, len(data)), 30))
            for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
                stream.update(data[start:end])
            # Then the digest is signxml's over the whole, and the pattern was seen
            assert stream.finish() == expected
            assert stream.empty_xmlns


DOC = b'<Doc xmlns="urn:lgsp"><Header Id="h1"><To>H40</To></Header><Body Id="b1"><Amount>100</Amount></Body></Doc>'


def _long_document() -> bytes:
    blob = base64.b64encode(os.urandom(150_000)).decode()
    escaped = ("a&amp;b&lt;c&gt;d&#13;e\r\n" * 10_000).encode()
    return (
        b'<Doc xmlns="urn:lgsp"><Att>' + blob.encode() + b"</Att><Text>" + escaped + b"</Text>"
        b"<Word>" + ("Ủy ban " * 20_000).encode() + b"</Word><Empty/></Doc>"
    )


@pytest.mark.parametrize("c14n", [EXC_C14N, INCLUSIVE_C14N])
def test_dsig_verify_xml_owned_tree_is_the_signed_element(pki: Pki, trust: TrustStore, c14n: str) -> None:
    # Given a signed document with long texts: base64, escapes and CRs, and non-ASCII
    signed = sign_xml(_long_document(), pki.member.key, pki.member.certificate, c14n=c14n)
    copied = verify_xml(parse_xml(signed), SignaturePolicy(trust=trust))
    root = parse_xml(signed)
    texts = [e.text for e in root if e.tag != f"{DS}Signature"]
    # When the tree is given up to the verification
    verified = verify_xml(root, SignaturePolicy(trust=trust), owned=True)
    # Then the signed element is the root itself, without its signature and with its texts whole
    assert verified.signed_elements[0] is root
    assert root.find(f"{DS}Signature") is None
    assert [e.text for e in root] == texts
    # And it vouches for the bytes the copying path vouches for, and reads like their parse
    assert verified.signed_data == copied.signed_data
    _same_tree(root, copied.signed_elements[0])


def test_dsig_signed_data_of_a_root_changed_after_verification_is_refused(
    pki: Pki, trust: TrustStore
) -> None:
    # Given a document verified in place
    root = parse_xml(sign_xml(DOC, pki.member.key, pki.member.certificate))
    verified = verify_xml(root, SignaturePolicy(trust=trust), owned=True)
    # When its root is changed afterwards / Then its signed bytes are no longer given out
    amount = root.find("{urn:lgsp}Body/{urn:lgsp}Amount")
    assert amount is not None
    amount.text = "900"
    with pytest.raises(SignatureInvalid) as caught:
        _ = verified.signed_data
    assert caught.value.reason is Reason.DIGEST_MISMATCH


@pytest.mark.parametrize(
    "extra",
    [
        b'<Doc xmlns="urn:lgsp" xmlns:unused="urn:unused">',  # exclusive c14n does not sign it
        b'<Doc xmlns="urn:lgsp"><!-- a comment c14n drops -->',
        b'<Doc xmlns="urn:lgsp"><Inner xmlns:q="urn:q" q:a="1"/>',  # declared below the root
    ],
)
def test_dsig_verify_xml_rereads_what_the_tree_holds_beyond_the_signed_bytes(
    pki: Pki, trust: TrustStore, extra: bytes
) -> None:
    # Given a signed document whose tree holds something exclusive c14n does not render as it stands
    signed = sign_xml(DOC.replace(b'<Doc xmlns="urn:lgsp">', extra), pki.member.key, pki.member.certificate)
    root = parse_xml(signed)
    # When the tree is given up to the verification
    verified = verify_xml(root, SignaturePolicy(trust=trust), owned=True)
    # Then the signed element is the parse of the signed bytes, as signxml returns it
    element = verified.signed_elements[0]
    assert element is not root
    assert etree.tostring(element, method="c14n") == verified.signed_data[0]
    assert next(element.iter(etree.Comment), None) is None


def test_dsig_in_place_falls_back_when_the_document_holds_the_marker(
    pki: Pki, trust: TrustStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a document with a long text, which happens to contain the random marker of this verification
    nonce = "0123456789abcdef" * 2
    data = b'<Doc xmlns="urn:lgsp"><A>' + b"x" * 70_000 + b"</A><B>" + nonce.encode() + b"</B></Doc>"
    signed = sign_xml(data, pki.member.key, pki.member.certificate)
    monkeypatch.setattr(dsig.secrets, "token_hex", lambda _: nonce)
    # When it is verified in place / Then the whole document is canonicalised instead, and it verifies
    verified = verify_xml(signed, SignaturePolicy(trust=trust))
    assert verified.signed_data == verify_xml(parse_xml(signed), SignaturePolicy(trust=trust)).signed_data


def test_dsig_in_place_tampered_long_text_is_a_digest_mismatch(pki: Pki, trust: TrustStore) -> None:
    # Given a signed document whose held-out text is altered by one character
    signed = sign_xml(_long_document(), pki.member.key, pki.member.certificate)
    position = signed.index(b"<Att>") + 1000
    flipped = b"A" if signed[position : position + 1] != b"A" else b"B"
    tampered = signed[:position] + flipped + signed[position + 1 :]
    # When it is verified / Then the digest does not match
    with pytest.raises(SignatureInvalid) as caught:
        verify_xml(tampered, SignaturePolicy(trust=trust))
    assert caught.value.reason is Reason.DIGEST_MISMATCH


@pytest.mark.parametrize("owned", [True, False])
def test_dsig_verification_leaves_no_reference_cycle(pki: Pki, trust: TrustStore, owned: bool) -> None:
    # Given a signed document with a long text, verified with the garbage collector off
    signed = sign_xml(_long_document(), pki.member.key, pki.member.certificate)
    root = parse_xml(signed)
    gc.collect()
    gc.disable()
    try:
        # When it is verified, and the result read and dropped
        verified = verify_xml(root, SignaturePolicy(trust=trust), owned=owned, source_bytes=len(signed))
        assert verified.signed_data
        del verified, root
        # Then nothing was left for the collector: the document went when its last reference did
        assert gc.collect() == 0
    finally:
        gc.enable()
