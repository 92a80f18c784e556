"""Screen a patient's record for rare diseases hiding in a common presentation.

A rule pack (``knowledge/rare/rule_packs.yaml``) is raised for a patient only when both
hold: the record shows at least the pack's ``min_red_flags`` red flags, *and* the ranking
of every annotated disease against the whole record puts one of the pack's diseases within
the first ``top_rank`` candidates. Red flags alone are common on a general ward (anaemia
with thrombocytopenia is not Gaucher disease); requiring the ranking to agree keeps the
doctor's inbox for the patients whose whole picture points that way, the alert fatigue
the issue warns about. Each finding says "consider", never a diagnosis, with the red flags
and where they were found, the pack's diseases with their rank and probability-like score,
the work-up to consider and the features to look for next.
"""

from __future__ import annotations

from medbrain.core.findings import Evidence, Finding, Severity
from medbrain.core.i18n import t
from medbrain.rare.knowledge import RareKnowledge
from medbrain.rare.model import RareCase
from medbrain.rare.ontology import PhenotypeIndex, hpo_id
from medbrain.rare.rank import Candidate, PackHit, RankResult, rank_case

CATEGORY = "rare_disease"
#: Candidates ranked (and searched for the pack's diseases) per screened record.
RANKED = 20


def screen_case(
    case: RareCase, index: PhenotypeIndex, knowledge: RareKnowledge, *, lang: str = "zh"
) -> list[Finding]:
    """One finding per rule pack the whole record supports (see the module docstring)."""
    result = rank_case(
        case, index, knowledge, top=max(RANKED, knowledge.screen_top_rank), lang=lang
    )
    findings = []
    for hit in result.packs:
        wanted = set(hit.pack.diseases)
        ranked = [
            c
            for c in result.candidates
            if c.disease_id in wanted or wanted.intersection(c.equivalent_ids)
        ]
        if not ranked or ranked[0].rank > knowledge.screen_top_rank:
            continue
        findings.append(_finding(hit, ranked, result, case, index, lang))
    return findings


def _finding(
    hit: PackHit,
    ranked: list[Candidate],
    result: RankResult,
    case: RareCase,
    index: PhenotypeIndex,
    lang: str,
) -> Finding:
    pack = hit.pack
    notes = {f.hpo: (f.en if lang == "en" else f.zh) for f in pack.red_flags}
    best = ranked[0]
    probability = round(min(1.0, sum(c.score for c in ranked)), 4)
    workup = list(hit.to_dict()["workup"])
    return Finding(
        rule_id=pack.pack_id,
        category=CATEGORY,
        severity=Severity.WARNING,
        message=t(
            "rare.screen.message",
            lang,
            name=pack.name(lang),
            count=len(hit.flags),
            flags="; ".join(notes[h] for h in hit.flags),
            disease=best.name,
            rank=best.rank,
            percent=round(100 * probability, 1),
        ),
        suggestion="; ".join(workup),
        evidence=tuple(_evidence(flag, case, index) for flag in hit.flags)
        + tuple(Evidence(source=s) for s in pack.sources),
        confidence=probability,
        extra={
            "probability": probability,
            "candidates": [
                {"disease_id": c.disease_id, "name": c.name, "rank": c.rank, "score": c.score}
                for c in ranked
            ],
            "red_flags": [{"hpo": h, "note": notes[h]} for h in hit.flags],
            "workup": workup,
            "suggested_hpo": [
                {"hpo": s["hpo"], "name": s["name"], "message": s["message"]}
                for s in result.suggested[:3]
            ],
        },
    )


def _evidence(flag: str, case: RareCase, index: PhenotypeIndex) -> Evidence:
    """Where the record shows the red flag ``flag`` (itself or a more specific feature): the
    laboratory result it was derived from, or the words of the note."""
    flag_row = index.term_row[int(flag[3:])]
    shown = {
        hpo_id(n) for n in case.observed if flag_row in index.ancestors[index.term_row[n]].tolist()
    }
    for lab in case.lab_matches:
        if lab.hpo in shown and not lab.excluded:
            return Evidence(quote=f"{lab.rule_id} {lab.value:g} {lab.unit}", resource=lab.resource)
    for match in case.text_matches:
        if match.hpo in shown and not match.excluded:
            return Evidence(quote=match.quote)
    return Evidence(quote=" ".join(sorted(shown)) or flag)
