"""The shipped population_db mapping specs against their example pairs."""

from pathlib import Path

import mappings
from mappings import SpecLoader, run_examples

SPECS = Path(mappings.__file__).parent / "specs" / "population_db"


def test_population_db_specs_pass_their_examples() -> None:
    # Given the shipped specs of the population DB and their example pairs
    # When every example is run
    results = run_examples(SPECS, loader=SpecLoader())
    # Then each spec has examples and every one passes
    failures = [f"{Path(r.spec).name} {r.case}: {r.detail}" for r in results if not r.passed]
    assert not failures, "\n".join(failures)
    assert {Path(r.spec).stem for r in results} == {
        "citizen_query_to_c06",
        "c06_to_citizen",
        "c06_to_verify_result",
    }
