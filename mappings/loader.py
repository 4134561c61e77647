"""Loading specs: parse the YAML (lines kept), validate every rule, compile it once, cache it."""

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mappings._paths import PathSyntaxError, compile_path, single_field
from mappings._yaml import Located, LocatedList, load_yaml, plain
from mappings.codes import CodeTable, Unknown, read_code_table
from mappings.errors import SpecError
from mappings.spec import NO_DEFAULT, ConstRule, EachRule, ObjectRule, Rule, Spec, ValueRule, WhenRule
from mappings.transforms import TransformRegistry
from mappings.xml import XmlTemplate

SPECS_DIR = Path(__file__).parent / "specs"

_TOP_KEYS: tuple[str, ...] = ("mapping", "version", "source", "target", "description", "reversible")
_TOP_KEYS += ("reverse", "code_tables", "fields", "xml")
_RULE_KEYS: tuple[str, ...] = ("from", "const", "object", "each", "fields", "transforms", "default")
_RULE_KEYS += ("required", "when", "description")
_TABLE_KEYS = ("file", "unknown", "default", "key", "value", "invert")
_SPEC_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_SHIPPED_NAME = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*$")
_NOT_SPEC_DIRS = frozenset({"code_tables", "examples"})


_Stamp = tuple[int, int]


def _stamp(path: Path) -> _Stamp:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def _stamps(file: Path, spec: Spec) -> tuple[_Stamp, ...]:
    return (_stamp(file), *(_stamp(Path(t.file)) for t in spec.code_tables.values()))


class SpecLoader:
    """Loads and compiles spec files with one transform registry; caches by path and modification.

    Example:
        loader = SpecLoader(registry=TransformRegistry.default())
        spec = loader.load("mappings/specs/public_service_portal/dossier_to_dvcqg.yaml")
    """

    def __init__(self, registry: TransformRegistry | None = None) -> None:
        self.registry = registry if registry is not None else TransformRegistry.default()
        self._specs: dict[Path, tuple[tuple[_Stamp, ...], Spec]] = {}
        self._tables: dict[tuple[Any, ...], dict[str, Any]] = {}

    def load(self, path: str | Path) -> Spec:
        """The compiled spec in `path`, compiled on first use and again when it or a code table changes.

        Raises:
            SpecError: the spec or a code table it names is invalid (names the file, line and field).
        """
        file = Path(path).resolve()
        cached = self._specs.get(file)
        try:
            if cached is not None and cached[0] == _stamps(file, cached[1]):
                return cached[1]
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read spec: {exc}", file=str(path)) from exc
        spec = self.compile(text, file=str(path), base=file.parent)
        try:
            self._specs[file] = (_stamps(file, spec), spec)
        except OSError as exc:
            raise SpecError(f"a file changed while loading: {exc}", file=str(path)) from exc
        return spec

    def compile(self, text: str, *, file: str = "<string>", base: Path | None = None) -> Spec:
        """Compile spec text (not cached); code tables and `reverse` resolve against `base`.

        Raises:
            SpecError: the spec is invalid (names the file, line and field).
        """
        return _Compiler(self, file, base or Path.cwd()).spec(load_yaml(text, file=file))

    def table(self, path: Path, **options: Any) -> dict[str, Any]:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, *sorted(options.items()))
        codes = self._tables.get(key)
        if codes is None:
            codes = self._tables[key] = read_code_table(path, **options)
        return codes


@functools.cache
def default_loader() -> SpecLoader:
    """The loader `load_spec` and `shipped` use: built-ins plus installed entry-point transforms."""
    return SpecLoader()


def load_spec(path: str | Path, *, loader: SpecLoader | None = None) -> Spec:
    """Load, validate and compile a spec file (cached).

    Raises:
        SpecError: the spec or a code table it names is invalid.
    """
    return (loader or default_loader()).load(path)


def shipped(name: str, *, loader: SpecLoader | None = None) -> Spec:
    """A spec shipped with the library, by `<system>/<spec>` (e.g. `public_service_portal/dossier_to_dvcqg`).

    Raises:
        SpecError: no such shipped spec, or it is invalid.
    """
    path = SPECS_DIR / f"{name}.yaml"
    if not _SHIPPED_NAME.match(name) or not path.is_file():
        known = ", ".join(shipped_names())
        raise SpecError(f"no shipped spec '{name}' (shipped: {known})", file=str(path))
    return load_spec(path, loader=loader)


def shipped_names() -> list[str]:
    """The names `shipped` accepts."""
    return [p.relative_to(SPECS_DIR).with_suffix("").as_posix() for p in discover_specs(SPECS_DIR)]


def discover_specs(directory: Path) -> list[Path]:
    """Every spec file below `directory`: `*.yaml`/`*.yml` outside `code_tables/` and `examples/` folders."""

    def walk(folder: Path) -> Iterator[Path]:
        for entry in sorted(folder.iterdir()):
            if entry.is_dir() and entry.name not in _NOT_SPEC_DIRS:
                yield from walk(entry)
            elif entry.is_file() and entry.suffix in (".yaml", ".yml"):
                yield entry

    if directory.is_file():
        return [directory]
    return list(walk(directory))


class _Compiler:
    def __init__(self, loader: SpecLoader, file: str, base: Path) -> None:
        self.loader = loader
        self.file = file
        self.base = base
        self.tables: dict[str, CodeTable] = {}

    def error(self, message: str, line: int | None, field: str | None = None) -> SpecError:
        return SpecError(message, file=self.file, line=line, field=field)

    def spec(self, data: Any) -> Spec:
        if not isinstance(data, Located):
            raise self.error("a spec is a YAML mapping with `mapping`, `version` and `fields`", 1)
        self.unknown_keys(data, _TOP_KEYS, None)
        name = self.required(data, "mapping", str)
        if not _SPEC_NAME.match(name):
            raise self.error(
                f"mapping name {name!r} may use letters, digits, _ . - only", data.line_of("mapping")
            )
        version = self.required(data, "version", int)
        if isinstance(version, bool) or version < 1:
            raise self.error("`version` is a positive integer", data.line_of("version"), "version")
        texts = {key: self.optional(data, key, str, "") for key in ("source", "target", "description")}
        reversible = self.optional(data, "reversible", bool, False)
        reverse = self.reverse(data, reversible)
        tables = data.get("code_tables", Located())
        if not isinstance(tables, Located):
            raise self.error(
                "`code_tables` maps a table name to {file, unknown}", data.line_of("code_tables")
            )
        for table_name, ref in tables.items():
            self.tables[table_name] = self.table(str(table_name), ref, tables.line_of(table_name))
        fields = data.get("fields")
        if not isinstance(fields, Located) or not fields:
            raise self.error("`fields` maps each target field to its rule", data.line_of("fields"), "fields")
        root = ObjectRule(self.rules(fields, ""))
        xml = data.get("xml")
        template = None
        if xml is not None:
            if not isinstance(xml, Located):
                raise self.error("`xml` is a template mapping", data.line_of("xml"), "xml")
            template = XmlTemplate.from_mapping(xml, file=self.file, line=data.line_of("xml"))
        return Spec(
            name=name,
            version=version,
            file=self.file,
            root=root,
            reversible=reversible,
            reverse=reverse,
            code_tables=dict(self.tables),
            xml=template,
            **texts,
        )

    def unknown_keys(self, data: Located, known: tuple[str, ...], field: str | None) -> None:
        for key in data:
            if key not in known:
                raise self.error(
                    f"unknown key '{key}' (expected one of: {', '.join(known)})", data.line_of(key), field
                )

    def required(self, data: Located, key: str, kind: type) -> Any:
        if key not in data:
            raise self.error(f"`{key}` is required", data.line, key)
        return self.optional(data, key, kind, None)

    def optional(self, data: Located, key: str, kind: type, default: Any) -> Any:
        value = data.get(key, default)
        if key in data and not isinstance(value, kind):
            raise self.error(f"`{key}` must be a {kind.__name__}", data.line_of(key), key)
        return value

    def reverse(self, data: Located, reversible: bool) -> Path | None:
        reverse = self.optional(data, "reverse", str, None)
        if reversible and reverse is None:
            raise self.error(
                "a reversible spec names its `reverse` spec", data.line_of("reversible"), "reverse"
            )
        if reverse is None:
            return None
        path = self.base / f"{reverse}.yaml"
        if not path.is_file():
            raise self.error(
                f"reverse spec '{reverse}' not found at {path}", data.line_of("reverse"), "reverse"
            )
        return path

    def table(self, name: str, ref: Any, line: int) -> CodeTable:
        where = f"code_tables.{name}"
        if not isinstance(ref, Located):
            raise self.error("a code table reference is {file, unknown, ...}", line, where)
        self.unknown_keys(ref, _TABLE_KEYS, where)
        file = ref.get("file")
        if not isinstance(file, str):
            raise self.error("`file` names the CSV or YAML table, relative to the spec", ref.line, where)
        try:
            unknown = Unknown(ref.get("unknown", "error"))
        except ValueError:
            raise self.error("`unknown` is error, default or pass", ref.line_of("unknown"), where) from None
        if (unknown is Unknown.DEFAULT) != ("default" in ref):
            raise self.error(
                "`default` is given exactly when `unknown: default`", ref.line_of("unknown"), where
            )
        options = {k: ref[k] for k in ("key", "value") if k in ref}
        if not all(isinstance(v, str) for v in options.values()):
            raise self.error("`key` and `value` name CSV columns", ref.line, where)
        invert = ref.get("invert", False)
        if not isinstance(invert, bool):
            raise self.error("`invert` is true or false", ref.line_of("invert"), where)
        path = self.base / file
        if not path.is_file():
            raise self.error(f"code table file not found: {path}", ref.line_of("file"), where)
        try:
            codes = self.loader.table(path, invert=invert, **options)
        except SpecError as exc:
            exc.add_note(f"referenced from {self.file}:{ref.line_of('file')} ({where})")
            raise
        return CodeTable(
            name=name, codes=codes, unknown=unknown, default=plain(ref.get("default")), file=str(path)
        )

    def rules(self, fields: Located, prefix: str) -> tuple[tuple[str, Rule], ...]:
        compiled = []
        for name, body in fields.items():
            target = f"{prefix}.{name}" if prefix else str(name)
            if not isinstance(name, str) or not name:
                raise self.error("a target field name is a non-empty string", fields.line_of(name), target)
            compiled.append((name, self.rule(body, target, fields.line_of(name))))
        return tuple(compiled)

    def rule(self, body: Any, target: str, line: int) -> Rule:
        if not isinstance(body, Located):
            raise self.error("a rule is a mapping with `from`, `const`, `object` or `each`", line, target)
        self.unknown_keys(body, _RULE_KEYS, target)
        kinds = [k for k in ("const", "object", "each") if k in body]
        if (
            len(kinds) > 1
            or (kinds and kinds != ["object"] and "from" in body)
            or not (kinds or "from" in body)
        ):
            raise self.error(
                "a rule has exactly one of `from`, `const`, `object`, `each` (`object` may take a `from`)",
                line,
                target,
            )
        kind = kinds[0] if kinds else "from"
        if "fields" in body and kind != "each":
            raise self.error(
                "`fields` belongs to an `each` rule; nested objects use `object`",
                body.line_of("fields"),
                target,
            )
        if "transforms" in body and kind != "from":
            raise self.error("`transforms` apply to a `from` value", body.line_of("transforms"), target)
        required = body.get("required", False)
        if not isinstance(required, bool):
            raise self.error("`required` is true or false", body.line_of("required"), target)
        default = plain(body["default"]) if "default" in body else NO_DEFAULT
        if kind == "const" and ("required" in body or "default" in body):
            raise self.error("a `const` takes neither `required` nor `default`", line, target)
        if required and default is not NO_DEFAULT:
            raise self.error(
                "a field is either `required` or has a `default`, not both", body.line_of("default"), target
            )
        options: dict[str, Any] = {"default": default, "required": required}
        rule: Rule
        if kind == "const":
            rule = ConstRule(plain(body["const"]))
        elif kind == "object":
            inner = body["object"]
            if not isinstance(inner, Located) or not inner:
                raise self.error(
                    "`object` maps nested target fields to rules", body.line_of("object"), target
                )
            expression = body.get("from")
            get = self.path(expression, body, "from", target) if "from" in body else None
            rule = ObjectRule(self.rules(inner, target), get, expression or "", **options)
        elif kind == "each":
            items = body.get("fields")
            if not isinstance(items, Located) or not items:
                raise self.error("an `each` rule maps every item with `fields`", body.line_of("each"), target)
            item = ObjectRule(self.rules(items, f"{target}[]"))
            rule = EachRule(body["each"], self.path(body["each"], body, "each", target), item, **options)
        else:
            transforms, names = self.transforms(body, target)
            expression = body["from"]
            get = self.path(expression, body, "from", target)
            rule = ValueRule(expression, get, transforms, names, single_field(expression), **options)
        if "when" in body:
            rule = WhenRule(self.path(body["when"], body, "when", target), rule)
        return rule

    def path(self, expression: Any, body: Located, key: str, target: str) -> Any:
        if not isinstance(expression, str) or not expression.strip():
            raise self.error(f"`{key}` is a JMESPath expression (a string)", body.line_of(key), target)
        try:
            return compile_path(expression)
        except PathSyntaxError as exc:
            raise self.error(str(exc), body.line_of(key), target) from exc

    def transforms(self, body: Located, target: str) -> tuple[tuple[Any, ...], tuple[str, ...]]:
        if "transforms" not in body:
            return (), ()
        chain = body["transforms"]
        if not isinstance(chain, LocatedList):
            raise self.error("`transforms` is a list", body.line_of("transforms"), target)
        bound, names = [], []
        for index, step in enumerate(chain):
            line = chain.line_of(index)
            if isinstance(step, str):
                name, args = step, None
            elif isinstance(step, Located) and len(step) == 1:
                name, args = next(iter(step.items()))
                args = plain(args)
            else:
                raise self.error("a transform is a name or {name: arguments}", line, target)
            if name not in self.loader.registry:
                known = ", ".join(self.loader.registry.names())
                raise self.error(f"unknown transform '{name}' (known: {known})", line, target)
            if name == "code":
                if not isinstance(args, str) or args not in self.tables:
                    declared = ", ".join(self.tables) or "none"
                    raise self.error(f"unknown code table '{args}' (declared: {declared})", line, target)
                args = self.tables[args]
            try:
                bound.append(self.loader.registry.bind(name, args))
            except (TypeError, ValueError) as exc:
                raise self.error(f"transform '{name}': {exc}", line, target) from exc
            names.append(name)
        return tuple(bound), tuple(names)
