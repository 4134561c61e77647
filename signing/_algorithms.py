"""XML-DSig algorithm identifiers sorted into allowed, weak (legacy opt-in only) and refused."""

from enum import Enum

from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from signing.errors import Reason, SignatureInvalid

RSA_SHA1 = SignatureMethod.RSA_SHA1.value
SHA1 = DigestAlgorithm.SHA1.value

STRONG_SIGNATURE_METHODS: frozenset[str] = frozenset(
    method.value
    for method in SignatureMethod
    if not method.name.startswith(("HMAC", "DSA"))
    and "SHA1" not in method.name
    and "SHA224" not in method.name
    and "SHA3_224" not in method.name
)
STRONG_DIGESTS: frozenset[str] = frozenset(
    digest.value for digest in DigestAlgorithm if digest.name not in {"SHA1", "SHA224", "SHA3_224"}
)
C14N_METHODS: frozenset[str] = frozenset(method.value for method in CanonicalizationMethod)
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
ALLOWED_TRANSFORMS: frozenset[str] = C14N_METHODS | {ENVELOPED}

_WEAK_MARKERS = ("sha1", "md5", "ripemd", "sha224", "sha3-224")


class AlgorithmVerdict(Enum):
    ALLOWED = "allowed"
    WEAK = "weak"
    REFUSED = "refused"


def _fragment(uri: str) -> str:
    return uri.rsplit("#", 1)[-1].lower()


def classify_signature_method(uri: str, *, legacy_sha1: bool) -> AlgorithmVerdict:
    fragment = _fragment(uri)
    if fragment.startswith("hmac"):
        return AlgorithmVerdict.REFUSED
    if legacy_sha1 and uri == RSA_SHA1:
        return AlgorithmVerdict.ALLOWED
    if uri in STRONG_SIGNATURE_METHODS:
        return AlgorithmVerdict.ALLOWED
    if fragment.startswith("dsa") or any(marker in fragment for marker in _WEAK_MARKERS):
        return AlgorithmVerdict.WEAK
    return AlgorithmVerdict.REFUSED


def classify_digest(uri: str, *, legacy_sha1: bool) -> AlgorithmVerdict:
    if legacy_sha1 and uri == SHA1:
        return AlgorithmVerdict.ALLOWED
    if uri in STRONG_DIGESTS:
        return AlgorithmVerdict.ALLOWED
    if any(marker in _fragment(uri) for marker in _WEAK_MARKERS):
        return AlgorithmVerdict.WEAK
    return AlgorithmVerdict.REFUSED


def require_signature_method(uri: str, *, legacy_sha1: bool) -> None:
    """Raise unless the signature method is allowed; HMAC is refused outright (no shared-secret trust)."""
    verdict = classify_signature_method(uri, legacy_sha1=legacy_sha1)
    if verdict is AlgorithmVerdict.WEAK:
        raise SignatureInvalid(Reason.WEAK_ALGORITHM, f"signature method {uri}")
    if verdict is AlgorithmVerdict.REFUSED:
        raise SignatureInvalid(Reason.UNSUPPORTED_ALGORITHM, f"signature method {uri}")


def require_digest(uri: str, *, legacy_sha1: bool) -> None:
    """Raise unless the digest algorithm is allowed."""
    verdict = classify_digest(uri, legacy_sha1=legacy_sha1)
    if verdict is AlgorithmVerdict.WEAK:
        raise SignatureInvalid(Reason.WEAK_ALGORITHM, f"digest method {uri}")
    if verdict is AlgorithmVerdict.REFUSED:
        raise SignatureInvalid(Reason.UNSUPPORTED_ALGORITHM, f"digest method {uri}")
