"""Development PKI: a dev CA, the hub's certificate, member certificates that carry their member id, a CRL.

For development and tests only; production keys come from the province's CA.
"""

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from signing.errors import SigningConfigError

__all__ = [
    "DevPki",
    "IssuedCertificate",
    "generate_rsa_key",
    "issue_certificate",
    "make_ca",
    "make_crl",
]

HUB_MEMBER_ID = "VN/GOV/LGSP-HUB"
_SAFE = re.compile(r"[^A-Za-z0-9.()+,=?'-]+")


def generate_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@dataclass(frozen=True)
class IssuedCertificate:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


def make_ca(
    common_name: str = "LGSP Dev CA",
    *,
    key: rsa.RSAPrivateKey | None = None,
    not_before: datetime | None = None,
    days: int = 3650,
) -> IssuedCertificate:
    """Create a self-signed CA certificate allowed to sign certificates and CRLs."""
    key = key or generate_rsa_key()
    start = not_before or datetime.now(UTC) - timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return IssuedCertificate(key, cert)


def issue_certificate(
    issuer: IssuedCertificate,
    member_id: str,
    *,
    key: rsa.RSAPrivateKey | None = None,
    not_before: datetime | None = None,
    days: int = 825,
    digital_signature: bool = True,
    ca: bool = False,
) -> IssuedCertificate:
    """Issue a signing certificate whose subject CN and serialNumber carry ``member_id``."""
    key = key or generate_rsa_key()
    start = not_before or datetime.now(UTC) - timedelta(minutes=5)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, member_id),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, member_id),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature,
                content_commitment=digital_signature,
                key_encipherment=not digital_signature,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    )
    return IssuedCertificate(key, builder.sign(issuer.key, hashes.SHA256()))


def make_crl(
    issuer: IssuedCertificate,
    revoked_serials: dict[int, datetime] | None = None,
    *,
    last_update: datetime | None = None,
    next_update: timedelta = timedelta(days=7),
    signing_key: CertificateIssuerPrivateKeyTypes | None = None,
) -> x509.CertificateRevocationList:
    """Build a CRL signed by ``issuer`` listing ``revoked_serials`` (serial -> revocation time)."""
    start = last_update or datetime.now(UTC) - timedelta(minutes=5)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(start)
        .next_update(start + next_update)
    )
    for serial, when in (revoked_serials or {}).items():
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(signing_key or issuer.key, hashes.SHA256())


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class DevPki:
    """A dev PKI laid out in one directory: ca.pem/ca.key, hub.pem/hub.key, crl.pem, members/*.pem|key."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def ca_cert_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def crl_path(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def hub_cert_path(self) -> Path:
        return self.directory / "hub.pem"

    @property
    def hub_key_path(self) -> Path:
        return self.directory / "hub.key"

    def member_paths(self, member_id: str) -> tuple[Path, Path]:
        stem = _SAFE.sub("_", member_id.replace("/", "_"))
        return self.directory / "members" / f"{stem}.key", self.directory / "members" / f"{stem}.pem"

    def init(self) -> None:
        """Create the CA, the hub certificate and an empty CRL.

        Raises:
            SigningConfigError: the directory already holds a CA.
        """
        if self.ca_cert_path.exists():
            raise SigningConfigError(f"{self.directory} already holds a PKI", key="directory")
        self.directory.mkdir(parents=True, exist_ok=True)
        ca = make_ca()
        self._write_key(self.directory / "ca.key", ca.key)
        self.ca_cert_path.write_bytes(_pem_cert(ca.certificate))
        hub = issue_certificate(ca, HUB_MEMBER_ID)
        self._write_key(self.hub_key_path, hub.key)
        self.hub_cert_path.write_bytes(_pem_cert(hub.certificate))
        self._write_revoked({})

    def issue(self, member_id: str) -> IssuedCertificate:
        """Issue a member key and certificate and write them under members/.

        Raises:
            SigningConfigError: the PKI is not initialised.
        """
        issued = issue_certificate(self._ca(), member_id)
        key_path, cert_path = self.member_paths(member_id)
        key_path.parent.mkdir(exist_ok=True)
        self._write_key(key_path, issued.key)
        cert_path.write_bytes(_pem_cert(issued.certificate))
        return issued

    def revoke(self, serial: int) -> x509.CertificateRevocationList:
        """Add ``serial`` to the CRL and re-sign it.

        Raises:
            SigningConfigError: the PKI is not initialised.
        """
        revoked = self._revoked()
        revoked.setdefault(serial, datetime.now(UTC) - timedelta(seconds=1))
        return self._write_revoked(revoked)

    def _ca(self) -> IssuedCertificate:
        try:
            key = serialization.load_pem_private_key((self.directory / "ca.key").read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
        except OSError as exc:
            raise SigningConfigError(
                f"{self.directory} holds no PKI; run pki init first", key="directory"
            ) from exc
        assert isinstance(key, rsa.RSAPrivateKey)
        return IssuedCertificate(key, cert)

    def _revoked(self) -> dict[int, datetime]:
        path = self.directory / "revoked.json"
        if not path.exists():
            return {}
        return {int(k): datetime.fromisoformat(v) for k, v in json.loads(path.read_text()).items()}

    def _write_revoked(self, revoked: dict[int, datetime]) -> x509.CertificateRevocationList:
        crl = make_crl(self._ca(), revoked)
        (self.directory / "revoked.json").write_text(
            json.dumps({str(k): v.isoformat() for k, v in revoked.items()}, indent=1)
        )
        self.crl_path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        return crl

    @staticmethod
    def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
        path.write_bytes(_pem_key(key))
        path.chmod(0o600)
