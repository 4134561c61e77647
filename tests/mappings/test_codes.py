"""Code tables: CSV and YAML files, columns, inversion, unknown-code policies, line-numbered errors."""

from pathlib import Path

import pytest

from mappings import CodeTable, SpecError, TransformError, Unknown
from mappings.codes import read_code_table


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_csv_skips_comments_and_picks_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "# provinces\ncode,id_code,name\n\n01,001,Hà Nội\n96,096,Cà Mau\n")
    assert read_code_table(path) == {"01": "001", "96": "096"}
    assert read_code_table(path, key="id_code", value="name") == {"001": "Hà Nội", "096": "Cà Mau"}


def test_read_yaml_table_turns_codes_into_strings(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "table: s\ncodes:\n  1: '2'\n  done: 9\n")
    assert read_code_table(path) == {"1": "2", "done": 9}


def test_read_inverted_table_maps_national_back(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "code,national\nmale,1\nfemale,2\n")
    assert read_code_table(path, invert=True) == {"1": "male", "2": "female"}


@pytest.mark.parametrize(
    ("name", "text", "invert", "line", "message"),
    [
        (
            "d.csv",
            "code,national\na,1\n# note\na,2\n",
            False,
            4,
            "code 'a' is listed twice (first at line 2)",
        ),
        ("d.csv", "code,national\na,1\nb,1\n", True, 3, "value '1' is listed twice"),
        ("d.csv", "code,national\na,1,extra\n", False, 2, "expected 2 cells, found 3"),
        ("d.csv", "code\na\n", False, 1, "at least two columns"),
        ("d.yaml", "codes:\n  a: 1\n  b: 2\n  a: 3\n", False, 4, "duplicate key 'a' (first at line 2)"),
        ("d.yaml", "codes:\n  1: x\n  '1': y\n", False, 3, "duplicate key '1'"),
        ("d.yaml", "codes:\n  1: x\n  0x1: y\n", False, 3, "duplicate key 1 (first at line 2)"),
        ("d.yaml", "codes: {a: 1}\nextra: 1\n", False, 2, "unknown key 'extra'"),
        ("d.yaml", "codes:\n  a: [1]\n", False, 2, "a code maps to a scalar"),
    ],
)
def test_read_invalid_table_names_file_and_line(
    tmp_path: Path, name: str, text: str, invert: bool, line: int, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(SpecError) as info:
        read_code_table(path, invert=invert)
    assert info.value.file == str(path) and info.value.line == line
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("name", "text"), [("d.csv", "# only comments\n"), ("d.txt", "a,b\n"), ("d.yaml", "- a\n")]
)
def test_read_unusable_table_is_refused(tmp_path: Path, name: str, text: str) -> None:
    with pytest.raises(SpecError):
        read_code_table(write(tmp_path, name, text))


def test_lookup_policies() -> None:
    codes = {"a": "1", "7": "x"}
    assert CodeTable("t", codes).lookup("a") == "1"
    assert CodeTable("t", codes).lookup(7) == "x"
    assert CodeTable("t", codes, Unknown.DEFAULT, "0").lookup("b") == "0"
    assert CodeTable("t", codes, Unknown.PASS).lookup("b") == "b"
    with pytest.raises(TransformError, match="unknown code 'b' in code table 't'"):
        CodeTable("t", codes).lookup("b")
    with pytest.raises(TransformError, match="a code must be a string or an integer"):
        CodeTable("t", codes).lookup(True)
