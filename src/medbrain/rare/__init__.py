"""Rare-disease ranking over HPO-annotated OMIM/Orphanet diseases, plus rule packs.

Pure engine: data in, results out. The ontology is loaded lazily by
:func:`medbrain.rare.ontology.load_index` and passed to the functions that need it.
"""

from medbrain.rare.knowledge import RareKnowledge, default_rare_knowledge, load_rare_knowledge
from medbrain.rare.model import RareCase, parse_case
from medbrain.rare.ontology import PhenotypeIndex, is_available, load_index
from medbrain.rare.rank import Candidate, RankResult, rank_case, rank_document
from medbrain.rare.score import ScoringParams
from medbrain.rare.text import TextMatch, extract_phenotypes

__all__ = [
    "Candidate",
    "PhenotypeIndex",
    "RankResult",
    "RareCase",
    "RareKnowledge",
    "ScoringParams",
    "TextMatch",
    "default_rare_knowledge",
    "extract_phenotypes",
    "is_available",
    "load_index",
    "load_rare_knowledge",
    "parse_case",
    "rank_case",
    "rank_document",
]
