"""The discharge front page (住院病案首页) as the DRG grouper and the compliance checks read it.

:func:`parse_frontpage` turns a JSON document into a frozen :class:`FrontPage`. A document of
the wrong *shape* (not an object, a number that is text, a date that is no date) is refused
with an :class:`~medbrain.core.errors.InputError` naming the field. Problems a real grouper
reports instead of refusing — a missing principal diagnosis, an unknown ICD code, a negative
amount, discharge before admission — become :class:`Issue` rows on the front page, so the case
is reported as ungroupable (or flagged) with the reason, never silently grouped.

Input document (all keys but ``case_id`` optional)::

    {"case_id": "Z0001", "patient_id": "P1", "department": "呼吸内科", "doctor": "王医生",
     "sex": "male|female", "age_years": 68, "age_days": null, "birth_weight_g": null,
     "admit_date": "2025-03-01", "discharge_date": "2025-03-08", "los_days": 7,
     "discharge_status": "1", "principal_diagnosis": "J18.900",
     "secondary_diagnoses": ["J96.000"], "procedures": ["96.7101"],
     "costs": {"drug": 3200.0, "consumable": 800.0, "exam": 600.0, ...},
     "claim_lines": [{"item_code": "250101001", "name": "血常规", "category": "lab",
       "date": "2025-03-02", "quantity": 1, "unit_price": 20, "amount": 20, "order_id": "O1"}],
     "orders": [{"order_id": "O1", "name": "血常规", "date": "2025-03-02"}],
     "labs": [{"name": "PaO2", "value": 55, "unit": "mmHg", "date": "2025-03-01"}],
     "notes": {"admission": "...", "course": "...", "discharge": "..."},
     "outpatient_lines": [claim lines of outpatient visits around the stay]}

References
----------
国家卫生健康委《住院病案首页数据填写质量规范(暂行)》(国卫办医发〔2016〕24号): 离院方式 codes
1 医嘱离院, 2 医嘱转院, 3 医嘱转社区卫生服务机构/乡镇卫生院, 4 非医嘱离院, 5 死亡, 9 其他;
CHS-DRG 1.1 grouper input (主要诊断, 其他诊断, 主要手术操作, 性别, 年龄, 新生儿体重, 住院天数).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from medbrain.core.errors import InputError
from medbrain.core.i18n import t

#: Cost categories of the front page's 住院费用 block, key -> message key of its label.
COST_CATEGORIES: tuple[str, ...] = (
    "drug",
    "consumable",
    "exam",
    "lab",
    "treatment",
    "surgery",
    "nursing",
    "bed",
    "blood",
    "service",
    "other",
)
DISCHARGE_STATUSES = ("1", "2", "3", "4", "5", "9")
SEXES = ("male", "female")
MAX_LOS_DAYS = 3650
MAX_AMOUNT = 1e8


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem with the front page itself: ``blocking`` ones make the case ungroupable."""

    code: str
    path: str  # the input field it is about, e.g. ``claim_lines[3].amount``
    blocking: bool
    params: Mapping[str, Any] = field(default_factory=dict)

    def message(self, lang: str = "zh") -> str:
        return t(f"insurance.issue.{self.code}", lang, field=self.path, **self.params)

    def to_dict(self, lang: str = "zh") -> dict[str, Any]:
        return {
            "code": self.code,
            "field": self.path,
            "blocking": self.blocking,
            "message": self.message(lang),
        }


@dataclass(frozen=True, slots=True)
class ClaimLine:
    """One billed item (医保结算清单 / 费用明细 line)."""

    item_code: str
    name: str
    category: str
    quantity: float
    unit_price: float
    amount: float
    day: date | None = None
    order_id: str | None = None
    index: int = 0

    def quote(self) -> str:
        when = self.day.isoformat() if self.day else "-"
        return f"{when} {self.name}({self.item_code}) ×{self.quantity:g} = {self.amount:.2f}"


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    name: str
    item_code: str = ""
    day: date | None = None


@dataclass(frozen=True, slots=True)
class Lab:
    name: str
    value: float | None
    unit: str = ""
    day: date | None = None
    text: str = ""


@dataclass(frozen=True, slots=True)
class FrontPage:
    case_id: str
    patient_id: str | None = None
    department: str | None = None
    doctor: str | None = None
    sex: str | None = None
    age_years: int | None = None
    age_days: int | None = None
    birth_weight_g: int | None = None
    admit_date: date | None = None
    discharge_date: date | None = None
    los_days: int | None = None
    discharge_status: str | None = None
    principal_diagnosis: str | None = None
    secondary_diagnoses: tuple[str, ...] = ()
    procedures: tuple[str, ...] = ()
    costs: Mapping[str, float] = field(default_factory=dict)
    total_cost: float = 0.0
    claim_lines: tuple[ClaimLine, ...] = ()
    orders: tuple[Order, ...] = ()
    labs: tuple[Lab, ...] = ()
    notes: Mapping[str, str] = field(default_factory=dict)
    outpatient_lines: tuple[ClaimLine, ...] = ()
    issues: tuple[Issue, ...] = ()

    @property
    def diagnoses(self) -> tuple[str, ...]:
        """Principal first, then the secondary diagnoses (the grouper's ``zdList``)."""
        head = (self.principal_diagnosis,) if self.principal_diagnosis else ()
        return head + self.secondary_diagnoses

    @property
    def blocking_issues(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.blocking)


# -- parsing ---------------------------------------------------------------------------------


def _text(doc: Mapping[str, Any], key: str, source: str, *, limit: int = 200) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if type(value) is str and len(value) <= limit:  # fast path (most fields)
        return value.strip() or None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(source, key, f"must be text, got {type(value).__name__}")
    text = str(value).strip()
    if len(text) > limit:
        raise InputError(source, key, f"longer than {limit} characters")
    return text or None


def _number(value: Any, source: str, key: str) -> float | None:
    if type(value) is float or type(value) is int:  # fast path; NaN/inf checked below
        number = float(value)
        if number - number == 0.0:
            return number
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InputError(source, key, "must be a number, got true/false")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise InputError(source, key, f"must be a number, got {value!r}") from None
    else:
        raise InputError(source, key, f"must be a number, got {type(value).__name__}")
    if number != number or number in (float("inf"), float("-inf")):
        raise InputError(source, key, "must be a finite number")
    return number


def _int(value: Any, source: str, key: str) -> int | None:
    number = _number(value, source, key)
    if number is None:
        return None
    if not number.is_integer():
        raise InputError(source, key, f"must be a whole number, got {number:g}")
    return int(number)


@lru_cache(maxsize=4096)
def _iso_date(text: str) -> date:
    return date.fromisoformat(text.strip()[:10])


def _date(value: Any, source: str, key: str) -> date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(source, key, "must be a date YYYY-MM-DD")
    try:
        return _iso_date(value)
    except ValueError:
        raise InputError(source, key, f"must be a date YYYY-MM-DD, got {value!r}") from None


def _codes(value: Any, source: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v for v in value.replace(";", ",").split(",")]
    if not isinstance(value, list):
        raise InputError(source, key, "must be a list of codes")
    out: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise InputError(source, f"{key}[{index}]", "must be a code (text)")
        code = normalize_code(item)
        if code:
            out.append(code)
    return tuple(out)


_EXTENSION_X = re.compile(r"(?<=[0-9.x])X")


def normalize_code(raw: str) -> str:
    """ICD codes as the national tables write them: upper case, extension marker ``x``.

    ``j18.900X001`` → ``J18.900x001``; a chapter letter X (``X59.900``) stays upper case.
    """
    return _EXTENSION_X.sub("x", raw.strip().upper())


def _lines(value: Any, source: str, key: str, issues: list[Issue]) -> tuple[ClaimLine, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InputError(source, key, "must be a list of claim lines")
    out: list[ClaimLine] = []
    for index, row in enumerate(value):
        if not isinstance(row, Mapping):
            raise InputError(source, f"{key}[{index}]", "must be an object")
        name = _text(row, "name", source) or ""
        code = _text(row, "item_code", source) or name
        if not code:
            raise InputError(source, f"{key}[{index}].item_code", "missing (item_code or name)")
        numbers: list[float | None] = []
        for label in ("quantity", "unit_price", "amount"):
            raw = row.get(label, 1 if label == "quantity" else None)
            if (type(raw) is int or type(raw) is float) and raw - raw == 0:  # fast path
                numbers.append(float(raw))
            else:
                numbers.append(_number(raw, source, f"{key}[{index}].{label}"))
        quantity = 1.0 if numbers[0] is None else numbers[0]
        price, amount = numbers[1], numbers[2]
        if amount is None:
            amount = (price or 0.0) * quantity
        if price is None:
            price = amount / quantity if quantity else amount
        if quantity < 0 or price < 0 or amount < 0 or max(quantity, price, amount) > MAX_AMOUNT:
            for label, number in (
                ("quantity", quantity),
                ("unit_price", price),
                ("amount", amount),
            ):
                if number < 0:
                    issues.append(
                        Issue(
                            "negative_amount", f"{key}[{index}].{label}", False, {"value": number}
                        )
                    )
                elif number > MAX_AMOUNT:
                    issues.append(
                        Issue(
                            "impossible_amount", f"{key}[{index}].{label}", False, {"value": number}
                        )
                    )
        category_raw = row.get("category")
        category = (
            category_raw
            if type(category_raw) is str and category_raw in COST_CATEGORIES
            else (_text(row, "category", source) or "other").lower()
        )
        if category not in COST_CATEGORIES:
            issues.append(
                Issue("unknown_category", f"{key}[{index}].category", False, {"value": category})
            )
        day_raw = row.get("date")
        out.append(
            ClaimLine(
                item_code=code,
                name=name or code,
                category=category,
                quantity=quantity,
                unit_price=price,
                amount=amount,
                day=_date(day_raw, source, f"{key}[{index}].date") if day_raw else None,
                order_id=_text(row, "order_id", source),
                index=index,
            )
        )
    return tuple(out)


def parse_frontpage(doc: Any, source: str = "frontpage") -> FrontPage:
    """A :class:`FrontPage` from its JSON document; shape errors raise :class:`InputError`."""
    if not isinstance(doc, Mapping):
        raise InputError(source, "", "a front page must be a JSON object")
    issues: list[Issue] = []
    case_id = _text(doc, "case_id", source, limit=64)
    if case_id is None:
        raise InputError(source, "case_id", "missing")
    sex_raw = _text(doc, "sex", source)
    sex = {
        "男": "male",
        "女": "female",
        "1": "male",
        "2": "female",
        "m": "male",
        "f": "female",
    }.get((sex_raw or "").lower(), (sex_raw or "").lower() or None)
    if sex is None:
        issues.append(Issue("sex_missing", "sex", True))
    elif sex not in SEXES:
        issues.append(Issue("sex_invalid", "sex", True, {"value": sex_raw}))
        sex = None
    age_years = _int(doc.get("age_years"), source, "age_years")
    age_days = _int(doc.get("age_days"), source, "age_days")
    if age_years is None and age_days is None:
        issues.append(Issue("age_missing", "age_years", True))
    for key, value, upper in (("age_years", age_years, 130), ("age_days", age_days, 366)):
        if value is not None and not 0 <= value <= upper:
            issues.append(Issue("age_impossible", key, True, {"value": value}))
    if age_years is None and age_days is not None:
        age_years = 0 if age_days < 365 else age_days // 365
    birth_weight = _int(doc.get("birth_weight_g"), source, "birth_weight_g")
    if birth_weight is not None and not 200 <= birth_weight <= 8000:
        issues.append(Issue("weight_impossible", "birth_weight_g", True, {"value": birth_weight}))
        birth_weight = None
    if age_days is not None and age_days <= 28 and (age_years or 0) == 0 and birth_weight is None:
        issues.append(Issue("neonate_weight_missing", "birth_weight_g", True))
    admit = _date(doc.get("admit_date"), source, "admit_date")
    discharge = _date(doc.get("discharge_date"), source, "discharge_date")
    los = _int(doc.get("los_days"), source, "los_days")
    if admit and discharge:
        computed = (discharge - admit).days
        if computed < 0:
            issues.append(
                Issue(
                    "discharge_before_admission",
                    "discharge_date",
                    True,
                    {"admit": admit.isoformat(), "discharge": discharge.isoformat()},
                )
            )
            los = None
        else:
            computed = max(computed, 1)  # a same-day stay counts as one day
            if los is not None and los != computed:
                issues.append(
                    Issue("los_mismatch", "los_days", False, {"given": los, "computed": computed})
                )
            los = computed
    if los is None and not any(i.code == "discharge_before_admission" for i in issues):
        issues.append(Issue("los_missing", "los_days", True))
    elif los is not None and not 0 <= los <= MAX_LOS_DAYS:
        issues.append(Issue("los_impossible", "los_days", True, {"value": los}))
        los = None
    status = _text(doc, "discharge_status", source)
    if status is None:
        issues.append(Issue("discharge_status_missing", "discharge_status", False))
    elif status not in DISCHARGE_STATUSES:
        issues.append(
            Issue("discharge_status_invalid", "discharge_status", False, {"value": status})
        )
    principal_list = _codes(doc.get("principal_diagnosis"), source, "principal_diagnosis")
    principal = principal_list[0] if principal_list else None
    if principal is None:
        issues.append(Issue("principal_missing", "principal_diagnosis", True))
    secondary = _codes(doc.get("secondary_diagnoses"), source, "secondary_diagnoses")
    procedures = _codes(doc.get("procedures"), source, "procedures")
    costs_raw = doc.get("costs") or {}
    if not isinstance(costs_raw, Mapping):
        raise InputError(source, "costs", "must be an object of category: amount")
    costs: dict[str, float] = {}
    for key, value in costs_raw.items():
        number = _number(value, source, f"costs.{key}")
        if number is None:
            continue
        if key not in COST_CATEGORIES:
            issues.append(Issue("unknown_category", f"costs.{key}", False, {"value": key}))
        if number < 0:
            issues.append(Issue("negative_amount", f"costs.{key}", False, {"value": number}))
        elif number > MAX_AMOUNT:
            issues.append(Issue("impossible_amount", f"costs.{key}", False, {"value": number}))
        costs[str(key)] = number
    lines = _lines(doc.get("claim_lines"), source, "claim_lines", issues)
    outpatient = _lines(doc.get("outpatient_lines"), source, "outpatient_lines", issues)
    if not costs and lines:
        for line in lines:
            costs[line.category] = costs.get(line.category, 0.0) + line.amount
    total = _number(doc.get("total_cost"), source, "total_cost")
    if total is None:
        total = sum(costs.values())
    elif total < 0:
        issues.append(Issue("negative_amount", "total_cost", False, {"value": total}))
    orders_raw = doc.get("orders") or []
    if not isinstance(orders_raw, list):
        raise InputError(source, "orders", "must be a list")
    orders = []
    for index, row in enumerate(orders_raw):
        if not isinstance(row, Mapping):
            raise InputError(source, f"orders[{index}]", "must be an object")
        oid = _text(row, "order_id", source) or f"order-{index}"
        orders.append(
            Order(
                order_id=oid,
                name=_text(row, "name", source) or "",
                item_code=_text(row, "item_code", source) or "",
                day=_date(row.get("date"), source, f"orders[{index}].date"),
            )
        )
    labs_raw = doc.get("labs") or []
    if not isinstance(labs_raw, list):
        raise InputError(source, "labs", "must be a list")
    labs = []
    for index, row in enumerate(labs_raw):
        if not isinstance(row, Mapping):
            raise InputError(source, f"labs[{index}]", "must be an object")
        name = _text(row, "name", source)
        if name is None:
            raise InputError(source, f"labs[{index}].name", "missing")
        raw_value = row.get("value")
        lab_value = (
            None
            if isinstance(raw_value, str) and not _is_number(raw_value)
            else _number(raw_value, source, f"labs[{index}].value")
        )
        labs.append(
            Lab(
                name=name,
                value=lab_value,
                unit=_text(row, "unit", source) or "",
                day=_date(row.get("date"), source, f"labs[{index}].date"),
                text=str(raw_value) if raw_value is not None else "",
            )
        )
    notes_raw = doc.get("notes") or {}
    if not isinstance(notes_raw, Mapping) or not all(
        isinstance(v, str) for v in notes_raw.values()
    ):
        raise InputError(source, "notes", "must be an object of document type: text")
    return FrontPage(
        case_id=case_id,
        patient_id=_text(doc, "patient_id", source, limit=64),
        department=_text(doc, "department", source, limit=64),
        doctor=_text(doc, "doctor", source, limit=64),
        sex=sex,
        age_years=age_years,
        age_days=age_days,
        birth_weight_g=birth_weight,
        admit_date=admit,
        discharge_date=discharge,
        los_days=los,
        discharge_status=status,
        principal_diagnosis=principal,
        secondary_diagnoses=secondary,
        procedures=procedures,
        costs=costs,
        total_cost=total,
        claim_lines=lines,
        orders=tuple(orders),
        labs=tuple(labs),
        notes={str(k): v for k, v in notes_raw.items()},
        outpatient_lines=outpatient,
        issues=tuple(issues),
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
