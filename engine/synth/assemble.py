"""Merging background and cases into the four streams, sorted by time.

* sim_event: one historic activation per customer (30-1500 days before the
  window) and rare background swaps inside it (0.05 % of customers a day,
  never of a customer in a case role).  A swap changes the customer's IMSI
  on later background calls.
* payment: customers make no background payment in the 24 h after a swap
  (their own or a sim_swap_transfer case's) and none after a cashout emptied
  their account; background outflows that would copy 85-105 % of an inflow of
  the previous 2 h are scaled down to 60 %.  Balances are then simulated for
  every account from an opening balance and all payments in the file, which
  also fixes the cashout amounts.
"""

from __future__ import annotations

import numpy as np

from .cases import Cases
from .schema import DAY, HOUR, SWAP


def _stable_sort(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.argsort(cols["ts"], kind="stable")
    return {k: v[order] for k, v in cols.items()}


def _concat(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([a[k], b[k].astype(a[k].dtype)]) for k in a}


def assemble(cx: Cases, bg_calls: dict[str, np.ndarray], bg_sms: dict[str, np.ndarray],
             bg_pay: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """The columns of each stream (background and case records), sorted by ``ts``; after all cases are injected."""
    bg_swaps = _background_swaps(cx)
    chosen, times, imsis, _ = bg_swaps
    # case swaps first, then background ones: the order decides which of two swaps at the same second wins
    swaps = cx.swap_times + [(int(c), int(t), int(s)) for c, t, s in zip(chosen, times, imsis)]
    return {
        "call": _calls(cx, bg_calls, swaps),
        "sms": _stable_sort(_concat(bg_sms, cx.sms.arrays())),
        "sim_event": _sim_events(cx, bg_swaps),
        "payment": _payments(cx, bg_pay, swaps),
    }


def _background_swaps(cx: Cases) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(customers, times, new IMSIs, new IMEIs) of swaps outside the cases."""
    rng = cx.rng
    used = np.zeros(cx.N, bool)
    used[np.array(cx.role_used, dtype=np.int64)] = True
    cand = np.flatnonzero(~used)
    n = int(rng.binomial(cand.size, min(1.0, 0.0005 * cx.days))) if cand.size else 0
    chosen = rng.choice(cand, n, replace=False) if n else np.array([], np.int64)
    times = cx.t0 + rng.integers(0, cx.W, n)
    imsis = cx.E.new_imsi(n) if n else np.array([], np.int64)
    imeis = cx.E.new_imei(n) if n else np.array([], np.int64)
    return chosen, times, imsis, imeis


def _sim_events(cx: Cases, bg_swaps: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    rng, N, pop = cx.rng, cx.N, cx.pop
    act_t = cx.t0 - rng.integers(30 * DAY, 1500 * DAY, N)
    bg = {"ts": act_t, "msisdn": pop.c_phone, "event": np.zeros(N, np.int8), "imsi": pop.c_imsi,
          "imei": pop.c_imei, "iddoc": pop.c_iddoc, "case": np.full(N, -1, np.int32),
          "typ": np.full(N, -1, np.int16)}
    chosen, times, imsis, _ = bg_swaps
    sw = {"ts": times, "msisdn": pop.c_phone[chosen], "event": np.full(chosen.size, SWAP, np.int8),
          "imsi": imsis, "imei": pop.c_imei[chosen], "iddoc": pop.c_iddoc[chosen],
          "case": np.full(chosen.size, -1, np.int32), "typ": np.full(chosen.size, -1, np.int16)}
    out = _concat(bg, sw)
    return _stable_sort(_concat(out, cx.sims.arrays()))


def _calls(cx: Cases, bg: dict[str, np.ndarray], swaps: list[tuple[int, int, int]]) -> dict[str, np.ndarray]:
    cust = bg.pop("cust")
    if swaps:
        sw_t = np.full(cx.N, np.iinfo(np.int64).max)
        sw_imsi = cx.pop.c_imsi.copy()
        for c, t, s in sorted(swaps, key=lambda x: x[1], reverse=True):
            sw_t[c], sw_imsi[c] = t, s  # earliest swap wins (rare: two swaps)
        after = bg["ts"] > sw_t[cust]
        bg["imsi"] = np.where(after, sw_imsi[cust], bg["imsi"])
    return _stable_sort(_concat(bg, cx.calls.arrays()))


def _payments(cx: Cases, bg: dict[str, np.ndarray], swaps: list[tuple[int, int, int]]) -> dict[str, np.ndarray]:
    cust = bg.pop("cust_out")
    keep = np.ones(cust.size, bool)
    # no outflows in the 24 h after a swap; none after a cashout
    blocks = [(c, t, t + DAY) for c, t, _ in swaps] + [(c, t, np.iinfo(np.int64).max) for c, t in cx.cashout_times]
    if blocks:
        lim_lo = np.full(cx.N, np.iinfo(np.int64).max)
        lim_hi = np.full(cx.N, np.iinfo(np.int64).min)
        extra = []
        for c, lo, hi in blocks:
            if lim_hi[c] == np.iinfo(np.int64).min:
                lim_lo[c], lim_hi[c] = lo, hi
            else:
                extra.append((c, lo, hi))
        outm = cust >= 0
        cc = np.where(outm, cust, 0)
        keep &= ~(outm & (bg["ts"] >= lim_lo[cc]) & (bg["ts"] < lim_hi[cc]))
        for c, lo, hi in extra:
            keep &= ~((cust == c) & (bg["ts"] >= lo) & (bg["ts"] < hi))
    bg = {k: v[keep] for k, v in bg.items()}
    cust = cust[keep]
    _damp_pass_through(bg, cust)
    n = bg["ts"].size
    bg["case"] = np.full(n, -1, np.int32)
    bg["typ"] = np.full(n, -1, np.int16)
    bg["role"] = np.zeros(n, np.int64)
    bg["factor"] = np.zeros(n)
    pay = _stable_sort(_concat(bg, cx.pays.arrays()))
    _balances(cx, pay)
    return pay


def _damp_pass_through(bg: dict[str, np.ndarray], cust: np.ndarray) -> None:
    """Scale down background outflows that copy 85-105 % of an inflow of the previous 2 h."""
    import pandas as pd

    out_i = np.flatnonzero(cust >= 0)
    in_i = np.flatnonzero(cust < 0)
    if not out_i.size or not in_i.size:
        return
    o = pd.DataFrame({"acct": bg["payer"][out_i], "ts": bg["ts"][out_i], "row": out_i})
    i = pd.DataFrame({"acct": bg["payee"][in_i], "ts": bg["ts"][in_i], "in_cents": bg["cents"][in_i]})
    o = o.sort_values(["ts", "row"], kind="stable")
    i = i.sort_values("ts", kind="stable")
    m = pd.merge_asof(o, i, on="ts", by="acct", direction="backward", tolerance=2 * HOUR)
    m = m[m["in_cents"].notna()]
    rows = m["row"].to_numpy()
    x = m["in_cents"].to_numpy()
    amt = bg["cents"][rows]
    hit = (amt >= 0.85 * x) & (amt <= 1.05 * x)
    bg["cents"][rows[hit]] = np.maximum(100, (amt[hit] * 0.6).astype(np.int64) | 1)


def _balances(cx: Cases, pay: dict[str, np.ndarray]) -> None:
    """Add bal_before/bal_after of the payer and fill in the cashout amounts (roles 1 and 2)."""
    rng, pop = cx.rng, cx.pop
    n_acct = cx.E.account.n
    init = np.round(np.exp(rng.normal(np.log(20000.0), 1.2, n_acct)) * 100).astype(np.int64)
    init[pop.c_acct] = pop.c_balance0
    margin = rng.integers(10_000, 500_000, n_acct)
    n = pay["ts"].size

    def running(cents):
        acct = np.concatenate([pay["payer"], pay["payee"]])
        delta = np.concatenate([-cents, cents])
        ts = np.concatenate([pay["ts"], pay["ts"]])
        seq = np.concatenate([np.arange(n), np.arange(n)])
        order = np.lexsort((seq, ts, acct))
        a, d = acct[order], delta[order]
        cs = np.cumsum(d)
        starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])
        base = np.repeat(cs[starts] - d[starts], np.diff(np.r_[starts, a.size]))
        after = cs - base  # change since the account's first event, inclusive
        return order, a, after, starts

    cents = pay["cents"].copy()
    # pass 1: cashout amounts are placeholders (0); set opening balances so that nothing goes below margin
    order, a, after, starts = running(cents)
    mins = np.minimum.reduceat(after, starts)
    accts = a[starts]
    need = margin[accts] - (init[accts] + mins)
    init[accts] += np.maximum(need, 0)
    bal_after_ev = init[a] + after
    bal_after = np.empty(2 * n, np.int64)
    bal_after[order] = bal_after_ev
    payer_after = bal_after[:n]
    transfers = np.flatnonzero(pay["role"] == 1)
    if transfers.size:
        cents[transfers] = payer_after[transfers]  # the whole balance (placeholder amount was 0)
        # the mule pays on 97-100 % of what it received, same case
        payouts = np.flatnonzero(pay["role"] == 2)
        by_case = {int(pay["case"][i]): int(cents[i]) for i in transfers}
        for i in payouts:
            v = int(by_case[int(pay["case"][i])] * pay["factor"][i])
            cents[i] = v - 1 if v % 100_000 == 0 else v
        order, a, after, starts = running(cents)
        bal_after_ev = init[a] + after
        bal_after = np.empty(2 * n, np.int64)
        bal_after[order] = bal_after_ev
        payer_after = bal_after[:n]
    pay["cents"] = cents
    pay["bal_after"] = payer_after
    pay["bal_before"] = payer_after + cents
