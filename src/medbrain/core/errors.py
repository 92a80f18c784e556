"""The few exception classes MedBrain raises.

Engines raise these; adapters translate them once: the CLI into exit 2 plus one line on
stderr, the API into ``application/problem+json``.
"""

from __future__ import annotations


class MedBrainError(Exception):
    """Base of every error MedBrain raises on purpose."""


class InputError(MedBrainError):
    """Input that MedBrain refuses, naming where it is and what is wrong.

    ``source`` is the file, request body or bundle; ``field`` is the path inside it
    (``entry[3].resource.birthDate``); ``problem`` is a human sentence.
    """

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.source}: {self.field}" if self.field else self.source
        return f"{where}: {self.problem}"


class ConflictError(InputError):
    """The request is well formed but conflicts with the current state (a finding decided twice).

    A subclass of :class:`InputError`, so existing handlers still catch it; the API answers 409.
    """


class KnowledgeError(MedBrainError):
    """A knowledge file (rules, thresholds, messages) is missing or malformed."""


class BackendUnavailable(MedBrainError):
    """An optional backend (PostgreSQL driver, LLM server, Ray) is not installed or not reachable."""


class NotFoundError(MedBrainError):
    """A resource asked for by id does not exist (or is not visible to the caller)."""

    def __init__(self, resource: str) -> None:
        self.resource = resource
        super().__init__(f"{resource} not found")


class PermissionDenied(MedBrainError):
    """The caller's role does not allow this action."""
