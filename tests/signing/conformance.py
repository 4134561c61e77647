"""Conformance harness over the shared XML-DSig MANIFESTs: row parsing, trust configuration, hub verdict."""

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from signing.errors import Reason, SigningError
from signing.pki import make_ca
from signing.trust import RevocationMode, TrustStore, load_certificates
from signing.xmldsig import SignaturePolicy, verify_xml

TESTDATA = Path("/work/shared/testdata/xmldsig")
DS = "{http://www.w3.org/2000/09/xmldsig#}"
SAML_P = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML_A = "urn:oasis:names:tc:SAML:2.0:assertion"


@dataclass(frozen=True)
class Row:
    suite: str
    file: str
    hub: str
    trust: str
    upstream: str
    observed: str

    @property
    def path(self) -> Path:
        return TESTDATA / self.suite / self.file

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.file}"


def rows() -> Iterator[Row]:
    """Every MANIFEST row whose hub verdict is an ACCEPT or REJECT."""
    for manifest in sorted(TESTDATA.glob("*/MANIFEST.md")):
        suite = manifest.parent.name
        header: list[str] | None = None
        for line in manifest.read_text().splitlines():
            if not line.startswith("|"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = cells
                continue
            if set(cells[0]) <= set("-: "):
                continue
            d = dict(zip(header, cells, strict=False))
            if suite == "python3-saml":
                hub = d["Correct verifier with idp.crt pinned"]
                trust, upstream, observed = "idp.crt", hub, d["signxml 5.2.0 observed"]
            elif suite == "signxml":
                hub, trust = d["Hub verdict"], d["Trust / key used upstream"]
                upstream, observed = d["Upstream verdict"], d["signxml 5.2.0 observed"]
            else:
                hub, trust = d["Hub verdict"], d["Upstream: expected under options"]
                upstream, observed = trust, d["xmlsec1 1.2.37 observed"]
            if hub.startswith(("ACCEPT", "REJECT")):
                yield Row(suite, cells[0], hub, trust, upstream, observed)


def _find(suite: str, suffix: str) -> Path:
    suffix = suffix.replace("phaos certs/", "phaos-xmldsig-three/certs/")
    suffix = suffix.replace("$topfolder/", "").replace("$cert_format", "pem").lstrip("./")
    matches = [p for p in (TESTDATA / suite).rglob("*") if p.is_file() and str(p).endswith("/" + suffix)]
    if not matches:
        raise FileNotFoundError(f"{suite}: {suffix}")
    return min(matches, key=lambda p: len(str(p)))


def _own_certificates(data: bytes) -> list[x509.Certificate]:
    found = re.findall(rb"<(?:\w+:)?X509Certificate[^>]*>([^<]+)<", data)
    certs = []
    for text in found:
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode(b"".join(text.split()))))
        except ValueError:
            continue
    return certs


def _inside(cert: x509.Certificate) -> datetime:
    return cert.not_valid_before_utc + timedelta(hours=1)


_UNRELATED_ANCHOR = make_ca("unrelated conformance anchor").certificate

# SAML rows: where the signature the consumer relies on sits, and how many signatures the document may hold.
SAML_LOCATIONS = {
    "signed_assertion_response": f"./{{{SAML_A}}}Assertion/",
    "double_signed_response": "./",
    "valid_response": "./",
}


def policy_for(row: Row, data: bytes) -> SignaturePolicy:
    """The hub policy the row's trust configuration calls for (anchors, pins, time, location)."""
    anchors: list[x509.Certificate] = []
    pinned: list[x509.Certificate] = []
    when: datetime | None = None
    legacy = False
    location = "./"
    max_signatures = 1
    trust = row.trust
    if row.suite == "python3-saml":
        pinned = load_certificates(_find(row.suite, "tests/data/customPath/certs/idp.crt").read_bytes())
        when = datetime(2007, 7, 1, tzinfo=UTC)
        legacy = True  # the MANIFEST: every SAML vector is RSA-SHA1; allowed here only to test structure
        stem = row.file.rsplit("/", 1)[-1].split(".")[0]
        location = SAML_LOCATIONS.get(stem, "./")
        max_signatures = 2
    else:
        for match in re.finditer(r"ca_pem_file=([^\s,()]+(?: certs/[^\s,()]+)?)", trust):
            anchors += load_certificates(_find(row.suite, match.group(1)).read_bytes())
        for match in re.finditer(r"(?:x509_cert|cert_resolver->)=?\s*([\w./-]+\.(?:pem|der|crt))", trust):
            pinned += load_certificates(_find(row.suite, match.group(1)).read_bytes())
        for match in re.finditer(r"--trusted-\S+ (\S+)", trust):
            anchors += load_certificates(_find(row.suite, match.group(1)).read_bytes())
        for match in re.finditer(r"--pubkey-cert-\S+ (\S+)", trust):
            pinned += load_certificates(_find(row.suite, match.group(1)).read_bytes())
        if "own X509Certificate" in trust or "--insecure" in trust:
            pinned += _own_certificates(data)[:1]
        time_match = re.search(r"(?:time|verification-gmt-time|verification_time) (\d{4}-\d{2}-\d{2})", trust)
        if time_match:
            when = datetime.fromisoformat(time_match.group(1)).replace(tzinfo=UTC)
        elif pinned:
            when = _inside(pinned[0])
        if "XAdES" in trust:
            max_signatures = 8  # XAdES carries counter-signatures and timestamps; the hub pins the location
    store = TrustStore(
        anchors=anchors or ([] if pinned else [_UNRELATED_ANCHOR]),
        pinned=pinned,
        revocation=RevocationMode.OFF,
    )
    return SignaturePolicy(
        trust=store,
        legacy_sha1=legacy,
        verification_time=when,
        location=location,
        max_signatures=max_signatures,
    )


def hub_verdict(row: Row) -> tuple[str, Reason | None]:
    data = row.path.read_bytes()
    if row.file.endswith(".base64"):
        data = base64.b64decode(data)
    try:
        policy = policy_for(row, data)
        verify_xml(data, policy)
    except SigningError as exc:
        return "REJECT", exc.reason
    return "ACCEPT", None
