"""Load-time validation: every invalid spec is refused with the file, the line and the field."""

import os
from pathlib import Path

import pytest

from mappings import SpecError, SpecLoader, load_spec, shipped

from .conftest import WriteSpec

HEADER = "mapping: demo\nversion: 1\n"


def refused(loader: SpecLoader, path: Path) -> SpecError:
    with pytest.raises(SpecError) as info:
        loader.load(path)
    return info.value


def test_loader_unknown_transform_names_file_line_and_field(
    loader: SpecLoader, write_spec: WriteSpec
) -> None:
    # Given a rule whose second transform does not exist
    path = write_spec(
        HEADER + "fields:\n  A: {from: a}\n  B:\n    from: b\n    transforms:\n      - trim\n      - shout\n"
    )
    # When it is loaded
    error = refused(loader, path)
    # Then the error names the file, the transform's line and the field
    assert (error.file, error.line, error.field) == (str(path), 9, "B")
    assert f"{path}:9: field 'B': unknown transform 'shout'" in str(error)


def test_loader_unknown_code_table_names_line_and_field(loader: SpecLoader, write_spec: WriteSpec) -> None:
    path = write_spec(HEADER + "fields:\n  G: {from: g, transforms: [{code: gender}]}\n")
    error = refused(loader, path)
    assert (error.line, error.field) == (4, "G")
    assert "unknown code table 'gender' (declared: none)" in str(error)


def test_loader_jmespath_syntax_error_names_line_and_column(
    loader: SpecLoader, write_spec: WriteSpec
) -> None:
    path = write_spec(HEADER + "fields:\n  L:\n    each: items\n    fields:\n      X: {from: 'a.['}\n")
    error = refused(loader, path)
    assert (error.line, error.field) == (7, "L[].X")
    assert "JMESPath syntax error in 'a.[' at column" in str(error)


def test_loader_unknown_jmespath_function_is_refused(loader: SpecLoader, write_spec: WriteSpec) -> None:
    path = write_spec(HEADER + "fields:\n  A: {from: 'shout(a)'}\n")
    error = refused(loader, path)
    assert (error.line, error.field) == (4, "A")
    assert "unknown JMESPath function 'shout()'" in str(error)


def test_loader_jmespath_function_arity_is_checked(loader: SpecLoader, write_spec: WriteSpec) -> None:
    path = write_spec(HEADER + "fields:\n  A: {when: 'length(a, b)', from: a}\n")
    error = refused(loader, path)
    assert "'length()' takes 1 argument(s), not 2" in str(error)


def test_loader_duplicate_target_field_names_both_lines(loader: SpecLoader, write_spec: WriteSpec) -> None:
    # Given a spec that declares MaHoSo twice (plain PyYAML would keep only the second)
    path = write_spec(HEADER + "fields:\n  MaHoSo: {from: a}\n  Other: {from: b}\n  MaHoSo: {from: c}\n")
    error = refused(loader, path)
    assert (error.line, error.field) == (6, "MaHoSo")
    assert "duplicate target field 'MaHoSo' (first at line 4)" in str(error)


def test_loader_duplicate_target_field_inside_each_names_list_path(
    loader: SpecLoader, write_spec: WriteSpec
) -> None:
    text = (
        HEADER
        + "fields:\n  Fees:\n    each: fees\n    fields:\n      SoTien: {from: a}\n      SoTien: {from: b}\n"
    )
    error = refused(loader, write_spec(text))
    assert (error.line, error.field) == (8, "Fees[].SoTien")


def test_loader_duplicate_key_inside_rule_names_the_field(loader: SpecLoader, write_spec: WriteSpec) -> None:
    error = refused(loader, write_spec(HEADER + "fields:\n  A:\n    from: a\n    from: b\n"))
    assert (error.line, error.field) == (6, "A")
    assert "duplicate key 'from'" in str(error)


def test_loader_bad_transform_arguments_are_refused(loader: SpecLoader, write_spec: WriteSpec) -> None:
    path = write_spec(HEADER + "fields:\n  D: {from: d, transforms: [{date: {from: iso, to: ddMMyy}}]}\n")
    error = refused(loader, path)
    assert (error.line, error.field) == (4, "D")
    assert "unknown date format 'ddMMyy'" in str(error)


def test_loader_unexpected_transform_argument_is_refused(loader: SpecLoader, write_spec: WriteSpec) -> None:
    error = refused(
        loader, write_spec(HEADER + "fields:\n  A: {from: a, transforms: [{trim: {chars: x}}]}\n")
    )
    assert "transform 'trim'" in str(error) and error.line == 4


def test_loader_unknown_rule_key_is_refused(loader: SpecLoader, write_spec: WriteSpec) -> None:
    error = refused(loader, write_spec(HEADER + "fields:\n  A:\n    form: a\n"))
    assert (error.line, error.field) == (5, "A")
    assert "unknown key 'form'" in str(error)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{from: a, const: 1}", "exactly one of"),
        ("{required: true}", "exactly one of"),
        ("{from: a, required: true, default: x}", "either `required` or has a `default`"),
        ("{const: 1, transforms: [trim]}", "`transforms` apply to a `from` value"),
        ("{from: a, fields: {B: {from: b}}}", "`fields` belongs to an `each` rule"),
        ("{each: a}", "maps every item with `fields`"),
        ("{from: a, required: yes please}", "`required` is true or false"),
        ("{from: 3}", "is a JMESPath expression"),
        ("{from: a, transforms: trim}", "`transforms` is a list"),
        ("plain", "a rule is a mapping"),
    ],
)
def test_loader_malformed_rule_is_refused(
    loader: SpecLoader, write_spec: WriteSpec, rule: str, message: str
) -> None:
    error = refused(loader, write_spec(HEADER + f"fields:\n  A: {rule}\n"))
    assert error.field == "A" and error.line == 4
    assert message in str(error)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("version: 1\nfields: {A: {from: a}}\n", 1, "`mapping` is required"),
        ("mapping: x\nversion: 0\nfields: {A: {from: a}}\n", 2, "positive integer"),
        ("mapping: x\nversion: 1\n", 1, "`fields` maps each target field"),
        (HEADER + "fields: {A: {from: a}}\nextra: 1\n", 4, "unknown key 'extra'"),
        (HEADER + "reversible: true\nfields: {A: {from: a}}\n", 3, "names its `reverse` spec"),
        (HEADER + "reverse: nowhere\nfields: {A: {from: a}}\n", 3, "reverse spec 'nowhere' not found"),
        (HEADER + "fields: [a, b]\n", 3, "`fields` maps each target field"),
        ("- just\n- a list\n", 1, "a spec is a YAML mapping"),
        (HEADER + "fields: {A: {from: a}\n", 4, "not valid YAML"),
    ],
)
def test_loader_malformed_spec_is_refused(
    loader: SpecLoader, write_spec: WriteSpec, text: str, line: int, message: str
) -> None:
    error = refused(loader, write_spec(text))
    assert error.line == line
    assert message in str(error)


def test_loader_missing_code_table_file_names_the_reference(
    loader: SpecLoader, write_spec: WriteSpec
) -> None:
    text = HEADER + "code_tables:\n  gender: {file: nowhere.csv}\nfields: {A: {from: a}}\n"
    error = refused(loader, write_spec(text))
    assert (error.line, error.field) == (4, "code_tables.gender")
    assert "code table file not found" in str(error)


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("{file: t.csv, unknown: ignore}", "`unknown` is error, default or pass"),
        ("{file: t.csv, unknown: default}", "`default` is given exactly when"),
        ("{file: t.csv, default: x}", "`default` is given exactly when"),
        ("{file: t.csv, key: nope}", "no column 'nope'"),
        ("{file: t.csv, colour: red}", "unknown key 'colour'"),
    ],
)
def test_loader_bad_code_table_reference_is_refused(
    loader: SpecLoader, write_spec: WriteSpec, reference: str, message: str
) -> None:
    text = HEADER + f"code_tables:\n  t: {reference}\nfields: {{A: {{from: a}}}}\n"
    error = refused(loader, write_spec(text, files={"t.csv": "code,national\na,1\n"}))
    assert message in str(error)


def test_loader_code_table_error_is_noted_with_the_referencing_spec(
    loader: SpecLoader, write_spec: WriteSpec
) -> None:
    text = HEADER + "code_tables:\n  t: {file: t.csv}\nfields: {A: {from: a}}\n"
    path = write_spec(text, files={"t.csv": "code,national\na,1\nb,2\na,3\n"})
    error = refused(loader, path)
    assert error.file.endswith("t.csv") and error.line == 4
    assert "code 'a' is listed twice (first at line 2)" in str(error)
    assert error.__notes__ == [f"referenced from {path}:4 (code_tables.t)"]


def test_loader_same_file_is_compiled_once(loader: SpecLoader, write_spec: WriteSpec) -> None:
    path = write_spec(HEADER + "fields: {A: {from: a}}\n")
    assert loader.load(path) is loader.load(str(path))


def test_loader_changed_file_is_recompiled(loader: SpecLoader, write_spec: WriteSpec) -> None:
    # Given a loaded spec
    path = write_spec(HEADER + "fields: {A: {from: a}}\n")
    first = loader.load(path)
    # When the operator edits it
    path.write_text(HEADER + "fields: {B: {from: a}}\n", encoding="utf-8")
    os.utime(path, ns=(1, 1))
    # Then the next load compiles the new version
    assert loader.load(path) is not first
    assert loader.load(path).apply({"a": 1}) == {"B": 1}


def test_loader_unreadable_spec_is_refused(loader: SpecLoader, tmp_path: Path) -> None:
    error = refused(loader, tmp_path / "missing.yaml")
    assert "cannot read spec" in str(error)


def test_shipped_unknown_name_lists_the_shipped_specs() -> None:
    with pytest.raises(SpecError, match=r"no shipped spec 'nope/nothing' \(shipped: .*public_service_portal"):
        shipped("nope/nothing")


def test_load_spec_uses_the_given_loader(loader: SpecLoader, write_spec: WriteSpec) -> None:
    path = write_spec(HEADER + "fields: {A: {from: a}}\n")
    assert load_spec(path, loader=loader) is loader.load(path)


def test_loader_yaml_merge_key_may_be_overridden(loader: SpecLoader, write_spec: WriteSpec) -> None:
    # Given a rule built from an anchor and overriding one of its keys (valid YAML, not a duplicate)
    text = HEADER + "fields:\n  A: &base {from: a, default: x}\n  B:\n    <<: *base\n    from: b\n"
    spec = loader.load(write_spec(text))
    assert spec.apply({"b": 1}) == {"A": "x", "B": 1}


def test_loader_equal_keys_spelt_differently_are_duplicates(
    loader: SpecLoader, write_spec: WriteSpec
) -> None:
    error = refused(loader, write_spec(HEADER + "fields: {A: {from: a}}\nversion: 0x1\n"))
    assert error.line == 4 and "duplicate" in str(error)


def test_loader_changed_code_table_recompiles_the_spec(loader: SpecLoader, write_spec: WriteSpec) -> None:
    # Given a loaded spec whose code table an operator then edits
    text = HEADER + "code_tables:\n  t: {file: t.csv}\nfields: {A: {from: a, transforms: [{code: t}]}}\n"
    path = write_spec(text, files={"t.csv": "code,national\nx,1\n"})
    assert loader.load(path).apply({"a": "x"}) == {"A": "1"}
    (path.parent / "t.csv").write_text("code,national\nx,22\n", encoding="utf-8")
    # When the spec is loaded again, Then the new table is used
    assert loader.load(path).apply({"a": "x"}) == {"A": "22"}
