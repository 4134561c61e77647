"""The file commands, through typer's CliRunner and as a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from signing.cli import app
from signing.pki import DevPki

MEMBER = "VN/GOV/000.00.00.H40"
DOC = '<Doc xmlns="urn:lgsp"><Amount>100</Amount></Doc>'
runner = CliRunner()


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    assert runner.invoke(app, ["pki", "init", str(directory)]).exit_code == 0
    assert runner.invoke(app, ["pki", "issue", str(directory), MEMBER]).exit_code == 0
    return directory


def _sign(pki_dir: Path, tmp_path: Path) -> Path:
    key, cert = DevPki(pki_dir).member_paths(MEMBER)
    source, out = tmp_path / "doc.xml", tmp_path / "signed.xml"
    source.write_text(DOC)
    result = runner.invoke(app, ["sign", str(source), "--key", str(key), "--cert", str(cert), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_cli_sign_then_verify_prints_signer_subject(pki_dir: Path, tmp_path: Path) -> None:
    signed = _sign(pki_dir, tmp_path)
    result = runner.invoke(
        app, ["verify", str(signed), "--trust", str(pki_dir / "ca.pem"), "--crl", str(pki_dir / "crl.pem")]
    )
    assert result.exit_code == 0, result.output
    assert MEMBER in result.output and "exc-c14n" not in result.output
    assert b"xml-exc-c14n#" in signed.read_bytes() and b"rsa-sha256" in signed.read_bytes()


def test_cli_verify_reports_digest_mismatch_in_one_line(pki_dir: Path, tmp_path: Path) -> None:
    signed = _sign(pki_dir, tmp_path)
    signed.write_bytes(signed.read_bytes().replace(b">100<", b">900<"))
    result = runner.invoke(app, ["verify", str(signed), "--trust", str(pki_dir / "ca.pem")])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "digest mismatch" in result.output


def test_cli_verify_reports_untrusted_signer(pki_dir: Path, tmp_path: Path) -> None:
    signed = _sign(pki_dir, tmp_path)
    other = tmp_path / "other"
    runner.invoke(app, ["pki", "init", str(other)])
    result = runner.invoke(app, ["verify", str(signed), "--trust", str(other / "ca.pem")])
    assert result.exit_code == 1 and "untrusted signer" in result.output


def test_cli_verify_reports_dtd_refused(pki_dir: Path, tmp_path: Path) -> None:
    attack = tmp_path / "attack.xml"
    attack.write_text('<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>')
    result = runner.invoke(app, ["verify", str(attack), "--trust", str(pki_dir / "ca.pem")])
    assert result.exit_code == 1 and "dtd refused" in result.output


def test_cli_revoke_makes_verify_report_revoked(tmp_path: Path) -> None:
    # Given a fresh PKI and a member certificate that signed a document
    directory = tmp_path / "pki"
    runner.invoke(app, ["pki", "init", str(directory)])
    issued = runner.invoke(app, ["pki", "issue", str(directory), MEMBER])
    serial = issued.output.strip().rsplit("serial=", 1)[1]
    signed = _sign(directory, tmp_path)
    # When the certificate is revoked
    assert runner.invoke(app, ["pki", "revoke", str(directory), serial]).exit_code == 0
    # Then verify with the CRL refuses it
    args = ["verify", str(signed), "--trust", str(directory / "ca.pem"), "--crl", str(directory / "crl.pem")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "revoked" in result.output


def test_cli_pki_init_refuses_existing_directory(pki_dir: Path) -> None:
    result = runner.invoke(app, ["pki", "init", str(pki_dir)])
    assert result.exit_code == 1 and "already holds" in result.output


def test_cli_runs_as_module_subprocess(pki_dir: Path, tmp_path: Path) -> None:
    signed = _sign(pki_dir, tmp_path)
    command = [sys.executable, "-m", "signing.cli", "verify", str(signed), "--trust", str(pki_dir / "ca.pem")]
    ok = subprocess.run(command, capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().endswith(MEMBER)
    signed.write_bytes(signed.read_bytes().replace(b">100<", b">101<"))
    bad = subprocess.run(command, capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert bad.returncode == 1 and bad.stdout.strip().startswith("invalid: digest mismatch")
