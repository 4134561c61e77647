"""Configuration: validated at start-up, every wrong key named, environment overrides."""

import hashlib
from importlib.resources import files
from pathlib import Path

import pytest

from hub.errors import ConfigError
from hub.settings import load_settings

BASE = {
    "members": {"VN/GOV/000.00.00.H40/one-stop": {"api_keys": ["k"]}},
    "connectors": {"legacy": {"type": "rest", "settings": {"base_url": "http://127.0.0.1:9000"}}},
    "services": {"VN/GOV/000.00.00.H40/records/r/v1": {"connector": "legacy"}},
    "acl": [{"client": "VN/GOV/000.00.00.H40/one-stop", "services": ["VN/GOV/000.00.00.H40/records/r/v1"]}],
}


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"brokr": {}}, "unknown key 'brokr' (did you mean 'broker'?)"),
        ({"gateway": {"prot": 1}}, "unknown key 'gateway.prot' (did you mean 'port'?)"),
        ({"broker": {"url": "http://x"}}, "broker.url: expected amqp://"),
        ({"store": {"url": "mysql://x"}}, "store.url: expected sqlite+aiosqlite"),
        ({"gateway": {"port": 70000}}, "gateway.port"),
        (
            {"services": {"VN/GOV/1/a/b": {"connector": "nope"}}},
            "services.VN/GOV/1/a/b.connector: 'nope' is not a configured connector",
        ),
        ({"services": {"VN/GOV/1": {"connector": "legacy"}}}, "has 3 parts"),
        ({"acl": [{"client": "VN/GOV", "services": ["*"]}]}, "acl[0].client"),
        (
            {"acl": [{"client": "VN/GOV/1/x", "services": ["VN/GOV/1/a/zzz"]}]},
            "acl[0].services: 'VN/GOV/1/a/zzz' is not a configured service",
        ),
    ],
)
def test_load_settings_names_the_wrong_key(data: dict, words: str) -> None:  # type: ignore[type-arg]
    merged = {**BASE, **data}
    with pytest.raises(ConfigError) as info:
        load_settings(data=merged, environ={})
    assert words in str(info.value)


def test_environment_overrides_nested_keys() -> None:
    settings = load_settings(
        data=BASE, environ={"LGSP_BROKER__URL": "amqp://u:p@h/", "LGSP_GATEWAY__PORT": "9001"}
    )
    assert settings.broker.url == "amqp://u:p@h/" and settings.gateway.port == 9001


def test_environment_override_of_unknown_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="gateway.colour"):
        load_settings(data=BASE, environ={"LGSP_GATEWAY__COLOUR": "blue"})


def test_api_keys_compare_plain_and_hashed_and_never_print() -> None:
    hashed = "sha256:" + hashlib.sha256(b"s3cret").hexdigest()
    settings = load_settings(
        data={**BASE, "members": {"VN/GOV/000.00.00.H40/one-stop": {"api_keys": ["plain", hashed]}}},
        environ={},
    )
    member = settings.members["VN/GOV/000.00.00.H40/one-stop"]
    assert member.accepts_key("plain") and member.accepts_key("s3cret")
    assert not member.accepts_key("other") and not member.accepts_key("")
    assert "plain" not in repr(member) and "s3cret" not in repr(settings)


def test_acl_grants_only_what_it_lists() -> None:
    settings = load_settings(data=BASE, environ={})
    service = next(iter(settings.service_ids()))
    assert settings.allowed("VN/GOV/000.00.00.H40/one-stop", service)
    assert not settings.allowed("VN/GOV/000.00.00.H41/one-stop", service)


def test_starter_config_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "lgsp.yaml"
    path.write_text(files("hub").joinpath("starter.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    settings = load_settings(path, environ={})
    assert settings.members["VN/GOV/000.00.00.H40/one-stop"].accepts_key("change-me")


def test_unreadable_or_non_mapping_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_settings(bad, environ={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(broken, environ={})
