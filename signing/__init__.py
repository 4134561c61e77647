"""Standalone signing library: safe XML parsing, XML-DSig, JWS, HMAC checksums, trust stores, dev PKI.

Imports nothing from ``hub``, ``connectors`` or ``mappings``. Verification returns what was verified
(``VerifiedXml``, ``VerifiedJws``, ``VerifiedRequest``, ``VerifiedSoap``); every refusal is a
``SigningError`` carrying a ``Reason``.
"""

from signing.checksum import HmacKey, VerifiedChecksum, compute_checksum, verify_checksum
from signing.errors import (
    Reason,
    SignatureInvalid,
    SigningConfigError,
    SigningError,
    SigningFailed,
    XmlError,
    XmlMalformed,
    XmlRefused,
)
from signing.gateway import (
    SIGNATURE_HEADER,
    VerifiedRequest,
    VerifiedSoap,
    sign_request,
    sign_soap,
    soap_policy,
    verify_request,
    verify_soap,
)
from signing.jws import ALLOWED_JWS_ALGORITHMS, VerifiedJws, sign_jws, verify_jws
from signing.safe_xml import DEFAULT_LIMITS, XmlLimits, parse_xml
from signing.trust import (
    CrlSource,
    FileCrlSource,
    MemberBindings,
    RevocationMode,
    StaticCrlSource,
    TrustStore,
    UrlCrlSource,
    ValidatedSigner,
    certificate_kid,
    load_certificates,
)
from signing.xmldsig import SignaturePolicy, SigningKey, VerifiedXml, load_private_key, sign_xml, verify_xml

__all__ = [
    "ALLOWED_JWS_ALGORITHMS",
    "DEFAULT_LIMITS",
    "SIGNATURE_HEADER",
    "CrlSource",
    "FileCrlSource",
    "HmacKey",
    "MemberBindings",
    "Reason",
    "RevocationMode",
    "SignatureInvalid",
    "SignaturePolicy",
    "SigningConfigError",
    "SigningError",
    "SigningFailed",
    "SigningKey",
    "StaticCrlSource",
    "TrustStore",
    "UrlCrlSource",
    "ValidatedSigner",
    "VerifiedChecksum",
    "VerifiedJws",
    "VerifiedRequest",
    "VerifiedSoap",
    "VerifiedXml",
    "XmlError",
    "XmlLimits",
    "XmlMalformed",
    "XmlRefused",
    "certificate_kid",
    "compute_checksum",
    "load_certificates",
    "load_private_key",
    "parse_xml",
    "sign_jws",
    "sign_request",
    "sign_soap",
    "sign_xml",
    "soap_policy",
    "verify_checksum",
    "verify_jws",
    "verify_request",
    "verify_soap",
    "verify_xml",
]
