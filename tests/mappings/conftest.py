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

    def write(text: str, name: str = "spec.yaml", **files: str) -> Path:
        for file_name, content in files.items():
            (tmp_path / file_name.replace("__", ".")).write_text(textwrap.dedent(content), encoding="utf-8")
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def compile_spec(loader: SpecLoader, write_spec: WriteSpec) -> Callable[..., Spec]:
    def compile_(text: str, **files: str) -> Spec:
        return loader.load(write_spec(text, **files))

    return compile_
