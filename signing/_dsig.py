"""signxml's XMLVerifier without its defensive copies, for trees that ``parse_xml`` already made safe.

signxml 5.2 serialises and re-parses per verification: the whole Signature (to read SignedInfo), the whole
document once per reference (to remove an enveloped signature), and every payload again before c14n. Here
the digest and signature checks stay signxml's own (``_c14n``, ``_get_digest``, ``_resolve_reference``,
``_verify_signature_with_pubkey``, ``_match_key_values``) and only the copies go, where they cannot change
the canonical bytes (tests/signing/test_dsig_equivalence.py compares both paths on every shared vector):

- SignedInfo is canonicalised in place: lxml's c14n of a subelement takes every in-scope namespace from
  the ancestors, as serialising it does.
- A reference to the document root is canonicalised in place. If the enveloped signature lies inside it,
  the signature is detached from the tree when the tree is the verifier's own and nothing reads it after
  (the last reference); otherwise the root is copied in C and the signature removed from the copy.
- A reference to a subelement under exclusive c14n is canonicalised in place; under inclusive c14n it is
  serialised and re-parsed, as in signxml, because libxml2 2.14 canonicalises an in-place subtree
  differently (the ``xmlns=""`` trap in docs/signing.md) and the signed bytes must not move.

Anything else (a caller's subelement as the root, a payload inside an enveloped signature, two c14n
transforms, base64, a payload whose text tail would break signxml's re-parse) goes through signxml's own
``_verify_reference``, so its verdict and message are unchanged.
"""

import copy as copy_module
import re
import threading
from base64 import b64decode
from enum import Enum
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

import cryptography.exceptions
from cryptography import x509
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidDigest, InvalidInput, InvalidSignature
from signxml.util import _remove_sig, namespaces

__all__ = ["Prepared", "SignedReference", "Verifier"]

E = TypeVar("E", bound=Enum)

_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_BASE64 = "http://www.w3.org/2000/09/xmldsig#base64"
_C14N = frozenset(method.value for method in CanonicalizationMethod)
_XML_SPACE = " \t\r\n"
_CLARK_URI = re.compile(r"\{[^}]*\}")
_DS_TAGS = {
    name: f"{{{namespaces['ds']}}}{name}"
    for name in (
        "SignedInfo",
        "CanonicalizationMethod",
        "SignatureMethod",
        "SignatureValue",
        "Transforms",
        "Transform",
        "DigestMethod",
        "DigestValue",
    )
}
_KEY_INFO = f"{{{namespaces['ds']}}}KeyInfo"
_KEY_VALUE = f"{{{namespaces['ds']}}}KeyValue"
_DER_KEY_VALUE = f"{{{namespaces['dsig11']}}}DEREncodedKeyValue"
_INCLUSIVE_NAMESPACES = f"{{{namespaces['ec']}}}InclusiveNamespaces"

_local = threading.local()


def _parser() -> etree.XMLParser:
    # Re-parses only the hub's own serialisations and c14n output; one reusable parser per thread.
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, collect_ids=False
        )
    return parser


@lru_cache(maxsize=64)
def _clark(query: str, xpath: str) -> str | None:
    """signxml's ``{xpath}{prefix}:{name}`` in Clark notation, or None where that is not a plain rewrite."""
    namespace, name = query.split(":", 1) if ":" in query else ("ds", query)
    uri = namespaces.get(namespace)
    if uri is None or ":" in name or ":" in _CLARK_URI.sub("", xpath):
        return None
    return f"{xpath}{{{uri}}}{name}"


_MEMBERS: dict[type[Enum], dict[str, Any]] = {
    kind: {member.value: member for member in kind}
    for kind in (CanonicalizationMethod, SignatureMethod, DigestAlgorithm)
}


def _member(kind: type[E], uri: str | None) -> E:
    # kind(uri) without Enum's call machinery; an unknown URI still raises kind's own ValueError.
    member = _MEMBERS[kind].get(uri) if uri is not None else None
    return member if member is not None else kind(uri)


def _blank(text: str | None) -> bool:
    return not text or not text.strip(_XML_SPACE)


def _path_to(ancestor: etree._Element, node: etree._Element) -> list[int] | None:
    """Child indexes leading from ``ancestor`` down to ``node``, or None if it is not below it."""
    path: list[int] = []
    while node is not ancestor:
        parent = node.getparent()
        if parent is None:
            return None
        path.append(parent.index(node))
        node = parent
    path.reverse()
    return path


def _follow(element: etree._Element, path: list[int]) -> etree._Element:
    for index in path:
        element = element[index]
    return element


class SignedReference(NamedTuple):
    """The canonical bytes one reference digests, and those bytes re-parsed (None if not XML)."""

    data: bytes
    element: etree._Element | None


class Prepared(NamedTuple):
    """SignedInfo as signxml reads it, before any key is tried."""

    signed_info_c14n: bytes
    c14n_algorithm: CanonicalizationMethod
    signature_alg: SignatureMethod
    raw_signature: bytes
    key_value: Any
    der_encoded_key_value: Any
    signed_info: etree._Element


class Verifier(XMLVerifier):
    """signxml's signature and reference checks on a tree that parse_xml made; use run(), not verify()."""

    def __init__(self, config: SignatureConfiguration, *, excise_empty_xmlns: bool) -> None:
        super().__init__()
        self.config = config
        self.excise_empty_xmlns_declarations = excise_empty_xmlns
        self._parser: Any = _parser()
        self._outcomes: dict[str, Any] = {}

    def _fromstring(self, xml_string: Any, **kwargs: Any) -> Any:
        # No DTD or entity check: every string re-parsed here is the hub's own serialisation or c14n output.
        return etree.fromstring(xml_string, parser=self._parser, **kwargs)

    def run(
        self, root: etree._Element, signature: etree._Element, certificate: x509.Certificate, *, owned: bool
    ) -> list[SignedReference]:
        """signxml's verify() for one candidate signer: SignedInfo, SignatureValue, then every reference.

        ``owned``: the tree is this verification's own, so the last reference may detach the signature from
        it. SignedInfo and the references do not depend on the certificate; they are worked out once (value
        or exception) and replayed for further candidates.
        """
        prepared = self._once("prepare", self.prepare, signature)
        verified = self.check_signature(prepared, certificate)
        return self._once(
            "references",
            self.check_references,
            root,
            signature,
            verified,
            prepared.c14n_algorithm,
            owned,
            prepared.signed_info,
        )

    def _once(self, name: str, step: Any, *args: Any) -> Any:
        if name not in self._outcomes:
            try:
                self._outcomes[name] = step(*args)
            except Exception as exc:
                self._outcomes[name] = exc
                raise
        outcome = self._outcomes[name]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _find(self, element: Any, query: str, require: bool = True, xpath: str = "") -> Any:
        # signxml's _find, with the prefixed path resolved once to Clark notation (same element, same error).
        path = _clark(query, xpath)
        if path is None:
            return super()._find(element, query, require=require, xpath=xpath)
        result = next(element.iterchildren(path), None) if not xpath else element.find(path)
        if require and result is None:
            namespace, name = query.split(":", 1) if ":" in query else ("ds", query)
            expression = f"{xpath}{namespace}:{name}"
            raise InvalidInput(
                f"Expected to find XML element {name} in {element.tag} using XPath {expression}"
            )
        return result

    def _child(self, element: etree._Element, name: str) -> Any:
        # The first ds:<name> child, as self._find(element, name) returns it; that raises signxml's error.
        for child in element.iterchildren(_DS_TAGS[name]):
            return child
        return self._find(element, name)

    def _findall(self, element: Any, query: str, xpath: str = "") -> Any:
        path = _clark(query, xpath)
        if path is None:
            return super()._findall(element, query, xpath=xpath)
        return list(element.iterchildren(path)) if not xpath else element.findall(path)

    def _get_inclusive_ns_prefixes(self, transform_node: Any) -> list[str] | None:
        # signxml's find("./ec:InclusiveNamespaces[@PrefixList]"), without ElementPath.
        for inclusive_namespaces in transform_node.iterchildren(_INCLUSIVE_NAMESPACES):
            prefix_list = inclusive_namespaces.get("PrefixList")
            if prefix_list is not None:
                return prefix_list.split(" ")
        return None

    def prepare(self, signature: etree._Element) -> Prepared:
        """Read and canonicalise SignedInfo in place, in signxml's order (its verify() reads a copy)."""
        if signature.getparent() is not None and not _blank(signature.tail):
            self._fromstring(self._tostring(signature))  # signxml's copy fails on such a tail; so do we
        signed_info = self._child(signature, "SignedInfo")
        c14n_method = self._child(signed_info, "CanonicalizationMethod")
        c14n_algorithm = _member(CanonicalizationMethod, c14n_method.get("Algorithm"))
        inclusive_ns_prefixes = self._get_inclusive_ns_prefixes(c14n_method)
        signature_method = self._child(signed_info, "SignatureMethod")
        signature_value = self._child(signature, "SignatureValue")
        signature_alg = _member(SignatureMethod, signature_method.get("Algorithm"))
        self.check_signature_alg_expected(signature_alg)
        raw_signature = b64decode(signature_value.text)
        # signxml's find("ds:KeyInfo/ds:KeyValue") and find("ds:KeyInfo/dsig11:DEREncodedKeyValue") in one pass.
        key_value = der_encoded_key_value = None
        for key_info in signature.iterchildren(_KEY_INFO):
            for child in key_info.iterchildren(_KEY_VALUE, _DER_KEY_VALUE):
                if child.tag == _KEY_VALUE:
                    key_value = child if key_value is None else key_value
                else:
                    der_encoded_key_value = child if der_encoded_key_value is None else der_encoded_key_value
        signed_info_c14n = self._c14n(
            signed_info, algorithm=c14n_algorithm, inclusive_ns_prefixes=inclusive_ns_prefixes
        )
        return Prepared(
            signed_info_c14n,
            c14n_algorithm,
            signature_alg,
            raw_signature,
            key_value,
            der_encoded_key_value,
            signed_info,
        )

    def check_signature(self, prepared: Prepared, certificate: x509.Certificate) -> bytes:
        """Verify SignatureValue with the certificate's key and return the SignedInfo bytes it covers.

        The certificate's validity was decided by the trust store (with clock skew), so signxml's own
        validity check, which only re-reads the same dates, is not repeated.
        """
        try:
            verified, _ = self._verify_signature_with_pubkey(
                signed_info_c14n=prepared.signed_info_c14n,
                raw_signature=prepared.raw_signature,
                signing_certificate=certificate,
                signature_alg=prepared.signature_alg,
            )
        except cryptography.exceptions.InvalidSignature as exc:
            raise InvalidSignature(f"Signature verification failed: {exc}") from exc
        self._match_key_values(
            key_value=prepared.key_value,
            der_encoded_key_value=prepared.der_encoded_key_value,
            signing_cert=certificate,
            signature_alg=prepared.signature_alg,
        )
        return bytes(verified)

    def check_references(
        self,
        root: etree._Element,
        signature: etree._Element,
        verified_signed_info_c14n: bytes,
        c14n_algorithm: CanonicalizationMethod,
        owned: bool = False,
        signed_info: etree._Element | None = None,
    ) -> list[SignedReference]:
        """Digest every reference of the verified SignedInfo, in order; signxml's verify() tail.

        signxml reads the references from the verified bytes, re-parsed. ``signed_info`` (the element those
        bytes canonicalise) is read instead when nothing can tell them apart: no comment (c14n drops it, and
        it splits DigestValue's text) and no ``xmlns=""`` (libxml2's inclusive c14n of a subtree may add
        one that moves elements out of their namespace; see docs/signing.md).
        """
        if (
            signed_info is None
            or b'xmlns=""' in verified_signed_info_c14n
            or next(signed_info.iter(etree.Comment), None) is not None
        ):
            verified_signed_info = self._fromstring(verified_signed_info_c14n)
        else:
            verified_signed_info = signed_info
        references = self._findall(verified_signed_info, "Reference")
        last = len(references) - 1
        results = [
            self._check_reference(reference, index, root, signature, c14n_algorithm, owned and index == last)
            for index, reference in enumerate(references)
        ]
        expected = self.config.expect_references
        if type(expected) is int and len(results) != expected:
            raise InvalidSignature(f"Expected to find {expected} references, but found {len(results)}")
        return results

    def _check_reference(
        self,
        reference: etree._Element,
        index: int,
        root: etree._Element,
        signature: etree._Element,
        c14n_algorithm: CanonicalizationMethod,
        detach: bool,
    ) -> SignedReference:
        if root.getparent() is not None:
            return self._signxml_reference(reference, index, root, signature, c14n_algorithm)
        transforms_node = next(reference.iterchildren(_DS_TAGS["Transforms"]), None)
        digest_method_alg_name = self._child(reference, "DigestMethod").get("Algorithm")
        digest_value = self._child(reference, "DigestValue")
        payload = self._resolve_reference(root, reference)
        payload_c14n = self._canonical_payload(payload, transforms_node, signature, detach=detach)
        if payload_c14n is None:
            return self._signxml_reference(reference, index, root, signature, c14n_algorithm)
        digest_alg = _member(DigestAlgorithm, digest_method_alg_name)
        self.check_digest_alg_expected(digest_alg)
        if b64decode(digest_value.text) != self._get_digest(payload_c14n, digest_alg):
            raise InvalidDigest(f"Digest mismatch for reference {index} ({reference.get('URI')})")
        try:
            element = self._fromstring(payload_c14n)
        except etree.XMLSyntaxError:
            element = None
        return SignedReference(payload_c14n, element)

    def _signxml_reference(
        self,
        reference: etree._Element,
        index: int,
        root: etree._Element,
        signature: etree._Element,
        c14n_algorithm: CanonicalizationMethod,
    ) -> SignedReference:
        result = self._verify_reference(reference, index, root, None, c14n_algorithm, signature, b"")
        return SignedReference(result.signed_data, result.signed_xml)

    def _canonical_payload(
        self, payload: Any, transforms_node: etree._Element | None, signature: etree._Element, *, detach: bool
    ) -> bytes | None:
        """The bytes signxml's _apply_transforms would produce for ``payload``, or None to let it run."""
        if not isinstance(payload, etree._Element):
            return None
        transforms = (
            list(transforms_node.iterchildren(_DS_TAGS["Transform"])) if transforms_node is not None else []
        )
        algorithms = [transform.get("Algorithm") for transform in transforms]
        c14n_transforms = [t for t, a in zip(transforms, algorithms, strict=True) if a in _C14N]
        if _BASE64 in algorithms or len(c14n_transforms) > 1:
            return None
        if c14n_transforms:
            algorithm = _member(CanonicalizationMethod, c14n_transforms[0].get("Algorithm"))
            prefixes = self._get_inclusive_ns_prefixes(c14n_transforms[0])
        else:
            algorithm, prefixes = self.config.default_reference_c14n_method, None
        tail = payload.tail
        strip: list[int] | None = None
        if _ENVELOPED in algorithms and signature.getparent() is not None:
            if _path_to(signature, payload) is not None:
                return None  # the payload leaves the document with the signature
            strip = _path_to(payload, signature)
            if strip is None and signature.getprevious() is payload and signature.tail is not None:
                tail = (tail or "") + signature.tail  # _remove_sig moves the signature's tail here
        if payload.getparent() is None:
            if strip is not None and detach:
                _remove_sig(signature, idempotent=True)  # nothing reads this tree's signature after this
                strip = None
            if strip is None:
                return self._c14n(payload, algorithm=algorithm, inclusive_ns_prefixes=prefixes)
        elif not _blank(tail):
            return None  # signxml's re-parse of the payload fails on its tail; let it say so
        elif strip is None and algorithm.value.startswith("http://www.w3.org/2001/10/xml-exc-c14n#"):
            return self._c14n(payload, algorithm=algorithm, inclusive_ns_prefixes=prefixes)
        if payload.getparent() is None:
            copy = copy_module.copy(payload)  # a C-level copy of a root keeps all its namespaces; no re-parse
        else:
            copy = self._fromstring(self._tostring(payload))
        if strip is not None:
            _remove_sig(_follow(copy, strip), idempotent=True)
        return self._c14n(copy, algorithm=algorithm, inclusive_ns_prefixes=prefixes)
