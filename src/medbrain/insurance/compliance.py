"""Compliance risk points (医保合规风险点): data rows evaluated by a few generic checks.

Each row of ``knowledge/insurance/rules.yaml`` names a ``family``; this module has one small
function per family, and the row's ``params`` say what it looks for (ICD prefixes, lab
thresholds, item names, day limits). A hospital overrides rows by id (thresholds) or disables
them (``enabled: false``) through :func:`medbrain.insurance.knowledge.load_rules`.

Every finding quotes its evidence: the front-page field, the claim lines (date, item, quantity,
amount), the lab value or the note it is about — or, for "missing support" checks, says which
evidence was looked for and not found.

References
----------
《医疗保障基金使用监督管理条例》(国务院令第735号, 2021) 第十五条、第三十八条、第四十条;
《医疗保障基金飞行检查管理暂行办法》(国家医疗保障局令第6号, 2023);
CHS-DRG 1.1 分组与付费技术规范 (高/低倍率病例, 歧义病例).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from medbrain.core.findings import Evidence, Finding, Severity
from medbrain.insurance.drg import DrgResult
from medbrain.insurance.frontpage import ClaimLine, FrontPage
from medbrain.insurance.knowledge import DrgTables

SEVERITY_WEIGHT = {Severity.INFO: 0.1, Severity.WARNING: 0.35, Severity.CRITICAL: 0.7}
MAX_QUOTES = 5


class _Safe(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    family: str
    category: str
    severity: Severity
    zh: str
    en: str
    source: str
    params: Mapping[str, Any]

    def text(self, lang: str, **values: Any) -> str:
        template = self.en if lang == "en" else self.zh
        return template.format_map(_Safe(values))


@dataclass(frozen=True, slots=True)
class Stay:
    """A previous inpatient stay of the same patient (for readmission checks)."""

    frontpage: FrontPage
    drg: DrgResult


@dataclass(frozen=True)
class ComplianceKnowledge:
    rules: tuple[Rule, ...]
    by_family: Mapping[str, tuple[Rule, ...]]
    settings: Mapping[str, Any]
    item_pattern: re.Pattern[str] | None = None
    item_rows: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    unbundling_pattern: re.Pattern[str] | None = None
    dx_rules: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    dx_prefix_lengths: tuple[int, ...] = ()
    # Memo of item name -> matched keywords: claim item names repeat across cases, and
    # scanning a long alternation for every line of every case is the checks' hot spot.
    _names: dict[str, tuple[tuple[str, ...], frozenset[str]]] = field(default_factory=dict)

    @property
    def readmission_days(self) -> int:
        return int(self.settings.get("readmission_days", 15))

    def name_keywords(self, name: str) -> tuple[tuple[str, ...], frozenset[str]]:
        """(item-rule keywords, unbundling keywords) found in a claim item's name, memoised."""
        hit = self._names.get(name)
        if hit is None:
            items = (
                tuple(dict.fromkeys(m.lower() for m in self.item_pattern.findall(name)))
                if self.item_pattern is not None
                else ()
            )
            words = (
                frozenset(self.unbundling_pattern.findall(name))
                if self.unbundling_pattern is not None
                else frozenset()
            )
            hit = (items, words)
            if len(self._names) < 100_000:
                self._names[name] = hit
        return hit


def _source(raw: Any) -> str:
    if isinstance(raw, list):
        return " ".join(str(x) for x in raw)
    return str(raw)


def compile_rules(doc: Mapping[str, Any]) -> ComplianceKnowledge:
    """Rules from a loaded (and override-merged) ``rules.yaml`` document."""
    rules = tuple(
        Rule(
            id=str(row["id"]),
            family=str(row["family"]),
            category=str(row["category"]),
            severity=Severity(row["severity"]),
            zh=str(row["zh"]),
            en=str(row["en"]),
            source=_source(row["source"]),
            params=dict(row.get("params") or {}),
        )
        for row in doc["rules"]
        if row.get("enabled", True) is not False
    )
    by_family: dict[str, list[Rule]] = defaultdict(list)
    for rule in rules:
        by_family[rule.family].append(rule)
    item_rows: dict[str, list[Rule]] = defaultdict(list)
    for rule in by_family.get("excessive_item", []) + by_family.get("restricted_item", []):
        for name in rule.params.get("names", []):
            item_rows[str(name).lower()].append(rule)
    pattern = None
    if item_rows:
        names = sorted(item_rows, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(n) for n in names), re.IGNORECASE)
    words = {
        str(w)
        for rule in by_family.get("unbundling", [])
        for key in ("bundle", "parts")
        for w in rule.params.get(key, [])
    }
    unbundling = (
        re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)))
        if words
        else None
    )
    dx_rules: dict[str, list[Rule]] = defaultdict(list)
    for rule in by_family.get("unsupported_diagnosis", []):
        for prefix in rule.params.get("codes", []):
            dx_rules[str(prefix)].append(rule)
    return ComplianceKnowledge(
        dx_rules={k: tuple(v) for k, v in dx_rules.items()},
        dx_prefix_lengths=tuple(sorted({len(k) for k in dx_rules})),
        unbundling_pattern=unbundling,
        rules=rules,
        by_family={k: tuple(v) for k, v in by_family.items()},
        settings=dict(doc.get("settings") or {}),
        item_pattern=pattern,
        item_rows={k: tuple(v) for k, v in item_rows.items()},
    )


# -- case context ---------------------------------------------------------------------------


@dataclass
class _Case:
    fp: FrontPage
    drg: DrgResult
    tables: DrgTables
    lang: str
    knowledge: ComplianceKnowledge
    _labs: dict[str, list[Any]] | None = None
    _text: str | None = None

    @property
    def labs(self) -> dict[str, list[Any]]:
        if self._labs is None:
            index: dict[str, list[Any]] = defaultdict(list)
            for lab in self.fp.labs:
                index[lab.name.lower()].append(lab)
            self._labs = index
        return self._labs

    @property
    def text(self) -> str:
        if self._text is None:
            parts = list(self.fp.notes.values()) + [o.name for o in self.fp.orders]
            self._text = "\n".join(parts)
        return self._text

    _unbundling: (
        dict[date | None, tuple[list[tuple[ClaimLine, frozenset[str]]], set[str]]] | None
    ) = None
    _unordered: list[ClaimLine] | None = None

    @property
    def unbundling_by_day(
        self,
    ) -> dict[date | None, tuple[list[tuple[ClaimLine, frozenset[str]]], set[str]]]:
        """Per day: claim lines with unbundling keywords in their names, and all those keywords.

        Only days with at least two such lines and two distinct keywords are kept.
        """
        if self._unbundling is None:
            out: dict[date | None, list[tuple[ClaimLine, frozenset[str]]]] = defaultdict(list)
            if self.knowledge.unbundling_pattern is not None:
                for line in self.fp.claim_lines:
                    words = self.knowledge.name_keywords(line.name)[1]
                    if words:
                        out[line.day].append((line, words))
            kept = {}
            for day, lines in out.items():
                if len(lines) > 1:
                    present = set().union(*(w for _, w in lines))
                    if len(present) > 1:
                        kept[day] = (lines, present)
            self._unbundling = kept
        return self._unbundling

    _by_category: dict[str, list[ClaimLine]] | None = None

    @property
    def by_category(self) -> dict[str, list[ClaimLine]]:
        if self._by_category is None:
            out: dict[str, list[ClaimLine]] = defaultdict(list)
            for line in self.fp.claim_lines:
                out[line.category].append(line)
            self._by_category = out
        return self._by_category

    @property
    def unordered(self) -> list[ClaimLine]:
        """Claim lines that match no order (by order id, item name or item code)."""
        if self._unordered is None:
            ids = {o.order_id for o in self.fp.orders}
            names = {o.name for o in self.fp.orders} | {o.item_code for o in self.fp.orders}
            self._unordered = [
                line
                for line in self.fp.claim_lines
                if line.order_id not in ids
                and line.name not in names
                and line.item_code not in names
            ]
        return self._unordered

    def dx_name(self, code: str) -> str:
        return f"{code} {self.tables.dx_names.get(code, '')}".strip()


def _finding(
    case: _Case,
    rule: Rule,
    quotes: Iterable[tuple[str, str]] = (),
    *,
    severity: Severity | None = None,
    amount: float = 0.0,
    confidence: float = 0.9,
    **values: Any,
) -> Finding:
    evidence = [Evidence(source=rule.source)]
    for document, quote in list(quotes)[:MAX_QUOTES]:
        evidence.append(Evidence(document=document, quote=quote))
    return Finding(
        rule_id=rule.id,
        category=rule.category,
        severity=severity or rule.severity,
        message=rule.text(case.lang, **values),
        evidence=tuple(evidence),
        confidence=confidence,
        extra={"family": rule.family, "amount_yuan": round(amount, 2)},
    )


def _lab_hit(case: _Case, spec: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first lab result that meets ``spec`` (names + below/above/text), quoted."""
    for name in spec.get("names", []):
        for lab in case.labs.get(str(name).lower(), ()):
            ok = False
            if "below" in spec and lab.value is not None:
                ok = lab.value < float(spec["below"])
            elif "above" in spec and lab.value is not None:
                ok = lab.value > float(spec["above"])
            elif "text" in spec:
                ok = str(spec["text"]) in lab.text
            if ok:
                when = lab.day.isoformat() if lab.day else ""
                return "labs", f"{when} {lab.name} {lab.text or lab.value} {lab.unit}".strip()
    return None


def _keyword_hit(case: _Case, keywords: Sequence[str]) -> tuple[str, str] | None:
    text = case.text
    for word in keywords:
        at = text.find(word)
        if at >= 0:
            return "notes", text[max(0, at - 12) : at + len(word) + 12].replace("\n", " ")
    return None


def _prefixed(code: str, prefixes: tuple[str, ...]) -> bool:
    return code.startswith(prefixes)


# -- families -------------------------------------------------------------------------------


def _unsupported_diagnosis(case: _Case, rule: Rule) -> list[Finding]:
    prefixes = tuple(rule.params.get("codes", []))
    out: list[Finding] = []
    for position, code in enumerate(case.fp.diagnoses):
        if not _prefixed(code, prefixes):
            continue
        labs = rule.params.get("labs", [])
        if any(_lab_hit(case, spec) for spec in labs):
            continue
        if _keyword_hit(case, rule.params.get("keywords", [])):
            continue
        decided = code == case.drg.severity_code or position == 0
        field_name = (
            "principal_diagnosis" if position == 0 else f"secondary_diagnoses[{position - 1}]"
        )
        out.append(
            _finding(
                case,
                rule,
                [("frontpage", f"{field_name}: {case.dx_name(code)}")]
                + ([("drg", f"{case.drg.drg} {case.drg.drg_name}")] if decided else []),
                severity=Severity.CRITICAL if code == case.drg.severity_code else None,
                confidence=0.75,
                dx=case.dx_name(code),
            )
        )
        break
    return out


def _readmission(case: _Case, rule: Rule, history: Sequence[Stay]) -> list[Finding]:
    fp = case.fp
    if fp.admit_date is None or not history:
        return []
    exclude = tuple(rule.params.get("exclude_prefixes", []))
    if fp.principal_diagnosis and _prefixed(fp.principal_diagnosis, exclude):
        return []
    limit = int(rule.params.get("max_days", case.knowledge.readmission_days))
    match = rule.params.get("match", "diagnosis_category")
    previous = [
        s
        for s in history
        if s.frontpage.discharge_date is not None
        and s.frontpage.case_id != fp.case_id
        and s.frontpage.discharge_date <= fp.admit_date
    ]
    if not previous:
        return []
    last = max(previous, key=lambda s: s.frontpage.discharge_date or date.min)
    prev = last.frontpage
    days = (fp.admit_date - prev.discharge_date).days  # type: ignore[operator]
    if days > limit or prev.discharge_status == "5":
        return []
    if prev.principal_diagnosis and _prefixed(prev.principal_diagnosis, exclude):
        return []
    pdx = fp.principal_diagnosis or ""
    if match == "diagnosis_category":
        if not pdx or (prev.principal_diagnosis or "")[:3] != pdx[:3]:
            return []
    elif match == "adrg" and (case.drg.adrg is None or last.drg.adrg != case.drg.adrg):
        return []
    quotes = [
        (
            "history",
            f"{prev.case_id}: {prev.admit_date}–{prev.discharge_date} "
            f"{case.dx_name(prev.principal_diagnosis or '')} {last.drg.drg}",
        ),
        (
            "frontpage",
            f"{fp.case_id}: {fp.admit_date}–{fp.discharge_date} {case.dx_name(pdx)} {case.drg.drg}",
        ),
    ]
    return [
        _finding(
            case,
            rule,
            quotes,
            amount=fp.total_cost,
            days=days,
            limit=limit,
            dx=case.dx_name(pdx),
            adrg=f"{case.drg.adrg} {case.drg.adrg_name}",
        )
    ]


def _overlapping_stay(case: _Case, rule: Rule, history: Sequence[Stay]) -> list[Finding]:
    fp = case.fp
    if fp.admit_date is None or fp.discharge_date is None:
        return []
    for stay in history:
        other = stay.frontpage
        if other.case_id == fp.case_id or other.admit_date is None or other.discharge_date is None:
            continue
        if other.admit_date < fp.discharge_date and fp.admit_date < other.discharge_date:
            quotes = [
                (
                    "history",
                    f"{other.case_id}: {other.admit_date}–{other.discharge_date} {other.total_cost:.2f}",
                ),
                (
                    "frontpage",
                    f"{fp.case_id}: {fp.admit_date}–{fp.discharge_date} {fp.total_cost:.2f}",
                ),
            ]
            return [
                _finding(
                    case,
                    rule,
                    quotes,
                    amount=fp.total_cost,
                    other=other.case_id,
                    admit=other.admit_date,
                    discharge=other.discharge_date,
                )
            ]
    return []


def _exam_share(fp: FrontPage) -> float:
    total = fp.total_cost or sum(fp.costs.values())
    if total <= 0:
        return 0.0
    return (fp.costs.get("exam", 0.0) + fp.costs.get("lab", 0.0)) / total * 100


def _low_standard(case: _Case, rule: Rule) -> list[Finding]:
    fp, p = case.fp, rule.params
    kind = p.get("kind")
    pdx = fp.principal_diagnosis or ""
    if kind == "exam_share":
        if fp.los_days is None or fp.los_days > int(p["max_los"]) or fp.procedures:
            return []
        share = _exam_share(fp)
        if share < float(p["min_share"]):
            return []
        quotes = [
            (
                "frontpage",
                f"LOS {fp.los_days}; " + ", ".join(f"{k} {v:.2f}" for k, v in fp.costs.items()),
            )
        ]
        return [
            _finding(
                case,
                rule,
                quotes,
                amount=fp.total_cost,
                los=fp.los_days,
                share=round(share),
                limit=p["min_share"],
            )
        ]
    if kind == "principal_prefix":
        if pdx and _prefixed(pdx, tuple(p["prefixes"])):
            return [
                _finding(
                    case,
                    rule,
                    [("frontpage", f"principal_diagnosis: {case.dx_name(pdx)}")],
                    amount=fp.total_cost,
                    dx=case.dx_name(pdx),
                )
            ]
        return []
    if kind == "outpatient_condition":
        if (
            pdx
            and _prefixed(pdx, tuple(p["prefixes"]))
            and not case.drg.complications
            and fp.los_days is not None
            and fp.los_days <= int(p["max_los"])
            and not fp.procedures
        ):
            quotes = [("frontpage", f"principal_diagnosis: {case.dx_name(pdx)}; LOS {fp.los_days}")]
            return [
                _finding(
                    case,
                    rule,
                    quotes,
                    amount=fp.total_cost,
                    confidence=0.6,
                    dx=case.dx_name(pdx),
                    los=fp.los_days,
                )
            ]
        return []
    if kind == "low_cost":
        total = fp.total_cost
        if (
            0 < total < float(p["max_total"])
            and not fp.costs.get("treatment")
            and not fp.costs.get("surgery")
        ):
            return [
                _finding(
                    case,
                    rule,
                    [("frontpage", f"total_cost {total:.2f}")],
                    amount=total,
                    total=f"{total:.2f}",
                    limit=p["max_total"],
                )
            ]
    return []


def _outpatient_shift(case: _Case, rule: Rule) -> list[Finding]:
    fp, p = case.fp, rule.params
    if fp.admit_date is None or fp.discharge_date is None or not fp.outpatient_lines:
        return []
    window = p.get("window")
    days = int(p.get("days", 0))
    categories = set(p.get("categories", [])) or None
    minimum = float(p.get("min_amount", 0))
    hits: list[ClaimLine] = []
    for line in fp.outpatient_lines:
        if (
            line.day is None
            or (categories and line.category not in categories)
            or line.amount < minimum
        ):
            continue
        if window == "during":
            ok = fp.admit_date < line.day < fp.discharge_date
        elif window == "before":
            ok = 0 < (fp.admit_date - line.day).days <= days
        else:
            ok = 0 < (line.day - fp.discharge_date).days <= days
        if ok:
            hits.append(line)
    if not hits:
        return []
    return [
        _finding(
            case,
            rule,
            [("outpatient", line.quote()) for line in hits],
            amount=sum(line.amount for line in hits),
            days=days,
            admit=fp.admit_date,
            discharge=fp.discharge_date,
            item=hits[0].name,
        )
    ]


def _dx_procedure(case: _Case, rule: Rule) -> list[Finding]:
    fp, p, drg = case.fp, rule.params, case.drg
    kind = p.get("kind")
    if kind == "ambiguous":
        procs = fp.procedures
        if not procs or drg.status == "ungroupable":
            return []
        main = case.tables.proc_alias.get(procs[0], procs[0])
        if main not in case.tables.valid_procedures:
            return []
        if drg.status == "ambiguous" or (drg.adrg is not None and drg.adrg[1] >= "R"):
            name = case.tables.proc_names.get(main, "")
            quotes = [
                ("frontpage", f"principal_diagnosis: {case.dx_name(fp.principal_diagnosis or '')}"),
                ("frontpage", f"procedures[0]: {main} {name}"),
                ("drg", f"{drg.drg} {drg.drg_name}"),
            ]
            return [
                _finding(
                    case,
                    rule,
                    quotes,
                    amount=fp.total_cost,
                    proc=f"{main} {name}",
                    mdc=f"{drg.mdc} {drg.mdc_name}",
                )
            ]
        return []
    if kind == "sex":
        if fp.sex is None:
            return []
        banned = tuple(p["male_only"] if fp.sex == "female" else p["female_only"])
        for code in fp.diagnoses:
            if _prefixed(code, banned):
                return [
                    _finding(
                        case,
                        rule,
                        [("frontpage", f"sex: {fp.sex}; {case.dx_name(code)}")],
                        dx=case.dx_name(code),
                        sex=fp.sex,
                    )
                ]
        return []
    if kind == "age":
        if fp.age_years is None:
            return []
        prefixes = tuple(p["prefixes"])
        for code in fp.diagnoses:
            if _prefixed(code, prefixes) and not int(p["min_age"]) <= fp.age_years <= int(
                p["max_age"]
            ):
                return [
                    _finding(
                        case,
                        rule,
                        [("frontpage", f"age_years: {fp.age_years}; {case.dx_name(code)}")],
                        dx=case.dx_name(code),
                        age=fp.age_years,
                    )
                ]
        return []
    if kind == "surgery_charge":
        amount = fp.costs.get("surgery", 0.0)
        if amount >= float(p["min_amount"]) and not fp.procedures:
            return [
                _finding(
                    case,
                    rule,
                    [("frontpage", f"costs.surgery: {amount:.2f}; procedures: -")],
                    amount=amount,
                    cost=f"{amount:.2f}",
                )
            ]
    return []


def _by_day(lines: Iterable[ClaimLine]) -> dict[date | None, list[ClaimLine]]:
    out: dict[date | None, list[ClaimLine]] = defaultdict(list)
    for line in lines:
        out[line.day].append(line)
    return out


def _duplicate_line(case: _Case, rule: Rule) -> list[Finding]:
    allowed = set(rule.params.get("categories", ["exam", "surgery"]))
    seen: dict[tuple[Any, ...], list[ClaimLine]] = defaultdict(list)
    for line in case.fp.claim_lines:
        if line.category in allowed:
            seen[(line.item_code, line.day, line.quantity, line.amount)].append(line)
    dupes = [group for group in seen.values() if len(group) > 1]
    if not dupes:
        return []
    first = dupes[0]
    quotes = [("claim", line.quote()) for group in dupes for line in group]
    amount = sum(sum(line.amount for line in group[1:]) for group in dupes)
    return [_finding(case, rule, quotes, amount=amount, item=first[0].name, count=len(first))]


def _daily_item(case: _Case, rule: Rule) -> list[Finding]:
    fp, p = case.fp, rule.params
    if fp.los_days is None:
        return []
    names = tuple(p.get("names", []))
    lines = [
        line
        for category in p.get("categories", [])
        for line in case.by_category.get(category, ())
        if not names or any(n in line.name for n in names)
    ]
    quantity = sum(line.quantity for line in lines)
    limit = fp.los_days + int(p.get("slack_days", 1))
    if quantity <= limit:
        return []
    unit = lines[0].unit_price if lines else 0.0
    return [
        _finding(
            case,
            rule,
            [("claim", line.quote()) for line in lines],
            amount=(quantity - limit) * unit,
            quantity=f"{quantity:g}",
            los=fp.los_days,
        )
    ]


def _not_in_orders(case: _Case, rule: Rule) -> list[Finding]:
    if not case.fp.orders:
        return []  # no order list supplied: nothing to compare against (the UI says so)
    categories = set(rule.params.get("categories", []))
    hits = [line for line in case.unordered if line.category in categories]
    if not hits:
        return []
    return [
        _finding(
            case,
            rule,
            [("claim", line.quote()) for line in hits],
            amount=sum(x.amount for x in hits),
            item=hits[0].name,
        )
    ]


def _outside_stay(case: _Case, rule: Rule, *, death: bool) -> list[Finding]:
    fp = case.fp
    if fp.admit_date is None or fp.discharge_date is None:
        return []
    if death != (fp.discharge_status == "5"):
        return []
    categories = set(rule.params.get("categories", [])) or None
    hits = []
    for line in fp.claim_lines:
        if line.day is None or (categories and line.category not in categories):
            continue
        if death:
            if line.day > fp.discharge_date:
                hits.append(line)
        elif line.day < fp.admit_date or line.day > fp.discharge_date:
            hits.append(line)
    if not hits:
        return []
    return [
        _finding(
            case,
            rule,
            [("claim", line.quote()) for line in hits],
            amount=sum(x.amount for x in hits),
            item=hits[0].name,
            day=hits[0].day,
            admit=fp.admit_date,
            discharge=fp.discharge_date,
        )
    ]


def _cost_outlier(case: _Case, rule: Rule) -> list[Finding]:
    fp, p, drg = case.fp, rule.params, case.drg
    kind = p.get("kind")
    settings = case.knowledge.settings
    total = fp.total_cost
    if kind in ("high", "low"):
        if drg.status != "grouped" or drg.weight <= 0 or total <= 0:
            return []
        expected = drg.weight * float(settings.get("base_rate_yuan", 0))
        if expected <= 0:
            return []
        ratio = total / expected
        limit = float(settings.get("high_multiple" if kind == "high" else "low_multiple", 0))
        if (kind == "high" and ratio >= limit) or (kind == "low" and ratio < limit):
            quotes = [
                ("frontpage", f"total_cost {total:.2f}"),
                ("drg", f"{drg.drg} weight {drg.weight:g}"),
            ]
            return [
                _finding(
                    case,
                    rule,
                    quotes,
                    amount=total if kind == "low" else total - expected,
                    total=f"{total:.2f}",
                    drg=drg.drg,
                    expected=f"{expected:.0f}",
                    ratio=f"{ratio:.2f}",
                    limit=limit,
                )
            ]
        return []
    if kind == "long_stay":
        if fp.los_days is not None and fp.los_days > int(p["max_los"]):
            return [
                _finding(case, rule, [("frontpage", f"los_days {fp.los_days}")], los=fp.los_days)
            ]
        return []
    if kind == "severity_short_stay":
        if (
            drg.severity == "MCC"
            and fp.los_days is not None
            and fp.los_days <= int(p["max_los"])
            and fp.discharge_status not in ("2", "5")
        ):
            quotes = [
                (
                    "frontpage",
                    f"{case.dx_name(drg.severity_code or '')}; LOS {fp.los_days}; 离院方式 {fp.discharge_status}",
                )
            ]
            return [
                _finding(
                    case,
                    rule,
                    quotes,
                    amount=total,
                    confidence=0.6,
                    level=drg.severity,
                    drg=drg.drg,
                    los=fp.los_days,
                )
            ]
        return []
    if total <= 0:
        return []
    if kind == "consumable_share":
        if drg.adrg is None or drg.adrg[1] < "R":  # surgical and procedure ADRGs use devices
            return []
        share = fp.costs.get("consumable", 0.0) / total * 100
    elif kind == "drug_share":
        share = fp.costs.get("drug", 0.0) / total * 100
    else:
        return []
    if share >= float(p["min_share"]):
        return [
            _finding(
                case,
                rule,
                [("frontpage", f"costs: {dict(fp.costs)}")],
                confidence=0.5,
                share=round(share),
                limit=p["min_share"],
            )
        ]
    return []


def _match_items(case: _Case) -> dict[str, list[ClaimLine]]:
    """Claim lines matched to excessive/restricted rows by name (one regex pass per line)."""
    pattern = case.knowledge.item_pattern
    hits: dict[str, list[ClaimLine]] = defaultdict(list)
    if pattern is None:
        return hits
    for line in case.fp.claim_lines:
        rules_seen: set[str] = set()
        for word in case.knowledge.name_keywords(line.name)[0]:
            for rule in case.knowledge.item_rows.get(word, ()):
                if rule.id not in rules_seen:
                    rules_seen.add(rule.id)
                    hits[rule.id].append(line)
    return hits


def _excessive_item(case: _Case, rule: Rule, lines: list[ClaimLine]) -> list[Finding]:
    p = case.fp
    params = rule.params
    if "max_per_day" in params:
        limit = float(params["max_per_day"])
        per_day: dict[date | None, float] = defaultdict(float)
        for line in lines:
            per_day[line.day] += line.quantity
        day, count = max(per_day.items(), key=lambda kv: kv[1])
        if count <= limit:
            return []
        chosen = [line for line in lines if line.day == day]
        scope = (
            (f"{day} 单日" if case.lang != "en" else f"on {day}")
            if day
            else ("单日" if case.lang != "en" else "in one day")
        )
    else:
        limit = float(params.get("max_per_stay", 0))
        count = sum(line.quantity for line in lines)
        if count <= limit:
            return []
        chosen = lines
        scope = "本次住院" if case.lang != "en" else "in this stay"
    unit = chosen[0].unit_price if chosen else 0.0
    del p
    return [
        _finding(
            case,
            rule,
            [("claim", line.quote()) for line in chosen],
            amount=(count - limit) * unit,
            confidence=0.7,
            item=chosen[0].name,
            scope=scope,
            count=f"{count:g}",
            limit=f"{limit:g}",
        )
    ]


def _restricted_item(case: _Case, rule: Rule, lines: list[ClaimLine]) -> list[Finding]:
    if any(_lab_hit(case, spec) for spec in rule.params.get("labs", [])):
        return []
    diagnoses = tuple(rule.params.get("diagnoses", []))
    if diagnoses and any(_prefixed(code, diagnoses) for code in case.fp.diagnoses):
        return []
    if not rule.params.get("labs") and not diagnoses:
        return []
    return [
        _finding(
            case,
            rule,
            [("claim", line.quote()) for line in lines],
            amount=sum(x.amount for x in lines),
        )
    ]


def _unbundling(case: _Case, rule: Rule) -> list[Finding]:
    bundle = set(rule.params.get("bundle", []))
    parts = set(rule.params.get("parts", []))
    for lines, present in case.unbundling_by_day.values():
        if not (present & bundle and present & parts):
            continue
        whole = [line for line, words in lines if words & bundle]
        if not whole:
            continue
        pieces = [line for line, words in lines if words & parts and not words & bundle]
        if pieces:
            quotes = [("claim", line.quote()) for line in whole[:1] + pieces]
            return [
                _finding(
                    case,
                    rule,
                    quotes,
                    amount=sum(x.amount for x in pieces),
                    bundle=whole[0].name,
                    part=pieces[0].name,
                )
            ]
    return []


def _frontpage_issue(case: _Case, rule: Rule) -> list[Finding]:
    codes = set(rule.params.get("issues", []))
    blocking_only = bool(rule.params.get("blocking_only"))
    hits = [
        issue
        for issue in case.drg.issues
        if issue.code in codes and (issue.blocking if blocking_only else True)
    ]
    if blocking_only and case.drg.status != "ungroupable":
        return []
    if not blocking_only:
        hits = [i for i in hits if not (i.blocking and i.code in ("procedure_unknown",))] or hits
    if not hits:
        return []
    reason = "；".join(issue.message(case.lang) for issue in hits)
    quotes = [("frontpage", f"{issue.path}: {issue.message(case.lang)}") for issue in hits]
    return [_finding(case, rule, quotes, confidence=1.0, reason=reason)]


def _total_mismatch(case: _Case, rule: Rule) -> list[Finding]:
    fp = case.fp
    if not fp.costs:
        return []
    parts = sum(fp.costs.values())
    if abs(parts - fp.total_cost) > float(rule.params.get("tolerance_yuan", 1.0)):
        return [
            _finding(
                case,
                rule,
                [("frontpage", f"total_cost {fp.total_cost:.2f}; costs {parts:.2f}")],
                confidence=1.0,
                total=f"{fp.total_cost:.2f}",
                sum=f"{parts:.2f}",
            )
        ]
    return []


def _lines_mismatch(case: _Case, rule: Rule) -> list[Finding]:
    fp = case.fp
    if not fp.claim_lines or fp.total_cost <= 0:
        return []
    lines = sum(line.amount for line in fp.claim_lines)
    if abs(lines - fp.total_cost) / fp.total_cost > float(rule.params.get("tolerance_share", 0.02)):
        return [
            _finding(
                case,
                rule,
                [("frontpage", f"total_cost {fp.total_cost:.2f}; lines {lines:.2f}")],
                amount=max(0.0, lines - fp.total_cost),
                confidence=1.0,
                lines=f"{lines:.2f}",
                total=f"{fp.total_cost:.2f}",
            )
        ]
    return []


_SIMPLE = {
    "unsupported_diagnosis": _unsupported_diagnosis,
    "low_standard": _low_standard,
    "outpatient_shift": _outpatient_shift,
    "dx_procedure": _dx_procedure,
    "duplicate_line": _duplicate_line,
    "daily_item": _daily_item,
    "not_in_orders": _not_in_orders,
    "cost_outlier": _cost_outlier,
    "unbundling": _unbundling,
    "frontpage_issue": _frontpage_issue,
    "total_mismatch": _total_mismatch,
    "lines_mismatch": _lines_mismatch,
}
FAMILIES = frozenset(
    {
        *_SIMPLE,
        "readmission",
        "overlapping_stay",
        "outside_stay",
        "after_death",
        "excessive_item",
        "restricted_item",
    }
)


def _dx_candidates(fp: FrontPage, knowledge: ComplianceKnowledge) -> list[Rule]:
    """The unsupported-diagnosis rows whose ICD prefixes occur in the case (index lookup)."""
    seen: dict[str, Rule] = {}
    for code in fp.diagnoses:
        for length in knowledge.dx_prefix_lengths:
            for rule in knowledge.dx_rules.get(code[:length], ()):
                seen.setdefault(rule.id, rule)
    return list(seen.values())


def check_case(
    fp: FrontPage,
    drg: DrgResult,
    knowledge: ComplianceKnowledge,
    tables: DrgTables,
    *,
    history: Sequence[Stay] = (),
    lang: str = "zh",
) -> list[Finding]:
    """All compliance findings for one discharge, sorted by severity then rule id.

    ``history``: the same patient's other stays (any order); used by the split-admission rows.
    """
    case = _Case(fp=fp, drg=drg, tables=tables, lang=lang, knowledge=knowledge)
    findings: list[Finding] = []
    by_family = knowledge.by_family
    for family, check in _SIMPLE.items():
        if family == "unsupported_diagnosis":
            for rule in _dx_candidates(fp, knowledge):
                findings.extend(check(case, rule))
            continue
        if family == "unbundling" and not case.unbundling_by_day:
            continue
        if family == "not_in_orders" and (not fp.orders or not case.unordered):
            continue
        if family == "frontpage_issue" and not drg.issues:
            continue
        if family == "outpatient_shift" and not fp.outpatient_lines:
            continue
        for rule in by_family.get(family, ()):
            findings.extend(check(case, rule))
    others = [s for s in history if s.frontpage.case_id != fp.case_id]
    for rule in by_family.get("readmission", ()) if others else ():
        findings.extend(_readmission(case, rule, others))
    for rule in by_family.get("overlapping_stay", ()) if others else ():
        findings.extend(_overlapping_stay(case, rule, others))
    for rule in by_family.get("outside_stay", ()):
        findings.extend(_outside_stay(case, rule, death=False))
    for rule in by_family.get("after_death", ()):
        findings.extend(_outside_stay(case, rule, death=True))
    if fp.claim_lines and knowledge.item_pattern is not None:
        matched = _match_items(case)
        for rule in by_family.get("excessive_item", ()):
            if rule.id in matched:
                findings.extend(_excessive_item(case, rule, matched[rule.id]))
        for rule in by_family.get("restricted_item", ()):
            if rule.id in matched:
                findings.extend(_restricted_item(case, rule, matched[rule.id]))
    findings.sort(key=lambda f: (-f.severity.rank, f.rule_id))
    return findings


def risk_score(findings: Iterable[Finding]) -> float:
    """1 − Π(1 − w·confidence) over the findings: 0 for a clean case, towards 1 with more."""
    keep = 1.0
    for finding in findings:
        keep *= 1.0 - SEVERITY_WEIGHT[finding.severity] * finding.confidence
    return round(1.0 - keep, 4)
