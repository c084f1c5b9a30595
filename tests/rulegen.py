"""Random rules over the property-test streams (tests/packs/props), for tests/test_random_rules.py,
tests/test_spark.py and tests/test_serve.py; also the packs they are written to, the records they are run
on, and the same rules after an analyst's slips (:func:`mutated`).

A rule here is YAML text built from the language of docs/rules.md §3: comparisons, lists, null tests,
arithmetic, ``hour``/``weekday``/``coalesce``/conditional values, every window aggregate with and without
``where=`` (``is_new`` nested in one), another key field or another stream (``key=``, ``stream=``, a key of
two fields), bounded aggregates (``where=ts > step.ts``), an earlier step's aggregates, sequences of two to
four steps with ``follows``, repeated steps (``runs``, ``distinct``), ``unless`` and ``absent``, keys of
two fields (a rule's, a sequence's steps'), ``suppress`` and ``explain``.
The fields and their values are those of the record pools of tests/test_properties.py, so that rules
and records meet often.

Choices come from a :class:`Chooser` over ``random.Random``, seeded by hypothesis in the tests, or by
hand for a longer fuzz run::

    python -m tests.rulegen 7        # the pack of seed 7, as YAML

Rules are meant to be valid; the few that lint refuses (two comparisons that never hold together, an
``is_new`` at an earlier step) are left out by the test, which checks that the refusal has a location.
"""

from __future__ import annotations

import random
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import pandas as pd
from hypothesis import strategies as st

from fraudrules.errors import FraudRulesError
from fraudrules.pack.loader import load_pack
from fraudrules.pack.model import RulePack
from fraudrules.runtime.plan import Plan, compile_pack
from tests.test_properties import FIELDS, SLOTS, record

T = TypeVar("T")

KIND = {
    "caller": "phone", "callee": "phone", "sender": "phone", "receiver": "phone", "msisdn": "phone",
    "payer_phone": "phone", "payer_account": "text", "payee_account": "text", "device_id": "text",
    "channel": "text", "currency": "text", "direction": "enum", "event": "enum", "duration": "num",
    "amount": "num", "answered": "bool",
}
KEYS = {"call": ["caller", "callee"], "sms": ["sender", "receiver"], "sim_event": ["msisdn"],
        "payment": ["payer_account", "payee_account", "payer_phone", "device_id"]}
PAIR_KEY = "[payer_account, device_id]"  # the one key of two fields: payment's
PHONES = ["+8613800000001", "+8613800000002", "+85523900111", "95588", "+88213000123"]
WINDOWS = ["3m", "5m", "9m", "10m", "15m", "30m", "1h", "2h"]
VALUES = {name: [v for v in pool if v is not None] for fields in FIELDS.values() for name, pool in fields.items()}


class Chooser(Protocol):
    def choice(self, seq: Sequence[T]) -> T: ...
    def chance(self, p: float) -> bool: ...
    def integer(self, lo: int, hi: int) -> int: ...


class RandomChooser:
    """A chooser over ``random.Random``: hypothesis's ``st.randoms()`` in the tests (its draws then shrink),
    a seeded one by hand."""

    def __init__(self, r: random.Random):
        self._r = r

    def choice(self, seq: Sequence[T]) -> T:
        return self._r.choice(seq)

    def chance(self, p: float) -> bool:
        return self._r.random() < p

    def integer(self, lo: int, hi: int) -> int:
        return self._r.randint(lo, hi)


def fields_of(stream: str, kind: str | None = None) -> list[str]:
    return [f for f in FIELDS[stream] if kind is None or KIND[f] == kind]


class RuleGen:
    def __init__(self, c: Chooser):
        self.c = c
        self.key_kind: str | None = None  # the kind of the step's key, for key=/stream= (None: a pair)
        self.prev: list[tuple[str, str]] = []  # earlier steps: (alias, stream)

    # -- values --------------------------------------------------------------------------------
    def literal(self, field: str) -> str:
        kind = KIND[field]
        if kind == "phone":
            return f'"{self.c.choice(PHONES)}"'
        if kind in ("text", "enum"):
            return f'"{self.c.choice(VALUES[field])}"'
        if field == "duration":
            return self.c.choice(["0", "14", "15", "30s", "60", "1m", "61", "600", "10m"])
        return self.c.choice(["0.1", "0.3", "50", "99.99", "100", "150", "250", "1000", "5000", "100.005"])

    # -- conditions ----------------------------------------------------------------------------
    def condition(self, stream: str, depth: int = 0, aggregates: bool = True, cross: bool = True) -> str:
        c = self.c
        if depth >= 2 or c.chance(0.4):
            return self.atom(stream, aggregates, cross)
        op = c.choice(["and", "and", "or"])
        text = (f"({self.condition(stream, depth + 1, aggregates, cross)} {op} "
                f"{self.condition(stream, depth + 1, aggregates, cross)})")
        return f"not {text}" if c.chance(0.15) else text

    def atom(self, stream: str, aggregates: bool = True, cross: bool = True) -> str:
        c = self.c
        roll = c.integer(0, 99)
        if aggregates and roll < 40:
            return self.aggregate(stream)
        if cross and self.prev and roll < 55:
            return self.cross_step(stream)
        if roll >= 95:
            return self.function(stream)
        field = c.choice(fields_of(stream))
        kind = KIND[field]
        if kind == "bool":
            return field if c.chance(0.5) else f"not {field}"
        if c.chance(0.1):
            return f"is_null({field})"
        if kind == "num":
            op = c.choice(["==", "!=", "<", "<=", ">", ">="])
            if c.chance(0.15):
                return f"{field} % 7 {op} {c.integer(0, 6)}"
            return f"{field} {op} {self.literal(field)}"
        if kind == "phone" and c.chance(0.3):
            return f"{field} {c.choice(['in', 'not in'])} @{c.choice(['bank_hotlines', 'irsf_ranges'])}"
        if kind == "phone" and c.chance(0.2):
            return f'country({field}) {c.choice(["==", "!="])} "CN"'
        if field in ("payer_account", "payee_account") and c.chance(0.3):
            return f"{field} {c.choice(['in', 'not in'])} @mule_accounts"
        if c.chance(0.2):
            return f"{field} in [{self.literal(field)}, {self.literal(field)}]"
        return f"{field} {c.choice(['==', '!='])} {self.literal(field)}"

    def function(self, stream: str) -> str:
        c = self.c
        own = {"payment": ['coalesce(amount, 0) > 99', '(amount if channel == "web" else amount * 2) >= 200'],
               "call": ['coalesce(duration, 15) >= 15', '(duration if answered else 0) > 30']}
        return c.choice([f'hour(ts, "Asia/Shanghai") {c.choice(["<", ">=", "=="])} {c.integer(16, 20)}',
                         'weekday(ts, "Asia/Kathmandu") == 7', *own.get(stream, ["true"])])

    def cross_step(self, stream: str) -> str:
        """A condition on this record and an earlier step's."""
        c = self.c
        alias, earlier = c.choice(self.prev)
        field = c.choice(fields_of(stream))
        same = [g for g in fields_of(earlier) if KIND[g] == KIND[field] and KIND[field] != "bool"]
        if not same:
            return f"{alias}.ts <= ts"
        other = c.choice(same)
        if KIND[field] != "num":
            return f"{field} {c.choice(['==', '!='])} {alias}.{other}"
        op = c.choice(["==", "!=", "<", "<=", ">", ">="])
        if c.chance(0.5):
            return f"{field} {op} {c.choice(['0.5', '1', '2'])} * {alias}.{other}"
        return f"{field} {op} {alias}.{other}"

    # -- aggregates ----------------------------------------------------------------------------
    def aggregate_call(self, stream: str, bounded: bool = True) -> tuple[str, str, str | None]:
        """(name, call, value field) of a window aggregate of ``stream``'s records: ``count(3m, where=...)``."""
        c = self.c
        window = c.choice(WINDOWS)
        options, over = "", stream
        if self.key_kind and c.chance(0.25):  # another key field, or another stream with the key's kind
            over, key = c.choice([(s, f) for s in FIELDS for f in KEYS[s] if KIND[f] == self.key_kind])
            more = [f for f in KEYS[over] if KIND[f] == self.key_kind and f != key]
            if more and c.chance(0.2):
                key = f"[{key}, {c.choice(more)}]"
            options = (f", stream={over}" if over != stream else "") + f", key={key}"
        starts = False  # a window that starts at an earlier step (is_new cannot: it asks about the whole window)
        if c.chance(0.4):
            inner = self.condition(over, 1, aggregates=False, cross=False)
            if not options and c.chance(0.15):
                inner = f"is_new({c.choice(fields_of(over))}, {c.choice(WINDOWS)})"
            if bounded and not options and self.prev and c.chance(0.4):
                inner = f"ts {c.choice(['>', '>='])} {c.choice(self.prev)[0]}.ts" + (
                    f" and {inner}" if c.chance(0.5) else "")
                starts = True
            options += f", where={inner}"
        numbers = fields_of(over, "num")
        name = c.choice(["count", "count", "distinct", *([] if over != stream or "key=" in options else
                                                          ["since_prev"] if starts else ["is_new", "since_prev"]),
                         *(["sum", "avg", "min", "max", "median", "stddev"] if numbers else [])])
        if name in ("count", "since_prev"):
            return name, f"{name}({window}{options})", None
        if name == "distinct":
            field = c.choice([f for f in fields_of(over) if KIND[f] != "num"])
        else:
            field = c.choice(fields_of(over) if name == "is_new" else numbers)
        return name, f"{name}({field}, {window}{options})", field

    def aggregate(self, stream: str, bounded: bool = True, alias: str = "") -> str:
        """A comparison of a window aggregate of ``stream``'s records (``alias``: read at that earlier step's
        record, ``s0.count(3m) >= 2``)."""
        c = self.c
        name, call, field = self.aggregate_call(stream, bounded)
        call = f"{alias}.{call}" if alias else call
        if name == "count":
            return f"{call} {c.choice(['>=', '>', '==', '<'])} {c.integer(1, 4)}"
        if name == "distinct":
            return f"{call} {c.choice(['>=', '<'])} {c.integer(1, 3)}"
        if name == "is_new":
            return f"{'not ' if c.chance(0.3) else ''}{call}"
        if name == "since_prev":
            if c.chance(0.3):
                return f"is_null({call})"
            return f"{call} {c.choice(['>=', '<', '=='])} {c.choice(['0s', '3m', '6m', '10m'])}"
        own = [] if alias else fields_of(stream, "num")  # scaled against a number of this record
        if own and c.chance(0.3):
            return f"{c.choice(own)} {c.choice(['>=', '<'])} {c.choice(['0.5', '1', '2'])} * {call}"
        return f"{call} {c.choice(['>=', '<', '>', '=='])} {self.literal(field)}"

    def earlier_step_aggregate(self) -> str:
        """``alias.count(...) >= k``: an aggregate of an earlier step's record."""
        alias, earlier = self.c.choice(self.prev)
        saved = self.prev, self.key_kind
        self.prev, self.key_kind = [], None
        try:
            return self.aggregate(earlier, bounded=False, alias=alias)
        finally:
            self.prev, self.key_kind = saved

    def explain(self, stream: str) -> str:
        """``{field}`` or ``{aggregate(...)}`` pieces: the alert's text carries values both executors compute."""
        pieces = [self.aggregate_call(stream, bounded=False)[1] if self.c.chance(0.5) else
                  self.c.choice(fields_of(stream)) for _ in range(2)]
        return "explain: '" + " and ".join(f"{{{p}}}" for p in pieces) + "'\n"

    # -- rules ---------------------------------------------------------------------------------
    def rule(self, rule_id: str) -> str:
        c = self.c
        head = f"id: {rule_id}\ntitle: random rule {rule_id}\nseverity: medium\nscore: {c.integer(0, 50)}\n"
        body = self.single() if c.chance(0.45) else self.sequence()
        if c.chance(0.3):
            body += f"suppress: {c.choice(['3m', '10m', '30m'])}\n"
        return head + body

    def single(self) -> str:
        c = self.c
        stream = c.choice(list(FIELDS))
        key = c.choice(KEYS[stream])
        self.key_kind, self.prev = KIND[key], []
        if stream == "payment" and c.chance(0.15):
            key, self.key_kind = PAIR_KEY, None
        body = f"stream: {stream}\nkey: {key}\nwhere: >-\n  {self.condition(stream)}\n"
        return body + (self.explain(stream) if c.chance(0.3) else "")

    def sequence(self) -> str:
        c = self.c
        steps: list[str] = []
        self.prev = []
        kinds: list[str] = []  # each step's key kind ("pair": PAIR_KEY)
        pairs = c.chance(0.1)  # every step a payment keyed by the pair, joined field by field
        for j in range(c.choice([2, 2, 3, 4])):
            alias = f"s{j}"
            stream = "payment" if pairs else c.choice(list(FIELDS))
            follows = ""
            if pairs:
                key = PAIR_KEY
            elif j and c.chance(0.35):  # follow a field of the step before with the kind of this step's key
                key = c.choice(KEYS[stream])
                same = [g for g in fields_of(self.prev[-1][1]) if KIND[g] == KIND[key]]
                if same:
                    follows = f"      follows: {self.prev[-1][0]}.{c.choice(same)}\n"
            if not follows and not pairs:  # join the key of the step before: a key of the same kind
                keys = [k for k in KEYS[stream] if not j or KIND[k] == kinds[-1]]
                if not keys:
                    stream = c.choice([s for s in FIELDS if any(KIND[k] == kinds[-1] for k in KEYS[s])])
                    keys = [k for k in KEYS[stream] if KIND[k] == kinds[-1]]
                key = c.choice(keys)
            self.key_kind = None if pairs else KIND[key]  # no key= nor stream= on a pair's step
            run = ""
            if c.chance(0.15):  # a repeated step: its where reads its own record only
                run = f"      runs: {c.integer(2, 3)}\n"
                if c.chance(0.5):
                    run += f"      distinct: {c.choice([f for f in fields_of(stream) if KIND[f] != 'num'])}\n"
            earlier, self.prev = self.prev, [] if run else self.prev
            where = self.condition(stream, 1) if c.chance(0.9) else "true"
            if self.prev and c.chance(0.3):
                where = f"({where}) {c.choice(['and', 'or'])} {self.earlier_step_aggregate()}"
            self.prev = earlier
            steps.append(f"    - as: {alias}\n      stream: {stream}\n      key: {key}\n{follows}{run}"
                         f"      where: >-\n        {where}\n")
            self.prev.append((alias, stream))
            kinds.append("pair" if pairs else KIND[key])
        text = f"sequence:\n  within: {c.choice(['10m', '30m', '1h'])}\n  steps:\n" + "".join(steps)
        self.prev = []
        if c.chance(0.2) and "runs:" not in text:  # no record of the last step's key a while after it (§9: no run)
            stream, key = self.keyed_like(kinds[-1])
            return text + (f"  absent:\n    as: gone\n    stream: {stream}\n    key: {key}\n"
                           f"    within: {c.choice(['1m', '3m', '9m', '20m'])}\n"
                           f"    where: >-\n      {self.condition(stream, 1, aggregates=False)}\n")
        if c.chance(0.3):  # cancelled by a record of the key of a step before the last, after that step
            on = c.integer(0, len(steps) - 2)
            stream, key = self.keyed_like(kinds[on])
            text += (f"  unless:\n    stream: {stream}\n    key: {key}\n    on: s{on}\n"
                     f"    where: >-\n      {self.condition(stream, 1, aggregates=False)}\n")
        return text


    def keyed_like(self, kind: str) -> tuple[str, str]:
        """A stream and a key of ``kind`` (a step's), for an ``unless`` or ``absent`` joined to that step."""
        if kind == "pair":
            return "payment", PAIR_KEY
        stream = self.c.choice([s for s in FIELDS if any(KIND[k] == kind for k in KEYS[s])])
        return stream, self.c.choice([k for k in KEYS[stream] if KIND[k] == kind])


def rule_texts(c: Chooser) -> list[str]:
    """One to four rules, as the files of a pack."""
    gen = RuleGen(c)
    return [gen.rule(f"R-{i}") for i in range(c.integer(1, 4))]


# Pieces an analyst's edit may leave in a rule: names, calls, operators, numbers past any bound, keys of
# the language in the wrong place, an alias no step has.
EDITS = ["count(3m)", "sum(amount, 1h)", "s0", "s1.", "s9.ts", "and", "or", "not", "(", ")", "==", ">=", "1", "-1",
         "0", "99999999999999999999", "1e308", "3m", "0s", "400d", '"x"', "@bank_hotlines", "@nope", "null", "true",
         "is_new(caller, 1h)", "key=caller", "where=", ",", "ts", "amount", "caller", "payee_account",
         "since_prev(5m)", "distinct(callee, 1h)", "stream=sms", "runs: 2", "follows: s0.caller", "within: 0s",
         "within: 1h", "absent:", "unless:", "on: s1", "- as: s9", "key: [caller, callee]", "{", "'", "&a", "*a"]


YAML_KEY = re.compile(r"^\s*(- )?[a-z_]+:")  # a line of the rule's structure; the others are conditions
TOKEN = re.compile(r'(@?[A-Za-z_][\w.]*|"[^"]*"|\d+(?:\.\d+)?[smhd]?)')


def mutated(text: str, c: Chooser) -> str:
    """``text`` after one to three edits: a line deleted or repeated, a word of a line or a name, number or
    text inside a condition replaced by one of ``EDITS``, or a word cut short. Most results are wrong, some
    are other valid rules."""
    lines = text.split("\n")
    conditions = [i for i, line in enumerate(lines) if line.strip() and not YAML_KEY.match(line)]
    for _ in range(c.integer(1, 3)):
        edit, i = c.integer(0, 5), c.integer(0, len(lines) - 1)
        if edit == 0 and len(lines) > 2:
            del lines[i]
            conditions = [j - (j > i) for j in conditions if j != i]
        elif edit == 1:
            lines.insert(i, lines[c.integer(0, len(lines) - 1)])
            conditions = [j + (j >= i) for j in conditions]
        elif edit == 4 and conditions:
            i = c.choice(conditions)
            pieces = TOKEN.split(lines[i])  # odd places: the tokens
            if len(pieces) > 1:
                pieces[2 * c.integer(0, len(pieces) // 2 - 1) + 1] = c.choice(EDITS)
                lines[i] = "".join(pieces)
        else:
            words = re.split(r"(\s+)", lines[i])
            j = c.integer(0, len(words) - 1)
            words[j] = c.choice(EDITS) if edit < 5 else words[j][: c.integer(0, len(words[j]))]
            lines[i] = "".join(words)
    return "\n".join(lines)


# -- packs and records for the tests -----------------------------------------------------------------

PROPS = Path(__file__).parent / "packs" / "props"
LOCATED = re.compile(r"r\d\.yaml:\d+:\d+: error: ")


def rule_packs() -> st.SearchStrategy[list[str]]:
    """The rules of a seed (``python -m tests.rulegen SEED`` prints them): hypothesis's own random draws lean
    to their simplest values, which made rules too alike to find what the seeded ones find."""
    return st.integers(0, 2**32 - 1).map(lambda seed: rule_texts(RandomChooser(random.Random(seed))))


def mutated_rule_packs() -> st.SearchStrategy[list[str]]:
    """The rules of a seed, each edited by :func:`mutated` (most of them) or left as drawn."""
    def pack(seed: int) -> list[str]:
        c = RandomChooser(random.Random(seed))
        return [mutated(text, c) if c.chance(0.7) else text for text in rule_texts(c)]

    return st.integers(0, 2**32 - 1).map(pack)


@st.composite
def dense_record_lists(draw) -> list[dict]:
    """Records of tests/test_properties.py's pools, more and denser than its ``record_lists``: up to 150
    within nine minutes, so that the windows, chains and suppressions of random rules fill up."""
    size = draw(st.sampled_from([5, 20, 40, 80, 150]))
    slots = draw(st.sampled_from([3, 10, SLOTS]))
    recs = draw(st.lists(record(slots), min_size=size, max_size=size))
    return [{**r, "id": f"{r['stream'][:2]}{i}"} for i, r in enumerate(recs)]


def written_pack(texts: list[str], folder: Path) -> RulePack | None:
    """The pack of ``texts`` on the props streams and lists, or None when lint refuses a rule (with its
    location, which is checked)."""
    shutil.copy(PROPS / "streams.yaml", folder / "streams.yaml")
    shutil.copytree(PROPS / "lists", folder / "lists")
    (folder / "rules").mkdir()
    for i, text in enumerate(texts):
        (folder / "rules" / f"r{i}.yaml").write_text(text, encoding="utf-8")
    try:
        return load_pack(folder)
    except FraudRulesError as e:
        assert LOCATED.search(str(e)), str(e)
        return None


def plan_of(texts: list[str]) -> Plan | None:
    with tempfile.TemporaryDirectory() as tmp:
        pack = written_pack(texts, Path(tmp))
    return None if pack is None else compile_pack(pack, "CN")


def csv_frames(records: list[dict]) -> dict[str, pd.DataFrame]:
    """The records as each stream's CSV file would hold them, in their order."""
    def cell(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return "" if v is None else str(v)

    frames = {}
    for stream, fields in FIELDS.items():
        columns = ["id", "ts", *fields]
        rows = [[cell(r.get(c)) for c in columns] for r in records if r["stream"] == stream]
        frames[stream] = pd.DataFrame(rows, columns=columns, dtype=str)
    return frames


if __name__ == "__main__":
    print("\n---\n".join(rule_texts(RandomChooser(random.Random(int(sys.argv[1]))))))
