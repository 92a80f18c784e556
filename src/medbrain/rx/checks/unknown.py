"""Unknown drugs: reported for human review, never skipped (issue 6; STYLE habit 6)."""

from __future__ import annotations

from medbrain.core.findings import Finding, Severity
from medbrain.rx.checks.context import Context, make_finding


def check_unknown(ctx: Context) -> list[Finding]:
    """A drug not in the dictionary is reported for human review, never skipped.

    References
    ----------
    Issue 6 ("an unknown drug is reported, never silently ignored"); STYLE.md habit 6.
    """
    return [
        make_finding(
            ctx,
            "rx.unknown_drug.not-in-dictionary",
            "unknown_drug",
            Severity.WARNING,
            [i],
            ctx.kb.policy.source,
            "unknown_drug",
            confidence=0.5,
        )
        for i in ctx.rx.items
        if i.drug is None
    ]
