"""Normal (unlabelled) traffic of the population.  Per customer and day, on average:

* calls: Poisson(4 x activity); hourly profile with few calls at night and
  peaks late morning and evening; 55 % out; 90 % with a contact, 8 % with a
  one-off domestic number or 400 hotline, 2 % international with
  +1/+44/+81/+82/+65/+852/+853/+886/+61/+49/+33/+60/+64/+66 (trunk
  international); 86 % answered domestic, 75 % international; durations
  lognormal (median 55 s, sigma 1.0, at most 1 h).  Work cell on weekdays
  09-18 h with p 0.6, otherwise home cell; 8 % of calls from a random cell.
* sms: Poisson(2 x activity); 45 % out; in-SMS come from contacts (60 %)
  or from service senders ``+86106...``.
* payments out: Poisson(1.45 x activity), at most 4 a day; 85 % to a regular
  payee (typical amount lognormal median 300 CNY; each payment x
  lognormal(0, 0.25); at most 19,999.99), 15 % to a brand-new payee
  (lognormal median 120, at most 4,999.99); channels app 74 %, web 14 %,
  counter 7 %, atm 5 %.  Amounts are never a multiple of 1,000.
* payments in: salary from an employer account on the 10th of the month
  08-11 h (60 %) or weekly on a fixed weekday (20 %); money from a contact
  (0.06 a day).

To keep the background clean of the typologies' patterns: regular payees
are not shared, employers have <= 3 employees (no fan-out), amounts to new
payees stay below 5,000, no background amount is round or in the
structuring band, high-risk and IRSF prefixes and the app_scam countries
(+855, +95, +63, +856) never occur, and +86 callers never arrive on an
international trunk.  The historic SIM activations, rare swaps and the
clean-up done once cases exist (after swaps and cashouts, copied inflows)
are in :mod:`.assemble`.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np

from .entities import Entities
from .population import Population
from .schema import APP, ATM, COUNTER, DAY, HOUR, IN, OUT, WEB, Window

# Relative weights per local hour.
_H_CALL = np.array([0.4, 0.2, 0.1, 0.1, 0.1, 0.2, 0.6, 1.6, 3.0, 4.2, 4.8, 4.8, 4.2, 4.0, 4.4, 4.6, 4.6, 4.8,
                    5.0, 5.6, 5.8, 5.2, 3.6, 1.6])
_H_SMS = np.array([0.5, 0.3, 0.2, 0.1, 0.1, 0.2, 0.5, 1.5, 3.0, 4.0, 4.2, 4.4, 4.6, 4.0, 4.0, 4.2, 4.2, 4.4,
                   4.6, 5.0, 5.4, 5.4, 4.0, 2.0])
_H_PAY = np.array([0.3, 0.15, 0.1, 0.05, 0.05, 0.1, 0.4, 1.5, 3.0, 4.0, 4.5, 5.0, 5.5, 4.5, 4.0, 4.0, 4.0, 4.5,
                   5.0, 5.5, 6.0, 5.5, 3.5, 1.5])


def _sample_times(rng, n: int, days: int, t0: int, profile: np.ndarray, day=None) -> np.ndarray:
    p = profile / profile.sum()
    if day is None:
        day = rng.integers(0, days, n)
    hour = rng.choice(24, size=n, p=p)
    return t0 + day * DAY + hour * HOUR + rng.integers(0, HOUR, n)


def calls(rng: np.random.Generator, pop: Population, win: Window) -> dict[str, np.ndarray]:
    """Background calls, with ``cust`` (the customer of each call) for the swap adjustment."""
    N = pop.N
    n_per = rng.poisson(4.0 * win.days * pop.c_act)
    cust = np.repeat(np.arange(N), n_per)
    M = cust.size
    ts = _sample_times(rng, M, win.days, win.t0, _H_CALL)
    direction = (rng.random(M) < 0.55).astype(np.int8)
    r = rng.random(M)
    kind = np.where(r < 0.90, 0, np.where(r < 0.98, 1, 2))
    j = (pop.c_ncontacts[cust] * rng.random(M) ** 1.7).astype(np.int64)
    other = pop.k_phone[pop.c_contacts[cust, j]]
    m1 = kind == 1
    other[m1] = pop.other_phones[rng.integers(0, pop.other_phones.size, int(m1.sum()))]
    m2 = kind == 2
    other[m2] = pop.intl_phones[rng.integers(0, pop.intl_phones.size, int(m2.sum()))]
    trunk = (kind == 2).astype(np.int8)
    answered = rng.random(M) < np.where(kind == 2, 0.75, 0.86)
    dur = np.clip(np.rint(np.exp(rng.normal(np.log(55.0), 1.0, M))), 1, 3600).astype(np.int64)
    dur[~answered] = 0
    me = pop.c_phone[cust]
    caller = np.where(direction == OUT, me, other)
    callee = np.where(direction == OUT, other, me)
    local = ts - win.t0
    hour = (local % DAY) // HOUR
    weekday = (win.start_date.weekday() + local // DAY) % 7
    at_work = (hour >= 9) & (hour < 18) & (weekday < 5) & (rng.random(M) < 0.6)
    cell = np.where(at_work, pop.c_work[cust], pop.c_home[cust])
    roam = rng.random(M) < 0.08
    cell[roam] = pop.cells[rng.integers(0, pop.cells.size, int(roam.sum()))]
    return {"ts": ts, "caller": caller, "callee": callee, "direction": direction, "duration": dur,
            "answered": answered, "imsi": pop.c_imsi[cust], "imei": pop.c_imei[cust], "cell": cell,
            "trunk": trunk, "case": np.full(M, -1, np.int32), "typ": np.full(M, -1, np.int16), "cust": cust}


def sms(rng: np.random.Generator, pop: Population, win: Window) -> dict[str, np.ndarray]:
    """Background SMS."""
    N = pop.N
    n_per = rng.poisson(2.0 * win.days * pop.c_act)
    cust = np.repeat(np.arange(N), n_per)
    M = cust.size
    ts = _sample_times(rng, M, win.days, win.t0, _H_SMS)
    direction = (rng.random(M) < 0.45).astype(np.int8)
    j = (pop.c_ncontacts[cust] * rng.random(M) ** 1.5).astype(np.int64)
    other = pop.k_phone[pop.c_contacts[cust, j]]
    svc = (direction == IN) & (rng.random(M) < 0.4)
    other[svc] = pop.service_phones[rng.integers(0, pop.service_phones.size, int(svc.sum()))]
    oneoff = (direction == OUT) & (rng.random(M) < 0.05)
    other[oneoff] = pop.other_phones[rng.integers(0, pop.other_phones.size, int(oneoff.sum()))]
    me = pop.c_phone[cust]
    return {"ts": ts, "sender": np.where(direction == OUT, me, other),
            "receiver": np.where(direction == OUT, other, me), "direction": direction,
            "case": np.full(M, -1, np.int32), "typ": np.full(M, -1, np.int16)}


def payments(rng: np.random.Generator, E: Entities, pop: Population, win: Window) -> dict[str, np.ndarray]:
    """Background payments, with ``cust_out`` (the paying customer, -1 for inflows) for the clean-up."""
    N, days = pop.N, win.days
    # outflows
    per_day = np.minimum(rng.poisson(np.repeat(1.45 * pop.c_act, days).reshape(N, days)), 4)
    flat = per_day.ravel()
    cust = np.repeat(np.repeat(np.arange(N), days), flat)
    day = np.repeat(np.tile(np.arange(days), N), flat)
    M = cust.size
    ts = _sample_times(rng, M, days, win.t0, _H_PAY, day=day)
    regular = rng.random(M) < 0.85
    j = (pop.c_npayees[cust] * rng.random(M)).astype(np.int64)
    payee = pop.c_payees[cust, j]
    cents = pop.c_payee_typ[cust, j] * np.exp(rng.normal(0.0, 0.25, M))
    cents = np.clip(cents, 1.0, 19999.99)
    n_new = int((~regular).sum())
    payee[~regular] = E.other_bank_account(n_new)
    cents[~regular] = np.clip(np.exp(rng.normal(np.log(120.0), 1.0, n_new)), 1.0, 4999.99)
    cents = np.round(cents * 100).astype(np.int64)
    cents = np.maximum(cents, 100 + rng.integers(0, 100, M))
    r = rng.random(M)
    channel = np.where(r < 0.74, APP, np.where(r < 0.88, WEB, np.where(r < 0.95, COUNTER, ATM))).astype(np.int8)
    online = channel <= WEB
    out = {"ts": ts, "payer": pop.c_acct[cust], "payer_phone": pop.c_phone[cust], "payee": payee,
           "cents": cents, "channel": channel, "device": np.where(online, pop.c_device[cust], -1),
           "ip": np.where(online, pop.c_ip[cust], -1), "cust_out": cust}
    # salary inflows
    parts_c, parts_t = [], []
    for d in range(days):
        date = win.start_date + _dt.timedelta(days=d)
        sel = (pop.c_paytype == 2) & (pop.c_payweekday == date.weekday())
        if date.day == 10:
            sel |= pop.c_paytype == 1
        c = np.flatnonzero(sel)
        parts_c.append(c)
        parts_t.append(win.t0 + d * DAY + 8 * HOUR + rng.integers(0, 3 * HOUR, c.size))
    sc = np.concatenate(parts_c)
    st = np.concatenate(parts_t)
    s_cents = np.where(pop.c_paytype[sc] == 2, pop.c_salary[sc] / 4.3, pop.c_salary[sc]).astype(np.int64)
    s_cents += rng.integers(1, 100, sc.size)
    emp = pop.c_employer[sc]
    # money from contacts
    n_fr = rng.poisson(0.06 * days, N)
    fc = np.repeat(np.arange(N), n_fr)
    fk = pop.c_contacts[fc, (pop.c_ncontacts[fc] * rng.random(fc.size)).astype(np.int64)]
    ft = _sample_times(rng, fc.size, days, win.t0, _H_PAY)
    f_cents = np.round(np.clip(np.exp(rng.normal(np.log(200.0), 1.0, fc.size)), 1, 4999.99) * 100)
    f_cents = np.maximum(f_cents.astype(np.int64), 100 + rng.integers(0, 100, fc.size))
    inflow = {
        "ts": np.concatenate([st, ft]),
        "payer": np.concatenate([pop.e_acct[emp], pop.k_acct[fk]]),
        "payer_phone": np.concatenate([pop.e_phone[emp], pop.k_phone[fk]]),
        "payee": np.concatenate([pop.c_acct[sc], pop.c_acct[fc]]),
        "cents": np.concatenate([s_cents, f_cents]),
        "channel": np.concatenate([np.full(sc.size, WEB), np.full(fc.size, APP)]).astype(np.int8),
        "device": np.concatenate([pop.e_device[emp], pop.k_device[fk]]),
        "ip": np.concatenate([pop.e_ip[emp], pop.k_ip[fk]]),
        "cust_out": np.full(sc.size + fc.size, -1, np.int64),
    }
    res = {k: np.concatenate([out[k], inflow[k].astype(out[k].dtype)]) for k in out}
    res["cents"] += res["cents"] % 100_000 == 0  # never a multiple of 1,000
    return res
