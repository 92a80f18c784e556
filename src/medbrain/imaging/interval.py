"""Follow-up for ``ct detect --prior``: compare with a prior study, use growth in Lung-RADS.

Nodules are matched by :func:`medbrain.imaging.followup.compare` (LPS centres, no registration).
New and growing nodules are graded with the interval rows of
``knowledge/imaging/lungrads_v2022_interval.yaml``; the exam category is the highest of the
baseline category and those. Checks that the prior fits (same patient ID, same orientation,
earlier date) give warnings in the output, not errors: the radiologist decides.

References
----------
ACR Lung-RADS v2022 (Nov 2022), Christensen J et al. CHEST 2024;165(3):738-753, Table 1:
growth = mean diameter + > 1.5 mm within 12 months; new / growing solid and part-solid rows.
DICOM PS3.3 C.7.1.1 (Patient ID), C.7.2.1 (Study Date), C.7.6.2 (Image Orientation).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from medbrain.core.errors import InputError, KnowledgeError
from medbrain.imaging.followup import GROWTH_MM, compare
from medbrain.imaging.io import CTSeries
from medbrain.imaging.report import draft_report
from medbrain.imaging.report import text as report_text
from medbrain.imaging.risk import CATEGORY_ORDER, lungrads_table
from medbrain.knowledge.loaders import load_yaml

ORIENTATION_TOLERANCE = 0.01  # direction cosines; about 0.6 degrees
REQUIRED_NODULE_KEYS = ("id", "center_mm", "mean_diameter_mm", "volume_mm3", "type")


@dataclass(frozen=True, slots=True)
class StudyInfo:
    """What the comparison checks about a study; ``patient_key`` is a hash, not the ID."""

    patient_key: str | None
    study_date: date | None
    orientation: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "patient_key": self.patient_key,
            "study_date": self.study_date.isoformat() if self.study_date else None,
            "orientation": list(self.orientation),
        }


@lru_cache(maxsize=1)
def interval_table() -> dict[str, Any]:
    data = load_yaml("imaging/lungrads_v2022_interval.yaml")
    name = "imaging/lungrads_v2022_interval.yaml"
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise KnowledgeError(f"{name}: needs a 'rules' list")
    for i, row in enumerate(data["rules"]):
        for key in ("rule_id", "category", "when", "source"):
            if key not in row:
                raise KnowledgeError(f"{name}: rules[{i}] lacks {key!r}")
        if row["category"] not in CATEGORY_ORDER:
            raise KnowledgeError(f"{name}: rules[{i}].category invalid")
    if not isinstance(data.get("text"), dict):
        raise KnowledgeError(f"{name}: needs a 'text' mapping")
    return data


def _text(key: str, lang: str, **params: object) -> str:
    row = interval_table()["text"].get(key)
    if not isinstance(row, dict):
        raise KnowledgeError(f"imaging/lungrads_v2022_interval.yaml: unknown text {key!r}")
    return str(row["en" if lang == "en" else "zh"]).format(**params)


def _patient_key(patient_id: str) -> str | None:
    pid = patient_id.strip()
    if not pid:
        return None
    return hashlib.sha256(f"medbrain-ct-patient:{pid}".encode()).hexdigest()[:16]


def _dicom_date(value: Any) -> date | None:
    raw = str(value or "").strip()
    try:
        return datetime.strptime(raw[:8], "%Y%m%d").date() if len(raw) >= 8 else None
    except ValueError:
        return None


def study_info(path: str | Path, series: CTSeries) -> StudyInfo:
    """Patient key, study date and orientation of a loaded series (NIfTI has no patient/date)."""
    d = series.direction
    orientation = tuple(round(float(v), 4) for v in (*(r[0] for r in d), *(r[1] for r in d)))
    p = Path(path)
    if not p.is_dir():
        return StudyInfo(None, None, orientation)
    import pydicom
    import pydicom.errors

    files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
    for f in files:
        if f.name.upper() == "DICOMDIR":
            continue
        try:  # already read once by load_series, so this only fails on a race
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except (OSError, ValueError, TypeError, EOFError, pydicom.errors.InvalidDicomError):
            continue
        when = next(
            (
                parsed
                for key in ("StudyDate", "SeriesDate", "AcquisitionDate")
                if (parsed := _dicom_date(ds.get(key))) is not None
            ),
            None,
        )
        return StudyInfo(_patient_key(str(ds.get("PatientID", "") or "")), when, orientation)
    return StudyInfo(None, None, orientation)


def read_prior_result(path: str) -> tuple[dict[str, Any], StudyInfo | None]:
    """A ``ct detect --json`` document from a file; bad files are an :class:`InputError`."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(path, "", f"cannot read the prior result ({exc.strerror})") from None
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, "", f"not a ct detect JSON result ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodules"), list):
        raise InputError(path, "nodules", "not a ct detect JSON result (no 'nodules' list)")
    for i, n in enumerate(doc["nodules"]):
        missing = [k for k in REQUIRED_NODULE_KEYS if not isinstance(n, dict) or k not in n]
        if missing:
            raise InputError(path, f"nodules[{i}]", f"lacks {', '.join(missing)}")
        center = n["center_mm"]
        if not (
            isinstance(center, list)
            and len(center) == 3
            and all(isinstance(v, int | float) for v in center)
            and all(isinstance(n[k], int | float) for k in ("mean_diameter_mm", "volume_mm3"))
        ):
            raise InputError(path, f"nodules[{i}]", "center_mm / sizes must be numbers")
    study = doc.get("study")
    info = None
    if isinstance(study, dict):
        when = study.get("study_date")
        try:
            parsed = date.fromisoformat(when) if isinstance(when, str) else None
        except ValueError:
            raise InputError(path, "study.study_date", "not an ISO date") from None
        orientation = study.get("orientation") or []
        info = StudyInfo(
            study.get("patient_key") if isinstance(study.get("patient_key"), str) else None,
            parsed,
            tuple(float(v) for v in orientation if isinstance(v, int | float)),
        )
    return doc, info


def _row_matches(when: dict[str, Any], kinds: set[str], n: dict[str, Any]) -> bool:
    if when.get("type") != n["type"] or when.get("change") not in kinds:
        return False
    d = float(n["mean_diameter_mm"])
    solid = float(n.get("solid_component_mm") or 0.0)
    return (
        ("min_mm" not in when or d >= float(when["min_mm"]))
        and ("max_mm" not in when or d < float(when["max_mm"]))
        and ("solid_min_mm" not in when or solid >= float(when["solid_min_mm"]))
        and ("solid_max_mm" not in when or solid < float(when["solid_max_mm"]))
    )


def _kinds(
    status: str, current: dict[str, Any], prior: dict[str, Any] | None, growth_counts: bool
) -> set[str]:
    kinds: set[str] = set()
    if status == "new":
        kinds.add("new")
    if status == "grown" and growth_counts:
        kinds.add("grown")
    if current["type"] == "part-solid":
        before = float((prior or {}).get("solid_component_mm") or 0.0)
        now = float(current.get("solid_component_mm") or 0.0)
        if (
            prior is None
            or prior.get("type") == "ground-glass"
            or (growth_counts and now - before > GROWTH_MM)
        ):
            kinds.add("solid_new_or_grown")
    return kinds


def interval_lung_rads(
    baseline: dict[str, Any],
    changes: list[dict[str, Any]],
    prior: list[dict[str, Any]],
    current: list[dict[str, Any]],
    *,
    growth_counts: bool,
    lang: str = "zh",
) -> dict[str, Any]:
    """The exam's Lung-RADS with new/growing nodules; ``baseline_category`` keeps the old one."""
    by_prior = {int(n["id"]): n for n in prior}
    by_current = {int(n["id"]): n for n in current}
    best: tuple[int, dict[str, Any], int] | None = None
    for change in changes:
        if change["current_id"] is None:
            continue
        n = by_current[int(change["current_id"])]
        p = by_prior.get(int(change["prior_id"])) if change["prior_id"] is not None else None
        kinds = _kinds(change["status"], n, p, growth_counts)
        for row in interval_table()["rules"]:
            if _row_matches(row["when"], kinds, n):
                rank = CATEGORY_ORDER.index(row["category"])
                if best is None or rank > best[0]:
                    best = (rank, row, int(n["id"]))
    out = {**baseline, "baseline_category": baseline["category"]}
    if best is not None and best[0] > CATEGORY_ORDER.index(str(baseline["category"])):
        _, row, driver = best
        text = lungrads_table()["management"][row["category"]]
        out.update(
            category=row["category"],
            driver_nodule=driver,
            management=text["en" if lang == "en" else "zh"],
            rule_id=row["rule_id"],
            source=row["source"],
        )
    return out


def _warning(code: str, lang: str) -> dict[str, str]:
    return {"code": code, "message": _text(f"warning.{code}", lang)}


def _orientation_differs(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    if len(a) != 6 or len(b) != 6:
        return False
    return any(abs(x - y) > ORIENTATION_TOLERANCE for x, y in zip(a, b, strict=True))


def add_followup(
    result: dict[str, Any],
    prior: dict[str, Any],
    *,
    current_info: StudyInfo,
    prior_info: StudyInfo | None,
    prior_source: str,
    slices: int,
    interval_days: float | None = None,
    lang: str = "zh",
) -> dict[str, Any]:
    """``result`` (a ``ct detect`` document) with a ``followup`` block, the Lung-RADS category
    using growth, and the report redrafted; the §3 fields keep their names and meaning."""
    warnings: list[dict[str, str]] = []
    if prior_info is not None:
        if (
            prior_info.patient_key
            and current_info.patient_key
            and prior_info.patient_key != current_info.patient_key
        ):
            warnings.append(_warning("patient_mismatch", lang))
        if _orientation_differs(prior_info.orientation, current_info.orientation):
            warnings.append(_warning("orientation_mismatch", lang))
    days = interval_days
    if days is None:
        before = prior_info.study_date if prior_info else None
        if before is not None and current_info.study_date is not None:
            span = (current_info.study_date - before).days
            if span > 0:
                days = float(span)
            else:
                warnings.append(_warning("prior_not_earlier", lang))
        else:
            warnings.append(_warning("interval_unknown", lang))
    when = prior_info.study_date.isoformat() if prior_info and prior_info.study_date else None
    return with_followup(
        result,
        prior["nodules"],
        prior_meta={"series_uid": prior.get("series_uid"), "source": prior_source},
        prior_date=when,
        days=days,
        slices=slices,
        warnings=warnings,
        lang=lang,
    )


def with_followup(
    result: dict[str, Any],
    prior_nodules: list[dict[str, Any]],
    *,
    prior_meta: dict[str, Any],
    prior_date: str | None,
    days: float | None,
    slices: int,
    warnings: list[dict[str, str]] | None = None,
    lang: str = "zh",
) -> dict[str, Any]:
    """``result`` compared with the prior's nodules ``days`` earlier (``None``: unknown): a
    ``followup`` block, Lung-RADS using growth and the report redrafted. Used by ``ct detect
    --prior`` and by the radiology worker with the patient's stored prior study."""
    warnings = list(warnings or [])
    limit = float(interval_table().get("growth_max_interval_days", 366))
    growth_counts = days is None or days <= limit
    current_nodules: list[dict[str, Any]] = result["nodules"]
    changes = [c.to_dict() for c in compare(prior_nodules, current_nodules, days or 0.0)]
    if not growth_counts and any(c["status"] == "grown" for c in changes):
        warnings.append(_warning("long_interval", lang))
    by_prior = {int(n["id"]): n for n in prior_nodules}
    by_current = {int(n["id"]): n for n in current_nodules}
    for c in changes:
        c["prior_mean_diameter_mm"] = (
            by_prior[c["prior_id"]]["mean_diameter_mm"] if c["prior_id"] is not None else None
        )
        c["current_mean_diameter_mm"] = (
            by_current[c["current_id"]]["mean_diameter_mm"] if c["current_id"] is not None else None
        )
    lung_rads = interval_lung_rads(
        result["lung_rads"],
        changes,
        prior_nodules,
        current_nodules,
        growth_counts=growth_counts,
        lang=lang,
    )
    counts = {s: 0 for s in ("new", "grown", "stable", "shrunk", "resolved")}
    for c in changes:
        counts[c["status"]] += 1
    when = prior_date
    report = draft_report(current_nodules, lung_rads, result["fleischner"], slices, lang)
    report["findings"] += "\n" + "\n".join(_change_lines(changes, days, when, lang))
    impression = report["impression"].split("\n")
    driver = lung_rads.get("driver_nodule")
    impression[0] = _text(
        "impression.lungrads",
        lang,
        category=lung_rads["category"],
        baseline=lung_rads["baseline_category"],
        driver=report_text("impression.driver", lang, id=driver) if driver is not None else "",
        management=str(lung_rads["management"]).rstrip("。."),
    )
    report["impression"] = "\n".join(impression)
    followup = {
        "prior": {
            **prior_meta,
            "study_date": when,
            "nodules": prior_nodules,
        },
        "interval_days": round(days) if days is not None else None,
        "changes": changes,
        "counts": counts,
        "lung_rads_rule": lung_rads["rule_id"],
        "warnings": warnings,
    }
    return {**result, "lung_rads": lung_rads, "report": report, "followup": followup}


def _change_lines(
    changes: list[dict[str, Any]], days: float | None, when: str | None, lang: str
) -> list[str]:
    lines = [
        _text("followup.header", lang, date=when or "?", days=round(days))
        if days is not None
        else _text("followup.header_nodate", lang)
    ]
    for c in changes:
        vdt = (
            _text("followup.vdt", lang, days=c["volume_doubling_days"])
            if c["volume_doubling_days"] is not None
            else ""
        )
        delta = c["diameter_change_mm"]
        lines.append(
            _text(
                f"followup.{c['status']}",
                lang,
                id=c["current_id"],
                prior_id=c["prior_id"],
                delta=f"{delta:+.1f}" if c["status"] != "grown" and delta is not None else delta,
                vdt=vdt,
            )
        )
    return lines
