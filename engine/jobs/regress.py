"""Golden-file regression: compare current alerts with an expected file.

Alerts are matched by (rule id, triggering record id). A rule change shows
up as alerts added, removed, or changed (any field but the rule-pack hash,
which changes with every edit and is reported once).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import FraudRulesError

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


def _git(cwd: Path, *args: str) -> bytes:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FraudRulesError(f"cannot run git: {exc}") from None
    if proc.returncode != 0:
        raise FraudRulesError(proc.stderr.decode("utf-8", "replace").strip() or f"git {' '.join(args)} failed")
    return proc.stdout


def pack_at(ref: str, rules_dir: Path, into: Path) -> Path:
    """The rule pack ``ref`` names: a folder as it is, or the pack folder as it was at git revision ``ref``
    (written under ``into``, file by file through ``git show``, so nothing else of the tree is touched)."""
    if Path(ref).is_dir():
        return Path(ref)
    rules_dir = rules_dir.resolve()
    if not rules_dir.is_dir():
        raise FraudRulesError(f"--against {ref}: no such folder, and the pack {rules_dir} is not in a git work tree")
    try:
        top = Path(_git(rules_dir, "rev-parse", "--show-toplevel").decode().strip())
    except FraudRulesError:
        raise FraudRulesError(f"--against {ref}: not a folder, and {rules_dir} is not in a git work tree") from None
    try:
        _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except FraudRulesError:
        raise FraudRulesError(f"--against {ref}: neither a folder nor a git revision") from None
    rel = rules_dir.relative_to(top).as_posix()
    names = [n for n in _git(top, "ls-tree", "-r", "-z", "--name-only", ref, "--", rel).decode().split("\0") if n]
    if not names:
        raise FraudRulesError(f"--against {ref}: the revision has no {rel}/")
    dest = into / "pack"
    for name in names:
        part = PurePosixPath(name).relative_to(rel) if rel != "." else PurePosixPath(name)
        if ".." in part.parts:  # git does not store such paths; refuse rather than write outside ``into``
            raise FraudRulesError(f"--against {ref}: unexpected path {name}")
        target = dest.joinpath(*part.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_git(top, "show", f"{ref}:{name}"))
    return dest
