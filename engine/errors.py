"""Errors that carry where they come from.

Every problem found in a rule, list, mapping or stream file is a
:class:`RuleError` with a :class:`SourceLocation`, so the CLI can print
``file:line:col: message`` and never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class SourceLocation:
    """A 1-based position in a source file."""

    path: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.col}"
        return self.path


class FraudRulesError(Exception):
    """Base class of the errors the engine raises on purpose."""


class RuleError(FraudRulesError):
    """A problem in a rule-pack file, located at file:line:col."""

    def __init__(self, message: str, location: SourceLocation | None = None, *, severity: str = "error"):
        super().__init__(message)
        self.message = message
        self.location = location
        self.severity = severity

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.severity}: {self.message}"


class RuleErrors(FraudRulesError):
    """Several rule errors, reported together (lint reports all, not the first)."""

    def __init__(self, errors: list[RuleError]):
        self.errors = sorted(errors, key=lambda e: (e.location or SourceLocation(""), e.message))
        super().__init__("\n".join(str(e) for e in self.errors))


class InputError(FraudRulesError):
    """A record input that cannot be read at all (missing file, unknown stream)."""


class OutputError(FraudRulesError):
    """An output that cannot be written (a read-only folder, a folder where a file goes)."""
