"""What the written files look like: columns, value codes, time units and the time window."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np

TZ_OFFSET_S = 8 * 3600
DAY = 86400
HOUR = 3600
MIN = 60

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

# Records hold small integer codes; the writer turns them into these strings.
CHANNELS = ["app", "web", "atm", "counter"]
APP, WEB, ATM, COUNTER = 0, 1, 2, 3
EVENTS = ["activation", "swap", "port_out"]
ACT, SWAP = 0, 1
IN, OUT = 0, 1
DOM, INTL = 0, 1


@dataclass(frozen=True)
class Window:
    """The generated period: ``days`` days from local midnight of ``start_date``."""

    start_date: _dt.date
    days: int
    t0: int  # local midnight of start_date, as epoch seconds

    @classmethod
    def starting(cls, start: str, days: int) -> Window:
        date = _dt.date.fromisoformat(start)
        t0 = int(np.datetime64(date, "D").astype("datetime64[s]").astype(np.int64)) - TZ_OFFSET_S
        return cls(date, days, t0)

    @property
    def width(self) -> int:
        return self.days * DAY
