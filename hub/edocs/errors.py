"""The document exchange's exception tree; lxml, signing, SQLAlchemy and httpx errors are translated into
these once, where they are caught, with ``raise ... from exc``.

EdocsError                      root (a HubError)
├── PackageRefused              the package or status message cannot be accepted as sent (400)
│   ├── PackageMalformed        not well-formed, or refused by the safe parser (DTD, entity, depth)
│   ├── PackageInvalid          fails the edXML schema or a rule; ``element`` names where
│   └── PackageTooLarge         over ``edocs.max_package_bytes`` or a parser limit (413)
├── SignatureRefused            missing where required, invalid, weak, untrusted, or not the sender's (403)
├── CallerRefused               bad credentials (401) or not allowed to act for that organ (403); ``kind``
├── UnknownAgency               an organ code is not in the agencies directory; ``codes``
├── DocumentNotFound            no such document, status or delivery for this caller (404)
├── TransitionRefused           the status is not allowed after the current one (409); ``current``, ``code``
├── DeliveryFailed              a push endpoint did not take a delivery; ``permanent``, ``status_code``
└── DirectoryError              an agencies file cannot be imported; ``line``
"""

from collections.abc import Sequence

from hub.errors import HubError


class EdocsError(HubError):
    """Root of every error the document exchange raises on purpose."""


class PackageRefused(EdocsError):
    """The package or status message cannot be accepted as sent."""

    def __init__(self, message: str, *, element: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.element = element
        self.reason = reason


class PackageMalformed(PackageRefused):
    """Not well-formed XML, or refused by the safe parser (DTD, entities, depth, element count)."""


class PackageInvalid(PackageRefused):
    """The XML is not a valid edXML package or status message; ``element`` names where."""

    def __init__(
        self, message: str, *, element: str | None = None, line: int | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message, element=element, reason=reason)
        self.line = line


class PackageTooLarge(PackageRefused):
    """The package exceeds ``edocs.max_package_bytes`` or a limit of the XML parser."""

    def __init__(self, message: str, *, limit: int, element: str | None = None) -> None:
        super().__init__(message, element=element, reason="too large")
        self.limit = limit


class SignatureRefused(EdocsError):
    """The package's XML signature is missing where required, invalid, or not the sender's."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class CallerRefused(EdocsError):
    """The caller is not authenticated ('unauthenticated'), or may not do this ('denied')."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class UnknownAgency(EdocsError):
    """One or more organ codes are not in the agencies directory."""

    def __init__(self, message: str, *, codes: Sequence[str]) -> None:
        super().__init__(message)
        self.codes = tuple(codes)


class DocumentNotFound(EdocsError):
    """No such document, status or delivery visible to this caller."""


class TransitionRefused(EdocsError):
    """A status code is not allowed after the recipient's current state."""

    def __init__(self, message: str, *, current: str | None, code: str) -> None:
        super().__init__(message)
        self.current = current
        self.code = code


class DeliveryFailed(EdocsError):
    """A push endpoint did not take a delivery; ``permanent`` failures are not retried."""

    def __init__(self, message: str, *, permanent: bool = False, status_code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status_code = status_code


class DirectoryError(EdocsError):
    """An agencies file cannot be imported; ``line`` names the offending line."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


__all__ = [
    "CallerRefused",
    "DeliveryFailed",
    "DirectoryError",
    "DocumentNotFound",
    "EdocsError",
    "PackageInvalid",
    "PackageMalformed",
    "PackageRefused",
    "PackageTooLarge",
    "SignatureRefused",
    "TransitionRefused",
    "UnknownAgency",
]
