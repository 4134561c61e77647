"""YAML loading that keeps line numbers and refuses duplicate keys (plain PyYAML merges them)."""

from typing import Any

import yaml

from mappings.errors import SpecError


class Located(dict[str, Any]):
    """A YAML mapping that remembers the (1-based) line of itself and of each of its keys."""

    def __init__(self, *args: Any, line: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line = line
        self.lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        return self.lines.get(key, self.line)


class LocatedList(list[Any]):
    """A YAML sequence that remembers the (1-based) line of itself and of each item."""

    def __init__(self, *args: Any, line: int = 0) -> None:
        super().__init__(*args)
        self.line = line
        self.lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.lines[index] if 0 <= index < len(self.lines) else self.line


def plain(value: Any) -> Any:
    """`value` with every Located/LocatedList turned back into a plain dict/list."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class _LineLoader(yaml.SafeLoader):
    def construct_located(self, node: yaml.MappingNode) -> Any:
        data = Located(line=node.start_mark.line + 1)
        yield data
        own = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
        self.flatten_mapping(node)  # puts the pairs of `<<: *anchor` merges first
        merged = len(node.value) - own
        own_keys: set[Any] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node, deep=False)
            try:
                hash(key)
            except TypeError as exc:
                raise yaml.constructor.ConstructorError(
                    None, None, "found an unhashable key", key_node.start_mark
                ) from exc
            # A key may override a merged one; equal keys spelt differently (1, 0x1) escape the node walk.
            if key in own_keys:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {data.lines[key]})",
                    key_node.start_mark,
                )
            data[key] = self.construct_object(value_node, deep=False)
            data.lines[key] = key_node.start_mark.line + 1
            if index >= merged:
                own_keys.add(key)

    def construct_located_list(self, node: yaml.SequenceNode) -> Any:
        data = LocatedList(line=node.start_mark.line + 1)
        data.lines = [item.start_mark.line + 1 for item in node.value]
        yield data
        data.extend(self.construct_object(item, deep=False) for item in node.value)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_located)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _LineLoader.construct_located_list)


def load_yaml(text: str, *, file: str) -> Any:
    """Parse one YAML document into plain data whose mappings are `Located`.

    Raises:
        SpecError: the text is not YAML, or a mapping repeats a key (names the line and the field).
    """
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_duplicates(node, "", "top", file, set())
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise SpecError(f"not valid YAML: {exc.problem or exc}", file=file, line=line) from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML: {exc}", file=file) from exc
    finally:
        loader.dispose()


def _refuse_duplicates(node: yaml.Node, path: str, role: str, file: str, seen: set[int]) -> None:
    # Walks the composed nodes before construction, knowing the spec's shape so that a duplicate
    # is reported with its target field path (`A[].B`), not only the raw key.
    if id(node) in seen:  # an alias: already checked, and recursive aliases must not loop
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicates(item, path, "other", file, seen)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    first: dict[str, int] = {}
    keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
    inner = f"{path}[]" if role == "rule" and "each" in keys else path
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        child_role = _child_role(role, key)
        here = inner if child_role == "rules" else path
        if key is not None and key != "<<":
            if role == "rules":
                here = f"{here}.{key}" if here else key
            if key in first:
                what = "target field" if role == "rules" else "key"
                raise SpecError(
                    f"duplicate {what} '{key}' (first at line {first[key]})",
                    file=file,
                    line=key_node.start_mark.line + 1,
                    field=here or key,
                )
            first[key] = key_node.start_mark.line + 1
        _refuse_duplicates(value_node, here, child_role, file, seen)


def _child_role(role: str, key: str | None) -> str:
    # The spec's shape: top `fields:` and a rule's `fields:`/`object:` hold target fields (rules);
    # each target field holds a rule body.
    if role in ("top", "rule") and key in ("fields", "object"):
        return "rules"
    if role == "rules":
        return "rule"
    return "other"
