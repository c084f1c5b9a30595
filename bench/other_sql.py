"""DuckDB SQL of the second rule pack, bench/packs/other (OTH-* rules): a workload the engine was not
tuned for, run by ``bench/bench_batch.py --pack other`` and checked against the batch executor by
``tests/test_pack_sql.py``.

The conventions are bench/pack_sql.py's (read its docstring): the same views (``load_statements``),
total order ``seq``, keys ``k``, windows (t - w, t] at or before the record, two-valued logic, exact
sums on integers scaled by 10^4, and the same building blocks (``window_total``, ``distinct_at``,
``keyed``, ``scaled``, ``suppressed``). What these rules add:

- a window as a frame: ``ROWS BETWEEN off PRECEDING AND CURRENT ROW`` by seq, ``off`` per row being the
  records of the key in (t - w, t] before it (``framed``), for min, max and median over a window;
- ``median``: the middle value (odd count), else the two middle ones' scaled units summed and divided
  by 2 * 10^4 once (docs/rules.md §3), from ``quantile_disc`` (the lower middle) and ``-quantile_disc``
  of the negated values (the upper one);
- ``stddev``: sqrt((n s2 - s1^2) / (n (n - 1) 10^8)) from exact sums of the scaled values and their
  squares (HUGEINT), the quotient rounded once; DOUBLE division rounds twice, so where the comparison
  is within 10^-9 of its bound the quotient comes from ``exact_ratio`` (Python ints), elsewhere the
  difference cannot change it;
- ``stream=``/``key=``: the other stream's records under the same key column, in one window partition
  with the step's own (``with_foreign``): seq orders records of different streams too;
- ``is_new(x, w)`` in ``count()``'s where=: a lag over (key, x) per window record (``new_value``);
- ``since_prev(w)``: a lag over the key;
- ``country()``/``number_type()``: phonenumbers from DuckDB (``register_functions``), once per distinct
  number of the records that pass the rule's other tests;
- a three-step sequence: the latest middle record before the last step (ASOF) and the first first-step
  record within ``within`` (ASOF); a chain exists when that one comes before this one.

Every rule here has no ``suppress``: the emitted alerts are the matches. ``suppressed`` is applied all
the same, so a suppress added to a rule is honoured.
"""

from __future__ import annotations

from typing import Any

from bench.pack_sql import (
    ALL_EXACT_CAVEAT,
    HUGE_TS,
    D,
    H,
    RuleSQL,
    SqlPack,
    distinct_at,
    keyed,
    q,
    scaled,
    window_total,
)

# --- DuckDB functions --------------------------------------------------------------------------

# phonenumbers' types under the names of number_type() (docs/rules.md §3)
TYPE_NAMES = {"FIXED_LINE": "fixed", "MOBILE": "mobile", "FIXED_LINE_OR_MOBILE": "fixed_or_mobile",
              "TOLL_FREE": "toll_free", "PREMIUM_RATE": "premium_rate", "SHARED_COST": "shared_cost",
              "VOIP": "voip", "PERSONAL_NUMBER": "personal", "PAGER": "pager", "UAN": "uan",
              "VOICEMAIL": "voicemail", "UNKNOWN": "unknown"}


def _valid_number(text: str | None) -> Any:
    """The parsed number of ``+``-prefixed text that phonenumbers finds valid, else None."""
    import phonenumbers

    if text is None or not text.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    return parsed if phonenumbers.is_valid_number(parsed) else None


def phone_country(text: str | None) -> str | None:
    """country(): the ISO 3166 code of a valid number; null for a non-geographic one (region 001)."""
    import phonenumbers

    parsed = _valid_number(text)
    region = None if parsed is None else phonenumbers.region_code_for_number(parsed)
    return None if region in (None, "001", "ZZ") else region


def phone_type(text: str | None) -> str | None:
    """number_type(): what a valid number is (mobile, fixed, ...); null for an invalid one."""
    import phonenumbers

    parsed = _valid_number(text)
    if parsed is None:
        return None
    kind = phonenumbers.number_type(parsed)
    names = {getattr(phonenumbers.PhoneNumberType, name): label for name, label in TYPE_NAMES.items()}
    return names.get(kind, "unknown")


def exact_ratio(num: str, den: str) -> float:
    """num / den of two integers (written as text: HUGEINT), rounded once as Python's int / int does."""
    return int(num) / int(den)


def register_functions(con: Any) -> None:
    """``phone_country`` and ``phone_type`` (VARCHAR -> VARCHAR), ``exact_ratio(VARCHAR, VARCHAR) -> DOUBLE``."""
    for name, fn in (("phone_country", phone_country), ("phone_type", phone_type)):  # null in, null out
        con.create_function(name, fn, ["VARCHAR"], "VARCHAR", null_handling="special", side_effects=False)
    con.create_function("exact_ratio", exact_ratio, ["VARCHAR", "VARCHAR"], "DOUBLE", side_effects=False)


# --- building blocks ----------------------------------------------------------------------------


def framed(rows: str, *windows: int) -> str:
    """``rows`` (k, t, seq, ...) with ``off_W`` for each window W: how many records of the key before the
    row (by seq) have t > t_row - W. ``over(W)`` is then exactly the row's window (t - W, t]: the records
    with t <= t_row - W are the key's first ones by seq, and none of them comes after the row."""
    offs = ", ".join(f"row_number() OVER (PARTITION BY k ORDER BY seq) - 1 - count(*) OVER (PARTITION BY k "
                     f"ORDER BY t RANGE BETWEEN UNBOUNDED PRECEDING AND {w} PRECEDING) AS off_{w}"
                     for w in windows)
    return f"SELECT *, {offs} FROM ({rows})"


def over(w_ns: int) -> str:
    """The window of ``framed``'s rows for w_ns (an OVER clause)."""
    return f"OVER (PARTITION BY k ORDER BY seq ROWS BETWEEN off_{w_ns} PRECEDING AND CURRENT ROW)"


def median_over(value: str, w_ns: int) -> str:
    """median(value, w) over ``framed`` rows (value null where a record does not count)."""
    units = scaled(value)
    return (f"(CASE WHEN count({value}) {over(w_ns)} % 2 = 1 THEN quantile_disc({value}, 0.5) {over(w_ns)} "
            f"ELSE (quantile_disc({units}, 0.5) {over(w_ns)} - quantile_disc(-{units}, 0.5) {over(w_ns)})"
            f"::DOUBLE / 20000 END)")


def with_foreign(own: str, foreign: str, value: str = "1") -> str:
    """The step's rows ``own`` (id, k, t, seq, ...; ``mine`` true) and another stream's records ``foreign``
    (its key column as k, t, seq) in one set, ``x`` = ``value`` of the foreign ones (0 for the step's): a
    ``window_total('x', w)`` over it is the aggregate of the foreign records in the step's window."""
    return (f"SELECT *, true AS mine, 0 AS x FROM ({own}) UNION ALL BY NAME "
            f"SELECT k, t, seq, false AS mine, {value} AS x FROM ({foreign})")


def new_value(value: str, w_ns: int) -> str:
    """is_new(value, w) at each row of a keyed set: no earlier row of the key with this value in w."""
    return (f"({value} IS NOT NULL AND coalesce(lag(t) OVER (PARTITION BY k, {value} ORDER BY seq) "
            f"<= t - {w_ns}, true))")


# --- the rules ------------------------------------------------------------------------------------
# Each function gives the SELECT of (id, k, t, seq) of every match before suppression.


def _median_jump(plan, rp) -> str:
    w = 30 * D
    return f"""SELECT id, k, t, seq FROM (
            SELECT id, k, t, seq, amount, count(*) {over(w)} AS n,
                   {median_over('(CASE WHEN amount > 0 THEN amount END)', w)} AS med
            FROM ({framed(keyed('payment', 'payer_account', 'amount'), w)}))
        WHERE amount >= 5 * med AND n >= 3"""


def _spread(plan, rp) -> str:
    """amount > avg + 3 * stddev, both over the payee's 30 days: exact sums, then the engine's roundings."""
    w = 30 * D
    units = scaled("amount")
    sums = f"""SELECT id, k, t, seq, amount, {window_total('(CASE WHEN amount IS NOT NULL THEN 1 ELSE 0 END)', w)} AS n,
                      {window_total(f'coalesce({units}, 0)::HUGEINT', w)} AS s1,
                      {window_total(f'coalesce({units}, 0)::HUGEINT * coalesce({units}, 0)', w)} AS s2
               FROM ({keyed('payment', 'payee_account', 'amount')})"""
    parts = f"""SELECT *, (s1::DOUBLE / 10000) / n AS mean, greatest(n * s2 - s1 * s1, 0) AS num,
                      n::HUGEINT * (n - 1) * 100000000 AS den
               FROM ({sums}) WHERE n >= 2"""
    fast = "(mean + 3 * sqrt(num::DOUBLE / den::DOUBLE))"
    exact = "(mean + 3 * sqrt(exact_ratio(num::VARCHAR, den::VARCHAR)))"
    return f"""SELECT id, k, t, seq FROM ({parts})
        WHERE CASE WHEN abs(amount - {fast}) > 1e-9 * (abs({fast}) + 1) THEN amount > {fast}
                   ELSE amount > {exact} END"""


def _long_distinct(plan, rp) -> str:
    return distinct_at(keyed("call", "caller"), keyed("call", "caller", "callee AS v, cell_id AS v2"), 7 * D,
                       "count(DISTINCT j.v) >= 40 AND count(DISTINCT j.v2) >= 5")


def _since_prev(plan, rp) -> str:
    return f"""SELECT id, k, t, seq FROM (
            SELECT id, k, t, seq, amount, lag(t) OVER (PARTITION BY k ORDER BY seq) AS prev_t
            FROM ({keyed('payment', 'payer_account', 'amount')}))
        WHERE prev_t > t - {30 * D} AND (t - prev_t)::DOUBLE / 1e9 >= {3 * 86400} AND amount > 1000"""


def _new_payees(plan, rp) -> str:
    return f"""SELECT id, k, t, seq FROM (
            SELECT id, k, t, seq, {window_total('new', H * 24)} AS n FROM (
                SELECT id, k, t, seq, (CASE WHEN {new_value('payee_account', 30 * D)} THEN 1 ELSE 0 END) AS new
                FROM ({keyed('payment', 'payer_account', 'payee_account')})))
        WHERE n >= 3"""


def _calls_no_sms(plan, rp) -> str:
    both = with_foreign(keyed("call", "caller", "direction"), "SELECT sender AS k, t, seq FROM sms "
                        "WHERE sender IS NOT NULL")
    return f"""SELECT id, k, t, seq FROM (
            SELECT id, k, t, seq, mine, direction, {window_total('x', 24 * H)} AS n_sms,
                   {window_total('(CASE WHEN mine THEN 1 ELSE 0 END)', H)} AS n_calls
            FROM ({both}))
        WHERE mine AND direction = 'out' AND n_sms = 0 AND n_calls >= 10"""


def _caller_pays(plan, rp) -> str:
    both = with_foreign(keyed("payment", "payer_phone", "amount"),
                        "SELECT caller AS k, t, seq, duration FROM call WHERE caller IS NOT NULL",
                        f"coalesce({scaled('duration')}, 0)")
    return f"""SELECT id, k, t, seq FROM (
            SELECT id, k, t, seq, mine, amount, {window_total('x', 7 * D)} AS call_units FROM ({both}))
        WHERE mine AND call_units > {3 * 3600} * 10000 AND amount > 5000"""


def _account_pattern(plan, rp) -> str:
    return (f"{keyed('payment', 'payee_account')} AND regexp_matches(payee_account, {q('^[A-Z]{2}[0-9]+7$')}) "
            f"AND length(ip) > 9 AND NOT coalesce(starts_with(device_id, 'dev-1'), false)")


def _night_weekend(plan, rp) -> str:
    """The clock tests first; phonenumbers then answers once per distinct number of the calls that pass them
    (materialised, so that DuckDB does not move the calls back onto every row)."""
    return f"""WITH c AS MATERIALIZED (
            {keyed('call', 'callee', 'caller')} AND hour(timezone('Europe/London', ts)) < 4
                AND isodow(timezone('America/New_York', ts)) >= 6),
        callee_type AS MATERIALIZED (SELECT v, phone_type(v) AS kind FROM (SELECT DISTINCT k AS v FROM c)),
        caller_country AS MATERIALIZED (SELECT v, phone_country(v) AS cc
                                        FROM (SELECT DISTINCT caller AS v FROM c WHERE caller IS NOT NULL))
        SELECT c.id, c.k, c.t, c.seq FROM c JOIN callee_type AS ct ON ct.v = c.k
            JOIN caller_country AS cn ON cn.v = c.caller
        WHERE ct.kind = 'mobile' AND cn.cc != 'CN'"""


def _imei_imsis(plan, rp) -> str:
    w = 24 * H
    short = f"""SELECT id, k, t, seq FROM (
            SELECT id, k, t, seq, max(duration) {over(w)} AS longest, min(duration) {over(w)} AS shortest
            FROM ({framed(keyed('call', 'imei', 'duration'), w)}))
        WHERE longest < 60 AND shortest >= 0"""
    return distinct_at(short, keyed("call", "imei", "imsi AS v"), w, "count(DISTINCT j.v) >= 3")


def _call_sms_pay(plan, rp) -> str:
    """call (key callee) -> sms (receiver = call.callee) -> payment (payer_phone = sms.receiver), strictly in
    the total order, the payment at most ``within`` after the call. A payment has a chain iff the first
    call at or after its t - within comes before the latest SMS before it."""
    return f"""WITH c AS (SELECT callee AS k, seq FROM call
                      WHERE callee IS NOT NULL AND direction = 'in' AND duration >= 60),
             s AS (SELECT receiver AS k, seq FROM sms WHERE receiver IS NOT NULL),
             p AS (SELECT id, payer_phone AS k, t, seq, (t - {rp.within_ns})::HUGEINT * {HUGE_TS} AS from_seq
                   FROM payment WHERE payer_phone IS NOT NULL AND amount >= 1000),
             ps AS (SELECT p.*, s.seq AS s_seq FROM p ASOF JOIN s ON p.k = s.k AND p.seq > s.seq)
        SELECT ps.id, ps.k, ps.t, ps.seq FROM ps ASOF JOIN c ON ps.k = c.k AND ps.from_seq <= c.seq
        WHERE c.seq < ps.s_seq"""


def _device_fan(plan, rp) -> str:
    w = 7 * D
    app = f"(CASE WHEN channel = 'app' THEN coalesce({scaled('amount')}, 0) ELSE 0 END)"
    heavy = f"""SELECT id, k, t, seq FROM (
            SELECT id, k, t, seq, {window_total(app, w)} AS app_units
            FROM ({keyed('payment', 'device_id', 'channel, amount')}))
        WHERE app_units > 10000 * 10000"""
    return distinct_at(heavy, keyed("payment", "device_id", "payer_account AS v"), w, "count(DISTINCT j.v) >= 3")


DISTINCT_NOTE = "exact (distinct() as a range self-join)"
RULE_SQL: dict[str, RuleSQL] = {
    "OTH-MED-001": RuleSQL(1, True, "exact (median from quantile_disc over a ROWS frame per record)",
                           _median_jump),
    "OTH-STD-001": RuleSQL(1, True, "exact (exact sums; the quotient rounded once near the bound)", _spread),
    "OTH-DIST-001": RuleSQL(1, True, DISTINCT_NOTE, _long_distinct),
    "OTH-SINCE-001": RuleSQL(1, True, "exact (since_prev as lag)", _since_prev),
    "OTH-NEWCNT-001": RuleSQL(1, True, "exact (is_new as lag per window record, then a window count)",
                              _new_payees),
    "OTH-FOR-001": RuleSQL(1, True, "exact (the SMS in the caller's window partition, total order by seq)",
                           _calls_no_sms),
    "OTH-FOR-002": RuleSQL(1, True, "exact (the calls in the payer's window partition, total order by seq)",
                           _caller_pays),
    "OTH-RE-001": RuleSQL(1, True, "exact (RE2 on both sides)", _account_pattern),
    "OTH-TIME-001": RuleSQL(1, True, "exact (ICU time zones; phonenumbers once per distinct number)",
                            _night_weekend),
    "OTH-IMEI-001": RuleSQL(1, True, "exact (min/max over a ROWS frame, distinct() as a range self-join)",
                            _imei_imsis),
    "OTH-SEQ-001": RuleSQL(1, True, "exact (the three steps as two ASOF joins)", _call_sms_pay),
    "OTH-DEV-001": RuleSQL(1, True, DISTINCT_NOTE, _device_fan),
}
OTHER = SqlPack(RULE_SQL, ALL_EXACT_CAVEAT, register_functions)
