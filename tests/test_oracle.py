"""An independent oracle for the batch executor (docs/design.md §4-§5).

Every rule kind of the language is written twice: once as a rule of a small
pack (ids ``ORC-*``, no ``suppress``) run by :class:`fraudrules.executors.batch.BatchExecutor`,
and once as DuckDB SQL over the same CSV files, read back with pandas as raw
text and typed in SQL. Both must find exactly the same set of triggering
record ids (matches before suppression) on ~110k generated records; for
sequences, also the same evidence chain (docs/design.md §5: the latest r(k-1), then
the latest r(k-2) given it).

The data is built to hit the boundaries: timestamps on whole minutes (many
exact ties, many pairs exactly a window apart), some one second either side,
some written in UTC (``Z``) so that ties cross offsets; phone numbers written
as E.164, locally (``138...``) or with spaces; zero durations; round amounts
and amounts a cent either side of every threshold; nulls in every field that
a rule reads; rows shuffled so that ties are broken by file position.

How the SQL encodes §5:

- total order: ``pos`` = rank by (ts, input index, row), inputs in the order
  the engine reads a directory (``call.csv`` before ``payment.csv``);
- window aggregates cover (ts_r - w, ts_r] and only records at or before r:
  either a self-join on the key with ``l.ts > r.ts - w AND l.pos <= r.pos``, or
  a RANGE frame ``[ts_r - w + 1us, ts_r]`` (TIMESTAMPTZ has microsecond
  resolution, so that is exactly ``ts > ts_r - w``) minus the ties that come
  later in ``pos`` (a second window over (key, ts) ``ROWS 1 FOLLOWING ..``);
- two-valued logic: every predicate that may be null is ``coalesce``d to
  false before ``NOT`` or use;
- numbers: amounts are DECIMAL for sums (the engine sums exactly, scaled), and
  DOUBLE parsed from the text for cross-step arithmetic (the engine's float64:
  ``0.9 * 19784.00`` is 17805.600000000002, so a forward of exactly 17805.60
  is *not* ``>= 0.9 * inflow.amount``; one record of this data depends on it).
"""

from __future__ import annotations

import shutil
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from fraudrules.executors.batch import BatchExecutor
from fraudrules.io.records import RecordSet, parse_inputs, read_inputs
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.plan import compile_pack

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "rules"
SEED = 20260301
T0 = int(pd.Timestamp("2026-03-01T00:00:00+08:00").timestamp())
SPAN_MIN = 3 * 24 * 60  # three days of whole minutes
N_SUBS, N_ACCTS, N_MULES = 2000, 3000, 200


# ----------------------------------------------------------------------------- data


def _sec_jitter(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mostly whole minutes (ties, exact window distances), some a second either side."""
    return rng.choice([0, 30, 59, 1], size=n, p=[0.75, 0.1, 0.1, 0.05])


def _fmt_ts(epoch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    t = pd.to_datetime(epoch, unit="s", utc=True)
    local = (t + pd.Timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S+08:00").to_numpy()
    utc = t.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()
    return np.where(rng.random(len(epoch)) < 0.1, utc, local)


def _written_phones(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Chinese mobiles written as E.164 (92%), locally (5%) or with spaces (3%)."""
    out = values.astype(object).copy()
    r = rng.random(len(out))
    for i in np.flatnonzero([isinstance(v, str) and v.startswith("+86138") for v in out]):
        v = out[i]
        if r[i] < 0.05:
            out[i] = v[3:]
        elif r[i] < 0.08:
            out[i] = f"{v[:3]} {v[3:6]} {v[6:10]} {v[10:]}"
    return out


def _nullify(values: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    out = values.astype(object).copy()
    out[rng.random(len(out)) < p] = ""
    return out


def _durations(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.random(n)
    return np.select(
        [kind < 0.2, kind < 0.5, kind < 0.6],
        [0, rng.integers(1, 60, n), rng.choice([5, 6, 14, 15, 60, 599, 600, 601], n)],
        rng.integers(61, 3601, n),
    )


def _answered(rng: np.random.Generator, duration: np.ndarray) -> np.ndarray:
    yes = np.where(duration > 0, rng.random(len(duration)) < 0.97, rng.random(len(duration)) < 0.1)
    text = np.where(yes, rng.choice(["true", "TRUE", "yes", "1"], len(yes)),
                    rng.choice(["false", "False", "no", "0"], len(yes))).astype(object)
    text[rng.random(len(yes)) < 0.03] = ""
    return text


def _amount_text(amount: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cents = np.round(amount * 100).astype(np.int64)
    out = np.array([f"{c // 100}.{c % 100:02d}" for c in cents], dtype=object)
    whole = (cents % 100 == 0) & (rng.random(len(cents)) < 0.5)
    out[whole] = [str(c // 100) for c in cents[whole]]
    return out


def generate(out: Path) -> dict[str, int]:
    rng = np.random.default_rng(SEED)
    subs = np.array([f"+86138{d:08d}" for d in rng.choice(10**8, N_SUBS, replace=False)], dtype=object)
    foreign = np.array(
        [f"+85512{d:06d}" for d in rng.choice(10**6, 150, replace=False)]  # Cambodia
        + [f"+88213{d:06d}" for d in rng.choice(10**6, 20, replace=False)]  # IRSF ranges ...
        + [f"+88216{d:06d}" for d in rng.choice(10**6, 15, replace=False)]
        + [f"+2327{d:07d}" for d in rng.choice(10**7, 10, replace=False)]
        + [f"+6913{d:04d}" for d in rng.choice(10**4, 5, replace=False)]
        + [f"+88234{d:06d}" for d in rng.choice(10**6, 5, replace=False)]
        + [f"+88215{d:06d}" for d in rng.choice(10**6, 10, replace=False)]  # ... and near misses
        + [f"+2326{d:07d}" for d in rng.choice(10**7, 10, replace=False)]
        + [f"+8821{d:01d}" for d in range(3)]
        + [f"+44770090{d:04d}" for d in rng.choice(10**4, 20, replace=False)]
        + [f"+1202555{d:04d}" for d in rng.choice(10**4, 20, replace=False)],
        dtype=object,
    )
    banks = np.array(["95588", "95533", "95599", "95566", "95559"], dtype=object)
    other_short = np.array(["10086", "110", "955880", "9558"], dtype=object)

    calls: list[dict[str, np.ndarray]] = []

    def add_calls(minute, caller, callee, direction, duration, answered=None):
        n = len(minute)
        calls.append(dict(
            t=T0 + minute.astype(np.int64) * 60 + _sec_jitter(rng, n),
            caller=np.asarray(caller, dtype=object), callee=np.asarray(callee, dtype=object),
            direction=np.asarray(direction, dtype=object), duration=np.asarray(duration),
            answered=_answered(rng, np.asarray(duration)) if answered is None else answered,
        ))

    # ordinary outgoing and incoming calls
    n = 27000
    kind = rng.random(n)
    callee = np.select([kind < 0.75, kind < 0.85, kind < 0.96],
                       [rng.choice(subs, n), rng.choice(foreign, n), rng.choice(banks, n)],
                       rng.choice(other_short, n))
    add_calls(rng.integers(0, SPAN_MIN, n), rng.choice(subs, n), callee, np.full(n, "out"), _durations(rng, n))
    n = 21000
    caller = np.where(rng.random(n) < 0.65, rng.choice(subs, n), rng.choice(foreign, n))
    add_calls(rng.integers(0, SPAN_MIN, n), caller, rng.choice(subs, n), np.full(n, "in"), _durations(rng, n))
    # dialers: bursts of short calls to a small pool of numbers (repeats matter for distinct)
    for dialer in rng.choice(subs, 30, replace=False):
        pool = rng.choice(subs, 20, replace=False)
        for _ in range(12):
            k = rng.poisson(25)
            fresh = rng.random(k) < 0.3
            callee = np.where(fresh, rng.choice(subs, k), rng.choice(pool, k))
            direction = np.where(rng.random(k) < 0.05, "", "out")
            add_calls(rng.integers(0, SPAN_MIN - 60) + rng.integers(0, 45, k), np.full(k, dialer), callee,
                      direction, rng.integers(0, 25, k))
    # one-ring bursts from abroad
    for caller in rng.choice(foreign, 20, replace=False):
        for _ in range(15):
            k = rng.poisson(20)
            duration = np.where(rng.random(k) < 0.7, 0, rng.integers(0, 8, k))
            answered = np.where(rng.random(k) < 0.88, "false", "true").astype(object)
            answered[rng.random(k) < 0.05] = ""
            add_calls(rng.integers(0, SPAN_MIN - 30) + rng.integers(0, 20, k), np.full(k, caller),
                      rng.choice(subs, k), np.full(k, "in"), duration, answered)
    # scam calls: a long call from abroad, then (below) a payment by the callee
    n_scam = 3000
    victim = rng.integers(0, N_SUBS, n_scam)
    scam_min = rng.integers(0, SPAN_MIN - 200, n_scam)
    scam_dur = np.where(rng.random(n_scam) < 0.2, rng.choice([599, 600, 601], n_scam), rng.integers(300, 2400, n_scam))
    scam_caller = np.where(rng.random(n_scam) < 0.9, rng.choice(foreign[:150], n_scam), rng.choice(subs, n_scam))
    scam_dir = np.where(rng.random(n_scam) < 0.95, "in", "out")
    add_calls(scam_min, scam_caller, subs[victim], scam_dir, scam_dur, np.full(n_scam, "true", dtype=object))
    # verification calls to the bank, some between the scam call and the payment
    sel = np.flatnonzero(rng.random(n_scam) < 0.5)
    add_calls(scam_min[sel] + rng.integers(0, 75, len(sel)), subs[victim[sel]], rng.choice(banks, len(sel)),
              np.full(len(sel), "out"), rng.integers(30, 300, len(sel)))

    c = {k: np.concatenate([b[k] for b in calls]) for k in calls[0]}
    nc = len(c["t"])
    perm = rng.permutation(nc)
    call_df = pd.DataFrame({
        "id": [f"c{i:06d}" for i in range(nc)],
        "ts": _fmt_ts(c["t"][perm], rng),
        "caller": _nullify(_written_phones(c["caller"][perm], rng), rng, 0.01),
        "callee": _nullify(_written_phones(c["callee"][perm], rng), rng, 0.01),
        "direction": _nullify(c["direction"][perm], rng, 0.01),
        "duration": _nullify(c["duration"][perm].astype(str), rng, 0.01),
        "answered": c["answered"][perm],
    })

    # payments
    accts = np.array([f"AC{i:05d}" for i in range(N_ACCTS)], dtype=object)
    phone_of = subs[np.arange(N_ACCTS) % N_SUBS]
    fav = rng.integers(0, N_ACCTS, (N_ACCTS, 4))
    mules = rng.choice(N_ACCTS, N_MULES, replace=False)
    countries = np.array(["CN", "SG", "HK", "MM", "KP", "IR", ""], dtype=object)
    country_p = [0.85, 0.04, 0.03, 0.02, 0.01, 0.01, 0.04]
    pays: list[dict[str, np.ndarray]] = []

    def add_pays(t, payer, payee, amount, country=None):
        n = len(t)
        pays.append(dict(t=np.asarray(t, dtype=np.int64), payer=np.asarray(payer), payee=np.asarray(payee),
                         amount=np.round(np.asarray(amount, dtype=np.float64), 2),
                         country=rng.choice(countries, n, p=country_p) if country is None else country))

    def minute_t(minute):
        return T0 + np.asarray(minute, dtype=np.int64) * 60 + _sec_jitter(rng, len(minute))

    n = 26000
    payer = rng.integers(0, N_ACCTS, n)
    payee = np.where(rng.random(n) < 0.6, fav[payer, rng.integers(0, 4, n)], rng.integers(0, N_ACCTS, n))
    kind = rng.random(n)
    amount = np.select(
        [kind < 0.15, kind < 0.25],
        [rng.choice([100, 500, 1000, 2000, 5000, 10000, 20000, 30000, 50000], n),
         rng.choice([4999.99, 5000.01, 9999.99, 10000.01, 19999.99, 29999.99, 44999.99, 49999.99], n)],
        np.minimum(np.round(rng.lognormal(7.5, 1.4, n), 2), 200000),
    )
    add_pays(minute_t(rng.integers(0, SPAN_MIN, n)), payer, payee, amount)
    # structuring: episodes of payments just under 50,000 spread over about a day
    near = np.array([44999.99, 45000, 45000.01, 46000.5, 47500, 49999.99, 50000])
    for acct in rng.choice(N_ACCTS, 80, replace=False):
        for _ in range(10):
            k = rng.integers(2, 7)
            amount = np.where(rng.random(k) < 0.5, rng.choice(near, k), rng.uniform(44000, 50500, k))
            add_pays(minute_t(rng.integers(0, SPAN_MIN - 1800) + rng.integers(0, 1800, k)),
                     np.full(k, acct), fav[acct, rng.integers(0, 4, k)], amount)
    # pass-through: V -> M, then M -> N some minutes later (N == V: a refund)
    n = 3000
    v, m = rng.integers(0, N_ACCTS, n), rng.choice(mules, n)
    nxt = np.where(rng.random(n) < 0.1, v, rng.integers(0, N_ACCTS, n))
    x = np.where(rng.random(n) < 0.2, rng.choice([5000, 4999.99, 10000, 10000.1], n),
                 np.round(rng.uniform(3000, 30000, n), 2))
    t_in = rng.integers(0, SPAN_MIN - 200, n)
    lag = np.where(rng.random(n) < 0.25, rng.choice([0, 119, 120, 121], n), rng.integers(0, 140, n))
    add_pays(minute_t(t_in), v, m, x)
    add_pays(minute_t(t_in + lag), m, nxt, x * rng.choice([1, 0.95, 0.9, 0.8999, 0.85, 0.8, 0.5, 1.01], n))
    # scam payments by the victim of each scam call, a few minutes later
    acct = victim  # account i has phone subs[i % N_SUBS]
    lag = np.where(rng.random(n_scam) < 0.25, rng.choice([0, 59, 60, 61], n_scam), rng.integers(0, 80, n_scam))
    kind = rng.random(n_scam)
    amount = np.select([kind < 0.3, kind < 0.4], [10 * scam_dur, 10 * scam_dur - 0.01],
                       np.round(rng.uniform(1000, 50000, n_scam), 2))
    payee = np.where(rng.random(n_scam) < 0.7, rng.choice(mules, n_scam),
                     np.where(rng.random(n_scam) < 0.5, fav[acct, 0], rng.integers(0, N_ACCTS, n_scam)))
    t_pay = scam_min + lag
    add_pays(minute_t(t_pay), acct, payee, amount)
    # ... some of it forwarded by the payee
    sel = np.flatnonzero(rng.random(n_scam) < 0.4)
    add_pays(minute_t(t_pay[sel] + rng.integers(0, 90, len(sel))), payee[sel], rng.integers(0, N_ACCTS, len(sel)),
             amount[sel] * rng.choice([1, 0.6, 0.5, 0.49, 0.3], len(sel)))
    # small payments by mule accounts
    n = 1500
    add_pays(minute_t(rng.integers(0, SPAN_MIN, n)), rng.choice(mules, n), rng.integers(0, N_ACCTS, n),
             rng.uniform(10, 600, n))
    # exactly a window apart: just-under payments at +0, +12h, +24h (the first leaves the 24h
    # window exactly when the third arrives) and standing orders to one payee exactly a day apart
    n = 60
    acct = rng.integers(0, N_ACCTS, n)
    start = rng.integers(0, SPAN_MIN - 1440, n)
    for offset in (0, 720, 1440):
        add_pays(T0 + (start + offset) * 60, acct, fav[acct, 0], rng.choice([45000, 46000.5, 49999.99], n))
    n = 300
    acct, payee = rng.integers(0, N_ACCTS, n), rng.integers(0, N_ACCTS, n)
    start = rng.integers(0, SPAN_MIN - 1440, n)
    for offset in (0, 1440):
        add_pays(T0 + (start + offset) * 60, acct, payee, rng.choice([5000, 8000, 12000.5], n))
    # double submissions: the same payment twice in the same second
    n = 300
    acct, payee = rng.integers(0, N_ACCTS, n), rng.integers(0, N_ACCTS, n)
    t = minute_t(rng.integers(0, SPAN_MIN, n))
    for _ in range(2):
        add_pays(t, acct, payee, rng.choice([5000, 9999.99, 20000], n))

    p = {k: np.concatenate([b[k] for b in pays]) for k in pays[0]}
    npay = len(p["t"])
    perm = rng.permutation(npay)
    payer = p["payer"][perm]
    pay_df = pd.DataFrame({
        "id": [f"p{i:06d}" for i in range(npay)],
        "ts": _fmt_ts(p["t"][perm], rng),
        "payer_account": _nullify(accts[payer], rng, 0.01),
        "payer_phone": _nullify(_written_phones(phone_of[payer], rng), rng, 0.03),
        "payee_account": _nullify(accts[p["payee"][perm]], rng, 0.01),
        "payee_country": p["country"][perm],
        "amount": _nullify(_amount_text(p["amount"][perm], rng), rng, 0.005),
        "currency": "CNY",
    })
    out.mkdir(parents=True, exist_ok=True)
    call_df.to_csv(out / "call.csv", index=False)
    pay_df.to_csv(out / "payment.csv", index=False)
    return {"call": nc, "payment": npay}


# ----------------------------------------------------------------------------- rules and their SQL


def _list_values(name: str) -> list[str]:
    return [str(v) for v in yaml.safe_load((RULES / "lists" / f"{name}.yaml").read_text())["values"]]


IRSF = _list_values("irsf_ranges")
FATF = _list_values("fatf_high_risk")
BANKS = _list_values("bank_hotlines")


def _starts_any(col: str, prefixes: list[str]) -> str:
    return "(" + " OR ".join(f"starts_with({col}, '{p}')" for p in prefixes) + ")"


def _in(col: str, values: list[str]) -> str:
    return f"{col} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


@dataclass(frozen=True)
class Case:
    rule_id: str
    rule: str  # the rule's YAML body, without the metadata
    sql: str  # one row per triggering record: id, then the evidence ids of the earlier steps


def _single(rule_id: str, stream: str, key: str, where: str, sql: str) -> Case:
    body = f"stream: {stream}\nkey: {key}\nwhere: >-\n" + textwrap.indent(textwrap.dedent(where).strip(), "  ")
    return Case(rule_id, body, textwrap.dedent(sql).strip())


def _sequence(rule_id: str, sequence: str, sql: str) -> Case:
    body = "sequence:\n" + textwrap.indent(textwrap.dedent(sequence).strip(), "  ")
    return Case(rule_id, body, textwrap.dedent(sql).strip())


# count/sum at r with a RANGE frame: [ts_r - w + 1us, ts_r] is (ts_r - w, ts_r] at microsecond
# resolution; the second window removes the ties of r's key and ts that come after r in pos.
def _range_agg(agg: str, key: str, seconds: int) -> str:
    return (f"coalesce({agg} OVER (PARTITION BY {key} ORDER BY ts RANGE BETWEEN "
            f"INTERVAL '{seconds} seconds' - INTERVAL '1 microsecond' PRECEDING AND CURRENT ROW), 0) - "
            f"coalesce({agg} OVER (PARTITION BY {key}, ts ORDER BY pos "
            f"ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING), 0)")


CASES = [
    # 1. lists: longest-prefix list on a phone field; exact list, literal list and not in
    _single("ORC-LIST-001", "call", "caller", 'direction == "out" and callee in @irsf_ranges', f"""
        SELECT id FROM calls
        WHERE caller IS NOT NULL AND direction = 'out' AND {_starts_any('callee', IRSF)}
    """),
    _single("ORC-LIST-002", "payment", "payer_account", """
        payee_country in @fatf_high_risk
        or (payee_country not in ["CN", "SG", "HK"] and amount >= 20000)
    """, f"""
        SELECT id FROM pays
        WHERE payer_account IS NOT NULL
          AND ({_in('payee_country', FATF)}
               OR coalesce(payee_country NOT IN ('CN', 'SG', 'HK') AND amount >= 20000, false))
    """),
    # 2. count with where (RANGE frame) and without (self-join), on a phone key written three ways
    _single("ORC-COUNT-001", "call", "caller", """
        direction == "in" and not answered and duration <= 5s
        and count(10m, where=direction == "in" and not answered and duration <= 5s) >= 6
    """, f"""
        WITH b AS (
            SELECT *, coalesce(direction = 'in' AND NOT coalesce(answered, false) AND duration <= 5, false) AS ok
            FROM calls WHERE caller IS NOT NULL)
        SELECT id FROM (
            SELECT id, ok, {_range_agg('count(*) FILTER (WHERE ok)', 'caller', 600)} AS n FROM b)
        WHERE ok AND n >= 6
    """),
    _single("ORC-COUNT-002", "payment", "payer_phone", "count(1h) >= 3", """
        SELECT r.id FROM pays r
        JOIN pays l ON l.payer_phone = r.payer_phone AND l.ts > r.ts - INTERVAL '3600 seconds' AND l.pos <= r.pos
        WHERE r.payer_phone IS NOT NULL
        GROUP BY r.id HAVING count(*) >= 3
    """),
    # 3. distinct with where
    _single("ORC-DISTINCT-001", "call", "caller", """
        direction == "out" and duration < 15s
        and distinct(callee, 30m, where=direction == "out" and duration < 15s) >= 8
    """, """
        SELECT r.id FROM calls r
        JOIN calls l ON l.caller = r.caller AND l.ts > r.ts - INTERVAL '1800 seconds' AND l.pos <= r.pos
        WHERE r.caller IS NOT NULL AND r.direction = 'out' AND r.duration < 15
        GROUP BY r.id
        HAVING count(DISTINCT l.callee) FILTER (WHERE l.direction = 'out' AND l.duration < 15) >= 8
    """),
    # 4. sum with where (RANGE frame, exact decimals); the sum of nothing is 0
    _single("ORC-SUM-001", "payment", "payer_account", """
        amount >= 45000 and amount < 50000
        and sum(amount, 24h, where=amount >= 45000 and amount < 50000) >= 135000
    """, f"""
        WITH b AS (SELECT *, coalesce(amount >= 45000 AND amount < 50000, false) AS ok
                   FROM pays WHERE payer_account IS NOT NULL)
        SELECT id FROM (
            SELECT id, ok, {_range_agg('sum(amount) FILTER (WHERE ok)', 'payer_account', 86400)} AS s FROM b)
        WHERE ok AND s >= 135000
    """),
    _single("ORC-SUM-002", "payment", "payer_phone", """
        amount >= 30000 and sum(amount, 6h, where=payee_country != "CN") == 0
    """, """
        SELECT r.id FROM pays r
        JOIN pays l ON l.payer_phone = r.payer_phone AND l.ts > r.ts - INTERVAL '21600 seconds' AND l.pos <= r.pos
        WHERE r.payer_phone IS NOT NULL AND r.amount >= 30000
        GROUP BY r.id
        HAVING coalesce(sum(l.amount) FILTER (WHERE l.payee_country != 'CN'), 0) = 0
    """),
    # 5. avg / min / max; of nothing they are null, and a comparison with null is false
    _single("ORC-AVG-001", "payment", "payer_account", """
        avg(amount, 6h, where=payee_country == "CN") >= 20000
    """, """
        SELECT r.id FROM pays r
        JOIN pays l ON l.payer_account = r.payer_account AND l.ts > r.ts - INTERVAL '21600 seconds'
                   AND l.pos <= r.pos
        WHERE r.payer_account IS NOT NULL
        GROUP BY r.id
        HAVING count(l.amount) FILTER (WHERE l.payee_country = 'CN') > 0
           AND sum(l.amount) FILTER (WHERE l.payee_country = 'CN')
               >= 20000 * count(l.amount) FILTER (WHERE l.payee_country = 'CN')
    """),
    _single("ORC-MIN-001", "call", "callee", """
        direction == "in" and min(duration, 1h, where=direction == "in" and answered) >= 600
    """, """
        SELECT r.id FROM calls r
        JOIN calls l ON l.callee = r.callee AND l.ts > r.ts - INTERVAL '3600 seconds' AND l.pos <= r.pos
        WHERE r.callee IS NOT NULL AND r.direction = 'in'
        GROUP BY r.id
        HAVING min(l.duration) FILTER (WHERE l.direction = 'in' AND l.answered) >= 600
    """),
    _single("ORC-MAX-001", "payment", "payer_account", """
        amount >= 20000 and not (max(amount, 6h, where=payee_country != "CN") < 5000)
    """, """
        SELECT r.id FROM pays r
        JOIN pays l ON l.payer_account = r.payer_account AND l.ts > r.ts - INTERVAL '21600 seconds'
                   AND l.pos <= r.pos
        WHERE r.payer_account IS NOT NULL AND r.amount >= 20000
        GROUP BY r.id
        HAVING NOT coalesce(max(l.amount) FILTER (WHERE l.payee_country != 'CN') < 5000, false)
    """),
    # 6. is_new: no earlier record (in the total order) of the key, in the window, passing where=
    _single("ORC-NEW-001", "payment", "payer_account", """
        amount >= 5000 and is_new(payee_account, 24h, where=amount >= 100)
    """, """
        SELECT r.id FROM pays r
        WHERE r.payer_account IS NOT NULL AND r.amount >= 5000 AND r.payee_account IS NOT NULL
          AND NOT EXISTS (
              SELECT 1 FROM pays l
              WHERE l.payer_account = r.payer_account AND l.payee_account = r.payee_account
                AND l.pos < r.pos AND l.ts > r.ts - INTERVAL '86400 seconds' AND l.amount >= 100)
    """),
    # 7. two steps across streams, with a condition on the first step's record
    _sequence("ORC-SEQ-001", """
        within: 1h
        steps:
          - as: call
            stream: call
            key: callee
            where: direction == "in" and duration >= 10m and not startswith(caller, "+86")
          - as: pay
            stream: payment
            key: payer_phone
            where: amount >= 5000 and amount >= 10 * call.duration
    """, """
        WITH c AS (SELECT * FROM calls WHERE callee IS NOT NULL AND direction = 'in' AND duration >= 600
                                        AND NOT coalesce(starts_with(caller, '+86'), false)),
        p AS (SELECT * FROM pays WHERE payer_phone IS NOT NULL AND amount >= 5000)
        SELECT p.id, arg_max(c.id, c.pos) FROM c
        JOIN p ON p.payer_phone = c.callee AND c.pos < p.pos AND p.ts <= c.ts + INTERVAL '3600 seconds'
              AND p.amount_f >= 10 * c.duration
        GROUP BY p.id
    """),
    # 8. follow the money: the second step's payer is the first step's payee
    _sequence("ORC-FOLLOW-001", """
        within: 2h
        steps:
          - as: inflow
            stream: payment
            key: payee_account
            where: amount >= 5000
          - as: outflow
            stream: payment
            key: payer_account
            follows: inflow.payee_account
            where: amount >= 0.9 * inflow.amount and payee_account != inflow.payer_account
    """, """
        SELECT o.id, arg_max(i.id, i.pos) FROM pays i
        JOIN pays o ON o.payer_account = i.payee_account AND i.pos < o.pos
                   AND o.ts <= i.ts + INTERVAL '7200 seconds'
                   AND o.amount_f >= 0.9 * i.amount_f AND o.payee_account != i.payer_account
        WHERE i.payee_account IS NOT NULL AND i.amount >= 5000
        GROUP BY o.id
    """),
    # 9. unless: a verification call strictly between the ends cancels; with a step aggregate
    _sequence("ORC-UNLESS-001", """
        within: 1h
        steps:
          - as: call
            stream: call
            key: callee
            where: direction == "in" and duration >= 10m and not startswith(caller, "+86")
          - as: pay
            stream: payment
            key: payer_phone
            where: amount >= 5000 and is_new(payee_account, 7d)
        unless:
          stream: call
          key: caller
          where: callee in @bank_hotlines
    """, f"""
        WITH c AS (SELECT * FROM calls WHERE callee IS NOT NULL AND direction = 'in' AND duration >= 600
                                        AND NOT coalesce(starts_with(caller, '+86'), false)),
        p AS (SELECT * FROM pays r WHERE payer_phone IS NOT NULL AND amount >= 5000 AND payee_account IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM pays l WHERE l.payer_phone = r.payer_phone
                              AND l.payee_account = r.payee_account AND l.pos < r.pos
                              AND l.ts > r.ts - INTERVAL '604800 seconds')),
        u AS (SELECT * FROM calls WHERE caller IS NOT NULL AND {_in('callee', BANKS)})
        SELECT p.id, arg_max(c.id, c.pos) FROM c
        JOIN p ON p.payer_phone = c.callee AND c.pos < p.pos AND p.ts <= c.ts + INTERVAL '3600 seconds'
        WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.caller = c.callee AND u.pos > c.pos AND u.pos < p.pos)
        GROUP BY p.id
    """),
    # 9b. absence: a large payment after a foreign call, then no call to the bank within 30 minutes,
    # known once the data's event time passed the deadline
    _sequence("ORC-ABSENT-001", """
        within: 1h
        steps:
          - as: call
            stream: call
            key: callee
            where: direction == "in" and not startswith(caller, "+86")
          - as: pay
            stream: payment
            key: payer_phone
            where: amount >= 5000
        absent:
          as: back
          stream: call
          key: caller
          within: 30m
          where: callee in @bank_hotlines
    """, f"""
        WITH c AS (SELECT * FROM calls WHERE callee IS NOT NULL AND direction = 'in'
                                        AND NOT coalesce(starts_with(caller, '+86'), false)),
        p AS (SELECT * FROM pays WHERE payer_phone IS NOT NULL AND amount >= 5000),
        u AS (SELECT * FROM calls WHERE caller IS NOT NULL AND {_in('callee', BANKS)}),
        m AS (SELECT p.id, p.pos, p.ts, p.payer_phone, arg_max(c.id, c.pos) AS cid, max(c.pos) AS cpos FROM c
              JOIN p ON p.payer_phone = c.callee AND c.pos < p.pos AND p.ts <= c.ts + INTERVAL '3600 seconds'
              GROUP BY p.id, p.pos, p.ts, p.payer_phone)
        SELECT m.id, m.cid FROM m
        WHERE m.ts + INTERVAL '1800 seconds' < (SELECT max(ts) FROM (SELECT ts FROM calls
                                                                UNION ALL SELECT ts FROM pays))
          AND NOT EXISTS (SELECT 1 FROM u WHERE u.caller = m.payer_phone AND u.pos > m.pos
                                            AND u.ts <= m.ts + INTERVAL '1800 seconds')
    """),
    _sequence("ORC-UNLESS-002", """
        within: 2h
        steps:
          - as: a
            stream: payment
            key: payer_account
            where: amount >= 5000
          - as: b
            stream: payment
            key: payer_account
            follows: a.payee_account
            where: amount >= 0.8 * a.amount
        unless:
          stream: payment
          key: payer_account
          where: amount < 300
          on: b
    """, """
        WITH u AS (SELECT * FROM pays WHERE payer_account IS NOT NULL AND amount < 300)
        SELECT b.id, arg_max(a.id, a.pos) FROM pays a
        JOIN pays b ON b.payer_account = a.payee_account AND a.pos < b.pos
                   AND b.ts <= a.ts + INTERVAL '7200 seconds' AND b.amount_f >= 0.8 * a.amount_f
        WHERE a.payer_account IS NOT NULL AND a.amount >= 5000
          AND NOT EXISTS (SELECT 1 FROM u WHERE u.payer_account = b.payer_account
                          AND u.pos > a.pos AND u.pos < b.pos)
        GROUP BY b.id
    """),
    # 10. three steps: same entity then follow the money; and three of one stream (order by pos)
    _sequence("ORC-SEQ3-001", """
        within: 2h
        steps:
          - as: call
            stream: call
            key: callee
            where: direction == "in" and duration >= 5m and not startswith(caller, "+86")
          - as: pay
            stream: payment
            key: payer_phone
            where: amount >= 3000
          - as: fwd
            stream: payment
            key: payer_account
            follows: pay.payee_account
            where: amount >= 0.5 * pay.amount
    """, """
        WITH c AS (SELECT * FROM calls WHERE callee IS NOT NULL AND direction = 'in' AND duration >= 300
                                        AND NOT coalesce(starts_with(caller, '+86'), false)),
        p AS (SELECT * FROM pays WHERE payer_phone IS NOT NULL AND amount >= 3000)
        SELECT f.id, arg_max(p.id, p.pos * 1000000 + c.pos), arg_max(c.id, p.pos * 1000000 + c.pos) FROM c
        JOIN p ON p.payer_phone = c.callee AND c.pos < p.pos
        JOIN pays f ON f.payer_account = p.payee_account AND p.pos < f.pos
                   AND f.ts <= c.ts + INTERVAL '7200 seconds' AND f.amount_f >= 0.5 * p.amount_f
        GROUP BY f.id
    """),
    _sequence("ORC-SEQ3-002", """
        within: 3h
        steps:
          - as: p1
            stream: payment
            key: payer_account
            where: amount >= 1000
          - as: p2
            stream: payment
            key: payer_account
            where: amount > p1.amount
          - as: p3
            stream: payment
            key: payer_account
            where: amount > p2.amount
    """, """
        SELECT p3.id, arg_max(p2.id, p2.pos * 1000000 + p1.pos), arg_max(p1.id, p2.pos * 1000000 + p1.pos)
        FROM pays p1
        JOIN pays p2 ON p2.payer_account = p1.payer_account AND p1.pos < p2.pos AND p2.amount_f > p1.amount_f
        JOIN pays p3 ON p3.payer_account = p2.payer_account AND p2.pos < p3.pos AND p3.amount_f > p2.amount_f
                    AND p3.ts <= p1.ts + INTERVAL '10800 seconds'
        WHERE p1.payer_account IS NOT NULL AND p1.amount >= 1000
        GROUP BY p3.id
    """),
    # 13. median: the middle value, or the exact mean of the two middle ones (DECIMAL(18, 4) holds the mean of
    # two cent amounts exactly; DuckDB's median of a DECIMAL(18, 2) would cut it to cents)
    _single("ORC-MEDIAN-001", "payment", "payer_account", "amount >= 2 * median(amount, 6h)", """
        SELECT r.id FROM pays r
        JOIN pays l ON l.payer_account = r.payer_account AND l.ts > r.ts - INTERVAL '21600 seconds' AND l.pos <= r.pos
        WHERE r.payer_account IS NOT NULL
        GROUP BY r.id, r.amount_f
        HAVING r.amount_f >= 2 * CAST(median(CAST(l.amount AS DECIMAL(18, 4))) AS DOUBLE)
    """),
    # 14. an earlier step's aggregates in a later step: at the earlier record, over its key (RANGE frames per row)
    # another stream's records by its own key field: calls placed by the payer's phone before the payment
    _single("ORC-OTHER-001", "payment", "payer_phone", """
        count(2h, stream=call, key=caller, where=direction == "out") >= 2
        and sum(duration, 2h, stream=call, key=caller) >= 60s
    """, """
        SELECT p.id FROM pays p
        WHERE p.payer_phone IS NOT NULL
          AND (SELECT count(*) FROM calls c WHERE c.caller = p.payer_phone AND c.direction = 'out'
               AND c.ts > p.ts - INTERVAL '7200 seconds' AND c.ts <= p.ts AND c.pos <= p.pos) >= 2
          AND (SELECT coalesce(sum(c.duration), 0) FROM calls c WHERE c.caller = p.payer_phone
               AND c.ts > p.ts - INTERVAL '7200 seconds' AND c.ts <= p.ts AND c.pos <= p.pos) >= 60
    """),
    # a key of two fields: windows per (caller, callee) pair, none where either is null
    _single("ORC-PAIR-001", "call", "[caller, callee]", """
        direction == "out" and count(1h, where=direction == "out") >= 2
    """, f"""
        SELECT id FROM (
            SELECT id, direction,
                   {_range_agg("count(*) FILTER (WHERE direction = 'out')", 'caller, callee', 3600)} AS n
            FROM calls WHERE caller IS NOT NULL AND callee IS NOT NULL)
        WHERE direction = 'out' AND n >= 2
    """),
    # a window over two key fields: the payments in which the account is payer or payee, each once
    _single("ORC-ANY-001", "payment", "payer_account", """
        count(6h, key=[payer_account, payee_account]) >= 3
    """, f"""
        WITH e AS (
            SELECT id, pos, ts, payer_account AS acct, 1 AS as_payer FROM pays WHERE payer_account IS NOT NULL
            UNION ALL
            SELECT id, pos, ts, payee_account AS acct, 0 AS as_payer FROM pays
            WHERE payee_account IS NOT NULL AND (payer_account IS NULL OR payee_account <> payer_account))
        SELECT id FROM (SELECT id, as_payer, {_range_agg('count(*)', 'acct', 21600)} AS n FROM e)
        WHERE as_payer = 1 AND n >= 3
    """),
    _sequence("ORC-STEPAGG-001", """
        within: 2h
        steps:
          - as: fanin
            stream: payment
            key: payee_account
            where: amount >= 1000
          - as: out
            stream: payment
            key: payer_account
            follows: fanin.payee_account
            where: amount >= 0.8 * fanin.sum(amount, 6h, where=amount >= 1000) and fanin.count(6h) >= 2
    """, f"""
        WITH f AS (
            SELECT id, pos, ts, payee_account, amount,
                   {_range_agg('sum(amount) FILTER (WHERE amount >= 1000)', 'payee_account', 21600)} AS s,
                   {_range_agg('count(*)', 'payee_account', 21600)} AS n
            FROM pays WHERE payee_account IS NOT NULL)
        SELECT o.id, arg_max(f.id, f.pos) FROM f
        JOIN pays o ON o.payer_account = f.payee_account AND f.pos < o.pos
                   AND o.ts <= f.ts + INTERVAL '7200 seconds'
                   AND o.amount_f >= 0.8 * CAST(f.s AS DOUBLE) AND f.n >= 2
        WHERE f.amount >= 1000
        GROUP BY o.id
    """),
    # 15. a repeated first step (runs: 3): a candidate ends a run when it has two earlier candidates of its key
    # (LAG over the candidates); within counts from the run's first record, and the evidence is rn
    _sequence("ORC-RUN-001", """
        within: 2h
        steps:
          - as: big
            stream: payment
            key: payer_account
            runs: 3
            where: amount >= 1000
          - as: small
            stream: payment
            key: payer_account
            where: amount < 100
    """, """
        WITH c AS (
            SELECT id, pos, ts, payer_account,
                   lag(ts, 2) OVER (PARTITION BY payer_account ORDER BY pos) AS first_ts
            FROM pays WHERE payer_account IS NOT NULL AND amount >= 1000)
        SELECT s.id, arg_max(c.id, c.pos) FROM c
        JOIN pays s ON s.payer_account = c.payer_account AND c.pos < s.pos
                   AND s.ts <= c.first_ts + INTERVAL '7200 seconds'
        WHERE c.first_ts IS NOT NULL AND s.amount < 100
        GROUP BY s.id
    """),
    # 16. a window that starts at an earlier step, counting payments to payees new when paid (#10 item 2): per
    # chain, the window is (max(ts - w, call.ts), ts]; the evidence is the latest call whose chain passes
    _sequence("ORC-BOUND-001", """
        within: 1h
        steps:
          - as: call
            stream: call
            key: callee
            where: direction == "in"
          - as: pay
            stream: payment
            key: payer_phone
            where: count(6h, where=ts > call.ts and is_new(payee_account, 24h)) >= 2
    """, """
        WITH c AS (SELECT * FROM calls WHERE callee IS NOT NULL AND direction = 'in'),
        p AS (SELECT r.*, r.payee_account IS NOT NULL AND NOT EXISTS (
                  SELECT 1 FROM pays l
                  WHERE l.payer_phone = r.payer_phone AND l.payee_account = r.payee_account
                    AND l.pos < r.pos AND l.ts > r.ts - INTERVAL '86400 seconds') AS new_payee
              FROM pays r WHERE r.payer_phone IS NOT NULL),
        ch AS (SELECT p.id, p.pos, p.ts, p.payer_phone, c.id AS cid, c.pos AS cpos, c.ts AS cts FROM c
               JOIN p ON p.payer_phone = c.callee AND c.pos < p.pos AND p.ts <= c.ts + INTERVAL '3600 seconds'),
        ok AS (SELECT ch.id, ch.cid, ch.cpos FROM ch
               JOIN p l ON l.payer_phone = ch.payer_phone AND l.ts > ch.ts - INTERVAL '21600 seconds'
                       AND l.pos <= ch.pos AND l.ts > ch.cts AND l.new_payee
               GROUP BY ch.id, ch.cid, ch.cpos HAVING count(*) >= 2)
        SELECT id, arg_max(cid, cpos) FROM ok GROUP BY id
    """),
]


def _rule_yaml(case: Case) -> str:
    head = (f"id: {case.rule_id}\ntitle: Oracle rule {case.rule_id}\nseverity: low\nscore: 1\n"
            "status: stable\nversion: 1\n")
    return head + case.rule + "\n"


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("oracle_data")
    sizes = generate(out)
    assert sum(sizes.values()) >= 100_000
    return out


@pytest.fixture(scope="module")
def pack_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("oracle_pack")
    shutil.copy(RULES / "streams.yaml", root / "streams.yaml")
    (root / "lists").mkdir()
    for name in ("irsf_ranges", "fatf_high_risk", "bank_hotlines"):
        shutil.copy(RULES / "lists" / f"{name}.yaml", root / "lists" / f"{name}.yaml")
    for case in CASES:
        (root / f"{case.rule_id}.yaml").write_text(_rule_yaml(case))
    return root


@dataclass
class EngineRun:
    records: RecordSet
    matches: dict[str, dict[str, tuple[str, ...]]]  # rule id -> trigger id -> evidence ids of earlier steps
    candidates: dict[str, int]  # rule id -> records of the last step's stream with a non-null key


@pytest.fixture(scope="module")
def engine(pack_dir: Path, data_dir: Path) -> EngineRun:
    t = time.perf_counter()
    pack = load_pack(pack_dir)
    plan = compile_pack(pack, "CN")
    records = read_inputs(parse_inputs([str(data_dir)], pack.schema), pack.schema, region="CN")
    t_read = time.perf_counter() - t
    matches, candidates = {}, {}
    ex = BatchExecutor(plan, records)
    for rm in ex.run():
        steps = rm.rule.steps
        ids = [records.tables[sp.stream].columns["id"].values[rows] for sp, rows in zip(steps, rm.rows)]
        found: dict[str, tuple[str, ...]] = {}
        for j in range(rm.n):
            trigger = str(ids[-1][j])
            assert trigger not in found, f"{rm.rule.id}: two matches for record {trigger}"
            # evidence ids of the earlier steps, latest step first (the SQL's column order)
            found[trigger] = tuple(str(ids[s][j]) for s in range(len(steps) - 2, -1, -1))
        matches[rm.rule.id] = found
        last = steps[-1]
        # the executor's tables: a key of several fields is a column it derives (runtime/keys.py)
        candidates[rm.rule.id] = int((~ex.tables[last.stream].columns[last.key].null).sum())
    print(f"\nengine: read {records.total} records in {t_read:.1f}s, "
          f"rules in {time.perf_counter() - t - t_read:.1f}s")
    return EngineRun(records, matches, candidates)


_SQL_SETUP = """
SET TimeZone = 'UTC';
CREATE MACRO phone(x) AS CASE
    WHEN x IS NULL OR x = '' THEN NULL
    WHEN regexp_full_match(replace(x, ' ', ''), '1[0-9]{10}') THEN '+86' || replace(x, ' ', '')
    ELSE replace(x, ' ', '') END;
CREATE MACRO boolean_of(x) AS CASE
    WHEN lower(x) IN ('true', 'yes', '1') THEN true WHEN lower(x) IN ('false', 'no', '0') THEN false END;
CREATE TABLE call_typed AS SELECT
    id, CAST(ts AS TIMESTAMPTZ) AS ts, input_idx, row_no,
    phone(caller) AS caller, phone(callee) AS callee, nullif(direction, '') AS direction,
    CAST(nullif(duration, '') AS INTEGER) AS duration, boolean_of(answered) AS answered
FROM call_raw;
CREATE TABLE pay_typed AS SELECT
    id, CAST(ts AS TIMESTAMPTZ) AS ts, input_idx, row_no,
    nullif(payer_account, '') AS payer_account, phone(payer_phone) AS payer_phone,
    nullif(payee_account, '') AS payee_account, nullif(payee_country, '') AS payee_country,
    CAST(nullif(amount, '') AS DECIMAL(18, 2)) AS amount, CAST(nullif(amount, '') AS DOUBLE) AS amount_f
FROM pay_raw;
CREATE TABLE total_order AS SELECT input_idx, row_no,
    row_number() OVER (ORDER BY ts, input_idx, row_no) - 1 AS pos
FROM (SELECT ts, input_idx, row_no FROM call_typed UNION ALL SELECT ts, input_idx, row_no FROM pay_typed);
CREATE TABLE calls AS SELECT c.*, o.pos FROM call_typed c JOIN total_order o USING (input_idx, row_no);
CREATE TABLE pays AS SELECT p.*, o.pos FROM pay_typed p JOIN total_order o USING (input_idx, row_no);
"""


@pytest.fixture(scope="module")
def db(data_dir: Path):
    con = duckdb.connect()
    for idx, (stream, name) in enumerate((("call", "call_raw"), ("payment", "pay_raw"))):
        raw = pd.read_csv(data_dir / f"{stream}.csv", dtype=str, keep_default_na=False)
        raw["input_idx"] = idx  # call.csv is read before payment.csv (name order)
        raw["row_no"] = np.arange(len(raw))
        con.register(f"{name}_df", raw)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_df")
    con.execute(_SQL_SETUP)
    yield con
    con.close()


# ----------------------------------------------------------------------------- tests


def test_inputs_agree(engine: EngineRun, db) -> None:
    """Before comparing rules: both sides read the same records in the same total order."""
    recs = engine.records
    assert recs.rejects == []
    for stream, table, cols in (("call", "calls", ("caller", "callee")),
                                ("payment", "pays", ("payer_phone", "payer_account"))):
        t = recs.tables[stream]
        want = [r[0] for r in db.execute(f"SELECT id FROM {table} ORDER BY pos").fetchall()]
        got = list(t.columns["id"].values[np.argsort(t.seq)])
        assert got == want, f"{stream}: total order differs"
        pos = np.array([r[0] for r in db.execute(f"SELECT pos FROM {table} ORDER BY pos").fetchall()])
        assert np.array_equal(np.sort(t.seq), pos)
        for col in cols:
            vec = t.columns[col]
            got_vals = set(vec.values[~vec.null].tolist())
            want_vals = {r[0] for r in db.execute(f"SELECT DISTINCT {col} FROM {table} WHERE {col} IS NOT NULL")
                         .fetchall()}
            assert got_vals == want_vals, f"{stream}.{col}: normalised values differ"


def _describe(db, ids: list[str]) -> str:
    rows = []
    for rid in ids[:5]:
        table = "calls" if rid.startswith("c") else "pays"
        rows.append(str(db.execute(f"SELECT * FROM {table} WHERE id = ?", [rid]).fetchone()))
    return "\n  ".join(rows)


@pytest.mark.parametrize("case", CASES, ids=[c.rule_id for c in CASES])
def test_engine_matches_sql(case: Case, engine: EngineRun, db) -> None:
    got = engine.matches[case.rule_id]
    t = time.perf_counter()
    rows = db.execute(case.sql).fetchall()
    elapsed = time.perf_counter() - t
    want = {str(r[0]): tuple(str(x) for x in r[1:]) for r in rows}
    assert len(want) == len(rows), "the SQL must give one row per triggering record"
    n = engine.candidates[case.rule_id]
    print(f"{case.rule_id}: engine {len(got)}, sql {len(want)} of {n} keyed records (sql {elapsed:.2f}s)")
    assert 0 < len(want) < n, "the oracle rule must match some records but not all"
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    assert not missing and not extra, (
        f"{case.rule_id}: {len(missing)} matches only in SQL, {len(extra)} only in the engine\n"
        f"only SQL:\n  {_describe(db, missing)}\nonly engine:\n  {_describe(db, extra)}")
    wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not wrong, f"{case.rule_id}: evidence differs (engine, sql) for {len(wrong)}: {list(wrong.items())[:5]}"


# ----------------------------------------------------------------------------- the data discriminates

# Each entry is the oracle SQL of one rule with one §5 boundary got wrong. The wrong SQL must find
# a different set, or the data does not exercise that boundary and agreement above proves little.
MUTATIONS = [
    # (rule id, the wrong semantics, SQL text, replaced by)
    ("ORC-LIST-001", "a shorter prefix (near misses match)", "'+88213'", "'+8821'"),
    ("ORC-COUNT-001", "window closed at ts_r - w", " - INTERVAL '1 microsecond'", ""),
    ("ORC-COUNT-001", "ties after r in the total order counted", "PARTITION BY caller, ts ORDER BY pos",
     "PARTITION BY caller, ts, pos ORDER BY pos"),
    ("ORC-COUNT-001", "three-valued not (null answered is not 'not answered')", "NOT coalesce(answered, false)",
     "NOT answered"),
    ("ORC-COUNT-002", "window closed at ts_r - w", "l.ts > r.ts -", "l.ts >= r.ts -"),
    ("ORC-COUNT-002", "ties after r counted", "l.pos <= r.pos", "l.ts <= r.ts"),
    ("ORC-DISTINCT-001", "window closed at ts_r - w", "l.ts > r.ts -", "l.ts >= r.ts -"),
    ("ORC-DISTINCT-001", "ties after r counted", "l.pos <= r.pos", "l.ts <= r.ts"),
    ("ORC-SUM-001", "window closed at ts_r - w", " - INTERVAL '1 microsecond'", ""),
    ("ORC-SUM-002", "sum of nothing is null", "coalesce(sum(l.amount) FILTER (WHERE l.payee_country != 'CN'), 0)",
     "sum(l.amount) FILTER (WHERE l.payee_country != 'CN')"),
    ("ORC-AVG-001", "window closed at ts_r - w", "l.ts > r.ts -", "l.ts >= r.ts -"),
    ("ORC-MIN-001", "window closed at ts_r - w", "l.ts > r.ts -", "l.ts >= r.ts -"),
    ("ORC-MAX-001", "three-valued not (max of nothing)",
     "NOT coalesce(max(l.amount) FILTER (WHERE l.payee_country != 'CN') < 5000, false)",
     "NOT (max(l.amount) FILTER (WHERE l.payee_country != 'CN') < 5000)"),
    ("ORC-NEW-001", "earlier means earlier ts (ties ignored)", "l.pos < r.pos", "l.ts < r.ts"),
    ("ORC-NEW-001", "window closed at ts_r - w", "l.ts > r.ts -", "l.ts >= r.ts -"),
    ("ORC-SEQ-001", "within exclusive", "p.ts <= c.ts +", "p.ts < c.ts +"),
    ("ORC-SEQ-001", "steps ordered by ts only (no tie across inputs)", "c.pos < p.pos", "c.ts < p.ts"),
    ("ORC-SEQ-001", "evidence: the earliest chain", "arg_max(c.id, c.pos)", "arg_min(c.id, c.pos)"),
    ("ORC-FOLLOW-001", "within exclusive", "o.ts <= i.ts +", "o.ts < i.ts +"),
    ("ORC-FOLLOW-001", "steps ordered by ts only (ties in either row order)", "i.pos < o.pos", "i.ts <= o.ts"),
    ("ORC-FOLLOW-001", "cross-step condition on decimals, not float64", "o.amount_f >= 0.9 * i.amount_f",
     "o.amount >= 0.9 * i.amount"),
    ("ORC-UNLESS-001", "unless between by ts only", "u.pos > c.pos AND u.pos < p.pos", "u.ts > c.ts AND u.ts < p.ts"),
    ("ORC-ABSENT-001", "an absent record between the chain's steps counts", "u.pos > m.pos", "u.pos > m.cpos"),
    ("ORC-ABSENT-001", "the absent window is 15 minutes", "u.ts <= m.ts + INTERVAL '1800 seconds'",
     "u.ts <= m.ts + INTERVAL '900 seconds'"),
    ("ORC-UNLESS-002", "unless keyed on the first step, not on: b", "u.payer_account = b.payer_account",
     "u.payer_account = a.payer_account"),
    ("ORC-SEQ3-001", "within exclusive", "f.ts <= c.ts +", "f.ts < c.ts +"),
    ("ORC-SEQ3-001", "evidence: latest first step before latest middle step",
     "arg_max(p.id, p.pos * 1000000 + c.pos)", "arg_max(p.id, c.pos * 1000000 + p.pos)"),
    ("ORC-SEQ3-002", "steps ordered by ts only", "p1.pos < p2.pos", "p1.ts < p2.ts"),
    ("ORC-MEDIAN-001", "window closed at ts_r - w", "l.ts > r.ts -", "l.ts >= r.ts -"),
    ("ORC-MEDIAN-001", "an even count's median is the lower middle value",
     "median(CAST(l.amount AS DECIMAL(18, 4)))", "quantile_disc(l.amount, 0.5)"),
    # the silent misreading of #10: the earlier step's aggregate read at the later step's record
    ("ORC-STEPAGG-001", "the earlier step's aggregate taken at the later record", "0.8 * CAST(f.s AS DOUBLE)",
     "0.8 * (SELECT CAST(coalesce(sum(x.amount), 0) AS DOUBLE) FROM pays x WHERE x.payee_account = f.payee_account"
     " AND x.amount >= 1000 AND x.ts > o.ts - INTERVAL '21600 seconds' AND x.pos <= o.pos)"),
    ("ORC-STEPAGG-001", "evidence: the earliest chain", "arg_max(f.id, f.pos)", "arg_min(f.id, f.pos)"),
    ("ORC-RUN-001", "within from the run's last record", "s.ts <= c.first_ts +", "s.ts <= c.ts +"),
    ("ORC-RUN-001", "a run of two records", "lag(ts, 2)", "lag(ts, 1)"),
    # #10 item 2: the window starts at the chain's own call, and is_new is taken at each window record
    ("ORC-BOUND-001", "the window not bounded by the earlier step", "AND l.ts > ch.cts", ""),
    ("ORC-BOUND-001", "the bound inclusive", "l.ts > ch.cts", "l.ts >= ch.cts"),
    ("ORC-BOUND-001", "is_new inside where= ignored", "AND l.new_payee", ""),
    ("ORC-BOUND-001", "evidence: the earliest passing chain", "arg_max(cid, cpos)", "arg_min(cid, cpos)"),
    ("ORC-ANY-001", "the payer field alone", "payee_account AS acct", "payer_account AS acct"),
    ("ORC-ANY-001", "a payment to oneself counted twice", "(payer_account IS NULL OR payee_account <> payer_account)",
     "true"),
    ("ORC-PAIR-001", "the window keyed by its first field only", "PARTITION BY caller, callee ORDER BY ts",
     "PARTITION BY caller ORDER BY ts"),
    ("ORC-OTHER-001", "the other stream keyed by the wrong field", "c.caller = p.payer_phone AND c.direction",
     "c.callee = p.payer_phone AND c.direction"),
    ("ORC-OTHER-001", "where= read on the reading record, not the other stream's",
     "c.direction = 'out'", "true"),
    ("ORC-OTHER-001", "records with the key in either field (caller or callee)", "WHERE c.caller = p.payer_phone\n",
     "WHERE c.caller = p.payer_phone OR c.callee = p.payer_phone\n"),
]


@pytest.mark.parametrize("rule_id,wrong,old,new", MUTATIONS, ids=[f"{m[0]}: {m[1]}" for m in MUTATIONS])
def test_data_discriminates(rule_id: str, wrong: str, old: str, new: str, db) -> None:
    sql = next(c.sql for c in CASES if c.rule_id == rule_id)
    assert old in sql, "the mutation no longer applies to the oracle SQL"
    right = set(db.execute(sql).fetchall())  # trigger and evidence
    mutated = set(db.execute(sql.replace(old, new)).fetchall())
    print(f"{rule_id} with {wrong}: {len(right ^ mutated)} result rows differ")
    assert right != mutated
