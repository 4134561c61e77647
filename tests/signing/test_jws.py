"""JWS: detached and RFC 7797 signatures, pinned algorithms, keys only from the trust store."""

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from signing.errors import Reason, SignatureInvalid, SigningFailed
from signing.jws import sign_jws, verify_jws
from signing.pki import issue_certificate
from signing.trust import RevocationMode, TrustStore, certificate_kid
from tests.signing.conftest import MEMBER, Pki

BODY = b'{"citizenId": "001099000001", "amount": 100}'


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, object], signature: bytes = b"") -> str:
    return f"{_b64(json.dumps(header).encode())}..{_b64(signature)}"


@pytest.mark.parametrize("algorithm", ["RS256", "PS256"])
@pytest.mark.parametrize("encode_payload", [True, False])
def test_jws_detached_round_trip(pki: Pki, trust: TrustStore, algorithm: str, encode_payload: bool) -> None:
    kid = certificate_kid(pki.member.certificate)
    token = sign_jws(BODY, pki.member.key, kid=kid, algorithm=algorithm, encode_payload=encode_payload)
    assert token.split(".")[1] == ""
    verified = verify_jws(token, trust, payload=BODY, member_id=MEMBER)
    assert verified.payload == BODY and verified.algorithm == algorithm and verified.kid == kid
    assert verified.signer.member_id == MEMBER


def test_jws_es256_round_trip(pki: Pki) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    issued = issue_certificate(pki.ca, "VN/GOV/EC", key=ec_key)  # type: ignore[arg-type]
    store = TrustStore(
        anchors=[pki.ca.certificate], signers=[issued.certificate], revocation=RevocationMode.OFF
    )
    token = sign_jws(BODY, ec_key, kid=certificate_kid(issued.certificate), algorithm="ES256")
    assert verify_jws(token, store, payload=BODY).signer.member_id == "VN/GOV/EC"


def test_jws_refuses_tampered_payload(pki: Pki, trust: TrustStore) -> None:
    token = sign_jws(BODY, pki.member.key, kid=certificate_kid(pki.member.certificate), encode_payload=False)
    with pytest.raises(SignatureInvalid) as caught:
        verify_jws(token, trust, payload=BODY.replace(b"100", b"900"))
    assert caught.value.reason is Reason.BAD_SIGNATURE


def test_jws_refuses_alg_none(pki: Pki, trust: TrustStore) -> None:
    token = _forge({"alg": "none", "kid": certificate_kid(pki.member.certificate)})
    with pytest.raises(SignatureInvalid) as caught:
        verify_jws(token, trust, payload=BODY)
    assert caught.value.reason is Reason.UNSUPPORTED_ALGORITHM


def test_jws_refuses_hs256_keyed_with_the_rsa_public_key(pki: Pki, trust: TrustStore) -> None:
    # Given the classic alg-confusion forgery: HS256 with the signer's public key as the HMAC secret
    kid = certificate_kid(pki.member.certificate)
    header = {"alg": "HS256", "kid": kid}
    secret = pki.member.certificate.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(BODY)}".encode()
    token = _forge(header, hmac.new(secret, signing_input, hashlib.sha256).digest())
    # When verified / Then HMAC is refused before any key is used
    with pytest.raises(SignatureInvalid) as caught:
        verify_jws(token, trust, payload=BODY)
    assert caught.value.reason is Reason.UNSUPPORTED_ALGORITHM


@pytest.mark.parametrize("header_key", ["jwk", "jku", "x5u", "x5c"])
def test_jws_refuses_key_in_header(pki: Pki, trust: TrustStore, header_key: str) -> None:
    token = sign_jws(BODY, pki.member.key, kid=certificate_kid(pki.member.certificate))
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    header[header_key] = "https://attacker.example/key" if header_key in {"jku", "x5u"} else ["AAAA"]
    forged = _b64(json.dumps(header).encode()) + token[token.index(".") :]
    with pytest.raises(SignatureInvalid) as caught:
        verify_jws(forged, trust, payload=BODY)
    assert caught.value.reason is Reason.KEY_IN_HEADER


def test_jws_refuses_unknown_kid(pki: Pki, trust: TrustStore) -> None:
    token = sign_jws(BODY, pki.stranger.key, kid=certificate_kid(pki.stranger.certificate))
    with pytest.raises(SignatureInvalid) as caught:
        verify_jws(token, trust, payload=BODY)
    assert caught.value.reason is Reason.UNKNOWN_KEY


def test_jws_refuses_revoked_signer(pki: Pki, trust: TrustStore) -> None:
    token = sign_jws(BODY, pki.revoked.key, kid=certificate_kid(pki.revoked.certificate))
    with pytest.raises(SignatureInvalid) as caught:
        verify_jws(token, trust, payload=BODY)
    assert caught.value.reason is Reason.REVOKED


def test_jws_refuses_other_member(pki: Pki, trust: TrustStore) -> None:
    token = sign_jws(BODY, pki.other.key, kid=certificate_kid(pki.other.certificate))
    with pytest.raises(SignatureInvalid) as caught:
        verify_jws(token, trust, payload=BODY, member_id=MEMBER)
    assert caught.value.reason is Reason.WRONG_MEMBER


def test_sign_jws_refuses_hmac_and_key_headers(pki: Pki) -> None:
    with pytest.raises(SigningFailed, match="HS256"):
        sign_jws(BODY, pki.member.key, kid="k", algorithm="HS256")
    with pytest.raises(SigningFailed, match="carry a key"):
        sign_jws(BODY, pki.member.key, kid="k", headers={"x5c": ["AAAA"]})
