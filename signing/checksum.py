"""HMAC-SHA256 checksums for partners that use them (the payment platform): hex over ``|``-joined fields."""

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field

from signing.errors import Reason, SignatureInvalid, SigningConfigError

__all__ = ["HmacKey", "VerifiedChecksum", "compute_checksum", "verify_checksum"]


@dataclass(frozen=True)
class HmacKey:
    """A shared secret from the configuration; never shown by repr, str or logs."""

    name: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise SigningConfigError(f"HMAC key {self.name!r} is shorter than 16 bytes", key=self.name)

    def __str__(self) -> str:
        return f"HmacKey({self.name!r}, secret=***)"


@dataclass(frozen=True)
class VerifiedChecksum:
    """The fields a checksum vouched for, and which key vouched for them."""

    fields: tuple[str, ...]
    key_name: str


def _message(fields: Sequence[str]) -> bytes:
    return "|".join(fields).encode("utf-8")


def compute_checksum(fields: Sequence[str], key: HmacKey) -> str:
    """Return the lowercase hex HMAC-SHA256 of the fields joined with ``|``."""
    return hmac.new(key.secret, _message(fields), hashlib.sha256).hexdigest()


def verify_checksum(fields: Sequence[str], checksum: str, key: HmacKey) -> VerifiedChecksum:
    """Check ``checksum`` against the fields in constant time (case-insensitive hex).

    Raises:
        SignatureInvalid: CHECKSUM_MISMATCH.
    """
    expected = compute_checksum(fields, key)
    if not hmac.compare_digest(expected.encode("ascii"), checksum.strip().lower().encode("ascii", "replace")):
        raise SignatureInvalid(Reason.CHECKSUM_MISMATCH, f"checksum does not match ({key.name})")
    return VerifiedChecksum(tuple(fields), key.name)
