"""`lgsp mapping` commands through typer's CliRunner."""

import json
from pathlib import Path

from typer.testing import CliRunner

from mappings.cli import app
from mappings.loader import SPECS_DIR

runner = CliRunner()

SPEC = "mapping: demo\nversion: 1\nfields:\n  MaHoSo: {from: id, required: true}\n  Ten: {from: name, transforms: [upper]}\n"


def make_specs(tmp_path: Path, expected: dict[str, str]) -> Path:
    folder = tmp_path / "system"
    (folder / "examples" / "demo").mkdir(parents=True)
    (folder / "demo.yaml").write_text(SPEC, encoding="utf-8")
    case = folder / "examples" / "demo"
    (case / "one.in.json").write_text(json.dumps({"id": "H1", "name": "an"}), encoding="utf-8")
    (case / "one.out.json").write_text(json.dumps(expected), encoding="utf-8")
    return tmp_path


def test_cli_check_reports_each_file_and_fails_on_an_invalid_one(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(SPEC, encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC + "  Ten: {from: other}\n", encoding="utf-8")
    result = runner.invoke(app, ["check", str(good), str(bad)])
    assert result.exit_code == 1
    assert f"ok   {good} (demo v1)" in result.output
    assert f"FAIL {bad}:6: field 'Ten': duplicate target field 'Ten' (first at line 5)" in result.output


def test_cli_check_accepts_every_shipped_spec_given_the_folder() -> None:
    result = runner.invoke(app, ["check", str(SPECS_DIR)])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok   ") == len(list(SPECS_DIR.glob("*/*.yaml")))


def test_cli_apply_prints_the_result_as_json(tmp_path: Path) -> None:
    spec = tmp_path / "demo.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    source = tmp_path / "in.json"
    source.write_text(json.dumps({"id": "H1", "name": "đà"}), encoding="utf-8")
    result = runner.invoke(app, ["apply", str(spec), str(source)])
    assert result.exit_code == 0
    assert json.loads(result.output) == {"MaHoSo": "H1", "Ten": "ĐÀ"}


def test_cli_apply_reads_standard_input_and_reports_the_failing_path(tmp_path: Path) -> None:
    spec = tmp_path / "demo.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    result = runner.invoke(app, ["apply", str(spec), "-"], input='{"name": "x"}')
    assert result.exit_code == 1
    assert "error: mapping 'demo': MaHoSo: required field is missing" in result.output


def test_cli_apply_unreadable_input_fails(tmp_path: Path) -> None:
    spec = tmp_path / "demo.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    result = runner.invoke(app, ["apply", str(spec), str(tmp_path / "missing.json")])
    assert result.exit_code == 1 and "cannot read" in result.output


def test_cli_test_passes_matching_examples(tmp_path: Path) -> None:
    root = make_specs(tmp_path, {"MaHoSo": "H1", "Ten": "AN"})
    result = runner.invoke(app, ["test", str(root)])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "1 passed, 0 failed" in result.output


def test_cli_test_prints_a_unified_diff_and_fails_on_a_mismatch(tmp_path: Path) -> None:
    root = make_specs(tmp_path, {"MaHoSo": "H1", "Ten": "AN!"})
    result = runner.invoke(app, ["test", str(root)])
    assert result.exit_code == 1
    assert "FAIL" in result.output
    assert '-  "Ten": "AN!"\n+  "Ten": "AN"' in result.output
    assert "+++ actual" in result.output


def test_cli_test_fails_a_spec_without_examples(tmp_path: Path) -> None:
    (tmp_path / "lonely.yaml").write_text(SPEC, encoding="utf-8")
    result = runner.invoke(app, ["test", str(tmp_path)])
    assert result.exit_code == 1 and "no example pairs in examples/lonely/" in result.output


def test_cli_test_missing_directory_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["test", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
