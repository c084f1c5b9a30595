"""What typologies write with: per-stream record buffers, case ids, customer roles and drawing helpers.

Every helper draws from the one shared RNG, so the order of calls (across and within typologies) is part
of the output: reordering two draws changes every byte after them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .entities import OTHER_MOBILE_PREFIXES, Entities
from .population import Population
from .schema import APP, DAY, HOUR, WEB, Window


class Buf:
    """Column lists for injected records of one stream."""

    def __init__(self, cols: list[str]) -> None:
        self.cols = cols
        self.data: dict[str, list] = {c: [] for c in cols}

    def add(self, **kw) -> None:
        for c in self.cols:
            self.data[c].append(kw[c])

    def arrays(self) -> dict[str, np.ndarray]:
        return {c: np.asarray(self.data[c], dtype=_DTYPES.get(c, np.int64)) for c in self.cols}


_CALL_COLS = ["ts", "caller", "callee", "direction", "duration", "answered", "imsi", "imei", "cell", "trunk",
              "case", "typ"]
_SMS_COLS = ["ts", "sender", "receiver", "direction", "case", "typ"]
_SIM_COLS = ["ts", "msisdn", "event", "imsi", "imei", "iddoc", "case", "typ"]
# role 1/2 and factor: cashout amounts that are only known once balances are simulated (see assemble)
_PAY_COLS = ["ts", "payer", "payer_phone", "payee", "cents", "channel", "device", "ip", "case", "typ", "role",
             "factor"]
_DTYPES = {"answered": bool, "factor": np.float64}


class Cases:
    """The state that the typologies share while they inject their cases."""

    def __init__(self, rng: np.random.Generator, E: Entities, pop: Population, win: Window,
                 labels: Sequence[str], codes: dict[str, str], lookalikes: Sequence[str] = ()) -> None:
        self.rng = rng
        self.E = E
        self.pop = pop
        self.N = pop.N
        self.t0 = win.t0
        self.days = win.days
        self.W = win.width
        self._typ_index = {t: i for i, t in enumerate(labels)}  # the label column holds these indices
        # lookalike (hard-negative) records are unlabelled: typ -2, -3, ... names their kind for lookalikes.csv
        self._typ_index.update({k: -2 - i for i, k in enumerate(lookalikes)})
        self._codes = codes
        self.case_ids: list[str] = []
        self.calls = Buf(_CALL_COLS)
        self.sms = Buf(_SMS_COLS)
        self.sims = Buf(_SIM_COLS)
        self.pays = Buf(_PAY_COLS)
        self.reported_accounts: list[int] = []
        self.reported_numbers: list[int] = []
        self.role_ptr = 0
        self.role_used: list[int] = []
        self.swap_times: list[tuple[int, int, int]] = []  # (customer, ts, new imsi)
        self.cashout_times: list[tuple[int, int]] = []  # (customer, ts)
        self.registered_businesses: list[int] = []  # accounts a bank would list in @collection_accounts
        self.registered_lines: list[int] = []  # numbers an operator would list in @enterprise_lines

    # ---------------------------------------------------------------- ids and roles
    def new_case(self, typology: str) -> int:
        """A new case of typology; its number (index into case_ids)."""
        self.case_ids.append(f"{self._codes[typology]}-{len(self.case_ids) + 1:06d}")
        return len(self.case_ids) - 1

    def role(self, k: int = 1) -> np.ndarray:
        """k customers for exclusive case roles (without replacement while they last)."""
        out = []
        for _ in range(k):
            out.append(int(self.pop.role_perm[self.role_ptr % self.N]))
            self.role_ptr += 1
        self.role_used.extend(out)
        return np.array(out)

    def fresh_person(self, our_bank: bool = True) -> tuple[int, int, int, int]:
        """(account, phone, device, ip) of someone seen nowhere else."""
        E = self.E
        acct = E.our_account(1)[0] if our_bank else E.other_bank_account(1)[0]
        return int(acct), int(E.cn_mobile(1, OTHER_MOBILE_PREFIXES)[0]), int(E.new_device(1)[0]), int(E.new_ip(1)[0])

    # ---------------------------------------------------------------- draws
    def case_start(self, span: float) -> int:
        """A start time such that span seconds from it stay inside the window."""
        return self.t0 + int(self.rng.integers(0, max(1, self.W - int(span) - 1)))

    def local_start(self, hour_lo: float, hour_hi: float, span: float = 0.0) -> int:
        """A start on a random day between local hours hour_lo and hour_hi, with span seconds left in the window."""
        day = int(self.rng.integers(0, self.days))
        t = self.t0 + day * DAY + int(self.rng.uniform(hour_lo, hour_hi) * HOUR)
        return min(t, self.t0 + self.W - int(span) - 1)

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def ui(self, lo: int, hi: int) -> int:
        """integer in [lo, hi] inclusive"""
        return int(self.rng.integers(lo, hi + 1))

    def cents(self, lo: float, hi: float) -> int:
        """An amount in [lo, hi] CNY, as cents, never a multiple of 1,000 CNY."""
        c = int(self.rng.integers(int(round(lo * 100)), int(round(hi * 100)) + 1))
        if c % 100_000 == 0:
            c += 1
        return c

    def spread(self, t0: int, n: int, span: float) -> np.ndarray:
        """n sorted times in [t0, t0 + span)."""
        return t0 + np.sort(self.rng.integers(0, max(1, int(span)), n))

    # ---------------------------------------------------------------- records
    def call(self, ts, caller, callee, direction, duration, answered, cust_or_attrs, trunk, case, typ) -> None:
        """One call; cust_or_attrs is our customer (their IMSI, IMEI, home cell) or an (imsi, imei, cell)."""
        if isinstance(cust_or_attrs, tuple):
            imsi, imei, cell = cust_or_attrs
        else:
            c = cust_or_attrs
            imsi, imei, cell = self.pop.c_imsi[c], self.pop.c_imei[c], self.pop.c_home[c]
        self.calls.add(ts=int(ts), caller=int(caller), callee=int(callee), direction=direction,
                       duration=int(duration) if answered else 0, answered=bool(answered), imsi=int(imsi),
                       imei=int(imei), cell=int(cell), trunk=trunk, case=case, typ=self._typ_index[typ])

    def pay(self, ts, payer, payer_phone, payee, cents, channel, device, ip, case, typ, role=0, factor=0.0) -> None:
        """One payment; device and ip are dropped for atm and counter payments."""
        online = channel in (APP, WEB)
        self.pays.add(ts=int(ts), payer=int(payer), payer_phone=int(payer_phone), payee=int(payee),
                      cents=int(cents), channel=channel, device=int(device) if online else -1,
                      ip=int(ip) if online else -1, case=case, typ=self._typ_index[typ], role=role, factor=factor)

    def sim(self, ts, msisdn, event, imsi, imei, iddoc, case, typ) -> None:
        """One SIM event."""
        self.sims.add(ts=int(ts), msisdn=int(msisdn), event=event, imsi=int(imsi), imei=int(imei),
                      iddoc=int(iddoc), case=case, typ=self._typ_index[typ])
