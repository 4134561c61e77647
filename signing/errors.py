"""The signing library's exception tree. lxml, signxml, cryptography and joserfc errors are translated
once, where they are caught, into these; the original survives as ``__cause__``.

    SigningError                    root; every error carries a ``reason`` (a :class:`Reason`)
    ├── XmlError                    untrusted XML could not be parsed safely
    │   ├── XmlRefused              DTD, entity, size, depth or element-count limit (reason says which)
    │   └── XmlMalformed            not well-formed XML
    ├── SignatureInvalid            a signature, checksum or certificate did not verify (reason, detail)
    ├── SigningConfigError          a policy, trust store, key or mapping is invalid (names the key)
    └── SigningFailed               a signature could not be produced
"""

from enum import StrEnum


class Reason(StrEnum):
    """Why something was refused; stable strings meant for logs, metrics and the CLI's one line."""

    DTD_REFUSED = "dtd refused"
    ENTITY_REFUSED = "entity refused"
    TOO_LARGE = "document too large"
    TOO_DEEP = "document too deep"
    TOO_MANY_ELEMENTS = "too many elements"
    MALFORMED = "malformed xml"
    NO_SIGNATURE = "no signature"
    EXTRA_SIGNATURE = "unexpected extra signature"
    WRONG_LOCATION = "signature in unexpected location"
    DIGEST_MISMATCH = "digest mismatch"
    BAD_SIGNATURE = "bad signature value"
    WEAK_ALGORITHM = "weak algorithm"
    UNSUPPORTED_ALGORITHM = "unsupported algorithm"
    UNSUPPORTED_TRANSFORM = "unsupported transform"
    MANIFEST_REFUSED = "manifest refused"
    BAD_REFERENCE = "bad reference"
    EXTERNAL_REFERENCE = "external reference refused"
    SCHEMA_INVALID = "signature does not match the xml-dsig schema"
    WRAPPING = "signature wrapping"
    DUPLICATE_ID = "duplicate id"
    NOT_COVERED = "required element not signed"
    NO_CERTIFICATE = "no signer certificate"
    UNTRUSTED_SIGNER = "untrusted signer"
    EXPIRED = "certificate expired or not yet valid"
    KEY_USAGE = "certificate key usage does not allow signing"
    REVOKED = "certificate revoked"
    REVOCATION_UNKNOWN = "revocation status unknown"
    WRONG_MEMBER = "signer is not the claimed member"
    UNKNOWN_KEY = "unknown key id"
    KEY_IN_HEADER = "key in header refused"
    BAD_HEADER = "bad protected header"
    BINDING_MISMATCH = "request binding mismatch"
    STALE_TIMESTAMP = "timestamp outside window"
    CHECKSUM_MISMATCH = "checksum mismatch"
    CONFIG = "invalid configuration"
    SIGNING_FAILED = "signing failed"


class SigningError(Exception):
    """Root of every error the signing library raises on purpose."""

    reason: Reason = Reason.CONFIG

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


class XmlError(SigningError):
    """Untrusted XML could not be parsed safely."""


class XmlRefused(XmlError):
    """The XML uses a refused feature (DTD, entity) or exceeds a limit."""


class XmlMalformed(XmlError):
    """The XML is not well-formed."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(Reason.MALFORMED, detail)


class SignatureInvalid(SigningError):
    """A signature, checksum or certificate did not verify; ``reason`` says why."""


class SigningConfigError(SigningError):
    """A policy, trust store, key or member mapping is invalid; ``key`` names the setting."""

    def __init__(self, detail: str, *, key: str | None = None) -> None:
        super().__init__(Reason.CONFIG, detail)
        self.key = key


class SigningFailed(SigningError):
    """A signature could not be produced."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(Reason.SIGNING_FAILED, detail)
