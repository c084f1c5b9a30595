"""Entity registries: every phone number, account, IMSI, IMEI, device, IP, cell and id document.

Records refer to entities by integer index; the writer looks the strings up once per column.
Each kind of value is drawn from a fixed bijection, so values are unique without a set of the
ones already used.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .strings import const, digits, hcat, hex_digits, table_rows, to_arrow

CUSTOMER_PREFIXES = ["134", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159",
                     "182", "183", "184", "187", "188", "198"]
OTHER_MOBILE_PREFIXES = ["130", "131", "132", "155", "156", "185", "186", "133", "153", "180", "181", "189",
                         "177", "199"] + CUSTOMER_PREFIXES
VIRTUAL_PREFIXES = ["165", "167", "170", "171"]
LANDLINE_AREAS = ["10", "21", "20", "22", "23", "28", "27", "25"]  # + 8 digits
# subscriber digits after each foreign prefix
FOREIGN_DIGITS = {
    "+88213": 7, "+88216": 7, "+8819": 8, "+2327": 7, "+22507": 8, "+6777": 6, "+2474": 4, "+6913": 6,
    "+85512": 6, "+959": 8, "+639": 9, "+85620": 8,
    "+1": 10, "+447": 9, "+8190": 8, "+8210": 8, "+659": 7, "+8525": 7, "+8536": 7, "+8869": 8,
    "+614": 8, "+4915": 9, "+336": 8, "+6012": 7, "+6421": 7, "+668": 8,
}

OUR_BIN = "6222"
DOMESTIC_BINS = {"6217": "CCB", "6228": "ABC", "6216": "BOC", "6225": "CMB", "6210": "PSBC", "6226": "CITIC",
                 "6222": "ICBC"}
FOREIGN_BANKS = {"HK": "HSBCHKHH", "US": "CHASUS33", "GB": "BARCGB22", "SG": "DBSSSGSG", "JP": "MHCBJPJT",
                 "AU": "ANZBAU3M", "KP": "FTBDKPPY", "IR": "MELIIRTH", "MM": "MEBLMMMY"}
BANKS = sorted(set(DOMESTIC_BINS.values())) + sorted(set(FOREIGN_BANKS.values()))
COUNTRIES = ["CN"] + sorted(FOREIGN_BANKS)
_BANK_IDX = {b: i for i, b in enumerate(BANKS)}
_COUNTRY_IDX = {c: i for i, c in enumerate(COUNTRIES)}

_PERM_A = 6_700_417  # odd, not a multiple of 5: a bijection modulo 10**k and 16**k


class Registry:
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
        """The strings at idx; a negative index gives null (an empty CSV field)."""
        idx = np.asarray(idx, dtype=np.int64)
        mask = idx < 0
        if mask.any():
            return pc.take(self.table(), pa.array(idx, mask=mask))
        return pc.take(self.table(), pa.array(idx))


class Entities:
    """Creates unique phone numbers, accounts, IMSIs, IMEIs, devices, IPs, cells and ids."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.phone = Registry()
        self.account = Registry()
        self.acct_bank: list[np.ndarray] = []
        self.acct_country: list[np.ndarray] = []
        self.imsi = Registry()
        self.imei = Registry()
        self.device = Registry()
        self.ip = Registry()
        self.cell = Registry()
        self.iddoc = Registry()
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
        place = np.empty((n, width), dtype=np.int64)
        x = v.copy()
        for i in range(width - 1, -1, -1):
            place[:, i] = x % base
            x //= base
        h = np.full(n, self._offsets[key] % 2_147_483_647, dtype=np.int64)
        out = np.zeros(n, dtype=np.int64)
        scale = 1
        for i in range(width - 1, -1, -1):
            out += ((place[:, i] + (h >> 7)) % base) * scale
            scale *= base
            h = (h * 1_000_003 + place[:, i] * 7919 + i + 1) % 2_147_483_647
        return out

    # phones
    def cn_mobile(self, n: int, prefixes: list[str]) -> np.ndarray:
        pre = self.rng.integers(0, len(prefixes), n)
        suf = self._perm("CNMOB", n, 10**8)
        return self.phone.add(to_arrow(hcat(const("+86", n), table_rows(prefixes, pre), digits(suf, 8))))

    def cn_landline(self, n: int, areas: list[str] | None = None) -> np.ndarray:
        areas = areas or LANDLINE_AREAS
        pre = self.rng.integers(0, len(areas), n)
        suf = self._perm("CNLAND", n, 10**8)
        return self.phone.add(to_arrow(hcat(const("+86", n), table_rows(areas, pre), digits(suf, 8))))

    def cn_special(self, n: int, prefix: str, ndig: int) -> np.ndarray:
        suf = self._perm("CN" + prefix, n, 10**ndig)
        return self.phone.add(to_arrow(hcat(const("+86" + prefix, n), digits(suf, ndig))))

    def foreign(self, prefix: str, n: int) -> np.ndarray:
        nd = FOREIGN_DIGITS[prefix]
        if prefix == "+1":  # NANP: the area code does not start with 0 or 1
            suf = self._perm(prefix, n, 8 * 10**9)
            suf = 2_000_000_000 + (suf // 10**9) * 10**9 + self._perm("+1low", n, 10**9)
        else:
            suf = self._perm(prefix, n, 10**nd)
        return self.phone.add(to_arrow(hcat(const(prefix, n), digits(suf, nd))))

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
        arr = to_arrow(hcat(const(OUR_BIN, n), digits(suf, 15)))
        return self._acct_add(arr, np.full(n, _BANK_IDX["ICBC"]), np.zeros(n))

    def other_bank_account(self, n: int) -> np.ndarray:
        bins = [b for b in DOMESTIC_BINS if b != OUR_BIN]
        which = self.rng.integers(0, len(bins), n)
        suf = self._perm("ACCT", n, 10**15)
        arr = to_arrow(hcat(table_rows(bins, which), digits(suf, 15)))
        bank = np.array([_BANK_IDX[DOMESTIC_BINS[b]] for b in bins])[which]
        return self._acct_add(arr, bank, np.zeros(n))

    def foreign_account(self, n: int, countries: list[str]) -> np.ndarray:
        which = self.rng.integers(0, len(countries), n)
        suf = self._perm("FACCT", n, 10**16)
        arr = to_arrow(hcat(table_rows(countries, which), digits(suf, 16)))
        bank = np.array([_BANK_IDX[FOREIGN_BANKS[c]] for c in countries])[which]
        country = np.array([_COUNTRY_IDX[c] for c in countries])[which]
        return self._acct_add(arr, bank, country)

    # handsets and SIMs
    def new_imsi(self, n: int) -> np.ndarray:
        return self.imsi.add(to_arrow(hcat(const("46000", n), digits(self._perm("IMSI", n, 10**10), 10))))

    def new_imei(self, n: int) -> np.ndarray:
        body = hcat(const("86", n), digits(self._perm("IMEI", n, 10**12), 12))  # 14 digits
        d = body.astype(np.int64) - 48
        # Luhn: double every second digit from the right of the 14-digit body (positions 13, 11, ...)
        dbl = d[:, 1::2] * 2
        total = d[:, 0::2].sum(axis=1) + (dbl // 10 + dbl % 10).sum(axis=1)
        check = (10 - total % 10) % 10
        return self.imei.add(to_arrow(hcat(body, digits(check, 1))))

    def new_device(self, n: int) -> np.ndarray:
        hexes = hex_digits(self._perm("DEV", n, 16**12, 16), 12)
        return self.device.add(to_arrow(hcat(const("dev", n), hexes)))

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
        return self.cell.add(to_arrow(hcat(const("460-00-", n), digits(lac, 5), const("-", n), digits(ci, 5))))

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
        body = hcat(table_rows(regions, reg), table_rows(birth, np.arange(n)), digits(seq, 3))
        w = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
        r = ((body.astype(np.int64) - 48) * w).sum(axis=1) % 11
        check = np.frombuffer(b"10X98765432", dtype=np.uint8)[r][:, None]
        return self.iddoc.add(to_arrow(hcat(body, check)))

    def acct_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Bank and country index of every account, in account order."""
        return np.concatenate(self.acct_bank), np.concatenate(self.acct_country)
