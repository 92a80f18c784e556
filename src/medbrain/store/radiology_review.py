"""Radiologist review of a CT study: versioned reports, signing, detector feedback (issue 5).

The working copy of a study's review is its highest :class:`RadiologyReport` version while that
version is a ``draft``. Every change goes through :func:`editable_report`, which creates version
1 from the engine's analysis, or copies a signed version into a new draft, so a signed row is
never written again. Signing (:func:`sign`) marks pending nodules accepted, recomputes
Lung-RADS on the kept nodules, sets ``ImagingStudy.status = "signed"`` and replaces the study's
:class:`RadiologyFeedback` rows with the decisions of this version.

Functions take a :class:`~sqlalchemy.orm.Session` inside the caller's transaction and raise
:class:`~medbrain.core.errors.InputError` (422), ``ConflictError`` (409) or ``NotFoundError``
(404) with messages in the caller's language; auditing is the caller's job (the router records
every action in the same transaction).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from medbrain.core.errors import ConflictError, InputError, NotFoundError
from medbrain.core.i18n import t
from medbrain.imaging import followup
from medbrain.imaging.brock import BrockPatient
from medbrain.imaging.guidelines import apply_guideline, inputs_text
from medbrain.imaging.interval import with_followup
from medbrain.imaging.report import draft_report
from medbrain.imaging.report import text as report_text
from medbrain.imaging.risk import NoduleForRisk, fleischner, lung_rads
from medbrain.radiology.outputs.model import SignedReport, StudyInfo
from medbrain.store import models as m
from medbrain.store.radiology_models import CtAnalysis
from medbrain.store.radiology_review_models import RadiologyFeedback, RadiologyReport

NODULE_TYPES: tuple[str, ...] = ("solid", "part-solid", "ground-glass", "calcified")
DECISIONS: tuple[str, ...] = ("pending", "accepted", "rejected")
MAX_SIZE_MM = 100.0
"""Largest axis a nodule may be given (a lesion > 30 mm is a mass; 100 mm catches typos)."""
MAX_TEXT_CHARS = 20_000
DEFAULT_ADDED_MM = 6.0
"""Size of a nodule a radiologist adds by clicking, until they measure it."""


@dataclass(frozen=True, slots=True)
class StudyContext:
    """A study with the CT series and the analysis its review is about."""

    study: m.ImagingStudy
    series: m.ImagingSeries | None
    analysis: CtAnalysis | None

    @property
    def study_uid(self) -> str:
        return self.study.study_uid


def load_context(session: Session, study_uid: str) -> StudyContext:
    """The study, its analysed CT series and the newest analysis; 404 for an unknown UID."""
    study = session.scalar(select(m.ImagingStudy).where(m.ImagingStudy.study_uid == study_uid))
    if study is None:
        raise NotFoundError(f"ImagingStudy/{study_uid}")
    analysis = session.scalar(
        select(CtAnalysis)
        .where(CtAnalysis.study_id == study.id)
        .order_by(CtAnalysis.created_at.desc(), CtAnalysis.id.desc())
        .limit(1)
    )
    series = None
    if analysis is not None:
        series = session.scalar(
            select(m.ImagingSeries).where(m.ImagingSeries.series_uid == analysis.series_uid)
        )
    if series is None:
        series = session.scalar(
            select(m.ImagingSeries)
            .where(m.ImagingSeries.study_id == study.id, m.ImagingSeries.modality == "CT")
            .order_by(m.ImagingSeries.instance_count.desc())
            .limit(1)
        )
    return StudyContext(study=study, series=series, analysis=analysis)


def require_analysis(ctx: StudyContext, lang: str) -> CtAnalysis:
    if ctx.analysis is None:
        raise ConflictError(ctx.study_uid, "analysis", t("radiology_review.not_ready", lang))
    return ctx.analysis


# -- nodules ---------------------------------------------------------------------------------


def engine_nodules(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The analysis' nodules as review entries (``key`` = ``e<id>``, decision pending)."""
    return [
        {
            **copy.deepcopy(n),
            "key": f"e{n['id']}",
            "source": "engine",
            "decision": "pending",
            "edited": False,
        }
        for n in result.get("nodules", [])
    ]


def kept(nodules: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nodules not rejected, numbered 1..n in list order (``id``, what the report text cites)."""
    out: list[dict[str, Any]] = []
    for n in nodules:
        if n.get("decision") == "rejected":
            continue
        out.append({**n, "id": len(out) + 1})
    return out


def _for_risk(nodules: Sequence[dict[str, Any]]) -> list[NoduleForRisk]:
    return [
        NoduleForRisk(
            id=int(n["id"]),
            type=str(n["type"]),
            mean_diameter_mm=float(n["mean_diameter_mm"]),
            solid_component_mm=n.get("solid_component_mm"),
            fleischner_mm=math.floor(
                (float(n["long_axis_mm"]) + float(n["short_axis_mm"])) / 2 + 0.5
            ),
        )
        for n in nodules
    ]


def nodule_category(nodule: dict[str, Any], lang: str = "zh") -> str:
    """Lung-RADS v2022 category of one nodule alone (the exam's is the highest)."""
    one = {**nodule, "id": 1}
    return lung_rads(_for_risk([one]), lang).category


def grade(
    nodules: Sequence[dict[str, Any]], lang: str, study: m.ImagingStudy | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Lung-RADS and Fleischner of the kept nodules (numbered as :func:`kept`); with ``study``
    (in a session) Lung-RADS uses growth since the patient's prior study."""
    numbered = kept(nodules)
    risk = _for_risk(numbered)
    lr, fl = lung_rads(risk, lang).to_dict(), fleischner(risk, "high", lang).to_dict()
    if study is not None:
        empty = {"findings": "", "impression": "", "language": lang}
        lr = compared(numbered, lr, fl, empty, 0, lang, study)["lung_rads"]
    return lr, fl


def compared(
    numbered: list[dict[str, Any]],
    lr: dict[str, Any],
    fl: dict[str, Any],
    report: dict[str, str],
    slices: int,
    lang: str,
    study: m.ImagingStudy | None,
    engine: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The kept nodules compared with the patient's stored prior study, as the worker compares
    the engine's: Lung-RADS using growth and the report with the change lines
    (:func:`medbrain.imaging.interval.with_followup`); unchanged without a dated prior."""
    base = {"nodules": numbered, "lung_rads": lr, "fleischner": fl, "report": report}
    session = Session.object_session(study) if study is not None else None
    found = stored_prior(session, study) if session is not None and study is not None else None
    if found is None:
        return base
    prior_study, prior_nodules, days = found
    return with_followup(
        base,
        prior_nodules,
        prior_meta={"study_uid": prior_study.study_uid, "source": "store"},
        prior_date=_prior_date(prior_study, engine),
        days=days,
        slices=slices,
        lang=lang,
    )


def _prior_date(prior_study: m.ImagingStudy, engine: dict[str, Any] | None) -> str | None:
    """The prior's date as the worker wrote it (the hospital's time zone), else its UTC date."""
    prior = ((engine or {}).get("followup") or {}).get("prior") or {}
    if prior.get("study_uid") == prior_study.study_uid and prior.get("study_date"):
        return str(prior["study_date"])
    return prior_study.started_at.date().isoformat() if prior_study.started_at else None


def _guided(
    base: dict[str, Any],
    engine: dict[str, Any] | None,
    lang: str,
    study: m.ImagingStudy | None = None,
) -> dict[str, Any]:
    """The reviewed nodules under the analysis' guideline, with its Brock patient (or the
    inputs it lacked): ``apply_guideline`` of ``base`` (:func:`compared`, whose ``followup``
    block, if any, feeds the Chinese rule set). ``study`` (in a session) reads Brock's inputs
    from the record."""
    engine = engine or {}
    brock = engine.get("brock") if isinstance(engine.get("brock"), dict) else None
    patient = None
    missing: list[str] | None = None
    known: dict[str, Any] | None = None
    session = Session.object_session(study) if study is not None else None
    evidence: dict[str, str] | None = None
    if brock is not None and brock.get("from_record") and session is not None:
        from medbrain.store.radiology_risk import live_brock  # imports this module

        assert study is not None
        when = brock.get("study_date")
        on = date.fromisoformat(when) if isinstance(when, str) else None
        patient, missing, known, evidence = live_brock(session, study, on)
    elif brock is not None and brock.get("computable", True):
        p = brock["patient"]
        patient = BrockPatient(
            float(p["age_years"]),
            p["sex"] == "female",
            bool(p["family_history_lung_cancer"]),
            bool(p["emphysema"]),
        )
    elif brock is not None:
        missing, known = list(brock.get("missing") or []), dict(brock.get("patient") or {})
    out = apply_guideline(
        base,
        guideline=str(engine.get("guideline") or "lungrads"),
        risk=str((engine.get("fleischner") or {}).get("risk") or "high"),
        lang=lang,
        patient=patient,
        brock_missing=missing,
        brock_known=known,
    )
    if evidence is None and brock is not None:
        evidence = brock.get("evidence")
    if evidence is not None and "brock" in out:
        out["brock"]["evidence"] = evidence
    if brock is not None and "brock" in out:
        for key in ("from_record", "study_date"):
            if key in brock:
                out["brock"][key] = brock[key]
    return out


def draft_text(
    nodules: Sequence[dict[str, Any]],
    slices: int,
    lang: str,
    engine: dict[str, Any] | None = None,
    study: m.ImagingStudy | None = None,
) -> tuple[str, str, dict[str, Any]]:
    """Findings, impression and Lung-RADS drafted from the reviewed nodules (engine templates),
    with the analysis' guideline and Brock lines (``engine``: the analysis result)."""
    numbered = kept(nodules)
    lr, fl = grade(nodules, lang)
    base = compared(
        numbered, lr, fl, draft_report(numbered, lr, fl, slices, lang), slices, lang, study, engine
    )
    text = _guided(base, engine, lang, study)["report"]
    return text["findings"], text["impression"], base["lung_rads"]


def risk_summary(
    nodules: Sequence[dict[str, Any]],
    engine: dict[str, Any] | None,
    lang: str,
    study: m.ImagingStudy | None = None,
) -> dict[str, Any]:
    """Guideline, Chinese category and Brock of the reviewed (kept) nodules, for the viewer
    and the signed version; Brock rows carry the nodule ``key``."""
    numbered = kept(nodules)
    lr, fl = grade(nodules, lang)
    report = {"findings": "", "impression": "", "language": lang}
    base = compared(numbered, lr, fl, report, 0, lang, study, engine)
    out = _guided(base, engine, lang, study)
    keys = {int(n["id"]): n.get("key") for n in numbered}
    brock = out.get("brock")
    if brock is not None:
        brock = {
            **brock,
            "nodules": [{**r, "key": keys.get(int(r["id"]))} for r in brock.get("nodules", [])],
        }
    guideline = str(out["guideline"])
    return {
        "guideline": guideline,
        "guideline_label": report_text(f"guideline.{guideline}", lang),
        "guideline_source": (engine or {}).get("guideline_source"),
        "lung_rads": base["lung_rads"].get("category"),
        "fleischner": fl.get("recommendation"),
        "china": out.get("china"),
        "brock": brock,
        "brock_line": next(
            (ln for ln in out["report"]["impression"].split("\n") if ln.startswith("Brock")), None
        ),
        "brock_inputs": inputs_text(brock["patient"], lang) if brock else None,
        "brock_missing": (
            ("、" if lang != "en" else ", ").join(
                report_text(f"brock.input.{k}", lang) for k in brock["missing"]
            )
            if brock and brock.get("missing")
            else None
        ),
    }


# -- versions --------------------------------------------------------------------------------


def latest_report(session: Session, study_id: int) -> RadiologyReport | None:
    return session.scalar(
        select(RadiologyReport)
        .where(RadiologyReport.study_id == study_id)
        .order_by(RadiologyReport.version.desc())
        .limit(1)
    )


def list_versions(session: Session, study_id: int) -> list[RadiologyReport]:
    return list(
        session.scalars(
            select(RadiologyReport)
            .where(RadiologyReport.study_id == study_id)
            .order_by(RadiologyReport.version)
        )
    )


def get_version(session: Session, study_id: int, version: int) -> RadiologyReport:
    row = session.scalar(
        select(RadiologyReport).where(
            RadiologyReport.study_id == study_id, RadiologyReport.version == version
        )
    )
    if row is None:
        raise NotFoundError(f"RadiologyReport/v{version}")
    return row


def _slices(analysis: CtAnalysis, ctx: StudyContext) -> int:
    if ctx.series is not None and ctx.series.instance_count:
        return int(ctx.series.instance_count)
    return int(analysis.result.get("slices", 0) or 0)


def initial_state(ctx: StudyContext, lang: str) -> dict[str, Any]:
    """What version 1 holds before anyone changes it: the engine's nodules and draft text."""
    analysis = require_analysis(ctx, lang)
    nodules = engine_nodules(analysis.result)
    engine_report = analysis.result.get("report") or {}
    if engine_report.get("language") == lang and engine_report.get("findings"):
        findings, impression = engine_report["findings"], engine_report["impression"]
        lr, _ = grade(nodules, lang, ctx.study)
    else:
        findings, impression, lr = draft_text(
            nodules, _slices(analysis, ctx), lang, analysis.result, ctx.study
        )
    return {
        "nodules": nodules,
        "findings": findings,
        "impression": impression,
        "lung_rads": lr,
        "language": lang,
    }


def editable_report(session: Session, ctx: StudyContext, who: str, lang: str) -> RadiologyReport:
    """The draft to change: version 1 from the analysis, the open draft, or a copy of the
    newest signed version as version + 1 (a signed version is never changed)."""
    analysis = require_analysis(ctx, lang)
    latest = latest_report(session, ctx.study.id)
    now = datetime.now(UTC)
    if latest is not None and latest.status == "draft":
        return latest
    if latest is None:
        state = initial_state(ctx, lang)
        version = 1
    else:
        state = {
            "nodules": copy.deepcopy(latest.nodules),
            "findings": latest.findings,
            "impression": latest.impression,
            "lung_rads": copy.deepcopy(latest.lung_rads),
            "language": latest.language,
        }
        version = latest.version + 1
    row = RadiologyReport(
        study_id=ctx.study.id,
        analysis_id=analysis.id if latest is None else latest.analysis_id,
        version=version,
        status="draft",
        created_by=who,
        created_at=now,
        updated_by=who,
        updated_at=now,
        outputs={},
        **state,
    )
    session.add(row)
    session.flush()
    return row


def _touch(row: RadiologyReport, who: str) -> None:
    row.updated_by = who
    row.updated_at = datetime.now(UTC)


def _number(value: Any, field: str, lang: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError("nodule", field, t("radiology_review.size_not_number", lang)) from None
    if not math.isfinite(number) or number <= 0 or number > MAX_SIZE_MM:
        raise InputError(
            "nodule", field, t("radiology_review.size_range", lang, max=int(MAX_SIZE_MM))
        )
    return round(number, 1)


def _apply_sizes(nodule: dict[str, Any], long_mm: Any, short_mm: Any, lang: str) -> None:
    long_v = _number(long_mm, "long_axis_mm", lang)
    short_v = _number(short_mm, "short_axis_mm", lang)
    if short_v > long_v:
        raise InputError("nodule", "short_axis_mm", t("radiology_review.short_gt_long", lang))
    nodule["long_axis_mm"] = long_v
    nodule["short_axis_mm"] = short_v
    nodule["mean_diameter_mm"] = round((long_v + short_v) / 2, 1)
    # prolate ellipsoid: long × short × short (depth not measured on an axial slice)
    nodule["volume_mm3"] = round(math.pi / 6 * long_v * short_v * short_v, 1)
    if nodule.get("solid_component_mm") is not None:
        nodule["solid_component_mm"] = min(float(nodule["solid_component_mm"]), long_v)


def box_from_axes(
    axes: Sequence[Sequence[float]],
    slice_index: int,
    *,
    shape_voxel: Sequence[int],
    spacing_mm: Sequence[float],
    lang: str,
) -> dict[str, Any]:
    """The box of a nodule measured by drawing its long and short axis on one axial slice.

    ``axes``: two segments ``[col0, row0, col1, row1]`` (voxel units, fractional) on slice
    ``slice_index``; ``shape_voxel``/``spacing_mm`` are ``(col, row, slice)``. In plane the box
    encloses both segments; in depth it spans the short axis (prolate ellipsoid, as
    :func:`_apply_sizes`) around the slice. Returns ``bbox_voxel``, ``center_voxel`` (the long
    axis' midpoint) and the axis lengths in mm.
    """
    nx, ny, nz = (int(v) for v in shape_voxel)
    segments: list[list[float]] = []
    for segment in axes:
        try:
            values = [float(v) for v in segment]
        except (TypeError, ValueError):
            values = []
        if len(values) != 4 or not all(math.isfinite(v) for v in values):
            raise InputError("nodule", "axes_voxel", t("radiology_review.bad_axes", lang))
        segments.append(values)
    inside = all(
        0 <= x <= nx and 0 <= y <= ny
        for x0, y0, x1, y1 in segments
        for x, y in ((x0, y0), (x1, y1))
    )
    if len(segments) != 2 or not inside or not 0 <= int(slice_index) < nz:
        raise InputError("nodule", "axes_voxel", t("radiology_review.outside_volume", lang))
    sx, sy, sz = (float(v) for v in spacing_mm)
    lengths = [math.hypot((x1 - x0) * sx, (y1 - y0) * sy) for x0, y0, x1, y1 in segments]
    long_i = 0 if lengths[0] >= lengths[1] else 1
    x0, y0, x1, y1 = segments[long_i]
    xs = [v for seg in segments for v in (seg[0], seg[2])]
    ys = [v for seg in segments for v in (seg[1], seg[3])]
    k = int(slice_index)
    half_z = max(1, math.ceil(min(lengths) / 2 / sz))
    lo = [max(0, math.floor(min(xs))), max(0, math.floor(min(ys))), max(0, k - half_z)]
    hi = [
        min(nx - 1, math.floor(max(xs))),
        min(ny - 1, math.floor(max(ys))),
        min(nz - 1, k + half_z),
    ]
    centre = [min(nx - 1, math.floor((x0 + x1) / 2)), min(ny - 1, math.floor((y0 + y1) / 2)), k]
    return {
        "bbox_voxel": [lo, hi],
        "center_voxel": centre,
        "long_axis_mm": round(max(lengths), 1),
        "short_axis_mm": round(min(lengths), 1),
    }


def _find(row: RadiologyReport, key: str) -> tuple[int, dict[str, Any]]:
    for index, n in enumerate(row.nodules):
        if n.get("key") == key:
            return index, n
    raise NotFoundError(f"nodule/{key}")


def _regrade(row: RadiologyReport) -> None:
    session = Session.object_session(row)
    study = session.get(m.ImagingStudy, row.study_id) if session is not None else None
    lr, _ = grade(row.nodules, row.language, study)
    row.lung_rads = lr


def update_nodule(
    session: Session,
    ctx: StudyContext,
    key: str,
    changes: dict[str, Any],
    who: str,
    lang: str,
    *,
    box: dict[str, Any] | None = None,
) -> RadiologyReport:
    """Accept / reject / edit (type, long and short axis) one nodule of the draft.

    ``box`` (from :func:`box_from_axes`, plus ``center_mm``): axes drawn on the image also
    move the nodule's box and centre there.
    """
    row = editable_report(session, ctx, who, lang)
    index, current = _find(row, key)
    nodule = copy.deepcopy(current)
    decision = changes.get("decision")
    if decision is not None:
        if decision not in DECISIONS:
            raise InputError("nodule", "decision", t("radiology_review.bad_decision", lang))
        nodule["decision"] = decision
    kind = changes.get("type")
    if kind is not None:
        if kind not in NODULE_TYPES:
            raise InputError("nodule", "type", t("radiology_review.bad_type", lang))
        if kind != nodule["type"]:
            nodule["type"] = kind
            nodule["edited"] = True
            if kind != "part-solid":
                nodule["solid_component_mm"] = None
    if changes.get("long_axis_mm") is not None or changes.get("short_axis_mm") is not None:
        _apply_sizes(
            nodule,
            changes.get("long_axis_mm", nodule["long_axis_mm"]),
            changes.get("short_axis_mm", nodule["short_axis_mm"]),
            lang,
        )
        nodule["edited"] = True
    if box is not None:
        for field in ("bbox_voxel", "center_voxel", "center_mm"):
            if field in box:
                nodule[field] = box[field]
        nodule["edited"] = True
    if nodule.get("edited") and nodule.get("decision") == "pending":
        nodule["decision"] = "accepted"
    nodules = list(row.nodules)
    nodules[index] = nodule
    row.nodules = nodules  # a new list, so the JSON column is flagged as changed
    _regrade(row)
    _touch(row, who)
    session.flush()
    return row


def add_nodule(
    session: Session,
    ctx: StudyContext,
    *,
    center_voxel: Sequence[int],
    center_mm: Sequence[float],
    side: str,
    shape_voxel: Sequence[int],
    spacing_mm: Sequence[float],
    who: str,
    lang: str,
    long_axis_mm: Any = DEFAULT_ADDED_MM,
    short_axis_mm: Any = DEFAULT_ADDED_MM,
    kind: str = "solid",
) -> tuple[RadiologyReport, dict[str, Any]]:
    """A nodule the engine missed, at ``center_voxel`` ``[col, row, slice]``, with a default
    box of its size (edit it afterwards)."""
    if len(center_voxel) != 3 or any(
        not 0 <= int(v) < int(s) for v, s in zip(center_voxel, shape_voxel, strict=True)
    ):
        raise InputError("nodule", "center_voxel", t("radiology_review.outside_volume", lang))
    if kind not in NODULE_TYPES:
        raise InputError("nodule", "type", t("radiology_review.bad_type", lang))
    nodule: dict[str, Any] = {"type": kind, "solid_component_mm": None}
    _apply_sizes(nodule, long_axis_mm, short_axis_mm, lang)
    row = editable_report(session, ctx, who, lang)
    added = [n for n in row.nodules if n.get("source") == "radiologist"]
    number = 1 + max((int(str(n["key"])[1:]) for n in added), default=0)
    half = [max(1, math.ceil(nodule["long_axis_mm"] / 2 / float(s))) for s in spacing_mm]
    centre = [int(v) for v in center_voxel]
    lo = [max(0, c - h) for c, h in zip(centre, half, strict=True)]
    hi = [min(int(s) - 1, c + h) for c, h, s in zip(centre, half, shape_voxel, strict=True)]
    nodule.update(
        {
            "key": f"a{number}",
            "source": "radiologist",
            "decision": "accepted",
            "edited": True,
            "center_mm": [round(float(v), 1) for v in center_mm],
            "center_voxel": centre,
            "bbox_voxel": [lo, hi],
            "side": side,
            "lobe": None,
            "location": "peripheral",
            "score": None,
        }
    )
    row.nodules = [*row.nodules, nodule]
    _regrade(row)
    _touch(row, who)
    session.flush()
    return row, nodule


def update_text(
    session: Session,
    ctx: StudyContext,
    *,
    findings: str | None,
    impression: str | None,
    who: str,
    lang: str,
) -> RadiologyReport:
    for name, value in (("findings", findings), ("impression", impression)):
        if value is not None and len(value) > MAX_TEXT_CHARS:
            raise InputError(
                "report", name, t("radiology_review.text_too_long", lang, max=MAX_TEXT_CHARS)
            )
    row = editable_report(session, ctx, who, lang)
    if findings is not None:
        row.findings = findings
    if impression is not None:
        row.impression = impression
    _touch(row, who)
    session.flush()
    return row


def redraft_text(
    session: Session, ctx: StudyContext, *, report_lang: str, who: str, lang: str
) -> RadiologyReport:
    """Replace the draft's text with the engine's template text of the reviewed nodules."""
    row = editable_report(session, ctx, who, lang)
    analysis = require_analysis(ctx, lang)
    findings, impression, lr = draft_text(
        row.nodules, _slices(analysis, ctx), report_lang, analysis.result, ctx.study
    )
    row.findings, row.impression, row.lung_rads = findings, impression, lr
    row.language = report_lang
    _touch(row, who)
    session.flush()
    return row


def sign(session: Session, ctx: StudyContext, who: str, lang: str) -> tuple[RadiologyReport, bool]:
    """Sign the draft (creating version 1 first when nothing was changed).

    Returns the signed version and whether this call signed it (``False`` when the newest
    version was already signed and there is no draft: nothing to sign again).
    """
    latest = latest_report(session, ctx.study.id)
    if latest is not None and latest.status == "signed":
        return latest, False
    row = editable_report(session, ctx, who, lang)
    now = datetime.now(UTC)
    row.nodules = [
        {**n, "decision": "accepted"} if n.get("decision") == "pending" else n for n in row.nodules
    ]
    _regrade(row)
    analysis = session.get(CtAnalysis, row.analysis_id)
    risk = risk_summary(row.nodules, analysis.result if analysis else None, row.language, ctx.study)
    row.lung_rads = {
        **row.lung_rads,
        "guideline": risk["guideline"],
        "china": risk["china"],
        "brock": risk["brock"],
    }
    row.status = "signed"
    row.signed_by = who
    row.signed_at = now
    _touch(row, who)
    ctx.study.status = "signed"
    _record_feedback(session, ctx, row, who)
    session.flush()
    return row, True


def _record_feedback(session: Session, ctx: StudyContext, row: RadiologyReport, who: str) -> None:
    analysis = session.get(CtAnalysis, row.analysis_id)
    detector = analysis.detector_version if analysis is not None else "unknown"
    session.execute(delete(RadiologyFeedback).where(RadiologyFeedback.study_id == ctx.study.id))
    for n in row.nodules:
        if n.get("source") == "radiologist":
            if n.get("decision") == "rejected":
                continue
            kind = "miss"
        else:
            kind = "false_positive" if n.get("decision") == "rejected" else "accepted"
        session.add(
            RadiologyFeedback(
                study_id=ctx.study.id,
                analysis_id=row.analysis_id,
                report_id=row.id,
                detector_version=detector,
                kind=kind,
                nodule_key=str(n["key"]),
                nodule={
                    k: n.get(k)
                    for k in (
                        "type",
                        "long_axis_mm",
                        "short_axis_mm",
                        "mean_diameter_mm",
                        "center_voxel",
                        "bbox_voxel",
                        "score",
                        "edited",
                    )
                },
                created_by=who,
                created_at=row.signed_at or datetime.now(UTC),
            )
        )


def feedback_counts(session: Session) -> list[dict[str, Any]]:
    """Per detector version: studies signed, false positives, misses, accepted nodules."""
    rows = session.execute(
        select(RadiologyFeedback.detector_version, RadiologyFeedback.kind, func.count()).group_by(
            RadiologyFeedback.detector_version, RadiologyFeedback.kind
        )
    ).all()
    studies: dict[str, int] = {
        str(version): int(count)
        for version, count in session.execute(
            select(
                RadiologyFeedback.detector_version,
                func.count(func.distinct(RadiologyFeedback.study_id)),
            ).group_by(RadiologyFeedback.detector_version)
        ).all()
    }
    out: dict[str, dict[str, Any]] = {}
    for version, kind, count in rows:
        entry = out.setdefault(
            version,
            {
                "detector_version": version,
                "studies": int(studies.get(version, 0)),
                "false_positive": 0,
                "miss": 0,
                "accepted": 0,
            },
        )
        entry[kind] = int(count)
    for entry in out.values():
        engine_total = entry["false_positive"] + entry["accepted"]
        entry["precision"] = round(entry["accepted"] / engine_total, 3) if engine_total else None
        found = entry["accepted"] + entry["miss"]
        entry["sensitivity"] = round(entry["accepted"] / found, 3) if found else None
        entry["fp_per_study"] = (
            round(entry["false_positive"] / entry["studies"], 2) if entry["studies"] else None
        )
    return sorted(out.values(), key=lambda e: e["detector_version"])


# -- views -----------------------------------------------------------------------------------


def state_dict(ctx: StudyContext, row: RadiologyReport | None, lang: str) -> dict[str, Any]:
    """The review as the viewer shows it (an unsaved version 1 when nobody changed anything)."""
    if row is None:
        state = initial_state(ctx, lang)
        base: dict[str, Any] = {
            "version": 1,
            "status": "draft",
            "saved": False,
            "created_by": None,
            "updated_at": None,
            "signed_by": None,
            "signed_at": None,
            "outputs": {},
            **state,
        }
    else:
        base = {
            "version": row.version,
            "status": row.status,
            "saved": True,
            "created_by": row.created_by,
            "updated_by": row.updated_by,
            "updated_at": row.updated_at.isoformat(),
            "signed_by": row.signed_by,
            "signed_at": row.signed_at.isoformat() if row.signed_at else None,
            "outputs": row.outputs,
            "nodules": row.nodules,
            "findings": row.findings,
            "impression": row.impression,
            "lung_rads": row.lung_rads,
            "language": row.language,
        }
    base["nodules"] = [{**n, "lung_rads": nodule_category(n, lang)} for n in base["nodules"]]
    base["risk"] = risk_summary(
        base["nodules"], ctx.analysis.result if ctx.analysis else None, lang, ctx.study
    )
    return base


def version_summary(row: RadiologyReport) -> dict[str, Any]:
    return {
        "version": row.version,
        "status": row.status,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "signed_by": row.signed_by,
        "signed_at": row.signed_at.isoformat() if row.signed_at else None,
        "lung_rads": row.lung_rads.get("category"),
        "kept": len(kept(row.nodules)),
    }


def signed_report(row: RadiologyReport, detector: str) -> SignedReport:
    return SignedReport(
        version=row.version,
        status=row.status,
        language=row.language,
        findings=row.findings,
        impression=row.impression,
        nodules=tuple(kept(row.nodules)),
        lung_rads=row.lung_rads,
        detector=detector,
        signed_by=row.signed_by,
        signed_at=row.signed_at,
    )


def study_info(session: Session, ctx: StudyContext) -> StudyInfo:
    patient = session.get(m.Patient, ctx.study.patient_id)
    spacing = (1.0, 1.0, 1.0)
    if ctx.analysis is not None and ctx.analysis.result.get("spacing_mm"):
        sx, sy, sz = (float(v) for v in ctx.analysis.result["spacing_mm"])
        spacing = (sx, sy, sz)
    return StudyInfo(
        study_uid=ctx.study.study_uid,
        series_uid=ctx.series.series_uid if ctx.series is not None else "",
        patient_name=patient.name if patient is not None else "",
        patient_id=(patient.mrn or str(patient.id)) if patient is not None else "",
        patient_ref=f"Patient/{ctx.study.patient_id}",
        study_date=ctx.study.started_at,
        accession=getattr(ctx.study, "accession", None),
        description=ctx.study.description,
        slices=ctx.series.instance_count if ctx.series is not None else 0,
        spacing_mm=spacing,
    )


def find_prior(session: Session, study: m.ImagingStudy) -> tuple[m.ImagingStudy, CtAnalysis] | None:
    """The newest earlier analysed study of the same patient (by acquisition time)."""
    studies = session.scalars(
        select(m.ImagingStudy).where(
            m.ImagingStudy.patient_id == study.patient_id, m.ImagingStudy.id != study.id
        )
    ).all()
    here = study.started_at
    best: tuple[m.ImagingStudy, CtAnalysis] | None = None
    for other in studies:
        if here is not None and other.started_at is not None and other.started_at >= here:
            continue
        if here is None and other.id > study.id:
            continue
        analysis = load_context(session, other.study_uid).analysis
        if analysis is None:
            continue
        if best is None or (other.started_at or datetime.min.replace(tzinfo=UTC)) > (
            best[0].started_at or datetime.min.replace(tzinfo=UTC)
        ):
            best = (other, analysis)
    return best


def _prior_nodules(
    session: Session, prior_study: m.ImagingStudy, prior_analysis: CtAnalysis
) -> tuple[list[dict[str, Any]], RadiologyReport | None]:
    """The prior's nodules: its signed version's kept ones, else the engine's."""
    prior_row = latest_report(session, prior_study.id)
    if prior_row is not None and prior_row.status == "signed":
        return kept(prior_row.nodules), prior_row
    return list(prior_analysis.result.get("nodules", [])), None


def _interval_days(here: datetime | None, before: datetime | None) -> float | None:
    if here is None or before is None:
        return None
    return max((here - before).total_seconds() / 86400, 1.0)


def stored_prior(
    session: Session, study: m.ImagingStudy
) -> tuple[m.ImagingStudy, list[dict[str, Any]], float] | None:
    """The prior study, its nodules (signed version's kept ones, else the engine's) and the
    days between the two; ``None`` without a dated prior."""
    found = find_prior(session, study)
    if found is None:
        return None
    prior_study, prior_analysis = found
    days = _interval_days(study.started_at, prior_study.started_at)
    if days is None:
        return None
    return prior_study, _prior_nodules(session, prior_study, prior_analysis)[0], days


def prior_summary(session: Session, ctx: StudyContext, lang: str) -> dict[str, Any] | None:
    """The newest earlier analysed study of the same patient, and nodule changes since then."""
    if ctx.analysis is None:
        return None
    found = find_prior(session, ctx.study)
    if found is None:
        return None
    prior_study, prior_analysis = found
    prior_nodules, prior_row = _prior_nodules(session, prior_study, prior_analysis)
    signed_prior = prior_row is not None
    current_row = latest_report(session, ctx.study.id)
    current = (
        kept(current_row.nodules)
        if current_row is not None
        else ctx.analysis.result.get("nodules", [])
    )
    days = _interval_days(ctx.study.started_at, prior_study.started_at)
    changes = (
        [c.to_dict() for c in followup.compare(prior_nodules, current, days)]
        if days is not None
        else []
    )
    category = (
        prior_row.lung_rads.get("category")
        if prior_row is not None
        else prior_analysis.result.get("lung_rads", {}).get("category")
    )
    return {
        "study_uid": prior_study.study_uid,
        "date": prior_study.started_at.isoformat() if prior_study.started_at else None,
        "interval_days": round(days) if days is not None else None,
        "signed": signed_prior,
        "lung_rads": category,
        "nodules": len(prior_nodules),
        "changes": changes,
        "grown": sum(1 for c in changes if c["status"] == "grown"),
        "new": sum(1 for c in changes if c["status"] == "new"),
    }
