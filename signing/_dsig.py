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

The root of the verifier's own tree, at its last reference, is digested without a whole-document copy
(tests/signing/test_dsig_in_place.py holds it to signxml's bytes on every vector). In a large document with
few text nodes (a package carrying attachments), texts longer than 64 KiB are held out of the tree while
libxml2 canonicalises the rest (each would otherwise sit in memory twice more, as libxml2's escaped copy
and its output buffer), and their canonical form (C14N 1.0 §2.3: ``&``, ``<``, ``>`` and CR escaped) is
hashed in slices in their place before they go back. The root itself, signature detached, is then the
signed element instead of a re-parse of the canonical bytes, where the two cannot differ: no comment the
c14n dropped, no ``xmlns=""`` in the output, and under exclusive c14n every namespace declared on the root
only, and rendered there.
"""

import copy as copy_module
import re
import secrets
import threading
from base64 import b64decode
from collections.abc import Callable
from enum import Enum
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar, cast

import cryptography.exceptions
from cryptography import x509
from cryptography.hazmat.primitives.hashes import Hash
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidDigest, InvalidInput, InvalidSignature
from signxml.util import _remove_sig, namespaces

from signing.errors import Reason, SignatureInvalid

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
_EXCLUSIVE = "http://www.w3.org/2001/10/xml-exc-c14n#"
_EMPTY_XMLNS = b' xmlns=""'
HELD_OUT = 64 * 1024
SEARCH_ABOVE = 4096  # bytes of document per text node: below that, long texts are too rare to look for
_SLICE = 1024 * 1024
_LONG_TEXT_PARENTS = etree.XPath("//text()[string-length() > $chars]/..")
_TEXT_NODES = etree.XPath("count(//text())")
_TEXT_ESCAPES = ((b"&", b"&amp;"), (b"<", b"&lt;"), (b">", b"&gt;"), (b"\r", b"&#xD;"))

_local = threading.local()


def reparser() -> etree.XMLParser:
    """The parser for this library's own serialisations and c14n output; one reusable parser per thread.

    They come from a tree already in memory (parsed within its limits, without DTD), so a long text
    node in it must not stop the re-parse.
    """
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True, collect_ids=False
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


def _canonical_text(text: bytes) -> bytes:
    # C14N 1.0 section 2.3 (and exc-c14n, c14n 1.1): a text node's characters with & < > CR escaped.
    for raw, escaped in _TEXT_ESCAPES:
        text = text.replace(raw, escaped)
    return text


def _pattern_start(data: bytes) -> int:
    # How many trailing bytes could begin ' xmlns=""' (kept back until the next piece arrives).
    for length in range(len(_EMPTY_XMLNS) - 1, 0, -1):
        if data.endswith(_EMPTY_XMLNS[:length]):
            return length
    return 0


class _StreamDigest:
    """The digest signxml's ``_c14n`` + ``_get_digest`` compute over the whole output, fed in pieces.

    signxml removes every ' xmlns=""' from inclusive c14n output when the edXML switch is on; the pattern
    starts with the only space in it, so a piece cut before a possible start never splits a match.
    """

    def __init__(self, algorithm: DigestAlgorithm, *, excise: bool) -> None:
        self._hash = Hash(algorithm.implementation())
        self._excise = excise
        self._carry = b""
        self.empty_xmlns = False

    def update(self, data: bytes) -> None:
        if self._carry:
            data, self._carry = self._carry + data, b""
        keep = _pattern_start(data)
        if keep:
            data, self._carry = data[:-keep], data[-keep:]
        if _EMPTY_XMLNS in data:
            self.empty_xmlns = True
            if self._excise:
                data = data.replace(_EMPTY_XMLNS, b"")
        self._hash.update(data)

    def finish(self) -> bytes:
        self._hash.update(self._carry)
        return self._hash.finalize()


class _HeldOut(NamedTuple):
    element: etree._Element
    text: bytes
    marker: bytes


def _hold_out_long_texts(root: etree._Element, nonce: str, source_bytes: int | None) -> list[_HeldOut]:
    """Swap each long ASCII leading text for a marker; the texts come back with ``_put_back``.

    Searched only in a document of known size over ``HELD_OUT`` bytes that has few text nodes for its size
    (the search reads every text node; an attachment-carrying package has a few dozen).
    """
    held: list[_HeldOut] = []
    if source_bytes is None or source_bytes <= HELD_OUT:
        return held
    count = _TEXT_NODES(root)
    if not isinstance(count, float) or count * SEARCH_ABOVE > source_bytes:
        return held
    try:
        for element in cast(list[etree._Element], _LONG_TEXT_PARENTS(root, chars=HELD_OUT)):
            text = element.text  # the long text may be a child's tail; then this one is short and stays
            if text is None or len(text) <= HELD_OUT or not text.isascii():
                continue  # put back from a str, it would be in memory three times; leave it to libxml2
            marker = f"{nonce}{len(held):08d}"
            element.text = marker
            held.append(_HeldOut(element, text.encode("ascii"), marker.encode("ascii")))
            del text
    except BaseException:
        _put_back(held)
        raise
    return held


def _put_back(held: list[_HeldOut]) -> None:
    while held:
        element, text, _ = held.pop()
        element.text = text  # type: ignore[assignment]  # ASCII bytes: copied into the tree once
        del element, text


class SignedReference:
    """The canonical bytes one reference digests, and the element they parse to (None if not XML).

    The root of a tree digested in place is its own element; its bytes are canonicalised again when
    ``data`` is read, and refused if the element no longer canonicalises to the verified digest.
    """

    __slots__ = ("_data", "_recompute", "element")

    def __init__(
        self,
        data: bytes | None,
        element: etree._Element | None,
        recompute: Callable[[], bytes] | None = None,
    ) -> None:
        self._data = data
        self._recompute = recompute
        self.element = element

    @property
    def data(self) -> bytes:
        """The canonical bytes.

        Raises:
            SignatureInvalid: the element digested in place was changed after verification.
        """
        if self._data is not None:
            return self._data
        assert self._recompute is not None
        return self._recompute()


class _Plan(NamedTuple):
    """How signxml's transforms canonicalise one payload, without its copies."""

    algorithm: CanonicalizationMethod
    prefixes: list[str] | None
    strip: list[int] | None  # path from the payload to an enveloped signature still to be removed
    detach: bool  # remove the enveloped signature from the tree itself first
    copy: bool  # canonicalise a copy (strip, or inclusive c14n of a subelement)


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

    def __init__(
        self, config: SignatureConfiguration, *, excise_empty_xmlns: bool, source_bytes: int | None = None
    ) -> None:
        """``source_bytes``: the size of the document as received, when known; only then are long text
        nodes looked for (and never at or below ``HELD_OUT``, where none can be)."""
        super().__init__()
        self.config = config
        self.excise_empty_xmlns_declarations = excise_empty_xmlns
        self._parser: Any = reparser()
        self._outcomes: dict[str, Any] = {}
        self._source_bytes = source_bytes

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

    def forget(self) -> None:
        """Drop the outcomes kept for further candidates, once verification is over: with the re-check of
        a reference digested in place (which refers back to this verifier) they form a reference cycle
        that would keep the whole document alive until the garbage collector's next pass."""
        self._outcomes.clear()

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
        plan = self._plan(payload, transforms_node, signature, detach=detach)
        if plan is None:
            return self._signxml_reference(reference, index, root, signature, c14n_algorithm)
        if plan.detach:  # the root, at its last reference
            return self._check_root_in_place(
                root, signature, plan, digest_method_alg_name, digest_value, index, reference
            )
        payload_c14n = self._run(payload, signature, plan)
        digest_alg = _member(DigestAlgorithm, digest_method_alg_name)
        self.check_digest_alg_expected(digest_alg)
        if b64decode(digest_value.text) != self._get_digest(payload_c14n, digest_alg):
            raise InvalidDigest(f"Digest mismatch for reference {index} ({reference.get('URI')})")
        return SignedReference(payload_c14n, self._reparse(payload_c14n))

    def _reparse(self, payload_c14n: bytes) -> etree._Element | None:
        try:
            return self._fromstring(payload_c14n)
        except etree.XMLSyntaxError:
            return None

    def _check_root_in_place(
        self,
        root: etree._Element,
        signature: etree._Element,
        plan: _Plan,
        digest_method_alg_name: str | None,
        digest_value: Any,
        index: int,
        reference: etree._Element,
    ) -> SignedReference:
        """The last reference to the root of the verifier's own tree: digested without a copy of it."""
        _remove_sig(signature, idempotent=True)  # nothing reads this tree's signature after this
        digest_alg = _member(DigestAlgorithm, digest_method_alg_name)
        self.check_digest_alg_expected(digest_alg)
        digest, empty_xmlns = self._root_digest(root, plan, digest_alg)
        if b64decode(digest_value.text) != digest:
            raise InvalidDigest(f"Digest mismatch for reference {index} ({reference.get('URI')})")
        if empty_xmlns or not self._reads_as_signed(root, plan):
            payload_c14n = self._c14n(root, algorithm=plan.algorithm, inclusive_ns_prefixes=plan.prefixes)
            return SignedReference(payload_c14n, self._reparse(payload_c14n))

        def recompute() -> bytes:
            data = self._c14n(root, algorithm=plan.algorithm, inclusive_ns_prefixes=plan.prefixes)
            if self._get_digest(data, digest_alg) != digest:
                raise SignatureInvalid(
                    Reason.DIGEST_MISMATCH, "the signed element was changed after it was verified"
                )
            return data

        return SignedReference(None, root, recompute)

    def _root_digest(
        self, root: etree._Element, plan: _Plan, digest_alg: DigestAlgorithm
    ) -> tuple[bytes, bool]:
        """The digest of the root's canonical bytes, and whether they hold ' xmlns=""'."""
        exclusive = plan.algorithm.value.startswith(_EXCLUSIVE)
        stream = _StreamDigest(digest_alg, excise=not exclusive and self.excise_empty_xmlns_declarations)
        nonce = secrets.token_hex(16)
        held = _hold_out_long_texts(root, nonce, self._source_bytes)
        try:
            canonical = _tostring_c14n(root, plan)
            if canonical.count(nonce.encode("ascii")) != len(held):
                _put_back(held)  # the document carries the nonce itself: canonicalise it whole
                canonical = _tostring_c14n(root, plan)
            position = 0
            for entry in held:
                found = canonical.index(entry.marker, position)
                stream.update(canonical[position:found])
                for start in range(0, len(entry.text), _SLICE):
                    stream.update(_canonical_text(entry.text[start : start + _SLICE]))
                position = found + len(entry.marker)
            stream.update(canonical[position:] if position else canonical)
        finally:
            _put_back(held)
        return stream.finish(), stream.empty_xmlns

    def _reads_as_signed(self, root: etree._Element, plan: _Plan) -> bool:
        """Whether ``root`` holds nothing its canonical bytes do not: what a re-parse of them would hold."""
        if (
            not plan.algorithm.value.endswith("#WithComments")
            and next(root.iter(etree.Comment), None) is not None
        ):
            return False  # c14n dropped it; it may split a text that readers would see whole
        if not plan.algorithm.value.startswith(_EXCLUSIVE):
            return True  # inclusive c14n renders every namespace declaration of the document
        # Exclusive c14n renders a declaration only where a name uses it: every one must be on the root,
        # used there (or listed in InclusiveNamespaces), and none below it.
        declared = root.nsmap
        used = {etree.QName(name).namespace for name in root.attrib}
        listed = set(plan.prefixes or ())
        uris = list(declared.values())
        for prefix, uri in declared.items():
            on_root = prefix == root.prefix and uri == etree.QName(root).namespace
            on_attribute = prefix is not None and uri in used and uris.count(uri) == 1
            if not (on_root or on_attribute or (prefix or "#default") in listed):
                return False
        return sum(1 for _ in etree.iterwalk(root, events=("start-ns",))) == len(declared)

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
        plan = self._plan(payload, transforms_node, signature, detach=detach)
        return None if plan is None else self._run(payload, signature, plan)

    def _plan(
        self, payload: Any, transforms_node: etree._Element | None, signature: etree._Element, *, detach: bool
    ) -> _Plan | None:
        """How to produce signxml's bytes for ``payload`` without its copies, or None to let it run."""
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
                return _Plan(algorithm, prefixes, None, True, False)
            return _Plan(algorithm, prefixes, strip, False, strip is not None)
        if not _blank(tail):
            return None  # signxml's re-parse of the payload fails on its tail; let it say so
        if strip is None and algorithm.value.startswith(_EXCLUSIVE):
            return _Plan(algorithm, prefixes, None, False, False)
        return _Plan(algorithm, prefixes, strip, False, True)

    def _run(self, payload: etree._Element, signature: etree._Element, plan: _Plan) -> bytes:
        if plan.detach:
            _remove_sig(signature, idempotent=True)  # nothing reads this tree's signature after this
        if not plan.copy:
            return self._c14n(payload, algorithm=plan.algorithm, inclusive_ns_prefixes=plan.prefixes)
        if payload.getparent() is None:
            copy = copy_module.copy(payload)  # a C-level copy of a root keeps all its namespaces; no re-parse
        else:
            copy = self._fromstring(self._tostring(payload))
        if plan.strip is not None:
            _remove_sig(_follow(copy, plan.strip), idempotent=True)
        return self._c14n(copy, algorithm=plan.algorithm, inclusive_ns_prefixes=plan.prefixes)


def _tostring_c14n(root: etree._Element, plan: _Plan) -> bytes:
    # signxml's _c14n without its ' xmlns=""' excision, which _StreamDigest applies.
    return etree.tostring(
        root,
        method="c14n",
        exclusive=plan.algorithm.value.startswith(_EXCLUSIVE),
        with_comments=plan.algorithm.value.endswith("#WithComments"),
        inclusive_ns_prefixes=plan.prefixes,
    )
