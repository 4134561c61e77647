"""Which columns of a batch go as arrays and which as single values (hub/store/unnest.py)."""

from hub.store.unnest import split_columns


def test_unnest_columns_alike_in_every_row_go_once_and_the_rest_as_arrays() -> None:
    rows = [
        {"id": "a", "state": "queued", "attempts": 0, "error": None, "size": 1},
        {"id": "b", "state": "queued", "attempts": 0, "error": None, "size": 2},
    ]
    assert split_columns(rows) == (("id", "size"), ("state", "attempts", "error"))


def test_unnest_equal_values_of_different_types_are_not_alike() -> None:
    # 0 == False and 1 == 1.0 in Python, but the database would store them differently
    rows = [{"flag": 0, "ratio": 1, "text": None}, {"flag": False, "ratio": 1.0, "text": ""}]
    assert split_columns(rows) == (("flag", "ratio", "text"), ())


def test_unnest_named_columns_stay_arrays_and_one_array_always_remains() -> None:
    one = [{"document": "d1", "organ": "H40.12"}]
    assert split_columns(one, arrays=("document",)) == (("document",), ("organ",))
    # A single row (or rows all alike) still needs one array to carry the number of rows
    assert split_columns(one) == (("document",), ("organ",))
    assert split_columns(one * 3) == (("document",), ("organ",))
    assert split_columns([]) == ((), ())
