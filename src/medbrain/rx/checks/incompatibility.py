"""IV incompatibility checks: drug pairs, required vehicles, infuse-alone drugs.

References
----------
Rocephin FDA label §5.2 (ceftriaxone–calcium); NMPA 注射剂说明书【用法用量】(溶媒).
"""

from __future__ import annotations

from medbrain.core.findings import Finding
from medbrain.rx.checks.context import Context, make_finding
from medbrain.rx.model import Item


def check_incompatibility(ctx: Context) -> list[Finding]:
    """IV incompatibilities: drug pairs, required vehicles, drugs to be infused alone.

    Items sharing a ``group`` (组号) are mixed; without groups only rows with a
    ``no_group_severity`` fire (possible contact in the same line).

    References
    ----------
    Rocephin label §5.2 (ceftriaxone–calcium); NMPA 注射剂说明书【用法用量】(溶媒).
    """
    kb = ctx.kb
    iv = [i for i in ctx.known if i.route == "iv"]
    out = []
    for x in range(len(iv)):
        for y in range(x + 1, len(iv)):
            a, b = iv[x], iv[y]
            assert a.drug is not None and b.drug is not None
            same_group = a.group is not None and a.group == b.group
            unknown_group = a.group is None or b.group is None
            for pair in kb.incompat_pairs:
                if not (
                    (pair.a & a.drug.tags and pair.b & b.drug.tags)
                    or (pair.a & b.drug.tags and pair.b & a.drug.tags)
                ):
                    continue
                severity = (
                    pair.severity
                    if same_group
                    else (pair.no_group_severity if unknown_group else None)
                )
                if severity is None:
                    continue
                lang = "en" if ctx.lang == "en" else "zh"
                out.append(
                    make_finding(
                        ctx,
                        f"rx.incompatibility.{pair.id}",
                        "incompatibility",
                        severity,
                        [a, b],
                        pair.source,
                        "incompatibility",
                        effect=pair.effect[lang],
                        management=pair.management[lang],
                    )
                )
    groups: dict[str, list[Item]] = {}
    for item in iv:
        if item.group is not None:
            groups.setdefault(item.group, []).append(item)
    for members in groups.values():
        for item in members:
            assert item.drug is not None
            others = [o for o in members if o is not item]
            for rule in kb.incompat_vehicles:
                if not rule.matches(item.drug.tags):
                    continue
                allowed: frozenset[str] = rule.params["allowed"]
                for other in others:
                    assert other.drug is not None
                    if "iv_vehicle" in other.drug.classes and not allowed & other.drug.tags:
                        out.append(
                            make_finding(
                                ctx,
                                f"rx.incompatibility.{rule.id}",
                                "incompatibility",
                                rule.severity,
                                [item, other],
                                rule.source,
                                "incompatibility_vehicle",
                            )
                        )
            for rule in kb.incompat_alone:
                if not rule.matches(item.drug.tags):
                    continue
                for other in others:
                    assert other.drug is not None
                    if "iv_vehicle" in other.drug.classes:
                        continue
                    ordered = sorted((item, other), key=lambda i: i.index)
                    out.append(
                        make_finding(
                            ctx,
                            f"rx.incompatibility.{rule.id}",
                            "incompatibility",
                            rule.severity,
                            ordered,
                            rule.source,
                            "incompatibility_alone",
                        )
                    )
    return _dedupe(out)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, tuple[int, ...]]] = set()
    out = []
    for f in findings:
        key = (f.rule_id, tuple(sorted(f.extra.get("items", []))))
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
