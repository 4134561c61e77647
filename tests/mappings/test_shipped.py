"""The shipped specs and code tables: every spec (whoever wrote it) loads and passes its examples."""

import csv
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings import SpecLoader, discover_specs, load_spec, run_examples, shipped, shipped_names
from mappings.loader import SPECS_DIR

SPEC_FILES = discover_specs(SPECS_DIR)


def test_shipped_specs_are_discovered_generically() -> None:
    names = shipped_names()
    assert {"public_service_portal/dossier_to_dvcqg", "payment_portal/payment_to_bill_info"} <= set(names)
    assert len(names) == len(SPEC_FILES)


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.relative_to(SPECS_DIR).as_posix())
def test_shipped_spec_loads_and_passes_its_examples(loader: SpecLoader, path: Path) -> None:
    results = run_examples(path, loader=loader)
    failures = [f"{r.case}: {r.detail}" for r in results if not r.passed]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "path", [p for p in SPEC_FILES if "reversible: true" in p.read_text(encoding="utf-8")]
)
def test_shipped_reversible_spec_names_a_reverse_that_points_back(loader: SpecLoader, path: Path) -> None:
    spec = loader.load(path)
    assert spec.reversible and spec.reverse is not None
    assert loader.load(spec.reverse).reverse == path


def test_province_table_has_63_provinces_with_id_codes() -> None:
    with (SPECS_DIR / "code_tables" / "province.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    assert len(rows) == 63 == len({r["code"] for r in rows}) == len({r["id_code"] for r in rows})
    assert all(r["id_code"] == f"0{r['code']}" for r in rows)
    by_code = {r["id_code"]: r["name"] for r in rows}
    assert (by_code["001"], by_code["079"], by_code["096"]) == ("Hà Nội", "Hồ Chí Minh", "Cà Mau")


# Canonical names are NFC words separated by single spaces; that is the form that round-trips.
WORD = st.text(
    alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyAĂÂĐÔƠƯàáảãạằắẳẵặầấẩẫậềếểễệốồổỗộờớởỡợừứửữự", min_size=1, max_size=8
)
PERSON = st.fixed_dictionaries(
    {
        "personal_id": st.from_regex(r"\A0[0-9]{11}\Z"),
        "full_name": st.lists(WORD, min_size=1, max_size=6).map(" ".join),
        "birth_date": st.dates().map(lambda d: d.isoformat()),
    },
    optional={"gender": st.sampled_from(["male", "female", "unknown"])},
)


@settings(max_examples=150, deadline=None)
@given(person=PERSON)
def test_person_to_c06_round_trips_without_loss(person: dict[str, str]) -> None:
    # Given a canonical person and the reverse spec the forward spec names
    forward = shipped("common/person_to_c06")
    assert forward.reversible and forward.reverse is not None
    # When it goes to C06 and back, Then nothing is lost
    assert load_spec(forward.reverse).apply(forward.apply(person)) == person


def _c06(words: list[str], person_id: str, born: date, gender: str | None) -> dict[str, object]:
    parts = {"Ho": "", "ChuDem": "", "Ten": words[0]}
    if len(words) > 1:
        parts = {"Ho": words[0], "ChuDem": " ".join(words[1:-1]), "Ten": words[-1]}
    document = {
        "SoDinhDanh": person_id,
        "HoVaTen": parts,
        "NgayThangNamSinh": {"NgayThangNam": f"{born:%Y%m%d}"},
    }
    return document if gender is None else {**document, "GioiTinh": gender}


C06_PERSON = st.builds(
    _c06,
    st.lists(WORD, min_size=1, max_size=6),
    st.from_regex(r"\A0[0-9]{11}\Z"),
    st.dates(min_value=date(1000, 1, 1)),
    st.sampled_from([None, "0", "1", "2"]),
)


@settings(max_examples=150, deadline=None)
@given(citizen=C06_PERSON)
def test_person_from_c06_round_trips_without_loss(citizen: dict[str, object]) -> None:
    back = shipped("common/person_from_c06")
    assert back.reversible and back.reverse is not None
    assert load_spec(back.reverse).apply(back.apply(citizen)) == citizen
