"""A compiled mapping spec and the engine that applies it.

The rule tree is built once by the loader; `Spec.apply` builds a fresh document from the source and
never mutates it. A failing field raises an internal `_Fail` whose path segments are collected while
it unwinds, so a successful apply pays nothing for error paths.
"""

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jmespath.exceptions import JMESPathError

from mappings.codes import CodeTable
from mappings.errors import MappingError
from mappings.xml import XmlTemplate

Getter = Callable[[Any], Any]
Unary = Callable[[Any], Any]

OMIT: Any = object()  # the field is not emitted
NO_DEFAULT: Any = object()
_CONTAINERS = (dict, list)


class _Fail(Exception):
    def __init__(self, cause: str, exc: BaseException | None = None) -> None:
        self.cause = cause
        self.exc = exc
        self.segments: list[str | int] = []  # innermost first: field names and list indexes


class Rule:
    """One target field's rule; `evaluate(context)` returns the value or OMIT."""

    __slots__ = ("default", "required")

    def __init__(self, *, default: Any = NO_DEFAULT, required: bool = False) -> None:
        self.default = default
        self.required = required

    def evaluate(self, context: Any) -> Any:
        raise NotImplementedError

    def absent(self) -> Any:
        if self.default is not NO_DEFAULT:
            default = self.default
            return copy.deepcopy(default) if type(default) in _CONTAINERS else default
        if self.required:
            raise _Fail("required field is missing")
        return OMIT


class ValueRule(Rule):
    """`from:` a JMESPath expression, then a chain of transforms."""

    __slots__ = ("expression", "finish", "get", "key", "names", "transforms")

    def __init__(
        self,
        expression: str,
        get: Getter,
        transforms: tuple[Unary, ...] = (),
        names: tuple[str, ...] = (),
        key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.expression = expression
        self.get = get
        self.transforms = transforms
        self.names = names
        self.key = key  # set when the expression is one plain field: `build` reads it inline
        # `finish` (source value -> target value) is picked once, for the chain's length.
        self.finish: Unary = self._finish_chain
        if not transforms:
            self.finish = self._finish_plain
        elif len(transforms) == 1:
            self.finish = self._finish_one

    def evaluate(self, context: Any) -> Any:
        try:
            value = self.get(context)
        except JMESPathError as exc:
            raise _Fail(f"source expression {self.expression!r} failed: {exc}", exc) from exc
        return self.finish(value)

    def _finish_plain(self, value: Any) -> Any:
        if value is None:
            return self.absent()
        return copy.deepcopy(value) if type(value) in _CONTAINERS else value

    def _finish_one(self, value: Any) -> Any:
        if value is None:
            return self.absent()
        try:
            value = self.transforms[0](value)
        except Exception as exc:  # transforms include integrators' plugins: any failure is this field's
            raise _Fail(f"transform '{self.names[0]}' failed: {exc}", exc) from exc
        return self.absent() if value is None else value

    def _finish_chain(self, value: Any) -> Any:
        if value is None:
            return self.absent()
        try:
            for transform in self.transforms:
                value = transform(value)
        except Exception as exc:  # as above
            name = self.names[self.transforms.index(transform)]
            raise _Fail(f"transform '{name}' failed: {exc}", exc) from exc
        return self.absent() if value is None else value


class ConstRule(Rule):
    """`const:` a literal value."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value

    def evaluate(self, context: Any) -> Any:
        value = self.value
        return copy.deepcopy(value) if type(value) in _CONTAINERS else value


class ObjectRule(Rule):
    """`object:` nested fields, read from the same context or from `from:` when given."""

    __slots__ = ("expression", "get", "plan")

    def __init__(
        self,
        fields: tuple[tuple[str, Rule], ...],
        get: Getter | None = None,
        expression: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # (name, key, finish, evaluate): a one-field `from` is read with dict.get right here, which
        # saves two calls per field on the hot path; anything else goes through `evaluate`.
        self.plan = tuple(
            (name, rule.key, rule.finish, rule.evaluate)
            if isinstance(rule, ValueRule) and rule.key is not None
            else (name, None, rule.evaluate, rule.evaluate)
            for name, rule in fields
        )
        self.get = get
        self.expression = expression

    def evaluate(self, context: Any) -> Any:
        if self.get is not None:
            try:
                context = self.get(context)
            except JMESPathError as exc:
                raise _Fail(f"source expression {self.expression!r} failed: {exc}", exc) from exc
            if context is None:
                return self.absent()
        return self.build(context)

    def build(self, context: Any) -> dict[str, Any]:
        out = {}
        fast = type(context) is dict
        for name, key, finish, evaluate in self.plan:
            try:
                value = finish(context.get(key)) if fast and key is not None else evaluate(context)
            except _Fail as fail:
                fail.segments.append(name)
                raise
            if value is not OMIT:
                out[name] = value
        return out


class EachRule(Rule):
    """`each:` a list (a single object counts as a one-item list); `fields` map every item."""

    __slots__ = ("build", "expression", "get")

    def __init__(self, expression: str, get: Getter, item: ObjectRule, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.expression = expression
        self.get = get
        self.build = item.build

    def evaluate(self, context: Any) -> Any:
        try:
            items = self.get(context)
        except JMESPathError as exc:
            raise _Fail(f"source expression {self.expression!r} failed: {exc}", exc) from exc
        if items is None:
            return self.absent()
        if type(items) is not list:
            if not isinstance(items, Mapping):
                raise _Fail(f"`each: {self.expression}` gives a {type(items).__name__}, not a list")
            items = [items]
        build = self.build
        out = []
        for index, item in enumerate(items):
            try:
                out.append(build(item))
            except _Fail as fail:
                fail.segments.append(index)
                raise
        return out


class WhenRule(Rule):
    """`when:` emit the inner rule only when the JMESPath condition is truthy (JMESPath truthiness)."""

    __slots__ = ("condition", "inner")

    def __init__(self, condition: Getter, inner: Rule) -> None:
        super().__init__()
        self.condition = condition
        self.inner = inner.evaluate

    def evaluate(self, context: Any) -> Any:
        try:
            flag = self.condition(context)
        except JMESPathError as exc:
            raise _Fail(f"`when` condition failed: {exc}", exc) from exc
        if flag is None or flag is False or (type(flag) in (str, list, dict) and not flag):
            return OMIT
        return self.inner(context)


@dataclass(frozen=True, eq=False)
class Spec:
    """A loaded, validated and compiled mapping spec."""

    name: str
    version: int
    file: str
    root: ObjectRule = field(repr=False)
    source: str = ""
    target: str = ""
    description: str = ""
    reversible: bool = False
    reverse: Path | None = None
    code_tables: Mapping[str, CodeTable] = field(default_factory=dict, repr=False)
    xml: XmlTemplate | None = field(default=None, repr=False)

    def apply(self, document: Any) -> dict[str, Any]:
        """Map `document` to a new target document; pure, no I/O, nothing partial on failure.

        Raises:
            MappingError: a field failed; `path` is its dotted target path, `cause` says why.
        """
        try:
            return self.root.build(document)
        except _Fail as fail:
            path = "".join(
                f"[{s}]" if isinstance(s, int) else (f".{s}" if i else s)
                for i, s in enumerate(reversed(fail.segments))
            )
            raise MappingError(path=path, cause=fail.cause, spec=self.name) from fail.exc
