"""Source expressions: JMESPath, compiled once; plain field chains get a direct getter."""

from collections.abc import Callable
from typing import Any

import jmespath
import jmespath.functions
from jmespath.exceptions import JMESPathError

Getter = Callable[[Any], Any]

_FUNCTIONS = jmespath.functions.Functions().FUNCTION_TABLE


class PathSyntaxError(ValueError):
    """The expression is not valid JMESPath, or calls an unknown function or with the wrong arity."""


def compile_path(expression: str) -> Getter:
    """A getter for one JMESPath expression; `a`, `a.b.c` and `@` skip the interpreter.

    Raises:
        PathSyntaxError: the expression does not compile.
    """
    try:
        parsed = jmespath.compile(expression)
    except JMESPathError as exc:
        raise PathSyntaxError(_describe(exc, expression)) from exc
    tree: dict[str, Any] = dict(parsed.parsed)
    _check_functions(tree)
    keys = _field_chain(tree)
    if keys is None:
        return parsed.search
    if not keys:
        return _identity
    if len(keys) == 1:
        return _one(keys[0])
    if len(keys) == 2:
        return _two(*keys)
    return _many(tuple(keys))


def single_field(expression: str) -> str | None:
    """The key when `expression` is one plain field (`name`, `"a-b"`), else None."""
    keys = _field_chain(dict(jmespath.compile(expression).parsed))
    return keys[0] if keys is not None and len(keys) == 1 else None


def _describe(exc: JMESPathError, expression: str) -> str:
    position = getattr(exc, "lex_position", None)
    message = getattr(exc, "msg", None) or str(exc).splitlines()[0]
    where = f" at column {position + 1}" if isinstance(position, int) else ""
    return f"JMESPath syntax error in {expression!r}{where}: {message}"


def _check_functions(node: dict[str, Any]) -> None:
    if node.get("type") == "function_expression":
        name = node["value"]
        entry = _FUNCTIONS.get(name)
        if entry is None:
            raise PathSyntaxError(f"unknown JMESPath function '{name}()'")
        signature = entry["signature"]
        count = len(node["children"])
        variadic = bool(signature) and signature[-1].get("variadic", False)
        if count < len(signature) or (count > len(signature) and not variadic):
            raise PathSyntaxError(
                f"JMESPath function '{name}()' takes {len(signature)} argument(s), not {count}"
            )
    for child in node.get("children", ()):
        if isinstance(child, dict):
            _check_functions(child)


def _field_chain(node: dict[str, Any]) -> list[str] | None:
    kind = node["type"]
    if kind == "current":
        return []
    if kind == "field":
        return [node["value"]]
    if kind == "subexpression":
        keys: list[str] = []
        for child in node["children"]:
            part = _field_chain(child)
            if part is None or child["type"] == "current":
                return None
            keys.extend(part)
        return keys
    return None


# The getters below keep JMESPath's semantics exactly: a field of anything that is not an object is null.
def _identity(value: Any) -> Any:
    return value


def _one(key: str) -> Getter:
    def get(value: Any) -> Any:
        return value.get(key) if type(value) is dict else _slow(value, (key,))

    return get


def _two(first: str, second: str) -> Getter:
    def get(value: Any) -> Any:
        if type(value) is dict:
            inner = value.get(first)
            if type(inner) is dict:
                return inner.get(second)
        return _slow(value, (first, second))

    return get


def _many(keys: tuple[str, ...]) -> Getter:
    def get(value: Any) -> Any:
        return _slow(value, keys)

    return get


def _slow(value: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        try:
            value = value.get(key)
        except AttributeError:
            return None
    return value
