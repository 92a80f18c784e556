"""Evaluate and time ``medbrain rare rank`` on public phenopackets (a script; not collected).

Run: ``.venv/bin/python tests/bench/bench_rare.py [--cases 1000] [--baseline-cases 300]
[--git-dir /path/to/phenopacket-store.git]``

Cases come from monarch-initiative/phenopacket-store (BSD-3-Clause; see NOTICE): by default
the 1,000-case sample shipped in ``tests/fixtures/rare/phenopackets_sample.json`` (ids,
diagnosis and HPO terms only), or, with ``--git-dir``, every phenopacket read straight from a
clone with ``git cat-file`` and sampled with a fixed seed. Reports top-1/3/10 by exact
disease id (the rank the engine actually outputs, ties broken as the engine breaks them) for
MedBrain's score and, in the same run, for plain hpo3 semantic similarity (Resnik,
funSimAvg) as the baseline, plus per-case time p50/p99. Phenopackets are used to evaluate
and to set a handful of global parameters only; nothing is learned per disease.

Targets (issue 10): ≥ 55 % top-1, ≥ 72 % top-10, ≤ 200 ms per case; printed, not asserted.

Headline (last section): the **held-out store**, ``tests/fixtures/rare/phenopackets_heldout.json.xz``
— every other usable phenopacket of the same commit (9,577 cases, 8,140 of them with a
diagnosis that hpo3 annotates), never used to choose anything — with plain hpo3 similarity
on 1,000 of them drawn with a fixed seed, and what phenotype matching can do there.

Held-out evaluation: each case falls in half A or half B by ``sha256(case id) % 2``. The
global parameters of :class:`ScoringParams` were tuned on half A only (coordinate search,
objective top-1 + ½·top-10); half B is the honest estimate. Rows printed per half:

- ``medbrain output``: the rank of the diagnosis's exact id in what ``rank_case`` returns
  (OMIM/Orphanet equivalents listed once, under the OMIM id, ranked by the better of the
  two scores) — the headline;
- ``output, id or equivalent*``: the same list, also counting a candidate whose
  ``equivalent_ids`` hold the diagnosis (NOT by exact id; for information);
- ``scores unmerged``: exact id in the per-id ranking of the same scores (no merging);
- ``session 4 release output``: the previous release (frequencies combined by their
  maximum, unweighted coverage ``disease_weight`` 0.1), exact id, as the engine outputs it;
- ``session 3 release output``: the release before (equivalents listed under the
  better-scoring id, ``disease_weight`` 0.002), exact id, as the engine outputs it;
- ``new params, hpo3 annotations``: the same parameters on hpo3's annotations alone;
- ``session 2 release``: the session-2 parameters on hpo3's annotations alone;

and plain hpo3 similarity on the first held-out cases in the same run. Then, per half, where
the diagnoses that are not first lose (:func:`miss_anatomy`): how many cases phenotype matching
alone could put first at all. Times: wall clock
(``perf_counter``) and CPU (``process_time``) per case; the load average is printed at the
start and the end (the machine is shared).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from medbrain.core.errors import InputError
from medbrain.rare import default_rare_knowledge, load_index, parse_case, rank_case
from medbrain.rare.annotations import load_equivalents, load_hpoa
from medbrain.rare.knowledge import RareKnowledge
from medbrain.rare.model import RareCase
from medbrain.rare.ontology import HIGHEST, PhenotypeIndex, _ontology, build_index
from medbrain.rare.recommend import suggest_phenotypes, unrecorded_features
from medbrain.rare.score import ScoringParams, pair_scores, ranked_columns, score_case

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rare"
SAMPLE = FIXTURES / "phenopackets_sample.json"
HELD_OUT = FIXTURES / "phenopackets_heldout.json.xz"


def read_git(git_dir: str, n: int, seed: int) -> list[dict[str, Any]]:
    """Every phenopacket JSON in a phenopacket-store clone, sampled to ``n`` cases."""
    names = [
        name
        for name in subprocess.run(
            ["git", "--git-dir", git_dir, "ls-tree", "-r", "--name-only", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        if "/phenopackets/" in name and name.endswith(".json")
    ]
    proc = subprocess.Popen(
        ["git", "--git-dir", git_dir, "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout
    cases = []
    for name in names:
        proc.stdin.write(f"HEAD:{name}\n".encode())
        proc.stdin.flush()
        size = int(proc.stdout.readline().split()[2])
        packet = json.loads(proc.stdout.read(size))
        proc.stdout.read(1)
        diseases = [d["term"]["id"] for d in packet.get("diseases", []) if "term" in d]
        features = packet.get("phenotypicFeatures", [])
        sex = str(packet.get("subject", {}).get("sex", "")).lower()
        cases.append(
            {
                "id": packet.get("id"),
                "disease": diseases[0] if diseases else None,
                "hpo": [f["type"]["id"] for f in features if not f.get("excluded")],
                "excluded_hpo": [f["type"]["id"] for f in features if f.get("excluded")],
                "sex": sex if sex in ("male", "female") else None,
            }
        )
    proc.stdin.close()
    proc.wait()
    cases = [c for c in cases if c["disease"] and c["hpo"]]
    return random.Random(seed).sample(cases, min(n, len(cases)))


#: The previous release (session 4), on an index whose frequencies combine by their maximum.
SESSION4_RELEASE = ScoringParams(disease_weight=0.1, coverage="mean")

#: The release before (session 3): all annotations, equivalents under the better score.
SESSION3_RELEASE = ScoringParams(disease_weight=0.002, coverage="mean")

#: The scoring parameters of the session-2 release (used with hpo3's annotations alone).
PREVIOUS_RELEASE = ScoringParams(
    gap=3.0,
    miss=0.5,
    excluded_weight=0.3,
    excluded_exact_weight=0.0,
    disease_weight=0.002,
    freq_weight=0.0,
    absent_penalty=0.0,
    absent_bonus=0.0,
    coverage="mean",
)


def half_of(case_id: str) -> str:
    """ "A" (tuning) or "B" (held out), fixed by the case id."""
    return "AB"[int(hashlib.sha256(case_id.encode()).hexdigest(), 16) % 2]


def rank_of(total: np.ndarray, column: int) -> int:
    order = np.lexsort((np.arange(len(total)), -total))
    return int(np.flatnonzero(order == column)[0]) + 1


def summarise(
    name: str,
    ranks: list[int | None],
    times: list[float],
    n_in: int,
    cpu: list[float] | None = None,
) -> None:
    n = len(ranks)

    def top(k: int) -> str:
        hits = sum(1 for r in ranks if r is not None and r <= k)
        return f"{100 * hits / n:5.1f}% ({100 * hits / max(n_in, 1):5.1f}% of annotated)"

    p50, p99 = (np.percentile(times, q) * 1000 for q in (50, 99))
    line = (
        f"{name:<28} n={n:<5} top1 {top(1)}  top3 {top(3)}  top10 {top(10)}  "
        f"wall p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
    )
    if cpu:
        c50, c99 = (np.percentile(cpu, q) * 1000 for q in (50, 99))
        line += f"  cpu p50 {c50:5.1f} ms  p99 {c99:5.1f} ms"
    print(line)


def match_depth(index: PhenotypeIndex, rows: list[int]) -> np.ndarray:
    """Per observed row and disease, the information content of their most informative common
    ancestor: how specifically each disease explains each feature."""
    depth = np.zeros((len(rows), index.n_diseases))
    for k, q in enumerate(rows):
        for a in index.ancestors[q]:  # IC ascending: more specific ancestors overwrite
            depth[k, index.term_diseases[a]] = index.ic[a]
    return depth


def miss_anatomy(
    index: PhenotypeIndex, cases: list[tuple[str, list[int], list[int], str | None]], n_all: int
) -> None:
    """Sort the cases by what phenotype matching can do for them, and the top-1 misses by why
    they were lost (``cases``: diagnosis, observed rows, excluded rows and sex of the
    annotated cases among ``n_all``).

    A *dominating rival* explains every observed feature at least as specifically as the
    diagnosis, one feature more specifically, and carries no excluded feature the diagnosis
    lacks: matching alone never puts the diagnosis above it; only frequencies, the disease
    side or a prior can. The share of cases with fewer than k dominating rivals bounds top-k
    for any score that respects dominance.
    """
    bound = {1: 0, 3: 0, 10: 0}
    why = {"dominated": 0, "tie on matching": 0, "trade-off": 0, "diagnosis dominates": 0}
    for truth, observed, excluded, sex in cases:
        column = index.column[truth]
        depth = match_depth(index, observed)
        ours = depth[:, column : column + 1]
        allowed = np.ones(index.n_diseases, dtype=bool)
        for e in excluded:
            carries = np.zeros(index.n_diseases, dtype=bool)
            carries[index.term_diseases[e]] = True
            if not carries[column]:
                allowed &= ~carries
        rival = (depth >= ours - 1e-9).all(axis=0) & (depth > ours + 1e-9).any(axis=0) & allowed
        rival[column] = False
        if len(index.equivalent) == index.n_diseases and index.equivalent[column] >= 0:
            rival[index.equivalent[column]] = False
        for k in bound:
            bound[k] += int(rival.sum()) < k
        total = score_case(index, observed, excluded, sex=sex).total
        _, source = pair_scores(index, total)
        order = ranked_columns(index, total)
        if order[0] == column:
            continue
        winner = depth[:, source[order[0]]]
        better = bool((winner > ours[:, 0] + 1e-9).any())
        worse = bool((winner < ours[:, 0] - 1e-9).any())
        if better and not worse:
            why["dominated"] += 1
        elif better:
            why["trade-off"] += 1
        elif worse:
            why["diagnosis dominates"] += 1
        else:
            why["tie on matching"] += 1
    n = len(cases)
    print(
        "  fewer than k dominating rivals (a bound for scores that respect dominance): "
        + "  ".join(
            f"top{k} {100 * v / n_all:5.1f}% ({100 * v / n:5.1f}% of annotated)"
            for k, v in bound.items()
        )
    )
    print(
        "  top-1 misses, winner vs diagnosis on matching: "
        + ", ".join(f"{k} {v}" for k, v in why.items())
    )


def parse_cases(
    cases: list[dict[str, Any]], index: PhenotypeIndex, knowledge: RareKnowledge
) -> list[tuple[dict[str, Any], RareCase]]:
    """Each phenopacket as the engine's validated case; HPO ids this hpo3 release does not
    know (newer terms) are left out rather than refused."""
    parsed = []
    for c in cases:
        doc = {"hpo": c["hpo"], "excluded_hpo": c["excluded_hpo"], "sex": c["sex"]}
        doc = {k: v for k, v in doc.items() if v is not None}
        try:
            parsed.append((c, parse_case(doc, index, knowledge, lang="en")))
        except InputError:
            doc["hpo"] = [h for h in c["hpo"] if int(h[3:]) in index.term_row]
            doc["excluded_hpo"] = [h for h in c["excluded_hpo"] if int(h[3:]) in index.term_row]
            parsed.append((c, parse_case(doc, index, knowledge, lang="en")))
    return parsed


class PlainSimilarity:
    """The baseline: hpo3's own Resnik similarity (funSimAvg) against every OMIM and
    Orphanet disease, as a user of hpo3 would rank them."""

    def __init__(self) -> None:
        from pyhpo import HPOSet, Ontology

        omim = sorted(Ontology.omim_diseases, key=lambda d: int(d.id))
        orpha = sorted(Ontology.orpha_diseases, key=lambda d: int(d.id))
        ids = [f"OMIM:{d.id}" for d in omim] + [f"ORPHA:{d.id}" for d in orpha]
        self._query = HPOSet
        self._sets = [HPOSet.from_omim_disease(d) for d in omim] + [
            HPOSet.from_orpha_disease(d) for d in orpha
        ]
        self._where = {d: i for i, d in enumerate(ids)}

    def rank(self, case: RareCase, truth: str) -> tuple[int | None, float]:
        """The diagnosis's rank (None when hpo3 has no annotation for it) and seconds taken."""
        started = time.perf_counter()
        query = self._query(list(case.observed))
        sim = np.array(
            query.similarity_scores(self._sets, kind="omim", method="resnik", combine="funSimAvg")
        )
        elapsed = time.perf_counter() - started
        column = self._where.get(truth)
        return (rank_of(sim, column) if column is not None else None), elapsed


def annotated_rows(
    index: PhenotypeIndex, parsed: list[tuple[dict[str, Any], RareCase]]
) -> list[tuple[str, list[int], list[int], str | None]]:
    return [
        (
            c["disease"],
            [index.term_row[t] for t in case.observed],
            [index.term_row[t] for t in case.excluded],
            case.sex,
        )
        for c, case in parsed
        if c["disease"] in index.column
    ]


def question_value(
    index: PhenotypeIndex, parsed: list[tuple[dict[str, Any], RareCase]], n_cases: int
) -> None:
    """Do the suggested features help? Each case (annotated diagnosis, ≥ 4 observed
    features) starts from a random half of its observed features; three features are asked,
    answered from the full phenopacket (present when it records the feature or a more
    specific one, absent when it excludes the feature or a broader one), and the case is
    ranked again. Two settings:

    - *open*: the suggestions as shipped (unrecorded features of the leading candidates);
      most answers are unknown, because a phenopacket records only what its authors looked
      at. The control asks three random features of the same pool.
    - *answerable*: both methods choose among the features the phenopacket does answer
      (its hidden observed features and its excluded ones): the suggestions' choice by
      information gain against a random choice, as a clinician who can examine for any
      feature would use them.
    """
    rng = random.Random(11)
    eligible = [
        (c, case) for c, case in parsed if c["disease"] in index.column and len(case.observed) >= 4
    ]
    chosen = rng.sample(eligible, min(n_cases, len(eligible)))
    methods = (
        "first half only",
        "open: +3 suggested",
        "open: +3 random (control)",
        "answerable: +3 suggested",
        "answerable: +3 random",
        "all features",
    )
    ranks: dict[str, list[int]] = {m: [] for m in methods}
    answered = {m: [0, 0, 0] for m in methods[1:5]}  # present, absent, unknown
    seconds: list[float] = []

    def rank_with(observed: list[int], excluded: list[int], sex: str | None, truth: int) -> int:
        total = score_case(index, observed, excluded, sex=sex).total
        return int(np.flatnonzero(ranked_columns(index, total) == truth)[0]) + 1

    for c, case in chosen:
        truth = index.column[c["disease"]]
        full = [index.term_row[t] for t in case.observed]
        full_excluded = [index.term_row[t] for t in case.excluded]
        present = {a for q in full for a in index.ancestors[q].tolist()}
        shown = rng.sample(full, len(full) // 2)
        total = score_case(index, shown, [], sex=case.sex).total
        ranks[methods[0]].append(rank_with(shown, [], case.sex, truth))
        ranks[methods[5]].append(rank_with(full, full_excluded, case.sex, truth))
        started = time.process_time()
        open_asked = [s.row for s in suggest_phenotypes(index, total, shown, [], limit=3)]
        seconds.append(time.process_time() - started)
        leading = pair_scores(index, total)[1][ranked_columns(index, total)[:10]].tolist()
        pool = unrecorded_features(index, leading, shown, [])
        answerable = sorted({q for q in full if q not in shown} | set(full_excluded))
        suggested = suggest_phenotypes(index, total, shown, [], limit=3, questions=answerable)
        for method, questions in (
            (methods[1], open_asked),
            (methods[2], rng.sample(pool, min(3, len(pool)))),
            (methods[3], [s.row for s in suggested]),
            (methods[4], rng.sample(answerable, min(3, len(answerable)))),
        ):
            observed, excluded = list(shown), []
            for q in questions:
                if q in present:
                    observed.append(q)
                    answered[method][0] += 1
                elif any(e in index.ancestors[q] for e in full_excluded):
                    excluded.append(q)
                    answered[method][1] += 1
                else:
                    answered[method][2] += 1
            ranks[method].append(rank_with(observed, excluded, case.sex, truth))
    print(
        f"-- held-out store: features to look for next ({len(chosen)} cases with >= 4 "
        f"features; suggestion CPU p50 {np.percentile(seconds, 50) * 1000:.1f} ms) --"
    )
    for method in methods:
        tops = "  ".join(
            f"top{k} {100 * sum(1 for r in ranks[method] if r <= k) / len(chosen):5.1f}%"
            for k in (1, 3, 10)
        )
        extra = ""
        if method in answered:
            yes, no, unknown = answered[method]
            extra = f"  answers: {yes} present, {no} absent, {unknown} unknown"
        print(f"{method:<28} {tops}{extra}")


def held_out_store(
    index: PhenotypeIndex,
    knowledge: RareKnowledge,
    plain: PlainSimilarity,
    n_baseline: int,
    n_questions: int,
) -> None:
    """Every other phenopacket of the store (never seen while tuning): the headline."""
    with lzma.open(HELD_OUT, "rt", encoding="utf-8") as handle:
        cases = json.load(handle)["cases"]
    parsed = parse_cases(cases, index, knowledge)
    ranks: list[int | None] = []
    times: list[float] = []
    cpu: list[float] = []
    for c, case in parsed:
        t0, c0 = time.perf_counter(), time.process_time()
        result = rank_case(case, index, knowledge, top=20, lang="en")
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        hit = [k.rank for k in result.candidates if k.disease_id == c["disease"]]
        ranks.append(hit[0] if hit else None)
    annotated = annotated_rows(index, parsed)
    print(
        f"-- held-out store: {len(parsed)} cases, {len(annotated)} with annotated diagnoses "
        f"({len({c['disease'] for c, _ in parsed})} distinct diagnoses) --"
    )
    summarise("medbrain output", ranks, times, len(annotated), cpu)
    pick = sorted(random.Random(7).sample(range(len(parsed)), min(n_baseline, len(parsed))))
    base = [plain.rank(parsed[k][1], parsed[k][0]["disease"]) for k in pick]
    n_pick_in = sum(1 for k in pick if parsed[k][0]["disease"] in index.column)
    print(f"-- held-out store, {len(pick)} random cases (seed 7) --")
    summarise("medbrain output", [ranks[k] for k in pick], [times[k] for k in pick], n_pick_in)
    summarise("hpo3 resnik funSimAvg", [r for r, _ in base], [t for _, t in base], n_pick_in)
    print("-- held-out store: what phenotype matching can do --")
    miss_anatomy(index, annotated, len(parsed))
    question_value(index, parsed, n_questions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument(
        "--baseline-cases",
        type=int,
        default=300,
        help="cases for the slow hpo3 baseline (first N of the same sample)",
    )
    parser.add_argument(
        "--heldout-baseline-cases",
        type=int,
        default=1000,
        help="random held-out-store cases for the hpo3 baseline",
    )
    parser.add_argument(
        "--question-cases",
        type=int,
        default=2000,
        help="held-out-store cases for the features-to-look-for-next simulation",
    )
    parser.add_argument("--git-dir", help="phenopacket-store git dir (default: shipped sample)")
    parser.add_argument("--seed", type=int, default=20251)
    args = parser.parse_args()

    print("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    started = time.perf_counter()
    index: PhenotypeIndex = load_index()
    knowledge = default_rare_knowledge()
    print(
        f"ontology + index load {time.perf_counter() - started:.2f} s; HPO {index.version}; "
        f"{index.n_diseases} diseases; {platform.python_version()} on {platform.machine()}"
    )
    if args.git_dir:
        cases = read_git(args.git_dir, args.cases, args.seed)
    else:
        cases = json.loads(SAMPLE.read_text("utf-8"))["cases"][: args.cases]
    parsed = parse_cases(cases, index, knowledge)
    n_in = sum(1 for c, _ in parsed if c["disease"] in index.column)
    print(
        f"cases {len(parsed)}; diagnosis present in hpo3 annotations: {n_in} "
        f"({100 * n_in / len(parsed):.1f}%, the ceiling)"
    )

    plain = build_index(_ontology())  # hpo3 annotations alone: the session 2 release
    # sessions 3 and 4: the same annotations, frequencies combined by their maximum
    previous = build_index(_ontology(), load_hpoa(), load_equivalents(), propagation=HIGHEST)
    variants: dict[str, tuple[PhenotypeIndex, ScoringParams]] = {
        "  scores unmerged": (index, ScoringParams()),
        "  new params, hpo3 annotations": (plain, ScoringParams()),
        "  session 2 release": (plain, PREVIOUS_RELEASE),
    }
    session4 = "  session 4 release output"
    session3 = "  session 3 release output"
    names = ["medbrain output", "  output, id or equivalent*", session4, session3, *variants]
    ranks: dict[str, list[int | None]] = {k: [] for k in names}
    times: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    for c, case in parsed:
        truth = c["disease"]
        t0, c0 = time.perf_counter(), time.process_time()
        result = rank_case(case, index, knowledge, top=20, lang="en")
        elapsed, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        exact = [k.rank for k in result.candidates if k.disease_id == truth]
        equiv = [
            k.rank for k in result.candidates if k.disease_id == truth or truth in k.equivalent_ids
        ]
        ranks["medbrain output"].append(exact[0] if exact else None)
        ranks["  output, id or equivalent*"].append(equiv[0] if equiv else None)
        times["medbrain output"].append(elapsed)
        times["  output, id or equivalent*"].append(elapsed)
        cpu["medbrain output"].append(cpu_s)
        cpu["  output, id or equivalent*"].append(cpu_s)
        for name, params, representative in (
            (session4, SESSION4_RELEASE, "omim"),
            (session3, SESSION3_RELEASE, "score"),
        ):
            t0, c0 = time.perf_counter(), time.process_time()
            before = rank_case(
                case,
                previous,
                knowledge,
                top=20,
                lang="en",
                params=params,
                representative=representative,
            )
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            hit = [k.rank for k in before.candidates if k.disease_id == truth]
            ranks[name].append(hit[0] if hit else None)
        for name, (idx, params) in variants.items():
            column = idx.column.get(truth)
            rows = [idx.term_row[n] for n in case.observed]
            excl = [idx.term_row[n] for n in case.excluded]
            t0, c0 = time.perf_counter(), time.process_time()
            m = score_case(idx, rows, excl, sex=case.sex, age_years=case.age_years, params=params)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            ranks[name].append(rank_of(m.total, column) if column is not None else None)
    print(
        "* not by exact id: a hit when the diagnosis is the candidate's id or one of its "
        "equivalent_ids (MONDO 1:1 OMIM-Orphanet); shown for information only"
    )
    halves = [half_of(str(c["id"])) for c, _ in parsed]
    for label, keep in (("all", "AB"), ("half A (tuning)", "A"), ("half B (held out)", "B")):
        pick = [i for i, h in enumerate(halves) if h in keep]
        n_pick_in = sum(1 for i in pick if parsed[i][0]["disease"] in index.column)
        print(f"-- {label}: {len(pick)} cases --")
        for name in names:
            summarise(
                name,
                [ranks[name][i] for i in pick],
                [times[name][i] for i in pick],
                n_pick_in,
                [cpu[name][i] for i in pick],
            )

    for label, keep in (("half A (tuning)", "A"), ("half B (held out)", "B")):
        annotated = annotated_rows(
            index, [p for p, h in zip(parsed, halves, strict=True) if h == keep]
        )
        print(f"-- {label}: what phenotype matching can do ({len(annotated)} annotated cases) --")
        miss_anatomy(index, annotated, sum(1 for h in halves if h == keep))

    plain_similarity = PlainSimilarity()
    held_out = [k for k, h in enumerate(halves) if h == "B"][: args.baseline_cases]
    base = [plain_similarity.rank(parsed[k][1], parsed[k][0]["disease"]) for k in held_out]
    base_ranks = [r for r, _ in base]
    base_times = [t for _, t in base]
    ours_same = [ranks["medbrain output"][k] for k in held_out]
    n_base_in = sum(1 for k in held_out if parsed[k][0]["disease"] in index.column)
    print(f"-- same first {len(base_ranks)} held-out (half B) cases --")
    summarise(
        "medbrain output", ours_same, [times["medbrain output"][k] for k in held_out], n_base_in
    )
    for name in (session4, session3, "  session 2 release"):
        summarise(
            name,
            [ranks[name][k] for k in held_out],
            [times[name][k] for k in held_out],
            n_base_in,
        )
    summarise("hpo3 resnik funSimAvg", base_ranks, base_times, n_base_in)
    if not args.git_dir:
        held_out_store(
            index,
            knowledge,
            plain_similarity,
            args.heldout_baseline_cases,
            args.question_cases,
        )
    print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
