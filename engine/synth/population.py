"""The people behind the traffic: our customers, their contacts, payees and employers.

Each customer has an msisdn, IMSI, IMEI, account, device id, IP, a resident id number (18 characters
with a valid check digit), a home and a work cell, 5-15 regular contacts (from a shared pool of
3 x customers people, who also hold accounts at other banks), 2-5 regular payees (accounts that belong
to that customer alone, each with its own typical amount; 1 % abroad in HK, US, GB, SG, JP, AU) and an
activity level (gamma, mean 1, clipped to [0.2, 2.5]).  Employers each pay at most 3 of our customers.
"""

from __future__ import annotations

import math

import numpy as np

from .entities import CUSTOMER_PREFIXES, OTHER_MOBILE_PREFIXES, Entities

NORMAL_INTL = ["+1", "+447", "+8190", "+8210", "+659", "+8525", "+8536", "+8869", "+614", "+4915", "+336",
               "+6012", "+6421", "+668"]
NORMAL_INTL_W = np.array([14, 8, 10, 8, 8, 14, 4, 8, 8, 4, 3, 5, 3, 3], dtype=float)
NORMAL_FOREIGN_COUNTRIES = ["HK", "US", "GB", "SG", "JP", "AU"]


class Population:
    """Per-customer attributes (``c_*``), the contact pool (``k_*``), employers (``e_*``) and number pools.

    Arrays hold entity indices (see :class:`Entities`), indexed by customer number.
    """

    def __init__(self, rng: np.random.Generator, E: Entities, customers: int) -> None:
        N = self.N = customers
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
        # the order in which cases take customers for exclusive roles (drawn here to keep the RNG sequence)
        self.role_perm = rng.permutation(N)
