"""JWS (RFC 7515) for JSON: detached compact signatures, RFC 7797 unencoded payloads, pinned algorithms.

The key is chosen by ``kid`` from the trust store and validated there; ``jwk``, ``jku``, ``x5u`` and ``x5c``
headers are refused before any key is touched, as are ``none`` and every HMAC algorithm.
"""

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwk, jws
from joserfc.errors import JoseError
from joserfc.registry import HeaderParameter

from signing.errors import Reason, SignatureInvalid, SigningFailed
from signing.trust import TrustStore, ValidatedSigner

__all__ = ["ALLOWED_JWS_ALGORITHMS", "VerifiedJws", "sign_jws", "verify_jws"]

ALLOWED_JWS_ALGORITHMS: frozenset[str] = frozenset({"RS256", "PS256", "ES256"})
_KEY_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c"})
_UNDERSTOOD_CRIT = frozenset({"b64"})
_MAX_TOKEN = 16 * 1024  # compact token without its (detached) payload
_MAX_PAYLOAD = 50 * 1024 * 1024
# Header parameters the hub's signed requests bind (see signing.gateway); anything else is refused.
_HUB_HEADERS = {
    "htm": HeaderParameter("HTTP method", "str"),
    "htp": HeaderParameter("request path", "str"),
    "xrc": HeaderParameter("X-Road-Client", "str"),
    "xid": HeaderParameter("X-Road-Id", "str"),
    "iat": HeaderParameter("signing time, seconds since the epoch", "int"),
}


def _registry(algorithm: str) -> jws.JWSRegistry:
    registry = jws.JWSRegistry(header_registry=_HUB_HEADERS, algorithms=[algorithm])
    registry.max_payload_length = _MAX_PAYLOAD
    registry.max_header_length = 4096
    return registry


@dataclass(frozen=True)
class VerifiedJws:
    """What a verified JWS vouches for: the payload bytes, the protected header, the signer."""

    payload: bytes
    header: Mapping[str, Any]
    signer: ValidatedSigner
    algorithm: str
    kid: str


def _b64url_json(segment: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise SignatureInvalid(Reason.BAD_HEADER, f"protected header is not base64url JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SignatureInvalid(Reason.BAD_HEADER, "protected header is not a JSON object")
    return value


def _check_key_type(algorithm: str, key: object) -> None:
    if algorithm in {"RS256", "PS256"} and not isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        raise SignatureInvalid(Reason.BAD_HEADER, f"{algorithm} needs an RSA key")
    if algorithm == "ES256" and not (
        isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey)
        and key.curve.name == "secp256r1"
    ):
        raise SignatureInvalid(Reason.BAD_HEADER, "ES256 needs a P-256 key")


def _jose_key(key: Any) -> jwk.RSAKey | jwk.ECKey:
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return jwk.RSAKey.import_key(key)
    return jwk.ECKey.import_key(key)


def sign_jws(
    payload: bytes,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    kid: str,
    algorithm: str = "RS256",
    detached: bool = True,
    encode_payload: bool = True,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Return a compact JWS over ``payload``; detached (empty payload segment) by default.

    ``encode_payload=False`` produces an RFC 7797 ``b64: false`` signature over the raw bytes.

    Raises:
        SigningFailed: the algorithm is not allowed, does not fit the key, or a header is refused.
    """
    if algorithm not in ALLOWED_JWS_ALGORITHMS:
        raise SigningFailed(f"JWS algorithm {algorithm} is not allowed")
    extra = dict(headers or {})
    if _KEY_HEADERS & extra.keys() or {"alg", "kid", "b64", "crit"} & extra.keys():
        raise SigningFailed("headers may not set alg, kid, b64, crit or carry a key")
    try:
        _check_key_type(algorithm, key)
    except SignatureInvalid as exc:
        raise SigningFailed(exc.detail) from exc
    protected: dict[str, Any] = {"alg": algorithm, "kid": kid, **extra}
    if not encode_payload:
        protected.update({"b64": False, "crit": ["b64"]})
    try:
        token = jws.serialize_compact(protected, payload, _jose_key(key), registry=_registry(algorithm))
    except (JoseError, ValueError) as exc:
        raise SigningFailed(str(exc)) from exc
    return jws.detach_content(token) if detached else token


def verify_jws(
    token: str,
    trust: TrustStore,
    *,
    payload: bytes | None = None,
    algorithms: frozenset[str] = ALLOWED_JWS_ALGORITHMS,
    at: datetime | None = None,
    member_id: str | None = None,
) -> VerifiedJws:
    """Verify a compact JWS (detached when ``payload`` is given) with the key its ``kid`` names in ``trust``.

    Raises:
        SignatureInvalid: UNSUPPORTED_ALGORITHM, KEY_IN_HEADER, BAD_HEADER, UNKNOWN_KEY, BAD_SIGNATURE,
            WRONG_MEMBER, or any trust store reason (UNTRUSTED_SIGNER, EXPIRED, REVOKED, ...).
    """
    if not algorithms <= ALLOWED_JWS_ALGORITHMS:
        raise SignatureInvalid(Reason.CONFIG, f"algorithms outside {sorted(ALLOWED_JWS_ALGORITHMS)}")
    if len(token) > _MAX_TOKEN or token.count(".") != 2:
        raise SignatureInvalid(Reason.BAD_HEADER, "not a compact JWS")
    header_segment, payload_segment, _ = token.split(".")
    header = _b64url_json(header_segment)
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in algorithms:
        raise SignatureInvalid(Reason.UNSUPPORTED_ALGORITHM, f"JWS alg {algorithm!r} is not allowed")
    if _KEY_HEADERS & header.keys():
        raise SignatureInvalid(Reason.KEY_IN_HEADER, f"header carries {sorted(_KEY_HEADERS & header.keys())}")
    crit = header.get("crit", [])
    if (
        not isinstance(crit, list)
        or not set(crit) <= _UNDERSTOOD_CRIT
        or ("b64" in header) != ("b64" in crit)
    ):
        raise SignatureInvalid(Reason.BAD_HEADER, f"unsupported crit {crit!r}")
    if "b64" in header and not isinstance(header["b64"], bool):
        raise SignatureInvalid(Reason.BAD_HEADER, "b64 must be a boolean")
    if payload is not None and payload_segment:
        raise SignatureInvalid(Reason.BAD_HEADER, "detached JWS expected, payload segment present")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise SignatureInvalid(Reason.UNKNOWN_KEY, "JWS header has no kid")
    certificate = trust.certificate_for_kid(kid)
    signer = trust.validate(certificate, at=at)
    public_key = certificate.public_key()
    _check_key_type(algorithm, public_key)
    try:
        verified = jws.deserialize_compact(
            token, _jose_key(public_key), payload=payload, registry=_registry(algorithm)
        )
    except (JoseError, ValueError) as exc:
        raise SignatureInvalid(Reason.BAD_SIGNATURE, f"JWS signature does not verify: {exc}") from exc
    if member_id is not None and signer.member_id != member_id:
        raise SignatureInvalid(
            Reason.WRONG_MEMBER, f"kid {kid} is bound to {signer.member_id!r}, not {member_id!r}"
        )
    return VerifiedJws(
        payload=verified.payload,
        header=MappingProxyType(dict(verified.headers())),
        signer=signer,
        algorithm=algorithm,
        kid=kid,
    )
