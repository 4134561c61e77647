"""Apply-time behaviour: rules, paths of failures, purity."""

import copy
from collections.abc import Callable
from typing import Any

import pytest

from mappings import MappingError, Spec, SpecLoader, TransformRegistry

from .conftest import WriteSpec

Compile = Callable[..., Spec]

FEES = """\
mapping: fees
version: 1
code_tables:
  fee_type: {file: fee_type.csv, unknown: error}
fields:
  MaHoSo: {from: dossier_id, required: true}
  DanhSachLePhi:
    each: fees
    fields:
      SoTien: {from: amount, transforms: [vnd], required: true}
      Loai: {from: type, transforms: [{code: fee_type}]}
"""
FEE_TYPES = {"fee_type.csv": "code,national\nfee,1\ncharge,2\n"}


def failure(spec: Spec, document: Any) -> MappingError:
    with pytest.raises(MappingError) as info:
        spec.apply(document)
    return info.value


def test_apply_missing_required_field_in_list_item_carries_dotted_path(compile_spec: Compile) -> None:
    # Given a dossier whose third fee has no amount
    spec = compile_spec(FEES, FEE_TYPES)
    fees = [{"amount": 1, "type": "fee"}, {"amount": 2, "type": "fee"}, {"type": "fee"}]
    # When it is mapped
    error = failure(spec, {"dossier_id": "H1", "fees": fees})
    # Then the error carries the target path of that amount and the cause
    assert error.path == "DanhSachLePhi[2].SoTien"
    assert error.cause == "required field is missing"
    assert str(error) == "mapping 'fees': DanhSachLePhi[2].SoTien: required field is missing"


def test_apply_unknown_code_carries_path_and_table(compile_spec: Compile) -> None:
    spec = compile_spec(FEES, FEE_TYPES)
    error = failure(spec, {"dossier_id": "H1", "fees": [{"amount": 1, "type": "penalty"}]})
    assert error.path == "DanhSachLePhi[0].Loai"
    assert "unknown code 'penalty' in code table 'fee_type'" in error.cause


def test_apply_transform_failure_keeps_the_original_exception(compile_spec: Compile) -> None:
    spec = compile_spec(FEES, FEE_TYPES)
    error = failure(spec, {"dossier_id": "H1", "fees": [{"amount": "12.5"}]})
    assert error.path == "DanhSachLePhi[0].SoTien"
    assert error.cause.startswith("transform 'vnd' failed:")
    assert isinstance(error.__cause__, ValueError)


def test_apply_missing_top_level_required_field_names_it(compile_spec: Compile) -> None:
    error = failure(compile_spec(FEES, FEE_TYPES), {"fees": []})
    assert error.path == "MaHoSo"


def test_apply_nested_object_path_is_dotted(compile_spec: Compile) -> None:
    spec = compile_spec(
        "mapping: n\nversion: 1\nfields:\n  A:\n    object:\n      B:\n        object:\n"
        "          C: {from: c, required: true}\n"
    )
    assert failure(spec, {}).path == "A.B.C"


def test_apply_returns_nothing_partial_and_leaves_the_source_untouched(compile_spec: Compile) -> None:
    spec = compile_spec(FEES, FEE_TYPES)
    document = {"dossier_id": "H1", "fees": [{"amount": 1, "type": "fee"}, {"type": "fee"}]}
    before = copy.deepcopy(document)
    result: dict[str, Any] = {}
    with pytest.raises(MappingError):
        result = spec.apply(document)
    assert result == {}
    assert document == before


def test_apply_copies_containers_so_the_output_shares_nothing_with_the_source(compile_spec: Compile) -> None:
    spec = compile_spec("mapping: c\nversion: 1\nfields:\n  Tags: {from: tags}\n  Meta: {const: {a: [1]}}\n")
    document = {"tags": ["a", {"b": 1}]}
    first = spec.apply(document)
    first["Tags"][1]["b"] = 2
    first["Meta"]["a"].append(2)
    assert document == {"tags": ["a", {"b": 1}]}
    assert spec.apply(document)["Meta"] == {"a": [1]}


def test_apply_default_const_and_omitted_fields(compile_spec: Compile) -> None:
    spec = compile_spec(
        "mapping: d\nversion: 1\nfields:\n"
        "  Note: {from: note, default: ''}\n"
        "  Service: {const: 2}\n"
        "  Email: {from: email}\n"
        "  Empty: {from: empty, default: null}\n"
    )
    assert spec.apply({"note": None}) == {"Note": "", "Service": 2, "Empty": None}


@pytest.mark.parametrize(
    ("value", "emitted"),
    [
        (None, False),
        (False, False),
        ("", False),
        ([], False),
        ({}, False),
        (0, True),
        ("x", True),
        ([0], True),
    ],
)
def test_apply_when_follows_jmespath_truthiness(compile_spec: Compile, value: Any, emitted: bool) -> None:
    spec = compile_spec("mapping: w\nversion: 1\nfields:\n  A: {when: flag, const: 1}\n")
    assert ("A" in spec.apply({"flag": value})) is emitted


def test_apply_object_from_rebases_the_context(compile_spec: Compile) -> None:
    spec = compile_spec(
        "mapping: o\nversion: 1\nfields:\n"
        "  Cha:\n    from: father\n    object:\n      SoDinhDanh: {from: personal_id}\n"
        "  Me:\n    from: mother\n    default: {}\n    object:\n      SoDinhDanh: {from: personal_id}\n"
    )
    assert spec.apply({"father": {"personal_id": "1"}}) == {"Cha": {"SoDinhDanh": "1"}, "Me": {}}


def test_apply_required_object_from_missing_source_fails(compile_spec: Compile) -> None:
    spec = compile_spec(
        "mapping: o\nversion: 1\nfields:\n  Cha:\n    from: father\n    required: true\n"
        "    object:\n      X: {from: x}\n"
    )
    assert failure(spec, {}).path == "Cha"


def test_apply_each_takes_a_single_object_as_one_item(compile_spec: Compile) -> None:
    # Given an XML-derived source, where one repeated element is an object, not a list
    spec = compile_spec(
        "mapping: e\nversion: 1\nfields:\n  L:\n    each: items\n    fields:\n      N: {from: n}\n"
    )
    assert spec.apply({"items": {"n": 1}}) == {"L": [{"N": 1}]}


def test_apply_each_over_a_scalar_fails_with_path(compile_spec: Compile) -> None:
    spec = compile_spec(
        "mapping: e\nversion: 1\nfields:\n  L:\n    each: items\n    fields:\n      N: {from: n}\n"
    )
    error = failure(spec, {"items": "oops"})
    assert error.path == "L" and "gives a str, not a list" in error.cause


def test_apply_jmespath_runtime_type_error_carries_path(compile_spec: Compile) -> None:
    spec = compile_spec("mapping: j\nversion: 1\nfields:\n  N: {from: 'length(n)'}\n")
    error = failure(spec, {"n": 5})
    assert error.path == "N" and "source expression 'length(n)' failed" in error.cause


def test_apply_full_jmespath_expressions_work(compile_spec: Compile) -> None:
    spec = compile_spec(
        "mapping: j\nversion: 1\nfields:\n"
        "  Total: {from: 'sum(fees[].amount)'}\n"
        "  First: {from: 'fees[0].name'}\n"
        "  Name: {from: '[first, last]', transforms: [{concat: {sep: ' '}}]}\n"
    )
    document = {"fees": [{"amount": 1, "name": "a"}, {"amount": 2}], "first": "Văn", "last": "An"}
    assert spec.apply(document) == {"Total": 3, "First": "a", "Name": "Văn An"}


@pytest.mark.parametrize(
    ("policy", "expected"), [("unknown: default, default: '0'", "0"), ("unknown: pass", "other")]
)
def test_apply_unknown_code_policies(compile_spec: Compile, policy: str, expected: str) -> None:
    spec = compile_spec(
        f"mapping: p\nversion: 1\ncode_tables:\n  t: {{file: t.csv, {policy}}}\n"
        "fields:\n  C: {from: c, transforms: [{code: t}]}\n",
        {"t.csv": "code,national\na,1\n"},
    )
    assert spec.apply({"c": "a"}) == {"C": "1"}
    assert spec.apply({"c": "other"}) == {"C": expected}


def test_apply_plugin_transform_failure_is_wrapped(loader: SpecLoader, write_spec: WriteSpec) -> None:
    def explode(value: Any) -> Any:
        raise RuntimeError("plugin bug")

    custom = SpecLoader(TransformRegistry.builtin().with_functions({"explode": explode}))
    spec = custom.load(write_spec("mapping: x\nversion: 1\nfields:\n  A: {from: a, transforms: [explode]}\n"))
    error = failure(spec, {"a": 1})
    assert error.path == "A" and error.cause == "transform 'explode' failed: plugin bug"


def test_apply_failure_in_a_chain_names_the_failing_transform(compile_spec: Compile) -> None:
    spec = compile_spec(
        "mapping: c\nversion: 1\nfields:\n  N: {from: n, transforms: [trim, to_int, to_str]}\n"
    )
    assert spec.apply({"n": " 7 "}) == {"N": "7"}
    error = failure(spec, {"n": " 7.5 "})
    assert error.path == "N" and error.cause.startswith("transform 'to_int' failed:")
