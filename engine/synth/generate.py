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
  party is abroad (and for the spoofed calls below).
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
  the table).  Every record that makes up a case is labelled, including its
  context records (the activation or swap before a burst or a transfer, the
  scam call before the payment, the old payment of a dormant account), so
  detection should be scored per case (a case is caught when a rule flags
  any of its records) or per record with that in mind.

Background (unlabelled)
-----------------------
Each customer has an msisdn, IMSI, IMEI, account, device id, IP, a resident
id number (18 characters with a valid check digit), a home and a work cell,
5-15 regular contacts (from a shared pool of 3 x customers people, who also
hold accounts at other banks), 2-5 regular payees (accounts that belong to
that customer alone, each with its own typical amount) and an activity level
(gamma, mean 1, clipped to [0.2, 2.5]).  Per customer and day, on average:

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
  counter 7 %, atm 5 %; 1 % of regular payees are abroad (HK, US, GB, SG,
  JP, AU).  Amounts are never a multiple of 1,000.
* payments in: salary from an employer account (each employer pays at most
  3 of our customers) on the 10th of the month 08-11 h (60 %) or weekly on a
  fixed weekday (20 %); money from a contact (0.06 a day).
* sim_event: one historic activation per customer (30-1500 days before the
  window) and rare swaps inside it (0.05 % of customers a day).

To keep the background clean of the patterns below: regular payees are not
shared, employers have <= 3 employees (no fan-out), amounts to new payees
stay below 5,000, no background amount is round or in the structuring band,
outflows that would copy 85-105 % of an inflow of the previous 2 h are scaled
down to 60 %, customers make no background payment in the 24 h after a
swap (nor do the victims of sim_swap_transfer cases), an
account emptied by ``cashout`` makes no further payments, high-risk and IRSF
prefixes and the app_scam countries (+855, +95, +63, +856) never occur in
the background, and +86 callers never arrive on an international trunk.

Injected cases
--------------
Case counts default to ``max(3, round(customers * case_rate))`` per case
typology (``case_rate`` = 0.001) and can be set one by one with
``cases={"wangiri": 10, ...}``.  ``wangiri_callback`` is a number of wangiri
cases (at least 3) that also get a callback; it shares their case id.
"Fresh" means an entity (number, account, device, IMEI, ...) created for
the case and seen nowhere else.  "Customers" in exclusive roles are drawn
without replacement from the customers while they last, then reused.

====================== ==== ==================================================
typology               code pattern (all times relative to the case)
====================== ==== ==================================================
wangiri                WAN  one fresh number with prefix +88213, +88216,
                            +8819, +2327, +22507, +6777 or +2474 calls 20-40
                            distinct customers within 2-9 minutes; every call
                            direction in, answered false, duration 0, trunk
                            international.  (Callback cases use only +88213,
                            +88216, +2327.)
wangiri_callback       WAN  one of those customers calls the number back 5
                            min-1 h 56 min after being rung: direction out,
                            answered, duration 61-1200 s, trunk
                            international.  Calls labelled wangiri_callback.
simbox                 SBX  a fresh msisdn on our network with a fresh IMSI
                            and fresh IMEI makes 60-120 out calls within
                            30-55 min, to >= 50 distinct fresh domestic
                            numbers (>= 80 % of calls distinct), all from one
                            cell_id, trunk domestic, 92 % answered, duration
                            lognormal median 45 s in [15, 300] s.
irsf                   IRS  a customer makes 5-7 out calls, answered, trunk
                            international, each 1200-2400 s, 1-10 min apart
                            (all starts within 6 h) to 1-3 fresh numbers
                            with prefix +88213, +88216, +2327 or +6913.
new_sim_burst          NSB  activation of a fresh msisdn (fresh IMSI, IMEI,
                            id_document); 10 min-2 h later it starts 30-50
                            out calls spread over 6-20 h (all within 23 h of
                            the activation) to fresh domestic numbers, 75 %
                            answered (15-900 s), trunk domestic.
dialer                 DIA  a fresh domestic number (+86 165/167/170/171)
                            makes 40-59 calls within 45-58 min, roughly
                            evenly spaced, to 30-59 distinct customers
                            (direction in), every duration < 15 s (35 %
                            answered with 1-14 s, the rest 0), trunk
                            domestic.  At most ~14 calls in any 10 minutes.
spoofed_cli            SPF  a fresh +86 number (mobile or Beijing landline)
                            calls 3-8 distinct customers within 10 min-3 h,
                            direction in, trunk international, 70 % answered
                            (5-1800 s).
sim_swap_transfer      SST  swap sim_event for a customer's msisdn (fresh
                            IMSI and IMEI, the customer's id_document); then
                            1-2 payments by that customer (payer_phone =
                            msisdn) from a fresh device and IP, the first
                            20 min-12 h after the swap, all within 24 h.
                            Variant by case number mod 3: (0) fresh payee and
                            20,000-44,999.99; (1) fresh payee and
                            3,000-19,999.99; (2) one of the customer's
                            regular payees and 20,000-44,999.99.
app_scam               APP  an inbound answered call of 600-2400 s from a
                            fresh number in +855, +95, +63 or +856 (trunk
                            international) to a customer; 2-15 min after the
                            call ends (so < 1 h after it starts) 1-2 payments
                            by that customer (payer_phone = callee) of
                            10,000-44,999.99 to fresh payees, the customer's
                            own device; every payment < 1 h after the call
                            start.
mule_fan_in            MFI  a fresh account at our bank receives 8-15
                            payments of 500-9,999.99 from as many distinct
                            fresh payer accounts (other banks) within 2-22 h.
mule_fan_out           MFO  a fresh account at our bank pays 8-14 distinct
                            fresh payees 1,000-9,999.99 each within 22 h, at
                            least 7 min apart (so < 10 in any hour).
pass_through           PTH  a fresh payer pays X (5,000-44,999.99) to a
                            fresh mule; each of 1-3 mules in a chain pays
                            90-99.5 % of what it received to the next
                            account 5-110 min later; the last one pays a
                            fresh exit account.
structuring            STR  a customer makes 3-5 payments of 45,000.01-
                            49,999.99 to 1-2 fresh payees, 30 min-5 h apart
                            (within 20 h).
velocity               VEL  a customer makes 10-18 payments of
                            50-2,999.99 within 10-55 min to 1-4 fresh
                            payees from the own device.
dormant                DOR  a fresh account at our bank makes one payment
                            of 100-3,000 61-400 days before the payout, then
                            nothing, then pays out 20,000-150,000 to a fresh
                            payee from a fresh device.  Both payments are
                            labelled.  Dormancy can only be seen with the
                            old payment, i.e. as "previous payment by this
                            payer_account >= 60 days earlier"; an account's
                            first payment in the file is *not* a sign.
round_night            RNT  a customer makes 2-4 payments of a multiple of
                            1,000 (1,000-30,000) to 1-2 fresh payees between
                            00:00 and 05:00 local time of one night.
high_risk_jurisdiction HRJ  a customer makes 2-4 payments of 1,000-30,000
                            within 6 h to fresh accounts in KP, IR or MM.
device_sharing         DEV  one fresh device id (and IP) is used by 5-8
                            distinct fresh payer accounts at our bank, 1-2
                            payments each (200-9,999.99) to fresh payees,
                            all within 1-20 h.
sim_per_id             SID  one fresh id_document gets 5-8 activations of
                            fresh msisdns within min(25 days, window) (at
                            least 20 % of that); no other records.
reported               REP  half the cases (rounded up): a fresh reported
                            mule account (our bank) receives 2-4 payments of
                            200-9,999.99 from distinct customers; the other
                            half: a fresh reported domestic number
                            (+86 170/171/165/167) calls 2-5 distinct
                            customers (direction in, trunk domestic, 60 %
                            answered with 20-500 s).  reported_*.txt list the
                            reported values plus as many decoys that occur
                            nowhere; every record with a reported value is
                            labelled.
cashout                CSH  a customer's account (a fresh account of ours
                            once customers are used up by exclusive roles)
                            transfers its whole balance
                            (amount = balance_before, balance_after = 0) to
                            a fresh mule account (channel web, fresh device);
                            5-55 min later the mule pays 97-100 % of it to a
                            fresh cash-out agent account (atm or app).
====================== ==== ==================================================

Known overlaps by construction: a cashout case is also a pass-through
(receipt then >= 90 % out within 2 h); sim_swap, app_scam, dormant, cashout
and pass_through payments are also "large payment to a never-seen payee".
Payments to a regular payee look "new" the first time the payee appears in
the file: rules that depend on "never-seen" need warm-up history that this
data set does not provide (only the cases' payees are truly fresh).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import pathlib
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

__all__ = ["generate", "TYPOLOGIES", "CASE_TYPOLOGIES", "COLUMNS", "DEFAULT_CASE_RATE"]

TZ_OFFSET_S = 8 * 3600
DAY = 86400
HOUR = 3600
MIN = 60
DEFAULT_CASE_RATE = 0.001

COLUMNS: dict[str, list[str]] = {
    "call": ["id", "ts", "caller", "callee", "direction", "duration", "answered", "imsi", "imei", "cell_id", "trunk"],
    "sms": ["id", "ts", "sender", "receiver", "direction"],
    "sim_event": ["id", "ts", "msisdn", "event", "imsi", "imei", "id_document"],
    "payment": [
        "id", "ts", "payer_account", "payer_phone", "payee_account", "payee_bank", "payee_country",
        "amount", "currency", "channel", "device_id", "ip", "balance_before", "balance_after",
    ],
    "labels": ["stream", "record_id", "typology", "case_id"],
}
STREAMS = ["call", "sms", "sim_event", "payment"]
ID_PREFIX = {"call": "c", "sms": "s", "sim_event": "e", "payment": "p"}

# Typologies that are generated as cases (with their case-id code), in generation order.
CASE_TYPOLOGIES: dict[str, str] = {
    "wangiri": "WAN",
    "simbox": "SBX",
    "irsf": "IRS",
    "new_sim_burst": "NSB",
    "dialer": "DIA",
    "spoofed_cli": "SPF",
    "sim_swap_transfer": "SST",
    "app_scam": "APP",
    "mule_fan_in": "MFI",
    "mule_fan_out": "MFO",
    "pass_through": "PTH",
    "structuring": "STR",
    "velocity": "VEL",
    "dormant": "DOR",
    "round_night": "RNT",
    "high_risk_jurisdiction": "HRJ",
    "device_sharing": "DEV",
    "sim_per_id": "SID",
    "reported": "REP",
    "cashout": "CSH",
}
# Every label value that occurs in labels.csv.
TYPOLOGIES: list[str] = ["wangiri", "wangiri_callback"] + [t for t in CASE_TYPOLOGIES if t != "wangiri"]
_TYP_INDEX = {t: i for i, t in enumerate(TYPOLOGIES)}

CUSTOMER_PREFIXES = ["134", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159",
                     "182", "183", "184", "187", "188", "198"]
OTHER_MOBILE_PREFIXES = ["130", "131", "132", "155", "156", "185", "186", "133", "153", "180", "181", "189",
                         "177", "199"] + CUSTOMER_PREFIXES
VIRTUAL_PREFIXES = ["165", "167", "170", "171"]
LANDLINE_AREAS = ["10", "21", "20", "22", "23", "28", "27", "25"]  # + 8 digits
WANGIRI_PREFIXES = ["+88213", "+88216", "+8819", "+2327", "+22507", "+6777", "+2474"]
WANGIRI_CALLBACK_PREFIXES = ["+88213", "+88216", "+2327"]
IRSF_PREFIXES = ["+88213", "+88216", "+2327", "+6913"]
APP_SCAM_PREFIXES = ["+855", "+95", "+63", "+856"]
HIGH_RISK_COUNTRIES = ["KP", "IR", "MM"]
# subscriber digits after each foreign prefix
_FOREIGN_DIGITS = {
    "+88213": 7, "+88216": 7, "+8819": 8, "+2327": 7, "+22507": 8, "+6777": 6, "+2474": 4, "+6913": 6,
    "+85512": 6, "+959": 8, "+639": 9, "+85620": 8,
    "+1": 10, "+447": 9, "+8190": 8, "+8210": 8, "+659": 7, "+8525": 7, "+8536": 7, "+8869": 8,
    "+614": 8, "+4915": 9, "+336": 8, "+6012": 7, "+6421": 7, "+668": 8,
}
_APP_SCAM_SUBPREFIX = {"+855": "+85512", "+95": "+959", "+63": "+639", "+856": "+85620"}
NORMAL_INTL = ["+1", "+447", "+8190", "+8210", "+659", "+8525", "+8536", "+8869", "+614", "+4915", "+336",
               "+6012", "+6421", "+668"]
NORMAL_INTL_W = np.array([14, 8, 10, 8, 8, 14, 4, 8, 8, 4, 3, 5, 3, 3], dtype=float)

OUR_BIN = "6222"
DOMESTIC_BINS = {"6217": "CCB", "6228": "ABC", "6216": "BOC", "6225": "CMB", "6210": "PSBC", "6226": "CITIC",
                 "6222": "ICBC"}
FOREIGN_BANKS = {"HK": "HSBCHKHH", "US": "CHASUS33", "GB": "BARCGB22", "SG": "DBSSSGSG", "JP": "MHCBJPJT",
                 "AU": "ANZBAU3M", "KP": "FTBDKPPY", "IR": "MELIIRTH", "MM": "MEBLMMMY"}
NORMAL_FOREIGN_COUNTRIES = ["HK", "US", "GB", "SG", "JP", "AU"]
BANKS = sorted(set(DOMESTIC_BINS.values())) + sorted(set(FOREIGN_BANKS.values()))
COUNTRIES = ["CN"] + sorted(FOREIGN_BANKS)
_BANK_IDX = {b: i for i, b in enumerate(BANKS)}
_COUNTRY_IDX = {c: i for i, c in enumerate(COUNTRIES)}

CHANNELS = ["app", "web", "atm", "counter"]
APP, WEB, ATM, COUNTER = 0, 1, 2, 3
EVENTS = ["activation", "swap", "port_out"]
ACT, SWAP = 0, 1
IN, OUT = 0, 1
DOM, INTL = 0, 1

# Relative weights per local hour.
_H_CALL = np.array([0.4, 0.2, 0.1, 0.1, 0.1, 0.2, 0.6, 1.6, 3.0, 4.2, 4.8, 4.8, 4.2, 4.0, 4.4, 4.6, 4.6, 4.8,
                    5.0, 5.6, 5.8, 5.2, 3.6, 1.6])
_H_SMS = np.array([0.5, 0.3, 0.2, 0.1, 0.1, 0.2, 0.5, 1.5, 3.0, 4.0, 4.2, 4.4, 4.6, 4.0, 4.0, 4.2, 4.2, 4.4,
                   4.6, 5.0, 5.4, 5.4, 4.0, 2.0])
_H_PAY = np.array([0.3, 0.15, 0.1, 0.05, 0.05, 0.1, 0.4, 1.5, 3.0, 4.0, 4.5, 5.0, 5.5, 4.5, 4.0, 4.0, 4.0, 4.5,
                   5.0, 5.5, 6.0, 5.5, 3.5, 1.5])

_PERM_A = 6_700_417  # odd, not a multiple of 5: a bijection modulo 10**k and 16**k


# --------------------------------------------------------------------------- string building


def _digits(values, width: int) -> np.ndarray:
    """(n, width) uint8 matrix of the zero-padded decimal digits (ASCII) of values."""
    v = np.asarray(values, dtype=np.int64).copy()
    out = np.empty((v.size, width), dtype=np.uint8)
    for k in range(width - 1, -1, -1):
        out[:, k] = (v % 10).astype(np.uint8) + 48
        v //= 10
    return out


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hexdigits(values, width: int) -> np.ndarray:
    v = np.asarray(values, dtype=np.int64).copy()
    out = np.empty((v.size, width), dtype=np.uint8)
    for k in range(width - 1, -1, -1):
        out[:, k] = _HEX[v & 15]
        v >>= 4
    return out


def _const(s: str, n: int) -> np.ndarray:
    b = np.frombuffer(s.encode("ascii"), dtype=np.uint8)
    return np.broadcast_to(b, (n, b.size))


def _table_rows(table: list[str], idx: np.ndarray) -> np.ndarray:
    """Rows of equal-width strings chosen by idx, as a (n, w) uint8 matrix."""
    w = len(table[0])
    assert all(len(s) == w for s in table)
    t = np.frombuffer("".join(table).encode("ascii"), dtype=np.uint8).reshape(len(table), w)
    return t[idx]


def _hcat(*parts: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.hstack(parts))


def _fixed_to_arrow(mat: np.ndarray) -> pa.Array:
    """A (n, w) uint8 matrix of ASCII as an arrow string array (zero copy)."""
    mat = np.ascontiguousarray(mat, dtype=np.uint8)
    n, w = mat.shape
    if n * w >= 2**31:
        offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64)
        return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(mat)).cast(pa.string())
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(mat))


def _money(cents: np.ndarray) -> pa.Array:
    """Integer cents as strings with exactly two decimals."""
    cents = np.asarray(cents, dtype=np.int64)
    whole = pa.array(cents // 100).cast(pa.string())
    frac = _fixed_to_arrow(_digits(cents % 100, 2))
    return pc.binary_join_element_wise(whole, frac, ".")


def _timestamps(ts: np.ndarray) -> pa.Array:
    """Epoch seconds as 'YYYY-MM-DDTHH:MM:SS+08:00'."""
    local = np.asarray(ts, dtype=np.int64) + TZ_OFFSET_S
    day = local // DAY
    sod = local - day * DAY
    d0, d1 = int(day.min()), int(day.max())
    dates = np.arange(d0, d1 + 1).astype("datetime64[D]").astype(str).tolist()
    date_mat = _table_rows(dates, day - d0)
    hh, rem = np.divmod(sod, 3600)
    mm, ss = np.divmod(rem, 60)
    n = ts.size
    mat = _hcat(date_mat, _const("T", n), _digits(hh, 2), _const(":", n), _digits(mm, 2), _const(":", n),
                _digits(ss, 2), _const("+08:00", n))
    return _fixed_to_arrow(mat)


def _ids(prefix: str, first: int, n: int) -> pa.Array:
    return _fixed_to_arrow(_hcat(_const(prefix, n), _digits(np.arange(first, first + n), 9)))


# --------------------------------------------------------------------------- entity registries


class _Registry:
    """Strings of one kind (phone numbers, accounts, ...); records hold int indices into it."""

    def __init__(self) -> None:
        self.chunks: list[pa.Array] = []
        self.n = 0
        self._table: pa.Array | None = None

    def add(self, arr: pa.Array) -> np.ndarray:
        i0 = self.n
        self.chunks.append(arr)
        self.n += len(arr)
        self._table = None
        return np.arange(i0, self.n, dtype=np.int64)

    def table(self) -> pa.Array:
        if self._table is None:
            self._table = pa.concat_arrays(self.chunks) if self.chunks else pa.array([], pa.string())
            self.chunks = [self._table]
        return self._table

    def take(self, idx: np.ndarray) -> pa.Array:
        idx = np.asarray(idx, dtype=np.int64)
        mask = idx < 0
        if mask.any():
            return pc.take(self.table(), pa.array(idx, mask=mask))
        return pc.take(self.table(), pa.array(idx))


class _Entities:
    """Creates unique phone numbers, accounts, IMSIs, IMEIs, devices, IPs, cells and ids."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.phone = _Registry()
        self.account = _Registry()
        self.acct_bank: list[np.ndarray] = []
        self.acct_country: list[np.ndarray] = []
        self.imsi = _Registry()
        self.imei = _Registry()
        self.device = _Registry()
        self.ip = _Registry()
        self.cell = _Registry()
        self.iddoc = _Registry()
        self._counters: dict[str, int] = {}
        self._offsets: dict[str, int] = {}

    def _perm(self, key: str, n: int, mod: int, base: int = 10) -> np.ndarray:
        """n new values of a fixed bijection of [0, mod), so unique per key.

        An affine map k -> (A k + B) mod `mod`, followed (when mod is a power of base) by a digit
        cipher in which each digit is shifted by a hash of the digits to its right; so consecutive
        k give unrelated-looking numbers.
        """
        c0 = self._counters.get(key, 0)
        if key not in self._offsets:
            self._offsets[key] = int(self.rng.integers(0, mod))
        if c0 + n > mod:
            raise ValueError(f"number space {key} exhausted")
        self._counters[key] = c0 + n
        k = np.arange(c0, c0 + n, dtype=np.int64)
        v = (_PERM_A * k + self._offsets[key]) % mod  # no overflow: k < 1e9, mod <= 1e16
        width = round(math.log(mod, base))
        if base**width != mod:
            return v
        digits = np.empty((n, width), dtype=np.int64)
        x = v.copy()
        for i in range(width - 1, -1, -1):
            digits[:, i] = x % base
            x //= base
        h = np.full(n, self._offsets[key] % 2_147_483_647, dtype=np.int64)
        out = np.zeros(n, dtype=np.int64)
        scale = 1
        for i in range(width - 1, -1, -1):
            out += ((digits[:, i] + (h >> 7)) % base) * scale
            scale *= base
            h = (h * 1_000_003 + digits[:, i] * 7919 + i + 1) % 2_147_483_647
        return out

    # phones
    def cn_mobile(self, n: int, prefixes: list[str]) -> np.ndarray:
        pre = self.rng.integers(0, len(prefixes), n)
        suf = self._perm("CNMOB", n, 10**8)
        return self.phone.add(_fixed_to_arrow(_hcat(_const("+86", n), _table_rows(prefixes, pre), _digits(suf, 8))))

    def cn_landline(self, n: int, areas: list[str] | None = None) -> np.ndarray:
        areas = areas or LANDLINE_AREAS
        pre = self.rng.integers(0, len(areas), n)
        suf = self._perm("CNLAND", n, 10**8)
        return self.phone.add(_fixed_to_arrow(_hcat(_const("+86", n), _table_rows(areas, pre), _digits(suf, 8))))

    def cn_special(self, n: int, prefix: str, ndig: int) -> np.ndarray:
        suf = self._perm("CN" + prefix, n, 10**ndig)
        return self.phone.add(_fixed_to_arrow(_hcat(_const("+86" + prefix, n), _digits(suf, ndig))))

    def foreign(self, prefix: str, n: int) -> np.ndarray:
        nd = _FOREIGN_DIGITS[prefix]
        if prefix == "+1":  # NANP: the area code does not start with 0 or 1
            suf = self._perm(prefix, n, 8 * 10**9)
            suf = 2_000_000_000 + (suf // 10**9) * 10**9 + self._perm("+1low", n, 10**9)
        else:
            suf = self._perm(prefix, n, 10**nd)
        return self.phone.add(_fixed_to_arrow(_hcat(_const(prefix, n), _digits(suf, nd))))

    def foreign_mixed(self, prefixes: list[str], which: np.ndarray) -> np.ndarray:
        out = np.empty(which.size, dtype=np.int64)
        for j, p in enumerate(prefixes):
            m = which == j
            if m.any():
                out[m] = self.foreign(p, int(m.sum()))
        return out

    # accounts
    def _acct_add(self, arr: pa.Array, bank: np.ndarray, country: np.ndarray) -> np.ndarray:
        self.acct_bank.append(np.asarray(bank, dtype=np.int16))
        self.acct_country.append(np.asarray(country, dtype=np.int16))
        return self.account.add(arr)

    def our_account(self, n: int) -> np.ndarray:
        suf = self._perm("ACCT", n, 10**15)
        arr = _fixed_to_arrow(_hcat(_const(OUR_BIN, n), _digits(suf, 15)))
        return self._acct_add(arr, np.full(n, _BANK_IDX["ICBC"]), np.zeros(n))

    def other_bank_account(self, n: int) -> np.ndarray:
        bins = [b for b in DOMESTIC_BINS if b != OUR_BIN]
        which = self.rng.integers(0, len(bins), n)
        suf = self._perm("ACCT", n, 10**15)
        arr = _fixed_to_arrow(_hcat(_table_rows(bins, which), _digits(suf, 15)))
        bank = np.array([_BANK_IDX[DOMESTIC_BINS[b]] for b in bins])[which]
        return self._acct_add(arr, bank, np.zeros(n))

    def foreign_account(self, n: int, countries: list[str]) -> np.ndarray:
        which = self.rng.integers(0, len(countries), n)
        suf = self._perm("FACCT", n, 10**16)
        arr = _fixed_to_arrow(_hcat(_table_rows(countries, which), _digits(suf, 16)))
        bank = np.array([_BANK_IDX[FOREIGN_BANKS[c]] for c in countries])[which]
        country = np.array([_COUNTRY_IDX[c] for c in countries])[which]
        return self._acct_add(arr, bank, country)

    # handsets and SIMs
    def new_imsi(self, n: int) -> np.ndarray:
        return self.imsi.add(_fixed_to_arrow(_hcat(_const("46000", n), _digits(self._perm("IMSI", n, 10**10), 10))))

    def new_imei(self, n: int) -> np.ndarray:
        body = _hcat(_const("86", n), _digits(self._perm("IMEI", n, 10**12), 12))  # 14 digits
        d = body.astype(np.int64) - 48
        # Luhn: double every second digit from the right of the 14-digit body (positions 13, 11, ...)
        dbl = d[:, 1::2] * 2
        total = d[:, 0::2].sum(axis=1) + (dbl // 10 + dbl % 10).sum(axis=1)
        check = (10 - total % 10) % 10
        return self.imei.add(_fixed_to_arrow(_hcat(body, _digits(check, 1))))

    def new_device(self, n: int) -> np.ndarray:
        hexes = _hexdigits(self._perm("DEV", n, 16**12, 16), 12)
        return self.device.add(_fixed_to_arrow(_hcat(_const("dev", n), hexes)))

    def new_ip(self, n: int) -> np.ndarray:
        firsts = np.array([36, 39, 42, 58, 59, 60, 61, 101, 106, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119,
                           120, 121, 122, 123, 124, 125, 171, 175, 180, 182, 183, 202, 210, 211, 218, 219, 220, 221,
                           222, 223])
        parts = [pa.array(firsts[self.rng.integers(0, firsts.size, n)]).cast(pa.string())]
        parts += [pa.array(self.rng.integers(lo, 255, n)).cast(pa.string()) for lo in (0, 0, 1)]
        return self.ip.add(pc.binary_join_element_wise(*parts, "."))

    def new_cells(self, n: int) -> np.ndarray:
        lac = self.rng.integers(10000, 65000, n)
        ci = self._perm("CELL", n, 10**5)
        return self.cell.add(_fixed_to_arrow(_hcat(_const("460-00-", n), _digits(lac, 5), _const("-", n),
                                                   _digits(ci, 5))))

    def new_iddoc(self, n: int) -> np.ndarray:
        regions = ["110101", "110105", "310104", "310115", "440305", "440106", "330106", "510107", "420106",
                   "320102", "370102", "610113"]
        nbirth = 18250  # days from 1955-01-01
        v = self._perm("IDDOC", n, len(regions) * nbirth * 1000)
        reg = v % len(regions)
        rest = v // len(regions)
        bday = (np.datetime64("1955-01-01") + (rest % nbirth)).astype(str)
        birth = np.char.replace(bday, "-", "").tolist()
        seq = rest // nbirth
        body = _hcat(_table_rows(regions, reg), _table_rows(birth, np.arange(n)), _digits(seq, 3))
        w = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
        r = ((body.astype(np.int64) - 48) * w).sum(axis=1) % 11
        check = np.frombuffer(b"10X98765432", dtype=np.uint8)[r][:, None]
        return self.iddoc.add(_fixed_to_arrow(_hcat(body, check)))

    def acct_tables(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.acct_bank), np.concatenate(self.acct_country)


# --------------------------------------------------------------------------- record buffers


class _Buf:
    """Column lists for injected records of one stream."""

    def __init__(self, cols: list[str]) -> None:
        self.cols = cols
        self.data: dict[str, list] = {c: [] for c in cols}

    def add(self, **kw) -> None:
        for c in self.cols:
            self.data[c].append(kw[c])

    def __len__(self) -> int:
        return len(self.data[self.cols[0]])

    def arrays(self, dtypes: dict[str, type]) -> dict[str, np.ndarray]:
        return {c: np.asarray(self.data[c], dtype=dtypes.get(c, np.int64)) for c in self.cols}


_CALL_COLS = ["ts", "caller", "callee", "direction", "duration", "answered", "imsi", "imei", "cell", "trunk",
              "case", "typ"]
_SMS_COLS = ["ts", "sender", "receiver", "direction", "case", "typ"]
_SIM_COLS = ["ts", "msisdn", "event", "imsi", "imei", "iddoc", "case", "typ"]
_PAY_COLS = ["ts", "payer", "payer_phone", "payee", "cents", "channel", "device", "ip", "case", "typ", "role",
             "factor"]
_DTYPES = {"answered": bool, "factor": np.float64}


def _stable_sort(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.argsort(cols["ts"], kind="stable")
    return {k: v[order] for k, v in cols.items()}


def _concat(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([a[k], b[k].astype(a[k].dtype)]) for k in a}


def _sample_times(rng, n: int, days: int, t0: int, profile: np.ndarray, day=None) -> np.ndarray:
    p = profile / profile.sum()
    if day is None:
        day = rng.integers(0, days, n)
    hour = rng.choice(24, size=n, p=p)
    return t0 + day * DAY + hour * HOUR + rng.integers(0, HOUR, n)


# --------------------------------------------------------------------------- generator


class _Gen:
    def __init__(self, customers: int, days: int, seed: int, start: str, cases: dict[str, int] | None,
                 case_rate: float) -> None:
        if customers < 60:
            raise ValueError("customers must be >= 60 (wangiri and dialer cases need >= 40 distinct victims)")
        if days < 1:
            raise ValueError("days must be >= 1")
        self.N = customers
        self.days = days
        self.W = days * DAY
        self.rng = np.random.default_rng(seed)
        d = np.datetime64(_dt.date.fromisoformat(start), "D")
        self.start_date = _dt.date.fromisoformat(start)
        self.t0 = int(d.astype("datetime64[s]").astype(np.int64)) - TZ_OFFSET_S  # local midnight as epoch
        self.E = _Entities(self.rng)
        default = max(3, round(customers * case_rate))
        self.n_cases = {t: default for t in CASE_TYPOLOGIES}
        self.n_cases["wangiri_callback"] = max(3, default // 3)
        for k, v in (cases or {}).items():
            if k not in self.n_cases:
                raise ValueError(f"unknown typology {k!r}")
            self.n_cases[k] = int(v)
        self.n_cases["wangiri_callback"] = max(3, self.n_cases["wangiri_callback"])
        self.n_cases["wangiri"] = max(self.n_cases["wangiri"], self.n_cases["wangiri_callback"])
        self.case_ids: list[str] = []
        self.calls = _Buf(_CALL_COLS)
        self.sms = _Buf(_SMS_COLS)
        self.sims = _Buf(_SIM_COLS)
        self.pays = _Buf(_PAY_COLS)
        self.reported_accounts: list[int] = []
        self.reported_numbers: list[int] = []
        self.role_used: list[int] = []
        self.swap_times: list[tuple[int, int, int]] = []  # (customer, ts, new imsi)
        self.cashout_times: list[tuple[int, int]] = []  # (customer, ts)

    # ---------------------------------------------------------------- customers
    def build_customers(self) -> None:
        rng, E, N = self.rng, self.E, self.N
        self.c_phone = E.cn_mobile(N, CUSTOMER_PREFIXES)
        self.c_imsi = E.new_imsi(N)
        self.c_imei = E.new_imei(N)
        self.c_iddoc = E.new_iddoc(N)
        self.c_acct = E.our_account(N)
        self.c_device = E.new_device(N)
        self.c_ip = E.new_ip(N)
        n_cells = max(60, N // 40)
        self.cells = E.new_cells(n_cells)
        self.c_home = self.cells[rng.integers(0, n_cells, N)]
        self.c_work = self.cells[rng.integers(0, n_cells, N)]
        self.c_act = np.clip(rng.gamma(4.0, 0.25, N), 0.2, 2.5)
        self.c_ncontacts = rng.integers(5, 16, N)
        # contact pool: people with a phone and an account at another bank
        P = 3 * N
        is_land = rng.random(P) < 0.15
        ph = np.empty(P, dtype=np.int64)
        ph[~is_land] = E.cn_mobile(int((~is_land).sum()), OTHER_MOBILE_PREFIXES)
        ph[is_land] = E.cn_landline(int(is_land.sum()))
        self.k_phone = ph
        self.k_acct = E.other_bank_account(P)
        self.k_device = E.new_device(P)
        self.k_ip = E.new_ip(P)
        self.c_contacts = rng.integers(0, P, (N, 15))
        # regular payees: 5 slots per customer, not shared; 1 % abroad
        self.c_npayees = rng.integers(2, 6, N)
        abroad = rng.random(N * 5) < 0.01
        pay = np.empty(N * 5, dtype=np.int64)
        dom = ~abroad
        n_ours = int(dom.sum() * 0.3)
        dom_idx = np.flatnonzero(dom)
        pay[dom_idx[:n_ours]] = E.our_account(n_ours)
        pay[dom_idx[n_ours:]] = E.other_bank_account(dom_idx.size - n_ours)
        pay[abroad] = E.foreign_account(int(abroad.sum()), NORMAL_FOREIGN_COUNTRIES)
        self.c_payees = pay.reshape(N, 5)
        self.c_payee_typ = np.exp(rng.normal(np.log(300.0), 1.0, (N, 5)))
        # one-off numbers, hotlines, international pool, SMS service senders
        n_other = max(200, N // 2)
        self.other_phones = np.concatenate([E.cn_mobile(n_other - n_other // 10, OTHER_MOBILE_PREFIXES),
                                            E.cn_special(n_other // 10, "400", 7)])
        n_intl = max(100, N // 10)
        w = NORMAL_INTL_W / NORMAL_INTL_W.sum()
        self.intl_phones = E.foreign_mixed(NORMAL_INTL, rng.choice(len(NORMAL_INTL), n_intl, p=w))
        self.service_phones = E.cn_special(300, "106", 8)
        # employers: at most 3 of our customers each
        n_emp = math.ceil(N / 3)
        self.e_acct = E.other_bank_account(n_emp)
        self.e_phone = E.cn_landline(n_emp)
        self.e_device = E.new_device(n_emp)
        self.e_ip = E.new_ip(n_emp)
        self.c_employer = rng.permutation(N) // 3
        r = rng.random(N)
        self.c_paytype = np.where(r < 0.6, 1, np.where(r < 0.8, 2, 0))  # 1 monthly, 2 weekly, 0 none
        self.c_salary = np.round(np.clip(np.exp(rng.normal(np.log(9000), 0.45, N)), 3000, 40000) * 100)
        self.c_payweekday = rng.integers(0, 5, N)
        self.c_balance0 = np.round(np.exp(rng.normal(np.log(20000), 1.0, N)) * 100).astype(np.int64)
        self.role_perm = rng.permutation(N)
        self.role_ptr = 0

    def role(self, k: int = 1) -> np.ndarray:
        """k customers for exclusive case roles (without replacement while they last)."""
        out = []
        for _ in range(k):
            out.append(int(self.role_perm[self.role_ptr % self.N]))
            self.role_ptr += 1
        self.role_used.extend(out)
        return np.array(out)

    # ---------------------------------------------------------------- background
    def bg_calls(self) -> dict[str, np.ndarray]:
        rng, N = self.rng, self.N
        n_per = rng.poisson(4.0 * self.days * self.c_act)
        cust = np.repeat(np.arange(N), n_per)
        M = cust.size
        ts = _sample_times(rng, M, self.days, self.t0, _H_CALL)
        direction = (rng.random(M) < 0.55).astype(np.int8)
        r = rng.random(M)
        kind = np.where(r < 0.90, 0, np.where(r < 0.98, 1, 2))
        j = (self.c_ncontacts[cust] * rng.random(M) ** 1.7).astype(np.int64)
        other = self.k_phone[self.c_contacts[cust, j]]
        m1 = kind == 1
        other[m1] = self.other_phones[rng.integers(0, self.other_phones.size, int(m1.sum()))]
        m2 = kind == 2
        other[m2] = self.intl_phones[rng.integers(0, self.intl_phones.size, int(m2.sum()))]
        trunk = (kind == 2).astype(np.int8)
        answered = rng.random(M) < np.where(kind == 2, 0.75, 0.86)
        dur = np.clip(np.rint(np.exp(rng.normal(np.log(55.0), 1.0, M))), 1, 3600).astype(np.int64)
        dur[~answered] = 0
        me = self.c_phone[cust]
        caller = np.where(direction == OUT, me, other)
        callee = np.where(direction == OUT, other, me)
        local = ts - self.t0
        hour = (local % DAY) // HOUR
        weekday = (self.start_date.weekday() + local // DAY) % 7
        at_work = (hour >= 9) & (hour < 18) & (weekday < 5) & (rng.random(M) < 0.6)
        cell = np.where(at_work, self.c_work[cust], self.c_home[cust])
        roam = rng.random(M) < 0.08
        cell[roam] = self.cells[rng.integers(0, self.cells.size, int(roam.sum()))]
        return {"ts": ts, "caller": caller, "callee": callee, "direction": direction, "duration": dur,
                "answered": answered, "imsi": self.c_imsi[cust], "imei": self.c_imei[cust], "cell": cell,
                "trunk": trunk, "case": np.full(M, -1, np.int32), "typ": np.full(M, -1, np.int16), "cust": cust}

    def bg_sms(self) -> dict[str, np.ndarray]:
        rng, N = self.rng, self.N
        n_per = rng.poisson(2.0 * self.days * self.c_act)
        cust = np.repeat(np.arange(N), n_per)
        M = cust.size
        ts = _sample_times(rng, M, self.days, self.t0, _H_SMS)
        direction = (rng.random(M) < 0.45).astype(np.int8)
        j = (self.c_ncontacts[cust] * rng.random(M) ** 1.5).astype(np.int64)
        other = self.k_phone[self.c_contacts[cust, j]]
        svc = (direction == IN) & (rng.random(M) < 0.4)
        other[svc] = self.service_phones[rng.integers(0, self.service_phones.size, int(svc.sum()))]
        oneoff = (direction == OUT) & (rng.random(M) < 0.05)
        other[oneoff] = self.other_phones[rng.integers(0, self.other_phones.size, int(oneoff.sum()))]
        me = self.c_phone[cust]
        return {"ts": ts, "sender": np.where(direction == OUT, me, other),
                "receiver": np.where(direction == OUT, other, me), "direction": direction,
                "case": np.full(M, -1, np.int32), "typ": np.full(M, -1, np.int16)}

    def bg_payments(self) -> dict[str, np.ndarray]:
        rng, N, E = self.rng, self.N, self.E
        # outflows
        per_day = np.minimum(rng.poisson(np.repeat(1.45 * self.c_act, self.days).reshape(N, self.days)), 4)
        flat = per_day.ravel()
        cust = np.repeat(np.repeat(np.arange(N), self.days), flat)
        day = np.repeat(np.tile(np.arange(self.days), N), flat)
        M = cust.size
        ts = _sample_times(rng, M, self.days, self.t0, _H_PAY, day=day)
        regular = rng.random(M) < 0.85
        j = (self.c_npayees[cust] * rng.random(M)).astype(np.int64)
        payee = self.c_payees[cust, j]
        cents = self.c_payee_typ[cust, j] * np.exp(rng.normal(0.0, 0.25, M))
        cents = np.clip(cents, 1.0, 19999.99)
        n_new = int((~regular).sum())
        payee[~regular] = E.other_bank_account(n_new)
        cents[~regular] = np.clip(np.exp(rng.normal(np.log(120.0), 1.0, n_new)), 1.0, 4999.99)
        cents = np.round(cents * 100).astype(np.int64)
        cents = np.maximum(cents, 100 + rng.integers(0, 100, M))
        r = rng.random(M)
        channel = np.where(r < 0.74, APP, np.where(r < 0.88, WEB, np.where(r < 0.95, COUNTER, ATM))).astype(np.int8)
        online = channel <= WEB
        out = {"ts": ts, "payer": self.c_acct[cust], "payer_phone": self.c_phone[cust], "payee": payee,
               "cents": cents, "channel": channel, "device": np.where(online, self.c_device[cust], -1),
               "ip": np.where(online, self.c_ip[cust], -1), "cust_out": cust}
        # salary inflows
        parts_c, parts_t = [], []
        for d in range(self.days):
            date = self.start_date + _dt.timedelta(days=d)
            sel = (self.c_paytype == 2) & (self.c_payweekday == date.weekday())
            if date.day == 10:
                sel |= self.c_paytype == 1
            c = np.flatnonzero(sel)
            parts_c.append(c)
            parts_t.append(self.t0 + d * DAY + 8 * HOUR + rng.integers(0, 3 * HOUR, c.size))
        sc = np.concatenate(parts_c)
        st = np.concatenate(parts_t)
        s_cents = np.where(self.c_paytype[sc] == 2, self.c_salary[sc] / 4.3, self.c_salary[sc]).astype(np.int64)
        s_cents += rng.integers(1, 100, sc.size)
        emp = self.c_employer[sc]
        # money from contacts
        n_fr = rng.poisson(0.06 * self.days, N)
        fc = np.repeat(np.arange(N), n_fr)
        fk = self.c_contacts[fc, (self.c_ncontacts[fc] * rng.random(fc.size)).astype(np.int64)]
        ft = _sample_times(rng, fc.size, self.days, self.t0, _H_PAY)
        f_cents = np.round(np.clip(np.exp(rng.normal(np.log(200.0), 1.0, fc.size)), 1, 4999.99) * 100)
        f_cents = np.maximum(f_cents.astype(np.int64), 100 + rng.integers(0, 100, fc.size))
        inflow = {
            "ts": np.concatenate([st, ft]),
            "payer": np.concatenate([self.e_acct[emp], self.k_acct[fk]]),
            "payer_phone": np.concatenate([self.e_phone[emp], self.k_phone[fk]]),
            "payee": np.concatenate([self.c_acct[sc], self.c_acct[fc]]),
            "cents": np.concatenate([s_cents, f_cents]),
            "channel": np.concatenate([np.full(sc.size, WEB), np.full(fc.size, APP)]).astype(np.int8),
            "device": np.concatenate([self.e_device[emp], self.k_device[fk]]),
            "ip": np.concatenate([self.e_ip[emp], self.k_ip[fk]]),
            "cust_out": np.full(sc.size + fc.size, -1, np.int64),
        }
        res = {k: np.concatenate([out[k], inflow[k].astype(out[k].dtype)]) for k in out}
        res["cents"] += res["cents"] % 100_000 == 0  # never a multiple of 1,000
        return res

    # ---------------------------------------------------------------- case helpers
    def new_case(self, typology: str) -> int:
        self.case_ids.append(f"{CASE_TYPOLOGIES[typology]}-{len(self.case_ids) + 1:06d}")
        return len(self.case_ids) - 1

    def case_start(self, span: float) -> int:
        return self.t0 + int(self.rng.integers(0, max(1, self.W - int(span) - 1)))

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def ui(self, lo: int, hi: int) -> int:
        """integer in [lo, hi] inclusive"""
        return int(self.rng.integers(lo, hi + 1))

    def cents(self, lo: float, hi: float) -> int:
        c = int(self.rng.integers(int(round(lo * 100)), int(round(hi * 100)) + 1))
        if c % 100_000 == 0:
            c += 1
        return c

    def call(self, ts, caller, callee, direction, duration, answered, cust_or_attrs, trunk, case, typ):
        if isinstance(cust_or_attrs, tuple):
            imsi, imei, cell = cust_or_attrs
        else:
            c = cust_or_attrs
            imsi, imei, cell = self.c_imsi[c], self.c_imei[c], self.c_home[c]
        self.calls.add(ts=int(ts), caller=int(caller), callee=int(callee), direction=direction,
                       duration=int(duration) if answered else 0, answered=bool(answered), imsi=int(imsi),
                       imei=int(imei), cell=int(cell), trunk=trunk, case=case, typ=_TYP_INDEX[typ])

    def pay(self, ts, payer, payer_phone, payee, cents, channel, device, ip, case, typ, role=0, factor=0.0):
        online = channel in (APP, WEB)
        self.pays.add(ts=int(ts), payer=int(payer), payer_phone=int(payer_phone), payee=int(payee),
                      cents=int(cents), channel=channel, device=int(device) if online else -1,
                      ip=int(ip) if online else -1, case=case, typ=_TYP_INDEX[typ], role=role, factor=factor)

    def sim(self, ts, msisdn, event, imsi, imei, iddoc, case, typ):
        self.sims.add(ts=int(ts), msisdn=int(msisdn), event=event, imsi=int(imsi), imei=int(imei),
                      iddoc=int(iddoc), case=case, typ=_TYP_INDEX[typ])

    def fresh_person(self, our_bank: bool = True) -> tuple[int, int, int, int]:
        E = self.E
        acct = E.our_account(1)[0] if our_bank else E.other_bank_account(1)[0]
        return int(acct), int(E.cn_mobile(1, OTHER_MOBILE_PREFIXES)[0]), int(E.new_device(1)[0]), int(E.new_ip(1)[0])

    def spread(self, t0: int, n: int, span: float) -> np.ndarray:
        return t0 + np.sort(self.rng.integers(0, max(1, int(span)), n))

    # ---------------------------------------------------------------- typologies
    def t_wangiri(self) -> None:
        rng, E = self.rng, self.E
        n, n_cb = self.n_cases["wangiri"], self.n_cases["wangiri_callback"]
        for k in range(n):
            case = self.new_case("wangiri")
            cb = k < n_cb
            prefixes = WANGIRI_CALLBACK_PREFIXES if cb else WANGIRI_PREFIXES
            number = int(E.foreign(prefixes[int(rng.integers(0, len(prefixes)))], 1)[0])
            nv = self.ui(20, 40)
            victims = rng.choice(self.N, nv, replace=False)
            t0 = self.case_start(3 * HOUR)
            times = self.spread(t0, nv, self.u(120, 540))
            for v, t in zip(victims, times):
                self.call(t, number, self.c_phone[v], IN, 0, False, v, INTL, case, "wangiri")
            if cb:
                # the victim that calls back gets an exclusive role (its own later calls are touched)
                i = int(rng.integers(0, nv))
                v = int(victims[i])
                self.role_used.append(v)
                self.call(times[i] + self.ui(300, 7000), self.c_phone[v], number, OUT, self.ui(61, 1200), True, v,
                          INTL, case, "wangiri_callback")

    def t_simbox(self) -> None:
        rng, E = self.rng, self.E
        for _ in range(self.n_cases["simbox"]):
            case = self.new_case("simbox")
            msisdn = int(E.cn_mobile(1, CUSTOMER_PREFIXES)[0])
            attrs = (int(E.new_imsi(1)[0]), int(E.new_imei(1)[0]), int(self.cells[rng.integers(0, self.cells.size)]))
            n = self.ui(60, 120)
            nd = max(50, int(n * self.u(0.8, 1.0)))
            nd = min(nd, n)
            callees = E.cn_mobile(nd, OTHER_MOBILE_PREFIXES)
            seq = np.concatenate([callees, callees[rng.integers(0, nd, n - nd)]])
            rng.shuffle(seq)
            t0 = self.case_start(HOUR)
            times = self.spread(t0, n, self.u(1800, 3300))
            for t, c in zip(times, seq):
                ans = rng.random() < 0.92
                dur = int(np.clip(round(np.exp(rng.normal(np.log(45.0), 0.6))), 15, 300))
                self.call(t, msisdn, c, OUT, dur, ans, attrs, DOM, case, "simbox")

    def t_irsf(self) -> None:
        rng, E = self.rng, self.E
        for _ in range(self.n_cases["irsf"]):
            case = self.new_case("irsf")
            c = int(self.role()[0])
            nums = [int(E.foreign(IRSF_PREFIXES[int(rng.integers(0, 4))], 1)[0]) for _ in range(self.ui(1, 3))]
            n = self.ui(5, 7)
            t = self.case_start(6 * HOUR)
            for _ in range(n):
                dur = self.ui(1200, 2400)
                self.call(t, self.c_phone[c], nums[int(rng.integers(0, len(nums)))], OUT, dur, True, c, INTL, case,
                          "irsf")
                t += dur + self.ui(60, 600)

    def t_new_sim_burst(self) -> None:
        rng, E = self.rng, self.E
        for _ in range(self.n_cases["new_sim_burst"]):
            case = self.new_case("new_sim_burst")
            msisdn = int(E.cn_mobile(1, CUSTOMER_PREFIXES)[0])
            imsi, imei, doc = int(E.new_imsi(1)[0]), int(E.new_imei(1)[0]), int(E.new_iddoc(1)[0])
            cells = self.cells[rng.integers(0, self.cells.size, 3)]
            t_act = self.case_start(23 * HOUR)
            self.sim(t_act, msisdn, ACT, imsi, imei, doc, case, "new_sim_burst")
            n = self.ui(30, 50)
            begin = t_act + self.ui(600, 7200)
            span = self.u(6 * HOUR, min(20 * HOUR, t_act + 23 * HOUR - begin))
            callees = E.cn_mobile(n, OTHER_MOBILE_PREFIXES)
            for t, cl in zip(self.spread(begin, n, span), callees):
                ans = rng.random() < 0.75
                dur = int(np.clip(round(np.exp(rng.normal(np.log(70.0), 0.8))), 15, 900))
                self.call(t, msisdn, cl, OUT, dur, ans, (imsi, imei, int(cells[int(rng.integers(0, 3))])), DOM, case,
                          "new_sim_burst")

    def t_dialer(self) -> None:
        rng, E = self.rng, self.E
        for _ in range(self.n_cases["dialer"]):
            case = self.new_case("dialer")
            number = int(E.cn_mobile(1, VIRTUAL_PREFIXES)[0])
            n = self.ui(40, 59)
            nd = self.ui(30, n)
            victims = rng.choice(self.N, nd, replace=False)
            seq = np.concatenate([victims, victims[rng.integers(0, nd, n - nd)]])
            rng.shuffle(seq)
            span = self.u(2700, 3480)
            t0 = self.case_start(HOUR) + 20
            times = np.sort(t0 + np.linspace(0, span, n).astype(np.int64) + rng.integers(-20, 21, n))
            for t, v in zip(times, seq):
                ans = rng.random() < 0.35
                self.call(t, number, self.c_phone[v], IN, self.ui(1, 14), ans, int(v), DOM, case, "dialer")

    def t_spoofed_cli(self) -> None:
        rng, E = self.rng, self.E
        for _ in range(self.n_cases["spoofed_cli"]):
            case = self.new_case("spoofed_cli")
            mobile = rng.random() < 0.6
            number = int(E.cn_mobile(1, OTHER_MOBILE_PREFIXES)[0] if mobile else E.cn_landline(1, ["10"])[0])
            n = self.ui(3, 8)
            victims = rng.choice(self.N, n, replace=False)
            span = self.u(600, 3 * HOUR)
            for t, v in zip(self.spread(self.case_start(span), n, span), victims):
                ans = rng.random() < 0.7
                dur = int(np.clip(round(np.exp(rng.normal(np.log(120.0), 0.8))), 5, 1800))
                self.call(t, number, self.c_phone[v], IN, dur, ans, int(v), INTL, case, "spoofed_cli")

    def t_sim_swap_transfer(self) -> None:
        rng, E = self.rng, self.E
        for k in range(self.n_cases["sim_swap_transfer"]):
            case = self.new_case("sim_swap_transfer")
            c = int(self.role()[0])
            imsi, imei = int(E.new_imsi(1)[0]), int(E.new_imei(1)[0])
            t_swap = self.case_start(DAY)
            self.sim(t_swap, self.c_phone[c], SWAP, imsi, imei, self.c_iddoc[c], case, "sim_swap_transfer")
            self.swap_times.append((c, t_swap, imsi))
            dev, ip = int(E.new_device(1)[0]), int(E.new_ip(1)[0])
            variant = k % 3
            t = t_swap + self.ui(20 * MIN, 12 * HOUR)
            for _ in range(self.ui(1, 2)):
                if variant == 2:
                    payee = int(self.c_payees[c, int(rng.integers(0, self.c_npayees[c]))])
                else:
                    payee = int(E.other_bank_account(1)[0])
                amt = self.cents(3000, 19999.99) if variant == 1 else self.cents(20000, 44999.99)
                self.pay(min(t, t_swap + DAY - 60), self.c_acct[c], self.c_phone[c], payee, amt,
                         APP if rng.random() < 0.7 else WEB, dev, ip, case, "sim_swap_transfer")
                t += self.ui(5 * MIN, 6 * HOUR)

    def t_app_scam(self) -> None:
        rng, E = self.rng, self.E
        for _ in range(self.n_cases["app_scam"]):
            case = self.new_case("app_scam")
            c = int(self.role()[0])
            cc = APP_SCAM_PREFIXES[int(rng.integers(0, len(APP_SCAM_PREFIXES)))]
            number = int(E.foreign(_APP_SCAM_SUBPREFIX[cc], 1)[0])
            t0 = self.case_start(2 * HOUR)
            dur = self.ui(600, 2400)
            self.call(t0, number, self.c_phone[c], IN, dur, True, c, INTL, case, "app_scam")
            t = t0 + dur + self.ui(120, 900)
            for _ in range(self.ui(1, 2)):
                payee = int(E.other_bank_account(1)[0])
                self.pay(min(t, t0 + HOUR - 10), self.c_acct[c], self.c_phone[c], payee, self.cents(10000, 44999.99),
                         APP, self.c_device[c], self.c_ip[c], case, "app_scam")
                t += self.ui(60, 600)

    def t_mule_fan_in(self) -> None:
        rng = self.rng
        for _ in range(self.n_cases["mule_fan_in"]):
            case = self.new_case("mule_fan_in")
            mule, _, _, _ = self.fresh_person(True)
            n = self.ui(8, 15)
            span = self.u(2 * HOUR, 22 * HOUR)
            for t in self.spread(self.case_start(span), n, span):
                acct, phone, dev, ip = self.fresh_person(False)
                self.pay(t, acct, phone, mule, self.cents(500, 9999.99), APP if rng.random() < 0.7 else WEB, dev, ip,
                         case, "mule_fan_in")

    def t_mule_fan_out(self) -> None:
        rng, E = self.rng, self.E
        for _ in range(self.n_cases["mule_fan_out"]):
            case = self.new_case("mule_fan_out")
            mule, phone, dev, ip = self.fresh_person(True)
            n = self.ui(8, 14)
            gaps = rng.integers(7 * MIN, int(22 * HOUR / n), n - 1)
            t0 = self.case_start(int(gaps.sum()) + 60)
            times = t0 + np.concatenate([[0], np.cumsum(gaps)])
            for t in times:
                payee = int(E.other_bank_account(1)[0])
                self.pay(t, mule, phone, payee, self.cents(1000, 9999.99), APP if rng.random() < 0.7 else WEB, dev, ip,
                         case, "mule_fan_out")

    def t_pass_through(self) -> None:
        rng, E = self.rng, self.E
        for _ in range(self.n_cases["pass_through"]):
            case = self.new_case("pass_through")
            hops = self.ui(1, 3)
            src = self.fresh_person(False)
            mules = [self.fresh_person(True) for _ in range(hops)]
            exit_acct = int(E.other_bank_account(1)[0])
            t = self.case_start(hops * 2 * HOUR + HOUR)
            cents = self.cents(5000, 44999.99)
            self.pay(t, src[0], src[1], mules[0][0], cents, APP, src[2], src[3], case, "pass_through")
            for h, m in enumerate(mules):
                t += self.ui(5 * MIN, 110 * MIN)
                cents = int(cents * self.u(0.901, 0.995))
                if cents % 100_000 == 0:
                    cents -= 1
                to = mules[h + 1][0] if h + 1 < hops else exit_acct
                self.pay(t, m[0], m[1], to, cents, APP if rng.random() < 0.7 else WEB, m[2], m[3], case,
                         "pass_through")

    def t_structuring(self) -> None:
        rng, E = self.rng, self.E
        for _ in range(self.n_cases["structuring"]):
            case = self.new_case("structuring")
            c = int(self.role()[0])
            payees = E.other_bank_account(self.ui(1, 2))
            n = self.ui(3, 5)
            gaps = rng.integers(30 * MIN, 5 * HOUR, n - 1)
            t0 = self.case_start(int(gaps.sum()) + 60)
            for t in t0 + np.concatenate([[0], np.cumsum(gaps)]):
                ch = COUNTER if rng.random() < 0.5 else APP
                self.pay(t, self.c_acct[c], self.c_phone[c], payees[int(rng.integers(0, payees.size))],
                         self.cents(45000.01, 49999.99), ch, self.c_device[c], self.c_ip[c], case, "structuring")

    def t_velocity(self) -> None:
        rng, E = self.rng, self.E
        for _ in range(self.n_cases["velocity"]):
            case = self.new_case("velocity")
            c = int(self.role()[0])
            payees = E.other_bank_account(self.ui(1, 4))
            n = self.ui(10, 18)
            span = self.u(600, 3300)
            for t in self.spread(self.case_start(span), n, span):
                self.pay(t, self.c_acct[c], self.c_phone[c], payees[int(rng.integers(0, payees.size))],
                         self.cents(50, 2999.99), APP, self.c_device[c], self.c_ip[c], case, "velocity")

    def t_dormant(self) -> None:
        E = self.E
        for _ in range(self.n_cases["dormant"]):
            case = self.new_case("dormant")
            acct, phone, dev, ip = self.fresh_person(True)
            t_out = self.case_start(HOUR)
            t_old = t_out - self.ui(61 * DAY, 400 * DAY)
            self.pay(t_old, acct, phone, int(E.other_bank_account(1)[0]), self.cents(100, 3000), APP, dev, ip, case,
                     "dormant")
            self.pay(t_out, acct, phone, int(E.other_bank_account(1)[0]), self.cents(20000, 150000), WEB,
                     int(E.new_device(1)[0]), int(E.new_ip(1)[0]), case, "dormant")

    def t_round_night(self) -> None:
        rng, E = self.rng, self.E
        for _ in range(self.n_cases["round_night"]):
            case = self.new_case("round_night")
            c = int(self.role()[0])
            payees = E.other_bank_account(self.ui(1, 2))
            n = self.ui(2, 4)
            midnight = self.t0 + int(rng.integers(0, self.days)) * DAY
            for t in self.spread(midnight, n, 5 * HOUR):
                self.pay(t, self.c_acct[c], self.c_phone[c], payees[int(rng.integers(0, payees.size))],
                         self.ui(1, 30) * 100_000, APP if rng.random() < 0.7 else WEB, self.c_device[c], self.c_ip[c],
                         case, "round_night")

    def t_high_risk(self) -> None:
        rng, E = self.rng, self.E
        for _ in range(self.n_cases["high_risk_jurisdiction"]):
            case = self.new_case("high_risk_jurisdiction")
            c = int(self.role()[0])
            n = self.ui(2, 4)
            payees = E.foreign_account(n, HIGH_RISK_COUNTRIES)
            span = self.u(0, 6 * HOUR)
            for t, p in zip(self.spread(self.case_start(span), n, span), payees):
                self.pay(t, self.c_acct[c], self.c_phone[c], p, self.cents(1000, 30000),
                         WEB if rng.random() < 0.6 else COUNTER, self.c_device[c], self.c_ip[c], case,
                         "high_risk_jurisdiction")

    def t_device_sharing(self) -> None:
        rng, E = self.rng, self.E
        for _ in range(self.n_cases["device_sharing"]):
            case = self.new_case("device_sharing")
            dev, ip = int(E.new_device(1)[0]), int(E.new_ip(1)[0])
            payers = [self.fresh_person(True) for _ in range(self.ui(5, 8))]
            plist = [p for p in payers for _ in range(self.ui(1, 2))]
            span = self.u(HOUR, 20 * HOUR)
            order = rng.permutation(len(plist))
            for t, i in zip(self.spread(self.case_start(span), len(plist), span), order):
                p = plist[i]
                self.pay(t, p[0], p[1], int(E.other_bank_account(1)[0]), self.cents(200, 9999.99), APP, dev, ip, case,
                         "device_sharing")

    def t_sim_per_id(self) -> None:
        E = self.E
        for _ in range(self.n_cases["sim_per_id"]):
            case = self.new_case("sim_per_id")
            doc = int(E.new_iddoc(1)[0])
            n = self.ui(5, 8)
            maxspan = min(25 * DAY, self.W - 60)
            span = self.u(0.2 * maxspan, maxspan)
            imei = int(E.new_imei(1)[0])
            for i, t in enumerate(self.spread(self.case_start(span), n, span)):
                if i % 2 == 0 and i:
                    imei = int(E.new_imei(1)[0])
                self.sim(t, int(E.cn_mobile(1, CUSTOMER_PREFIXES)[0]), ACT, int(E.new_imsi(1)[0]), imei, doc, case,
                         "sim_per_id")

    def t_reported(self) -> None:
        rng, E = self.rng, self.E
        n = self.n_cases["reported"]
        n_acc = (n + 1) // 2
        for k in range(n):
            case = self.new_case("reported")
            span = self.u(HOUR, min(3 * DAY, self.W - 60))
            if k < n_acc:
                acct = int(E.our_account(1)[0])
                self.reported_accounts.append(acct)
                m = self.ui(2, 4)
                for t, c in zip(self.spread(self.case_start(span), m, span), self.role(m)):
                    self.pay(t, self.c_acct[c], self.c_phone[c], acct, self.cents(200, 9999.99), APP,
                             self.c_device[c], self.c_ip[c], case, "reported")
            else:
                number = int(E.cn_mobile(1, VIRTUAL_PREFIXES)[0])
                self.reported_numbers.append(number)
                m = self.ui(2, 5)
                for t, v in zip(self.spread(self.case_start(span), m, span), rng.choice(self.N, m, replace=False)):
                    ans = rng.random() < 0.6
                    self.call(t, number, self.c_phone[v], IN, self.ui(20, 500), ans, int(v), DOM, case, "reported")
        # decoys: reported values that occur nowhere in the data
        self.reported_accounts += [int(x) for x in E.our_account(n_acc)]
        self.reported_numbers += [int(x) for x in E.cn_mobile(max(1, n - n_acc), VIRTUAL_PREFIXES)]

    def t_cashout(self) -> None:
        rng, E = self.rng, self.E
        for _ in range(self.n_cases["cashout"]):
            case = self.new_case("cashout")
            t = self.case_start(2 * HOUR)
            if self.role_ptr < self.N:  # a customer with no other case payment (they could overdraw it)
                c = int(self.role()[0])
                self.cashout_times.append((c, t))
                v_acct, v_phone = int(self.c_acct[c]), int(self.c_phone[c])
            else:  # customers used up: an account of ours with no other activity
                v_acct, v_phone, _, _ = self.fresh_person(True)
            mule, mphone, mdev, mip = self.fresh_person(True)
            agent = int(E.other_bank_account(1)[0])
            self.pay(t, v_acct, v_phone, mule, 0, WEB, int(E.new_device(1)[0]), int(E.new_ip(1)[0]), case, "cashout",
                     role=1)
            self.pay(t + self.ui(5 * MIN, 55 * MIN), mule, mphone, agent, 0, ATM if rng.random() < 0.5 else APP, mdev,
                     mip, case, "cashout", role=2, factor=self.u(0.97, 1.0))

    # ---------------------------------------------------------------- assembly
    def background_swaps(self) -> None:
        rng = self.rng
        used = np.zeros(self.N, bool)
        used[np.array(self.role_used, dtype=np.int64)] = True
        cand = np.flatnonzero(~used)
        n = int(rng.binomial(cand.size, min(1.0, 0.0005 * self.days))) if cand.size else 0
        chosen = rng.choice(cand, n, replace=False) if n else np.array([], np.int64)
        times = self.t0 + rng.integers(0, self.W, n)
        imsis = self.E.new_imsi(n) if n else np.array([], np.int64)
        imeis = self.E.new_imei(n) if n else np.array([], np.int64)
        self.bg_swaps = (chosen, times, imsis, imeis)
        for c, t, s in zip(chosen, times, imsis):
            self.swap_times.append((int(c), int(t), int(s)))

    def sim_events(self) -> dict[str, np.ndarray]:
        rng, N = self.rng, self.N
        act_t = self.t0 - rng.integers(30 * DAY, 1500 * DAY, N)
        bg = {"ts": act_t, "msisdn": self.c_phone, "event": np.zeros(N, np.int8), "imsi": self.c_imsi,
              "imei": self.c_imei, "iddoc": self.c_iddoc, "case": np.full(N, -1, np.int32),
              "typ": np.full(N, -1, np.int16)}
        chosen, times, imsis, imeis = self.bg_swaps
        sw = {"ts": times, "msisdn": self.c_phone[chosen], "event": np.full(chosen.size, SWAP, np.int8),
              "imsi": imsis, "imei": self.c_imei[chosen], "iddoc": self.c_iddoc[chosen],
              "case": np.full(chosen.size, -1, np.int32), "typ": np.full(chosen.size, -1, np.int16)}
        out = _concat(bg, sw)
        return _stable_sort(_concat(out, self.sims.arrays(_DTYPES)))

    def calls_all(self, bg: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cust = bg.pop("cust")
        if self.swap_times:
            sw_t = np.full(self.N, np.iinfo(np.int64).max)
            sw_imsi = self.c_imsi.copy()
            for c, t, s in sorted(self.swap_times, key=lambda x: x[1], reverse=True):
                sw_t[c], sw_imsi[c] = t, s  # earliest swap wins (rare: two swaps)
            after = bg["ts"] > sw_t[cust]
            bg["imsi"] = np.where(after, sw_imsi[cust], bg["imsi"])
        return _stable_sort(_concat(bg, self.calls.arrays(_DTYPES)))

    def payments_all(self, bg: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cust = bg.pop("cust_out")
        keep = np.ones(cust.size, bool)
        # no outflows in the 24 h after a swap; none after a cashout
        blocks = [(c, t, t + DAY) for c, t, _ in self.swap_times] + [(c, t, np.iinfo(np.int64).max)
                                                                    for c, t in self.cashout_times]
        if blocks:
            lim_lo = np.full(self.N, np.iinfo(np.int64).max)
            lim_hi = np.full(self.N, np.iinfo(np.int64).min)
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
        self._damp_pass_through(bg, cust)
        n = bg["ts"].size
        bg["case"] = np.full(n, -1, np.int32)
        bg["typ"] = np.full(n, -1, np.int16)
        bg["role"] = np.zeros(n, np.int64)
        bg["factor"] = np.zeros(n)
        pay = _stable_sort(_concat(bg, self.pays.arrays(_DTYPES)))
        self._balances(pay)
        return pay

    def _damp_pass_through(self, bg: dict[str, np.ndarray], cust: np.ndarray) -> None:
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

    def _balances(self, pay: dict[str, np.ndarray]) -> None:
        rng = self.rng
        n_acct = self.E.account.n
        init = np.round(np.exp(rng.normal(np.log(20000.0), 1.2, n_acct)) * 100).astype(np.int64)
        init[self.c_acct] = self.c_balance0
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

    # ---------------------------------------------------------------- run
    def run(self) -> dict[str, dict[str, np.ndarray]]:
        self.build_customers()
        bg_calls = self.bg_calls()
        bg_sms = self.bg_sms()
        bg_pay = self.bg_payments()
        for t in CASE_TYPOLOGIES:
            getattr(self, "t_high_risk" if t == "high_risk_jurisdiction" else f"t_{t}")()
        self.background_swaps()
        return {
            "call": self.calls_all(bg_calls),
            "sms": _stable_sort(_concat(bg_sms, self.sms.arrays(_DTYPES))),
            "sim_event": self.sim_events(),
            "payment": self.payments_all(bg_pay),
        }


# --------------------------------------------------------------------------- writing

_CHUNK = 1_000_000
_DIR = pa.array(["in", "out"])
_TRUNK = pa.array(["domestic", "international"])
_EVENT = pa.array(EVENTS)
_CHANNEL = pa.array(CHANNELS)


def _small(tab: pa.Array, idx: np.ndarray) -> pa.Array:
    return pc.take(tab, pa.array(np.asarray(idx, dtype=np.int64)))


def _batch(stream: str, cols: dict[str, np.ndarray], lo: int, hi: int, E: _Entities,
           acct_bank: np.ndarray, acct_country: np.ndarray) -> pa.RecordBatch:
    s = {k: v[lo:hi] for k, v in cols.items()}
    n = hi - lo
    arrays: list[pa.Array] = [_ids(ID_PREFIX[stream], lo + 1, n), _timestamps(s["ts"])]
    if stream == "call":
        arrays += [E.phone.take(s["caller"]), E.phone.take(s["callee"]), _small(_DIR, s["direction"]),
                   pa.array(s["duration"], pa.int64()), pa.array(s["answered"], pa.bool_()), E.imsi.take(s["imsi"]),
                   E.imei.take(s["imei"]), E.cell.take(s["cell"]), _small(_TRUNK, s["trunk"])]
    elif stream == "sms":
        arrays += [E.phone.take(s["sender"]), E.phone.take(s["receiver"]), _small(_DIR, s["direction"])]
    elif stream == "sim_event":
        arrays += [E.phone.take(s["msisdn"]), _small(_EVENT, s["event"]), E.imsi.take(s["imsi"]),
                   E.imei.take(s["imei"]), E.iddoc.take(s["iddoc"])]
    else:
        arrays += [E.account.take(s["payer"]), E.phone.take(s["payer_phone"]), E.account.take(s["payee"]),
                   _small(pa.array(BANKS), acct_bank[s["payee"]]),
                   _small(pa.array(COUNTRIES), acct_country[s["payee"]]),
                   _money(s["cents"]), _small(pa.array(["CNY"]), np.zeros(n, np.int64)),
                   _small(_CHANNEL, s["channel"]), E.device.take(s["device"]), E.ip.take(s["ip"]),
                   _money(s["bal_before"]), _money(s["bal_after"])]
    return pa.RecordBatch.from_arrays(arrays, names=COLUMNS[stream])


def _atomic_write(path: pathlib.Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _write_stream(path: pathlib.Path, stream: str, cols: dict[str, np.ndarray], E: _Entities,
                  acct_bank: np.ndarray, acct_country: np.ndarray) -> int:
    n = cols["ts"].size
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none")

    def write(fh):
        fh.write((",".join(COLUMNS[stream]) + "\n").encode())
        writer = None
        for lo in range(0, n, _CHUNK):
            b = _batch(stream, cols, lo, min(n, lo + _CHUNK), E, acct_bank, acct_country)
            if writer is None:
                writer = pacsv.CSVWriter(fh, b.schema, write_options=opts)
            writer.write_batch(b)
        if writer is not None:
            writer.close()

    _atomic_write(path, write)
    return n


def generate(out_dir: pathlib.Path, customers: int = 2000, days: int = 7, seed: int = 1, start: str = "2026-03-01",
             *, cases: dict[str, int] | None = None, case_rate: float = DEFAULT_CASE_RATE) -> dict[str, int]:
    """Write the labelled synthetic data set into out_dir; return rows per file (see the module docstring).

    ``cases`` overrides the number of cases per typology (keys of :data:`CASE_TYPOLOGIES`
    plus ``wangiri_callback``); the default is ``max(3, round(customers * case_rate))``.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    g = _Gen(customers, days, seed, start, cases, case_rate)
    data = g.run()
    E = g.E
    acct_bank, acct_country = E.acct_tables()
    counts: dict[str, int] = {}
    label_parts = []
    for stream in STREAMS:
        cols = data[stream]
        counts[f"{stream}.csv"] = _write_stream(out_dir / f"{stream}.csv", stream, cols, E, acct_bank, acct_country)
        rows = np.flatnonzero(cols["case"] >= 0)
        label_parts.append((stream, rows, cols["typ"][rows], cols["case"][rows]))
        del data[stream]
    # labels: by stream, then record id
    stream_col, rec_col, typ_col, case_col = [], [], [], []
    for stream, rows, typ, case in label_parts:
        stream_col.append(np.full(rows.size, STREAMS.index(stream)))
        rec_col.append(rows)
        typ_col.append(typ)
        case_col.append(case)
    s_idx = np.concatenate(stream_col).astype(np.int64)
    rows = np.concatenate(rec_col)
    rec_ids = pc.binary_join_element_wise(
        _small(pa.array([ID_PREFIX[s] for s in STREAMS]), s_idx),
        _fixed_to_arrow(_digits(rows + 1, 9)), "")
    labels = pa.RecordBatch.from_arrays(
        [_small(pa.array(STREAMS), s_idx), rec_ids, _small(pa.array(TYPOLOGIES), np.concatenate(typ_col)),
         _small(pa.array(g.case_ids), np.concatenate(case_col))], names=COLUMNS["labels"])

    def write_labels(fh):
        fh.write((",".join(COLUMNS["labels"]) + "\n").encode())
        pacsv.write_csv(labels, fh, pacsv.WriteOptions(include_header=False, quoting_style="none"))

    _atomic_write(out_dir / "labels.csv", write_labels)
    counts["labels.csv"] = labels.num_rows
    for name, reg, vals in (("reported_accounts.txt", E.account, g.reported_accounts),
                            ("reported_numbers.txt", E.phone, g.reported_numbers)):
        text = "".join(s + "\n" for s in reg.take(np.array(vals, np.int64)).to_pylist())
        _atomic_write(out_dir / name, lambda fh, t=text: fh.write(t.encode()))
        counts[name] = len(vals)
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate labelled synthetic fraud data (see module docstring).")
    ap.add_argument("out_dir", type=pathlib.Path)
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", default="2026-03-01")
    ap.add_argument("--case-rate", type=float, default=DEFAULT_CASE_RATE)
    a = ap.parse_args(argv)
    t = time.perf_counter()
    counts = generate(a.out_dir, a.customers, a.days, a.seed, a.start, case_rate=a.case_rate)
    for k, v in counts.items():
        print(f"{k}\t{v}")
    print(f"records\t{sum(v for k, v in counts.items() if k.endswith('.csv') and k != 'labels.csv')}")
    print(f"seconds\t{time.perf_counter() - t:.1f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
