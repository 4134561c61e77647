"""Transforms loaded through real entry points by the registry tests."""

from typing import Any


def shout(value: Any, suffix: str = "!") -> str:
    return f"{str(value).upper()}{suffix}"


NOT_CALLABLE = 42
