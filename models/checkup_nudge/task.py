"""The checkup_nudge Task: who gets which 特定健診 reminder, learned from randomised campaigns."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from models.checkup_nudge import metrics as M
from models.checkup_nudge import outreach as O
from models.checkup_nudge import schema as S
from models.checkup_nudge.arms import ARM_LABELS_JA, ARMS, POSTAGE_YEN, PRINTING_YEN, arm_costs
from models.checkup_nudge.estimator import (
    LEARNERS,
    Experiment,
    PolicyValue,
    UpliftModel,
    choose_learner,
    fit_uplift,
    holdout_predictions,
)
from models.checkup_nudge.features import FEATURE_LABELS, FEATURE_NAMES, build_features
from models.checkup_nudge.features import fit_encodings as learn_encodings
from models.checkup_nudge.generate import GenerateSpec, generate
from models.configs import Strict, Tenant
from models.lgbm import Bagging
from models.split import hold_out, tenant_share
from models.task import Frames, Task

Learner = Literal["t", "s", "dr"]


class GenerateConfig(Strict):
    """Synthetic data size and campaigns."""

    total_residents: int = Field(default=300_000, ge=50)
    min_residents: int = Field(default=150, ge=20)
    campaigns: tuple[str, ...] = Field(default=("2024-summer", "2024-autumn", "2025-summer"),
                                       min_length=2)
    nonuniform: tuple[str, ...] = ("2024-autumn",)

    @model_validator(mode="after")
    def _known(self) -> GenerateConfig:
        unknown = sorted(set(self.nonuniform) - set(self.campaigns))
        if unknown:
            raise ValueError(f"nonuniform campaigns {unknown} are not in campaigns")
        return self


class CostConfig(Strict):
    """Yen per postcard: postage + printing; per-arm overrides (e.g. pre-filled printing)."""

    postage_yen: float = Field(default=POSTAGE_YEN, ge=0)
    printing_yen: float = Field(default=PRINTING_YEN, ge=0)
    per_arm: dict[str, float] = Field(default_factory=dict)

    @field_validator("per_arm")
    @classmethod
    def _arms(cls, v: dict[str, float]) -> dict[str, float]:
        arm_costs(overrides=v)
        if any(c < 0 for c in v.values()):
            raise ValueError("arm costs must be >= 0 yen")
        return v

    def costs(self) -> dict[str, float]:
        """Yen per arm."""
        return arm_costs(self.postage_yen, self.printing_yen, self.per_arm)


class ModelConfig(Bagging):
    """LightGBM hyper-parameters shared by every booster of the uplift learners."""

    n_estimators: int = Field(default=60, ge=10)
    learning_rate: float = Field(default=0.15, gt=0, le=1)
    num_leaves: int = Field(default=15, ge=4)
    min_child_samples: int = Field(default=200, ge=1)
    reg_lambda: float = Field(default=1.0, ge=0)


class CheckupNudgeConfig(Strict):
    """configs/checkup_nudge.yaml."""

    generate: GenerateConfig = GenerateConfig()
    test_share: float = Field(default=0.2, gt=0, lt=1, description="residents held out")
    learner: Literal["auto", "t", "s", "dr"] = "auto"
    candidates: tuple[Learner, ...] = Field(default=("s", "t"), min_length=1)
    validation_share: float = Field(default=0.2, gt=0, lt=1)
    budget_yen_per_resident: float = Field(default=30.0, gt=0)
    costs: CostConfig = CostConfig()
    bootstrap: int = Field(default=200, ge=20)
    min_rows_per_arm: int = Field(default=30, ge=2)
    parity_tolerance: float = Field(default=1e-4, gt=0)
    parity_max_mismatch_share: float = Field(default=0.001, ge=0, le=1)
    model: ModelConfig = ModelConfig()


@dataclass
class NudgeModel:
    """The fitted uplift learner and nudge.json (features, encodings, arms, costs, budget)."""

    uplift: UpliftModel
    assets: dict[str, Any]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """P(attend) under every arm, shape (n, len(ARMS))."""
        return self.uplift.predict(X)


def experiment(residents: pd.DataFrame, campaigns: pd.DataFrame, X: np.ndarray) -> Experiment:
    """Campaign rows joined to the roster's features; rows of unknown residents are dropped."""
    person = pd.Index(residents["resident_id"]).get_indexer(campaigns["resident_id"])
    keep = person >= 0
    arm = pd.Categorical(campaigns["arm"], categories=list(ARMS)).codes.astype(int)
    return Experiment(X[person[keep]], arm[keep], campaigns["attended"].to_numpy(float)[keep],
                      campaigns["assignment_prob"].to_numpy(float)[keep], person[keep],
                      len(ARMS))


def _selection_value(costs: np.ndarray, budget_per_resident: float) -> PolicyValue:
    """DR additional attendees per resident of the planned policy on validation rows."""
    def value(P: np.ndarray, mu: np.ndarray, val: Experiment) -> float:
        persons, first, inverse = np.unique(val.groups, return_index=True, return_inverse=True)
        assign = O.policy_assignment(P[first], costs, budget_per_resident * len(persons))
        vals, seen = M.gains_per_person(mu, val.arm, val.y, val.prop, inverse,
                                        {"policy": assign})
        return float(vals[seen].mean())
    return value


POLICY_SIMPLE_JA = ("データからは個人差による効果の違いを確かめられませんでした"
                    "（AIの送付リストの、最も良い単純な方針に対する上乗せ効果の95%信頼区間が0を含みます）。"
                    "予算内で{order}「{arm}」を送る単純な方針を推奨し、この一覧もその方針です。")
POLICY_MODEL_JA = ("AIの送付リストは、最も良い単純な方針（{order}「{arm}」を送付）より受診者が"
                   "多いことを学習に使わなかった検証データで確認しました"
                   "（上乗せ 住民千人あたり {gain:.1f}人, 95%信頼区間 {lo:.1f}〜{hi:.1f}人）。")


def check_policy(val: Experiment, P: np.ndarray, mu: np.ndarray, costs: np.ndarray,
                 budget_per_resident: float, n_boot: int, seed: int) -> dict[str, Any]:
    """Issue 16's rule under a budget, on validation residents the model was not fitted on.

    `val` holds the validation rows of every municipality in the training data (the pooled
    data when training pools), P (rows, n_arms) the chosen learner's predictions for them and
    mu the outcome model of the DR scores. Candidates: the uplift policy and the simple
    budget-feasible ones: one arm for the residents the budget reaches, ranked by a simple
    score (outreach.SIMPLE_ORDERS: predicted attendance without a postcard, high / low /
    closest to 50%). The best simple policy is picked on the same rows (flattering it); the
    uplift policy is kept only if its DR gain over that one has a 95% CI above zero. Gains
    are additional attendees per 1,000 residents per campaign.
    """
    persons, first, inverse = np.unique(val.groups, return_index=True, return_inverse=True)
    budget = budget_per_resident * len(persons)
    simple = O.simple_policies(P[first], costs, budget)
    assigns = {"policy": O.policy_assignment(P[first], costs, budget), **simple}
    vals, seen = M.gains_per_person(mu, val.arm, val.y, val.prop, inverse, assigns)
    names = list(assigns)
    means = vals[seen].mean(axis=0)
    best = max(simple, key=lambda k: means[names.index(k)])
    cols = vals[seen][:, [0, names.index(best)]]
    ci = M.policy_values(cols, ["policy", best], scale=1000.0, n_boot=n_boot, seed=seed,
                         compare="policy")[f"policy_minus_{best}"]
    order, arm_text = best.split(":")
    arm = int(arm_text)
    kind = "model" if ci["ci_low"] > 0 else "simple"
    label, order_ja = ARM_LABELS_JA[ARMS[arm]], O.SIMPLE_ORDERS[order][0]
    message = POLICY_MODEL_JA.format(arm=label, order=order_ja, gain=ci["estimate"],
                                     lo=ci["ci_low"], hi=ci["ci_high"]) if kind == "model" \
        else POLICY_SIMPLE_JA.format(arm=label, order=order_ja)
    return {"kind": kind, "arm": ARMS[arm], "arm_index": arm, "order": order,
            "best_simple": f"{ARMS[arm]} to the residents the budget reaches, "
                           f"{O.SIMPLE_ORDERS[order][1]}",
            "gain_per_1000_residents_vs_best_simple": ci,
            "simple_candidates_per_1000": {k: round(float(means[names.index(k)]) * 1000, 3)
                                           for k in names},
            "validation_residents": int(seen.sum()), "message_ja": message}


class CheckupNudge(Task[CheckupNudgeConfig, NudgeModel]):
    """特定健診 reminders: the arm that gains most per resident and who gets a postcard."""

    name = "checkup_nudge"
    Config = CheckupNudgeConfig
    frames = ("residents", "campaigns", "oracle")
    units = ("resident_id",)

    def schema(self, frame: str) -> Any:
        """pandera schema of 'residents', 'campaigns' or 'oracle'."""
        return {"residents": S.RESIDENTS, "campaigns": S.CAMPAIGNS, "oracle": S.ORACLE}[frame]

    def validate(self, frame: str, df: pd.DataFrame) -> pd.DataFrame:
        """Validated frame; RosterInputError names column and rows."""
        return {"residents": S.validate_residents, "campaigns": S.validate_campaigns,
                "oracle": S.validate_oracle}[frame](df)

    def generate(self, cfg: CheckupNudgeConfig, tenants: list[Tenant], seed: int,
                 ) -> dict[str, dict[str, pd.DataFrame]]:
        """Synthetic rosters, campaign logs and oracle per tenant."""
        spec = GenerateSpec(**cfg.generate.model_dump())
        return generate([(t.code, t.population) for t in tenants], spec, seed)

    def split(self, cfg: CheckupNudgeConfig, data: Frames) -> tuple[Frames, Frames]:
        """Hold out a share of each tenant's residents with all their campaign rows."""
        test_ids = tenant_share(data["residents"], "resident_id", cfg.test_share)
        return hold_out(data, self.frames, "resident_id", test_ids)

    def fit(self, cfg: CheckupNudgeConfig, train: Frames, progress: bool = False,
            seed: int = 0) -> NudgeModel:
        """Choose the learner on a validation share of residents (if 'auto'), then fit it."""
        residents = train["residents"]
        assets = make_assets(cfg, learn_encodings(residents), "t")
        data = experiment(residents, train["campaigns"], build_features(residents, assets))
        _check_rows(data, cfg.min_rows_per_arm)
        params = cfg.model.model_dump()
        # a small tenant fitting alone still needs leaves that can split by arm
        params["min_child_samples"] = min(params["min_child_samples"],
                                          max(10, len(data.y) // (len(ARMS) * 20)))
        costs = np.array([cfg.costs.costs()[a] for a in ARMS])
        candidates = cfg.candidates if cfg.learner == "auto" else (cfg.learner,)
        val, preds = holdout_predictions(data, ARMS, candidates, params, seed,
                                         cfg.validation_share)
        value = _selection_value(costs, cfg.budget_yen_per_resident)
        learner, scores = choose_learner(val, preds, value) if len(candidates) > 1 \
            else (candidates[0], {})
        uplift = fit_uplift(data, ARMS, learner, params, seed)
        uplift.selection = {k: round(v, 6) for k, v in scores.items()}
        assets["learner"] = learner
        assets["policy"] = check_policy(val, preds[learner], np.mean(list(preds.values()), 0),
                                        costs, cfg.budget_yen_per_resident, cfg.bootstrap, seed)
        return NudgeModel(uplift, assets)

    def evaluate(self, cfg: CheckupNudgeConfig, model: NudgeModel, test: Frames,
                 ) -> dict[str, Any]:
        """Policy vs baselines at each tenant's default budget: truth, DR with CIs, Qini."""
        ev = Evaluation.build(model, test, cfg.budget_yen_per_resident, cfg.costs.costs())
        overall = ev.metrics(np.ones(ev.n, bool), cfg, with_qini=True)
        overall["learner"] = model.uplift.learner
        overall["learner_selection"] = model.uplift.selection
        overall["policy_choice"] = model.assets.get("policy")
        per_tenant = {code: ev.metrics(ev.tenant == code, cfg) for code in sorted(set(ev.tenant))}
        truth = overall["true_gain"]
        dr = overall["policy_value"]
        return {"overall": overall, "per_tenant": per_tenant, "headline": {
            "metric": "additional_attendees_at_default_budget",
            "value": truth["policy"] if truth else dr["policy"]["estimate"],
            "oracle": truth["oracle"] if truth else None,
            "baseline": truth["highest_probability"] if truth
            else dr["highest_probability"]["estimate"],
            "baseline_name": "standard postcard to the residents most likely to attend "
                             "(today's vendor practice)",
        }}

    def to_onnx(self, model: NudgeModel, opset: int) -> dict[str, bytes]:
        """One graph per booster: '<arm>' P(attend), 's' (S-learner) or 'tau_<arm>' uplift."""
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        width = model.uplift.n_features + (len(ARMS) - 1 if model.uplift.learner == "s" else 0)
        types = [("input", FloatTensorType([None, width]))]
        out = {}
        for name, booster in model.uplift.boosters.items():
            kw = {"zipmap": False} if hasattr(booster, "predict_proba") else {}
            out[name] = convert_lightgbm(booster, initial_types=types, target_opset=opset,
                                         **kw).SerializeToString()
        return out

    def parity_inputs(self, model: NudgeModel, test: Frames,
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Held-out feature rows and every booster's native output."""
        X = build_features(test["residents"], model.assets)
        Z = model.uplift.graph_input(X)
        return {g: Z for g in model.uplift.boosters}, model.uplift.native_outputs(X)

    def onnx_outputs(self, session: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The combined model's outputs under the graph names (P(attend) or uplift)."""
        names = list(inputs)
        outputs = [f"{g}_{'variable' if g.startswith('tau_') else 'probabilities'}"
                   for g in names]
        raw = session.run(outputs, {"input": np.ascontiguousarray(inputs[names[0]], np.float32)})
        return {g: (r[:, 1] if not g.startswith("tau_") else r.reshape(-1))
                for g, r in zip(names, raw, strict=True)}

    def plots(self, model: NudgeModel, test: Frames, out: Path) -> list[Path]:
        """Qini curves per arm and attendees gained vs budget."""
        from models.checkup_nudge.plots import plot_all

        a = model.assets
        return plot_all(Evaluation.build(model, test, a["budget_yen_per_resident"], a["costs"]),
                        out)

    def feature_names(self, model: NudgeModel) -> list[str]:
        """The ONNX input's columns: the features, for the S-learner the arm one-hot after."""
        arms = [f"arm:{a}" for a in model.uplift.arms[1:]] if model.uplift.learner == "s" else []
        return [*FEATURE_NAMES, *arms]

    def assets(self, model: NudgeModel) -> dict[str, bytes]:
        """nudge.json: features, encodings, arms, costs, default budget, learner."""
        return {"nudge.json": json.dumps(model.assets, ensure_ascii=False, indent=1).encode()}


def make_assets(cfg: CheckupNudgeConfig, encodings: dict[str, Any], learner: str,
                ) -> dict[str, Any]:
    """nudge.json content: everything serving needs besides the ONNX graphs."""
    return {"features": list(FEATURE_NAMES), "feature_labels_ja": FEATURE_LABELS,
            "encodings": encodings, "arms": list(ARMS), "arm_labels_ja": ARM_LABELS_JA,
            "costs": cfg.costs.costs(), "budget_yen_per_resident": cfg.budget_yen_per_resident,
            "learner": learner, "learners": list(LEARNERS)}


def _check_rows(data: Experiment, minimum: int) -> None:
    counts = np.bincount(data.arm, minlength=len(ARMS))
    if counts.min() < minimum:
        arm = ARMS[int(counts.argmin())]
        raise ValueError(f"arm {arm!r} has {counts.min()} campaign rows; need at least "
                         f"{minimum} per arm to learn uplift")


def latest_truth(oracle: pd.DataFrame, residents: pd.DataFrame) -> np.ndarray | None:
    """True P (n, len(ARMS)) in the latest campaign, or None without a full oracle."""
    if oracle.empty:
        return None
    latest = oracle[oracle["campaign"] == oracle["campaign"].max()]
    idx = pd.Index(latest["resident_id"]).get_indexer(residents["resident_id"])
    if (idx < 0).any():
        return None
    return latest[[f"p_{a}" for a in ARMS]].to_numpy(float)[idx]


@dataclass
class Evaluation:
    """Held-out residents with predicted and true P, per-tenant plans and randomised rows."""

    P: np.ndarray
    truth: np.ndarray | None
    tenant: np.ndarray
    budget_per_resident: float  # each tenant's budget = this x its held-out residents
    assigns: dict[str, np.ndarray]
    rows: Experiment
    costs: np.ndarray

    @property
    def n(self) -> int:
        """Held-out residents."""
        return len(self.P)

    @classmethod
    def build(cls, model: NudgeModel, test: Frames, budget_per_resident: float,
              costs: dict[str, float]) -> Evaluation:
        """Predict, plan every tenant at its default budget (and the oracle plan on truth)."""
        residents = test["residents"]
        X = build_features(residents, model.assets)
        P = model.predict(X) if len(X) else np.zeros((0, len(ARMS)))
        truth = latest_truth(test["oracle"], residents)
        cost = np.array([costs[a] for a in ARMS])
        tenant = residents["tenant_code"].astype(str).to_numpy()
        # "policy" is what the product recommends (the uplift list or the simple policy that
        # training fell back to); "uplift_model" is the model's own list either way
        names = ["policy", "uplift_model", "standard_to_all", "highest_probability"] + (
            ["oracle"] if truth is not None else [])
        assigns = {k: np.zeros(len(P), int) for k in names}
        for code in np.unique(tenant):
            m = tenant == code
            budget = budget_per_resident * m.sum()
            for k, a in O.assignments(P[m], cost, budget, model.assets.get("policy")).items():
                assigns[k][m] = a
            assigns["uplift_model"][m] = O.policy_assignment(P[m], cost, budget)
            if truth is not None:
                assigns["oracle"][m] = O.policy_assignment(truth[m], cost, budget)
        rows = experiment(residents, test["campaigns"], X)
        return cls(P, truth, tenant, float(budget_per_resident), assigns, rows, cost)

    def metrics(self, persons: np.ndarray, cfg: CheckupNudgeConfig, with_qini: bool = False,
                ) -> dict[str, Any]:
        """Figures for the residents selected by the boolean mask `persons`."""
        P, n = self.P[persons], int(persons.sum())
        plans = {k: v[persons] for k, v in self.assigns.items()}
        out: dict[str, Any] = {
            "residents": n, "budget_yen": self.budget_per_resident * n,
            "mailed": int((plans["policy"] > 0).sum()),
            "spent_yen": O.spent(plans["policy"], self.costs),
            "predicted_gain": round(O.gain(P, plans["policy"]), 3),
        }
        out.update(self._truth(persons, plans))
        out["policy_value"] = self._dr(persons, plans, cfg)
        if with_qini:
            r = self.rows
            out["qini"] = M.qini_summary(M.qini_by_arm(self.P[r.groups], r.arm, r.y, r.prop,
                                                       ARMS))
        return out

    def _truth(self, persons: np.ndarray, plans: dict[str, np.ndarray]) -> dict[str, Any]:
        if self.truth is None:
            return {"true_gain": None, "share_of_oracle": None}
        T = self.truth[persons]
        gains = {k: round(O.gain(T, a), 3) for k, a in plans.items()}
        before = float(T[:, 0].mean()) if len(T) else 0.0
        return {"true_gain": gains,
                "share_of_oracle": round(gains["policy"] / gains["oracle"], 4)
                if gains["oracle"] > 0 else None,
                "true_attendance_rate_before": round(before, 5),
                "true_attendance_rate_after": round(before + gains["policy"] / max(len(T), 1),
                                                    5)}

    def _dr(self, persons: np.ndarray, plans: dict[str, np.ndarray], cfg: CheckupNudgeConfig,
            ) -> dict[str, Any]:
        """DR estimate of additional attendees (per campaign) for the policy and baselines."""
        r = self.rows
        keep = persons[r.groups]
        local = np.cumsum(persons) - 1  # person index within the selection
        names = ["policy", "uplift_model", "standard_to_all", "highest_probability"]
        vals, seen = M.gains_per_person(self.P[r.groups[keep]], r.arm[keep], r.y[keep],
                                        r.prop[keep], local[r.groups[keep]],
                                        {k: plans[k] for k in names})
        values = M.policy_values(vals[seen], names, scale=float(persons.sum()),
                                 n_boot=cfg.bootstrap, seed=0, compare="policy")
        return {"estimator": "doubly_robust", "persons_with_rows": int(seen.sum()), **values}
