"""Read a rule pack directory into the rule model.

Layout of a pack (docs/design.md §2)::

    rules/
      streams.yaml      stream schemas
      policy.yaml       score thresholds -> decision
      macros.yaml       named predicates (optional)
      lists/NAME.yaml   named lists, used as @NAME
      **/*.yaml         one rule per file

Parsing here is syntactic: keys, value shapes and expression syntax, each
error located at file:line:col. Type checking lives in :mod:`engine.checker`.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

from ..columns.phones import DEFAULT_REGION
from ..errors import RuleError, RuleErrors, SourceLocation
from ..lang.expr import PARAMS_ALIAS, ExprSyntaxError, parse_duration, parse_expr
from ..lang.formats import MAX_FORMAT_PRECISION, MAX_FORMAT_WIDTH, format_spec_problem
from .checker import check_pack
from .model import (
    KEY_SEP,
    MAX_KEY_PARTS,
    MAX_RETENTION,
    MAX_RUNS,
    MAX_STEPS,
    MIN_KEY_PARTS,
    SEVERITIES,
    STATUSES,
    Absent,
    ExprSource,
    Macro,
    NamedList,
    ParamDef,
    Policy,
    Rule,
    RulePack,
    RuleTest,
    Step,
    Template,
    TemplatePart,
    Unless,
)
from .source import Node, load_yaml_file
from .streams import load_schema

PACK_FILES = ("streams.yaml", "policy.yaml", "macros.yaml")
MAX_LIST_VALUES = 5_000_000
MAX_RULE_TESTS = 200
MAX_TEST_RECORDS = 1000
ID_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")

RULE_KEYS = {
    "id", "title", "description", "severity", "score", "status", "version", "tags", "references",
    "author", "date", "modified", "falsepositives", "stream", "key", "where", "sequence", "suppress",
    "explain", "tests", "params",
    "runs", "distinct",  # accepted only to say that a single-stream rule counts instead (_parse_step)
}
SEQUENCE_KEYS = {"within", "steps", "unless", "absent"}
STEP_KEYS = {"as", "stream", "key", "where", "follows", "runs", "distinct"}
UNLESS_KEYS = {"stream", "key", "where", "on"}
ABSENT_KEYS = {"as", "stream", "key", "where", "follows", "within"}
TEST_KEYS = {"name", "records", "expect", "lists"}
LIST_KEYS = {"kind", "description", "source", "values", "file"}




class _Errors:
    """Collects errors so that a file reports all its problems at once."""

    def __init__(self) -> None:
        self.items: list[RuleError] = []

    def add(self, message: str, loc: SourceLocation | None) -> None:
        self.items.append(RuleError(message, loc))


# --- small value readers ----------------------------------------------------


def _key_loc(node: Node, key: str) -> SourceLocation:
    return node.key_locs.get(key, node.loc)


def _value_locs(node: Node, *keys: str) -> dict[str, SourceLocation]:
    """Where each of ``keys`` has its value in the mapping ``node`` (those it has)."""
    return {k: v.loc for k in keys if isinstance(v := node.get(k), Node)}


def _str(node: Node | None, what: str, errors: _Errors, required: bool = False) -> str:
    if node is None:
        if required:
            errors.add(f"missing required key {what!r}", None)
        return ""
    if not isinstance(node.value, (str, int, float)) or isinstance(node.value, bool):
        errors.add(f"{what} must be a string", node.loc)
        return ""
    return str(node.value)


def _key(node: Node | None, errors: _Errors) -> str:
    """``key: field`` or ``key: [f1, f2, ...]`` (2 to 4 different fields), as one name (model.KEY_SEP).
    Whether the fields exist and hold text is the checker's business."""
    if node is None or not isinstance(node.value, list):
        return _str(node, "key", errors)
    names: list[str] = []
    for item in node.value:
        v = item.value
        if not isinstance(v, str) or not v.isidentifier():
            errors.add("key: each entry of a key of several fields is a field name", item.loc)
            return ""
        if v in names:
            errors.add(f"key: field {v!r} is listed twice", item.loc)
            return ""
        names.append(v)
    if not MIN_KEY_PARTS <= len(names) <= MAX_KEY_PARTS:
        errors.add(f"key: a key of several fields lists {MIN_KEY_PARTS} to {MAX_KEY_PARTS} fields (got {len(names)}); "
                   "one field is written without brackets, key: payer_account", node.loc)
        return ""
    return KEY_SEP.join(names)


def _duration(node: Node | None, what: str, errors: _Errors) -> float | None:
    if node is None:
        return None
    value = node.value
    seconds = parse_duration(value.strip()) if isinstance(value, str) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    if seconds is None or seconds < 0:
        errors.add(f"{what}: {value!r} is not a duration (write e.g. 30s, 10m, 1h, 7d)", node.loc)
        return None
    if seconds > MAX_RETENTION:
        errors.add(f"{what}: {value} is beyond the retention limit of {int(MAX_RETENTION // 86400)}d", node.loc)
        return None
    return seconds


def _str_list(node: Node | None, what: str, errors: _Errors) -> tuple[str, ...]:
    if node is None:
        return ()
    if not isinstance(node.value, list):
        errors.add(f"{what} must be a list", node.loc)
        return ()
    out = []
    for item in node.value:
        if isinstance(item.value, (dict, list)) or item.value is None:
            errors.add(f"{what} entries must be strings", item.loc)
        else:
            out.append(str(item.value))
    return tuple(out)


def _unknown_keys(node: Node, allowed: set[str], what: str, errors: _Errors) -> None:
    for key in node.value:
        if key not in allowed:
            errors.add(f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})", _key_loc(node, key))


def parse_expression(node: Node | None, what: str, errors: _Errors) -> ExprSource | None:
    if node is None:
        return None
    if not isinstance(node.value, str):
        errors.add(f"{what} must be an expression string", node.loc)
        return None
    try:
        ast = parse_expr(node.value)
    except ExprSyntaxError as exc:
        errors.add(f"{what}: {exc.message}", node.offset_location(exc.offset))
        return None
    return ExprSource(node.value, ast, node)


def parse_template(node: Node | None, errors: _Errors) -> Template | None:
    """Split ``"{pay.amount:,.2f} to {pay.payee_account}"`` into parts."""
    if node is None:
        return None
    if not isinstance(node.value, str):
        errors.add("explain must be a string", node.loc)
        return None
    text: str = node.value
    parts: list[TemplatePart] = []
    i, literal = 0, []
    while i < len(text):
        ch = text[i]
        if ch in "{}" and text[i : i + 2] in ("{{", "}}"):
            literal.append(ch)
            i += 2
            continue
        if ch == "}":
            errors.add("explain: single '}' (write '}}' for a literal brace)", node.offset_location(i))
            return None
        if ch != "{":
            literal.append(ch)
            i += 1
            continue
        end, depth, quote = i + 1, 0, ""
        colon = -1
        while end < len(text):
            c = text[end]
            if quote:
                quote = "" if c == quote else quote
            elif c in "\"'":
                quote = c
            elif c in "([":
                depth += 1
            elif c in ")]":
                depth -= 1
            elif c == ":" and depth == 0 and colon < 0:
                colon = end
            elif c == "}" and depth == 0:
                break
            end += 1
        if end >= len(text):
            errors.add("explain: '{' without a closing '}'", node.offset_location(i))
            return None
        if literal:
            parts.append(TemplatePart(text="".join(literal)))
            literal = []
        expr_end = colon if colon >= 0 else end
        body = text[i + 1 : expr_end]
        spec = text[colon + 1 : end] if colon >= 0 else ""
        problem = format_spec_problem(spec) if spec else None
        if problem:  # checked before anything formats with it: ".999999999f" would build gigabytes
            errors.add(f"explain: {problem} (width at most {MAX_FORMAT_WIDTH}, precision at most "
                       f"{MAX_FORMAT_PRECISION})", node.offset_location(colon + 1))
            spec = ""
        lead = len(body) - len(body.lstrip())
        try:
            ast = parse_expr(body)
        except ExprSyntaxError as exc:
            errors.add(f"explain: {exc.message}", node.offset_location(i + 1 + min(exc.offset, len(body))))
            i = end + 1
            continue
        sub = Node(body, node.offset_location(i + 1 + lead), raw=body)
        parts.append(TemplatePart(expr=ExprSource(body, ast, sub), spec=spec, offset=i + 1))
        i = end + 1
    if literal:
        parts.append(TemplatePart(text="".join(literal)))
    return Template(text, tuple(parts), node)


# --- rules -----------------------------------------------------------------


def _parse_step(node: Node, index: int, errors: _Errors, single: bool = False, what: str = "") -> Step | None:
    if not isinstance(node.value, dict):
        errors.add("a step must be a mapping with as, stream, key and where", node.loc)
        return None
    if not single and not what:
        _unknown_keys(node, STEP_KEYS, "step", errors)
    stream = _str(node.get("stream"), "stream", errors)
    key = _key(node.get("key"), errors)
    if not stream:
        errors.add("missing 'stream'", node.loc)
    if not key:
        errors.add("missing 'key' (the field that identifies the subscriber or account)", node.loc)
    alias = stream if single else _str(node.get("as"), "as", errors)
    if not single and not alias:
        errors.add(f"{what or f'step {index + 1}'} needs an alias: 'as: NAME'", node.loc)
    if alias and (not alias.isidentifier() or alias.startswith("_")):
        errors.add(f"alias {alias!r} must be an identifier", _key_loc(node, "as"))
    elif alias == PARAMS_ALIAS and not single:
        errors.add(f"alias {alias!r} is reserved: params.NAME reads the rule's params", _key_loc(node, "as"))
    where = parse_expression(node.get("where"), "where", errors)
    follows = None
    fnode = node.get("follows")
    if fnode is not None:
        text = _str(fnode, "follows", errors)
        if text.count(".") != 1 or not all(p.isidentifier() for p in text.split(".")):
            errors.add("follows must be 'alias.field' of an earlier step", fnode.loc)
        else:
            a, f = text.split(".")
            follows = (a, f)
    runs, distinct, distinct_loc = _parse_runs(node, single, errors)
    return Step(alias, stream, key, where, follows, node.loc, runs, distinct, distinct_loc,
                _value_locs(node, "stream", "key", "follows"))


def _parse_runs(node: Node, single: bool, errors: _Errors) -> tuple[int, str | None, SourceLocation | None]:
    """``runs: n`` (1..MAX_RUNS) and ``distinct: field`` of a repeated step."""
    rnode, dnode = node.get("runs"), node.get("distinct")
    if single:
        for knode, key in ((rnode, "runs"), (dnode, "distinct")):
            if knode is not None:
                errors.add(f"'{key}' repeats a step of a sequence; a single-stream rule says 'at least n records' "
                           "with count(w) >= n, or n different values with distinct(field, w) >= n",
                           _key_loc(node, key))
        return 1, None, None
    runs = 1
    if rnode is not None:
        v = rnode.value
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MAX_RUNS:
            errors.add(f"runs must be an integer in 1..{MAX_RUNS}", rnode.loc)
        else:
            runs = v
    distinct = None
    if dnode is not None:
        distinct = _str(dnode, "distinct", errors) or None
        if rnode is None:
            errors.add("distinct needs runs: it says how many different values the run's records have "
                       "(runs: 5, distinct: caller)", dnode.loc)
    return runs, distinct, None if dnode is None else dnode.loc


def _parse_absent(node: Node, errors: _Errors) -> Absent | None:
    """``absent:`` parsed like a step, plus its own ``within`` (required, > 0)."""
    if not isinstance(node.value, dict):
        errors.add("absent must be a mapping with as, stream, key, within and where", node.loc)
        return None
    _unknown_keys(node, ABSENT_KEYS, "absent", errors)
    step = _parse_step(node, 0, errors, what="absent")
    within = _duration(node.get("within"), "within", errors)
    if node.get("within") is None:
        errors.add("absent needs 'within': how long after the last step the record must not come (e.g. 30m)",
                   node.loc)
    elif within is not None and within <= 0:
        errors.add("absent: within must be longer than 0", node.get("within").loc)
        within = None
    if step is None or within is None:
        return None
    return Absent(step.alias, step.stream, step.key, step.where, within, step.follows, node.loc, step.value_locs)


def _parse_tests(node: Node | None, errors: _Errors) -> tuple[RuleTest, ...]:
    if node is None:
        return ()
    if not isinstance(node.value, list):
        errors.add("tests must be a list", node.loc)
        return ()
    if len(node.value) > MAX_RULE_TESTS:
        errors.add(f"more than {MAX_RULE_TESTS} tests", node.loc)
        return ()
    tests = []
    for i, tnode in enumerate(node.value):
        if not isinstance(tnode.value, dict):
            errors.add("a test must be a mapping with name, records and expect", tnode.loc)
            continue
        _unknown_keys(tnode, TEST_KEYS, "test", errors)
        name = _str(tnode.get("name"), "name", errors) or f"test {i + 1}"
        rnode = tnode.get("records")
        records = []
        if rnode is None or not isinstance(rnode.value, list):
            errors.add(f"test {name!r}: 'records' must be a list", tnode.loc)
        elif len(rnode.value) > MAX_TEST_RECORDS:
            errors.add(f"test {name!r}: more than {MAX_TEST_RECORDS} records", rnode.loc)
        else:
            for rec in rnode.value:
                if not isinstance(rec.value, dict) or "stream" not in rec.value:
                    errors.add(f"test {name!r}: each record is a mapping with a 'stream'", rec.loc)
                    continue
                records.append({**rec.plain(), "_line": rec.loc.line})
        expect = _str_list(tnode.get("expect"), "expect", errors)
        enode = tnode.get("expect")
        if enode is None:
            errors.add(f"test {name!r}: missing 'expect' (the ids of the records that alert; [] for none)", tnode.loc)
        elif isinstance(enode.value, list) and rnode is not None and isinstance(rnode.value, list):
            # an expected id no record has can never be matched: the case would fail for the wrong reason,
            # or, next to a typo in the records, pass for one
            ids = [str(r["id"]) for r in records if r.get("id") is not None]
            for item in enode.value:
                if not isinstance(item.value, (dict, list)) and item.value is not None and str(item.value) not in ids:
                    errors.add(f"test {name!r}: expect names {str(item.value)!r}, but no record of the case has "
                               f"that id{_close(str(item.value), ids)}", item.loc)
        tests.append(RuleTest(name, tuple(records), expect, tnode.loc, tnode, _test_lists(tnode.get("lists"),
                                                                                           name, errors)))
    return tuple(tests)


def _close(word: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (ids: {', '.join(known) or 'none'})"


def _test_lists(node: Node | None, name: str, errors: _Errors) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``lists: {bank_hotlines: ["95588"]}`` in a case: the list holds exactly these values for the case."""
    if node is None:
        return ()
    if not isinstance(node.value, dict):
        errors.add(f"test {name!r}: 'lists' maps a list name to its values, e.g. lists: {{bank_hotlines: [95588]}}",
                   node.loc)
        return ()
    return tuple((key, _str_list(value, f"test {name!r}: list {key}", errors)) for key, value in node.value.items())


def _parse_params(node: Node | None, errors: _Errors) -> dict[str, ParamDef]:
    """``params: {min_payers: 6, window: 1h}``: numbers, durations, text or true/false, used as $name."""
    if node is None:
        return {}
    if not isinstance(node.value, dict):
        errors.add("params must be a mapping of names to values, e.g. params: {min_payers: 6}", node.loc)
        return {}
    out: dict[str, ParamDef] = {}
    for key, vnode in node.value.items():
        loc = _key_loc(node, key)
        if not key.isidentifier() or key.startswith("_"):
            errors.add(f"param name {key!r} must be an identifier", loc)
            continue
        param = param_value(key, vnode.value, vnode.loc)
        if param is None:
            errors.add(f"param {key}: a value is a number, a duration (10m), text or true/false", vnode.loc)
        else:
            out[key] = param
    return out


def param_value(name: str, value: object, loc: SourceLocation) -> ParamDef | None:
    """A param from a YAML scalar: a duration is text that parses as one (10m), so "10m" is never text."""
    if isinstance(value, bool):
        return ParamDef(name, value, "bool", loc)
    if isinstance(value, (int, float)):
        return ParamDef(name, value, "number", loc)
    if isinstance(value, str):
        seconds = parse_duration(value.strip())
        if seconds is not None:
            return ParamDef(name, seconds, "duration", loc)
        return ParamDef(name, value, "string", loc)
    return None


def parse_rule(node: Node, path: str) -> tuple[Rule | None, list[RuleError]]:
    errors = _Errors()
    if not isinstance(node.value, dict):
        return None, [RuleError("a rule file must be a mapping", node.loc)]
    _unknown_keys(node, RULE_KEYS, "rule", errors)
    rule_id = _str(node.get("id"), "id", errors)
    if not rule_id:
        errors.add("missing required key 'id'", node.loc)
    elif not set(rule_id) <= ID_CHARS or len(rule_id) > 64:
        errors.add("id may only use letters, digits, '-', '_' and '.' (64 at most)", node.get("id").loc)
    title = _str(node.get("title"), "title", errors)
    if not title:
        errors.add("missing required key 'title'", node.loc)
    severity = _str(node.get("severity"), "severity", errors) or "medium"
    if severity not in SEVERITIES:
        errors.add(f"severity must be one of {', '.join(SEVERITIES)}", node.get("severity").loc)
    status = _str(node.get("status"), "status", errors) or "stable"
    if status not in STATUSES:
        errors.add(f"status must be one of {', '.join(STATUSES)}", node.get("status").loc)
    score, version = 0, 1
    for key, lo, hi in (("score", 0, 100), ("version", 1, 1_000_000)):
        knode = node.get(key)
        if knode is None:
            if key == "score":
                errors.add("missing required key 'score' (0..100)", node.loc)
            continue
        if not isinstance(knode.value, int) or isinstance(knode.value, bool) or not lo <= knode.value <= hi:
            errors.add(f"{key} must be an integer in {lo}..{hi}", knode.loc)
        elif key == "score":
            score = knode.value
        else:
            version = knode.value
    seq_node = node.get("sequence")
    steps: list[Step] = []
    within = None
    unless = None
    absent = None
    if seq_node is not None:
        for key in ("stream", "key", "where"):
            if node.get(key) is not None:
                errors.add(f"'{key}' belongs inside the sequence steps, not at the top of a sequence rule",
                           _key_loc(node, key))
        if not isinstance(seq_node.value, dict):
            errors.add("sequence must be a mapping with within and steps", seq_node.loc)
        else:
            _unknown_keys(seq_node, SEQUENCE_KEYS, "sequence", errors)
            anode = seq_node.get("absent")
            snode = seq_node.get("steps")
            n_steps = len(snode.value) if snode is not None and isinstance(snode.value, list) else 0
            within = _duration(seq_node.get("within"), "within", errors)
            if anode is not None and n_steps == 1:  # one positive step: nothing for within to bound
                if seq_node.get("within") is not None:
                    errors.add("within bounds the positive steps, and this sequence has one: remove it "
                               "(the absence has its own within)", _key_loc(seq_node, "within"))
                    within = None
            elif seq_node.get("within") is None:
                errors.add("a sequence needs 'within' (e.g. within: 1h)", seq_node.loc)
            lo = 1 if anode is not None else 2
            if snode is None or not isinstance(snode.value, list) or not lo <= n_steps <= MAX_STEPS:
                errors.add(f"a sequence has 2 to {MAX_STEPS} steps (1 to {MAX_STEPS} before an absent step)",
                           (snode or seq_node).loc)
            else:
                for i, step_node in enumerate(snode.value):
                    step = _parse_step(step_node, i, errors)
                    if step:
                        steps.append(step)
            unode = seq_node.get("unless")
            if unode is not None:
                if not isinstance(unode.value, dict):
                    errors.add("unless must be a mapping with stream, key and where", unode.loc)
                else:
                    _unknown_keys(unode, UNLESS_KEYS, "unless", errors)
                    ustream = _str(unode.get("stream"), "stream", errors)
                    ukey = _key(unode.get("key"), errors)
                    if not ustream or not ukey:
                        errors.add("unless needs 'stream' and 'key'", unode.loc)
                    on = _str(unode.get("on"), "on", errors) or (steps[0].alias if steps else "")
                    unless = Unless(ustream, ukey, parse_expression(unode.get("where"), "where", errors), on, unode.loc,
                                    _value_locs(unode, "stream", "key", "on"))
            if anode is not None:
                absent = _parse_absent(anode, errors)
    else:
        step = _parse_step(node, 0, errors, single=True)
        if step:
            steps.append(step)
    suppress = _duration(node.get("suppress"), "suppress", errors) or 0.0
    rule = Rule(
        id=rule_id,
        title=title,
        severity=severity,
        score=score,
        status=status,
        version=version,
        steps=tuple(steps),
        path=path,
        loc=node.loc,
        description=_str(node.get("description"), "description", errors),
        tags=_str_list(node.get("tags"), "tags", errors),
        references=_str_list(node.get("references"), "references", errors),
        author=_str(node.get("author"), "author", errors),
        within=within,
        unless=unless,
        absent=absent,
        suppress=suppress,
        explain=parse_template(node.get("explain"), errors),
        tests=_parse_tests(node.get("tests"), errors),
        params=_parse_params(node.get("params"), errors),
        is_sequence=seq_node is not None,
        node=node,
    )
    return rule, errors.items


# --- lists, macros, policy ---------------------------------------------------


def parse_list(node: Node, path: Path) -> tuple[NamedList | None, list[RuleError]]:
    errors = _Errors()
    name = path.stem
    if not isinstance(node.value, dict):
        return None, [RuleError("a list file must be a mapping", node.loc)]
    _unknown_keys(node, LIST_KEYS, "list", errors)
    kind = _str(node.get("kind"), "kind", errors) or "exact"
    if kind not in ("exact", "prefix"):
        errors.add("kind must be 'exact' or 'prefix'", node.get("kind").loc)
    values: list[str] = list(_str_list(node.get("values"), "values", errors))
    fnode = node.get("file")
    if fnode is not None:
        rel = _str(fnode, "file", errors)
        target = (path.parent / rel).resolve()
        pack_root = path.parent.parent.resolve()  # lists/NAME.yaml
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            errors.add("file must be a path inside the lists folder", fnode.loc)
        elif not target.is_relative_to(pack_root):  # a symlink out of the pack: not what was reviewed
            errors.add(f"list file {rel!r} leads outside the rule pack (a symlink to {target})", fnode.loc)
        elif target.exists() and not target.is_file():  # a FIFO or a device would block or never end
            errors.add(f"list file {rel!r} is not a regular file", fnode.loc)
        elif not target.is_file():
            errors.add(f"list file {rel!r} not found", fnode.loc)
        elif target.stat().st_size > 200_000_000:
            errors.add(f"list file {rel!r} is larger than 200 MB", fnode.loc)
        else:
            try:
                text = target.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                errors.add(f"list file {rel!r} is not valid UTF-8", fnode.loc)
                text = ""
            if target.suffix.lower() == ".csv":
                rows = csv.reader(io.StringIO(text))
                values.extend(r[0].strip() for r in rows if r and r[0].strip() and not r[0].startswith("#"))
            else:
                values.extend(s.strip() for s in text.splitlines() if s.strip() and not s.startswith("#"))
    if node.get("values") is None and fnode is None:
        errors.add("a list needs 'values' or 'file'", node.loc)
    if len(values) > MAX_LIST_VALUES:
        errors.add(f"more than {MAX_LIST_VALUES} values", node.loc)
    desc = _str(node.get("description"), "description", errors)
    source = _str(node.get("source"), "source", errors)
    lst = NamedList(name, kind, tuple(dict.fromkeys(values)), desc, source, str(path), node.loc)
    return lst, errors.items


def parse_macros(node: Node) -> tuple[dict[str, Macro], list[RuleError]]:
    """``macros: {name: {params: [x], expr: "...", description: ...}}``."""
    errors = _Errors()
    macros: dict[str, Macro] = {}
    mnode = node.get("macros")
    if mnode is None or not isinstance(mnode.value, dict):
        return {}, [RuleError("expected a top-level 'macros:' mapping", node.loc)]
    for name, body in mnode.value.items():
        loc = _key_loc(mnode, name)
        if not name.isidentifier() or name.startswith("_"):
            errors.add(f"macro name {name!r} must be an identifier", loc)
            continue
        if isinstance(body.value, str):
            expr_node, params, desc = body, (), ""
        elif isinstance(body.value, dict):
            _unknown_keys(body, {"params", "expr", "description"}, "macro", errors)
            expr_node = body.get("expr")
            params = _str_list(body.get("params"), "params", errors)
            desc = _str(body.get("description"), "description", errors)
        else:
            errors.add("a macro is an expression string or {params, expr, description}", body.loc)
            continue
        expr = parse_expression(expr_node, f"macro {name}", errors)
        if expr is not None:
            macros[name] = Macro(name, params, expr, desc, loc)
    return macros, errors.items


def parse_policy(node: Node) -> tuple[Policy, list[RuleError]]:
    """``decisions: [{name: block, min_score: 70}, ...]``, highest first."""
    errors = _Errors()
    dnode = node.get("decisions")
    if dnode is None or not isinstance(dnode.value, list) or not dnode.value:
        return Policy(), [RuleError("policy needs a non-empty 'decisions' list", node.loc)]
    decisions = []
    for item in dnode.value:
        name = _str(item.get("name"), "name", errors)
        thr = item.get("min_score")
        if not name or thr is None or not isinstance(thr.value, int) or isinstance(thr.value, bool):
            errors.add("each decision needs a name and an integer min_score", item.loc)
            continue
        # two decisions at one threshold: which one a record gets would depend on the sort
        same = [d for d in decisions if d[0] == name or d[1] == thr.value]
        if same:
            what = f"name {name!r}" if same[0][0] == name else f"min_score {thr.value}"
            errors.add(f"decision {name!r}: {what} is already used by decision {same[0][0]!r}", item.loc)
            continue
        decisions.append((name, int(thr.value)))
    decisions.sort(key=lambda d: -d[1])
    if decisions and decisions[-1][1] > 0:
        errors.add("the lowest decision must have min_score: 0 so every record gets one", dnode.loc)
    return Policy(decisions or Policy().decisions), errors.items


# --- the pack ------------------------------------------------------------------


def rule_files(root: Path) -> list[Path]:
    """Rule files under ``root``: every YAML file but the pack's own files and lists."""
    out = []
    for p in sorted(root.rglob("*")):
        if p.suffix not in (".yaml", ".yml") or not p.is_file():
            continue
        rel = p.relative_to(root)
        if rel.parts[0] == "lists" or (len(rel.parts) == 1 and rel.name in PACK_FILES):
            continue
        out.append(p)
    return out


def pack_digest(root: Path) -> str:
    """sha256 over the relative path and bytes of every file of the pack."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(root).parts):
            h.update(str(p.relative_to(root).as_posix()).encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


_TESTS = frozenset({"tests"})  # a rule file's key that load_pack(tests=False) leaves unread


def _optional_file(path: Path, parse, default, errors: list[RuleError]):
    """Parse an optional pack file, collecting its errors; ``default`` when absent."""
    if not path.exists():
        return default
    try:
        value, errs = parse(load_yaml_file(path))
    except RuleError as exc:
        errors.append(exc)
        return default
    errors.extend(errs)
    return value


def load_pack(root: Path | str, *, only: list[Path] | None = None, check: bool = True,
              tests: bool = True, region: str = DEFAULT_REGION) -> RulePack:
    """Load a rule pack; raises RuleErrors listing every problem found.

    ``only`` restricts the rules to the given files (the pack's streams,
    lists, macros and policy are still loaded from ``root``). ``tests=False``:
    the rules' inline ``tests:`` are parsed as YAML only, not read or checked,
    and every rule has none (``score``, ``watch``, ``serve``: they evaluate
    rules and never run their tests, which are most of a pack's YAML and
    about a third of its load; ``lint`` and ``test`` read them). ``region``: the run's
    ``--region``, in which the rules' phone literals are checked.
    """
    root = Path(root)
    errors: list[RuleError] = []
    if not root.is_dir():
        # the commands' --rules defaults to ./rules: say what a pack is and how to name another
        raise RuleErrors([RuleError("rule pack folder not found (a pack is a folder with streams.yaml and the "
                                    "rule files; the commands take it with --rules)", SourceLocation(str(root)))])
    streams_path = root / "streams.yaml"
    if not streams_path.exists():
        raise RuleErrors([RuleError("rule pack has no streams.yaml", SourceLocation(str(root)))])
    try:
        schema = load_schema(streams_path)
    except RuleError as exc:
        raise RuleErrors([exc]) from None

    lists: dict[str, NamedList] = {}
    for p in sorted((root / "lists").glob("*.y*ml")) if (root / "lists").is_dir() else []:
        try:
            lst, errs = parse_list(load_yaml_file(p), p)
        except RuleError as exc:
            errors.append(exc)
            continue
        errors.extend(errs)
        if lst:
            lists[lst.name] = lst

    macros: dict[str, Macro] = _optional_file(root / "macros.yaml", parse_macros, {}, errors)
    policy: Policy = _optional_file(root / "policy.yaml", parse_policy, Policy(), errors)

    rules: list[Rule] = []
    seen: dict[str, Rule] = {}
    for p in only if only is not None else rule_files(root):
        try:
            node = load_yaml_file(p, skip=frozenset() if tests else _TESTS)
        except RuleError as exc:
            errors.append(exc)
            continue
        rule, errs = parse_rule(node, str(p))
        errors.extend(errs)
        if rule is None or not rule.steps or not all(s.stream and s.key and s.alias for s in rule.steps):
            continue
        if rule.id in seen:
            errors.append(RuleError(f"duplicate rule id {rule.id!r} (also in {seen[rule.id].path})", rule.loc))
            continue
        seen[rule.id] = rule
        rules.append(rule)

    pack = RulePack(root, schema, rules, lists, macros, policy, pack_digest(root), partial=only is not None,
                    region=region)
    if check:
        errors.extend(check_pack(pack))
    if errors:
        raise RuleErrors(errors)
    return pack
