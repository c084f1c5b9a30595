"""The rule model: small dataclasses, each carrying its source location.

A single-stream rule is a one-step sequence internally, so every executor
handles one shape; ``Rule.is_sequence`` tells the two apart for humans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..columns.phones import DEFAULT_REGION
from ..errors import SourceLocation
from ..lang.expr import Expr, Literal, unparse
from .source import Node
from .streams import Schema

MAX_RETENTION = 400 * 86400.0  # longest window or suppression a rule may ask for
MAX_STEPS = 8  # steps of a sequence
MAX_RUNS = 100  # records of a repeated step (runs: n): a run's evidence lists each of them
MAX_MACRO_DEPTH = 8  # macros inside macros: the checker refuses deeper, the plan expands no deeper

# A key of several fields (``key: [payer_account, device_id]``) is held as one name, the parts joined by
# KEY_SEP: no field name can hold it (field names are identifiers), so it never meets a real field. Each
# executor derives a text column of that name from the parts (runtime/keys.py; docs/design.md §5, "Keys").
KEY_SEP = "|"
MIN_KEY_PARTS, MAX_KEY_PARTS = 2, 4


def key_parts(key: str) -> tuple[str, ...]:
    """The fields a key is made of: one for an ordinary key."""
    return tuple(key.split(KEY_SEP))


def is_composite(key: str) -> bool:
    return KEY_SEP in key


SEVERITIES = ("info", "low", "medium", "high", "critical")
STATUSES = ("stable", "experimental", "deprecated")
SHADOW_STATUSES = frozenset({"experimental"})


@dataclass(frozen=True)
class ExprSource:
    """An expression with its text and the YAML node it came from."""

    text: str
    ast: Expr
    node: Node

    def location(self, expr: Expr | None = None) -> SourceLocation:
        return self.node.offset_location(expr.start if expr is not None else 0)

    def snippet(self, expr: Expr) -> str:
        return " ".join(self.text[expr.start : expr.end].split())


class _ValuesLocated:
    """A step, unless or absent: it keeps where its stream, key, follows and on values are written
    (``value_locs``), so that an error about one points at it, not at the step."""

    loc: SourceLocation
    value_locs: dict[str, SourceLocation]

    def at(self, name: str) -> SourceLocation:
        """Where the value of ``name`` is written; the step's own place if it has none."""
        return self.value_locs.get(name, self.loc)


@dataclass(frozen=True)
class Step(_ValuesLocated):
    alias: str
    stream: str
    key: str
    where: ExprSource | None
    follows: tuple[str, str] | None = None  # (earlier alias, its field)
    loc: SourceLocation = SourceLocation("")
    runs: int = 1  # a repeated step: at least this many records pass it (docs/design.md §5)
    distinct: str | None = None  # with runs: the run's records have different non-null values of it
    distinct_loc: SourceLocation | None = None
    value_locs: dict[str, SourceLocation] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_run(self) -> bool:
        return self.runs > 1 or self.distinct is not None


@dataclass(frozen=True)
class Unless(_ValuesLocated):
    stream: str
    key: str
    where: ExprSource | None
    on: str  # alias whose key the unless record must share
    loc: SourceLocation = SourceLocation("")
    value_locs: dict[str, SourceLocation] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Absent(_ValuesLocated):
    """The step that must NOT happen (``sequence: absent:``): no record of ``stream`` whose ``key`` joins
    the chain and that passes ``where`` after the last positive step, up to ``within`` after it."""

    alias: str
    stream: str
    key: str
    where: ExprSource | None
    within: float  # seconds, > 0
    follows: tuple[str, str] | None = None  # (earlier alias, its field); default: the last step's key
    loc: SourceLocation = SourceLocation("")
    value_locs: dict[str, SourceLocation] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class TemplatePart:
    text: str = ""  # literal text, when expr is None
    expr: ExprSource | None = None
    spec: str = ""
    offset: int = 0


@dataclass(frozen=True)
class Template:
    text: str
    parts: tuple[TemplatePart, ...]
    node: Node | None = None


@dataclass(frozen=True)
class ParamDef:
    """A rule parameter (``params: {min_payers: 6}``), read as ``$min_payers`` and bound when the rule compiles.

    ``kind`` is the literal kind its value takes: number, duration (seconds), string or bool.
    """

    name: str
    value: object
    kind: str
    loc: SourceLocation = SourceLocation("")

    @property
    def text(self) -> str:
        """The value as a rule author writes it (a duration as 10m, not 600)."""
        if self.kind == "duration":
            return unparse(Literal(self.value, "duration"))
        if self.kind == "bool":
            return "true" if self.value else "false"
        return str(self.value)


@dataclass(frozen=True)
class RuleTest:
    name: str
    records: tuple[dict, ...]
    expect: tuple[str, ...]
    loc: SourceLocation
    node: Node | None = None
    lists: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (list name, values) fixed for this case


@dataclass
class Rule:
    id: str
    title: str
    severity: str
    score: int
    status: str
    version: int
    steps: tuple[Step, ...]
    path: str
    loc: SourceLocation
    description: str = ""
    tags: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    author: str = ""
    within: float | None = None  # seconds, sequences only
    unless: Unless | None = None
    absent: Absent | None = None
    suppress: float = 0.0  # seconds; 0 = no suppression
    explain: Template | None = None
    tests: tuple[RuleTest, ...] = ()
    params: dict[str, ParamDef] = field(default_factory=dict)
    is_sequence: bool = False
    node: Node | None = field(default=None, repr=False)

    @property
    def shadow(self) -> bool:
        return self.status in SHADOW_STATUSES

    @property
    def last(self) -> Step:
        return self.steps[-1]


@dataclass(frozen=True)
class NamedList:
    name: str
    kind: str  # exact | prefix
    values: tuple[str, ...]
    description: str
    source: str
    path: str
    loc: SourceLocation


@dataclass(frozen=True)
class Macro:
    name: str
    params: tuple[str, ...]
    body: ExprSource
    description: str
    loc: SourceLocation

@dataclass
class Policy:
    """Risk score thresholds: the first decision whose ``min_score`` is met wins."""

    decisions: list[tuple[str, int]] = field(default_factory=lambda: [("block", 70), ("review", 30), ("allow", 0)])

    def decide(self, score: int) -> str:
        for name, threshold in self.decisions:
            if score >= threshold:
                return name
        return self.decisions[-1][0]


@dataclass
class RulePack:
    root: Path
    schema: Schema
    rules: list[Rule]
    lists: dict[str, NamedList]
    macros: dict[str, Macro]
    policy: Policy
    digest: str  # sha256 over every file of the pack
    # only some of its rule files were loaded (load_pack's ``only``): what no loaded rule uses may be used by others
    partial: bool = False
    # the region of numbers written without + that the pack was checked for (--region): a phone literal must be
    # what the reader makes of it there
    region: str = DEFAULT_REGION
    # what is costly to derive from the pack, built once: list matchers by (id of the list, region),
    # each kept with its list. Packs made from this one with dataclasses.replace share it.
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    def rule(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)
