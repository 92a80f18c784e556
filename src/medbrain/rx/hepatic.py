"""Child–Pugh score and class from bilirubin, albumin, INR, ascites and encephalopathy.

========================  ==========  ============  ==========
criterion                 1 point     2 points      3 points
========================  ==========  ============  ==========
total bilirubin (µmol/L)  < 34        34–50         > 50
serum albumin (g/L)       > 35        28–35         < 28
INR                       < 1.7       1.7–2.3       > 2.3
ascites                   none        mild          moderate–severe
encephalopathy            none        grade I–II    grade III–IV
========================  ==========  ============  ==========

Class A: 5–6 points, B: 7–9, C: 10–15. A missing criterion counts 1 to 3 points: the class is
reported when both ends of the possible score fall in the same class, otherwise the class the
lowest possible score reaches (``at_least``), so the patient is never placed in a worse class
than the data show.

References
----------
Pugh RNH, Murray-Lyon IM, Dawson JL, Pietroni MC, Williams R. Transection of the oesophagus for
bleeding oesophageal varices. Br J Surg 1973;60:646–649 (INR replaces prothrombin time as in
current practice, e.g. EASL Clinical Practice Guidelines on decompensated cirrhosis, J Hepatol
2018;69:406–460); FDA Guidance for Industry, *Pharmacokinetics in Patients with Impaired Hepatic
Function* (2003), which grades hepatic impairment for labelling by Child–Pugh class.
"""

from __future__ import annotations

from dataclasses import dataclass

from medbrain.core.errors import InputError

CRITERIA = ("bilirubin", "albumin", "inr", "ascites", "encephalopathy")
GRADE_WORDS: dict[str, int] = {
    "none": 1,
    "absent": 1,
    "no": 1,
    "无": 1,
    "0": 1,
    "mild": 2,
    "slight": 2,
    "轻度": 2,
    "少量": 2,
    "1": 2,
    "2": 2,
    "grade1": 2,
    "grade2": 2,
    "moderate": 3,
    "severe": 3,
    "中度": 3,
    "重度": 3,
    "中量": 3,
    "大量": 3,
    "3": 3,
    "4": 3,
    "grade3": 3,
    "grade4": 3,
}


def child_pugh_class(score: int) -> str:
    """A for 5–6, B for 7–9, C for 10–15."""
    if score <= 6:
        return "A"
    return "B" if score <= 9 else "C"


def bilirubin_points(bilirubin_umol_l: float) -> int:
    return 1 if bilirubin_umol_l < 34 else 2 if bilirubin_umol_l <= 50 else 3


def albumin_points(albumin_g_l: float) -> int:
    return 1 if albumin_g_l > 35 else 2 if albumin_g_l >= 28 else 3


def inr_points(inr: float) -> int:
    return 1 if inr < 1.7 else 2 if inr <= 2.3 else 3


def grade_points(value: str | int | None, field: str, source: str = "prescription") -> int | None:
    """Points of an ascites or encephalopathy grade word (none / mild / moderate / severe,
    无 / 轻度 / 中度 / 重度, or encephalopathy grade 0–4)."""
    if value is None or value == "":
        return None
    key = str(value).strip().lower().replace(" ", "").replace("-", "")
    if key not in GRADE_WORDS:
        raise InputError(
            source, field, f"must be none, mild, moderate or severe (or grade 0–4), got {value!r}"
        )
    return GRADE_WORDS[key]


@dataclass(frozen=True, slots=True)
class ChildPugh:
    """A Child–Pugh assessment; ``points`` is None for a criterion that was not given."""

    score_min: int
    score_max: int
    points: tuple[int | None, ...]  # in CRITERIA order

    @property
    def complete(self) -> bool:
        return all(p is not None for p in self.points)

    @property
    def klass(self) -> str | None:
        """The class when the data decide it (both score ends in one class), else None."""
        low, high = child_pugh_class(self.score_min), child_pugh_class(self.score_max)
        return low if low == high else None

    @property
    def at_least(self) -> str:
        return child_pugh_class(self.score_min)

    def describe(self) -> str:
        if self.klass is not None:
            score = (
                str(self.score_min)
                if self.score_min == self.score_max
                else f"{self.score_min}–{self.score_max}"
            )
            return f"Child-Pugh {self.klass} ({score})"
        return f"Child-Pugh ≥{self.at_least} ({self.score_min}–{self.score_max})"


def child_pugh(
    *,
    bilirubin_umol_l: float | None = None,
    albumin_g_l: float | None = None,
    inr: float | None = None,
    ascites: int | None = None,
    encephalopathy: int | None = None,
) -> ChildPugh | None:
    """Score what is known (ascites/encephalopathy as points 1–3); None when nothing is."""
    points = (
        bilirubin_points(bilirubin_umol_l) if bilirubin_umol_l is not None else None,
        albumin_points(albumin_g_l) if albumin_g_l is not None else None,
        inr_points(inr) if inr is not None else None,
        ascites,
        encephalopathy,
    )
    if all(p is None for p in points):
        return None
    for p in (ascites, encephalopathy):
        if p is not None and p not in (1, 2, 3):
            raise ValueError(f"grade points must be 1, 2 or 3, got {p!r}")
    known = sum(p for p in points if p is not None)
    missing = sum(1 for p in points if p is None)
    return ChildPugh(score_min=known + missing, score_max=known + 3 * missing, points=points)
