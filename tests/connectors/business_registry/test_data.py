"""The synthetic business registry: deterministic, valid tax codes, O(1) code ↔ index."""

import random
import unicodedata

import pytest
from stdnum.vn import mst

from connectors.business_registry.data import STATUS_NAMES, Registry, fold


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry(seed=7, size=50_000, search_limit=10_000)


def test_registry_default_size_is_at_least_50000() -> None:
    assert len(Registry()) >= 50_000


def test_codes_are_valid_distinct_tax_codes_and_invert(registry: Registry) -> None:
    # Given a sample of indices across the whole registry
    sample = [*random.Random(1).sample(range(len(registry)), 3000), 0, len(registry) - 1]
    # When their codes are computed
    codes = [registry.code_of(i) for i in sample]
    # Then each is a distinct valid 10-digit MST and maps back to its index
    assert all(len(c) == 10 and mst.is_valid(c) for c in codes)
    assert len(set(codes)) == len(codes)
    assert [registry.index_of(c) for c in codes] == sample


def test_index_of_refuses_codes_outside_the_registry(registry: Registry) -> None:
    assert registry.index_of("0100233480") is None  # bad check digit
    assert registry.index_of("0100233488") is None  # valid, not generated
    assert Registry(seed=7, size=10).index_of(registry.code_of(49_999)) is None


def test_registry_is_deterministic_per_seed(registry: Registry) -> None:
    again = Registry(seed=7, size=50_000)
    other = Registry(seed=8, size=50_000)
    assert again.enterprise(1234) == registry.enterprise(1234)
    assert other.code_of(1234) != registry.code_of(1234)


def test_enterprises_cover_every_status_with_vietnamese_text(registry: Registry) -> None:
    records = [registry.enterprise(i) for i in range(1500)]
    assert {r.status for r in records} == set(STATUS_NAMES)
    assert all(r.status_name == STATUS_NAMES[r.status] for r in records)
    assert any(unicodedata.normalize("NFD", r.address) != r.address for r in records)
    assert any("Ơ" in r.name or "Ư" in r.name or "Đ" in r.name for r in records)


def test_branches_have_10_3_codes_of_their_enterprise(registry: Registry) -> None:
    record = next(e for e in (registry.enterprise(i) for i in range(500)) if len(e.branches) >= 2)
    assert [b.code for b in record.branches] == [
        f"{record.code}-{n:03d}" for n in range(1, len(record.branches) + 1)
    ]
    assert all(mst.is_valid(b.code) for b in record.branches)
    assert registry.lookup(record.branches[1].code) == record.branches[1]


def test_search_ignores_diacritics_and_case(registry: Registry) -> None:
    total, items = registry.search("hoàng LONG", 1, 10)
    assert total == registry.search("hoang long", 1, 10)[0] > 0
    assert all({"hoang", "long"} <= set(fold(e.name).split()) for e in items)


def test_search_empty_query_finds_nothing(registry: Registry) -> None:
    assert registry.search("   ") == (0, [])


def test_fold_strips_vietnamese_marks() -> None:
    assert fold("CÔNG TY ĐẦU TƯ Phước Lộc") == "cong ty dau tu phuoc loc"
