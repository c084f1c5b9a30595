"""``fraudrules lint``: load errors plus small pluggable checks.

Each validator is a function ``(pack) -> list[RuleError]`` registered in
:data:`VALIDATORS`, in the spirit of pySigma's rule validators: one concern
each, easy to add, easy to test alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from ..columns.phones import DEFAULT_REGION
from ..columns.types import LogicalType
from ..errors import RuleError, RuleErrors
from ..lang.expr import Binary, Call, Literal, Param
from .checker import Checker, check_rule
from .loader import load_pack
from .model import RulePack

Validator = Callable[[RulePack], list[RuleError]]
VALIDATORS: dict[str, Validator] = {}


def validator(name: str) -> Callable[[Validator], Validator]:
    def register(fn: Validator) -> Validator:
        VALIDATORS[name] = fn
        return fn

    return register


@validator("schema")
def json_schema(pack: RulePack) -> list[RuleError]:
    """Each rule file against rules/schema.json, the schema editors use."""
    import json

    import jsonschema
    schema_path = Path(__file__).resolve().parents[2] / "rules" / "schema.json"  # a source checkout
    local = pack.root / "schema.json"
    path = local if local.exists() else schema_path
    if not path.exists():
        return []
    validator_cls = jsonschema.Draft202012Validator
    check = validator_cls(json.loads(path.read_text(encoding="utf-8")))
    out = []
    for rule in pack.rules:
        if rule.node is None:
            continue
        for error in sorted(check.iter_errors(rule.node.plain()), key=lambda e: list(e.absolute_path)):
            node = rule.node
            for part in error.absolute_path:  # walk to the offending value for its location
                child = node.value[part] if isinstance(node.value, (dict, list)) else None
                if child is None:
                    break
                node = child
            where = "/".join(str(p) for p in error.absolute_path) or "rule"
            out.append(RuleError(f"schema: {where}: {error.message}", node.loc))
    return out


@validator("tests-present")
def tests_present(pack: RulePack) -> list[RuleError]:
    """A stable rule needs a case that alerts and a case that does not."""
    out = []
    for rule in pack.rules:
        if rule.status != "stable":
            continue
        if not any(t.expect for t in rule.tests):
            out.append(RuleError("stable rule has no positive test (a case with expect: [ids])", rule.loc))
        if not any(not t.expect for t in rule.tests):
            out.append(RuleError("stable rule has no negative test (a case with expect: [])", rule.loc))
    return out


@validator("unused")
def unused_lists_and_macros(pack: RulePack) -> list[RuleError]:
    """A list or macro no rule reads; not judged when only some rule files are linted (the others may read it)."""
    if pack.partial:
        return []
    checker = Checker(pack)
    for rule in pack.rules:
        check_rule(rule, pack, checker)
    out = []
    for name, lst in sorted(pack.lists.items()):
        if name not in checker.used_lists:
            out.append(RuleError(f"list @{name} is not used by any rule", lst.loc, severity="warning"))
    for name, macro in sorted(pack.macros.items()):
        if name not in checker.used_macros:
            out.append(RuleError(f"macro {name}() is not used by any rule", macro.loc, severity="warning"))
    return out


@validator("traps")
def traps(pack: RulePack) -> list[RuleError]:
    """What compiles but is probably not what was meant: a bare number compared with a duration,
    a param no expression reads."""
    checker = Checker(pack)
    for rule in pack.rules:
        check_rule(rule, pack, checker)
    out = list(checker.warnings)
    for rule in pack.rules:
        for name, param in rule.params.items():
            if (str(param.loc.path), name) not in checker.used_params:
                out.append(RuleError(f"param {name} is not used (read it as ${name})", param.loc, severity="warning"))
    return out


@validator("empty-lists")
def empty_lists(pack: RulePack) -> list[RuleError]:
    """``x in @list`` over an empty list never holds: a rule that reads it can never fire on that condition."""
    return [RuleError(f"list @{name} is empty: 'x in @{name}' never holds and 'x not in @{name}' always does",
                      lst.loc, severity="warning")
            for name, lst in sorted(pack.lists.items()) if not lst.values]


@validator("trivial-threshold")
def trivial_thresholds(pack: RulePack) -> list[RuleError]:
    """``count(1h) >= 1`` always holds: the record itself is in its window."""
    out = []
    for rule in pack.rules:
        for step in rule.steps:
            if step.where is None:
                continue
            for node in step.where.ast.walk():
                if not (isinstance(node, Binary) and isinstance(node.left, Call)
                        and isinstance(node.right, (Literal, Param))):
                    continue
                if node.left.name != "count" or node.left.kwarg("where") is not None:
                    continue
                param = rule.params.get(node.right.name) if isinstance(node.right, Param) else None
                value = param.value if param is not None else getattr(node.right, "value", None)
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    continue
                if (node.op == ">=" and value <= 1) or (node.op == ">" and value < 1):
                    out.append(RuleError(f"trivial threshold: {step.where.snippet(node)} holds for every record",
                                         step.where.location(node), severity="warning"))
    return out


@validator("number-literals")
def number_literals(pack: RulePack) -> list[RuleError]:
    """A literal float64 cannot hold: ``1e400`` is infinity, and integers beyond 2**53 lose digits."""
    sources = [m.body for m in pack.macros.values()]
    for rule in pack.rules:
        sources += [s.where for s in rule.steps if s.where is not None]
        if rule.unless is not None and rule.unless.where is not None:
            sources.append(rule.unless.where)
        if rule.explain is not None:
            sources += [part.expr for part in rule.explain.parts if part.expr is not None]
    out = []
    for src in sources:
        for node in src.ast.walk():
            if not isinstance(node, Literal) or node.kind not in ("number", "duration"):
                continue
            value = node.value
            if isinstance(value, float) and math.isinf(value):
                out.append(RuleError(f"number {src.snippet(node)} overflows to infinity", src.location(node),
                                     severity="warning"))
            elif isinstance(value, int) and abs(value) > 2**53:
                out.append(RuleError(f"number {src.snippet(node)} is beyond 2**53: it is compared as the nearest "
                                     f"float64, {float(value):.17g}", src.location(node), severity="warning"))
    return out


def _kind(field: str) -> str:
    """What a text field names, by its last word: payer_account and payee_account are accounts,
    device_id an id, id_document a document."""
    return field.rsplit("_", 1)[-1]


@validator("join-meaning")
def join_meaning(pack: RulePack) -> list[RuleError]:
    """A sequence that joins two text fields of different kinds (an account to a device id) compiles,
    since both are strings, and probably never matches. Phone fields are checked as types."""
    out = []
    for rule in pack.rules:
        aliases = {s.alias: s for s in rule.steps}
        pairs = []
        for prev, step in zip(rule.steps, rule.steps[1:]):
            src_alias, src_field = step.follows if step.follows else (prev.alias, prev.key)
            if src_alias in aliases:
                pairs.append((step, step.key, aliases[src_alias], src_field, step.loc))
        if rule.unless is not None and rule.unless.on in aliases:
            on = aliases[rule.unless.on]
            pairs.append((rule.unless, rule.unless.key, on, on.key, rule.unless.loc))
        for mine, field, theirs, their_field, loc in pairs:
            a = pack.schema.streams.get(mine.stream, None)
            b = pack.schema.streams.get(theirs.stream, None)
            if a is None or b is None or field not in a.fields or their_field not in b.fields:
                continue  # the checker reports unknown streams and fields
            if a.fields[field].type != LogicalType.STRING or b.fields[their_field].type != LogicalType.STRING:
                continue
            if _kind(field) != _kind(their_field):
                who = f"step {mine.alias!r}" if hasattr(mine, "alias") else "unless"
                out.append(RuleError(
                    f"{who}: {field} joins {theirs.alias}.{their_field}, text fields of different kinds "
                    f"({_kind(field)}, {_kind(their_field)}): unless they hold the same values the rule never "
                    f"matches", loc, severity="warning"))
    return out


@validator("same-logic")
def same_logic(pack: RulePack) -> list[RuleError]:
    """Two rules whose steps, windows and conditions are identical."""
    seen: dict[tuple, str] = {}
    out = []
    for rule in sorted(pack.rules, key=lambda r: r.id):
        shape = (
            tuple((s.stream, s.key, s.follows, s.where.ast if s.where else None) for s in rule.steps),
            rule.within,
            tuple(sorted((p.name, p.kind, p.value) for p in rule.params.values())),
            (rule.unless.stream, rule.unless.key, rule.unless.where.ast if rule.unless.where else None)
            if rule.unless else None,
        )
        if shape in seen:
            out.append(RuleError(f"same logic as rule {seen[shape]}", rule.loc, severity="warning"))
        else:
            seen[shape] = rule.id
    return out


def lint_pack(root: Path, paths: list[Path] | None = None) -> list[RuleError]:
    """Every problem of the pack (or of the given rule files), sorted by location."""
    return lint_and_load(root, paths)[0]


def lint_and_load(root: Path, paths: list[Path] | None = None,
                  region: str = DEFAULT_REGION) -> tuple[list[RuleError], RulePack | None]:
    """:func:`lint_pack`, and the pack it loaded (None when it did not load), for a caller that goes on with
    it: ``fraudrules lint`` describes the whole pack's history horizon without loading it a second time.
    ``region``: the runs' --region, in which phone literals are checked."""
    only = None
    if paths:
        from .loader import rule_files

        files: list[Path] = []
        for p in paths:
            files.extend(rule_files(p) if p.is_dir() and not (p / "streams.yaml").exists() else
                         (rule_files(p) if p.is_dir() else [p]))
        only = files
    try:
        pack = load_pack(root, only=only, region=region)
    except RuleErrors as exc:
        return exc.errors, None
    findings: list[RuleError] = []
    for fn in VALIDATORS.values():
        findings.extend(fn(pack))
    return sorted(findings, key=lambda e: (e.location.path if e.location else "", e.location.line if e.location
                                           else 0, e.location.col if e.location else 0, e.message)), pack
