"""The `lgsp` command line: help, exit codes, init, check-config, services, maintenance, demo."""

import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from hub.cli import EXIT_CONFIG, app

runner = CliRunner()


def write_config(path: Path, **extra: object) -> Path:
    data = {
        "store": {"url": f"sqlite+aiosqlite:///{path.parent}/cli.db"},
        "members": {"VN/GOV/000.00.00.H40/one-stop": {"api_keys": ["k"]}},
        "connectors": {"legacy": {"type": "rest", "settings": {"base_url": "http://127.0.0.1:9000"}}},
        "services": {"VN/GOV/000.00.00.H40/records/r/v1": {"connector": "legacy"}},
        "acl": [{"client": "VN/GOV/000.00.00.H40/one-stop", "services": ["*"]}],
        **extra,
    }
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in (
        "serve",
        "worker",
        "demo",
        "init",
        "services",
        "check-config",
        "maintenance",
        "sandbox",
        "mapping",
        "sign",
        "verify",
        "pki",
    ):
        assert command in result.output


def test_cli_init_writes_a_valid_config_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "lgsp.yaml"
    assert runner.invoke(app, ["init", str(target)]).exit_code == 0
    assert runner.invoke(app, ["check-config", "-c", str(target)]).exit_code == 0
    again = runner.invoke(app, ["init", str(target)])
    assert again.exit_code == EXIT_CONFIG and "exists" in again.output


def test_cli_check_config_names_the_wrong_key_with_exit_2(tmp_path: Path) -> None:
    path = write_config(tmp_path / "bad.yaml", gatway={"port": 1})
    result = runner.invoke(app, ["check-config", "-c", str(path)])
    assert result.exit_code == EXIT_CONFIG
    assert "unknown key 'gatway' (did you mean 'gateway'?)" in result.output


def test_cli_check_config_refuses_bad_connector_settings(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml")
    data = yaml.safe_load(path.read_text())
    data["connectors"]["legacy"]["settings"] = {"base_url": "not a url"}
    path.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["check-config", "-c", str(path)])
    assert result.exit_code == EXIT_CONFIG
    assert "connector 'legacy' (rest): invalid settings: base_url" in result.output


def test_cli_services_lists_services_with_their_clients(tmp_path: Path) -> None:
    result = runner.invoke(app, ["services", "-c", str(write_config(tmp_path / "c.yaml"))])
    assert result.exit_code == 0
    assert "VN/GOV/000.00.00.H40/records/r/v1" in result.output and "one-stop" in result.output


def test_cli_maintenance_switches_and_reports(tmp_path: Path) -> None:
    path = str(write_config(tmp_path / "c.yaml"))
    assert "maintenance: on" in runner.invoke(app, ["maintenance", "on", "-c", path]).output
    assert "maintenance: on" in runner.invoke(app, ["maintenance", "status", "-c", path]).output
    assert "maintenance: off" in runner.invoke(app, ["maintenance", "off", "-c", path]).output
    assert runner.invoke(app, ["maintenance", "sideways", "-c", path]).exit_code == EXIT_CONFIG


def test_cli_worker_refuses_the_embedded_broker(tmp_path: Path) -> None:
    result = runner.invoke(app, ["worker", "-c", str(write_config(tmp_path / "c.yaml"))])
    assert result.exit_code == EXIT_CONFIG and "embedded broker" in result.output


def test_cli_sandbox_refuses_an_unknown_name() -> None:
    result = runner.invoke(app, ["sandbox", "nowhere"])
    assert result.exit_code == EXIT_CONFIG and "no sandbox 'nowhere'" in result.output


def test_cli_unreachable_store_exits_3(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", store={"url": "postgresql+asyncpg://nobody@127.0.0.1:1/none"})
    result = runner.invoke(app, ["maintenance", "status", "-c", str(path)])
    assert result.exit_code == 3


def test_cli_demo_runs_every_scenario_and_exits_0() -> None:
    # The README's first command ends in `lgsp demo`: run it as a user would, as a process.
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "demo"], capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "scenarios behaved as expected" in result.stdout
    behaved, total = result.stdout.rsplit(" scenarios behaved", 1)[0].split()[-1].split("/")
    assert behaved == total and int(total) >= 6
