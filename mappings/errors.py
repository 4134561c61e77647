"""The mappings library's exception tree.

MappingsError                 root of every error this library raises on purpose
├── SpecError                 a spec, code table or XML template is invalid (file, line, field)
├── RegistryError             a transform cannot be registered (name, source)
├── MappingError              apply failed (spec, path, cause); nothing partial is returned
└── TransformError            a transform refused its input; apply wraps it in a MappingError
"""


class MappingsError(Exception):
    """Root of every error the mappings library raises on purpose."""


class SpecError(MappingsError):
    """A spec, code table or XML template is invalid; raised at load time."""

    def __init__(self, message: str, *, file: str, line: int | None = None, field: str | None = None) -> None:
        self.reason = message
        self.file = file
        self.line = line
        self.field = field
        where = file if line is None else f"{file}:{line}"
        if field:
            where = f"{where}: field '{field}'"
        super().__init__(f"{where}: {message}")


class RegistryError(MappingsError):
    """A transform is refused at registration (duplicate name, not callable, failed import)."""

    def __init__(self, message: str, *, name: str, source: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.source = source


class MappingError(MappingsError):
    """Applying a spec failed at one target field; `path` is its dotted path, e.g. `A[2].B`."""

    def __init__(self, message: str | None = None, *, path: str, cause: str = "", spec: str = "") -> None:
        self.path = path
        self.cause = cause
        self.spec = spec
        if message is None:
            prefix = f"mapping '{spec}': " if spec else ""
            message = f"{prefix}{path or '<document>'}: {cause or 'mapping failed'}"
        super().__init__(message)


class TransformError(MappingsError, ValueError):
    """A transform refused its input (bad date, unknown code, not a number)."""
