"""File commands for signatures and a development PKI; the lead mounts ``app`` into the ``lgsp`` CLI.

python -m signing.cli pki init DIR
python -m signing.cli pki issue DIR MEMBER_ID
python -m signing.cli pki revoke DIR SERIAL
python -m signing.cli sign FILE --key KEY --cert CERT -o OUT
python -m signing.cli verify FILE --trust CA_PEM [--crl CRL] [--legacy-sha1]
"""

from pathlib import Path
from typing import Annotated

import typer

from signing.errors import SigningError
from signing.pki import DevPki
from signing.trust import RevocationMode, TrustStore, load_certificates
from signing.xmldsig import SignaturePolicy, load_private_key, sign_xml, verify_xml

__all__ = ["app"]

app = typer.Typer(help="XML signatures and a development PKI.", no_args_is_help=True)
pki_app = typer.Typer(help="Development PKI: a dev CA, the hub certificate, member certificates, a CRL.")
app.add_typer(pki_app, name="pki")


def _fail(message: str) -> None:
    typer.echo(message)
    raise typer.Exit(1)


@pki_app.command("init")
def pki_init(directory: Annotated[Path, typer.Argument(help="Directory for the dev PKI.")]) -> None:
    """Create a dev CA, the hub's key and certificate, and an empty CRL."""
    try:
        DevPki(directory).init()
    except SigningError as exc:
        _fail(f"error: {exc}")
    typer.echo(f"dev PKI in {directory}: ca.pem, hub.pem, hub.key, crl.pem")


@pki_app.command("issue")
def pki_issue(
    directory: Annotated[Path, typer.Argument(help="Directory of the dev PKI.")],
    member_id: Annotated[str, typer.Argument(help='Member id, e.g. "VN/GOV/000.00.00.H40".')],
) -> None:
    """Issue a member key and a certificate that carries the member id."""
    pki = DevPki(directory)
    try:
        issued = pki.issue(member_id)
    except SigningError as exc:
        _fail(f"error: {exc}")
        return
    key_path, cert_path = pki.member_paths(member_id)
    typer.echo(f"{cert_path} {key_path} serial={issued.certificate.serial_number:x}")


@pki_app.command("revoke")
def pki_revoke(
    directory: Annotated[Path, typer.Argument(help="Directory of the dev PKI.")],
    serial: Annotated[str, typer.Argument(help="Certificate serial number (hex, as pki issue prints it).")],
) -> None:
    """Add a certificate serial to the CRL and re-sign it."""
    try:
        number = int(serial, 16)
    except ValueError:
        _fail(f"error: serial {serial!r} is not hexadecimal")
        return
    try:
        crl = DevPki(directory).revoke(number)
    except SigningError as exc:
        _fail(f"error: {exc}")
        return
    typer.echo(f"revoked {number:x}; CRL now lists {len(list(crl))} certificate(s)")


@app.command("sign")
def sign(
    file: Annotated[Path, typer.Argument(help="XML document to sign.")],
    key: Annotated[Path, typer.Option("--key", help="PEM private key.")],
    cert: Annotated[Path, typer.Option("--cert", help="PEM certificate (chain) of the key.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the signed document.")],
) -> None:
    """Sign FILE with an enveloped XML signature (RSA-SHA256, exclusive c14n)."""
    try:
        signed = sign_xml(
            file.read_bytes(), load_private_key(key.read_bytes()), load_certificates(cert.read_bytes())
        )
    except (OSError, SigningError) as exc:
        _fail(f"error: {exc}")
        return
    out.write_bytes(signed)
    typer.echo(f"signed {file} -> {out}")


@app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="Signed XML document.")],
    trust: Annotated[Path, typer.Option("--trust", help="PEM file of trusted CA certificates.")],
    crl: Annotated[
        list[Path] | None, typer.Option("--crl", help="CRL file (repeatable); enables revocation.")
    ] = None,
    legacy_sha1: Annotated[bool, typer.Option("--legacy-sha1", help="Accept RSA-SHA1 / SHA-1.")] = False,
    excise_empty_xmlns: Annotated[
        bool, typer.Option("--excise-empty-xmlns", help="edXML interop: default-namespace inclusive c14n.")
    ] = False,
) -> None:
    """Verify FILE; print the signer's subject (exit 0) or one line with the reason (exit 1)."""
    try:
        store = TrustStore.from_files(
            anchors=[trust],
            crls=crl or [],
            revocation=RevocationMode.REQUIRED if crl else RevocationMode.OFF,
        )
        policy = SignaturePolicy(
            trust=store, legacy_sha1=legacy_sha1, location=".//", excise_empty_xmlns=excise_empty_xmlns
        )
        verified = verify_xml(file.read_bytes(), policy)
    except SigningError as exc:
        _fail(f"invalid: {exc.reason.value}: {' '.join(exc.detail.split())[:300]}")
        return
    except OSError as exc:
        _fail(f"invalid: cannot read input: {exc}")
        return
    typer.echo(verified.signer.subject)


if __name__ == "__main__":
    app()
