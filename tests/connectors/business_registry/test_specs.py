"""The shipped business registry mapping specs load and pass their example pairs."""

from pathlib import Path

import mappings
from mappings import SpecLoader, run_examples

SPECS = Path(mappings.__file__).parent / "specs" / "business_registry"


def test_specs_examples_all_pass() -> None:
    # Given the business registry specs and their examples
    results = run_examples(SPECS, loader=SpecLoader())
    # When they run, Then every spec has cases and every case passes
    assert {Path(r.spec).stem for r in results} == {
        "enterprise_lookup_to_platform",
        "enterprise_search_to_platform",
        "enterprise_from_platform",
        "enterprise_search_from_platform",
    }
    failed = [f"{r.spec}:{r.case}: {r.detail}" for r in results if not r.passed]
    assert failed == []
