"""Deterministic generator of labelled synthetic telecom and payment fraud data.

``generate(out_dir, customers, days, seed, start)`` writes ``call.csv``,
``sms.csv``, ``sim_event.csv``, ``payment.csv``, ``labels.csv``,
``reported_accounts.txt`` and ``reported_numbers.txt`` into ``out_dir`` and
returns the number of data rows (lines for the ``.txt`` files) per file.
The same arguments give byte-identical files; every column is built with
numpy and written with pyarrow, so ten million records take a few minutes.

Conventions
-----------
* Times are written ISO 8601 with the customers' offset, e.g.
  ``2026-03-01T10:00:00+08:00``.  The window is ``[start 00:00, start + days)``
  local time.  Only two kinds of record lie before it: the historic SIM
  activation of every background customer (30-1500 days before ``start``) and
  the old payment of each ``dormant`` case.  Each file is sorted by ``ts``
  (stable), and ids are sequential in that order: ``c000000001`` (call),
  ``s...`` (sms), ``e...`` (sim_event), ``p...`` (payment).
* Phone numbers are E.164.  Customers have China Mobile numbers
  (``+86`` 134-139/150-152/157-159/182-184/187/188/198 + 8 digits).  Fraud
  numbers on our network use the same ranges; domestic fraud callers
  (dialer, reported) use the virtual-operator ranges 165/167/170/171.
* ``call`` rows are seen from our customer: ``out`` means that the customer
  is the caller, ``in`` that the customer is the callee.  ``imsi``, ``imei``
  and ``cell_id`` are always those of our side of the call.  Unanswered
  calls have ``duration`` 0.  ``trunk`` is ``international`` when the other
  party is abroad (and for the spoofed_cli calls).
* ``payment``: ``balance_before``/``balance_after`` are the balance of the
  *payer* account around that payment (balances are simulated for every
  account from an opening balance and all payments in the file, so they are
  consistent row to row).  ``device_id`` and ``ip`` are empty for ``atm`` and
  ``counter`` payments.  Our bank's accounts are ``6222`` + 15 digits with
  ``payee_bank`` ``ICBC``; other Chinese banks use their own BIN; foreign
  accounts are ``<ISO2>`` + 16 digits with a SWIFT-like bank code.
  ``currency`` is always ``CNY``; ``amount`` has two decimals.
* ``labels.csv`` has one row per labelled record: ``stream`` (call, sms,
  sim_event, payment), ``record_id``, ``typology``, ``case_id``.  A case id
  is ``<CODE>-<6 digits>`` (the number is unique over all cases; codes in
  :data:`CASE_TYPOLOGIES`).  Every record that makes up a case is labelled, including its
  context records (the activation or swap before a burst or a transfer, the
  scam call before the payment, the old payment of a dormant account), so
  detection should be scored per case (a case is caught when a rule flags
  any of its records) or per record with that in mind.

Stages
------
Each stage is one module of this package, whose docstring describes what it
generates:

* :mod:`.population`: customers, their contacts, payees and employers;
* :mod:`.background`: their normal calls, SMS and payments (unlabelled);
* :mod:`.typologies`: the injected cases, one module per typology
  (:data:`CASE_TYPOLOGIES` maps each to its case-id code);
* :mod:`.assemble`: SIM events, swaps, clean-up and balances, merged and
  sorted per stream;
* :mod:`.writer`: the files.

All stages draw from one random generator seeded with ``seed``, in this
order, which is why the output is reproducible (and why reordering any draw
changes it).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

from . import background
from .assemble import assemble
from .cases import Cases
from .entities import Entities
from .lookalikes import LOOKALIKES, lookalike_counts
from .lookalikes import REGISTRY as LOOKALIKE_REGISTRY
from .population import Population
from .schema import COLUMNS, Window
from .typologies import CASE_TYPOLOGIES, REGISTRY, TYPOLOGIES, case_counts
from .writer import write_dataset

__all__ = ["generate", "TYPOLOGIES", "CASE_TYPOLOGIES", "COLUMNS", "DEFAULT_CASE_RATE"]

DEFAULT_CASE_RATE = 0.001


def generate(out_dir: pathlib.Path, customers: int = 2000, days: int = 7, seed: int = 1, start: str = "2026-03-01",
             *, cases: dict[str, int] | None = None, case_rate: float = DEFAULT_CASE_RATE,
             lookalike_rate: float = 0.0, lookalikes: dict[str, int] | None = None) -> dict[str, int]:
    """Write the labelled synthetic data set into out_dir; return rows per file (see the module docstring).

    ``cases`` overrides the number of cases per typology (keys of :data:`CASE_TYPOLOGIES`
    plus ``wangiri_callback``); the default is ``max(3, round(customers * case_rate))``.
    ``lookalike_rate`` > 0 (or ``lookalikes``, per kind) adds hard negatives, ordinary behaviour that
    looks like fraud (:mod:`.lookalikes`), ``max(2, round(customers * lookalike_rate))`` per kind.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if customers < 60:
        raise ValueError("customers must be >= 60 (wangiri and dialer cases need >= 40 distinct victims)")
    if days < 1:
        raise ValueError("days must be >= 1")
    rng = np.random.default_rng(seed)
    win = Window.starting(start, days)
    E = Entities(rng)
    n_cases = case_counts(max(3, round(customers * case_rate)), cases or {})
    if not 0 <= lookalike_rate <= 1:  # also refuses nan
        raise ValueError("lookalike_rate must be between 0 and 1")
    default_look = max(2, round(customers * lookalike_rate)) if lookalike_rate > 0 else 0
    n_look = lookalike_counts(default_look, lookalikes or {}) if (lookalike_rate > 0 or lookalikes) else {}
    kinds = LOOKALIKES if n_look else []
    # the stages below draw from rng in this order: keep it, or every output byte changes
    pop = Population(rng, E, customers)
    bg_calls = background.calls(rng, pop, win)
    bg_sms = background.sms(rng, pop, win)
    bg_pay = background.payments(rng, E, pop, win)
    cx = Cases(rng, E, pop, win, TYPOLOGIES, CASE_TYPOLOGIES, kinds)
    for typology in REGISTRY.values():
        typology.run(cx, n_cases[typology.name])
    for kind in kinds:  # after the cases, so that without lookalikes every draw above is unchanged
        LOOKALIKE_REGISTRY[kind].run(cx, n_look[kind])
    data = assemble(cx, bg_calls, bg_sms, bg_pay)
    return write_dataset(out_dir, data, E, TYPOLOGIES, cx.case_ids, cx.reported_accounts, cx.reported_numbers,
                         kinds, cx.registered_businesses, cx.registered_lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate labelled synthetic fraud data (see module docstring).")
    ap.add_argument("out_dir", type=pathlib.Path)
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", default="2026-03-01")
    ap.add_argument("--case-rate", type=float, default=DEFAULT_CASE_RATE)
    ap.add_argument("--lookalike-rate", type=float, default=0.0)
    a = ap.parse_args(argv)
    t = time.perf_counter()
    counts = generate(a.out_dir, a.customers, a.days, a.seed, a.start, case_rate=a.case_rate,
                      lookalike_rate=a.lookalike_rate)
    for k, v in counts.items():
        print(f"{k}\t{v}")
    print(f"records\t{sum(v for k, v in counts.items() if k.endswith('.csv') and k != 'labels.csv')}")
    print(f"seconds\t{time.perf_counter() - t:.1f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
