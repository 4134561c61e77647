"""Built-in transforms and the transform registry."""

from datetime import datetime
from importlib.metadata import EntryPoint
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings import ENTRY_POINT_GROUP, RegistryError, SpecLoader, TransformError, TransformRegistry

from .conftest import WriteSpec

REGISTRY = TransformRegistry.builtin()


def run(name: str, value: Any, args: Any = None) -> Any:
    return REGISTRY.bind(name, args)(value)


@pytest.mark.parametrize(
    ("source", "to", "value", "expected"),
    [
        ("iso", "yyyyMMddHHmmss", "2024-03-05T01:30:00Z", "20240305083000"),
        ("iso", "yyyyMMddHHmmss", "2024-03-05T08:30:00", "20240305083000"),
        ("iso", "dd/MM/yyyy", "2024-03-05T20:00:00+00:00", "06/03/2024"),
        ("yyyyMMddHHmmss", "iso", "20240305083000", "2024-03-05T08:30:00+07:00"),
        ("yyyyMMddHHmmss", "yyyy/MM/dd HH:mm:ss", "20240305083000", "2024/03/05 08:30:00"),
        ("yyyy/MM/dd HH:mm:ss", "dd/MM/yyyy HH:mm:ss", "2024/03/05 08:30:00", "05/03/2024 08:30:00"),
        ("dd/MM/yyyy", "yyyyMMdd", "05/03/2024", "20240305"),
        ("yyyyMMdd", "iso_date", "00050102", "0005-01-02"),
        ("iso_date", "yyyyMMdd", "1996-05-01", "19960501"),
        ("yyyy-MM-dd", "iso", "1996-05-01", "1996-05-01T00:00:00+07:00"),
    ],
)
def test_date_converts_between_formats_in_vietnam_time(
    source: str, to: str, value: str, expected: str
) -> None:
    assert run("date", value, {"from": source, "to": to}) == expected


def test_date_other_time_zone_is_honoured() -> None:
    assert run("date", "2024-03-05T01:30:00Z", {"from": "iso", "to": "yyyyMMddHHmmss", "tz": "UTC"}) == (
        "20240305013000"
    )


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("iso", "2024-13-05"),
        ("iso", "2024-03-05x"),
        ("yyyyMMdd", "20240230"),
        ("yyyyMMdd", 20240305),
        ("dd/MM/yyyy", "5/3/2024"),
    ],
)
def test_date_invalid_input_raises_transform_error(source: str, value: Any) -> None:
    with pytest.raises(TransformError, match=f"is not a valid {source} date"):
        run("date", value, {"from": source, "to": "iso"})


@pytest.mark.parametrize(
    ("args", "message"), [({"to": "nope"}, "unknown date format"), ({"tz": "Mars/Olympus"}, "time zone")]
)
def test_date_bad_arguments_are_refused_at_bind(args: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        REGISTRY.bind("date", args)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Nguyễn Văn An", {"Ho": "Nguyễn", "ChuDem": "Văn", "Ten": "An"}),
        ("  Tôn Nữ Thị   Minh  Châu ", {"Ho": "Tôn", "ChuDem": "Nữ Thị Minh", "Ten": "Châu"}),
        ("Lê Lợi", {"Ho": "Lê", "ChuDem": "", "Ten": "Lợi"}),
        ("Nam", {"Ho": "", "ChuDem": "", "Ten": "Nam"}),
    ],
)
def test_split_name_takes_first_word_as_family_and_last_as_given(name: str, expected: dict[str, str]) -> None:
    assert run("split_name", name) == expected


def test_join_name_skips_empty_parts() -> None:
    assert run("join_name", {"Ho": "Lê", "ChuDem": "", "Ten": "Lợi"}) == "Lê Lợi"
    assert run("join_name", {"Ten": "Nam"}) == "Nam"


@pytest.mark.parametrize(("name", "value"), [("split_name", "   "), ("join_name", {}), ("join_name", "x")])
def test_name_transforms_refuse_empty_or_wrong_input(name: str, value: Any) -> None:
    with pytest.raises(TransformError):
        run(name, value)


def test_text_transforms() -> None:
    decomposed = "Nguye\u0302\u0303n"
    assert run("nfc", decomposed) == "Nguyễn" and len(run("nfc", decomposed)) == 6
    assert run("trim", "  a b ") == "a b"
    assert run("upper", "đà nẵng") == "ĐÀ NẴNG"
    assert run("lower", "HÀ NỘI") == "hà nội"
    with pytest.raises(TransformError, match="trim expects a string, not int"):
        run("trim", 5)


@pytest.mark.parametrize(
    ("value", "expected"), [(50000, 50000), ("50000", 50000), ("50000.00", 50000), (8e3, 8000)]
)
def test_vnd_gives_whole_dong(value: Any, expected: int) -> None:
    assert run("vnd", value) == expected


@pytest.mark.parametrize("value", ["12.5", "-1", "abc", True, "NaN", None])
def test_vnd_refuses_fractions_negatives_and_non_numbers(value: Any) -> None:
    with pytest.raises(TransformError):
        run("vnd", value)


def test_decimal_renders_fixed_places_and_never_rounds() -> None:
    assert run("decimal", 12, {"places": 2}) == "12.00"
    assert run("decimal", "0.5", [1]) == "0.5"
    with pytest.raises(TransformError, match="more than 0 decimals"):
        run("decimal", "0.5")


def test_base64_round_trip_and_invalid_input() -> None:
    assert run("base64_encode", "Hồ sơ") == "SOG7kyBzxqE="
    assert run("base64_decode", "SOG7kyBzxqE=") == "Hồ sơ"
    with pytest.raises(TransformError, match="not base64"):
        run("base64_decode", "***")


def test_concat_skips_nulls_and_empty_strings() -> None:
    assert run("concat", ["Số 1", None, "", "Hàng Bài", 3], {"sep": ", "}) == "Số 1, Hàng Bài, 3"
    with pytest.raises(TransformError):
        run("concat", "not a list")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("to_str", 101, "101"),
        ("to_str", True, "true"),
        ("to_int", "42", 42),
        ("to_int", 42.0, 42),
        ("to_bool", "TRUE", True),
        ("to_bool", 0, False),
        ("to_bool", "no", False),
    ],
)
def test_scalar_conversions(name: str, value: Any, expected: Any) -> None:
    assert run(name, value) == expected


@pytest.mark.parametrize(
    ("name", "value"), [("to_str", [1]), ("to_int", "4.2"), ("to_int", True), ("to_bool", 2)]
)
def test_scalar_conversions_refuse_bad_input(name: str, value: Any) -> None:
    with pytest.raises(TransformError):
        run(name, value)


def test_registry_refuses_a_duplicate_name_loudly() -> None:
    with pytest.raises(
        RegistryError, match="transform 'trim' from my-plugin is already registered by builtin"
    ) as info:
        REGISTRY.with_functions({"trim": str.strip}, source="my-plugin")
    assert info.value.name == "trim"


@pytest.mark.parametrize(("name", "function"), [("Bad-Name", str.strip), ("fine", 42)])
def test_registry_refuses_bad_names_and_non_callables(name: str, function: Any) -> None:
    with pytest.raises(RegistryError):
        REGISTRY.with_functions({name: function})


def test_registry_is_immutable_with_functions_returns_a_new_one() -> None:
    extended = REGISTRY.with_functions({"reverse_text": lambda v: v[::-1]})
    assert "reverse_text" in extended and "reverse_text" not in REGISTRY


def test_registry_loads_entry_point_transforms(loader: SpecLoader, write_spec: WriteSpec) -> None:
    # Given an installed plugin exposing `shout`
    point = EntryPoint("shout", "tests.mappings.plugin_transforms:shout", ENTRY_POINT_GROUP)
    registry = REGISTRY.with_entry_points([point])
    # When a spec uses it with an argument
    spec = SpecLoader(registry).load(
        write_spec("mapping: p\nversion: 1\nfields:\n  A: {from: a, transforms: [{shout: {suffix: '?'}}]}\n")
    )
    # Then the plugin runs like a built-in
    assert spec.apply({"a": "xin chào"}) == {"A": "XIN CHÀO?"}


def test_registry_refuses_an_entry_point_that_reuses_a_builtin_name() -> None:
    point = EntryPoint("trim", "tests.mappings.plugin_transforms:shout", ENTRY_POINT_GROUP)
    with pytest.raises(RegistryError, match=r"entry point 'trim = tests.mappings.plugin_transforms:shout'"):
        REGISTRY.with_entry_points([point])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("tests.mappings.no_such_module:shout", "failed to load .*is the package that provides it installed"),
        ("tests.mappings.plugin_transforms:NOT_CALLABLE", "is not callable"),
    ],
)
def test_registry_refuses_broken_entry_points(value: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        REGISTRY.with_entry_points([EntryPoint("broken", value, ENTRY_POINT_GROUP)])


def test_registry_bind_checks_plugin_arguments() -> None:
    point = EntryPoint("shout", "tests.mappings.plugin_transforms:shout", ENTRY_POINT_GROUP)
    registry = REGISTRY.with_entry_points([point])
    with pytest.raises(TypeError):
        registry.bind("shout", {"volume": 11})


# After 1975 Vietnam's offset is a constant +07:00: every wall-clock time exists exactly once.
MOMENTS = st.datetimes(min_value=datetime(1976, 1, 1), max_value=datetime(2100, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)


@settings(max_examples=200, deadline=None)
@given(moment=MOMENTS)
def test_date_formats_round_trip_without_loss(moment: datetime) -> None:
    # Given a wall-clock time written as yyyyMMddHHmmss
    compact = f"{moment:%Y%m%d%H%M%S}"
    # When it goes through ISO 8601 and the slash formats and back
    iso = run("date", compact, {"from": "yyyyMMddHHmmss", "to": "iso"})
    slashed = run("date", iso, {"from": "iso", "to": "yyyy/MM/dd HH:mm:ss"})
    day_first = run("date", slashed, {"from": "yyyy/MM/dd HH:mm:ss", "to": "dd/MM/yyyy HH:mm:ss"})
    # Then nothing is lost
    assert iso.endswith("+07:00")
    assert run("date", day_first, {"from": "dd/MM/yyyy HH:mm:ss", "to": "yyyyMMddHHmmss"}) == compact


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(
        st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=6), min_size=1, max_size=6
    )
)
def test_split_then_join_name_is_lossless(words: list[str]) -> None:
    name = " ".join(words)
    assert run("join_name", run("split_name", name)) == name
