"""Trust store: chains, key usage, validity, CRLs (refresh, staleness, fail closed), member binding."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from signing.errors import Reason, SignatureInvalid, SigningConfigError
from signing.pki import issue_certificate, make_crl
from signing.trust import (
    FileCrlSource,
    MemberBindings,
    RevocationMode,
    StaticCrlSource,
    TrustStore,
    UrlCrlSource,
    certificate_kid,
)
from tests.signing.conftest import MEMBER, Pki


def test_trust_store_validates_chain_and_binds_embedded_member(pki: Pki, trust: TrustStore) -> None:
    signer = trust.validate(pki.member.certificate)
    assert signer.member_id == MEMBER
    assert signer.chain[-1] == pki.ca.certificate
    assert not signer.pinned
    assert signer.kid == certificate_kid(pki.member.certificate)


def test_trust_store_caches_validated_signer(pki: Pki, trust: TrustStore) -> None:
    assert trust.validate(pki.member.certificate) is trust.validate(pki.member.certificate)


@pytest.mark.parametrize(
    ("signer", "reason"),
    [("revoked", Reason.REVOKED), ("expired", Reason.EXPIRED), ("stranger", Reason.UNTRUSTED_SIGNER)],
)
def test_trust_store_refuses_bad_certificates(
    pki: Pki, trust: TrustStore, signer: str, reason: Reason
) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        trust.validate(getattr(pki, signer).certificate)
    assert caught.value.reason is reason


def test_trust_store_refuses_certificate_without_signing_key_usage(
    pki: Pki, trust_no_revocation: TrustStore
) -> None:
    encipher_only = issue_certificate(pki.ca, "VN/GOV/ENC", key=pki.member.key, digital_signature=False)
    with pytest.raises(SignatureInvalid) as caught:
        trust_no_revocation.validate(encipher_only.certificate)
    assert caught.value.reason is Reason.KEY_USAGE


def test_trust_store_fails_closed_without_crl_from_issuer(pki: Pki) -> None:
    # Given a CRL source that only has a CRL from another CA
    foreign = make_crl(pki.stranger, {})  # signed by a member key: not the issuer of our signer
    store = TrustStore(
        anchors=[pki.ca.certificate], crl_sources=[StaticCrlSource(foreign.public_bytes(Encoding.DER))]
    )
    # When a signer is validated / Then its status is unknown and it is refused
    with pytest.raises(SignatureInvalid) as caught:
        store.validate(pki.member.certificate)
    assert caught.value.reason is Reason.REVOCATION_UNKNOWN


def test_trust_store_refuses_crl_with_bad_signature(pki: Pki) -> None:
    forged = make_crl(pki.ca, {}, signing_key=pki.other.key)  # issuer name right, signature wrong
    store = TrustStore(
        anchors=[pki.ca.certificate], crl_sources=[StaticCrlSource(forged.public_bytes(Encoding.PEM))]
    )
    with pytest.raises(SignatureInvalid) as caught:
        store.validate(pki.member.certificate)
    assert caught.value.reason is Reason.REVOCATION_UNKNOWN


def test_trust_store_treats_stale_crl_as_unknown(pki: Pki) -> None:
    stale = make_crl(
        pki.ca, {}, last_update=datetime.now(UTC) - timedelta(days=10), next_update=timedelta(days=1)
    )
    store = TrustStore(
        anchors=[pki.ca.certificate], crl_sources=[StaticCrlSource(stale.public_bytes(Encoding.DER))]
    )
    with pytest.raises(SignatureInvalid) as caught:
        store.validate(pki.member.certificate)
    assert caught.value.reason is Reason.REVOCATION_UNKNOWN


def test_trust_store_refreshes_crl_file_on_schedule(pki: Pki, tmp_path: Path) -> None:
    # Given a CRL file without revocations and a clock we control
    path = tmp_path / "crl.pem"
    path.write_bytes(make_crl(pki.ca, {}).public_bytes(Encoding.PEM))
    now = [datetime.now(UTC)]
    store = TrustStore(
        anchors=[pki.ca.certificate],
        crl_sources=[FileCrlSource(path)],
        refresh_interval=timedelta(minutes=10),
        clock=lambda: now[0],
    )
    assert store.validate(pki.other.certificate).member_id
    # When the CA revokes the certificate and the file changes
    revoked_at = now[0] - timedelta(minutes=1)
    path.write_bytes(
        make_crl(pki.ca, {pki.other.certificate.serial_number: revoked_at}).public_bytes(Encoding.PEM)
    )
    # Then nothing changes before the refresh interval ...
    now[0] += timedelta(minutes=5)
    assert store.validate(pki.other.certificate).member_id
    # ... and the revocation is seen after it
    now[0] += timedelta(minutes=6)
    with pytest.raises(SignatureInvalid) as caught:
        store.validate(pki.other.certificate)
    assert caught.value.reason is Reason.REVOKED


def test_url_crl_source_fetches_over_http(pki: Pki) -> None:
    crl = pki.crl_der()

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/ca.crl"
        return httpx.Response(200, content=crl)

    source = UrlCrlSource(
        "http://127.0.0.1/ca.crl", client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    store = TrustStore(anchors=[pki.ca.certificate], crl_sources=[source])
    with pytest.raises(SignatureInvalid) as caught:
        store.validate(pki.revoked.certificate)
    assert caught.value.reason is Reason.REVOKED


def test_url_crl_source_failure_keeps_revocation_unknown(pki: Pki) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    source = UrlCrlSource(
        "http://127.0.0.1/ca.crl", client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    store = TrustStore(anchors=[pki.ca.certificate], crl_sources=[source])
    with pytest.raises(SignatureInvalid) as caught:
        store.validate(pki.member.certificate)
    assert caught.value.reason is Reason.REVOCATION_UNKNOWN


def test_member_bindings_prefer_explicit_mappings(pki: Pki) -> None:
    cert = pki.member.certificate
    by_serial = MemberBindings(by_serial={f"{cert.serial_number:x}": "VN/GOV/BY-SERIAL"})
    by_subject = MemberBindings(by_subject={cert.subject.rfc4514_string(): "VN/GOV/BY-SUBJECT"})
    none = MemberBindings(embedded=False)
    assert by_serial.member_for(cert) == "VN/GOV/BY-SERIAL"
    assert by_subject.member_for(cert) == "VN/GOV/BY-SUBJECT"
    assert none.member_for(cert) is None


def test_trust_store_config_errors_name_the_key(pki: Pki, make_trust: Callable[..., TrustStore]) -> None:
    with pytest.raises(SigningConfigError) as caught:
        TrustStore()
    assert caught.value.key == "anchors"
    with pytest.raises(SigningConfigError) as caught:
        TrustStore(anchors=[pki.ca.certificate])
    assert caught.value.key == "crl_sources"
    with pytest.raises(SigningConfigError):
        MemberBindings(by_serial={"not-hex": "x"})
    assert make_trust(revocation=RevocationMode.OFF).revocation is RevocationMode.OFF


def test_certificate_for_unknown_kid_is_refused(trust: TrustStore) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        trust.certificate_for_kid("nope")
    assert caught.value.reason is Reason.UNKNOWN_KEY
