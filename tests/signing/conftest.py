"""Shared dev PKI for the signing tests: one CA, members, a revoked and an expired signer (session-scoped)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from signing.pki import IssuedCertificate, issue_certificate, make_ca, make_crl
from signing.trust import RevocationMode, StaticCrlSource, TrustStore

MEMBER = "VN/GOV/000.00.00.H40"
OTHER_MEMBER = "VN/GOV/000.00.00.G22"


@dataclass(frozen=True)
class Pki:
    ca: IssuedCertificate
    member: IssuedCertificate
    other: IssuedCertificate
    revoked: IssuedCertificate
    expired: IssuedCertificate
    stranger: IssuedCertificate  # issued by a CA nobody trusts
    crl: x509.CertificateRevocationList

    def crl_der(self) -> bytes:
        return self.crl.public_bytes(Encoding.DER)


@pytest.fixture(scope="session")
def pki() -> Pki:
    ca = make_ca(not_before=datetime.now(UTC) - timedelta(days=400))
    revoked = issue_certificate(ca, "VN/GOV/000.00.00.R01")
    expired = issue_certificate(
        ca, "VN/GOV/000.00.00.E01", not_before=datetime.now(UTC) - timedelta(days=30), days=10
    )
    crl = make_crl(ca, {revoked.certificate.serial_number: datetime.now(UTC) - timedelta(hours=1)})
    return Pki(
        ca=ca,
        member=issue_certificate(ca, MEMBER),
        other=issue_certificate(ca, OTHER_MEMBER),
        revoked=revoked,
        expired=expired,
        stranger=issue_certificate(make_ca("Rogue CA"), MEMBER),
        crl=crl,
    )


@pytest.fixture
def make_trust(pki: Pki) -> Callable[..., TrustStore]:
    def build(**options: object) -> TrustStore:
        options.setdefault("anchors", [pki.ca.certificate])
        options.setdefault("crl_sources", [StaticCrlSource(pki.crl_der())])
        options.setdefault(
            "signers",
            [pki.member.certificate, pki.other.certificate, pki.revoked.certificate, pki.expired.certificate],
        )
        return TrustStore(**options)  # type: ignore[arg-type]

    return build


@pytest.fixture
def trust(make_trust: Callable[..., TrustStore]) -> TrustStore:
    return make_trust()


@pytest.fixture
def trust_no_revocation(pki: Pki) -> TrustStore:
    return TrustStore(anchors=[pki.ca.certificate], revocation=RevocationMode.OFF)
