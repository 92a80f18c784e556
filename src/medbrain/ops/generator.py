"""Seeded synthetic hospital activity: daily department statistics and a consumables store.

:func:`generate_daily` produces, for each of :data:`DEPARTMENTS` (20 clinical departments of a
3,000-bed tertiary hospital) and each day, the pre-aggregated counts the cockpit reads
(:class:`DeptDay`). The model, per department and day:

* outpatient visits = base × weekday factor × day-kind factor (statutory holiday ≈ 0.35,
  Spring Festival ≈ 0.18, make-up workday ≈ 0.95, first day back after a break ≈ 1.25)
  × influenza factor (a winter peak around mid-January whose height varies by season;
  pediatrics and respiratory medicine react most) × trend (+4 %/year) × log-normal noise,
  drawn as Poisson counts;
* emergency visits: a flatter weekday profile, up on holidays;
* inpatients: admissions are Poisson around beds × target occupancy / ALOS (fewer at weekends
  and holidays, fewer during the Spring Festival, more in flu season); discharges are drawn
  from the previous midnight census at rate 1/ALOS (fewer at weekends, more just before the
  Spring Festival); the census carries over day to day, so occupancy can exceed 100 % (加床);
* surgeries for surgical departments (weekday-heavy) with a department share of 四级手术;
* per-discharge DRG relative weights (log-normal around the department's mean) summed per day:
  CMI = Σ weight / discharges. These weights are the generator's own, not the output of the
  insurance DRG grouper, so the cockpit does not depend on that engine;
* revenue (inpatient per discharge × weight, outpatient per visit) split into drugs and
  consumables by department shares; antibiotic DDDs ∝ patient-days; critical values and the
  number handled on time; discharged records graded and the number graded 甲级.

:func:`generate_consumables` produces an item catalogue, lots with expiry dates and 120 days
of daily consumption for the materials page.

Everything is a pure function of the seed and the dates: the same arguments give the same
numbers. Holidays come from :mod:`medbrain.ops.calendar` (strict: a year the installed
``chinese-calendar`` does not know is an :class:`InputError`).

References
----------
国家卫生健康委《国家三级公立医院绩效考核操作手册》(2019, 2024 editions) for the indicator
definitions these counts feed; influenza seasonality: 中国疾病预防控制中心 流感监测周报
(northern China: winter peak December–February).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from medbrain.core.errors import InputError
from medbrain.ops.calendar import DayKind, day_kinds

MAX_DAYS = 366 * 12


@dataclass(frozen=True, slots=True)
class Department:
    """A clinical department and the parameters of its synthetic activity."""

    code: str
    name_zh: str
    name_en: str
    beds: int
    outpatient_per_day: float  # on an ordinary Monday–Friday, before trend and flu
    emergency_per_day: float
    alos_days: float
    target_occupancy: float
    flu_sensitivity: float  # relative extra volume at the peak of a typical flu season
    surgery_rate: float  # operations per admission (0 for medical departments)
    level4_share: float  # share of operations that are 四级手术
    drg_weight: float  # mean DRG relative weight of a discharge
    cost_per_discharge: float  # yuan at weight 1.0
    drug_share: float
    consumable_share: float
    antibiotic_ddd_per_100_bed_days: float
    grade_a_rate: float


#: 20 clinical departments; beds sum to 3,000; outpatient+emergency ≈ 2.2 M visits a year.
DEPARTMENTS: tuple[Department, ...] = (
    Department("CARD", "心血管内科", "Cardiology", 260, 372, 24, 7.5, 0.95, 0.08, 0.30, 0.30, 1.35, 16000, 0.28, 0.22, 18, 0.93),
    Department("RESP", "呼吸与危重症医学科", "Respiratory & critical care", 230, 336, 33, 9.0, 0.96, 0.55, 0.03, 0.10, 1.10, 14000, 0.38, 0.08, 62, 0.91),
    Department("GAST", "消化内科", "Gastroenterology", 170, 288, 12, 7.8, 0.92, 0.06, 0.15, 0.10, 0.95, 12000, 0.32, 0.15, 22, 0.92),
    Department("NEUR", "神经内科", "Neurology", 200, 252, 18, 9.5, 0.94, 0.05, 0.02, 0.05, 1.05, 13000, 0.34, 0.10, 15, 0.92),
    Department("ENDO", "内分泌科", "Endocrinology", 80, 312, 3, 8.0, 0.88, 0.04, 0.00, 0.00, 0.80, 9000, 0.36, 0.05, 10, 0.94),
    Department("NEPH", "肾内科", "Nephrology", 120, 180, 5, 10.0, 0.90, 0.04, 0.05, 0.00, 1.00, 12000, 0.35, 0.12, 25, 0.93),
    Department("HEMA", "血液科", "Hematology", 100, 96, 2, 14.0, 0.97, 0.06, 0.00, 0.00, 1.80, 30000, 0.48, 0.06, 58, 0.90),
    Department("ONCO", "肿瘤科", "Oncology", 210, 180, 3, 10.5, 0.95, 0.03, 0.10, 0.20, 1.25, 18000, 0.45, 0.08, 20, 0.92),
    Department("GSUR", "普通外科", "General surgery", 260, 258, 21, 8.0, 0.93, 0.05, 0.85, 0.28, 1.30, 20000, 0.22, 0.30, 38, 0.91),
    Department("ORTH", "骨科", "Orthopedics", 240, 276, 27, 10.0, 0.92, 0.03, 0.90, 0.30, 1.45, 28000, 0.15, 0.42, 30, 0.92),
    Department("NSUR", "神经外科", "Neurosurgery", 140, 96, 15, 13.0, 0.96, 0.02, 0.75, 0.55, 2.40, 42000, 0.20, 0.35, 45, 0.89),
    Department("CTSU", "心胸外科", "Cardiothoracic surgery", 120, 84, 4, 11.0, 0.90, 0.02, 0.80, 0.60, 2.80, 60000, 0.18, 0.45, 40, 0.90),
    Department("UROL", "泌尿外科", "Urology", 130, 192, 9, 7.0, 0.91, 0.03, 0.85, 0.30, 1.15, 17000, 0.20, 0.32, 32, 0.93),
    Department("GYNE", "妇科", "Gynecology", 110, 288, 6, 5.5, 0.86, 0.03, 0.80, 0.25, 0.90, 11000, 0.20, 0.28, 25, 0.94),
    Department("OBST", "产科", "Obstetrics", 130, 216, 12, 4.5, 0.7, 0.05, 0.55, 0.10, 0.70, 8000, 0.18, 0.22, 20, 0.95),
    Department("PEDI", "儿科", "Pediatrics", 180, 540, 90, 6.0, 0.90, 0.90, 0.05, 0.05, 0.75, 7000, 0.40, 0.10, 35, 0.93),
    Department("OPHT", "眼科", "Ophthalmology", 70, 312, 6, 3.5, 0.78, 0.02, 0.95, 0.35, 0.65, 9000, 0.15, 0.40, 8, 0.95),
    Department("ENTS", "耳鼻咽喉头颈外科", "Otorhinolaryngology", 80, 252, 9, 6.0, 0.86, 0.20, 0.85, 0.25, 0.80, 10000, 0.22, 0.28, 30, 0.94),
    Department("ICU", "重症医学科", "Intensive care", 80, 0, 0, 8.5, 0.97, 0.10, 0.00, 0.00, 3.50, 70000, 0.40, 0.20, 95, 0.88),
    Department("EMER", "急诊科", "Emergency medicine", 90, 72, 312, 3.5, 1.05, 0.35, 0.05, 0.05, 0.90, 9000, 0.35, 0.15, 45, 0.90),
)  # fmt: skip

#: Other names a hospital system uses for these departments (for deriving rows from encounters).
DEPARTMENT_ALIASES: dict[str, str] = {
    "心内科": "CARD",
    "呼吸内科": "RESP",
    "普外科": "GSUR",
    "妇产科": "GYNE",
    "泌尿科": "UROL",
    "耳鼻喉科": "ENTS",
    "ICU": "ICU",
    "急诊": "EMER",
}

WEEKDAY_OUTPATIENT = (1.18, 1.08, 1.04, 1.02, 0.98, 0.55, 0.42)
WEEKDAY_EMERGENCY = (1.00, 0.97, 0.96, 0.96, 1.00, 1.06, 1.08)
WEEKDAY_ADMISSION = (1.20, 1.15, 1.10, 1.05, 1.00, 0.55, 0.45)
WEEKDAY_DISCHARGE = (0.90, 1.05, 1.05, 1.10, 1.25, 0.70, 0.45)
WEEKDAY_SURGERY = (1.15, 1.20, 1.20, 1.15, 1.10, 0.15, 0.05)
KIND_OUTPATIENT = {
    "holiday": 0.35,
    "spring_festival": 0.18,
    "makeup": 1.0,
    "weekend": 1.0,
    "workday": 1.0,
}
OUTPATIENT_REVENUE_PER_VISIT = 320.0
TREND_PER_YEAR = 0.04


@dataclass(frozen=True, slots=True)
class DeptDay:
    """One department's activity on one day (the pre-aggregated row the cockpit reads).

    ``occupied_beds`` is the midnight census (= patient-days of that day);
    ``discharged_patient_days`` the summed length of stay of that day's discharges; costs are
    yuan; ``drg_weight_sum`` the summed DRG relative weight of that day's discharges.
    """

    day: date
    dept_code: str
    beds: int
    outpatient_visits: int
    emergency_visits: int
    admissions: int
    discharges: int
    occupied_beds: int
    discharged_patient_days: int
    surgeries: int
    surgeries_level4: int
    drg_weight_sum: float
    total_cost: float
    drug_cost: float
    consumable_cost: float
    antibiotic_ddd: float
    critical_values: int
    critical_values_on_time: int
    records_graded: int
    records_grade_a: int


def _check_range(start: date, end: date) -> int:
    if end < start:
        raise InputError("generator", "end", f"{end} is before start {start}")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise InputError("generator", "end", f"{days} days requested; at most {MAX_DAYS}")
    return days


def _flu_factor(days: Sequence[date], rng: np.random.Generator) -> np.ndarray:
    """1 + season height × Gaussian bump around the season's peak (mid-January ± 2 weeks)."""
    seasons: dict[int, tuple[date, float, float]] = {}
    out = np.zeros(len(days))
    for i, d in enumerate(days):
        season = d.year if d.month >= 7 else d.year - 1
        if season not in seasons:
            peak = date(season + 1, 1, 15) + timedelta(days=int(rng.integers(-18, 19)))
            height = float(rng.uniform(0.6, 1.4))
            width = float(rng.uniform(18, 30))
            seasons[season] = (peak, height, width)
        peak, height, width = seasons[season]
        dist = (d - peak).days
        out[i] = height * math.exp(-0.5 * (dist / width) ** 2)
    return out


def generate_daily(
    start: date,
    end: date,
    *,
    seed: int = 2026,
    departments: Sequence[Department] = DEPARTMENTS,
    beds_scale: float = 1.0,
) -> list[DeptDay]:
    """Daily activity of every department from ``start`` to ``end`` inclusive, seeded.

    Rows are ordered by department (in ``departments`` order), then day. ``beds_scale``
    scales beds and volumes together (a smaller hospital for tests).

    Raises
    ------
    InputError
        ``end`` before ``start``, a span over :data:`MAX_DAYS`, a non-positive scale, or a
        year the installed ``chinese-calendar`` does not know.
    """
    days = _check_range(start, end)
    if not beds_scale > 0:
        raise InputError("generator", "beds_scale", f"must be positive, got {beds_scale}")
    rng = np.random.default_rng(seed)
    kinds: list[DayKind] = day_kinds(start, days, strict=True)
    dates = [k.day for k in kinds]
    weekday = np.array([d.weekday() for d in dates])
    years = np.array([(d - date(2020, 1, 1)).days / 365.25 for d in dates])
    trend = (1 + TREND_PER_YEAR) ** years
    flu = _flu_factor(dates, rng)
    kind = np.array([k.kind for k in kinds])
    after = np.array([k.after_holiday for k in kinds])
    # Days to the next Spring Festival holiday (discharges rise just before it).
    sf_soon = np.zeros(days, dtype=bool)
    for i in range(days):
        if kind[i] == "spring_festival" and (i == 0 or kind[i - 1] != "spring_festival"):
            sf_soon[max(0, i - 5) : i] = True
    w_out = np.array(WEEKDAY_OUTPATIENT)[weekday]
    w_out = w_out * np.array([KIND_OUTPATIENT[k] for k in kind])
    w_out = np.where(kind == "makeup", 0.95, w_out)
    w_out = np.where(after, w_out * 1.25, w_out)
    off = np.isin(kind, ("holiday", "spring_festival"))
    w_em = np.array(WEEKDAY_EMERGENCY)[weekday] * np.where(off, 1.12, 1.0)
    w_adm = np.array(WEEKDAY_ADMISSION)[weekday]
    w_adm = np.where(kind == "holiday", 0.5, w_adm)
    w_adm = np.where(kind == "spring_festival", 0.3, w_adm)
    w_adm = np.where(kind == "makeup", 1.0, w_adm)
    w_adm = np.where(after, w_adm * 1.3, w_adm)
    w_dis = np.array(WEEKDAY_DISCHARGE)[weekday]
    w_dis = np.where(off, 0.5, w_dis)
    w_dis = np.where(kind == "makeup", 1.0, w_dis)
    w_dis = np.where(sf_soon, w_dis * 1.45, w_dis)
    w_sur = np.array(WEEKDAY_SURGERY)[weekday]
    w_sur = np.where(off, 0.12, w_sur)
    w_sur = np.where(kind == "makeup", 1.1, w_sur)

    rows: list[DeptDay] = []
    for dept in departments:
        beds = max(1, round(dept.beds * beds_scale))
        flu_d = 1 + dept.flu_sensitivity * flu
        noise = np.exp(rng.normal(0, 0.05, days))
        outpatient = rng.poisson(
            dept.outpatient_per_day * beds_scale * w_out * flu_d * trend * noise
        )
        emergency = rng.poisson(
            dept.emergency_per_day
            * beds_scale
            * w_em
            * flu_d
            * trend
            * np.exp(rng.normal(0, 0.06, days))
        )
        base_adm = beds * dept.target_occupancy / dept.alos_days
        # Admissions follow demand but are held back as the ward fills up.
        census = round(beds * dept.target_occupancy)
        adm = np.zeros(days, dtype=np.int64)
        dis = np.zeros(days, dtype=np.int64)
        occ = np.zeros(days, dtype=np.int64)
        mean_adm_factor = float(np.mean(w_adm))
        mean_dis_factor = float(np.mean(w_dis))
        flu_adm = 1 + 0.5 * dept.flu_sensitivity * flu
        for i in range(days):
            target = beds * dept.target_occupancy
            pressure = min(1.15, max(0.6, 1.0 + (target - census) / (beds * 0.5)))
            lam_a = base_adm * w_adm[i] / mean_adm_factor * flu_adm[i] * pressure
            a = int(rng.poisson(max(lam_a, 0.0)))
            lam_d = census / dept.alos_days * w_dis[i] / mean_dis_factor
            dd = min(census, int(rng.poisson(max(lam_d, 0.0))))
            census = census + a - dd
            adm[i], dis[i], occ[i] = a, dd, census
        los_total = np.where(
            dis > 0, rng.gamma(np.maximum(dis, 1) * 4.0, dept.alos_days / 4.0), 0.0
        )
        discharged_days = np.rint(los_total).astype(np.int64)
        surg = rng.poisson(dept.surgery_rate * base_adm * w_sur * trend / float(np.mean(w_sur)))
        level4 = rng.binomial(surg, min(0.95, dept.level4_share))
        weight_sum = np.where(
            dis > 0, rng.gamma(np.maximum(dis, 1) * 6.0, dept.drg_weight / 6.0), 0.0
        )
        inpatient_cost = weight_sum * dept.cost_per_discharge
        visits = outpatient + emergency
        outpatient_cost = visits * OUTPATIENT_REVENUE_PER_VISIT * np.exp(rng.normal(0, 0.03, days))
        total = inpatient_cost + outpatient_cost
        drug_share = np.clip(
            dept.drug_share * np.exp(rng.normal(0, 0.04, days)) - 0.01 * years, 0.02, 0.9
        )
        cons_share = np.clip(dept.consumable_share * np.exp(rng.normal(0, 0.05, days)), 0.01, 0.8)
        drug = total * drug_share
        consumable = (total - drug) * cons_share
        ddd = occ * dept.antibiotic_ddd_per_100_bed_days / 100 * np.exp(rng.normal(0, 0.1, days))
        ddd = ddd * (1 - 0.02 * np.clip(years, 0, None))
        crit = rng.poisson(occ * 0.012 + visits * 0.0008)
        crit_ok = rng.binomial(crit, 0.965)
        grade_a = rng.binomial(dis, min(0.995, dept.grade_a_rate))
        for i, d in enumerate(dates):
            rows.append(
                DeptDay(
                    day=d,
                    dept_code=dept.code,
                    beds=beds,
                    outpatient_visits=int(outpatient[i]),
                    emergency_visits=int(emergency[i]),
                    admissions=int(adm[i]),
                    discharges=int(dis[i]),
                    occupied_beds=int(occ[i]),
                    discharged_patient_days=int(discharged_days[i]),
                    surgeries=int(surg[i]),
                    surgeries_level4=int(level4[i]),
                    drg_weight_sum=round(float(weight_sum[i]), 3),
                    total_cost=round(float(total[i]), 2),
                    drug_cost=round(float(drug[i]), 2),
                    consumable_cost=round(float(consumable[i]), 2),
                    antibiotic_ddd=round(float(ddd[i]), 2),
                    critical_values=int(crit[i]),
                    critical_values_on_time=int(crit_ok[i]),
                    records_graded=int(dis[i]),
                    records_grade_a=int(grade_a[i]),
                )
            )
    return rows


def department_by_code(departments: Sequence[Department] = DEPARTMENTS) -> dict[str, Department]:
    return {d.code: d for d in departments}


# -- consumables -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsumableItem:
    code: str
    name_zh: str
    name_en: str
    unit: str
    lead_time_days: int
    mean_daily_use: float
    shelf_life_days: int


@dataclass(frozen=True, slots=True)
class ConsumableLot:
    item_code: str
    lot_no: str
    quantity: int
    expiry_date: date
    received_on: date


@dataclass(frozen=True, slots=True)
class ConsumableUse:
    item_code: str
    day: date
    quantity: int


CONSUMABLE_ITEMS: tuple[ConsumableItem, ...] = (
    ConsumableItem("C001", "一次性使用无菌注射器 5ml", "Sterile syringe 5 ml", "支", 7, 1800, 1095),
    ConsumableItem("C002", "一次性使用输液器", "Infusion set", "套", 7, 1500, 1095),
    ConsumableItem("C003", "静脉留置针 22G", "IV cannula 22G", "支", 10, 420, 1095),
    ConsumableItem("C004", "医用外科口罩", "Surgical mask", "只", 5, 3000, 730),
    ConsumableItem("C005", "一次性使用导尿包", "Urinary catheter kit", "包", 10, 90, 1095),
    ConsumableItem("C006", "中心静脉导管套件", "Central venous catheter kit", "套", 14, 25, 1095),
    ConsumableItem("C007", "药物洗脱冠脉支架", "Drug-eluting coronary stent", "个", 21, 6, 730),
    ConsumableItem("C008", "一次性管型吻合器", "Circular stapler", "把", 21, 8, 1095),
    ConsumableItem("C009", "可吸收缝合线 3-0", "Absorbable suture 3-0", "根", 14, 160, 1460),
    ConsumableItem("C010", "医用脱脂纱布块", "Gauze swab", "包", 5, 700, 1095),
    ConsumableItem("C011", "一次性使用手术衣", "Surgical gown", "件", 7, 260, 1095),
    ConsumableItem("C012", "人工全膝关节假体", "Total knee prosthesis", "套", 30, 2, 1825),
    ConsumableItem("C013", "血液透析器", "Hemodialyzer", "支", 14, 60, 1095),
    ConsumableItem("C014", "真空采血管", "Vacuum blood collection tube", "支", 7, 4200, 540),
    ConsumableItem("C015", "一次性使用吸痰管", "Suction catheter", "根", 7, 220, 1095),
    ConsumableItem("C016", "医用检查手套", "Examination gloves", "副", 5, 5200, 1095),
    ConsumableItem("C017", "人工晶状体", "Intraocular lens", "片", 21, 12, 1095),
    ConsumableItem("C018", "一次性使用气管插管", "Endotracheal tube", "根", 10, 30, 1095),
)  # fmt: skip


def generate_consumables(
    today: date,
    *,
    seed: int = 2026,
    history_days: int = 120,
    items: Sequence[ConsumableItem] = CONSUMABLE_ITEMS,
) -> tuple[list[ConsumableItem], list[ConsumableLot], list[ConsumableUse]]:
    """An item catalogue, lots on hand as of ``today`` and daily consumption before ``today``.

    Lots are spread so that a few expire within 7, 30 and 90 days (and one has already
    expired), and some items run low enough to need reordering.
    """
    if history_days < 14 or history_days > 3660:
        raise InputError("generator", "history_days", f"must be 14–3660, got {history_days}")
    rng = np.random.default_rng(seed)
    lots: list[ConsumableLot] = []
    uses: list[ConsumableUse] = []
    for n, item in enumerate(items):
        weekday = np.array(
            [
                WEEKDAY_OUTPATIENT[(today - timedelta(days=history_days - i)).weekday()]
                for i in range(history_days)
            ]
        )
        daily = rng.poisson(
            item.mean_daily_use * weekday * np.exp(rng.normal(0, 0.15, history_days))
        )
        for i in range(history_days):
            uses.append(
                ConsumableUse(item.code, today - timedelta(days=history_days - i), int(daily[i]))
            )
        # Cover between ~0.3 and ~4 lead times of stock, split over 1–4 lots.
        cover_days = float(rng.uniform(0.3, 4.0)) * item.lead_time_days
        total = max(1, round(item.mean_daily_use * cover_days))
        n_lots = int(rng.integers(1, 5))
        shares = rng.dirichlet(np.ones(n_lots))
        for k in range(n_lots):
            # Days to expiry: mostly long; some items get a lot in each warning horizon.
            if k == 0 and n % 3 == 0:
                expires_in = (-3, 5, 20, 60)[(n // 3) % 4]
            else:
                expires_in = int(rng.integers(30, item.shelf_life_days))
            lots.append(
                ConsumableLot(
                    item_code=item.code,
                    lot_no=f"{item.code}-{today.year % 100:02d}{n:02d}{k:02d}",
                    quantity=max(1, round(total * float(shares[k]))),
                    expiry_date=today + timedelta(days=expires_in),
                    received_on=today - timedelta(days=int(rng.integers(5, 200))),
                )
            )
    return list(items), lots, uses
