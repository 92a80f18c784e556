"""Kidney-function estimates used to adjust doses.

References
----------
Cockcroft DW, Gault MH. Prediction of creatinine clearance from serum creatinine.
Nephron 1976;16:31–41 — CrCl (mL/min) = (140 − age) × weight(kg) [× 0.85 if female]
/ (72 × SCr mg/dL), with SCr mg/dL = SCr µmol/L / 88.4.
Schwartz GJ et al. New equations to estimate GFR in children with CKD. J Am Soc Nephrol
2009;20:629–637 — bedside eGFR (mL/min/1.73 m²) = 0.413 × height(cm) / SCr mg/dL.
Devine BJ. Gentamicin therapy. Drug Intell Clin Pharm 1974;8:650–655 — ideal body weight.
"""

from __future__ import annotations

UMOL_PER_MG_DL = 88.4


def cockcroft_gault(
    age_years: float, sex: str, weight_kg: float, creatinine_umol_l: float
) -> float:
    """Creatinine clearance in mL/min by Cockcroft–Gault (serum creatinine in µmol/L).

    Raises
    ------
    ValueError
        Non-positive weight or creatinine, or a sex other than ``male``/``female``.
    """
    if weight_kg <= 0 or creatinine_umol_l <= 0:
        raise ValueError("weight and creatinine must be positive")
    if sex not in ("male", "female"):
        raise ValueError("sex must be male or female")
    scr_mg_dl = creatinine_umol_l / UMOL_PER_MG_DL
    crcl = (140.0 - age_years) * weight_kg / (72.0 * scr_mg_dl)
    if sex == "female":
        crcl *= 0.85
    return max(crcl, 0.0)


def ideal_body_weight(height_cm: float, sex: str) -> float:
    """Devine ideal body weight in kg (50 kg male / 45.5 kg female + 2.3 kg per inch over 5 ft)."""
    inches_over_5ft = max(height_cm / 2.54 - 60.0, 0.0)
    return (50.0 if sex == "male" else 45.5) + 2.3 * inches_over_5ft


def dosing_weight(weight_kg: float, height_cm: float | None, sex: str) -> float:
    """Weight for Cockcroft–Gault: actual weight, or adjusted weight when >120 % of ideal.

    Adjusted body weight = IBW + 0.4 × (actual − IBW), the usual correction in obesity.
    """
    if height_cm is None:
        return weight_kg
    ibw = ideal_body_weight(height_cm, sex)
    if weight_kg > 1.2 * ibw:
        return ibw + 0.4 * (weight_kg - ibw)
    return weight_kg


def schwartz_bedside(height_cm: float, creatinine_umol_l: float) -> float:
    """Bedside Schwartz eGFR (mL/min/1.73 m²) for children, creatinine in µmol/L."""
    if height_cm <= 0 or creatinine_umol_l <= 0:
        raise ValueError("height and creatinine must be positive")
    return 0.413 * height_cm / (creatinine_umol_l / UMOL_PER_MG_DL)
