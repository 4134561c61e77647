"""Conformance harness over the shared XML-DSig MANIFESTs: row parsing, trust configuration, hub verdict."""

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from lxml import etree

from signing.errors import Reason, SigningError
from signing.pki import make_ca
from signing.trust import RevocationMode, TrustStore, load_certificates
from signing.xmldsig import SignaturePolicy, verify_xml
from tests.shared_data import TESTDATA as SHARED

TESTDATA = SHARED / "xmldsig"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
SAML_P = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML_A = "urn:oasis:names:tc:SAML:2.0:assertion"


@dataclass(frozen=True)
class Row:
    suite: str
    file: str
    what: str
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
                yield Row(suite, cells[0], cells[1], hub, trust, upstream, observed)


def _find(row: "Row", name: str) -> Path:
    name = name.strip("`").replace("phaos certs/", "phaos-xmldsig-three/certs/")
    name = name.replace("$topfolder/", "").removeprefix("./")
    suite = TESTDATA / row.suite
    names = [name.replace("$cert_format", fmt) for fmt in ("pem", "der")]
    names += [n.removesuffix(".pem") + ".der" for n in names if n.endswith(".pem")]
    for candidate in names:
        for base in (row.path.parent, row.path.parent.parent, suite, suite / "test", suite / "tests"):
            if (base / candidate).is_file():
                return base / candidate
    for candidate in names:
        matches = [p for p in suite.rglob("*") if p.is_file() and str(p).endswith("/" + candidate)]
        if matches:
            return min(matches, key=lambda p: len(str(p)))
    raise FileNotFoundError(f"{row.suite}: {name}")


def _own_certificates(data: bytes) -> list[x509.Certificate]:
    """The certificates in the KeyInfo of the document's first signature."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    signature = root if root.tag == DS + "Signature" else root.find(f".//{DS}Signature")
    if signature is None:
        return []
    certs = []
    for node in signature.iterfind(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate"):
        certs.append(x509.load_der_x509_certificate(base64.b64decode("".join((node.text or "").split()))))
    return certs


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.subject == cert.issuer


def _inside(cert: x509.Certificate) -> datetime:
    return cert.not_valid_before_utc + timedelta(hours=1)


_UNRELATED_ANCHOR = make_ca("unrelated conformance anchor").certificate

SAML_NS = {"samlp": SAML_P, "saml": SAML_A}


def policy_for(row: Row, data: bytes) -> SignaturePolicy:
    """The hub policy the row's trust configuration calls for (anchors, pins, time)."""
    anchors: list[x509.Certificate] = []
    pinned: list[x509.Certificate] = []
    when: datetime | None = None
    legacy = False
    max_signatures = 1
    required: tuple[str, ...] = ()
    trust = row.trust
    if row.suite == "python3-saml":
        pinned = load_certificates(_find(row, "tests/data/customPath/certs/idp.crt").read_bytes())
        when = datetime(2007, 7, 1, tzinfo=UTC)
        legacy = True  # the MANIFEST: every SAML vector is RSA-SHA1; allowed here only to test structure
        max_signatures = 2  # Response and Assertion may both be signed; the first (outer) one is relied on
        required = ("/samlp:Response/saml:Assertion",)  # a consumer reads the assertion: it must be signed
    else:
        for match in re.finditer(r"ca_pem_file=([^\s,()]+(?: certs/[^\s,()]+)?)", trust):
            anchors += load_certificates(_find(row, match.group(1)).read_bytes())
        for match in re.finditer(r"(?:x509_cert=|cert_resolver->)\s*([\w./-]+\.(?:pem|der|crt))", trust):
            pinned += load_certificates(_find(row, match.group(1)).read_bytes())
        for match in re.finditer(r"--trusted-\S+ (\S+)", trust):
            anchors += load_certificates(_find(row, match.group(1)).read_bytes())
        for match in re.finditer(r"--pubkey-cert-\S+ (\S+)", trust):
            pinned += load_certificates(_find(row, match.group(1)).read_bytes())
        # A trusted certificate that is not a CA can only be meant as the signer itself: a pin.
        pinned += [c for c in anchors if not _is_ca(c)]
        anchors = [c for c in anchors if _is_ca(c)]
        if "own X509Certificate" in trust or "--insecure" in trust:
            own = _own_certificates(data)
            pinned += [c for c in own if not any(o is not c and o.issuer == c.subject for o in own)][:1]
        time_match = re.search(r"(?:time|verification-gmt-time|verification_time) (\d{4}-\d{2}-\d{2})", trust)
        if time_match:
            when = datetime.fromisoformat(time_match.group(1)).replace(tzinfo=UTC)
        elif pinned and ("needs verification_time" in trust or "own X509Certificate" in trust):
            when = _inside(pinned[0])
        if "XAdES" in trust:
            max_signatures = 8  # XAdES carries counter-signatures and timestamps
    store = TrustStore(
        anchors=anchors or ([] if pinned else [_UNRELATED_ANCHOR]),
        pinned=pinned,
        revocation=RevocationMode.OFF,
    )
    return SignaturePolicy(
        validate_schema="validate_schema=False" not in trust,
        trust=store,
        legacy_sha1=legacy,
        verification_time=when,
        location=".//",  # the vectors do not fix where their signature sits; signxml's default
        max_signatures=max_signatures,
        required=required,
        namespaces=SAML_NS,
        # libxml2 2.14's inclusive c14n of a subtree emits spurious xmlns="" under a default-namespace
        # Signature (the edXML trap, docs/signing.md); xmlsec1 is not affected, so the vectors need it.
        excise_empty_xmlns=True,
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
