"""Frequencies and negated annotations from HPO's ``phenotype.hpoa`` (shipped extract).

hpo3 ships the disease → term annotations but neither their frequencies nor the difference
between a feature that is present in a disease and one that was *looked for and absent*
(``0/5`` in the frequency column, frequency HP:0040285 "Excluded", or the ``NOT``
qualifier). hpo3 drops the ``NOT`` rows but keeps ``0/n`` rows as ordinary annotations.
This module reads ``knowledge/rare/phenotype_hpoa_2025-01-16.tsv.xz`` — the columns
database_id, qualifier, hpo_id, onset, frequency, sex and aspect of HPO's phenotype.hpoa
release 2025-01-16, rows unchanged — so that scoring can use frequencies and treat absent
features as contradictions.

The extract is ten months older than the annotations in hpo3 (2025-11-24): an annotation
that hpo3 has and the extract lacks is *unknown* (no frequency; it may be a ``0/n`` row).

References
----------
- HPO annotation format (phenotype.hpoa): https://hpo.jax.org/data/annotations
  (frequency as HPO term, n/m or percentage; qualifier ``NOT``).
- MONDO SSSOM mappings (monarch-initiative/mondo, CC0): OMIM and Orphanet ids that are
  exact matches of the same MONDO class name the same disease.
- HPO frequency subontology HP:0040279: obligate 100 %, very frequent 80-99 %, frequent
  30-79 %, occasional 5-29 %, very rare 1-4 %, excluded 0 %.
"""

from __future__ import annotations

import io
import lzma
import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medbrain.core.errors import KnowledgeError

HPOA_EXTRACT = "rare/phenotype_hpoa_2025-01-16.tsv.xz"
EQUIVALENTS = "rare/omim_orpha_equivalents.tsv"

#: Midpoints of the HPO frequency classes (HP:0040280-HP:0040285).
FREQUENCY_TERMS: dict[str, float] = {
    "HP:0040280": 1.0,
    "HP:0040281": 0.895,
    "HP:0040282": 0.545,
    "HP:0040283": 0.17,
    "HP:0040284": 0.025,
    "HP:0040285": 0.0,
}


@dataclass(frozen=True, slots=True, eq=False)
class HpoaExtract:
    """One row per (disease, term) of the phenotype rows, sorted by disease then term.

    ``frequency`` is NaN where no row gives one; ``absent`` marks terms recorded as absent
    in the disease (``NOT`` rows without a positive row, frequency 0). ``spans`` maps each
    disease id to its slice of the arrays; a disease missing from ``spans`` is not in the
    file (its annotations in hpo3 are all of unknown frequency).
    """

    version: str
    spans: dict[str, tuple[int, int]]
    term: npt.NDArray[np.int32]
    frequency: npt.NDArray[np.float32]
    absent: npt.NDArray[np.bool_]

    def annotations(self, disease: str) -> tuple[dict[int, float | None], set[int]]:
        """``({term: frequency or None}, {absent terms})`` of one disease."""
        start, end = self.spans.get(disease, (0, 0))
        present: dict[int, float | None] = {}
        gone: set[int] = set()
        for term, value, absent in zip(
            self.term[start:end].tolist(),
            self.frequency[start:end].tolist(),
            self.absent[start:end].tolist(),
            strict=True,
        ):
            if absent:
                gone.add(term)
            else:
                present[term] = None if math.isnan(value) else value
        return present, gone


def parse_frequency(raw: str) -> float | None:
    """``HP:0040281`` / ``3/7`` / ``45%`` → a fraction in [0, 1]; empty → ``None``."""
    text = raw.strip()
    if not text:
        return None
    if text in FREQUENCY_TERMS:
        return FREQUENCY_TERMS[text]
    try:
        if "/" in text:
            n, m = text.split("/", 1)
            den = int(m)
            return min(max(int(n) / den, 0.0), 1.0) if den > 0 else None
        if text.endswith("%"):
            return min(max(float(text[:-1]) / 100.0, 0.0), 1.0)
    except ValueError:
        return None
    return None


def read_hpoa(lines: Iterable[str]) -> HpoaExtract:
    """Parse extract lines (header comments, a column header, then tab-separated rows).

    Rows of one (disease, term) pair are combined: ``n/m`` counts are summed over cohorts,
    other frequencies take the highest, and the pair is absent when the result is 0 or it
    only has ``NOT`` rows.
    """
    version = ""
    header: list[str] | None = None
    codes: dict[str, int] = {}
    d_col, t_col = array("i"), array("i")
    n_col, m_col, f_col = array("d"), array("d"), array("d")
    not_col = array("b")
    nan = math.nan
    for line in lines:
        if line.startswith("#"):
            if line.startswith("#version:"):
                version = line.split(":", 1)[1].strip()
            continue
        cols = line.rstrip("\n").split("\t")
        if header is None:
            header = cols
            missing = {"database_id", "qualifier", "hpo_id", "frequency", "aspect"} - set(cols)
            if missing:
                raise KnowledgeError(HPOA_EXTRACT, "header", f"missing columns {sorted(missing)}")
            i_db, i_q, i_hpo = (
                cols.index("database_id"),
                cols.index("qualifier"),
                cols.index("hpo_id"),
            )
            i_freq, i_aspect = cols.index("frequency"), cols.index("aspect")
            width = len(cols)
            continue
        if len(cols) < width or cols[i_aspect] != "P":
            continue
        disease, term_text = cols[i_db], cols[i_hpo]
        if not disease.startswith(("OMIM:", "ORPHA:")) or not term_text.startswith("HP:"):
            continue
        d_col.append(codes.setdefault(disease, len(codes)))
        t_col.append(int(term_text[3:]))
        is_not = cols[i_q] == "NOT"
        not_col.append(is_not)
        text = cols[i_freq]
        value = None if is_not else parse_frequency(text)
        if value is not None and "/" in text:
            n, m = text.split("/", 1)
            n_col.append(float(n))
            m_col.append(float(m))
            f_col.append(nan)
        else:
            n_col.append(0.0)
            m_col.append(0.0)
            f_col.append(nan if value is None else value)
    if header is None or not version:
        raise KnowledgeError(HPOA_EXTRACT, "header", "no column header or #version line")
    d = np.frombuffer(d_col, dtype=np.int32).astype(np.int64)
    t = np.frombuffer(t_col, dtype=np.int32).astype(np.int64)
    key = d * 10_000_000 + t
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    n_sum = np.add.reduceat(np.frombuffer(n_col)[order], first) if len(key) else np.zeros(0)
    m_sum = np.add.reduceat(np.frombuffer(m_col)[order], first) if len(key) else np.zeros(0)
    other = np.frombuffer(f_col)[order]
    other_max = np.fmax.reduceat(other, first) if len(key) else np.zeros(0)
    negated = np.frombuffer(not_col, dtype=np.int8)[order].astype(bool)
    only_not = np.logical_and.reduceat(negated, first) if len(key) else np.zeros(0, bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        counted = np.where(m_sum > 0, n_sum / np.where(m_sum > 0, m_sum, 1.0), np.nan)
    frequency = np.fmax(counted, other_max)
    absent = only_not | (frequency == 0.0)
    pair_disease = (key[first] // 10_000_000).astype(np.int64)
    names = list(codes)
    spans: dict[str, tuple[int, int]] = {}
    bounds = np.flatnonzero(np.r_[True, pair_disease[1:] != pair_disease[:-1], True])
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        spans[names[int(pair_disease[a])]] = (a, b)
    return HpoaExtract(
        version=version,
        spans=spans,
        term=(key[first] % 10_000_000).astype(np.int32),
        frequency=frequency.astype(np.float32),
        absent=absent,
    )


def load_hpoa(path: str | None = None) -> HpoaExtract:
    """Read the shipped extract (≈ 1 s) or ``path`` (a .xz or plain extract).

    Not cached: it is only needed while :func:`medbrain.rare.ontology.load_index` builds
    the (cached) index.
    """
    try:
        if path is None:
            data = resources.files("medbrain.knowledge").joinpath(HPOA_EXTRACT).read_bytes()
        else:
            data = Path(path).read_bytes()
        if data[:6] == b"\xfd7zXZ\x00":
            data = lzma.decompress(data)
        text = data.decode("utf-8")
    except (OSError, lzma.LZMAError, UnicodeDecodeError) as exc:
        raise KnowledgeError(path or HPOA_EXTRACT, "file", f"cannot read: {exc}") from exc
    return read_hpoa(io.StringIO(text))


@lru_cache(maxsize=1)
def load_equivalents() -> list[tuple[str, str]]:
    """(OMIM id, Orphanet id) pairs naming the same disease (1:1 MONDO exact matches)."""
    ref = resources.files("medbrain.knowledge").joinpath(EQUIVALENTS)
    pairs: list[tuple[str, str]] = []
    try:
        text = ref.read_text("utf-8")
    except OSError as exc:
        raise KnowledgeError(EQUIVALENTS, "file", f"cannot read: {exc}") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line or line.startswith("#") or line.startswith("omim\t"):
            continue
        cols = line.split("\t")
        if len(cols) < 2 or not cols[0].startswith("OMIM:") or not cols[1].startswith("ORPHA:"):
            raise KnowledgeError(EQUIVALENTS, f"line {number}", "expected OMIM id, ORPHA id")
        pairs.append((cols[0], cols[1]))
    return pairs
