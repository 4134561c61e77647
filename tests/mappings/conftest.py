"""Fixtures for the mappings tests: a loader with the built-in transforms and a spec writer."""

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mappings import Spec, SpecLoader, TransformRegistry

WriteSpec = Callable[..., Path]


@pytest.fixture
def loader() -> SpecLoader:
    return SpecLoader(TransformRegistry.builtin())


@pytest.fixture
def write_spec(tmp_path: Path) -> WriteSpec:
    """Write `spec.yaml` (dedented) plus any extra files into tmp_path; return the spec's path."""

    def write(text: str, *, files: dict[str, str] | None = None, name: str = "spec.yaml") -> Path:
        for file_name, content in (files or {}).items():
            (tmp_path / file_name).write_text(textwrap.dedent(content), encoding="utf-8")
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def compile_spec(loader: SpecLoader, write_spec: WriteSpec) -> Callable[..., Spec]:
    def compile_(text: str, files: dict[str, str] | None = None) -> Spec:
        return loader.load(write_spec(text, files=files))

    return compile_
