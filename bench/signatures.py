"""Signature throughput: XML-DSig verify/sign (2 KB, 200 KB), JWS verify/sign, raw RSA-2048 verify.

    python bench/signatures.py [--quick] [--profile] [--rounds N]

Prints a table and, as its last line, ``RATIO xmldsig-verify-2k/raw-rsa-verify <value>``. Verification
runs through the real policy and trust store (chain validated once per signer, then cached).

Every operation runs in ``--rounds`` short rounds, interleaved with all the others, and its best round
is reported: on a shared machine a load spike then slows one round of every operation instead of the
whole measurement of one, and the ratio compares like with like.
"""

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from signing.jws import sign_jws, verify_jws
from signing.pki import issue_certificate, make_ca
from signing.trust import RevocationMode, TrustStore, certificate_kid
from signing.xmldsig import SignaturePolicy, sign_xml, verify_xml


def document(size: int) -> bytes:
    """An edXML-like document of about ``size`` bytes."""
    item = b"<Item><Code>000.00.00.H40</Code><Name>Don vi hanh chinh</Name><Value>12345</Value></Item>"
    count = max(1, (size - 120) // len(item))
    return b'<Doc xmlns="urn:lgsp"><Header><To>H40</To></Header><Body>' + item * count + b"</Body></Doc>"


def rate(call: Callable[[], object], seconds: float) -> float:
    call()
    done, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(10):
            call()
        done += 10
        now = time.perf_counter()
        if now >= deadline or done >= 1_000_000:
            return done / (now - start)


def rates(calls: dict[str, Callable[[], object]], seconds: float, rounds: int) -> dict[str, float]:
    """The best per-round rate of each call, the rounds of all calls interleaved."""
    best = dict.fromkeys(calls, 0.0)
    for _ in range(rounds):
        for name, call in calls.items():
            best[name] = max(best[name], rate(call, seconds / rounds))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--profile", action="store_true", help="profile 2 KB verification and print the top")
    parser.add_argument(
        "--rounds", type=int, default=10, help="interleaved rounds per operation (best counts)"
    )
    args = parser.parse_args()
    seconds = 0.3 if args.quick else 3.0

    ca = make_ca()
    member = issue_certificate(ca, "VN/GOV/000.00.00.H40")
    trust = TrustStore(anchors=[ca.certificate], signers=[member.certificate], revocation=RevocationMode.OFF)
    policy = SignaturePolicy(trust=trust)
    docs = {"2k": document(2 * 1024), "200k": document(200 * 1024)}
    signed = {name: sign_xml(doc, member.key, member.certificate) for name, doc in docs.items()}
    kid = certificate_kid(member.certificate)
    body = docs["2k"]
    token = sign_jws(body, member.key, kid=kid, encode_payload=False)
    public_key = member.certificate.public_key()
    raw_signature = member.key.sign(b"x" * 64, padding.PKCS1v15(), hashes.SHA256())

    calls: dict[str, Callable[[], object]] = {}
    for name in docs:
        calls[f"xmldsig-verify-{name}"] = lambda n=name: verify_xml(signed[n], policy)
        calls[f"xmldsig-sign-{name}"] = lambda n=name: sign_xml(docs[n], member.key, member.certificate)
    calls["jws-verify-2k"] = lambda: verify_jws(token, trust, payload=body)
    calls["jws-sign-2k"] = lambda: sign_jws(body, member.key, kid=kid, encode_payload=False)
    calls["raw-rsa-verify"] = lambda: public_key.verify(
        raw_signature, b"x" * 64, padding.PKCS1v15(), hashes.SHA256()
    )
    calls["raw-rsa-sign"] = lambda: member.key.sign(b"x" * 64, padding.PKCS1v15(), hashes.SHA256())
    results = list(rates(calls, seconds, max(1, args.rounds)).items())

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(300 if args.quick else 3000):
            verify_xml(signed["2k"], policy)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)

    print(f"{'operation':<24}{'ops/s':>12}{'us/op':>12}")
    for name, per_second in results:
        print(f"{name:<24}{per_second:>12.0f}{1e6 / per_second:>12.1f}")
    figures = dict(results)
    print(
        f"RATIO xmldsig-verify-2k/raw-rsa-verify {figures['xmldsig-verify-2k'] / figures['raw-rsa-verify']:.3f}"
    )


if __name__ == "__main__":
    main()
