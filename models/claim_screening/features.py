"""Claim-level features: rule hits, claim shape, provider and diagnosis norms, patient history.

Providers and codes the model has no history for are a state it is trained on, not a fallback:
provider statistics are shrunk towards the all-provider mean by their claim volume (empirical
Bayes), training computes them out of fold and withholds a share of providers entirely
(estimator.fit_model), and a key code without its own point norm falls back to the norm of its
ICD-10 chapter (diagnoses) or 区分 (the first digits of procedure and drug codes). Codes are
described by their national-master attributes as well as by identity (rules.CODE_TABLE: the s
master's 区分 letter and 上限回数, the y master's 剤形, the ICD-10 chapter), so a code that
training never saw but the masters list still has meaningful features: the claim's points by
区分, its highest per-回 points, its counts against 上限回数, its ICD-10 chapters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.claim_screening import codes as C
from models.claim_screening.rules import (
    ATTRIBUTES,
    DIAGNOSIS,
    DRUG,
    IS_INJURY,
    PROCEDURE,
    RULE_CODES,
    SECTIONS,
    ClaimLines,
    columns,
    combine,
    factorize,
    month_numbers,
)

CLAIM_TYPE_INDEX = {t: i for i, t in enumerate(C.CLAIM_TYPES)}


def _in_sections(*names: str) -> np.ndarray:
    """Bool by code id: is the code's master section (rules.SECTIONS) one of names."""
    return np.isin(ATTRIBUTES["section"], [SECTIONS.index(n) for n in names])


# Claim composition by the masters' 区分 (stable attributes: a code the model never saw in
# training, but which the masters list, still lands in its group). Feature -> s master 区分.
POINT_GROUPS: dict[str, tuple[str, ...]] = {
    "share_points_basic": ("A", "B", "C"),  # 基本診療料, 医学管理等, 在宅医療
    "share_points_tests": ("D", "N"),  # 検査, 病理診断
    "share_points_imaging": ("E",),  # 画像診断
    "share_points_rehab": ("H", "I", "J"),  # リハビリテーション, 精神科専門療法, 処置
    "share_points_surgery": ("K", "L", "M"),  # 手術, 麻酔, 放射線治療
}
_GROUP_MASKS = {name: _in_sections(*letters) for name, letters in POINT_GROUPS.items()}
_IS_REHAB = _in_sections("H", "J")  # リハビリテーション and 処置: units billed by count
_IS_IMAGING = _in_sections("E")
MAJOR_IMAGING_POINTS = 500  # per 回: CT, MRI and the like, not plain X-ray
_LIMITED = ATTRIBUTES["max_per_month"] < 99  # a 上限回数 in the s master (or the curated set)
_ICD_CHAPTER = np.where(ATTRIBUTES["section"] >= SECTIONS.index("ICDA"),
                        ATTRIBUTES["section"], 0).astype(np.int64)
_ICD_CHAPTER_BIT = np.maximum(_ICD_CHAPTER - SECTIONS.index("ICDA"), 0).astype(np.uint32)

FEATURE_NAMES: tuple[str, ...] = (
    *RULE_CODES,
    "n_rules", "log_rule_stake", "claim_type", "age", "sex", "log_total_points", "n_lines",
    "n_diagnoses", "n_procedures", "n_drugs", "has_injury", "rehab_units", "has_major_imaging",
    "max_qty_ratio", "max_days_ratio", *POINT_GROUPS, "share_points_drugs",
    "log_max_unit_points", "max_count_vs_limit", "n_icd_chapters",
    "points_vs_norm", "provider_points_vs_norm",
    "provider_rule_rate", "provider_injury_share", "provider_rehab_mean", "log_provider_claims",
    "month_provider_points_vs_norm", "month_provider_rule_rate", "log_month_provider_claims",
    "patient_claims_prev2",
    "patient_log_points_prev2", "patient_injury_months_prev3", "patient_claims_same_month",
)

# Japanese names shown to reviewers next to each feature's contribution.
FEATURE_LABELS: dict[str, str] = {
    **{r: f"ルール {r}" for r in RULE_CODES},
    "n_rules": "該当ルール数", "log_rule_stake": "ルールが示す点数", "claim_type": "レセプト種別",
    "age": "年齢", "sex": "性別", "log_total_points": "請求点数", "n_lines": "明細行数",
    "n_diagnoses": "傷病名数", "n_procedures": "診療行為数", "n_drugs": "医薬品数",
    "has_injury": "外傷の傷病名（ICD-10 S・T）", "rehab_units": "リハビリ・処置回数",
    "has_major_imaging": "CT・MRI等（1回500点以上の画像診断）",
    "max_qty_ratio": "1日量／上限", "max_days_ratio": "投与日数／上限",
    "share_points_basic": "基本診療料・医学管理の点数割合", "share_points_tests": "検査の点数割合",
    "share_points_imaging": "画像診断の点数割合",
    "share_points_rehab": "リハビリ・精神科専門療法・処置の点数割合",
    "share_points_surgery": "手術・麻酔・放射線治療の点数割合",
    "share_points_drugs": "医薬品の点数割合",
    "log_max_unit_points": "1回あたり点数の最大", "max_count_vs_limit": "回数／上限回数（最大）",
    "n_icd_chapters": "傷病名のICD-10章の数",
    "points_vs_norm": "同種別・同傷病名の標準点数との差",
    "provider_points_vs_norm": "医療機関の平均的な点数水準",
    "provider_rule_rate": "医療機関のルール該当率", "provider_injury_share": "医療機関の外傷割合",
    "provider_rehab_mean": "医療機関の平均リハビリ回数",
    "log_provider_claims": "医療機関の過去の請求件数（0: 履歴なし）",
    "month_provider_points_vs_norm": "当月の医療機関の点数水準",
    "month_provider_rule_rate": "当月の医療機関のルール該当率",
    "log_month_provider_claims": "当月の医療機関の請求件数",
    "patient_claims_prev2": "患者の前2か月の請求件数",
    "patient_log_points_prev2": "患者の前2か月の点数", "patient_injury_months_prev3":
    "患者の前3か月の外傷月数", "patient_claims_same_month": "患者の同月の請求件数",
}


# Weight of the all-provider mean in a provider's statistics, in claims: a provider with this
# many claims of history sits halfway between its own means and everyone's; none, at the mean.
SHRINK_CLAIMS = 30.0
N_PROVIDER_STATS = 4  # points vs norm, rule rate, injury share, rehab units (then the count)


@dataclass
class Reference:
    """Norms learned from training data and shipped with the model for serving."""

    norm: dict[str, float]  # "claim_type|key code" (and "claim_type|~group") -> median log1p
    global_norm: float
    # provider -> [points_vs_norm, rule_rate, injury, rehab, n]: raw means over n claims
    provider: dict[str, list[float]]
    # claim-weighted mean of the four provider statistics: what a provider without history gets
    prior: list[float] | None = None
    codes: list[str] = field(default_factory=list)  # every code seen in training
    # weight of the prior in claims; 0 for references saved before shrinkage (their models
    # were trained on raw means)
    shrink: float = SHRINK_CLAIMS

    def __post_init__(self) -> None:
        if self.prior is None:  # references saved before the prior was stored
            stats = np.array(list(self.provider.values()), float).reshape(-1, 5)
            n = stats[:, 4]
            self.prior = [float(v) for v in (stats[:, :4] * n[:, None]).sum(0) / n.sum()] \
                if n.sum() > 0 else [0.0] * N_PROVIDER_STATS

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return {"norm": self.norm, "global_norm": self.global_norm, "provider": self.provider,
                "prior": self.prior, "codes": self.codes, "shrink": self.shrink}

    @classmethod
    def from_dict(cls, d: dict) -> Reference:
        """Inverse of to_dict (older references lack prior and codes)."""
        return cls(norm=d["norm"], global_norm=float(d["global_norm"]), provider=d["provider"],
                   prior=d.get("prior"), codes=list(d.get("codes", [])),
                   shrink=float(d.get("shrink", 0.0)))


def code_group(code: str) -> str:
    """A stable group of a code for norms of codes without their own: the ICD-10 chapter
    letter of a diagnosis, the first two digits (区分) of a 9-digit 診療行為 or 医薬品 code."""
    code = str(code)
    return "~" + (code[:1] if code[:1].isalpha() else code[:2])


def _shape(view: ClaimLines, claim_ids: Any) -> dict[str, Any]:
    """Per-claim counts and line-derived quantities (float) aligned to claim_ids; key_code is
    each claim's first code as an index into code_names (-1: claim not in the lines)."""
    code, kind = view.code, view.kind
    drug = kind == DRUG
    procedure = kind == PROCEDURE
    qty_ratio = np.where(drug, view.count / ATTRIBUTES["max_qty"][code], 0)
    days_ratio = np.where(drug, view.days / ATTRIBUTES["max_days"][code], 0)
    # per 回 as billed (a code outside the masters still has its own points)
    unit = np.where(procedure, view.points / np.maximum(view.count, 1), 0.0)
    limit = ATTRIBUTES["max_per_month"][code]
    line_total = np.maximum(view.sum(view.points), 1.0)
    # ICD-10 chapters per claim as a bit set (one bit per letter), then counted
    chapter_bit = np.where((kind == DIAGNOSIS) & (_ICD_CHAPTER[code] > 0),
                           np.left_shift(np.uint32(1), _ICD_CHAPTER_BIT[code]), np.uint32(0))
    bits = np.zeros(view.n_claims, np.uint32)
    np.bitwise_or.at(bits, view.claim, chapter_bit)
    chapters = np.bitwise_count(bits)
    shape = {
        "n_lines": view.sum(np.ones(len(code))),
        "n_diagnoses": view.sum(kind == DIAGNOSIS),
        "n_procedures": view.sum(kind == PROCEDURE),
        "n_drugs": view.sum(drug),
        "has_injury": view.any(IS_INJURY[code]).astype(float),
        "rehab_units": view.sum(np.where(procedure & _IS_REHAB[code], view.count, 0)),
        "has_major_imaging": view.any(procedure & _IS_IMAGING[code]
                                      & (unit >= MAJOR_IMAGING_POINTS)).astype(float),
        "max_qty_ratio": view.max(qty_ratio),
        "max_days_ratio": view.max(days_ratio),
        **{name: view.sum(view.points, procedure & mask[code]) / line_total
           for name, mask in _GROUP_MASKS.items()},
        "share_points_drugs": view.sum(view.points, drug) / line_total,
        "log_max_unit_points": np.log1p(np.maximum(view.max(unit), 0)),
        "max_count_vs_limit": view.max(np.where(procedure & _LIMITED[code],
                                                view.count / limit, 0)),
        "n_icd_chapters": chapters.astype(float),
        "key_code": view.raw_code[view.first],
    }
    # hits are usually apply_rules' own columns for these lines (then `is` holds)
    if claim_ids is not view.ids and not pd.Index(claim_ids).equals(pd.Index(view.ids)):
        at = pd.Index(view.ids).get_indexer(pd.Index(claim_ids))  # align by claim_id
        shape = {k: np.where(at >= 0, v[at], -1 if k == "key_code" else np.nan)
                 for k, v in shape.items()}
    return {**shape, "code_names": view.code_names}


def _norm_keys(claim_type: Any, key_code: np.ndarray, code_names: Sequence,
               ) -> tuple[np.ndarray, list[str]]:
    """Each claim's "claim_type|key code" norm key, as an index into the distinct keys."""
    ctype, ctypes = factorize(claim_type)
    width = len(code_names) + 1
    key, pairs = factorize(ctype * width + key_code + 1)
    names = ["nan", *map(str, code_names)]  # key_code -1 (claim not in the lines) reads nan
    return key, [f"{ctypes[p // width]}|{names[p % width]}" for p in pairs]


def _group_key(key: str) -> str:
    """The code-group norm key of a "claim_type|code" key."""
    ctype, _, code = key.partition("|")
    return f"{ctype}|{code_group(code)}"


def _residual(logp: np.ndarray, key: np.ndarray, keys: list[str], norm: Mapping[str, float],
              global_norm: float) -> np.ndarray:
    """log1p(points) minus the norm of each claim's key; a key without one takes its code
    group's norm, and the global norm when the group has none either."""
    def lookup(k: str) -> float:
        v = norm.get(k)
        if v is None or v != v:
            v = norm.get(_group_key(k))
        return global_norm if v is None or v != v else v

    return logp - np.array([lookup(k) for k in keys], float)[key]


def _claim_provider_values(lines: pd.DataFrame, hits: pd.DataFrame, norm: Mapping[str, float],
                           global_norm: float) -> np.ndarray:
    """(claims, 4) per-claim values behind the provider statistics, in hits' row order."""
    shape = _shape(ClaimLines.read(lines), hits["claim_id"])
    logp = np.log1p(hits["total_points"].to_numpy(float))
    key, keys = _norm_keys(hits["claim_type"], shape["key_code"], shape["code_names"])
    resid = _residual(logp, key, keys, norm, global_norm)
    rule = columns(hits, RULE_CODES).max(axis=1, initial=0)
    return np.column_stack([resid, rule, np.nan_to_num(shape["has_injury"]),
                            np.nan_to_num(shape["rehab_units"])])


def build_reference(lines: pd.DataFrame, hits: pd.DataFrame) -> Reference:
    """Learn point norms per (claim type, key code) and per (claim type, code group), and
    per-provider habits (raw means and claim counts) from training data."""
    shape = _shape(ClaimLines.read(lines), hits["claim_id"])
    logp = pd.Series(np.log1p(hits["total_points"].to_numpy(float)), index=hits.index)
    key, keys = _norm_keys(hits["claim_type"], shape["key_code"], shape["code_names"])
    per_claim = np.asarray(keys, dtype=object)[key]
    norm = logp.groupby(per_claim).median()
    groups = logp.groupby(np.array([_group_key(k) for k in per_claim], dtype=object)).median()
    norms = {**{str(k): float(v) for k, v in groups.items()},
             **{str(k): float(v) for k, v in norm.items()}}
    global_norm = float(logp.median())
    values = _claim_provider_values(lines, hits, norms, global_norm)
    provider, names = factorize(hits["provider_id"])
    n = np.bincount(provider, minlength=len(names)).astype(float)
    sums = np.zeros((len(names), N_PROVIDER_STATS))
    np.add.at(sums, provider, values)
    table = np.column_stack([sums / np.maximum(n, 1)[:, None], n])
    prior = values.mean(axis=0) if len(values) else np.zeros(N_PROVIDER_STATS)
    return Reference(norm=norms, global_norm=global_norm,
                     provider={str(p): [float(v) for v in row] for p, row in zip(
                         names, table, strict=True)},
                     prior=[float(v) for v in prior],
                     codes=sorted(map(str, pd.unique(lines["code"]))))


def out_of_fold_provider_stats(lines: pd.DataFrame, hits: pd.DataFrame, ref: Reference,
                               seed: int, folds: int = 5, unseen_share: float = 0.1,
                               ) -> np.ndarray:
    """(claims, 5) provider statistics for training rows as serving will see them: each claim's
    provider's raw means and count over the other folds' claims (so a claim never describes
    itself), and for a random `unseen_share` of providers no history at all (count 0), so the
    model learns what a provider nobody has seen looks like.

    Rows in hits' order; claims are assigned to `folds` folds at random (seeded).
    """
    values = _claim_provider_values(lines, hits, ref.norm, ref.global_norm)
    provider, names = factorize(hits["provider_id"])
    rng = np.random.default_rng(seed)
    fold = rng.integers(folds, size=len(provider))
    cell = provider * folds + fold
    n_cells = len(names) * folds
    sums = np.zeros((len(names), N_PROVIDER_STATS))
    np.add.at(sums, provider, values)
    cell_sums = np.zeros((n_cells, N_PROVIDER_STATS))
    np.add.at(cell_sums, cell, values)
    n = np.bincount(provider, minlength=len(names))[provider] - np.bincount(
        cell, minlength=n_cells)[cell]
    oof = sums[provider] - cell_sums[cell]
    unseen = (rng.random(len(names)) < unseen_share)[provider]
    n = np.where(unseen, 0, n).astype(float)
    means = np.where(n[:, None] > 0, oof / np.maximum(n, 1)[:, None], np.nan)
    return np.column_stack([means, n])


def _group_mean(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row: the mean of values over the row's group."""
    return (np.bincount(group, values) / np.bincount(group))[group]


def _patient_history(patient: np.ndarray, month: np.ndarray, points: np.ndarray,
                     has_injury: np.ndarray) -> dict[str, np.ndarray]:
    """Previous-months activity of each claim's patient within the given data (縦覧).

    Per claim: patient code, month (months since 1970-01), total points, has_injury.
    """
    lo = int(month.min(initial=0))
    span = int(month.max(initial=0)) - lo + 4  # 3 months back never reaches another patient
    cell = patient.astype(np.int64) * span + (month - lo + 3)
    cells, at = np.unique(cell, return_inverse=True)
    cells = np.append(cells, np.iinfo(np.int64).max)  # sentinel: every lookup lands in range
    n = np.bincount(at, minlength=len(cells)).astype(float)
    pts = np.bincount(at, points, minlength=len(cells)).astype(float)
    inj = np.zeros(len(cells))
    np.fmax.at(inj, at, has_injury)  # NaN (claim not in the lines) counts as no injury

    def back(lag: int) -> np.ndarray:
        """Index of the same patient's cell `lag` months earlier (the sentinel where none)."""
        found = np.searchsorted(cells, cell - lag)
        return np.where(cells[found] == cell - lag, found, len(cells) - 1)

    prev = [back(lag) for lag in (1, 2, 3)]
    return {
        "patient_claims_prev2": n[prev[0]] + n[prev[1]],
        "patient_log_points_prev2": np.log1p(pts[prev[0]] + pts[prev[1]]),
        "patient_injury_months_prev3": inj[prev[0]] + inj[prev[1]] + inj[prev[2]],
        "patient_claims_same_month": n[at],
    }


def _provider_stats(provider: np.ndarray, names: Sequence, ref: Reference) -> np.ndarray:
    """(claims, 5) raw reference stats of each claim's provider; count 0 for providers it
    lacks."""
    table = np.full((len(names), 5), np.nan)
    table[:, 4] = 0
    for i, name in enumerate(names):
        stats = ref.provider.get(str(name))
        if stats is not None:
            table[i] = stats
    return table[provider]


def shrink_provider_stats(raw: np.ndarray, prior: Sequence[float],
                          shrink: float = SHRINK_CLAIMS) -> np.ndarray:
    """(claims, 4) provider means shrunk towards the prior by claim count (empirical Bayes):
    (n x mean + k x prior) / (n + k) with k = shrink claims; the prior itself at n = 0."""
    n = raw[:, 4:5]
    means = np.where(n > 0, raw[:, :4], 0.0)
    p = np.asarray(prior, float)
    if shrink <= 0:  # raw means, the prior only where there is no history
        return np.where(n > 0, means, p)
    return (n * means + shrink * p) / (n + shrink)


def known_providers(provider: Any, ref: Reference) -> np.ndarray:
    """Per claim: does the reference hold history for its provider (bool)."""
    codes, names = factorize(provider)
    return np.array([str(n) in ref.provider for n in names], bool)[codes]


PROVIDER_FEATURES = ("provider_points_vs_norm", "provider_rule_rate", "provider_injury_share",
                     "provider_rehab_mean", "log_provider_claims")
# their columns in the feature matrix: the only ones out-of-fold provider statistics change
PROVIDER_COLUMNS = [FEATURE_NAMES.index(name) for name in PROVIDER_FEATURES]


def provider_features(provider: np.ndarray, providers: Sequence, ref: Reference,
                      provider_stats: np.ndarray | None = None) -> np.ndarray:
    """(claims, 5) PROVIDER_FEATURES: the four provider means shrunk to the prior and log1p of
    the provider's claim count, from the reference (or `provider_stats`, raw means and counts
    such as out_of_fold_provider_stats). provider: per claim, a code into `providers`."""
    raw = _provider_stats(provider, providers, ref) if provider_stats is None else provider_stats
    stats = shrink_provider_stats(raw, ref.prior or [0.0] * N_PROVIDER_STATS, ref.shrink)
    return np.column_stack([stats, np.log1p(raw[:, 4])])


def feature_matrix(view: ClaimLines, hits: Mapping[str, Any] | pd.DataFrame, ref: Reference,
                   provider_stats: np.ndarray | None = None) -> np.ndarray:
    """build_features as a float32 array, from apply_rules' frame or its dict of columns.

    provider_stats: (claims, 5) raw provider means and counts to use instead of the
    reference's (training passes out_of_fold_provider_stats).
    """
    shape = _shape(view, hits["claim_id"])
    f: dict[str, np.ndarray] = {r: np.asarray(hits[r], dtype=float) for r in RULE_CODES}
    rules = np.array([f[r] for r in RULE_CODES])  # (rules, claims)
    f["n_rules"] = rules.sum(axis=0)
    stakes = np.array([np.asarray(hits[f"{r}_stake"], dtype=float) for r in RULE_CODES])
    f["log_rule_stake"] = np.log1p(stakes.max(axis=0))
    ctype, ctypes = factorize(hits["claim_type"])
    f["claim_type"] = np.array([CLAIM_TYPE_INDEX.get(t, -1) for t in ctypes], float)[ctype]
    f["age"] = np.asarray(hits["age"], dtype=float)
    f["sex"] = np.asarray(hits["sex"], dtype=float)
    points = np.asarray(hits["total_points"], dtype=float)
    f["log_total_points"] = logp = np.log1p(points)
    for col in ("n_lines", "n_diagnoses", "n_procedures", "n_drugs", "has_injury", "rehab_units",
                "has_major_imaging", "max_qty_ratio", "max_days_ratio", *POINT_GROUPS,
                "share_points_drugs", "log_max_unit_points", "max_count_vs_limit",
                "n_icd_chapters"):
        f[col] = shape[col]
    key, keys = _norm_keys(hits["claim_type"], shape["key_code"], shape["code_names"])
    f["points_vs_norm"] = resid = _residual(logp, key, keys, ref.norm, ref.global_norm)
    provider, providers = factorize(hits["provider_id"])
    f.update(zip(PROVIDER_FEATURES, provider_features(provider, providers, ref, provider_stats).T,
                 strict=True))
    month, months = factorize(hits["service_month"])
    provider_month = combine(provider, month)
    f["month_provider_points_vs_norm"] = _group_mean(provider_month, resid)
    f["month_provider_rule_rate"] = _group_mean(provider_month, rules.max(axis=0, initial=0))
    f["log_month_provider_claims"] = np.log1p(np.bincount(provider_month)[provider_month])
    patient, _ = factorize(hits["patient_id"])
    f.update(_patient_history(patient, month_numbers(month, months), points, shape["has_injury"]))
    # fill feature rows, then transpose once: writing strided columns is ~5x slower
    Xt = np.empty((len(FEATURE_NAMES), rules.shape[1]), np.float32)
    for j, name in enumerate(FEATURE_NAMES):
        Xt[j] = f[name]
    return np.ascontiguousarray(Xt.T)


def build_features(lines: pd.DataFrame, hits: pd.DataFrame, ref: Reference,
                   provider_stats: np.ndarray | None = None) -> pd.DataFrame:
    """Feature matrix (float32, FEATURE_NAMES order), one row per claim aligned with `hits`."""
    X = feature_matrix(ClaimLines.read(lines), hits, ref, provider_stats)
    return pd.DataFrame(X, columns=list(FEATURE_NAMES))
