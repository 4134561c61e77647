"""Standalone signing library: safe XML parsing, XML-DSig, JWS, HMAC checksums, trust stores and dev PKI.

Imports nothing from ``hub``, ``connectors`` or ``mappings``.
"""

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
from signing.safe_xml import DEFAULT_LIMITS, XmlLimits, parse_xml

__all__ = [
    "DEFAULT_LIMITS",
    "Reason",
    "SignatureInvalid",
    "SigningConfigError",
    "SigningError",
    "SigningFailed",
    "XmlError",
    "XmlLimits",
    "XmlMalformed",
    "XmlRefused",
    "parse_xml",
]
