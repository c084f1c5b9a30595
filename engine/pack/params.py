"""Tuning a pack for one run: ``--set RULE.param=value``, ``--list NAME=FILE`` and sweeps.

Each override returns a new RulePack; the rule files are not touched. The
pack digest changes with the overrides, so alerts of a tuned run never claim
to come from the pack as written.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
from dataclasses import replace
from pathlib import Path

from ..errors import FraudRulesError, RuleErrors, SourceLocation
from ..lang.expr import parse_duration
from .checker import Checker, check_rule
from .loader import parse_list
from .model import NamedList, ParamDef, Rule, RulePack
from .source import load_yaml_file


class TuningError(FraudRulesError):
    """An override that names an unknown rule, param or list, or a value of the wrong kind."""


def _did_you_mean(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def split_assignment(text: str, what: str = "--set") -> tuple[str, str, str]:
    """``"TF-MULE-001.min_payers=6"`` -> (rule id, param, value text); rule ids may hold dots."""
    target, sep, value = text.partition("=")
    rule_id, dot, name = target.strip().rpartition(".")
    if not sep or not dot or not rule_id or not name:
        raise TuningError(f"{what} {text!r}: write RULE.param=VALUE, e.g. {what} TF-MULE-001.min_payers=6")
    return rule_id, name, value.strip()


def find_param(pack: RulePack, rule_id: str, name: str, what: str = "--set") -> tuple[Rule, ParamDef]:
    rule = next((r for r in pack.rules if r.id == rule_id), None)
    if rule is None:
        raise TuningError(f"{what}: unknown rule {rule_id!r}{_did_you_mean(rule_id, [r.id for r in pack.rules])}")
    param = rule.params.get(name)
    if param is None:
        known = ", ".join(rule.params) or "none (declare them under params: in the rule)"
        raise TuningError(f"{what}: rule {rule_id} has no param {name!r}{_did_you_mean(name, list(rule.params))}"
                          f" (its params: {known})")
    return rule, param


def parse_value(param: ParamDef, text: str, what: str = "--set") -> object:
    """``text`` as a value of the param's kind: a number stays a number, a duration needs its unit."""
    raw = text.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        raw = raw[1:-1]
    if param.kind == "number":
        try:
            value = float(raw)
        except ValueError:
            raise TuningError(f"{what} {param.name}={text}: {param.name} is a number (now {param.text})") from None
        return int(value) if value.is_integer() and "." not in raw and "e" not in raw.lower() else value
    if param.kind == "duration":
        seconds = parse_duration(raw)
        if seconds is None:
            raise TuningError(f"{what} {param.name}={text}: {param.name} is a duration such as 30s, 10m, 1h or 7d "
                              f"(now {param.text})")
        return seconds
    if param.kind == "bool":
        if raw.lower() not in ("true", "false"):
            raise TuningError(f"{what} {param.name}={text}: {param.name} is true or false (now {param.text})")
        return raw.lower() == "true"
    return raw


def _digest(pack: RulePack, what: str) -> str:
    return hashlib.sha256(f"{pack.digest}\x1f{what}".encode()).hexdigest()


def _recheck(pack: RulePack, rules: list[Rule]) -> None:
    """A new value can break a rule that type-checked before (a window beyond retention)."""
    checker = Checker(pack)
    for rule in rules:
        check_rule(rule, pack, checker)
    if checker.errors:
        raise RuleErrors(checker.errors)


def with_params(pack: RulePack, values: dict[tuple[str, str], object]) -> RulePack:
    """The pack with ``{(rule id, param): value}`` in place of the written values (already parsed)."""
    if not values:
        return pack
    changed: dict[str, Rule] = {}
    for (rule_id, name), value in values.items():
        rule, param = find_param(pack, rule_id, name)
        rule = changed.get(rule_id, rule)
        changed[rule_id] = replace(rule, params={**rule.params, name: replace(param, value=value)})
    rules = [changed.get(r.id, r) for r in pack.rules]
    shown = ";".join(f"{r}.{n}={v!r}" for (r, n), v in sorted(values.items()))
    tuned = replace(pack, rules=rules, digest=_digest(pack, shown))
    _recheck(tuned, list(changed.values()))
    return tuned


def parse_sets(pack: RulePack, assignments: list[str]) -> dict[tuple[str, str], object]:
    """``--set`` options as {(rule id, param): value}, each checked against the rule's param."""
    out: dict[tuple[str, str], object] = {}
    for text in assignments:
        rule_id, name, raw = split_assignment(text)
        _, param = find_param(pack, rule_id, name)
        out[(rule_id, name)] = parse_value(param, raw)
    return out


def parse_sweep(pack: RulePack, text: str) -> tuple[str, str, list[object]]:
    """``RULE.param=3..8`` (integers, both ends included), ``RULE.param=3..8..2`` (a step) or
    ``RULE.param=10m,30m,1h`` (a list): (rule id, param, values)."""
    rule_id, name, raw = split_assignment(text, "--sweep")
    _, param = find_param(pack, rule_id, name, "--sweep")
    if ".." in raw:
        parts = raw.split("..")
        if param.kind != "number" or len(parts) not in (2, 3):
            raise TuningError(f"--sweep {text}: a range lo..hi[..step] is for a number param; "
                              "list the values instead, e.g. 10m,30m,1h")
        try:
            lo, hi, step = float(parts[0]), float(parts[1]), float(parts[2]) if len(parts) == 3 else 1.0
        except ValueError:
            raise TuningError(f"--sweep {text}: write lo..hi or lo..hi..step with numbers") from None
        if step <= 0 or hi < lo:
            raise TuningError(f"--sweep {text}: the range must go up, by a positive step")
        count = int((hi - lo) / step + 1e-9) + 1
        if count > 200:
            raise TuningError(f"--sweep {text}: {count} values; at most 200")
        values: list[object] = [lo + i * step for i in range(count)]
        return rule_id, name, [int(v) if float(v).is_integer() else round(float(v), 10) for v in values]
    items = [v for v in raw.split(",") if v.strip()]
    if not items:
        raise TuningError(f"--sweep {text}: no values")
    return rule_id, name, [parse_value(param, v, "--sweep") for v in items]


# --- lists ---------------------------------------------------------------------


def read_list_file(path: Path, kind: str) -> NamedList:
    """A list from a file: a list YAML (as in rules/lists/), or one value per line (TXT) or first column (CSV)."""
    if not path.is_file():
        raise TuningError(f"--list: no file {path}")
    name = path.stem
    if path.suffix.lower() in (".yaml", ".yml"):
        lst, errors = parse_list(load_yaml_file(path), path)
        if errors:
            raise RuleErrors(errors)
        assert lst is not None
        return lst
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TuningError(f"--list: cannot read {path}: {exc}") from None
    if path.suffix.lower() == ".csv":
        values = [r[0].strip() for r in csv.reader(io.StringIO(text)) if r and r[0].strip()
                  and not r[0].startswith("#")]
    else:
        values = [t for s in text.splitlines() if (t := s.strip()) and not s.startswith("#")]
    return NamedList(name, kind, tuple(dict.fromkeys(values)), f"from {path}", str(path), str(path),
                     SourceLocation(str(path)))


def with_lists(pack: RulePack, lists: dict[str, NamedList | tuple[str, ...]], what: str = "--list") -> RulePack:
    """The pack with these lists in place of its own (same names; a bare tuple of values keeps the kind)."""
    if not lists:
        return pack
    new = dict(pack.lists)
    for name, lst in lists.items():
        old = pack.lists.get(name)
        if old is None:
            raise TuningError(f"{what}: unknown list {name!r}{_did_you_mean(name, sorted(pack.lists))} "
                              f"(lists: {', '.join(sorted(pack.lists)) or 'none'})")
        if isinstance(lst, NamedList):
            new[name] = replace(lst, name=name)
        else:
            new[name] = replace(old, values=tuple(dict.fromkeys(str(v) for v in lst)),
                                description=f"{what} values", source=what)
    shown = ";".join(f"{n}={sorted(new[n].values)!r}" for n in sorted(lists))
    return replace(pack, lists=new, digest=_digest(pack, shown))


def parse_list_options(pack: RulePack, options: list[str]) -> dict[str, NamedList]:
    """``--list NAME=FILE`` options as {name: list}; the list keeps its kind unless the file is a list YAML."""
    out: dict[str, NamedList] = {}
    for text in options:
        name, sep, file = text.partition("=")
        name = name.strip().lstrip("@")
        if not sep or not name or not file.strip():
            raise TuningError(f"--list {text!r}: write NAME=FILE, e.g. --list bank_hotlines=hotlines.txt")
        if name not in pack.lists:
            raise TuningError(f"--list: unknown list {name!r}{_did_you_mean(name, sorted(pack.lists))} "
                              f"(lists: {', '.join(sorted(pack.lists)) or 'none'})")
        out[name] = read_list_file(Path(file.strip()), pack.lists[name].kind)
    return out


def tune(pack: RulePack, sets: list[str] | tuple[str, ...] = (), lists: list[str] | tuple[str, ...] = ()) -> RulePack:
    """The pack as ``--set`` and ``--list`` options make it for one run."""
    pack = with_lists(pack, parse_list_options(pack, list(lists)))
    return with_params(pack, parse_sets(pack, list(sets)))
