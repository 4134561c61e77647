"""HMAC checksums for the payment platform."""

import logging

import pytest

from signing.checksum import HmacKey, compute_checksum, verify_checksum
from signing.errors import Reason, SignatureInvalid, SigningConfigError

KEY = HmacKey("payment-platform", b"0123456789abcdef-secret")
FIELDS = ("ORDER-1", "150000", "VND", "20240101120000")


def test_checksum_round_trip_is_hex_hmac_sha256_of_pipe_joined_fields() -> None:
    checksum = compute_checksum(FIELDS, KEY)
    assert len(checksum) == 64 and int(checksum, 16) >= 0
    verified = verify_checksum(FIELDS, checksum.upper(), KEY)
    assert verified.fields == FIELDS and verified.key_name == "payment-platform"


def test_checksum_refuses_changed_field() -> None:
    checksum = compute_checksum(FIELDS, KEY)
    with pytest.raises(SignatureInvalid) as caught:
        verify_checksum(("ORDER-1", "990000", "VND", "20240101120000"), checksum, KEY)
    assert caught.value.reason is Reason.CHECKSUM_MISMATCH


def test_checksum_distinguishes_field_boundaries() -> None:
    assert compute_checksum(("a|b", "c"), KEY) == compute_checksum(("a", "b|c"), KEY)  # the partner's format
    assert compute_checksum(("ab", "c"), KEY) != compute_checksum(("a", "bc"), KEY)


def test_hmac_key_never_shows_its_secret(caplog: pytest.LogCaptureFixture) -> None:
    logging.getLogger("test").warning("key %s %r", KEY, KEY)
    assert b"secret".decode() not in repr(KEY) and "0123456789" not in str(KEY)
    assert "0123456789" not in caplog.text


def test_hmac_key_refuses_short_secret() -> None:
    with pytest.raises(SigningConfigError) as caught:
        HmacKey("weak", b"short")
    assert caught.value.key == "weak"
