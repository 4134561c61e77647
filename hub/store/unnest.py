"""Many rows in one PostgreSQL statement: one array parameter per column, unnested into rows.

An executemany INSERT costs a statement per row on both sides; one statement with an array per column
costs one. asyncpg spends about a microsecond encoding each array element, so a column that holds the
same value in every row of a batch (a batch of one document's deliveries share most of theirs) is sent
once, as a scalar, and repeated by the SELECT. The statement text then depends on which columns are
alike; there are few such shapes, and each is cached.
"""

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

Split = tuple[tuple[str, ...], tuple[str, ...]]


def split_columns(rows: Sequence[Mapping[str, Any]], *, arrays: Collection[str] = ()) -> Split:
    """The columns of ``rows`` (those of the first row, as an executemany INSERT takes them) as
    ``(arrays, scalars)``: those whose values differ between rows, or are named in ``arrays``, and those
    holding one value (of one type) in all of them. At least one column is an array."""
    if not rows:
        return (), ()
    varying: list[str] = []
    alike: list[str] = []
    for column, value in rows[0].items():
        kind = type(value)
        uniform = column not in arrays and all(
            type(row[column]) is kind and row[column] == value for row in rows
        )
        (alike if uniform else varying).append(column)
    if not varying:  # one row, or rows all alike: one array still has to carry the number of rows
        varying.append(alike.pop(0))
    return tuple(varying), tuple(alike)


def unnest_rows(table: sa.Table, arrays: Sequence[str], scalars: Sequence[str]) -> str:
    """``(columns) SELECT ...`` for ``INSERT INTO table``: the rows as parameters named
    ``<table>__<column>`` (arrays for ``arrays``, single values for ``scalars``); the unnested rows are
    ``batch`` for a WHERE clause to follow."""
    types = {c.name: c.type.compile(dialect=postgresql.dialect()) for c in table.c}
    unnested = ", ".join(f"CAST(:{table.name}__{c} AS {types[c]}[])" for c in arrays)
    constants = "".join(f", CAST(:{table.name}__{c} AS {types[c]})" for c in scalars)
    names = ", ".join((*arrays, *scalars))
    return f"({names}) SELECT batch.*{constants} FROM unnest({unnested}) AS batch ({', '.join(arrays)})"


def unnest_parameters(table: sa.Table, rows: Sequence[Mapping[str, Any]], split: Split) -> dict[str, Any]:
    """The parameters of ``unnest_rows(table, *split)`` for ``rows``."""
    arrays, scalars = split
    parameters: dict[str, Any] = {f"{table.name}__{c}": [row[c] for row in rows] for c in arrays}
    parameters.update((f"{table.name}__{c}", rows[0][c]) for c in scalars)
    return parameters


__all__ = ["Split", "split_columns", "unnest_parameters", "unnest_rows"]
