"""Signature verification of edXML packages and status messages through ``signing/``, per member policy.

The policy of the sending member decides whether a signature is required and whether RSA-SHA1 is
accepted; the signer's certificate must chain to a configured anchor and be bound (its member id, from
the certificate) to the package's ``From/OrganId``. What comes back is what was verified: the message
re-read from the signed bytes (or, for a tree given up to the verification, that tree without its
signature where it cannot differ from them), never from the unsigned document around them.
"""

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree

from hub.edocs.edxml import NS, has_signature, q
from hub.edocs.errors import SignatureRefused
from hub.edocs.settings import EdocMember, TrustSettings
from hub.errors import ConfigError, IdentifierError
from hub.identifiers import parse_client
from signing.errors import SignatureInvalid, SigningConfigError, XmlError
from signing.safe_xml import XmlLimits
from signing.trust import RevocationMode, TrustStore
from signing.xmldsig import SignaturePolicy, verify_xml


@dataclass(frozen=True, slots=True)
class VerifiedMessage:
    """The outcome of verification: the content to read, and who signed it (None when unsigned)."""

    root: etree._Element
    signer: str | None = None
    signer_subject: str | None = None
    algorithm: str | None = None
    verified_at: datetime | None = None

    @property
    def signed(self) -> bool:
        return self.signer is not None


def build_trust(settings: TrustSettings) -> TrustStore | None:
    """The trust store of the configured anchors and CRLs, or None when none are configured.

    Raises:
        ConfigError: an anchor or CRL cannot be read.
    """
    if not settings.anchors:
        return None
    try:
        return TrustStore.from_files(
            anchors=settings.anchors,
            crls=settings.crls,
            revocation=RevocationMode(settings.revocation),
            clock_skew=timedelta(seconds=settings.clock_skew_seconds),
        )
    except SigningConfigError as exc:
        raise ConfigError(f"edocs.trust: {exc.detail}", key=f"edocs.trust.{exc.key or 'anchors'}") from exc


@functools.lru_cache(maxsize=1024)
def organ_of_member(member_id: str | None) -> str | None:
    """The organ code in a signer's member id (``VN/GOV/000.00.00.H40`` -> ``000.00.00.H40``)."""
    if not member_id:
        return None
    try:
        return parse_client(member_id).member.member_code
    except IdentifierError:
        return member_id


class MessageVerifier:
    """Verifies edXML signatures under each member's policy (policies built once and reused)."""

    def __init__(self, trust: TrustStore | None, *, max_bytes: int) -> None:
        self._trust = trust
        self._limits = XmlLimits(max_bytes=max_bytes, huge_text=True)
        self._policies: dict[tuple[bool, bool, bool, bool], SignaturePolicy] = {}

    def _policy(self, root: etree._Element, member: EdocMember) -> SignaturePolicy:
        assert self._trust is not None
        wrapped = root.tag == q("edXML")
        attachments = wrapped and root.find(q("AttachmentEncoded")) is not None
        key = (member.legacy_sha1, member.excise_empty_xmlns, wrapped, attachments)
        policy = self._policies.get(key)
        if policy is None:
            base = "/e:edXML/e:edXMLEnvelope" if wrapped else "/e:edXMLEnvelope"
            required = [f"{base}/e:edXMLHeader/e:MessageHeader"]
            if attachments:
                required.append("/e:edXML/e:AttachmentEncoded")
            location = (
                f"./{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader/" if wrapped else f"./{{{NS}}}edXMLHeader/"
            )
            policy = SignaturePolicy(
                trust=self._trust,
                legacy_sha1=member.legacy_sha1,
                location=location,
                required=tuple(required),
                namespaces={"e": NS},
                # Real packages carry a default-namespace Signature; see docs/signing.md.
                excise_empty_xmlns=member.excise_empty_xmlns,
                limits=self._limits,
            )
            self._policies[key] = policy
        return policy

    def verify(
        self,
        root: etree._Element,
        member: EdocMember,
        organ_id: str,
        *,
        required: bool,
        owned: bool = False,
        source_bytes: int | None = None,
    ) -> VerifiedMessage:
        """Verify ``root``'s signature for a message sent as ``organ_id`` by ``member``.

        ``owned``: the caller gives the tree up, and it is verified without a copy: it may lose its
        signature, and ``VerifiedMessage.root`` may be ``root`` itself. ``source_bytes``: its size as
        received, if known.

        Raises:
            SignatureRefused: no signature where one is required, or any verification failure (the
                reason names it), or a signer bound to another organ.
        """
        if not has_signature(root):
            if required:
                raise SignatureRefused(
                    f"the package is not signed, and {organ_id} must sign its packages", reason="no signature"
                )
            return VerifiedMessage(root)
        if self._trust is None:
            raise SignatureRefused(
                "the package is signed but the hub has no trust anchors (edocs.trust.anchors)",
                reason="untrusted signer",
            )
        try:
            verified = verify_xml(root, self._policy(root, member), owned=owned, source_bytes=source_bytes)
        except SignatureInvalid as exc:
            raise SignatureRefused(f"signature refused: {exc}", reason=exc.reason.value) from exc
        except XmlError as exc:
            raise SignatureRefused(f"signed content refused: {exc}", reason=exc.reason.value) from exc
        signer_organ = organ_of_member(verified.member_id)
        if signer_organ != organ_id:
            raise SignatureRefused(
                f"the signer {verified.signer.subject} is bound to {verified.member_id or 'no member'}, "
                f"not to From/OrganId {organ_id}",
                reason="signer is not the claimed member",
            )
        # With URI="" the signed element is the whole message; with id references the policy made sure
        # MessageHeader (and AttachmentEncoded) are covered, so the original root may be read.
        roots = (q("edXML"), q("edXMLEnvelope"))
        content = next((e for e in verified.signed_elements if e.tag in roots), root)
        return VerifiedMessage(
            root=content,
            signer=verified.member_id,
            signer_subject=verified.signer.subject,
            algorithm=verified.algorithm,
            verified_at=verified.verified_at,
        )


__all__ = ["MessageVerifier", "VerifiedMessage", "build_trust", "organ_of_member"]
