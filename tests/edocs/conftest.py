"""Fixtures of the document exchange tests: one dev PKI per session."""

from pathlib import Path

import pytest

from tests.edocs.harness import Pki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("edocs-pki")))
