"""Rare-disease ranking over HPO-annotated OMIM/Orphanet diseases, plus rule packs.

Pure engine: data in, results out. The ontology is loaded lazily by
:func:`medbrain.rare.ontology.load_index` and passed to the functions that need it.

References
----------
- Köhler S, et al. The Human Phenotype Ontology in 2021. Nucleic Acids Res 2021;49:D1207-17.
- Robinson PN, et al. LIRICAL. Am J Hum Genet 2020;107:403-17.
- 国家卫生健康委员会等.《第一批罕见病目录》(2018).
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
