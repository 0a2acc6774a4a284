"""Vectorised review rules: each a reason code with a Japanese label and what a reviewer checks."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.claim_screening import codes as C
from models.claim_screening import masters as M


@dataclass(frozen=True)
class Rule:
    """A review rule as the reviewer sees it."""

    code: str
    label: str  # Japanese label shown to reviewers
    explanation: str


RULES: tuple[Rule, ...] = (
    Rule("R_INDICATION", "適応外・病名漏れ",
         "診療行為または医薬品に対応する傷病名が請求にありません。"),
    Rule("R_TOTSUGO", "突合：処方と傷病名の不一致",
         "調剤レセプトの医薬品に対応する傷病名が、同月の医科レセプトにありません。"),
    Rule("R_DUPLICATE", "重複請求",
         "同一患者・同一医療機関・同月で内容が同じレセプトが複数あります。"),
    Rule("R_FREQUENCY", "算定回数超過", "月あたりの算定回数の上限を超えています。"),
    Rule("R_FREQ_3M", "縦覧：3か月内の再算定",
         "3か月に1回が限度の検査が直近2か月内にも算定されています。"),
    Rule("R_EXCLUSIVE", "併算定不可", "同時に算定できない項目が同じレセプトにあります。"),
    Rule("R_AGE_SEX", "年齢・性別の不整合",
         "患者の年齢または性別では算定できない項目があります。"),
    Rule("R_DOSE", "用量・投与日数超過", "承認用量または投与日数の上限を超えています。"),
    Rule("R_ELIGIBILITY", "資格喪失後受診", "資格喪失月より後の診療月です。"),
    Rule("R_INJURY", "負傷原因の確認（第三者行為）",
         "外傷の傷病名があります。交通事故等の第三者行為でないか確認してください。"),
)
RULE_BY_CODE = {r.code: r for r in RULES}
RULE_CODES = tuple(r.code for r in RULES)


# Stable master attributes of a code, as a small integer (features.py uses them so that a code
# the model has not seen still says what kind of item it is): the s master's 区分 letter for a
# 診療行為, the y master's 剤形 for a 医薬品, the ICD-10 chapter letter for a diagnosis.
SECTIONS = ("", *"ABCDEFGHIJKLMN", "Y1", "Y3", "Y4", "Y6", "Y8",
            *(f"ICD{chr(c)}" for c in range(ord("A"), ord("Z") + 1)))
_SECTION_ID = {s: i for i, s in enumerate(SECTIONS)}


def section_id(kind: str, value: str) -> int:
    """SECTIONS index of a 区分 letter ('procedure': A..N), 剤形 digit ('drug': 1 内用, 3 その他,
    4 注射, 6 外用, 8 歯科用) or the ICD-10 chapter letter of a code ('diagnosis'); 0 unknown."""
    key = {"diagnosis": f"ICD{value[:1]}", "drug": f"Y{value}"}.get(kind, value)
    return _SECTION_ID.get(key, 0)


TABLE_COLUMNS = ["code", "unit_points", "max_per_month", "every_months", "only_sex", "min_age",
                 "max_age", "max_qty", "max_days", "section"]


def _curated_table() -> pd.DataFrame:
    """The demo's clinical set (codes.py): master values plus curated 適応, sex, 縦覧 and doses."""
    rows: list[tuple[str, float, int, int, int, int, int, int, int, int]] = []
    for p in C.PROCEDURES:
        rows.append((p.code, p.points, p.max_per_month, p.every_months, p.sex, p.min_age,
                     p.max_age, 99, 999, section_id("procedure", p.section)))
    for d in C.DRUGS:
        rows.append((d.code, d.points_per_day, 99, 1, d.sex, d.min_age, 120, d.max_daily_qty,
                     d.max_days, section_id("drug", _dosage_form(d.code))))
    for g in C.DIAGNOSES:
        rows.append((g.code, 0, 99, 1, g.sex, g.min_age, g.max_age, 99, 999,
                     section_id("diagnosis", g.code)))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _dosage_form(code: str) -> str:
    y = M.in_use().tables.get("y")
    if y is None:
        return ""
    match = y.loc[y["code"] == code, "dosage_form"]
    return str(match.iloc[0]) if len(match) else ""


def _master_table() -> pd.DataFrame:
    """Every code of the masters in use with what they say: s 点数, 上限回数 (99 where none) and
    age limits; y 薬価 / 10 per unit and 剤形; the ICD-10 categories the b master maps to."""
    masters = M.in_use()
    parts = []
    s = masters.tables.get("s")
    if s is not None and not s.empty:
        ages = [C.age_limits(lo, hi) for lo, hi in zip(s["min_age_years"], s["max_age_years"],
                                                       strict=True)]
        # 上限回数 in the unit the masters give it, as what one month may hold (Masters.limits)
        limits = masters.limits().set_index("code").reindex(s["code"])
        parts.append(pd.DataFrame({
            "code": s["code"], "unit_points": s["points"],
            "max_per_month": limits["max_per_month"].fillna(99).astype(int).to_numpy(),
            "every_months": limits["every_months"].fillna(1).astype(int).to_numpy(),
            "only_sex": 0, "min_age": [a[0] for a in ages],
            "max_age": [a[1] for a in ages], "max_qty": 99, "max_days": 999,
            "section": [section_id("procedure", v) for v in s["section"]]}))
    y = masters.tables.get("y")
    if y is not None and not y.empty:
        parts.append(pd.DataFrame({
            "code": y["code"], "unit_points": y["price"] / 10, "max_per_month": 99,
            "every_months": 1, "only_sex": 0, "min_age": 0, "max_age": 120, "max_qty": 99,
            "max_days": 999, "section": [section_id("drug", v) for v in y["dosage_form"]]}))
    b = masters.tables.get("b")
    if b is not None and not b.empty:
        icd = b["icd10_1_2013"].where(b["icd10_1_2013"] != "", b["icd10_1"]).str[:3]
        cats = sorted(c for c in set(icd) if len(c) == 3 and c[:1].isalpha())
        parts.append(pd.DataFrame({
            "code": cats, "unit_points": 0, "max_per_month": 99, "every_months": 1,
            "only_sex": 0, "min_age": 0, "max_age": 120, "max_qty": 99, "max_days": 999,
            "section": [section_id("diagnosis", c) for c in cats]}))
    return pd.concat(parts, ignore_index=True)[TABLE_COLUMNS] if parts else pd.DataFrame(
        columns=TABLE_COLUMNS)


def _code_table() -> pd.DataFrame:
    """Curated codes first, then every other code of the masters: the rules check a master's
    上限回数 and ages on any code it lists, not only on the demo's."""
    table = pd.concat([_curated_table(), _master_table()], ignore_index=True)
    return table.drop_duplicates("code", keep="first").reset_index(drop=True)


def _indication_table() -> pd.DataFrame:
    rows = [(p.code, dx) for p in C.PROCEDURES for dx in p.indications]
    rows += [(d.code, dx) for d in C.DRUGS for dx in d.indications]
    return pd.DataFrame(rows, columns=["code", "dx"])


CODE_TABLE = _code_table()
INDICATIONS = _indication_table()


HEADER = ("claim_id", "patient_id", "provider_id", "service_month", "claim_type", "total_points",
          "insured_until", "age", "sex")
DIAGNOSIS, PROCEDURE, DRUG = range(3)  # line kind ids: positions in C.LINE_KINDS
_KIND_ID = {k: i for i, k in enumerate(C.LINE_KINDS)}

# What a code outside the table gets: limits that never bind.
DEFAULTS = {"unit_points": 0, "max_per_month": 99, "every_months": 1, "only_sex": 0, "min_age": 0,
            "max_age": 120, "max_qty": 99, "max_days": 999, "section": 0}

# Every code a table or rule names gets an integer id; line codes outside them share UNKNOWN.
VOCABULARY: tuple[str, ...] = tuple(sorted({
    *CODE_TABLE["code"], *INDICATIONS["code"], *INDICATIONS["dx"], *C.INJURY,
    *(code for pair in C.EXCLUSIVE_PAIRS for code in pair)}))
CODE_ID = {code: i for i, code in enumerate(VOCABULARY)}
UNKNOWN = len(VOCABULARY)


def code_id(code: str) -> int:
    """VOCABULARY id of a code as written; an ICD-10 subcategory (E11.9, E119) takes its
    category's id, so it keeps the category's attributes; UNKNOWN outside the vocabulary."""
    found = CODE_ID.get(code)
    if found is None and code[:1].isalpha() and len(code) > 3:
        found = CODE_ID.get(code[:3])
    return UNKNOWN if found is None else found


def _attribute(column: str) -> np.ndarray:
    """A CODE_TABLE column by code id (float), with the default for codes outside the table."""
    known = CODE_TABLE.set_index("code")[column].reindex(list(VOCABULARY))
    return np.append(known.fillna(DEFAULTS[column]).to_numpy(float), DEFAULTS[column])


ATTRIBUTES = {column: _attribute(column) for column in DEFAULTS}
# injuries are ICD-10 chapter XIX (S, T): any such diagnosis, not only the demo's four
IS_INJURY = np.isin(ATTRIBUTES["section"], [section_id("diagnosis", "S"),
                                            section_id("diagnosis", "T")])


def code_flags(codes: Sequence[str]) -> np.ndarray:
    """Bool by code id: is it one of `codes` (each must be in VOCABULARY)."""
    flags = np.zeros(UNKNOWN + 1, bool)
    flags[[CODE_ID[c] for c in codes]] = True
    return flags


def _indication_bits() -> tuple[np.ndarray, np.ndarray]:
    """By code id: the bit of each diagnosis an indication names, and the bits a code accepts."""
    dx = sorted(set(INDICATIONS["dx"]))
    if len(dx) > 64:  # claim-level diagnosis sets are uint64 masks
        raise ValueError(f"{len(dx)} indicated diagnoses do not fit a 64-bit mask")
    bit = np.zeros(UNKNOWN + 1, np.uint64)
    bit[[CODE_ID[d] for d in dx]] = [1 << i for i in range(len(dx))]
    accepts = np.zeros(UNKNOWN + 1, np.uint64)
    for code, d in INDICATIONS.itertuples(index=False):
        accepts[CODE_ID[code]] |= bit[CODE_ID[d]]
    return bit, accepts


DX_BIT, INDICATED_BY = _indication_bits()
_SMALL = 32  # below this many values a dict beats pd.factorize's fixed cost (one claim)


def factorize(values: Any) -> tuple[np.ndarray, Sequence]:
    """Codes in first-seen order and the distinct values; a missing value is a value (no -1)."""
    if len(values) > _SMALL:
        return pd.factorize(values, use_na_sentinel=False)
    seen: dict = {}
    codes = [seen.setdefault(v, len(seen)) for v in np.asarray(values, dtype=object)]
    return np.array(codes, np.intp), list(seen)


def combine(*codes: np.ndarray) -> np.ndarray:
    """Dense group id (first-seen order) of each row's combination of codes (each >= 0)."""
    group, size = np.zeros(len(codes[0]), np.int64), 1
    for c in codes:
        width = int(c.max(initial=0)) + 1
        if size * width >= 2**62:  # renumber densely so the mixed-radix key stays in int64
            group, uniques = factorize(group)
            size = len(uniques)
        group, size = group * width + c, size * width
    return factorize(group)[0]


@functools.lru_cache(maxsize=4096)
def _month_number(month: Any) -> int:
    """Months since 1970-01 of a "YYYY-MM" string (parsed as pd.PeriodIndex parses it)."""
    return int(pd.PeriodIndex([month], freq="M").asi8[0])


def month_numbers(codes: np.ndarray, months: Sequence) -> np.ndarray:
    """Months since 1970-01 for codes into distinct month strings (each string parsed once)."""
    return np.array([_month_number(m) for m in months], np.int64)[codes]


def _take(column: pd.Series | np.ndarray, rows: np.ndarray) -> Any:
    """Values of a column (a Series, or an array of a column mapping) at row positions, in the
    column's dtype."""
    if isinstance(column, np.ndarray):
        return column[rows]
    values = column.array.take(rows)
    # a DataFrame built from a bare object array would infer str
    return pd.Series(values, dtype=object) if column.dtype == object else values


@dataclass(frozen=True, eq=False)
class ClaimLines:
    """The line table read once into arrays: claim index and code id per line.

    Claims are numbered in first-seen order (as apply_rules lists them); a claim's header
    fields are those of its first line (every line repeats them; the schema checks that).
    """

    # the line table: a DataFrame, or its columns as arrays (serving's JSON path: no DataFrame
    # for one claim; strings as object arrays, numbers as int or float arrays)
    lines: pd.DataFrame | Mapping[str, np.ndarray]
    ids: Any  # claim_id per claim: the header column apply_rules returns
    claim: np.ndarray  # (lines,) claim index
    first: np.ndarray  # (claims,) position of each claim's first line
    code: np.ndarray  # (lines,) id in VOCABULARY, UNKNOWN outside it
    raw_code: np.ndarray  # (lines,) index into code_names: the code as written
    code_names: Sequence
    kind: np.ndarray  # (lines,) DIAGNOSIS, PROCEDURE, DRUG, or 3 for anything else
    count: np.ndarray
    days: np.ndarray
    points: np.ndarray  # float

    @classmethod
    def read(cls, lines: pd.DataFrame | Mapping[str, np.ndarray]) -> ClaimLines:
        """Factorise claim ids, codes and kinds once; all later work is array indexing.
        `lines`: the line table (LINE_COLUMNS) as a DataFrame or a mapping of column arrays."""
        claim, _ = factorize(lines["claim_id"])
        # a claim's first line has a higher claim index than every line before it
        seen = np.maximum.accumulate(claim[:-1])
        first = np.flatnonzero(np.concatenate([np.ones(min(len(claim), 1), bool),
                                               claim[1:] > seen]))
        raw_code, code_names = factorize(lines["code"])
        to_id = np.array([code_id(str(c)) for c in code_names], np.intp)
        kind, kinds = factorize(lines["line_kind"])
        to_kind = np.array([_KIND_ID.get(k, len(_KIND_ID)) for k in kinds], np.int8)
        return cls(lines=lines, ids=_take(lines["claim_id"], first), claim=claim, first=first,
                   code=to_id[raw_code], raw_code=raw_code, code_names=code_names,
                   kind=to_kind[kind], count=np.asarray(lines["count"]),
                   days=np.asarray(lines["days"]),
                   points=np.asarray(lines["points"]).astype(float))

    @property
    def n_claims(self) -> int:
        """Number of distinct claims."""
        return len(self.ids)

    def header(self, column: str) -> Any:
        """A header column per claim, in the lines' own dtype."""
        return self.ids if column == "claim_id" else _take(self.lines[column], self.first)

    def any(self, mask: np.ndarray) -> np.ndarray:
        """Per claim: does any of its lines have mask set."""
        return np.bincount(self.claim[mask], minlength=self.n_claims) > 0

    def sum(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Per claim: float sum of values over its lines (those in mask, when given)."""
        claim = self.claim if mask is None else self.claim[mask]
        weights = values if mask is None else values[mask]
        # bincount of no lines would be int
        return np.bincount(claim, weights, minlength=self.n_claims).astype(float, copy=False)

    def max(self, values: np.ndarray) -> np.ndarray:
        """Per claim: max of float values over its lines."""
        out = np.full(self.n_claims, -np.inf)
        np.maximum.at(out, self.claim, values)
        return out


def _indication_hits(view: ClaimLines, pharmacy: np.ndarray, patient_month: np.ndarray,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Line masks: no indicated diagnosis on the claim; for 調剤, none in the month (突合).

    pharmacy (bool) and patient_month (a group id of patient and month) are per claim.
    """
    accepts = INDICATED_BY[view.code]
    need = (accepts != 0) & (view.kind != DIAGNOSIS)
    on_claim = np.zeros(view.n_claims, np.uint64)  # bit set of each claim's diagnoses
    np.bitwise_or.at(on_claim, view.claim, np.where(view.kind == DIAGNOSIS, DX_BIT[view.code],
                                                    np.uint64(0)))
    in_month = np.zeros(int(patient_month.max(initial=-1)) + 1, np.uint64)
    np.bitwise_or.at(in_month, patient_month, on_claim)
    missing_claim = need & ((accepts & on_claim[view.claim]) == 0)
    missing_month = need & ((accepts & in_month[patient_month][view.claim]) == 0)
    rx = pharmacy[view.claim]
    return missing_claim & ~rx, missing_month & rx


def _frequency_3m(view: ClaimLines, patient: np.ndarray, month: np.ndarray) -> np.ndarray:
    """Lines of procedures limited to once in N months (every_months N > 1: 3-monthly PSA, a
    2月/6月/12月 unit of the 算定回数テーブル) billed again within the N - 1 previous months
    (縦覧).

    patient (a code) and month (months since 1970-01) are per claim.
    """
    out = np.zeros(len(view.code), bool)
    rows = np.flatnonzero(ATTRIBUTES["every_months"][view.code] > 1)
    if rows.size == 0:
        return out
    claim = view.claim[rows]
    who, code, m = patient[claim], view.code[rows], month[claim]
    # each line against the one before it in (patient, code, month, line) order
    order = np.lexsort((rows, m, code, who))
    who, code, m, rows = who[order], code[order], m[order], rows[order]
    gap = np.diff(m)
    span = ATTRIBUTES["every_months"][code[1:]]
    again = (who[1:] == who[:-1]) & (code[1:] == code[:-1]) & (gap >= 1) & (gap < span)
    out[rows[1:][again]] = True
    return out


def _duplicates(view: ClaimLines, header: np.ndarray) -> np.ndarray:
    """Claims identical in patient, provider, month, type and content, except the first one.

    header is a per-claim group id of (patient, provider, month, type, total points); content
    is hashed only for claims whose header repeats, since no other claim can be a copy.
    """
    repeated = np.bincount(header, minlength=1)[header] > 1
    if not repeated.any():
        return repeated
    rows = np.flatnonzero(repeated[view.claim])
    content = pd.DataFrame({c: _take(view.lines[c], rows) for c in ("code", "count", "days")})
    sig = pd.util.hash_pandas_object(content, index=False).groupby(view.claim[rows]).sum()
    claims = sig.index.to_numpy()  # ascending claim index: first-seen order
    key = pd.DataFrame({"header": header[claims], "content": sig.to_numpy()})
    out = np.zeros(len(header), bool)
    out[claims] = key.duplicated(keep="first").to_numpy()
    return out


def _eligibility_lost(month: np.ndarray, months: Sequence, until: Any) -> np.ndarray:
    """Per claim: service month after the insured-until month (empty: still insured).

    Compares each distinct (month, until) pair of strings once.
    """
    last, lasts = factorize(until)
    lasts = ["" if pd.isna(u) else str(u) for u in lasts]
    lost = np.array([[u != "" and not pd.isna(m) and str(m) > u for u in lasts] for m in months],
                    bool)
    return lost.reshape(len(months), len(lasts))[month, last]


def _exclusive(view: ClaimLines) -> np.ndarray:
    """Lines whose code may not be billed with another code on the same claim: the disallowed
    member of a curated pair (codes.EXCLUSIVE_PAIRS) or of the 背反テーブル's 同一月内 relations
    (`MasterExclusions`)."""
    mask = EXCLUSIONS.banned_lines(view)
    for first, second in C.EXCLUSIVE_PAIRS:
        with_first = view.any(view.code == CODE_ID[first])
        mask |= (view.code == CODE_ID[second]) & with_first[view.claim]
    return mask


def _partners(pairs: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR of (code id, partner id) rows: (indptr over code ids, partners sorted by code)."""
    order = np.argsort(pairs[:, 0], kind="stable")
    indptr = np.zeros(size + 1, np.int64)
    np.add.at(indptr, pairs[:, 0] + 1, 1)
    return np.cumsum(indptr), pairs[order, 1]


@dataclass(frozen=True)
class MasterExclusions:
    """The 背反テーブル's 同一月内 relations (masters.Masters.exclusions) as code-id arrays.

    A claim is one month of one provider, so a relation "not in the same month" is certain
    when both codes are on one claim: the banned code's lines are flagged (背反区分 1 / 2), or,
    where either one may stay (背反区分 3), the line of the pair with fewer points (the one an
    examiner would cut; a tie flags the larger code). Day, week and 同時 relations are not
    checked: the frame has no dates.
    """

    kept: np.ndarray  # CSR over banned ids: the codes whose presence bans it
    kept_ptr: np.ndarray
    either: np.ndarray  # CSR over ids: the other member of a 背反区分 3 pair (both ways)
    either_ptr: np.ndarray
    involved: np.ndarray  # bool by code id: in any relation

    @classmethod
    def of(cls, masters: M.Masters) -> MasterExclusions:
        """From the masters in use; codes outside VOCABULARY (none today) are left out."""
        ex = masters.exclusions("month")
        ex = ex[ex["kept"].isin(CODE_ID) & ex["banned"].isin(CODE_ID)]
        kept = np.array([[CODE_ID[b], CODE_ID[k]] for k, b, e in ex.itertuples(index=False)
                         if not e], np.int64).reshape(-1, 2)
        one = np.array([[CODE_ID[a], CODE_ID[b]] for a, b, e in ex.itertuples(index=False)
                        if e], np.int64).reshape(-1, 2)
        either = np.concatenate([one, one[:, ::-1]])
        involved = np.zeros(UNKNOWN + 1, bool)
        involved[np.concatenate([kept.ravel(), either.ravel()])] = True
        return cls(*_partners(kept, UNKNOWN + 1)[::-1], *_partners(either, UNKNOWN + 1)[::-1],
                   involved)

    def banned_lines(self, view: ClaimLines) -> np.ndarray:
        """Bool per line: a procedure line another code on its claim rules out this month."""
        mask = np.zeros(len(view.code), bool)
        rows = np.flatnonzero((view.kind == PROCEDURE) & self.involved[view.code])
        if len(rows) < 2:
            return mask
        size = UNKNOWN + 1
        key = view.claim[rows].astype(np.int64) * size + view.code[rows]
        present = np.unique(key)
        order = np.argsort(key, kind="stable")
        most = np.maximum.reduceat(view.points[rows][order], np.searchsorted(key[order], present))
        for partners, ptr, either in ((self.kept, self.kept_ptr, False),
                                      (self.either, self.either_ptr, True)):
            line, other = _expand(view.code[rows], ptr, partners)
            if not len(line):
                continue
            want = view.claim[rows][line].astype(np.int64) * size + other
            at = np.minimum(np.searchsorted(present, want), len(present) - 1)
            hit = present[at] == want
            if either:  # keep the pair's line with more points (a tie: the smaller code)
                mine = view.points[rows][line]
                hit &= (mine < most[at]) | ((mine == most[at]) & (view.code[rows][line] > other))
            mask[rows[line[hit]]] = True
        return mask


def _expand(codes: np.ndarray, ptr: np.ndarray, partners: np.ndarray,
            ) -> tuple[np.ndarray, np.ndarray]:
    """(index into codes, partner id) for every partner of every code (CSR ptr/partners)."""
    start, stop = ptr[codes], ptr[codes + 1]
    counts = stop - start
    line = np.repeat(np.arange(len(codes)), counts)
    offset = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return line, partners[np.repeat(start, counts) + offset]


EXCLUSIONS = MasterExclusions.of(M.in_use())


def rule_columns(view: ClaimLines) -> dict[str, Any]:
    """apply_rules' columns as arrays, for callers that go on without a DataFrame."""
    out: dict[str, Any] = {c: view.header(c) for c in HEADER}
    patient, _ = factorize(out["patient_id"])
    month, months = factorize(out["service_month"])
    ctype, ctypes = factorize(out["claim_type"])
    total = np.asarray(out["total_points"])
    code, count, days, points = view.code, view.count, view.days, view.points

    def put(rule: str, mask: np.ndarray, stake: np.ndarray) -> None:
        out[rule], out[f"{rule}_stake"] = view.any(mask), view.sum(stake, mask)

    def whole(rule: str, hit: np.ndarray) -> None:
        out[rule], out[f"{rule}_stake"] = hit, np.where(hit, total, 0)

    pharmacy = np.array([t == "調剤" for t in ctypes], bool)[ctype]
    no_ind, no_ind_month = _indication_hits(view, pharmacy, combine(patient, month))
    put("R_INDICATION", no_ind, points)
    put("R_TOTSUGO", no_ind_month, points)
    provider, _ = factorize(out["provider_id"])
    header = combine(patient, provider, month, ctype, factorize(total)[0])
    whole("R_DUPLICATE", _duplicates(view, header))
    maxm = ATTRIBUTES["max_per_month"][code]
    over = (view.kind == PROCEDURE) & (count > maxm)
    # the line's own points per 回 (what was billed), so a master code's stake is right too
    put("R_FREQUENCY", over, np.maximum(count - maxm, 0) * points / np.maximum(count, 1))
    put("R_FREQ_3M", _frequency_3m(view, patient, month_numbers(month, months)), points)
    put("R_EXCLUSIVE", _exclusive(view), points)
    age = np.asarray(out["age"])[view.claim]
    sex = np.asarray(out["sex"])[view.claim]
    only_sex = ATTRIBUTES["only_sex"][code]
    bad = ((only_sex > 0) & (only_sex != sex)) | (age < ATTRIBUTES["min_age"][code]) \
        | (age > ATTRIBUTES["max_age"][code])
    put("R_AGE_SEX", bad, points)
    max_qty, max_days = ATTRIBUTES["max_qty"][code], ATTRIBUTES["max_days"][code]
    dose = (view.kind == DRUG) & ((count > max_qty) | (days > max_days))
    allowed = np.minimum(count, max_qty) * np.minimum(days, max_days)
    put("R_DOSE", dose, points * (1 - allowed / np.maximum(count * days, 1)))
    whole("R_ELIGIBILITY", _eligibility_lost(month, months, out["insured_until"]))
    whole("R_INJURY", view.any(IS_INJURY[code]))
    return out


def apply_rules(lines: pd.DataFrame) -> pd.DataFrame:
    """Claim-level frame: claim header fields, one bool column and one stake column per rule."""
    return pd.DataFrame(rule_columns(ClaimLines.read(lines)))


def columns(frame: Mapping[str, Any] | pd.DataFrame, names: Sequence[str], dtype: type = float,
            ) -> np.ndarray:
    """(rows, len(names)) array of the named columns of a frame or of a dict of columns."""
    # stack rows and transpose once: much faster than column_stack's strided writes
    return np.ascontiguousarray(np.array([np.asarray(frame[c], dtype=dtype) for c in names]).T)


def rules_priority(hits: pd.DataFrame) -> np.ndarray:
    """Rules-only ranking: points at stake named by the fired rules (the baseline)."""
    line_rules = [c for c in RULE_CODES if c not in ("R_DUPLICATE", "R_ELIGIBILITY", "R_INJURY")]
    line_stake = hits[[f"{c}_stake" for c in line_rules]].sum(axis=1).to_numpy()
    whole = hits[["R_DUPLICATE_stake", "R_ELIGIBILITY_stake", "R_INJURY_stake"]].max(axis=1)
    return np.maximum(line_stake, whole.to_numpy())
