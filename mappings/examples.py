"""Example pairs beside each spec: `examples/<spec>/<case>.in.json` with `<case>.out.json` (the
expected output) or `<case>.error.json` (`{"path": ..., "cause": <substring, optional>}`, the
expected MappingError). A reversible spec must also map each output back to its input."""

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mappings.errors import MappingError, SpecError
from mappings.loader import SpecLoader, discover_specs
from mappings.spec import Spec


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one example case (`case` is `<load>` or `<none>` for spec-level failures)."""

    spec: str
    case: str
    passed: bool
    detail: str = ""


def run_examples(directory: Path, *, loader: SpecLoader) -> list[CaseResult]:
    """Run the example pairs of every spec below `directory` (or of one spec file)."""
    results: list[CaseResult] = []
    for path in discover_specs(directory):
        try:
            spec = loader.load(path)
        except SpecError as exc:
            results.append(CaseResult(str(path), "<load>", False, str(exc)))
            continue
        inputs = sorted((path.parent / "examples" / path.stem).glob("*.in.json"))
        if not inputs:
            results.append(
                CaseResult(str(path), "<none>", False, f"no example pairs in examples/{path.stem}/")
            )
        for source in inputs:
            results.extend(_run_case(spec, path, source, loader))
    return results


def _run_case(spec: Spec, path: Path, source: Path, loader: SpecLoader) -> list[CaseResult]:
    case = source.name.removesuffix(".in.json")
    expected_out = source.with_name(f"{case}.out.json")
    expected_error = source.with_name(f"{case}.error.json")
    try:
        document = _read_json(source)
        if expected_error.is_file():
            return [_expect_error(spec, path, case, document, _read_json(expected_error))]
        if not expected_out.is_file():
            return [
                CaseResult(str(path), case, False, f"neither {expected_out.name} nor {expected_error.name}")
            ]
        expected = _read_json(expected_out)
    except (OSError, ValueError) as exc:
        return [CaseResult(str(path), case, False, f"cannot read the example: {exc}")]
    try:
        actual = spec.apply(document)
    except MappingError as exc:
        return [CaseResult(str(path), case, False, str(exc))]
    if actual != expected:
        return [CaseResult(str(path), case, False, diff(expected, actual, str(expected_out)))]
    results = [CaseResult(str(path), case, True)]
    if spec.reverse is not None and spec.reversible:
        results.append(_round_trip(spec.reverse, path, case, document, actual, loader))
    return results


def _expect_error(spec: Spec, path: Path, case: str, document: Any, expected: Any) -> CaseResult:
    try:
        actual = spec.apply(document)
    except MappingError as exc:
        want_path = expected.get("path") if isinstance(expected, dict) else None
        want_cause = expected.get("cause", "") if isinstance(expected, dict) else ""
        if exc.path == want_path and want_cause in exc.cause:
            return CaseResult(str(path), case, True)
        return CaseResult(
            str(path), case, False, f"expected an error at {want_path!r} ({want_cause!r}), got: {exc}"
        )
    return CaseResult(str(path), case, False, f"expected an error at {expected}, got {json.dumps(actual)}")


def _round_trip(
    reverse: Path, path: Path, case: str, document: Any, output: Any, loader: SpecLoader
) -> CaseResult:
    name = f"{case} (round trip)"
    try:
        back = loader.load(reverse).apply(output)
    except (SpecError, MappingError) as exc:
        return CaseResult(str(path), name, False, str(exc))
    if back != document:
        return CaseResult(str(path), name, False, diff(document, back, "input"))
    return CaseResult(str(path), name, True)


def diff(expected: Any, actual: Any, label: str) -> str:
    """A unified diff of two JSON documents."""

    def lines(value: Any) -> list[str]:
        return json.dumps(value, indent=2, ensure_ascii=False).splitlines(keepends=True)

    return "".join(difflib.unified_diff(lines(expected), lines(actual), fromfile=label, tofile="actual"))


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
