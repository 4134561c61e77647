"""Trust store: chain validation to configured anchors, key usage, validity, CRL revocation, member binding.

Chains are validated with ``cryptography.x509.verification``; successful validations are cached per signer
until the chain's validity window closes or the CRLs change, so repeat signers cost a dictionary lookup.
"""

import base64
import functools
import hashlib
import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from signing.errors import Reason, SignatureInvalid, SigningConfigError

__all__ = [
    "CrlSource",
    "FileCrlSource",
    "MemberBindings",
    "RevocationMode",
    "StaticCrlSource",
    "TrustStore",
    "UrlCrlSource",
    "ValidatedSigner",
    "certificate_kid",
    "load_certificates",
]

logger = logging.getLogger(__name__)

_CACHE_SIZE = 1024
_DER = Encoding.DER
_SHA256 = SHA256()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def certificate_kid(certificate: x509.Certificate) -> str:
    """Return the key id the hub uses for a certificate: base64url SHA-256 of its DER, unpadded (x5t#S256)."""
    digest = hashlib.sha256(certificate.public_bytes(_DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Load one or more certificates from PEM or a single DER certificate.

    Raises:
        SigningConfigError: the bytes hold no certificate.
    """
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise SigningConfigError(f"not a certificate: {exc}") from exc


class RevocationMode(StrEnum):
    """Whether revocation status is required (unknown fails closed) or not checked at all."""

    REQUIRED = "required"
    OFF = "off"


class CrlSource(Protocol):
    """Where a CRL comes from; ``fetch`` returns DER or PEM bytes."""

    @property
    def name(self) -> str: ...

    def fetch(self) -> bytes: ...


@dataclass(frozen=True)
class FileCrlSource:
    """A CRL read from a file on each refresh."""

    path: Path

    @property
    def name(self) -> str:
        return str(self.path)

    def fetch(self) -> bytes:
        return Path(self.path).read_bytes()


@dataclass(frozen=True)
class UrlCrlSource:
    """A CRL fetched over HTTP on each refresh; redirects are not followed and the size is bounded."""

    url: str
    timeout_seconds: float = 5.0
    max_bytes: int = 20 * 1024 * 1024
    client: httpx.Client | None = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.url

    def fetch(self) -> bytes:
        client = self.client or httpx.Client(timeout=self.timeout_seconds, follow_redirects=False)
        try:
            with client.stream("GET", self.url, timeout=self.timeout_seconds) as response:
                response.raise_for_status()
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > self.max_bytes:
                        raise ValueError(f"CRL at {self.url} exceeds {self.max_bytes} bytes")
                return bytes(body)
        finally:
            if self.client is None:
                client.close()


@dataclass(frozen=True)
class StaticCrlSource:
    """In-memory twin of the CRL sources, for tests and for CRLs handed over by other code."""

    data: bytes
    label: str = "static"

    @property
    def name(self) -> str:
        return self.label

    def fetch(self) -> bytes:
        return self.data


def _hex(value: bytes) -> str:
    return value.hex().lower()


def _ski(certificate: x509.Certificate) -> str | None:
    try:
        ext = certificate.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    except (x509.ExtensionNotFound, ValueError):
        return None
    value = ext.value
    assert isinstance(value, x509.SubjectKeyIdentifier)
    return _hex(value.digest)


@dataclass(frozen=True)
class MemberBindings:
    """Map signer certificates to member ids: by SKI, by serial, by subject, else the subject serialNumber.

    Serials are matched as integers or hex strings; they are unique per issuer, and the configured anchors
    are assumed not to reuse them. ``embedded`` reads the member id from the subject's serialNumber attribute
    (what ``pki issue`` writes), vouched for by the CA.
    """

    by_ski: Mapping[str, str] = field(default_factory=dict)
    by_serial: Mapping[int | str, str] = field(default_factory=dict)
    by_subject: Mapping[str, str] = field(default_factory=dict)
    embedded: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_ski", MappingProxyType({k.lower(): v for k, v in self.by_ski.items()}))
        serials: dict[int, str] = {}
        for key, member in self.by_serial.items():
            try:
                serials[key if isinstance(key, int) else int(str(key), 16)] = member
            except ValueError as exc:
                raise SigningConfigError(f"bad certificate serial {key!r}", key="by_serial") from exc
        object.__setattr__(self, "by_serial", MappingProxyType(serials))
        object.__setattr__(self, "by_subject", MappingProxyType(dict(self.by_subject)))

    def member_for(self, certificate: x509.Certificate) -> str | None:
        """Return the member id this certificate is bound to, or None."""
        ski = _ski(certificate)
        if ski is not None and ski in self.by_ski:
            return self.by_ski[ski]
        if certificate.serial_number in self.by_serial:
            return self.by_serial[certificate.serial_number]  # type: ignore[index]
        subject = certificate.subject.rfc4514_string()
        if subject in self.by_subject:
            return self.by_subject[subject]
        if self.embedded:
            attributes = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
            if attributes:
                value = attributes[0].value
                return value if isinstance(value, str) else value.decode("utf-8", "replace")
        return None


@dataclass(frozen=True)
class ValidatedSigner:
    """A signer certificate that chained to an anchor (or is pinned), is valid, and is not revoked."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    member_id: str | None
    pinned: bool
    kid: str

    @functools.cached_property
    def subject(self) -> str:
        # Validated signers are cached by the trust store: the name is rendered once per certificate.
        return self.certificate.subject.rfc4514_string()


def _key_usage_allows_signing(_policy: object, _cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    # RFC 5280: an absent KeyUsage extension does not restrict the key; a present one must allow signing.
    if usage is not None and not (usage.digital_signature or usage.content_commitment):
        raise ValueError("KeyUsage allows neither digitalSignature nor nonRepudiation")


_EE_POLICY = ExtensionPolicy.permit_all().may_be_present(
    x509.KeyUsage, Criticality.AGNOSTIC, _key_usage_allows_signing
)


def _is_ca(_policy: object, _cert: x509.Certificate, constraints: x509.BasicConstraints) -> None:
    if not constraints.ca:
        raise ValueError("BasicConstraints does not assert cA")


def _ca_key_usage(_policy: object, _cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("KeyUsage of an issuing certificate lacks keyCertSign")


# RFC 5280 path validation without the Web PKI extras (criticality of basicConstraints, AKI, name
# constraints): government CAs in the field do not all follow the CA/Browser Forum profile.
_CA_POLICY = (
    ExtensionPolicy.permit_all()
    .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, _is_ca)
    .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _ca_key_usage)
)


@dataclass
class _LoadedCrl:
    crl: x509.CertificateRevocationList
    source: str


@dataclass
class _CacheEntry:
    signer: ValidatedSigner
    valid_from: datetime
    valid_until: datetime
    generation: int


class TrustStore:
    """Anchors, pinned and known signer certificates, CRLs and member bindings; validates signers.

    Raises (from :meth:`validate`):
        SignatureInvalid: UNTRUSTED_SIGNER, EXPIRED, KEY_USAGE, REVOKED or REVOCATION_UNKNOWN.
    """

    def __init__(
        self,
        *,
        anchors: Sequence[x509.Certificate] = (),
        pinned: Sequence[x509.Certificate] = (),
        signers: Sequence[x509.Certificate] = (),
        intermediates: Sequence[x509.Certificate] = (),
        crl_sources: Sequence[CrlSource] = (),
        revocation: RevocationMode = RevocationMode.REQUIRED,
        refresh_interval: timedelta = timedelta(hours=1),
        bindings: MemberBindings | None = None,
        clock_skew: timedelta = timedelta(minutes=5),
        max_chain_depth: int = 4,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not anchors and not pinned:
            raise SigningConfigError(
                "a trust store needs at least one anchor or pinned certificate", key="anchors"
            )
        if revocation is RevocationMode.REQUIRED and anchors and not crl_sources:
            raise SigningConfigError(
                "revocation is required but no CRL source is configured (set revocation: off to opt out)",
                key="crl_sources",
            )
        if refresh_interval <= timedelta(0):
            raise SigningConfigError("refresh_interval must be positive", key="refresh_interval")
        self._anchors = tuple(anchors)
        self._store = Store(list(anchors)) if anchors else None
        self._pinned = {cert: cert for cert in pinned}
        self._intermediates = tuple(intermediates)
        self._crl_sources = tuple(crl_sources)
        self.revocation = revocation
        self._refresh_interval = refresh_interval
        self.bindings = bindings or MemberBindings()
        self.clock_skew = clock_skew
        self._max_chain_depth = max_chain_depth
        self._clock = clock
        self._lock = threading.Lock()
        self._crls: list[_LoadedCrl] = []
        self._last_refresh: datetime | None = None
        self._generation = 0
        self._cache: OrderedDict[tuple[object, ...], _CacheEntry] = OrderedDict()
        self._by_kid: dict[str, x509.Certificate] = {}
        self._by_issuer_serial: dict[tuple[str, int], x509.Certificate] = {}
        self._by_ski: dict[str, x509.Certificate] = {}
        for cert in (*pinned, *signers):
            self.add_signer(cert)
        if self._crl_sources:
            self.refresh()

    @classmethod
    def from_files(
        cls,
        *,
        anchors: Iterable[Path | str] = (),
        pinned: Iterable[Path | str] = (),
        crls: Iterable[Path | str] = (),
        **options: object,
    ) -> "TrustStore":
        """Build a trust store from PEM/DER certificate files and CRL files or http(s) URLs.

        Raises:
            SigningConfigError: a file is missing or holds no certificate.
        """

        def read(paths: Iterable[Path | str], key: str) -> list[x509.Certificate]:
            certs: list[x509.Certificate] = []
            for path in paths:
                try:
                    certs.extend(load_certificates(Path(path).read_bytes()))
                except OSError as exc:
                    raise SigningConfigError(f"cannot read {path}: {exc}", key=key) from exc
            return certs

        sources: list[CrlSource] = [
            UrlCrlSource(str(c)) if str(c).startswith(("http://", "https://")) else FileCrlSource(Path(c))
            for c in crls
        ]
        return cls(
            anchors=read(anchors, "anchors"),
            pinned=read(pinned, "pinned"),
            crl_sources=sources,
            **options,  # type: ignore[arg-type]
        )

    def now(self) -> datetime:
        return self._clock()

    def add_signer(self, certificate: x509.Certificate) -> str:
        """Register a signer certificate (still validated on use) so it can be found by kid, serial or SKI."""
        kid = certificate_kid(certificate)
        self._by_kid[kid] = certificate
        self._by_issuer_serial[(certificate.issuer.rfc4514_string(), certificate.serial_number)] = certificate
        ski = _ski(certificate)
        if ski is not None:
            self._by_ski[ski] = certificate
        return kid

    def certificate_for_kid(self, kid: str) -> x509.Certificate:
        """Return the registered certificate with this kid.

        Raises:
            SignatureInvalid: UNKNOWN_KEY.
        """
        try:
            return self._by_kid[kid]
        except KeyError:
            raise SignatureInvalid(Reason.UNKNOWN_KEY, f"no certificate registered for kid {kid!r}") from None

    def find(
        self, *, issuer: str | None = None, serial: int | None = None, ski: str | None = None
    ) -> x509.Certificate | None:
        """Look up a registered certificate by issuer + serial or by SKI (hex)."""
        if ski is not None:
            return self._by_ski.get(ski.lower())
        if issuer is not None and serial is not None:
            wanted = _normalise_name(issuer)
            for (known_issuer, known_serial), cert in self._by_issuer_serial.items():
                if known_serial == serial and _normalise_name(known_issuer) == wanted:
                    return cert
        return None

    def pinned_certificates(self) -> list[x509.Certificate]:
        return list(self._pinned.values())

    def is_pinned(self, certificate: x509.Certificate) -> bool:
        return certificate in self._pinned

    # -- CRLs ---------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload every CRL source now; a source that fails keeps its previous CRL until that CRL goes stale."""
        loaded: list[_LoadedCrl] = []
        previous = {entry.source: entry for entry in self._crls}
        for source in self._crl_sources:
            try:
                data = source.fetch()
                crl = x509.load_pem_x509_crl(data) if b"-----BEGIN" in data else x509.load_der_x509_crl(data)
                loaded.append(_LoadedCrl(crl, source.name))
            except (OSError, ValueError, httpx.HTTPError) as exc:
                logger.warning("CRL refresh failed for %s: %s", source.name, exc)
                if source.name in previous:
                    loaded.append(previous[source.name])
        with self._lock:
            changed = [e.crl.fingerprint(_SHA256) for e in loaded] != [
                e.crl.fingerprint(_SHA256) for e in self._crls
            ]
            self._crls = loaded
            self._last_refresh = self._clock()
            if changed:
                self._generation += 1
                self._cache.clear()

    def _refresh_if_due(self) -> None:
        if not self._crl_sources:
            return
        last = self._last_refresh
        if last is None or self._clock() - last >= self._refresh_interval:
            self.refresh()

    def _check_revocation(self, chain: Sequence[x509.Certificate], at: datetime, skew: timedelta) -> None:
        for cert, issuer in itertools.pairwise(chain):
            crl = self._current_crl(issuer, at, skew)
            if crl is None:
                raise SignatureInvalid(
                    Reason.REVOCATION_UNKNOWN,
                    f"no current CRL from {issuer.subject.rfc4514_string()} for serial {cert.serial_number}",
                )
            revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if revoked is not None and revoked.revocation_date_utc <= at + skew:
                raise SignatureInvalid(
                    Reason.REVOKED,
                    f"serial {cert.serial_number:x} revoked {revoked.revocation_date_utc.isoformat()}",
                )

    def _current_crl(
        self, issuer: x509.Certificate, at: datetime, skew: timedelta
    ) -> x509.CertificateRevocationList | None:
        for entry in self._crls:
            crl = entry.crl
            if crl.issuer != issuer.subject:
                continue
            if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
                logger.warning("CRL from %s has a bad signature; ignored", entry.source)
                continue
            next_update = crl.next_update_utc
            if crl.last_update_utc > at + skew:
                continue
            if next_update is not None and next_update + skew < at:
                continue
            return crl
        return None

    # -- validation ---------------------------------------------------------------------------------------

    def validate(
        self,
        certificate: x509.Certificate,
        intermediates: Sequence[x509.Certificate] = (),
        *,
        at: datetime | None = None,
        skew: timedelta | None = None,
    ) -> ValidatedSigner:
        """Validate a signer certificate at ``at`` (default now) and return what was established.

        Raises:
            SignatureInvalid: UNTRUSTED_SIGNER, EXPIRED, KEY_USAGE, REVOKED or REVOCATION_UNKNOWN.
        """
        when = (at or self._clock()).astimezone(UTC)
        skew = self.clock_skew if skew is None else skew
        if self.revocation is RevocationMode.REQUIRED:
            self._refresh_if_due()
        key = (skew, certificate, *intermediates)
        with self._lock:
            entry = self._cache.get(key)
            if (
                entry is not None
                and entry.generation == self._generation
                and entry.valid_from <= when <= entry.valid_until
            ):
                self._cache.move_to_end(key)
                return entry.signer
        try:
            signer, window = self._validate_uncached(certificate, intermediates, when, skew)
        except ValueError as exc:
            # cryptography parses extensions lazily; a malformed one surfaces here.
            raise SignatureInvalid(Reason.UNTRUSTED_SIGNER, f"malformed certificate: {exc}") from exc
        with self._lock:
            self._cache[key] = _CacheEntry(signer, window[0], window[1], self._generation)
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return signer

    def _validate_uncached(
        self,
        certificate: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        when: datetime,
        skew: timedelta,
    ) -> tuple[ValidatedSigner, tuple[datetime, datetime]]:
        if certificate in self._pinned:
            _check_validity(certificate, when, skew)
            signer = ValidatedSigner(
                certificate,
                (certificate,),
                self.bindings.member_for(certificate),
                True,
                certificate_kid(certificate),
            )
            window = (certificate.not_valid_before_utc - skew, certificate.not_valid_after_utc + skew)
        else:
            # Trust first (an unknown signer is untrusted, not merely expired), then validity.
            chain = self._build_chain(certificate, intermediates, when)
            _check_validity(certificate, when, skew)
            if self.revocation is RevocationMode.REQUIRED:
                self._check_revocation(chain, when, skew)
            signer = ValidatedSigner(
                certificate, chain, self.bindings.member_for(certificate), False, certificate_kid(certificate)
            )
            window = (
                max(c.not_valid_before_utc for c in chain) - skew,
                min(c.not_valid_after_utc for c in chain) + skew,
            )
            if self.revocation is RevocationMode.REQUIRED:
                # A cached answer must not outlive the CRLs it relied on.
                next_updates = [
                    crl.next_update_utc
                    for issuer in chain[1:]
                    if (crl := self._current_crl(issuer, when, skew)) is not None
                    and crl.next_update_utc is not None
                ]
                if next_updates:
                    window = (window[0], min(window[1], *next_updates))
        return signer, window

    def _build_chain(
        self, certificate: x509.Certificate, intermediates: Sequence[x509.Certificate], when: datetime
    ) -> tuple[x509.Certificate, ...]:
        if self._store is None:
            raise SignatureInvalid(
                Reason.UNTRUSTED_SIGNER, f"{certificate.subject.rfc4514_string()} is not a pinned certificate"
            )
        # Leaf validity (with skew) was checked above; validate the chain at a time inside the leaf's window.
        inside = min(max(when, certificate.not_valid_before_utc), certificate.not_valid_after_utc)
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(inside)
            .max_chain_depth(self._max_chain_depth)
            .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(certificate, [*intermediates, *self._intermediates])
        except VerificationError as exc:
            message = str(exc)
            if "KeyUsage" in message or "digitalSignature" in message:
                raise SignatureInvalid(Reason.KEY_USAGE, message) from exc
            if "validity" in message or "expired" in message or "not valid" in message:
                raise SignatureInvalid(Reason.EXPIRED, message) from exc
            raise SignatureInvalid(
                Reason.UNTRUSTED_SIGNER, f"{certificate.subject.rfc4514_string()}: {message}"
            ) from exc
        return tuple(verified.chain)


def _check_validity(certificate: x509.Certificate, when: datetime, skew: timedelta) -> None:
    if when + skew < certificate.not_valid_before_utc:
        raise SignatureInvalid(
            Reason.EXPIRED,
            f"{certificate.subject.rfc4514_string()} not valid before {certificate.not_valid_before_utc.isoformat()}",
        )
    if when - skew > certificate.not_valid_after_utc:
        raise SignatureInvalid(
            Reason.EXPIRED,
            f"{certificate.subject.rfc4514_string()} expired {certificate.not_valid_after_utc.isoformat()}",
        )


def _normalise_name(name: str) -> str:
    return ",".join(part.strip().lower().replace(" ", "") for part in name.split(","))
