"""The one result model every engine reports (DESIGN.md §2)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "critical": 2}[self.value]


class FindingStatus(StrEnum):
    """What a person decided about a finding; every change is audited."""

    OPEN = "open"
    ACCEPTED = "accepted"
    OVERRIDDEN = "overridden"
    DISMISSED = "dismissed"


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a finding was raised: the rule's source, or an exact quote from the input."""

    source: str | None = None
    document: str | None = None
    quote: str | None = None
    resource: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (
                ("source", self.source),
                ("document", self.document),
                ("quote", self.quote),
                ("resource", self.resource),
            )
            if v
        }


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    category: str
    severity: Severity
    message: str
    suggestion: str = ""
    evidence: tuple[Evidence, ...] = ()
    confidence: float = 1.0
    needs_review: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must lie in [0, 1], got {self.confidence}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule_id": self.rule_id,
            "category": self.category,
            "severity": self.severity.value,
            "message": self.message,
            "suggestion": self.suggestion,
            "evidence": [e.to_dict() for e in self.evidence],
            "confidence": round(self.confidence, 4),
            "needs_review": self.needs_review,
        }
        out.update(self.extra)
        return out


def apply_review_threshold(findings: list[Finding], threshold: float) -> list[Finding]:
    """Mark findings below the configured confidence threshold for human review."""
    return [replace(f, needs_review=f.confidence < threshold) for f in findings]


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Stable order: most severe first, then by rule id."""
    return sorted(findings, key=lambda f: (-f.severity.rank, f.rule_id))
