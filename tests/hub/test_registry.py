"""Connector registry: found by entry point, validated at registration, refused loudly."""

from typing import Any, ClassVar

import pytest

from hub.connector import (
    Connector,
    ConnectorContext,
    ConnectorReply,
    ConnectorRequest,
    ConnectorSettings,
    Operation,
)
from hub.errors import RegistryError
from hub.registry import ConnectorRegistry, bind_services
from hub.settings import load_settings


class _Settings(ConnectorSettings):
    url: str
    timeout: float = 5.0


class Sample(Connector):
    name: ClassVar[str] = "sample"
    Settings = _Settings
    operations: ClassVar[dict[str, Operation]] = {"lookup": Operation("lookup")}

    @classmethod
    def create(cls, settings: Any, context: ConnectorContext) -> "Sample":
        return cls()

    async def call(self, request: ConnectorRequest) -> ConnectorReply:
        return ConnectorReply()


class Twin(Sample):
    pass


class NoOperations(Sample):
    name: ClassVar[str] = "empty"
    operations: ClassVar[dict[str, Operation]] = {}


def config(**service: Any) -> Any:
    return load_settings(
        data={
            "connectors": {"s": {"type": "sample", "settings": {"url": "x"}}},
            "services": {"VN/GOV/1/sub/lookup/v1": {"connector": "s", **service}},
        },
        environ={},
    )


def test_registry_finds_installed_connectors_by_entry_point() -> None:
    registry = ConnectorRegistry.from_entry_points()
    assert {"rest", "soap"} <= set(registry.names())
    assert registry.get("rest").name == "rest"


@pytest.mark.parametrize(
    ("kind", "words"),
    [(object, "not a subclass"), (NoOperations, "declares no operations")],
)
def test_register_refuses_invalid_types(kind: Any, words: str) -> None:
    with pytest.raises(RegistryError, match=words):
        ConnectorRegistry([kind])


def test_register_refuses_a_duplicate_name_naming_both() -> None:
    with pytest.raises(RegistryError, match="registered twice") as info:
        ConnectorRegistry([Sample, Twin])
    assert info.value.connector == "sample"


def test_bind_refuses_unknown_operation_and_bad_settings_naming_the_fix() -> None:
    registry = ConnectorRegistry([Sample])
    with pytest.raises(RegistryError, match="has no operation 'nothing'.*it offers: lookup"):
        bind_services(config(operation="nothing"), registry)
    bad = load_settings(
        data={
            "connectors": {"s": {"type": "sample", "settings": {}}},
            "services": {"VN/GOV/1/sub/lookup/v1": {"connector": "s"}},
        },
        environ={},
    )
    with pytest.raises(
        RegistryError, match=r"connector 's' \(sample\): invalid settings: url: Field required"
    ):
        bind_services(bad, registry)
    misspelt = load_settings(
        data={
            "connectors": {"s": {"type": "sample", "settings": {"url": "http://x", "timout": 3}}},
            "services": {"VN/GOV/1/sub/lookup/v1": {"connector": "s"}},
        },
        environ={},
    )
    with pytest.raises(
        RegistryError,
        match=r"invalid settings: unknown key 'timout' \(did you mean 'timeout'\?\); fix connectors\.s\.settings",
    ):
        bind_services(misspelt, registry)
    missing = load_settings(data={"connectors": {"s": {"type": "ghost"}}}, environ={})
    with pytest.raises(RegistryError, match="no connector type 'ghost' is installed"):
        bind_services(missing, registry) if missing.services else registry.get("ghost")


def test_bind_uses_the_service_code_as_default_operation() -> None:
    bindings = bind_services(config(), ConnectorRegistry([Sample]))
    (binding,) = bindings.values()
    assert binding.operation == "lookup" and binding.instance == "s"
