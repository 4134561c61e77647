"""XML-DSig on signxml: a frozen policy, a verifier that returns only what was signed, and an enveloped signer.

Verification order: safe parse; count and locate Signature elements; refuse weak or unknown algorithms,
transforms other than enveloped/c14n, external or ambiguous references and ds:Manifest; resolve the signer
certificate from KeyInfo or the pinned set and validate it in the trust store (keys that do not chain to an
anchor are never used); only then run signxml's digest and signature checks; finally check that the
references cover every element the policy requires.
"""

import base64
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import cryptography.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from signxml import SignatureConfiguration, XMLSigner, XMLVerifier
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import (
    InvalidCertificate,
    InvalidDigest,
    SignXMLException,
)

from signing._algorithms import (
    ALLOWED_TRANSFORMS,
    C14N_METHODS,
    STRONG_DIGESTS,
    STRONG_SIGNATURE_METHODS,
    AlgorithmVerdict,
    classify_digest,
    classify_signature_method,
    require_digest,
    require_signature_method,
)
from signing._dsig import SignedReference, Verifier, reparser
from signing.errors import Reason, SignatureInvalid, SigningConfigError, SigningError, SigningFailed, XmlError
from signing.safe_xml import DEFAULT_LIMITS, XmlLimits, parse_xml
from signing.trust import TrustStore, ValidatedSigner

__all__ = [
    "DS_NS",
    "EXC_C14N",
    "RSA_SHA256",
    "SHA256",
    "SignaturePolicy",
    "SigningKey",
    "VerifiedXml",
    "load_private_key",
    "sign_xml",
    "verify_xml",
]

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
DS11_NS = "http://www.w3.org/2009/xmldsig11#"
_NS = {"ds": DS_NS, "dsig11": DS11_NS}
_SIGNATURE = f"{{{DS_NS}}}Signature"
# Clark-notation paths: ElementPath sorts a namespace map on every call, and XPath strings compile per call.
_SIGNED_INFO = f"{{{DS_NS}}}SignedInfo"
_SIGNATURE_METHOD = f"{{{DS_NS}}}SignatureMethod"
_C14N_METHOD = f"{{{DS_NS}}}CanonicalizationMethod"
_REFERENCE = f"{{{DS_NS}}}Reference"
_DIGEST_METHOD = f"{{{DS_NS}}}DigestMethod"
_TRANSFORMS = f"{{{DS_NS}}}Transforms"
_TRANSFORM = f"{{{DS_NS}}}Transform"
_MANIFEST = f"{{{DS_NS}}}Manifest"
_CLARK_URI = re.compile(r"\{[^}]*\}")
_CERT_TEXTS = etree.XPath("ds:KeyInfo/ds:X509Data/ds:X509Certificate/text()", namespaces=_NS)
_MANIFEST_TYPE = f"{DS_NS}Manifest"
RSA_SHA256 = SignatureMethod.RSA_SHA256.value
SHA256 = DigestAlgorithm.SHA256.value
EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value
_ID_XPATH = etree.XPath(
    "//*[@*[local-name()='Id' or local-name()='ID' or local-name()='id'] = $value] | //*[@xml:id = $value]"
)
_CERT_CACHE_SIZE = 256


@dataclass(frozen=True)
class SignaturePolicy:
    """What a valid XML signature must look like for one member or one kind of document.

    ``location`` is signxml's parent path for ``ds:Signature`` (``./`` = child of the root; an enveloping
    signature may be the root itself). ``required`` holds XPath expressions (prefixes from ``namespaces``)
    selecting elements the references must cover. ``max_signatures`` counts every ``ds:Signature`` in the
    document. ``excise_empty_xmlns`` is the edXML interop switch (see docs/signing.md); keep it off otherwise.
    """

    trust: TrustStore
    legacy_sha1: bool = False
    location: str = "./"
    required: tuple[str, ...] = ()
    namespaces: Mapping[str, str] = field(default_factory=dict)
    max_signatures: int = 1
    expect_references: int | None = None
    member_id: str | None = None
    clock_skew: timedelta = timedelta(minutes=5)
    verification_time: datetime | None = None
    excise_empty_xmlns: bool = False
    validate_schema: bool = True
    limits: XmlLimits = DEFAULT_LIMITS
    _config: SignatureConfiguration = field(init=False, repr=False, compare=False)
    _required: tuple[etree.XPath, ...] = field(init=False, repr=False, compare=False)
    _signature_path: str = field(init=False, repr=False, compare=False)
    _signature_namespaces: dict[str, str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.trust, TrustStore):
            raise SigningConfigError("SignaturePolicy.trust must be a TrustStore", key="trust")
        if self.max_signatures < 1:
            raise SigningConfigError(
                "SignaturePolicy.max_signatures must be at least 1", key="max_signatures"
            )
        if self.expect_references is not None and self.expect_references < 1:
            raise SigningConfigError(
                "SignaturePolicy.expect_references must be positive", key="expect_references"
            )
        if not self.location.endswith("/"):
            raise SigningConfigError("SignaturePolicy.location must end with '/'", key="location")
        if self.verification_time is not None and self.verification_time.tzinfo is None:
            raise SigningConfigError(
                "SignaturePolicy.verification_time must be timezone-aware", key="verification_time"
            )
        if self.clock_skew < timedelta(0):
            raise SigningConfigError("SignaturePolicy.clock_skew must not be negative", key="clock_skew")
        namespaces = MappingProxyType(dict(self.namespaces))
        object.__setattr__(self, "namespaces", namespaces)
        try:
            compiled = tuple(etree.XPath(expr, namespaces=dict(namespaces)) for expr in self.required)
        except etree.XPathSyntaxError as exc:
            raise SigningConfigError(f"bad XPath in SignaturePolicy.required: {exc}", key="required") from exc
        object.__setattr__(self, "_required", compiled)
        # signxml's "{location}ds:Signature", in Clark notation unless the location itself uses a prefix.
        object.__setattr__(self, "_signature_path", f"{self.location}{_SIGNATURE}")
        object.__setattr__(self, "_signature_namespaces", _NS if _has_prefix(self.location) else None)
        methods = {SignatureMethod(m) for m in STRONG_SIGNATURE_METHODS}
        digests = {DigestAlgorithm(d) for d in STRONG_DIGESTS}
        if self.legacy_sha1:
            methods.add(SignatureMethod.RSA_SHA1)
            digests.add(DigestAlgorithm.SHA1)
        config = SignatureConfiguration(
            require_x509=True,
            location=self.location,
            expect_references=self.expect_references or True,
            signature_methods=frozenset(methods),
            digest_algorithms=frozenset(digests),
            ignore_ambiguous_key_info=False,
        )
        object.__setattr__(self, "_config", config)


@dataclass(frozen=True)
class VerifiedXml:
    """What a verified XML signature vouches for. Read only ``signed_elements``: they are the signed bytes
    re-parsed after canonicalisation, detached from the document, so unsigned siblings cannot reach them.
    For an enveloped signature over the whole of a document the verification owns, the element is the
    document's root with the signature removed, wherever it holds exactly what the re-parse would
    (docs/signing.md)."""

    signed_elements: tuple[etree._Element, ...]
    signer: ValidatedSigner
    algorithm: str
    digest_algorithms: tuple[str, ...]
    reference_uris: tuple[str, ...]
    verified_at: datetime
    _references: tuple[SignedReference, ...] = field(default=(), repr=False, compare=False)

    @property
    def signed_data(self) -> tuple[bytes, ...]:
        """The canonical bytes each reference digests (a root verified in place is canonicalised again).

        Raises:
            SignatureInvalid: a root verified in place was changed since.
        """
        return tuple(reference.data for reference in self._references)

    @property
    def signer_certificate(self) -> x509.Certificate:
        return self.signer.certificate

    @property
    def member_id(self) -> str | None:
        return self.signer.member_id


_cert_cache: "OrderedDict[str, x509.Certificate]" = OrderedDict()


def _load_cert(text: str) -> x509.Certificate:
    # A bounded cache of parsed KeyInfo certificates, keyed by the text as sent and by its base64 without
    # whitespace: repeat signers skip the normalisation, base64 and DER parsing.
    cert = _cert_cache.get(text)
    if cert is not None:
        return cert
    key = "".join(text.split())
    cert = _cert_cache.get(key)
    if cert is None:
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode(key, validate=True))
        except ValueError as exc:
            raise SignatureInvalid(Reason.NO_CERTIFICATE, f"unreadable X509Certificate: {exc}") from exc
        _cert_cache[key] = cert
    _cert_cache[text] = cert
    while len(_cert_cache) > _CERT_CACHE_SIZE:
        _cert_cache.popitem(last=False)
    return cert


def _has_prefix(path: str) -> bool:
    return ":" in _CLARK_URI.sub("", path)


def _first(element: etree._Element, tag: str) -> etree._Element | None:
    return next(element.iterchildren(tag), None)


def _attr(element: etree._Element | None, name: str) -> str:
    value = element.get(name) if element is not None else None
    return value or ""


def _locate_signature(root: etree._Element, policy: SignaturePolicy) -> etree._Element:
    signatures = [root] if root.tag == _SIGNATURE else []
    signatures += (
        list(root.iter(_SIGNATURE)) if root.tag != _SIGNATURE else list(root.iterdescendants(_SIGNATURE))
    )
    if not signatures:
        raise SignatureInvalid(Reason.NO_SIGNATURE, f"no ds:Signature in <{etree.QName(root).localname}>")
    if len(signatures) > policy.max_signatures:
        raise SignatureInvalid(
            Reason.EXTRA_SIGNATURE,
            f"{len(signatures)} ds:Signature elements, at most {policy.max_signatures} expected",
        )
    if root.tag == _SIGNATURE:
        return root
    found = root.find(policy._signature_path, namespaces=policy._signature_namespaces)
    if found is None:
        raise SignatureInvalid(Reason.WRONG_LOCATION, f"no ds:Signature at {policy.location}")
    return found


def _check_structure(
    root: etree._Element, signature: etree._Element, policy: SignaturePolicy
) -> tuple[str, list[str], list[etree._Element]]:
    # Order matters for the reason reported: HMAC, then weak algorithms, then references and transforms,
    # then algorithms we do not know at all, then ds:Manifest.
    signed_info = _first(signature, _SIGNED_INFO)
    if signed_info is None:
        raise SignatureInvalid(Reason.SCHEMA_INVALID, "ds:SignedInfo missing")
    method_node: etree._Element | None = None
    c14n_node: etree._Element | None = None
    references: list[etree._Element] = []
    for child in signed_info:  # one pass; comments and PIs match no tag
        tag = child.tag
        if tag == _REFERENCE:
            references.append(child)
        elif tag == _SIGNATURE_METHOD:
            method_node = child if method_node is None else method_node
        elif tag == _C14N_METHOD:
            c14n_node = child if c14n_node is None else c14n_node
    method = _attr(method_node, "Algorithm")
    if not method:
        raise SignatureInvalid(Reason.SCHEMA_INVALID, "ds:SignatureMethod missing")
    if not references:
        raise SignatureInvalid(Reason.BAD_REFERENCE, "ds:SignedInfo has no ds:Reference")
    digests = [_attr(_first(ref, _DIGEST_METHOD), "Algorithm") for ref in references]
    method_verdict = classify_signature_method(method, legacy_sha1=policy.legacy_sha1)
    if method_verdict is AlgorithmVerdict.REFUSED and "hmac" in method.lower():
        raise SignatureInvalid(Reason.UNSUPPORTED_ALGORITHM, f"HMAC signature method {method} refused")
    if method_verdict is AlgorithmVerdict.WEAK:
        raise SignatureInvalid(Reason.WEAK_ALGORITHM, f"signature method {method}")
    for digest in digests:
        if classify_digest(digest, legacy_sha1=policy.legacy_sha1) is AlgorithmVerdict.WEAK:
            raise SignatureInvalid(Reason.WEAK_ALGORITHM, f"digest method {digest}")
    c14n = _attr(c14n_node, "Algorithm")
    if c14n not in C14N_METHODS:
        raise SignatureInvalid(Reason.UNSUPPORTED_TRANSFORM, f"canonicalization method {c14n or '(none)'}")
    targets = [_resolve(root, ref) for ref in references]
    for ref in references:
        for transforms in ref.iterchildren(_TRANSFORMS):
            for transform in transforms.iterchildren(_TRANSFORM):
                algorithm = _attr(transform, "Algorithm")
                if algorithm not in ALLOWED_TRANSFORMS:
                    raise SignatureInvalid(Reason.UNSUPPORTED_TRANSFORM, f"transform {algorithm or '(none)'}")
    require_signature_method(method, legacy_sha1=policy.legacy_sha1)
    for digest in digests:
        require_digest(digest, legacy_sha1=policy.legacy_sha1)
    if next(signature.iterdescendants(_MANIFEST), None) is not None:
        raise SignatureInvalid(Reason.MANIFEST_REFUSED, "ds:Manifest inside the signature")
    return method, digests, targets


def _resolve(root: etree._Element, ref: etree._Element) -> etree._Element:
    uri = ref.get("URI")
    if ref.get("Type") == _MANIFEST_TYPE:
        raise SignatureInvalid(Reason.MANIFEST_REFUSED, f"reference {uri!r} has Type Manifest")
    if uri is None:
        raise SignatureInvalid(Reason.BAD_REFERENCE, "reference without URI")
    if uri == "":
        return root
    if uri.startswith("#xpointer("):
        raise SignatureInvalid(Reason.UNSUPPORTED_TRANSFORM, f"XPointer reference {uri}")
    if not uri.startswith("#"):
        raise SignatureInvalid(Reason.EXTERNAL_REFERENCE, f"reference URI {uri!r} is not same-document")
    matches = _ID_XPATH(root, value=uri[1:])
    assert isinstance(matches, list)
    if len(matches) > 1:
        raise SignatureInvalid(Reason.DUPLICATE_ID, f"reference {uri} matches {len(matches)} elements")
    if not matches or not isinstance(matches[0], etree._Element):
        raise SignatureInvalid(Reason.BAD_REFERENCE, f"reference {uri} matches no element")
    return matches[0]


def _validate_schema(signature: etree._Element) -> None:
    errors: list[str] = []
    for schema in XMLVerifier.schemas():
        if schema.validate(signature):
            return
        errors.append(str(schema.error_log.last_error))
    raise SignatureInvalid(Reason.SCHEMA_INVALID, "; ".join(errors) or "no XML-DSig schema")


def _signer_candidates(
    signature: etree._Element, trust: TrustStore
) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """Return (possible signer certificates, other certificates offered as intermediates)."""
    texts = _CERT_TEXTS(signature)
    assert isinstance(texts, list)
    certs = [_load_cert(str(text)) for text in texts]
    if certs:
        pinned = [c for c in certs if trust.is_pinned(c)] if trust.pinned_certificates() else []
        if pinned:
            return pinned, [c for c in certs if c not in pinned]
        # Leaves are the certificates that issue none of the others; try each, the rest are intermediates.
        leaves = [c for c in certs if not any(o is not c and o.issuer == c.subject for o in certs)] or certs
        return leaves, [c for c in certs if c not in leaves]
    for serial_node in signature.iterfind("ds:KeyInfo/ds:X509Data/ds:X509IssuerSerial", namespaces=_NS):
        issuer = serial_node.findtext("ds:X509IssuerName", default="", namespaces=_NS)
        serial = serial_node.findtext("ds:X509SerialNumber", default="", namespaces=_NS)
        if serial.strip().isdigit():
            found = trust.find(issuer=issuer.strip(), serial=int(serial))
            if found is not None:
                return [found], []
    for ski_node in signature.iterfind("ds:KeyInfo/ds:X509Data/ds:X509SKI", namespaces=_NS):
        try:
            found = trust.find(ski=base64.b64decode("".join((ski_node.text or "").split())).hex())
        except ValueError:
            continue
        if found is not None:
            return [found], []
    return trust.pinned_certificates(), []


_SIGNXML_REASONS: tuple[tuple[str, Reason], ...] = (
    ("Ambiguous reference", Reason.DUPLICATE_ID),
    ("references, but found", Reason.BAD_REFERENCE),
    ("Unable to resolve reference", Reason.BAD_REFERENCE),
    ("forbidden by configuration", Reason.WEAK_ALGORITHM),
    ("DTD", Reason.DTD_REFUSED),
    ("Entities", Reason.ENTITY_REFUSED),
    ("KeyValue", Reason.UNTRUSTED_SIGNER),
)


def _translate(exc: Exception) -> SignatureInvalid:
    message = str(exc)
    if isinstance(exc, InvalidDigest):
        return SignatureInvalid(Reason.DIGEST_MISMATCH, message)
    if isinstance(exc, InvalidCertificate):
        return SignatureInvalid(Reason.EXPIRED, message)
    if isinstance(exc, etree.DocumentInvalid):
        return SignatureInvalid(Reason.SCHEMA_INVALID, message)
    for marker, reason in _SIGNXML_REASONS:
        if marker in message:
            return SignatureInvalid(reason, message)
    return SignatureInvalid(Reason.BAD_SIGNATURE, message)


def _run_signxml(
    verifier: Verifier,
    root: etree._Element,
    signature: etree._Element,
    certificate: x509.Certificate,
    *,
    owned: bool,
) -> list[SignedReference]:
    # Validity (with skew) was decided by the trust store; signxml checks the signature and the digests.
    try:
        return verifier.run(root, signature, certificate, owned=owned)
    except (SignXMLException, etree.DocumentInvalid, etree.XMLSyntaxError, ValueError) as exc:
        raise _translate(exc) from exc
    except cryptography.exceptions.InvalidSignature as exc:
        raise SignatureInvalid(Reason.BAD_SIGNATURE, "signature value does not verify") from exc


def _covered(node: etree._Element, targets: Sequence[etree._Element]) -> bool:
    return any(node is target or target in node.iterancestors() for target in targets)


def _coverage_failure(
    root: etree._Element, targets: Sequence[etree._Element], policy: SignaturePolicy
) -> SignatureInvalid | None:
    try:
        _check_coverage(root, targets, policy)
    except SignatureInvalid as exc:
        return exc
    return None


def _check_coverage(root: etree._Element, targets: Sequence[etree._Element], policy: SignaturePolicy) -> None:
    for expression, compiled in zip(policy.required, policy._required, strict=True):
        nodes = compiled(root)
        if not isinstance(nodes, list) or not nodes:
            raise SignatureInvalid(Reason.NOT_COVERED, f"required element {expression} is missing")
        for node in nodes:
            if not isinstance(node, etree._Element):
                raise SignatureInvalid(Reason.NOT_COVERED, f"{expression} does not select elements")
            if not _covered(node, targets):
                same_tag_signed = any(
                    target.tag == node.tag or any(True for _ in target.iter(node.tag)) for target in targets
                )
                reason = Reason.WRAPPING if same_tag_signed else Reason.NOT_COVERED
                raise SignatureInvalid(
                    reason, f"{expression} selects an element the signature does not cover"
                )


def verify_xml(
    data: bytes | etree._Element,
    policy: SignaturePolicy,
    *,
    owned: bool = False,
    source_bytes: int | None = None,
) -> VerifiedXml:
    """Verify the one expected XML signature in ``data`` under ``policy`` and return what it covers.

    Bytes are parsed into a tree of the verification's own. A tree passed in is left as it was unless
    ``owned``: then the caller gives it up, and it may lose its enveloped signature and come back as the
    signed element (without a copy of the document). ``source_bytes``, the size of that tree's document as
    received, lets its long texts (attachments) be digested outside libxml2's canonical copy, as those of
    bytes are.

    Raises:
        XmlError: the document is refused by the safe parser (DTD, entity, limits) or malformed.
        SignatureInvalid: any verification failure; ``reason`` says which.
    """
    if isinstance(data, bytes | bytearray):
        return _verify(parse_xml(data, limits=policy.limits), policy, owned=True, source_bytes=len(data))
    return _verify(data, policy, owned=owned, source_bytes=source_bytes)


def _verify(
    root: etree._Element, policy: SignaturePolicy, *, owned: bool, source_bytes: int | None
) -> VerifiedXml:
    when = (policy.verification_time or policy.trust.now()).astimezone(UTC)
    signature = _locate_signature(root, policy)
    method, digests, targets = _check_structure(root, signature, policy)
    if policy.validate_schema:
        _validate_schema(signature)
    candidates, intermediates = _signer_candidates(signature, policy.trust)
    if not candidates:
        raise SignatureInvalid(
            Reason.UNTRUSTED_SIGNER,
            "KeyInfo carries no X.509 certificate and no key is pinned for this signer",
        )
    # Decided now, reported after the signature checks: an owned tree loses its signature during them.
    uncovered = _coverage_failure(root, targets, policy)
    verifier = Verifier(
        policy._config, excise_empty_xmlns=policy.excise_empty_xmlns, source_bytes=source_bytes
    )
    failure: SigningError | None = None
    try:
        for candidate in candidates:
            try:
                signer = policy.trust.validate(candidate, intermediates, at=when, skew=policy.clock_skew)
                results = _run_signxml(verifier, root, signature, signer.certificate, owned=owned)
            except SignatureInvalid as exc:
                failure = failure if failure is not None and exc.reason is Reason.BAD_SIGNATURE else exc
                continue
            break
        else:
            assert failure is not None
            raise failure
    finally:
        verifier.forget()
    if policy.member_id is not None and signer.member_id != policy.member_id:
        raise SignatureInvalid(
            Reason.WRONG_MEMBER,
            f"signer {signer.subject} is bound to {signer.member_id!r}, not {policy.member_id!r}",
        )
    if uncovered is not None:
        raise uncovered
    return VerifiedXml(
        signed_elements=tuple(r.element for r in results if r.element is not None),
        signer=signer,
        algorithm=method,
        digest_algorithms=tuple(digests),
        reference_uris=tuple(
            str(ref.get("URI"))
            for signed_info in signature.iterchildren(_SIGNED_INFO)
            for ref in signed_info.iterchildren(_REFERENCE)
        ),
        verified_at=when,
        _references=tuple(results),
    )


SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class _Signer(XMLSigner):
    @property
    def parser(self) -> Any:
        # signxml re-parses its own serialisation of the tree being signed, long text nodes included.
        return reparser()


def load_private_key(pem: bytes) -> SigningKey:
    """Load an unencrypted PEM RSA or EC private key.

    Raises:
        SigningConfigError: the bytes are not an unencrypted PEM RSA or EC private key.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningConfigError(f"not an unencrypted PEM private key: {exc}", key="key") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SigningConfigError(f"{type(key).__name__} keys cannot sign here; use RSA or EC", key="key")
    return key


def sign_xml(
    data: bytes | etree._Element,
    key: SigningKey,
    cert: x509.Certificate | Sequence[x509.Certificate],
    *,
    signature_method: str = RSA_SHA256,
    digest: str = SHA256,
    c14n: str = EXC_C14N,
    reference_ids: Sequence[str] = (),
    id_attribute: str = "Id",
    limits: XmlLimits = DEFAULT_LIMITS,
) -> bytes:
    """Return ``data`` with an enveloped XML signature (RSA-SHA256, exc-c14n by default) and the X.509 chain.

    Without ``reference_ids`` the whole document is signed (URI=""); otherwise one reference per id. A
    ``<ds:Signature Id="placeholder"/>`` in the document fixes where the signature goes (else: last child of
    the root).

    Raises:
        XmlError: ``data`` is refused by the safe parser.
        SigningFailed: signxml could not produce the signature (unknown algorithm, missing id, bad key).
    """
    root = parse_xml(data, limits=limits) if isinstance(data, bytes | bytearray) else data
    chain = [cert] if isinstance(cert, x509.Certificate) else list(cert)
    pem_chain = [c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in chain]
    if signature_method not in STRONG_SIGNATURE_METHODS or digest not in STRONG_DIGESTS:
        raise SigningFailed(f"refusing to sign with {signature_method} / {digest}")
    try:
        signer = _Signer(signature_algorithm=signature_method, digest_algorithm=digest, c14n_algorithm=c14n)
        signed = signer.sign(
            root,
            key=key,
            cert=pem_chain,
            reference_uri=[f"#{i}" for i in reference_ids] or None,
            id_attribute=id_attribute,
        )
    except (SignXMLException, ValueError, TypeError, XmlError) as exc:
        raise SigningFailed(str(exc)) from exc
    return etree.tostring(signed, xml_declaration=False, encoding="utf-8")
