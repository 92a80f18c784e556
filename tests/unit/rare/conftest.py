"""One ontology load per test session (hpo3 ≈ 1 s + index ≈ 2-3 s on 2 cores)."""

from __future__ import annotations

import pytest

from medbrain.rare import PhenotypeIndex, RareKnowledge, default_rare_knowledge, load_index


@pytest.fixture(scope="session")
def index() -> PhenotypeIndex:
    return load_index()


@pytest.fixture(scope="session")
def knowledge() -> RareKnowledge:
    return default_rare_knowledge()
