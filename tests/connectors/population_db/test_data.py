"""The synthetic population: deterministic, valid ids decoded in O(1), consistent households."""

import re

import pytest

from connectors.population_db.codes import CENTURY_DIGITS, PROVINCES
from connectors.population_db.data import HOUSEHOLD_SIZE, Population

SAMPLE = (0, 1, 2, 3, 4, 5, 6, 12_345, 54_321, 99_997, 99_999)


def test_population_same_seed_same_citizens() -> None:
    # Given two populations built from the same seed
    first, second = Population(seed=7), Population(seed=7)
    # When the same indexes are generated
    # Then every citizen is identical
    for index in SAMPLE:
        assert first.citizen(index) == second.citizen(index)


def test_population_other_seed_other_citizens() -> None:
    # Given populations from two seeds
    # When the same index is generated
    # Then the ids differ
    assert Population(seed=7).personal_id(10) != Population(seed=8).personal_id(10)


def test_population_ids_are_valid_and_decode_to_their_index() -> None:
    # Given the default population of 100,000
    population = Population()
    assert population.size >= 100_000
    for index in SAMPLE:
        # When a citizen is generated
        citizen = population.citizen(index)
        pid = citizen.personal_id
        # Then the id is PPP + century/sex digit + YY + serial, consistent with the record
        assert re.fullmatch(r"[0-9]{12}", pid)
        assert pid[:3] in PROVINCES
        century, sex = CENTURY_DIGITS[pid[3]]
        assert (century + int(pid[4:6]), sex) == (citizen.birth_date.year, citizen.sex)
        # And it decodes back to the same citizen
        assert population.index_of(pid) == index
        assert population.find(pid) == citizen


def test_population_ids_are_unique() -> None:
    # Given a population of 5,000
    population = Population(size=5_000)
    # When every id is generated
    ids = {population.personal_id(index) for index in range(population.size)}
    # Then no two citizens share one
    assert len(ids) == population.size


def test_population_lookalike_id_is_not_found() -> None:
    # Given a real id with another province code, and one whose serial decodes past the end
    population = Population(size=1_000)
    real = population.personal_id(3)
    other_province = ("079" if real[:3] != "079" else "001") + real[3:]
    # When they are looked up
    # Then neither is found
    assert population.find(other_province) is None
    assert population.find("001099999999") is None
    assert population.find("not-an-id") is None


def test_population_relatives_resolve_to_agreeing_records() -> None:
    # Given a child of a household (slot 2..4)
    population = Population()
    child = population.citizen(5 * HOUSEHOLD_SIZE + 3)
    assert child.father is not None and child.mother is not None and child.spouse is None
    # When the parents are looked up by the ids the child's record holds
    father = population.find(child.father.personal_id)
    mother = population.find(child.mother.personal_id)
    # Then they exist, their names agree, they are married to each other and head the household
    assert father is not None and mother is not None
    assert (father.full_name, mother.full_name) == (child.father.full_name, child.mother.full_name)
    assert (father.sex, mother.sex) == ("1", "2")
    assert father.spouse is not None and father.spouse.personal_id == mother.personal_id
    assert mother.spouse is not None and mother.spouse.personal_id == father.personal_id
    assert child.household_head.personal_id == father.personal_id == mother.household_head.personal_id
    assert child.household_id == father.household_id
    assert child.family_name == father.family_name
    assert child.birth_date.year - mother.birth_date.year >= 19


def test_population_names_and_addresses_are_vietnamese() -> None:
    # Given some citizens
    population = Population()
    citizens = [population.citizen(index) for index in range(0, 5_000, 50)]
    # When their names and addresses are read
    text = " ".join(c.full_name + c.permanent_address for c in citizens)
    # Then diacritics appear and names have a family and a given name
    assert set(text) & set("ễếệưởạđ")
    assert all(c.family_name and c.given_name for c in citizens)


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"size": 1_000_001}, {"seed": -1}])
def test_population_refuses_bad_parameters(kwargs: dict[str, int]) -> None:
    # Given parameters outside the supported range
    # When a population is built
    # Then it is refused
    with pytest.raises(ValueError):
        Population(**kwargs)


def test_population_citizen_index_out_of_range_is_refused() -> None:
    # Given a population of 10
    # When index 10 is asked for
    # Then it is refused
    with pytest.raises(IndexError):
        Population(size=10).citizen(10)
