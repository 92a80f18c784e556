"""A seeded generator of synthetic inpatient claims with injected fraud/abuse patterns.

Every case is a front-page document (:mod:`medbrain.insurance.frontpage` format) with claim
lines, orders, labs and notes, plus a ground-truth label. Most cases are legitimate — with
the untidiness real data has (an occasional item billed without a matching order, a second
CT, an expensive stay) — and a small share (``prevalence``, default 3 %) carries one injected
pattern:

* ``phantom``: items that were never given (lines dated outside the stay, no order, extra
  bed days);
* ``upcoding``: an MCC/CC secondary diagnosis added with no supporting lab or note, which
  moves the case into a heavier DRG;
* ``unbundling``: a panel billed together with its own components;
* ``duplicate``: a claim billed twice (same stay resubmitted) or identical lines repeated;
* ``excessive``: test and drug quantities inflated far above the usual.

Fraud concentrates on a few doctors, as it does in practice, so provider-level features
carry signal. All names and numbers are invented.

References
----------
Bauder & Khoshgoftaar (2017) on Medicare fraud detection at low prevalence; the pattern names
follow 《医疗保障基金使用监督管理条例》第三十八条、第四十条 (分解项目收费, 重复收费, 虚构医药服务项目).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

PATTERNS = ("phantom", "upcoding", "unbundling", "duplicate", "excessive")


@dataclass(frozen=True, slots=True)
class Template:
    department: str
    principal: str
    secondary: tuple[str, ...]
    procedures: tuple[str, ...]
    los: tuple[int, int]
    items: tuple[tuple[str, str, float, int], ...]  # name, category, unit price, count per stay
    labs: tuple[tuple[str, float, str], ...]
    note: str
    upcode: tuple[str, ...]  # MCC/CC codes a fraudulent coder adds


TEMPLATES: tuple[Template, ...] = (
    Template(
        "呼吸内科",
        "J18.900",
        ("I10.x09",),
        (),
        (5, 10),
        (
            ("血常规", "lab", 20, 3),
            ("C反应蛋白", "lab", 30, 2),
            ("胸部CT", "exam", 260, 1),
            ("注射用头孢曲松钠", "drug", 45, 14),
            ("雾化吸入", "treatment", 12, 8),
            ("肝功能", "lab", 60, 1),
            ("肾功能", "lab", 40, 1),
            ("一次性输液器", "consumable", 4, 10),
        ),
        (("白细胞", 12.5, "10^9/L"), ("C反应蛋白", 48, "mg/L")),
        "发热咳嗽3天，胸部CT示右下肺斑片影，诊断肺炎，予头孢曲松抗感染。",
        ("J96.000", "E87.600"),
    ),
    Template(
        "心内科",
        "I21.900",
        ("I10.x09", "I25.103"),
        ("36.0700",),
        (6, 12),
        (
            ("肌钙蛋白", "lab", 90, 3),
            ("常规心电图检查(十二通道)", "exam", 25, 4),
            ("心脏彩超", "exam", 300, 1),
            ("冠状动脉药物洗脱支架", "consumable", 7000, 1),
            ("经皮冠状动脉支架置入术", "surgery", 3500, 1),
            ("阿司匹林肠溶片", "drug", 1, 10),
            ("血常规", "lab", 20, 3),
        ),
        (("肌钙蛋白", 3.2, "ng/mL"),),
        "胸痛4小时，心电图ST段抬高，肌钙蛋白升高，急诊行PCI。",
        ("I50.900", "R57.900"),
    ),
    Template(
        "神经内科",
        "I63.900",
        ("I10.x09", "E11.900"),
        (),
        (7, 14),
        (
            ("头颅CT", "exam", 200, 1),
            ("磁共振", "exam", 600, 1),
            ("血常规", "lab", 20, 3),
            ("注射用血栓通", "drug", 80, 8),
            ("针刺", "treatment", 30, 10),
            ("血脂四项", "lab", 50, 1),
        ),
        (("糖化血红蛋白", 7.8, "%"), ("血糖", 9.1, "mmol/L")),
        "左侧肢体无力1天，头颅MRI DWI示右侧基底节区梗死灶。糖尿病史，予胰岛素。",
        ("J96.000", "E43.x00"),
    ),
    Template(
        "普外科",
        "K80.101",
        (),
        ("51.2300",),
        (3, 7),
        (
            ("腹腔镜下胆囊切除术", "surgery", 2500, 1),
            ("腹部彩超", "exam", 150, 1),
            ("血常规", "lab", 20, 2),
            ("凝血四项", "lab", 80, 1),
            ("注射用头孢呋辛钠", "drug", 30, 6),
            ("一次性腹腔镜穿刺器", "consumable", 800, 1),
        ),
        (("白细胞", 8.1, "10^9/L"),),
        "右上腹痛反复发作，彩超示胆囊结石，行腹腔镜下胆囊切除术。",
        ("D64.900", "E77.801"),
    ),
    Template(
        "消化内科",
        "K92.208",
        ("K29.500",),
        ("44.1300x001",),
        (4, 9),
        (
            ("胃镜", "exam", 350, 1),
            ("注射用奥美拉唑", "drug", 40, 12),
            ("血常规", "lab", 20, 4),
            ("肝功能", "lab", 60, 1),
            ("悬浮红细胞", "blood", 450, 2),
        ),
        (("血红蛋白", 86, "g/L"),),
        "黑便2天，胃镜示胃窦溃疡伴出血，予抑酸止血输血治疗。",
        ("R57.900", "E87.600"),
    ),
    Template(
        "产科",
        "O80.000",
        (),
        ("73.6x01",),
        (2, 4),
        (
            ("阴道分娩", "surgery", 900, 1),
            ("血常规", "lab", 20, 2),
            ("胎心监护", "exam", 30, 3),
            ("缩宫素注射液", "drug", 5, 2),
        ),
        (("血红蛋白", 118, "g/L"),),
        "孕39周，规律宫缩入院，会阴侧切助娩一活婴。",
        ("D64.900", "O99.000"),
    ),
    Template(
        "内分泌科",
        "E11.900",
        ("I10.x09",),
        (),
        (6, 10),
        (
            ("糖化血红蛋白", "lab", 60, 1),
            ("末梢血糖", "lab", 5, 28),
            ("胰岛素注射液", "drug", 60, 3),
            ("血脂四项", "lab", 50, 1),
            ("肾功能", "lab", 40, 1),
            ("甲状腺功能", "lab", 120, 1),
            ("常规心电图检查(十二通道)", "exam", 25, 1),
        ),
        (("糖化血红蛋白", 9.2, "%"), ("血糖", 12.4, "mmol/L")),
        "口干多饮半年，血糖控制差入院，调整胰岛素方案。",
        ("E87.600", "E43.x00"),
    ),
)
DOCTORS_PER_DEPT = 4
BED_PRICE = 60.0
NURSING_PRICE = 30.0


@dataclass(frozen=True, slots=True)
class GeneratedCase:
    document: dict[str, Any]
    label: bool
    pattern: str | None


def _line(
    name: str, category: str, price: float, quantity: float, day: date, order: str | None
) -> dict[str, Any]:
    return {
        "item_code": f"X{abs(hash_name(name)) % 10**8:08d}",
        "name": name,
        "category": category,
        "date": day.isoformat(),
        "quantity": quantity,
        "unit_price": price,
        "amount": round(price * quantity, 2),
        "order_id": order,
    }


def hash_name(name: str) -> int:
    """A stable (not salted) code for an item name, so item codes repeat across runs."""
    value = 0
    for char in name:
        value = (value * 131 + ord(char)) % (2**61 - 1)
    return value


def _normal_case(
    rng: random.Random, index: int, start: date, patients: int, busy: dict[str, date]
) -> tuple[dict[str, Any], Template, list[date]]:
    template = rng.choice(TEMPLATES)
    los = rng.randint(*template.los)
    patient = f"P{rng.randint(1, patients):06d}"
    admit = start + timedelta(days=rng.randint(0, 330))
    if patient in busy and admit <= busy[patient]:  # one stay at a time per patient
        admit = busy[patient] + timedelta(days=rng.randint(10, 120))
    discharge = admit + timedelta(days=los)
    busy[patient] = admit + timedelta(days=los)
    days = [admit + timedelta(days=d) for d in range(los + 1)]
    dept_index = TEMPLATES.index(template)
    doctor = f"{template.department}-医生{rng.randint(1, DOCTORS_PER_DEPT)}"
    lines: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    for item_no, (name, category, price, count) in enumerate(template.items):
        n = max(1, count + rng.randint(-1, 1)) if count > 1 else 1
        for k in range(n):
            day = days[min(len(days) - 1, (k * max(1, los // max(1, n))) % len(days))]
            order_id: str | None = f"O{index}-{item_no}-{k}"
            orders.append({"order_id": order_id, "name": name, "date": day.isoformat()})
            price_j = round(price * rng.uniform(0.95, 1.05), 2)
            if rng.random() < 0.01:  # real-data untidiness: an order id lost in the interface
                order_id = None
            lines.append(_line(name, category, price_j, 1, day, order_id))
    daily = round(rng.uniform(250, 450), 2)  # the day's routine drugs and infusions
    for day in days[:-1]:
        lines.append(_line("静脉输液及基础药品", "drug", daily, 1, day, f"O{index}-daily"))
    orders.append({"order_id": f"O{index}-daily", "name": "静脉输液及基础药品"})
    lines.append(_line("床位费", "bed", BED_PRICE, los, admit, f"O{index}-bed"))
    lines.append(_line("二级护理", "nursing", NURSING_PRICE, los, admit, f"O{index}-nur"))
    orders.append({"order_id": f"O{index}-bed", "name": "床位费"})
    orders.append({"order_id": f"O{index}-nur", "name": "二级护理"})
    if rng.random() < 0.03:  # a legitimately repeated CT (a complication work-up)
        lines.append(_line("胸部CT", "exam", 260, 1, days[-1], f"O{index}-ct2"))
        orders.append({"order_id": f"O{index}-ct2", "name": "胸部CT"})
    secondary = [c for c in template.secondary if rng.random() < 0.7]
    labs = [
        {"name": n, "value": v * rng.uniform(0.9, 1.1), "unit": u, "date": admit.isoformat()}
        for n, v, u in template.labs
    ]
    age = rng.randint(25, 85) if template.department != "产科" else rng.randint(22, 40)
    sex = "female" if template.department == "产科" else rng.choice(["male", "female"])
    doc: dict[str, Any] = {
        "case_id": f"C{index:06d}",
        "patient_id": patient,
        "department": template.department,
        "doctor": doctor,
        "sex": sex,
        "age_years": age,
        "admit_date": admit.isoformat(),
        "discharge_date": discharge.isoformat(),
        "discharge_status": "1",
        "principal_diagnosis": template.principal,
        "secondary_diagnoses": secondary,
        "procedures": list(template.procedures),
        "claim_lines": lines,
        "orders": orders,
        "labs": labs,
        "notes": {"course": template.note},
    }
    del dept_index
    return doc, template, days


def _inject(
    rng: random.Random, doc: dict[str, Any], template: Template, days: list[date], pattern: str
) -> None:
    lines: list[dict[str, Any]] = doc["claim_lines"]
    if pattern == "phantom":
        choice = rng.random()
        if choice < 0.4:
            after = days[-1] + timedelta(days=rng.randint(1, 5))
            lines.append(_line("磁共振", "exam", 600, 1, after, None))
        elif choice < 0.7:
            name, category, price, _ = rng.choice(template.items)
            for _ in range(rng.randint(2, 4)):
                lines.append(_line(name, category, price, 1, rng.choice(days), None))
        else:
            for line in lines:
                if line["category"] == "bed":
                    line["quantity"] += rng.randint(3, 6)
                    line["amount"] = round(line["quantity"] * line["unit_price"], 2)
    elif pattern == "upcoding":
        doc["secondary_diagnoses"] = [*doc["secondary_diagnoses"], rng.choice(template.upcode)]
    elif pattern == "unbundling":
        day = rng.choice(days)
        bundle, parts = rng.choice(
            (
                ("血常规", ("白细胞计数", "血红蛋白测定", "血小板计数")),
                ("肝功能", ("丙氨酸氨基转移酶", "总胆红素测定")),
                ("凝血四项", ("凝血酶原时间测定", "纤维蛋白原测定")),
            )
        )
        oid = f"U{doc['case_id']}"
        doc["orders"].append({"order_id": oid, "name": bundle})
        lines.append(_line(bundle, "lab", 40, 1, day, oid))
        for part in parts:
            lines.append(_line(part, "lab", 12, 1, day, oid))
    elif pattern == "duplicate":
        exam = next((x for x in lines if x["category"] == "exam"), lines[0])
        for _ in range(rng.randint(1, 2)):
            lines.append(dict(exam))
    elif pattern == "excessive":
        name, category, price, _ = max(
            template.items, key=lambda item: item[2] if item[1] in ("lab", "exam", "drug") else 0
        )
        day = rng.choice(days)
        oid = f"E{doc['case_id']}"
        doc["orders"].append({"order_id": oid, "name": name})
        lines.append(_line(name, category, price, rng.randint(3, 6), day, oid))


def generate_claims(
    count: int,
    seed: int = 7,
    *,
    prevalence: float = 0.03,
    start: date = date(2025, 1, 1),
) -> list[GeneratedCase]:
    """``count`` synthetic discharges, ``prevalence`` of them (in expectation) fraudulent.

    Deterministic for a given ``seed``. A ``duplicate`` claim may be a resubmission of an
    earlier case (new case id, same patient and stay); the copy carries the label.
    """
    if not 0.0 <= prevalence <= 0.5:
        raise ValueError("prevalence must lie in [0, 0.5]")
    rng = random.Random(seed)
    patients = max(10, int(count * 0.8))
    out: list[GeneratedCase] = []
    departments = sorted({t.department for t in TEMPLATES})
    # A few doctors commit most of the fraud (provider-level signal).
    risky = {f"{d}-医生1" for d in departments[::2]}
    busy: dict[str, date] = {}
    for index in range(count):
        doc, template, days = _normal_case(rng, index, start, patients, busy)
        boost = 4.0 if doc["doctor"] in risky else 0.45
        if out and rng.random() < prevalence * 0.15:
            original = rng.choice(out).document
            copy = {
                **original,
                "case_id": f"C{index:06d}",
                "claim_lines": [dict(x) for x in original["claim_lines"]],
            }
            out.append(GeneratedCase(copy, True, "duplicate"))
            continue
        if rng.random() < prevalence * boost * 0.85:
            pattern = rng.choice(PATTERNS)
            _inject(rng, doc, template, days, pattern)
            out.append(GeneratedCase(doc, True, pattern))
        else:
            out.append(GeneratedCase(doc, False, None))
    return out
