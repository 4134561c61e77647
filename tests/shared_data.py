"""The external conformance data (``shared/testdata``): beside this checkout, as CI lays it out, or else
the workplace's copy. Missing, it stops the tests that use it (an empty suite would pass silently)."""

from pathlib import Path

_BESIDE = Path(__file__).resolve().parents[2] / "shared" / "testdata"
_WORKPLACE = Path("/work/shared/testdata")

TESTDATA = _BESIDE if _BESIDE.is_dir() else _WORKPLACE
if not TESTDATA.is_dir():
    raise RuntimeError(f"no shared test data at {_BESIDE} or {_WORKPLACE}")

__all__ = ["TESTDATA"]
