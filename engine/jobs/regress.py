"""Golden-file regression: compare current alerts with an expected file.

Alerts are matched by (rule id, triggering record id). A rule change shows
up as alerts added, removed, or changed (any field but the rule-pack hash,
which changes with every edit and is reported once).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IGNORED = ("rule_pack",)


@dataclass
class RuleDiff:
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[tuple[dict[str, Any], dict[str, Any], list[str]]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


@dataclass
class Regression:
    rules: dict[str, RuleDiff]
    pack_changed: bool
    expected_count: int
    actual_count: int

    @property
    def clean(self) -> bool:
        return all(d.empty for d in self.rules.values())


def read_alerts(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _identity(alert: dict[str, Any]) -> tuple[str, str, str]:
    return alert["rule_id"], alert["stream"], alert["record_id"]


def compare(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> Regression:
    exp = {_identity(a): a for a in expected}
    act = {_identity(a): a for a in actual}
    rules: dict[str, RuleDiff] = {}
    for ident in sorted(set(exp) | set(act)):
        diff = rules.setdefault(ident[0], RuleDiff())
        if ident not in act:
            diff.removed.append(exp[ident])
        elif ident not in exp:
            diff.added.append(act[ident])
        else:
            fields = sorted(k for k in set(exp[ident]) | set(act[ident])
                            if k not in IGNORED and exp[ident].get(k) != act[ident].get(k))
            if fields:
                diff.changed.append((exp[ident], act[ident], fields))
    pack_changed = bool(expected and actual and expected[0].get("rule_pack") != actual[0].get("rule_pack"))
    return Regression({k: v for k, v in rules.items() if not v.empty}, pack_changed, len(expected), len(actual))


def describe(reg: Regression, limit: int = 5) -> list[str]:
    """Readable lines, grouped by rule."""
    lines: list[str] = []
    for rule_id, d in sorted(reg.rules.items()):
        lines.append(f"{rule_id}: +{len(d.added)} added, -{len(d.removed)} removed, ~{len(d.changed)} changed")
        for a in d.added[:limit]:
            lines.append(f"  + {a['stream']} {a['record_id']} {a['ts']}: {a['explain']}")
        for a in d.removed[:limit]:
            lines.append(f"  - {a['stream']} {a['record_id']} {a['ts']}: {a['explain']}")
        for old, new, fields in d.changed[:limit]:
            lines.append(f"  ~ {new['stream']} {new['record_id']}: {', '.join(fields)} changed")
            if "explain" in fields:
                lines.append(f"      was: {old['explain']}")
                lines.append(f"      now: {new['explain']}")
        shown = min(len(d.added), limit) + min(len(d.removed), limit) + min(len(d.changed), limit)
        total = len(d.added) + len(d.removed) + len(d.changed)
        if total > shown:
            lines.append(f"  ... {total - shown} more")
    return lines
