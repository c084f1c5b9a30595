"""Window aggregates of the rule language: the one definition of each (docs/design.md §4).

An :class:`Aggregate` says how a call is written and typed; the checker and the
compiler read it here. How it is computed is each executor's business, one body
per aggregate under the same name:

- batch: the vectorised body in ``runtime.windows.WINDOW_BODIES``;
- stream: the incremental state in ``executors.stream.aggregates.STATE_CLASSES``;
- and the naive reference of the property tests, ``tests/reference.py``.

``tests/unit/test_aggregates.py`` fails when an aggregate lacks one of them, so
a new aggregate is one entry here, one body per executor, and its docs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..columns.types import LogicalType, PhysicalKind
from ..columns.vec import physical_kind
from .expr import Binary, Expr, Field
from .functions import TypeProblem, is_numeric


@dataclass(frozen=True)
class Aggregate:
    name: str
    # the value's type (None: the aggregate takes no value) -> the result's type; raises TypeProblem
    infer: Callable[[LogicalType | None], LogicalType]
    doc: str
    takes_value: bool = True
    # may read another stream's records or another key field (``stream=``, ``key=``); is_new and
    # since_prev are about the record's own earlier records, so they may not
    other_records: bool = True

    @property
    def usage(self) -> str:
        return f"{self.name}(x, window)" if self.takes_value else f"{self.name}(window)"

    @property
    def kind(self) -> PhysicalKind:
        """How every executor holds the result (any numeric type as a float)."""
        return physical_kind(self.infer(LogicalType.FLOAT if self.takes_value else None))


# ``count(7d, stream=sms, key=sender)``: the window holds the records of another stream (and/or keyed by
# another field) whose key field equals the key of the record it is evaluated at (docs/rules.md §3)
SOURCE_KWARGS = ("stream", "key")
# ``count(24h, key=[payer_account, payee_account])``: the records in which ANY of the fields equals the key, each
# once; the plan holds the fields as one name joined by ANY_SEP (runtime.plan.AggregateSpec.over_key)
ANY_SEP = ","
MIN_ANY_FIELDS, MAX_ANY_FIELDS = 2, 4


def _fixed(result: LogicalType) -> Callable[[LogicalType | None], LogicalType]:
    return lambda value: result


def _number(value: LogicalType | None) -> LogicalType:
    """A number's own type: a sum of durations is a duration."""
    if value is None or not is_numeric(value):
        raise TypeProblem(f"needs a number, not {value}", 0)
    return value


def _mean(value: LogicalType | None) -> LogicalType:
    return LogicalType.DURATION if _number(value) == LogicalType.DURATION else LogicalType.FLOAT


AGGREGATES: dict[str, Aggregate] = {
    a.name: a
    for a in [
        Aggregate("count", _fixed(LogicalType.FLOAT), "records in the window", takes_value=False),
        Aggregate("sum", _number, "sum of x (exact to 4 decimals)"),
        Aggregate("avg", _mean, "mean of x; null when no record counts"),
        Aggregate("min", _number, "smallest x; null when no record counts"),
        Aggregate("max", _number, "largest x; null when no record counts"),
        Aggregate("distinct", _fixed(LogicalType.FLOAT), "distinct non-null values of x"),
        Aggregate("is_new", _fixed(LogicalType.BOOL),
                  "true when no earlier record of the key had this x in the window", other_records=False),
        Aggregate("stddev", _mean,
                  "sample standard deviation of x (exact sums, then one rounding); null under two records"),
        Aggregate("median", _mean,
                  "middle x (odd count); mean of the two middle ones, exact to 4 decimals (even); null when none"),
        Aggregate("since_prev", _fixed(LogicalType.DURATION),
                  "time since the key's latest earlier record in the window; null when there is none",
                  takes_value=False, other_records=False),
    ]
}


# Inside an aggregate's where=, the one read of another step: a bound on the window's start
# (``ts > swap.ts``: the window is (max(t - w, swap.ts), t]), and the one aggregate: is_new,
# evaluated at each window record as a step-level is_new would be there (docs/design.md §4).
NESTABLE = ("is_new",)
_FLIPPED = {"<": ">", "<=": ">="}


def window_bound(expr: Expr) -> tuple[str, bool] | None:
    """``(alias, inclusive)`` when a conjunct of where= bounds the window record's ts by an earlier step's:
    ``ts > alias.ts`` (``alias.ts < ts``) or ``ts >= alias.ts`` (``alias.ts <= ts``); else None."""
    if not isinstance(expr, Binary):
        return None
    op, own, other = expr.op, expr.left, expr.right
    if op in _FLIPPED:
        op, own, other = _FLIPPED[op], expr.right, expr.left
    if (op in (">", ">=") and isinstance(own, Field) and own.alias is None and own.name == "ts"
            and isinstance(other, Field) and other.alias is not None and other.name == "ts"):
        return other.alias, op == ">="
    return None
