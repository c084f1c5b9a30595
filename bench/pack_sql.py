"""DuckDB SQL of the shipped rule pack (rules/payments, rules/telecom): the oracle that
``bench/bench_batch.py`` times and ``tests/test_pack_sql.py`` checks against the batch executor.

What is compared: per rule, the ids of the triggering records *before* suppression (every match,
``candidates``) and the ids of the alerts *emitted after* greedy per-key suppression
(``emitted``). Evidence chains are not compared here; tests/test_oracle.py does that for every
language construct on its own ORC-* rules.

How the SQL encodes docs/design.md §5 (the same ideas as tests/test_oracle.py's docstring, over
columns typed by DuckDB's own CSV reader):

- total order: ``seq = ts_ns * 2^40 + input * 2^32 + row`` (one HUGEINT), inputs in the order the
  engine reads a folder; ``t`` is the timestamp in ns;
- keys: a record whose key is null is left out of its step and of every window;
- windows (ts - w, ts], only records at or before r: ``count`` and exact ``sum`` as a running total
  by ``seq`` minus a RANGE frame on ``t`` ending w before (``window_total``); ``distinct`` as a
  self-join on the key with ``j.t > r.t - w AND j.seq <= r.seq`` (``distinct_at``), made an
  equi-join on (key, t // w) over two buckets so that busy keys do not pair all their records;
- two-valued logic: a nullable boolean is ``coalesce``d to false before ``NOT``; a comparison
  with a null is null, which WHERE and HAVING treat as false;
- sums are exact: integers scaled by 10^4, as ``fraudrules.runtime.windows`` adds them;
  cross-step arithmetic (``0.9 * drain.amount``) is DOUBLE, the engine's float64;
- sequences: an EXISTS or a join with ``earlier.seq < later.seq`` and
  ``earlier.t >= later.t - within``; ``unless`` a NOT EXISTS strictly between;
- suppression: greedy per key from the last *emitted* alert (``suppressed``).

The SQL reads numbers as written: it does no E.164 normalisation and checks no rejects. That is
exact for inputs whose phone numbers are already E.164 and that have no bad rows, as
``fraudrules generate`` writes them (and samples/, which it wrote). ``number_type(x) ==
"premium_rate"`` is a DuckDB function over ``phonenumbers`` directly (``register_functions``), called
once per distinct overseas number; it is the one piece of this SQL that is Python.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HUGE_TS = 1 << 40  # seq = ts_ns * 2^40 + input * 2^32 + row: the total order as one HUGEINT
HUGE_INPUT = 1 << 32
S = 1_000_000_000
MIN = 60 * S
H = 3600 * S
D = 24 * H

DUCK_TYPES = {"string": "VARCHAR", "phone": "VARCHAR", "enum": "VARCHAR", "int": "DOUBLE", "float": "DOUBLE",
              "duration": "DOUBLE", "bool": "BOOLEAN", "timestamp": "TIMESTAMPTZ"}
OVERSEAS = "'^[+]([0-79]|8[0-57-9])'"  # rules/macros.yaml overseas(): '+' and any country code but 86


def q(text: object) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


# --- reading -----------------------------------------------------------------------------------


def load_statements(inputs: list[tuple[str, Path]], schema: Any) -> list[tuple[str, str]]:
    """read_csv (read_parquet, read_json) every input (all columns) and give each stream a view with t (ns) and seq
    (total order).

    ``inputs`` are (stream, path) in the order the engine reads them (docs/design.md §5 input position).
    """
    out = [("setup", "SET TimeZone = 'UTC'")]
    streams: dict[str, list[tuple[int, Path]]] = {}
    for i, (stream, path) in enumerate(inputs):
        streams.setdefault(stream, []).append((i, path))
    for stream, files in streams.items():
        fields = schema.streams[stream].fields
        parts = []
        for i, path in files:
            table = f"raw_{stream}_{i}"
            if path.suffix == ".parquet":
                import pyarrow.parquet as pq

                header = list(pq.read_schema(path).names)
                cols = ", ".join(f'CAST("{c}" AS {DUCK_TYPES[fields[c].type] if c in fields else "VARCHAR"}) AS "{c}"'
                                 for c in header)
                out.append((f"read {path.name}", f"CREATE TABLE {table} AS SELECT {cols} FROM read_parquet({q(path)})"))
            else:  # a column's DuckDB type by name: the CSV header, or the first line's keys of JSON Lines
                with open(path, encoding="utf-8") as fh:  # (bench_batch.ensure_jsonl writes them on every line)
                    first = fh.readline()
                header = list(json.loads(first)) if path.suffix == ".jsonl" else first.rstrip("\r\n").split(",")
                cols = ", ".join(f"{q(c)}: {q(DUCK_TYPES[fields[c].type] if c in fields else 'VARCHAR')}"
                                 for c in header)
                read = (f"read_json({q(path)}, format = 'newline_delimited', columns = {{{cols}}})"
                        if path.suffix == ".jsonl" else
                        f"read_csv({q(path)}, header = true, delim = ',', quote = '\"', escape = '\"', "
                        f"columns = {{{cols}}})")
                out.append((f"read {path.name}", f"CREATE TABLE {table} AS SELECT * FROM {read}"))
            names = ", ".join(f'"{f}"' if f in header else f'NULL::{DUCK_TYPES[spec.type]} AS "{f}"'
                              for f, spec in fields.items())
            parts.append(f"SELECT {names}, epoch_ns(ts) AS t, "
                         f"epoch_ns(ts)::HUGEINT * {HUGE_TS} + {i * HUGE_INPUT} + rowid AS seq "
                         f"FROM {table} WHERE id IS NOT NULL AND ts IS NOT NULL")
        out.append((f"view {stream}", f"CREATE VIEW {stream} AS " + " UNION ALL ".join(parts)))
    for stream, spec in schema.streams.items():  # rules may name a stream absent from the input
        if stream not in streams:
            names = ", ".join(f'NULL::{DUCK_TYPES[f.type]} AS "{name}"' for name, f in spec.fields.items())
            out.append((f"view {stream}", f"CREATE VIEW {stream} AS SELECT {names}, 0::BIGINT AS t, "
                                          f"0::HUGEINT AS seq WHERE false"))
    return out


def _premium_rate(number: str) -> bool:
    """phonenumbers' own answer: a valid number whose type is PREMIUM_RATE (docs/design.md §4 number_type)."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed) and \
        phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.PREMIUM_RATE


def register_functions(con: Any) -> None:
    """The DuckDB functions the rule SQL calls: ``premium_rate(VARCHAR) -> BOOLEAN``."""
    con.create_function("premium_rate", _premium_rate, ["VARCHAR"], "BOOLEAN", side_effects=False)


# --- building blocks -------------------------------------------------------------------------------


def in_list(expr: str, matcher: Any) -> str:
    """``expr in @list`` with the engine's own list values (exact, or any prefix); null is not in."""
    values = sorted(matcher.values)
    if not values:
        return "false"
    if matcher.list.kind == "prefix":
        return "(" + " OR ".join(f"starts_with({expr}, {q(v)})" for v in values) + ")"
    return f"{expr} IN ({', '.join(q(v) for v in values)})"


def suppressed(cand: str, suppress_ns: int) -> str:
    """Ids emitted after greedy per-key suppression (docs/design.md §5) of the matches in ``cand``.

    ``cand`` selects (id, k, t, seq) of every match. Per key in total order:
    the first match is emitted; the next emitted one is the first match at
    least ``suppress`` later (ASOF join); the chain is walked with a
    recursive CTE, one step per emitted alert of the busiest key.
    """
    if suppress_ns <= 0:
        return f"SELECT id FROM ({cand})"
    return f"""WITH RECURSIVE m AS (
        SELECT id, k, t, row_number() OVER (PARTITION BY k ORDER BY seq) AS rn FROM ({cand})),
    firsts AS (SELECT k, t, min(rn) AS rn FROM m GROUP BY k, t),
    nx AS MATERIALIZED (SELECT m.k, m.rn, firsts.rn AS nxt FROM m ASOF LEFT JOIN firsts
           ON m.k = firsts.k AND firsts.t >= m.t + {suppress_ns}),
    walk(k, rn) AS (SELECT k, rn FROM m WHERE rn = 1
                    UNION ALL
                    SELECT nx.k, nx.nxt FROM walk JOIN nx ON nx.k = walk.k AND nx.rn = walk.rn
                    WHERE nx.nxt IS NOT NULL)
    SELECT m.id FROM walk JOIN m ON m.k = walk.k AND m.rn = walk.rn"""


def window_total(value: str, w_ns: int) -> str:
    """Sum of ``value`` over the same key, ts in (t - w, t], at or before the row in the total order.

    Rows are ordered by seq; everything with t <= t_r - w lies before r, so
    the window is the running total by seq minus the running total up to
    t_r - w (a RANGE frame on t). Exact with ties in ts. Needs columns k, t, seq.
    """
    return (f"(sum({value}) OVER (PARTITION BY k ORDER BY seq ROWS UNBOUNDED PRECEDING) - "
            f"coalesce(sum({value}) OVER (PARTITION BY k ORDER BY t RANGE BETWEEN UNBOUNDED PRECEDING "
            f"AND {w_ns} PRECEDING), 0))")


def window_count(where: str, w_ns: int) -> str:
    """``count(w, where=...)``: the window total of 1 per record that passes ``where`` (null: not)."""
    return window_total(f"(CASE WHEN {where} THEN 1 ELSE 0 END)", w_ns)


def scaled(value: str) -> str:
    """A number as the engine sums it: an integer scaled by 10^4 (fraudrules.runtime.windows.SUM_SCALE)."""
    return f"round({value} * 10000)::BIGINT"


def distinct_at(rows: str, window: str, w_ns: int, having: str) -> str:
    """Rows of ``rows`` (id, k, t, seq) whose window over ``window`` (k, t, seq, values) passes ``having``.

    The window of r is the records j of ``window`` with j.k = r.k, t in (t_r - w, t_r] and
    j.seq <= r.seq; ``having`` aggregates them (``count(DISTINCT j.v)`` skips nulls, as
    ``distinct()`` does). Each j is listed under its bucket t // w and the next one, so r meets
    exactly the j of buckets t_r // w - 1 and t_r // w by an equi-join: two records less than w
    apart are at most one bucket apart (``//`` is monotone and its buckets are at least w wide,
    before 1970 too).
    """
    return f"""SELECT r.id, r.k, r.t, r.seq FROM ({rows}) AS r
        JOIN (SELECT *, unnest([t // {w_ns}, t // {w_ns} + 1]) AS b FROM ({window})) AS j
            ON j.k = r.k AND j.b = r.t // {w_ns} AND j.t > r.t - {w_ns} AND j.t <= r.t AND j.seq <= r.seq
        GROUP BY r.id, r.k, r.t, r.seq
        HAVING {having}"""


def keyed(stream: str, key: str, cols: str = "") -> str:
    """Records of ``stream`` with a non-null ``key``, as (id, k, t, seq, cols...)."""
    extra = f", {cols}" if cols else ""
    return f"SELECT id, {key} AS k, t, seq{extra} FROM {stream} WHERE {key} IS NOT NULL"


def premium(column: str) -> str:
    """``number_type(x if overseas(x) else null) == "premium_rate"`` (rules/macros.yaml) for a column of
    ``call``: phonenumbers is asked once per distinct overseas value (a materialised CTE keeps DuckDB
    from pushing the call below the DISTINCT, back onto every row)."""
    return (f"({column} IN (WITH d AS MATERIALIZED (SELECT DISTINCT {column} AS v FROM call "
            f"WHERE regexp_matches({column}, {OVERSEAS})) SELECT v FROM d WHERE premium_rate(v)))")


def irsf_destination(column: str, plan: Any) -> str:
    """rules/macros.yaml irsf_destination() of a column of ``call``: a listed IRSF range, or an
    overseas premium-rate number."""
    return (f"(coalesce({in_list(column, plan.lists['irsf_ranges'])}, false) "
            f"OR coalesce({premium(column)}, false))")


ONE_RING = "(direction = 'in' AND NOT coalesce(answered, false) AND duration <= 5)"  # macros.yaml one_ring()


# --- the rules ------------------------------------------------------------------------------------
# Each function gives the SELECT of (id, k, t, seq) of every match before suppression.


def _hrj(plan, rp) -> str:
    return (f"SELECT id, payer_account AS k, t, seq FROM payment "
            f"WHERE payer_account IS NOT NULL AND {in_list('upper(payee_country)', plan.lists['fatf_high_risk'])}")


def _rep(plan, rp) -> str:
    return (f"SELECT id, payer_account AS k, t, seq FROM payment "
            f"WHERE payer_account IS NOT NULL AND {in_list('payee_account', plan.lists['reported_accounts'])}")


def _rep_number(plan, rp) -> str:
    return (f"SELECT id, callee AS k, t, seq FROM call WHERE callee IS NOT NULL AND direction = 'in' "
            f"AND {in_list('caller', plan.lists['reported_numbers'])}")


def _night(plan, rp) -> str:
    return ("SELECT id, payer_account AS k, t, seq FROM payment WHERE payer_account IS NOT NULL "
            "AND hour(timezone('Asia/Shanghai', ts)) < 5 AND amount % 1000 = 0 AND amount >= 5000")


def _struct(plan, rp) -> str:
    band = "amount >= 45000 AND amount < 50000"
    return f"""SELECT id, k, t, seq FROM (
        SELECT id, k, t, seq, {window_total('x', D)} AS total FROM (
            SELECT id, payer_account AS k, t, seq, {scaled('amount')} AS x FROM payment
            WHERE payer_account IS NOT NULL AND {band}))
        WHERE total >= 135000 * 10000"""


def _wangiri(plan, rp) -> str:
    # v2: one-ring calls from an overseas caller to >= 10 distinct callees in 10 min
    return distinct_at(f"{keyed('call', 'caller')} AND {ONE_RING} AND regexp_matches(caller, {OVERSEAS})",
                       f"{keyed('call', 'caller', 'callee AS v')} AND {ONE_RING}", 10 * MIN,
                       "count(DISTINCT j.v) >= 10")


def _not_listed(column: str, plan, name: str) -> str:
    """``column not in @name``: a null is in no list, so it passes."""
    return f"NOT coalesce({in_list(column, plan.lists[name])}, false)"


def _dialer(plan, rp) -> str:
    short_out = "direction = 'out' AND duration < 15"
    # v2: registered enterprise lines are skipped (the key is the caller, so the window needs no test)
    unlisted = _not_listed("caller", plan, "enterprise_lines")
    return distinct_at(f"{keyed('call', 'caller')} AND {short_out} AND {unlisted}",
                       f"{keyed('call', 'caller', 'callee AS v')} AND {short_out}", H,
                       "count(DISTINCT j.v) >= 30")


def _dialer_in(plan, rp) -> str:
    short_in = "direction = 'in' AND duration < 15"
    answered_short_in = "direction = 'in' AND coalesce(answered, false) AND duration < 15"
    counted = f"""SELECT id, k, t, seq FROM (
            SELECT id, k, t, seq, direction, duration, {window_count(answered_short_in, H)} AS n
            FROM ({keyed('call', 'caller', 'direction, duration, answered')}))
        WHERE {short_in} AND n >= 3"""
    return distinct_at(counted, f"{keyed('call', 'caller', 'callee AS v')} AND {short_in}", H,
                       "count(DISTINCT j.v) >= 20")


def _irsf(plan, rp) -> str:
    return (f"SELECT id, caller AS k, t, seq FROM call WHERE caller IS NOT NULL AND direction = 'out' "
            f"AND coalesce(answered, false) AND {in_list('callee', plan.lists['irsf_ranges'])} AND duration >= 60")


def _irsf_minutes(plan, rp) -> str:
    cond = f"direction = 'out' AND coalesce(answered, false) AND {irsf_destination('callee', plan)}"
    return f"""SELECT id, k, t, seq FROM (
            SELECT id, k, t, seq, hit, {window_total(f'(CASE WHEN hit THEN {scaled("duration")} ELSE 0 END)', 6 * H)}
                AS total
            FROM (SELECT id, k, t, seq, duration, coalesce({cond}, false) AS hit
                  FROM ({keyed('call', 'caller', 'direction, answered, callee, duration')})))
        WHERE hit AND total >= 3600 * 10000"""


def _is_new(w_ns: int) -> str:
    """is_new(payee_account, w) of a payment step keyed by payer_phone (no where=: every record counts)."""
    return (f"(payee_account IS NOT NULL AND coalesce(lag(t) OVER (PARTITION BY payer_phone, payee_account "
            f"ORDER BY seq) <= t - {w_ns}, true))")


def _app(plan, rp) -> str:
    within = rp.within_ns
    return f"""WITH c AS (
            SELECT callee, t, seq FROM call
            WHERE callee IS NOT NULL AND direction = 'in' AND duration >= 600
              AND (regexp_matches(caller, {OVERSEAS}) OR trunk = 'international')),
        p AS (SELECT * FROM (SELECT id, payer_phone, t, seq, amount, {_is_new(180 * D)} AS new_payee FROM payment
                             WHERE payer_phone IS NOT NULL)
              WHERE amount >= 10000 AND new_payee),
        u AS (SELECT caller, seq FROM call
              WHERE caller IS NOT NULL AND {in_list('callee', plan.lists['bank_hotlines'])})
        SELECT DISTINCT p.id, p.payer_phone AS k, p.t, p.seq FROM c JOIN p
            ON c.callee = p.payer_phone AND c.t >= p.t - {within} AND c.t <= p.t AND c.seq < p.seq
        WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.caller = c.callee AND u.seq > c.seq AND u.seq < p.seq)"""


def _follow_the_money(first: str, rp) -> str:
    """Two payment steps, the second following first.payee_account, forwarding >= 90 % elsewhere."""
    return f"""WITH i AS (SELECT payer_account, payee_account, amount, t, seq FROM payment
                      WHERE payee_account IS NOT NULL AND {first}),
             o AS (SELECT id, payer_account, payee_account, amount, t, seq FROM payment
                   WHERE payer_account IS NOT NULL)
        SELECT DISTINCT o.id, o.payer_account AS k, o.t, o.seq FROM i JOIN o
            ON i.payee_account = o.payer_account AND i.t >= o.t - {rp.within_ns} AND i.t <= o.t AND i.seq < o.seq
        WHERE o.amount >= 0.9::DOUBLE * i.amount AND o.payee_account != i.payer_account"""


def _pass(plan, rp) -> str:
    return _follow_the_money("amount >= 5000", rp)


def _cashout(plan, rp) -> str:
    return _follow_the_money("amount >= 1000 AND balance_after <= 0 AND amount >= balance_before", rp)


def _swap(plan, rp) -> str:
    within = rp.within_ns
    return f"""WITH s AS (SELECT msisdn, t, seq FROM sim_event WHERE msisdn IS NOT NULL AND event = 'swap'),
             p AS (SELECT * FROM (SELECT id, payer_phone, t, seq, amount, {_is_new(90 * D)} AS new_payee
                                  FROM payment WHERE payer_phone IS NOT NULL)
                   WHERE amount >= 20000 OR new_payee)
        SELECT DISTINCT p.id, p.payer_phone AS k, p.t, p.seq FROM s JOIN p
            ON s.msisdn = p.payer_phone AND s.t >= p.t - {within} AND s.t <= p.t AND s.seq < p.seq"""


def _swap_new_payees(plan, rp) -> str:
    """TF-SWAP-002: per chain (swap, pay), the distinct payees of the payer's payments in (max(t - 2h, swap.t),
    t] that were new (is_new over 180d) when paid; the chain passes with more than 3 (a window bounded by an
    earlier step: one self-join per chain, the swap's t in the join condition)."""
    return f"""WITH s AS (SELECT msisdn, t, seq FROM sim_event WHERE msisdn IS NOT NULL AND event = 'swap'),
             p AS (SELECT id, payer_phone, payee_account, t, seq, {_is_new(180 * D)} AS new_payee
                   FROM payment WHERE payer_phone IS NOT NULL),
             chains AS (SELECT p.id, p.payer_phone AS k, p.t, p.seq, s.t AS swap_t, s.seq AS swap_seq FROM s JOIN p
                        ON s.msisdn = p.payer_phone AND s.t >= p.t - {rp.within_ns} AND s.t <= p.t AND s.seq < p.seq),
             passing AS (SELECT c.id, c.k, c.t, c.seq FROM chains AS c JOIN p AS j
                         ON j.payer_phone = c.k AND j.t > c.t - {2 * H} AND j.t <= c.t AND j.seq <= c.seq
                            AND j.t > c.swap_t AND j.new_payee
                         GROUP BY c.id, c.k, c.t, c.seq, c.swap_seq
                         HAVING count(DISTINCT j.payee_account) > 3)
        SELECT DISTINCT id, k, t, seq FROM passing"""


def _velocity(plan, rp) -> str:
    # v2: registered payroll and collection accounts are skipped
    return f"""SELECT id, k, t, seq FROM (SELECT id, k, t, seq, {window_total('1', H)} AS n
                                          FROM ({keyed('payment', 'payer_account')}))
        WHERE n >= 8 AND {_not_listed('k', plan, 'collection_accounts')}"""


def _dormant(plan, rp) -> str:
    """v3: count(w, key=[payer_account, payee_account]) as the payments (other than the trigger, before it
    in the total order) in which the account is the payer or the payee, each payment once."""
    def other_activity(days: int) -> str:
        return (f"EXISTS (SELECT 1 FROM payment AS p WHERE (p.payer_account = c.k OR p.payee_account = c.k) "
                f"AND p.t > c.t - {days * D} AND p.t <= c.t AND p.seq < c.seq)")

    return f"""SELECT c.id, c.k, c.t, c.seq FROM ({keyed('payment', 'payer_account', 'amount')}) AS c
        WHERE c.amount >= 10000 AND NOT {other_activity(60)} AND {other_activity(400)}"""


def _drain(plan, rp) -> str:
    return (f"{keyed('payment', 'payer_account')} AND balance_before >= 1000 AND balance_after = 0 "
            f"AND amount >= balance_before")


def _device_sharing(plan, rp) -> str:
    # v2: only payments of 1,000 or more, at the trigger and in the window
    big = "amount >= 1000"
    return distinct_at(f"{keyed('payment', 'device_id')} AND {big}",
                       f"{keyed('payment', 'device_id', 'payer_account AS v')} AND {big}", D,
                       "count(DISTINCT j.v) >= 4")


def _phone_sharing(plan, rp) -> str:
    return distinct_at(keyed("payment", "payer_phone"), keyed("payment", "payer_phone", "payer_account AS v"),
                       7 * D, "count(DISTINCT j.v) >= 4")


def _mule(key: str, other: str, floor: int):
    def candidates(plan, rp) -> str:
        collection = in_list(key, plan.lists["collection_accounts"])
        return distinct_at(f"{keyed('payment', key)} AND amount >= {floor} AND NOT coalesce({collection}, false)",
                           f"{keyed('payment', key, f'{other} AS v')} AND amount >= {floor}", D,
                           "count(DISTINCT j.v) >= 6")
    return candidates


def _new_sim_burst(plan, rp) -> str:
    out = "direction = 'out'"
    counted = f"""SELECT id, k, t, seq FROM (
            SELECT id, k, t, seq, direction, {window_count(out, D)} AS n FROM ({keyed('call', 'caller', 'direction')}))
        WHERE {out} AND n >= 20"""
    after_activation = f"""SELECT * FROM ({counted}) AS r WHERE EXISTS (
            SELECT 1 FROM sim_event AS a WHERE a.msisdn = r.k AND a.event = 'activation'
                AND a.seq < r.seq AND a.t >= r.t - {rp.within_ns})"""
    return distinct_at(after_activation, f"{keyed('call', 'caller', 'callee AS v')} AND {out}", D,
                       "count(DISTINCT j.v) >= 15")


def _sim_activations(key: str, w_ns: int, at_least: int, distinct: bool):
    def candidates(plan, rp) -> str:
        act = "event = 'activation'"
        if distinct:
            return distinct_at(f"{keyed('sim_event', key)} AND {act}",
                               f"{keyed('sim_event', key, 'msisdn AS v')} AND {act}", w_ns,
                               f"count(DISTINCT j.v) >= {at_least}")
        return f"""SELECT id, k, t, seq FROM (
                SELECT id, k, t, seq, event, {window_count(act, w_ns)} AS n FROM ({keyed('sim_event', key, 'event')}))
            WHERE {act} AND n >= {at_least}"""
    return candidates


def _simbox(plan, rp) -> str:
    out = "direction = 'out'"
    counted = f"""SELECT id, k, t, seq FROM (
            SELECT id, k, t, seq, direction, caller, {window_count(out, H)} AS n_out,
                   {window_count("direction = 'in'", D)} AS n_in
            FROM ({keyed('call', 'imsi', 'direction, caller')}))
        WHERE {out} AND n_out >= 30 AND n_in = 0 AND {_not_listed('caller', plan, 'enterprise_lines')}"""
    return distinct_at(counted, f"{keyed('call', 'imsi', 'callee AS v, cell_id AS v2')} AND {out}", H,
                       "count(DISTINCT j.v) >= 20 AND count(DISTINCT j.v2) = 1")


def _simbox_sms(plan, rp) -> str:
    """TF-SIMBOX-003: count(7d, stream=sms, key=sender) == 0 as NOT EXISTS over sms, in the same total order
    (seq is comparable across streams)."""
    out = "direction = 'out'"
    counted = f"""SELECT c.id, c.k, c.t, c.seq FROM (
            SELECT id, k, t, seq, direction, caller, {window_count(out, H)} AS n_out
            FROM ({keyed('call', 'caller', 'direction, caller')})) AS c
        WHERE c.{out} AND c.n_out >= 30 AND {_not_listed('c.caller', plan, 'enterprise_lines')}
          AND NOT EXISTS (SELECT 1 FROM sms AS s WHERE s.sender = c.k AND s.t > c.t - {7 * D} AND s.t <= c.t
                          AND s.seq <= c.seq)"""
    return distinct_at(counted, f"{keyed('call', 'caller', 'callee AS v')} AND {out}", H,
                       "count(DISTINCT j.v) >= 20")


def _spoofed(plan, rp) -> str:
    return (f"{keyed('call', 'callee')} AND direction = 'in' AND trunk = 'international' "
            f"AND caller IS NOT NULL AND NOT regexp_matches(caller, {OVERSEAS})")


def _spoofed_campaign(plan, rp) -> str:
    intl_in = "direction = 'in' AND trunk = 'international'"
    return distinct_at(f"{keyed('call', 'caller')} AND {intl_in} AND NOT regexp_matches(caller, {OVERSEAS})",
                       f"{keyed('call', 'caller', 'callee AS v')} AND {intl_in}", 6 * H,
                       "count(DISTINCT j.v) >= 3")


def _wangiri_callback(plan, rp) -> str:
    # ring (key caller) -> callback (key callee, joined on the previous step's key: callee = ring.caller)
    ring = distinct_at(f"{keyed('call', 'caller')} AND {ONE_RING} AND regexp_matches(caller, {OVERSEAS})",
                       f"{keyed('call', 'caller', 'callee AS v')} AND {ONE_RING}", H,
                       "count(DISTINCT j.v) >= 10")
    return f"""SELECT DISTINCT c.id, c.k, c.t, c.seq FROM ({keyed('call', 'callee')} AND direction = 'out') AS c
        JOIN ({ring}) AS r ON r.k = c.k AND r.seq < c.seq AND r.t >= c.t - {rp.within_ns}"""


def _wangiri_callback_range(plan, rp) -> str:
    # ring (key callee) -> callback (key caller = ring.callee, and callee == ring.caller)
    codes = in_list("caller", plan.lists["high_risk_calling_codes"])
    risky = f"({irsf_destination('caller', plan)} OR coalesce({codes}, false))"
    return f"""WITH r AS (SELECT callee AS k, caller, t, seq FROM call
                      WHERE callee IS NOT NULL AND {ONE_RING} AND {risky})
        SELECT DISTINCT c.id, c.caller AS k, c.t, c.seq FROM call AS c JOIN r
            ON r.k = c.caller AND r.caller = c.callee AND r.seq < c.seq AND r.t >= c.t - {rp.within_ns}
        WHERE c.direction = 'out'"""


@dataclass(frozen=True)
class RuleSQL:
    version: int  # the rule version the SQL was written for
    exact: bool  # False: the SQL only approximates the rule; kept out of identity checks
    note: str
    candidates: Callable[[Any, Any], str]  # (plan, rule plan) -> SELECT id, k, t, seq of every match


EXACT_NOTE = "exact"
DISTINCT_NOTE = "exact (distinct() as a range self-join)"
RULE_SQL: dict[str, RuleSQL] = {
    # payments
    "TF-APP-001": RuleSQL(4, True, "exact (overseas() is the same prefix regex; unless as NOT EXISTS)", _app),
    "TF-CASHOUT-001": RuleSQL(1, True, "exact (follows = join on drain.payee_account)", _cashout),
    "TF-DEV-001": RuleSQL(2, True, DISTINCT_NOTE, _device_sharing),
    "TF-DORM-001": RuleSQL(3, True, "exact (the counts over payer or payee as EXISTS over earlier payments)",
                           _dormant),
    "TF-DRAIN-001": RuleSQL(1, True, EXACT_NOTE, _drain),
    "TF-HRJ-001": RuleSQL(2, True, EXACT_NOTE, _hrj),
    "TF-MULE-001": RuleSQL(1, True, DISTINCT_NOTE, _mule("payee_account", "payer_account", 500)),
    "TF-MULE-002": RuleSQL(1, True, DISTINCT_NOTE, _mule("payer_account", "payee_account", 1000)),
    "TF-NIGHT-001": RuleSQL(1, True, "exact (hour() with ICU time zones)", _night),
    "TF-PASS-001": RuleSQL(1, True, "exact (follows = join on inflow.payee_account)", _pass),
    "TF-DEV-002": RuleSQL(1, True, DISTINCT_NOTE, _phone_sharing),
    "TF-REP-001": RuleSQL(1, True, EXACT_NOTE, _rep),
    "TF-SWAP-001": RuleSQL(1, True, EXACT_NOTE, _swap),
    "TF-SWAP-002": RuleSQL(1, True, "exact (the window from the swap as a self-join per chain; is_new as lag)",
                           _swap_new_payees),
    "TF-STRUCT-001": RuleSQL(1, True, "exact (window sum on scaled integers, ties in ts handled)", _struct),
    "TF-VEL-001": RuleSQL(2, True, "exact (window count)", _velocity),
    # telecom
    "TF-DIALER-001": RuleSQL(2, True, DISTINCT_NOTE, _dialer),
    "TF-DIALER-002": RuleSQL(1, True, DISTINCT_NOTE, _dialer_in),
    "TF-IRSF-001": RuleSQL(1, True, EXACT_NOTE, _irsf),
    "TF-IRSF-002": RuleSQL(1, True, "exact (premium_rate() calls phonenumbers from DuckDB)", _irsf_minutes),
    "TF-NEWSIM-001": RuleSQL(1, True, DISTINCT_NOTE, _new_sim_burst),
    "TF-REP-002": RuleSQL(1, True, EXACT_NOTE, _rep_number),
    "TF-SIMBOX-001": RuleSQL(2, True, DISTINCT_NOTE, _simbox),
    "TF-SIMBOX-002": RuleSQL(1, True, DISTINCT_NOTE, _sim_activations("imei", 30 * D, 3, distinct=True)),
    "TF-SIMBOX-003": RuleSQL(1, True, "exact (the SMS of another stream as NOT EXISTS, total order by seq)",
                             _simbox_sms),
    "TF-SIMID-001": RuleSQL(1, True, "exact (window count)", _sim_activations("id_document", 30 * D, 3, False)),
    "TF-SIMID-002": RuleSQL(1, True, DISTINCT_NOTE, _sim_activations("id_document", 400 * D, 6, distinct=True)),
    "TF-SPOOF-001": RuleSQL(1, True, EXACT_NOTE, _spoofed),
    "TF-SPOOF-002": RuleSQL(1, True, DISTINCT_NOTE, _spoofed_campaign),
    "TF-WANGIRI-001": RuleSQL(2, True, DISTINCT_NOTE, _wangiri),
    "TF-WANGIRI-002": RuleSQL(1, True, "exact (the ring step's distinct() as a range self-join)", _wangiri_callback),
    "TF-WANGIRI-003": RuleSQL(1, True, "exact (premium_rate() calls phonenumbers from DuckDB)",
                              _wangiri_callback_range),
}
ALL_EXACT_CAVEAT = ("The SQL compares phone numbers as written, without E.164 normalisation, and checks no "
                    "rejects: exact for inputs whose numbers are already E.164 and that have no bad rows, "
                    "as the generator writes them.")


@dataclass(frozen=True)
class SqlPack:
    """The SQL of one rule pack: a RuleSQL per rule id, the caveat that holds for all of them, and the
    DuckDB functions the queries call. bench/bench_batch.py --pack picks one (this module's ``SHIPPED``,
    bench/other_sql.py's ``OTHER``); the queries read the views of ``load_statements``."""

    rule_sql: dict[str, RuleSQL]
    caveat: str
    register: Callable[[Any], None]  # (duckdb connection) -> None

    def status(self, rp: Any) -> str:
        """``exact``, ``approx``, ``no SQL`` or why the SQL is stale for this rule plan."""
        spec = self.rule_sql.get(rp.id)
        if spec is None:
            return "no SQL"
        if spec.version != rp.rule.version:
            return f"SQL written for v{spec.version}, rule is v{rp.rule.version}"
        return "exact" if spec.exact else "approx"

    def candidates(self, plan: Any, rp: Any) -> str:
        """SELECT id, k, t, seq of every match of the rule, before suppression."""
        return self.rule_sql[rp.id].candidates(plan, rp)

    def emitted(self, plan: Any, rp: Any) -> str:
        """SELECT id of every alert the rule emits after suppression."""
        return suppressed(self.candidates(plan, rp), rp.suppress_ns)


SHIPPED = SqlPack(RULE_SQL, ALL_EXACT_CAVEAT, register_functions)
sql_status = SHIPPED.status
candidates_sql = SHIPPED.candidates
emitted_sql = SHIPPED.emitted
