"""Deterministic synthetic NHI claims with injected billing errors and their ground truth.

Each tenant gets patients with multi-month histories, providers with their own billing styles
and error propensities, and claims of the four types. Errors of every type listed in
domain/claim_screening.md are injected; the truth (type, recoverable points) is kept apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.claim_screening import codes as C
from models.claim_screening import masters as M
from models.pseudonym import pseudonymise

ERROR_TYPES: dict[str, float] = {
    # type -> share among injected errors (municipal re-review sees what the payment fund's
    # rules let through, so cross-claim, cross-month and statistical errors dominate)
    "mismatch": 0.22,
    "duplicate": 0.04,
    "frequency": 0.04,
    "frequency_3m": 0.10,
    "exclusive": 0.04,
    "age_sex": 0.03,
    "dose": 0.05,
    "eligibility": 0.10,
    "third_party": 0.16,
    "outlier": 0.22,
}

# procedures a provider can plausibly bill more often than needed (the outlier error), and the
# most 疾患別リハビリテーション units the generator bills in a month
REPEATABLE = frozenset({C.SAISHIN, C.TOKUTEI, C.CBC, C.XRAY, C.REHAB, C.SHOEN, C.WOUND,
                        C.PSYCHOTHERAPY})
REHAB_MAX = 13


def _month_exclusions() -> dict[str, frozenset[str]]:
    """Demo procedure -> the demo procedures whose presence rules it out in the same month
    (the 背反テーブル's 同一月内 relations, masters.Masters.exclusions; where either may stay,
    the one with fewer points goes). A clean claim respects them, so the rule that checks them
    (rules R_EXCLUSIVE) fires on real errors only; today 通院精神療法 goes when
    特定疾患療養管理料 or 生活習慣病管理料２ is billed, 生活習慣病管理料２ when 初診料 is."""
    demo = C.PROCEDURE_BY_CODE
    out: dict[str, set[str]] = {}
    for kept, banned, either in M.in_use().exclusions("month").itertuples(index=False):
        if kept in demo and banned in demo:
            if either and demo[banned].points > demo[kept].points:
                kept, banned = banned, kept
            out.setdefault(banned, set()).add(kept)
    return {code: frozenset(k) for code, k in out.items()}


MONTH_EXCLUSIONS = _month_exclusions()


def without_excluded(lines: list[list]) -> list[list]:
    """Procedure lines ([code, count, days]) less those another line rules out this month."""
    present = {ln[0] for ln in lines}
    return [ln for ln in lines if not MONTH_EXCLUSIONS.get(ln[0], frozenset()) & present]

LINE_COLUMNS = ["claim_id", "tenant_code", "patient_id", "age", "sex", "service_month",
                "provider_id", "claim_type", "total_points", "insured_until", "line_no",
                "line_kind", "code", "count", "days", "points"]


@dataclass(frozen=True)
class GenerateSpec:
    """How much to generate; `total_claims` is split across tenants by population."""

    total_claims: int = 400_000
    months: int = 12
    start_month: str = "2025-04"
    error_rate: float = 0.03


@dataclass
class Provider:
    """A clinic, hospital, pharmacy or dental clinic with its own habits."""

    pid: str
    kind: str  # clinic, ortho, hospital, pharmacy, dental
    style: float  # multiplier on test and treatment intensity (legitimate variation)
    propensity: float  # multiplier on error probability
    upcoder: bool = False
    lenient: bool = False  # documents off-label use (症状詳記): rule hits that are not errors


@dataclass
class Patient:
    """An insured person; `chronic` are ICD-10 codes."""

    pid: str
    age: int
    sex: int
    chronic: list[str]
    clinic: Provider
    pharmacy: Provider
    dentist: Provider
    insured_until: int | None = None  # month index after which NHI eligibility is lost
    history: dict[str, int] = field(default_factory=dict)  # 3-monthly procedure -> last month


def month_labels(start: str, n: int) -> list[str]:
    """YYYY-MM labels for n consecutive months from start."""
    return [p.strftime("%Y-%m") for p in pd.period_range(start, periods=n, freq="M")]


class _TenantGenerator:
    """Builds one tenant's claims; all randomness comes from its own seeded generator."""

    def __init__(self, code: str, n_claims: int, spec: GenerateSpec, seed: int, index: int):
        self.code, self.spec = code, spec
        self.rng = np.random.default_rng([seed, index])
        self.months = month_labels(spec.start_month, spec.months)
        self.error_factor = float(np.exp(self.rng.normal(0, 0.35)))
        n_patients = max(30, int(n_claims / (spec.months * 0.95)))
        self.providers = self._providers(n_patients)
        self.patients = [self._patient(i) for i in range(n_patients)]
        self.rows: list[tuple] = []
        self.truth: list[tuple[str, str, int]] = []
        self.seq = 0

    def _providers(self, n_patients: int) -> dict[str, list[Provider]]:
        sizes = {"clinic": max(3, n_patients // 150), "ortho": max(2, n_patients // 600),
                 "hospital": max(1, n_patients // 2500), "pharmacy": max(2, n_patients // 200),
                 "dental": max(2, n_patients // 300)}
        out: dict[str, list[Provider]] = {}
        for kind, n in sizes.items():
            out[kind] = [
                Provider(
                    pid=f"{self.code}{kind[0].upper()}{i:04d}", kind=kind,
                    style=float(np.exp(self.rng.normal(0, 0.25))),
                    propensity=float(np.exp(self.rng.normal(-0.3, 0.8))),
                    upcoder=bool(self.rng.random() < 0.08),
                    lenient=bool(self.rng.random() < 0.25),
                )
                for i in range(n)
            ]
        return out

    def _patient(self, i: int) -> Patient:
        r = self.rng
        age = int(r.choice([r.integers(0, 20), r.integers(20, 40), r.integers(40, 65),
                            r.integers(65, 75)], p=[0.13, 0.14, 0.31, 0.42]))
        sex = int(r.integers(1, 3))
        chronic = [
            d.code for d in C.DIAGNOSES
            if d.chronic and d.min_age <= age <= d.max_age and d.sex in (0, sex)
            and r.random() < d.prevalence * (1.0 if age >= 40 else 0.25) * (1 + (age >= 65))
        ]
        lost = int(r.integers(1, self.spec.months)) if r.random() < 0.03 else None
        return Patient(
            pid=pseudonymise(self.code, f"patient-{i}"), age=age, sex=sex, chronic=chronic[:4],
            clinic=self._pick("clinic"), pharmacy=self._pick("pharmacy"),
            dentist=self._pick("dental"), insured_until=lost,
        )

    def _pick(self, kind: str) -> Provider:
        options = self.providers[kind]
        return options[int(self.rng.integers(len(options)))]

    # -- claim content ---------------------------------------------------------------------

    def _acute(self, p: Patient, dental: bool = False, injury: bool = False) -> str:
        pool = [d for d in C.DIAGNOSES if not d.chronic and d.dental == dental
                and d.injury == injury and d.min_age <= p.age <= d.max_age and d.sex in (0, p.sex)]
        w = np.array([d.prevalence for d in pool])
        return pool[int(self.rng.choice(len(pool), p=w / w.sum()))].code

    def _procedures_for(self, dx: Sequence[str], prov: Provider, p: Patient, m: int,
                        first: bool) -> list[list]:
        r = self.rng
        lines: list[list] = [[C.SHOSHIN if first else C.SAISHIN, 1, 0]]
        if p.age <= 5:
            lines.append([C.INFANT_ADDON, 1, 0])
        dxs = set(dx)
        if dxs & set(C.LIFESTYLE) and r.random() < 0.5:
            lines.append([C.SEIKATSU, 1, 0])
        elif dxs & set(C.PROCEDURE_BY_CODE[C.TOKUTEI].indications) and r.random() < 0.7:
            lines.append([C.TOKUTEI, 1, 0])
        for proc in C.PROCEDURES:
            managed = proc.code in (C.TOKUTEI, C.SEIKATSU)  # chosen above
            if proc.dental or proc.inpatient or not proc.indications or managed:
                continue
            if not dxs & set(proc.indications) or proc.sex not in (0, p.sex):
                continue
            if proc.every_months > 1:
                last = p.history.get(proc.code, -99)
                if m - last < proc.every_months or r.random() > 0.5:
                    continue
                p.history[proc.code] = m
            elif r.random() > 0.35 * prov.style:
                continue
            count = 1
            if proc.code == C.SHOEN and any(ln[0] == C.REHAB for ln in lines):
                continue
            if proc.code in (C.REHAB, C.SHOEN):
                count = int(min(REHAB_MAX, proc.max_per_month, max(1, r.poisson(4 * prov.style))))
            lines.append([proc.code, count, 0])
        if r.random() < 0.3 * prov.style:
            lines.append([C.CBC, 1, 0])
        if any(ln[0] in (C.CBC, C.HBA1C) for ln in lines):  # 血液学的検査 -> its 判断料, once
            lines.append([C.BLOOD_JUDGEMENT, 1, 0])
        return without_excluded(lines)

    def _drugs_for(self, dx: Sequence[str], p: Patient) -> list[list]:
        r = self.rng
        out = []
        for drug in C.DRUGS:
            if not set(dx) & set(drug.indications) or drug.sex not in (0, p.sex):
                continue
            if drug.code == C.LOXOPROFEN and not set(dx) & {"M54", "M17", *C.INJURY}:
                continue
            if r.random() > 0.45:
                continue
            qty = int(r.integers(1, drug.max_daily_qty + 1))
            days = int(min(drug.max_days, r.choice([7, 14, 28, 30, 56, 60, 84, 90])))
            out.append([drug.code, qty, days])
        return out

    # -- emitting --------------------------------------------------------------------------

    def _emit(self, p: Patient, prov: Provider, m: int, ctype: str, dx: Sequence[str],
              procs: list[list], drugs: list[list], error: str = "", stake: int = 0) -> list:
        self.seq += 1
        cid = f"{self.code}-{self.months[m].replace('-', '')}-{self.seq:07d}"
        lines: list[list] = [["diagnosis", c, 0, 0, 0] for c in dx]
        for code, count, _ in procs:
            lines.append(["procedure", code, count, 0, count * C.PROCEDURE_BY_CODE[code].points])
        for code, qty, days in drugs:
            pts = round(C.DRUG_BY_CODE[code].points_per_day * qty * days)
            lines.append(["drug", code, qty, days, pts])
        total = sum(ln[4] for ln in lines)
        until = "" if p.insured_until is None else self.months[p.insured_until - 1]
        for no, (kind, code, count, days, pts) in enumerate(lines, start=1):
            self.rows.append((cid, self.code, p.pid, p.age, p.sex, self.months[m], prov.pid,
                              ctype, total, until, no, kind, code, count, days, pts))
        self.truth.append((cid, error, int(stake)))
        return lines

    def run(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Generate every patient's months, then return (lines, truth)."""
        for p in self.patients:
            injury_left, third_party, injury_dx = 0, False, ""
            for m in range(self.spec.months):
                if p.insured_until is not None and m >= p.insured_until:
                    if self.rng.random() < 0.15 * self.error_factor:
                        self._visit(p, m, force_error="eligibility")
                    continue
                if injury_left == 0 and self.rng.random() < 0.035:
                    injury_dx = self._acute(p, injury=True)
                    injury_left = int(self.rng.integers(1, 5))
                    third_party = bool(self.rng.random() < (0.12 if injury_dx == "S13" else 0.02)
                                       * (1.3 if 18 <= p.age <= 65 else 0.5))
                if injury_left > 0:
                    self._injury_visit(p, m, injury_dx, third_party, injury_left)
                    injury_left -= 1
                self._visit(p, m)
        lines = pd.DataFrame(self.rows, columns=LINE_COLUMNS)
        truth = pd.DataFrame(self.truth, columns=["claim_id", "error_type", "recoverable_points"])
        return lines, truth

    def _error_for(self, prov: Provider, candidates: Sequence[str]) -> str:
        p_err = self.spec.error_rate * self.error_factor * prov.propensity * 0.85
        if self.rng.random() >= p_err:
            return ""
        w = np.array([ERROR_TYPES[c] for c in candidates])
        return candidates[int(self.rng.choice(len(candidates), p=w / w.sum()))]

    def _injury_visit(self, p: Patient, m: int, dx: str, third_party: bool, left: int) -> None:
        prov = self.providers["ortho"][int(p.pid[:8], 16) % len(self.providers["ortho"])]
        intensity = 1.6 if third_party else 1.0  # compensated cases get more rehab on average
        procs = [[C.SAISHIN, 1, 0]]
        n = int(min(13, max(1, self.rng.poisson(5 * intensity * prov.style))))
        if dx in ("S13", "S52", "S82"):
            procs.append([C.REHAB, n, 0])
        else:
            procs.append([C.SHOEN, n, 0])
        if left >= 3 and dx in ("S52", "S82"):
            procs.append([C.REDUCTION_FOREARM if dx == "S52" else C.REDUCTION_LEG, 1, 0])
        if self.rng.random() < (0.5 if third_party else 0.25):
            procs.append([C.CT, 1, 0])
        drugs = [[C.LOXOPROFEN, int(self.rng.integers(1, 4)), 14]]
        ctype = "医科入院外"
        if dx == "S82" and self.rng.random() < 0.3:
            ctype, procs = "医科入院", [*procs, [C.WARD, int(self.rng.integers(5, 20)), 0]]
        lines = self._emit(p, prov, m, ctype, [dx], procs, drugs,
                           "third_party" if third_party else "", 0)
        if third_party:
            self.truth[-1] = (self.truth[-1][0], "third_party", sum(ln[4] for ln in lines))

    def _visit(self, p: Patient, m: int, force_error: str = "") -> None:
        r = self.rng
        chronic_visit = bool(p.chronic) and r.random() < 0.8
        acute = r.random() < (0.25 if p.age < 15 else 0.12)
        if force_error or chronic_visit or acute:
            self._medical(p, m, acute, force_error)
        if force_error:
            return
        if r.random() < 0.06:
            self._dental(p, m)
        if r.random() < (0.006 if p.age >= 65 else 0.0015):
            self._inpatient(p, m)

    def _medical(self, p: Patient, m: int, acute: bool, force_error: str) -> None:
        r = self.rng
        prov = p.clinic
        dx = list(p.chronic[:3])
        if acute or not dx:
            dx.append(self._acute(p))
        procs = self._procedures_for(dx, prov, p, m, first=acute and not p.chronic)
        drugs = self._drugs_for(dx, p)
        error = force_error or self._error_for(prov, ["mismatch", "duplicate", "frequency",
                                                     "frequency_3m", "exclusive", "age_sex",
                                                     "dose", "outlier"])
        if error == "frequency_3m" and not _recent_3m(p, m, procs, dx):
            error = "frequency"
        legit_offlabel = prov.lenient and r.random() < 0.06
        if legit_offlabel:
            drugs.append(self._offlabel_drug(dx, p))
        outside = bool(drugs) and r.random() < 0.7  # 院外処方: drugs go to a pharmacy claim
        stake, pharmacy_error = self._inject(error, dx, procs, drugs, p, prov, m, outside)
        med_drugs = [] if outside else drugs
        lines = self._emit(p, prov, m, "医科入院外", dx, procs, med_drugs,
                           "" if pharmacy_error else error, stake if not pharmacy_error else 0)
        if error in ("eligibility", "duplicate") and not pharmacy_error:
            total = sum(ln[4] for ln in lines)
            self.truth[-1] = (self.truth[-1][0], error, total)
            if error == "duplicate":
                self.truth[-1] = (self.truth[-1][0], "", 0)
                self._emit(p, prov, m, "医科入院外", dx, procs, med_drugs, "duplicate", total)
        if outside:
            rx = self._emit(p, p.pharmacy, m, "調剤", [], [], drugs,
                            error if pharmacy_error else "", stake if pharmacy_error else 0)
            if error == "eligibility":  # the pharmacy claim is just as ineligible
                self.truth[-1] = (self.truth[-1][0], error, sum(ln[4] for ln in rx))

    def _offlabel_drug(self, dx: Sequence[str], p: Patient) -> list:
        pool = [d for d in C.DRUGS if not set(dx) & set(d.indications) and d.sex in (0, p.sex)
                and d.points_per_day < 30]
        d = pool[int(self.rng.integers(len(pool)))]
        return [d.code, 1, int(min(d.max_days, 28))]

    def _inject(self, error: str, dx: list[str], procs: list[list], drugs: list[list],
                p: Patient, prov: Provider, m: int, outside: bool) -> tuple[int, bool]:
        """Mutate the claim content for `error`; return (recoverable points, on pharmacy claim)."""
        r = self.rng
        if error == "mismatch":
            drug = self._offlabel_drug(dx, p)
            qty_pts = C.DRUG_BY_CODE[drug[0]].points_per_day * drug[1] * drug[2]
            drugs.append(drug)
            return round(qty_pts), outside
        if error == "frequency":  # above a 上限回数 of the s master
            limited = [ln for ln in procs if C.PROCEDURE_BY_CODE[ln[0]].max_per_month < 99]
            if not limited:  # a blood test's 判断料 (once a month) billed more often
                if not any(ln[0] == C.CBC for ln in procs):
                    procs.append([C.CBC, 1, 0])
                procs.append([C.BLOOD_JUDGEMENT, 1, 0])
                limited = [procs[-1]]
            line = limited[int(r.integers(len(limited)))]
            proc = C.PROCEDURE_BY_CODE[line[0]]
            extra = int(r.integers(1, 4))
            line[1] = proc.max_per_month + extra
            return extra * proc.points, False
        if error == "frequency_3m":
            code = _three_month_code(dx)
            procs.append([code, 1, 0])  # billed again within 3 months of the last time
            return C.PROCEDURE_BY_CODE[code].points, False
        if error == "exclusive":
            first, second = (C.SEIKATSU, C.TOKUTEI) if r.random() < 0.6 else \
                (C.REHAB, C.SHOEN)
            for code in (first, second):
                if not any(ln[0] == code for ln in procs):
                    procs.append([code, 1 if code != C.SHOEN else int(r.integers(2, 8)), 0])
            if first == C.SEIKATSU and not set(dx) & set(C.LIFESTYLE):
                dx.append("I10")
            if first == C.REHAB and not set(dx) & {"M54", "M17"}:
                dx.append("M54")
            line = next(ln for ln in procs if ln[0] == second)
            return line[1] * C.PROCEDURE_BY_CODE[second].points, False
        if error == "age_sex":
            if p.age > 5 and r.random() < 0.5:
                procs.append([C.INFANT_ADDON, 1, 0])
                return C.PROCEDURE_BY_CODE[C.INFANT_ADDON].points, False
            if p.sex == 2:
                procs.append([C.PSA, 1, 0])
                dx.append("N40")
                return C.PROCEDURE_BY_CODE[C.PSA].points, False
            dx.append("O21")
            procs.append([C.ECHO, 1, 0])
            return C.PROCEDURE_BY_CODE[C.ECHO].points, False
        if error == "dose":
            if not drugs:
                drugs.append(self._drugs_any(dx, p))
            line = drugs[int(r.integers(len(drugs)))]
            d = C.DRUG_BY_CODE[line[0]]
            before = d.points_per_day * line[1] * line[2]
            if r.random() < 0.5:
                line[1] = d.max_daily_qty + int(r.integers(1, 3))
            else:
                line[2] = d.max_days + int(r.choice([7, 14, 28]))
            return round(d.points_per_day * line[1] * line[2] - before), outside
        if error == "outlier":
            extra = 0
            for line in procs:
                proc = C.PROCEDURE_BY_CODE[line[0]]
                if line[0] in REPEATABLE:
                    add = int(min(proc.max_per_month - line[1], r.integers(1, 4)))
                    line[1] += max(add, 0)
                    extra += max(add, 0) * proc.points
            if not any(ln[0] == C.CT for ln in procs) and r.random() < 0.6:
                procs.append([C.CT, 1, 0])
                if not set(dx) & set(C.PROCEDURE_BY_CODE[C.CT].indications):
                    dx.append("J18")
                extra += C.PROCEDURE_BY_CODE[C.CT].points
            if extra == 0:
                procs.append([C.ECG, 1, 0])
                if "I10" not in dx:
                    dx.append("I10")
                extra = C.PROCEDURE_BY_CODE[C.ECG].points
            return extra, False
        return 0, False

    def _drugs_any(self, dx: list[str], p: Patient) -> list:
        pool = [d for d in C.DRUGS if set(dx) & set(d.indications) and d.sex in (0, p.sex)]
        d = pool[int(self.rng.integers(len(pool)))] if pool else C.DRUG_BY_CODE[C.ACETAMINOPHEN]
        if not pool:
            dx.append("J06")
        return [d.code, 1, int(min(14, d.max_days))]

    def _dental(self, p: Patient, m: int) -> None:
        dx = [self._acute(p, dental=True)]
        procs: list[list] = ([[C.DENTAL_RE, 1, 0]] if self.rng.random() < 0.7
                             else [[C.DENTAL_FIRST, 1, 0]])
        if dx[0] == "K05":
            procs.append([C.PERIO, 1, 0])
        else:
            n = int(self.rng.integers(1, 4))
            procs += [[C.CARIES, n, 0], [C.FILLING, n, 0]]
        error = self._error_for(p.dentist, ["frequency", "exclusive"])
        stake = 0
        if error == "frequency":
            line = procs[-1]
            line[1] = C.PROCEDURE_BY_CODE[line[0]].max_per_month + 2
            stake = 2 * C.PROCEDURE_BY_CODE[line[0]].points
        elif error == "exclusive":
            pair = [C.DENTAL_FIRST, 1, 0] if procs[0][0] == C.DENTAL_RE else [C.DENTAL_RE, 1, 0]
            procs.append(pair)
            stake = C.PROCEDURE_BY_CODE[C.DENTAL_RE].points
        self._emit(p, p.dentist, m, "歯科", dx, procs, [], error, stake)

    def _inpatient(self, p: Patient, m: int) -> None:
        prov = self._pick("hospital")
        dx = [str(self.rng.choice(["J18", "I50", "S82", "C16", "C34", "H25"]))]
        days = int(self.rng.integers(3, 21))
        procs: list[list] = [[C.WARD, days, 0], [C.CBC, 2, 0]]
        if dx[0] in ("J18", "C16", "C34", "S82"):
            procs.append([C.CT, 1, 0])
        if dx[0] == "H25":
            procs.append([C.CATARACT, 1, 0])
        drugs = self._drugs_for(dx, p)
        error = self._error_for(prov, ["outlier", "dose", "mismatch"])
        stake = 0
        if error == "outlier":
            extra = int(self.rng.integers(2, 6))
            procs[0][1] += extra
            stake = extra * C.PROCEDURE_BY_CODE[C.WARD].points
        elif error:
            stake, _ = self._inject(error, dx, procs, drugs, p, prov, m, False)
        self._emit(p, prov, m, "医科入院", dx, procs, drugs, error, stake)


def _three_month_code(dx: Sequence[str]) -> str:
    return C.PSA if "N40" in dx else C.ECHO


def _recent_3m(p: Patient, m: int, procs: list[list], dx: Sequence[str]) -> bool:
    """Whether the patient had the 3-monthly test in the previous two months (and not now)."""
    code = _three_month_code(dx)
    return 1 <= m - p.history.get(code, -99) <= 2 and not any(ln[0] == code for ln in procs)


def generate(tenants: Sequence[tuple[str, int]], spec: GenerateSpec, seed: int,
             ) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Claims and truth per tenant code; `tenants` is (code, population) in a stable order."""
    total_pop = sum(pop for _, pop in tenants)
    out = {}
    for index, (code, pop) in enumerate(tenants):
        n = max(200, int(spec.total_claims * pop / total_pop))
        out[code] = _TenantGenerator(code, n, spec, seed, index).run()
    return out
