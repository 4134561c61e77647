"""The transform registry: named pure functions a spec chains after a source expression.

A transform is either a plain function `f(value, *args, **kwargs) -> value` (what integrators
register, by entry point group `lgsp_hub.transforms`), or a factory `make(*args, **kwargs)`
returning a unary function, used by built-ins that check their arguments once, at load time.
"""

import functools
import importlib.metadata
import inspect
import keyword
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from mappings import _builtins
from mappings.errors import RegistryError

ENTRY_POINT_GROUP = "lgsp_hub.transforms"

Unary = Callable[[Any], Any]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class TransformRegistry:
    """An immutable set of named transforms; `with_*` methods return a new registry.

    Example:
        registry = TransformRegistry.default().with_functions({"slug": my_slug})
    """

    def __init__(
        self,
        functions: Mapping[str, Callable[..., Any]] | None = None,
        factories: Mapping[str, Callable[..., Unary]] | None = None,
        *,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self._functions = MappingProxyType(dict(functions or {}))
        self._factories = MappingProxyType(dict(factories or {}))
        self._sources = MappingProxyType(dict(sources or {}))
        for name in (*self._functions, *self._factories):
            _check(name, self._functions.get(name) or self._factories[name], self._sources.get(name))
        both = set(self._functions) & set(self._factories)
        if both:
            name = sorted(both)[0]
            raise RegistryError(f"transform '{name}' is registered twice", name=name)

    @classmethod
    def builtin(cls) -> "TransformRegistry":
        """The built-in transforms only."""
        return cls(
            _builtins.FUNCTIONS,
            _builtins.FACTORIES,
            sources=dict.fromkeys((*_builtins.FUNCTIONS, *_builtins.FACTORIES), "builtin"),
        )

    @classmethod
    def default(cls) -> "TransformRegistry":
        """The built-ins plus every transform installed under the `lgsp_hub.transforms` entry points.

        Raises:
            RegistryError: an entry point fails to import, is not callable, or reuses a name.
        """
        return cls.builtin().with_entry_points()

    def with_functions(
        self, functions: Mapping[str, Callable[..., Any]], *, source: str = "code"
    ) -> "TransformRegistry":
        """A registry with these plain functions added.

        Raises:
            RegistryError: a name is taken or invalid, or a value is not callable.
        """
        for name in functions:
            if name in self:
                raise RegistryError(
                    f"transform '{name}' from {source} is already registered by {self._sources.get(name)}",
                    name=name,
                    source=source,
                )
        sources = {**self._sources, **dict.fromkeys(functions, source)}
        return TransformRegistry({**self._functions, **functions}, self._factories, sources=sources)

    def with_entry_points(
        self, entry_points: Iterable[importlib.metadata.EntryPoint] | None = None
    ) -> "TransformRegistry":
        """A registry with the transforms of these entry points (default: the installed ones) added.

        Raises:
            RegistryError: an entry point fails to import, is not callable, or reuses a name.
        """
        if entry_points is None:
            entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        registry = self
        for ep in entry_points:
            source = f"entry point '{ep.name} = {ep.value}'"
            try:
                function = ep.load()
            except Exception as exc:  # any import failure of a plugin is refused the same way
                raise RegistryError(
                    f"transform {source} failed to load ({type(exc).__name__}: {exc}); "
                    "is the package that provides it installed?",
                    name=ep.name,
                    source=source,
                ) from exc
            registry = registry.with_functions({ep.name: function}, source=source)
        return registry

    def __contains__(self, name: object) -> bool:
        return name in self._functions or name in self._factories

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted((*self._functions, *self._factories))

    def bind(self, name: str, args: Any = None) -> Unary:
        """The unary function for `name` with its spec arguments bound.

        `args` is None (no arguments), a mapping (keyword arguments; a Python keyword such as `from`
        is passed as `from_`), a list (positional) or one scalar (one positional argument).

        Raises:
            KeyError: no such transform.
            TypeError, ValueError: the arguments do not fit the transform.
        """
        positional, named = _split_args(args)
        factory = self._factories.get(name)
        if factory is not None:
            return factory(*positional, **named)
        function = self._functions[name]
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):  # some C functions have none; their arguments fail at call time
            signature = None
        if signature is not None:
            signature.bind(None, *positional, **named)
        if not positional and not named:
            return function
        return functools.partial(function, *positional, **named)


def _check(name: str, function: object, source: str | None) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(
            f"transform name {name!r} ({source}) must match {_NAME.pattern}", name=str(name), source=source
        )
    if not callable(function):
        raise RegistryError(f"transform '{name}' ({source}) is not callable", name=name, source=source)


def _split_args(args: Any) -> tuple[list[Any], dict[str, Any]]:
    if args is None:
        return [], {}
    if isinstance(args, Mapping):
        return [], {f"{k}_" if keyword.iskeyword(k) else k: v for k, v in args.items()}
    if isinstance(args, list):
        return list(args), {}
    return [args], {}
