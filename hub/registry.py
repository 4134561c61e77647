"""Connector registry: connector types found by entry point, validated at registration, built by name.

Types come from the entry-point group ``lgsp_hub.connectors`` (or are registered directly, which is
how tests and embedders add their own). Registration refuses, loudly and with a hint: a duplicate
name, something that is not a Connector, a type without operations. Building refuses a service
that names an unknown operation and settings the type's ``Settings`` model rejects.
"""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from hub.connector import ANY_OPERATION, Connector, ConnectorContext
from hub.errors import RegistryError
from hub.identifiers import ServiceId
from hub.settings import ConnectorInstance, Settings, explain_errors

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "lgsp_hub.connectors"


@dataclass(frozen=True, slots=True)
class Binding:
    """A service bound to a built connector instance and one of its operations."""

    service: ServiceId
    instance: str
    operation: str
    connector: Connector
    config: ConnectorInstance


class ConnectorRegistry:
    """Connector types by name."""

    def __init__(self, types: Iterable[type[Connector]] = ()) -> None:
        self._types: dict[str, type[Connector]] = {}
        self._pending: dict[str, EntryPoint] = {}
        for kind in types:
            self.register(kind)

    @classmethod
    def from_entry_points(cls) -> "ConnectorRegistry":
        """Discover connector types installed under ``lgsp_hub.connectors``; each loads when first used.

        Raises:
            RegistryError: two installed packages declare the same connector name.
        """
        registry = cls()
        for point in entry_points(group=ENTRY_POINT_GROUP):
            other = registry._pending.get(point.name)
            if other is not None and other.value != point.value:
                raise RegistryError(
                    f"connector {point.name!r} is declared twice ({other.value} and {point.value}); "
                    "uninstall one of the packages",
                    connector=point.name,
                )
            registry._pending[point.name] = point
        return registry

    def _load(self, name: str) -> None:
        point = self._pending.pop(name)
        try:
            kind = point.load()
        except Exception as exc:
            raise RegistryError(
                f"connector {name!r}: cannot import {point.value!r} ({exc}); "
                "is the package that provides it installed?",
                connector=name,
            ) from exc
        self.register(kind, name=name)

    def load_all(self) -> None:
        """Import every discovered connector type now (used by `lgsp check-config`)."""
        for name in list(self._pending):
            self._load(name)

    def register(self, kind: Any, *, name: str | None = None) -> None:
        """Add a connector type.

        Raises:
            RegistryError: duplicate name, not a Connector subclass, or no operations declared.
        """
        label = str(name or getattr(kind, "name", None) or repr(kind))
        if not (isinstance(kind, type) and issubclass(kind, Connector)):
            raise RegistryError(
                f"connector {label!r}: {kind!r} is not a subclass of hub.connector.Connector", connector=label
            )
        declared = getattr(kind, "name", None)
        if not declared:
            raise RegistryError(f"connector {label!r}: the class sets no `name`", connector=label)
        if name is not None and name != declared:
            raise RegistryError(
                f"connector {name!r}: the entry point name differs from the class name {declared!r}; "
                "make them equal",
                connector=name,
            )
        if declared in self._types and self._types[declared] is not kind:
            raise RegistryError(
                f"connector {declared!r} is registered twice ({self._types[declared].__module__} and "
                f"{kind.__module__}); uninstall one of them",
                connector=declared,
            )
        if not kind.operations:
            raise RegistryError(f"connector {declared!r} declares no operations", connector=declared)
        self._types[declared] = kind

    def names(self) -> list[str]:
        return sorted({*self._types, *self._pending})

    def get(self, name: str) -> type[Connector]:
        if name in self._pending:
            self._load(name)
        try:
            return self._types[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise RegistryError(
                f"no connector type {name!r} is installed (installed: {known}); "
                "install the package that provides it or fix connectors.<name>.type",
                connector=name,
            ) from None

    def build(self, instance: str, config: ConnectorInstance, context: ConnectorContext) -> Connector:
        """Validate an instance's settings with its type's model and build it.

        Raises:
            RegistryError: unknown type or invalid settings (the message names the key).
        """
        kind = self.get(config.type)
        try:
            settings = kind.Settings.model_validate(dict(config.settings))
        except ValidationError as exc:
            problems = "; ".join(explain_errors(exc, kind.Settings))
            raise RegistryError(
                f"connector {instance!r} ({config.type}): invalid settings: {problems}; "
                f"fix connectors.{instance}.settings in the configuration",
                connector=instance,
            ) from exc
        return kind.create(settings, context)

    def check_operation(self, instance: str, config: ConnectorInstance, operation: str) -> None:
        kind = self.get(config.type)
        if ANY_OPERATION in kind.operations or operation in kind.operations:
            return
        raise RegistryError(
            f"connector {instance!r} ({config.type}) has no operation {operation!r} "
            f"(it offers: {', '.join(sorted(kind.operations))}); fix the service's `operation`",
            connector=instance,
        )


def operation_for(service: ServiceId, operation: str | None) -> str:
    """A service's operation: configured, or its service code."""
    return operation or service.service_code


def bind_services(
    settings: Settings,
    registry: ConnectorRegistry,
    *,
    instances: Iterable[str] | None = None,
    context_for: Any = None,
) -> dict[ServiceId, Binding]:
    """Build the connector instances the services use (optionally only `instances`) and bind them.

    Raises:
        RegistryError: a type is missing, an operation unknown, or settings invalid.
    """
    wanted = set(instances) if instances is not None else None
    if wanted is not None:
        unknown = wanted - set(settings.connectors)
        if unknown:
            raise RegistryError(
                f"no connector instance named {', '.join(sorted(unknown))} in the configuration "
                f"(configured: {', '.join(sorted(settings.connectors)) or 'none'})",
                connector=sorted(unknown)[0],
            )
    built: dict[str, Connector] = {}
    bindings: dict[ServiceId, Binding] = {}
    for service, service_settings in settings.service_ids().items():
        name = service_settings.connector
        config = settings.connectors[name]
        operation = operation_for(service, service_settings.operation)
        registry.check_operation(name, config, operation)
        if wanted is not None and name not in wanted:
            continue
        if name not in built:
            context = context_for(name) if context_for else ConnectorContext(instance=name)
            built[name] = registry.build(name, config, context)
        bindings[service] = Binding(service, name, operation, built[name], config)
    return bindings


def services_by_instance(bindings: Mapping[ServiceId, Binding]) -> dict[str, list[ServiceId]]:
    grouped: dict[str, list[ServiceId]] = {}
    for service, binding in bindings.items():
        grouped.setdefault(binding.instance, []).append(service)
    return grouped


__all__ = [
    "ENTRY_POINT_GROUP",
    "Binding",
    "ConnectorRegistry",
    "bind_services",
    "operation_for",
    "services_by_instance",
]
