"""The claim_screening Task: NHI claim review queue for 糸島市 and every subscribing tenant."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import Field

from models.claim_screening import schema as S
from models.claim_screening.estimator import ClaimModel, fit_model
from models.claim_screening.features import FEATURE_NAMES
from models.claim_screening.feedback import apply_feedback
from models.claim_screening.generate import GenerateSpec, generate
from models.claim_screening.metrics import capacity_metrics, recovery_curve
from models.claim_screening.policy import POLICY_ASSET, QueuePolicy
from models.claim_screening.rules import rules_priority
from models.claim_screening.scoring import OnnxPredictor, prepare
from models.configs import Strict, Tenant
from models.figures import save_figure
from models.lgbm import Bagging
from models.split import select_tenants
from models.task import Feedback, Frames, Task, TaskData

if TYPE_CHECKING:
    from serving.store import Store


class GenerateConfig(Strict):
    """Synthetic data size and error rate."""

    total_claims: int = Field(default=400_000, ge=100)
    months: int = Field(default=12, ge=4, le=36)
    start_month: str = Field(default="2025-04", pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    error_rate: float = Field(default=0.03, gt=0, lt=0.5)


class ModelConfig(Bagging):
    """LightGBM hyper-parameters (shared by the classifier and the stake regressor)."""

    n_estimators: int = Field(default=300, ge=10)
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    num_leaves: int = Field(default=31, ge=4)
    min_child_samples: int = Field(default=40, ge=1)


class ClaimScreeningConfig(Strict):
    """configs/claim_screening.yaml."""

    generate: GenerateConfig = GenerateConfig()
    holdout_months: int = Field(default=3, ge=1, description="latest months held out for eval")
    history_months: int = Field(default=3, ge=0, description="months of context for 縦覧")
    capacity: float = Field(default=0.05, gt=0, le=1, description="share of claims reviewed")
    parity_tolerance: float = Field(default=1e-4, gt=0)
    parity_max_mismatch_share: float = Field(default=0.001, ge=0, le=1)
    model: ModelConfig = ModelConfig()


class ClaimScreening(Task[ClaimScreeningConfig, ClaimModel]):
    """NHI claim screening: which claims most likely hold recoverable billing errors."""

    name = "claim_screening"
    Config = ClaimScreeningConfig
    frames = ("lines", "labels")
    units = ("patient_id", "claim_id")  # a patient's claims and history resample together

    def schema(self, frame: str) -> Any:
        """pandera schema of 'lines' or 'labels'."""
        return {"lines": S.CLAIM_LINES, "labels": S.LABELS}[frame]

    def validate(self, frame: str, df: pd.DataFrame) -> pd.DataFrame:
        """Validated frame; ClaimsInputError names column and row."""
        if frame == "lines":
            return S.validate_lines(df)
        return S.LABELS.validate(df)

    def generate(self, cfg: ClaimScreeningConfig, tenants: list[Tenant], seed: int,
                 ) -> dict[str, Frames]:
        """Synthetic claims per tenant; labels hold the truth (error type, points)."""
        spec = GenerateSpec(**cfg.generate.model_dump())
        out = generate([(t.code, t.population) for t in tenants], spec, seed)
        return {code: {"lines": lines, "labels": truth} for code, (lines, truth) in out.items()}

    def split(self, cfg: ClaimScreeningConfig, data: Frames) -> tuple[Frames, Frames]:
        """Train on earlier months; test on the latest months with prior months as context."""
        lines, labels = data["lines"], data["labels"]
        months = sorted(lines["service_month"].unique())
        if len(months) <= cfg.holdout_months:
            raise ValueError(f"need more than {cfg.holdout_months} months of claims to hold "
                             f"out {cfg.holdout_months}; got {len(months)}")
        first_test = months[-cfg.holdout_months]
        context = months[max(0, len(months) - cfg.holdout_months - cfg.history_months)]
        train_lines = lines[lines["service_month"] < first_test]
        test_lines = lines[lines["service_month"] >= context]
        test_ids = lines.loc[lines["service_month"] >= first_test, "claim_id"].unique()
        in_test = labels["claim_id"].isin(test_ids)
        return ({"lines": train_lines, "labels": labels[~in_test]},
                {"lines": test_lines, "labels": labels[in_test]})

    def select(self, data: Frames, tenant_codes: list[str]) -> Frames:
        """Rows of the given tenants only."""
        return select_tenants(data, self.frames, tenant_codes, link="claim_id")

    def fit(self, cfg: ClaimScreeningConfig, train: Frames, progress: bool = False,
            seed: int = 0) -> ClaimModel:
        """Fit the classifier and stake regressor; the model keeps cfg.capacity, the review
        capacity evaluate() measures it at, to ship as the served default."""
        model = fit_model(train["lines"], train["labels"], cfg.model.model_dump(), seed)
        return replace(model, capacity=cfg.capacity)

    def evaluate(self, cfg: ClaimScreeningConfig, model: ClaimModel, test: Frames,
                 ) -> dict[str, Any]:
        """Recovered points at capacity: model, rules only, oracle; overall and per tenant."""
        table = self.evaluation_table(model, test)
        per_tenant = {code: _metrics(g, cfg.capacity) for code, g in
                      table.groupby("tenant_code", sort=True)}
        overall = _metrics(table, cfg.capacity)
        return {
            "overall": overall,
            "per_tenant": per_tenant,
            "headline": {
                "metric": f"recovered_points_at_{round(cfg.capacity * 100)}pct_capacity",
                "value": overall["recovered_points"],
                "oracle": overall["oracle_recovered_points"],
                "baseline": overall["rules_recovered_points"],
                "baseline_name": "rules only (rule hits ranked by points they name)",
            },
        }

    def pooling_metric(self, cfg: ClaimScreeningConfig, model: ClaimModel, test: Frames,
                       ) -> tuple[str, float]:
        """Recovered points averaged over review capacities 1%, 2%, ... up to the office's
        capacity: at the capacity alone a small municipality's holdout saturates (fewer errors
        than review slots, so any fair model finds nearly all), and pooled and local-only models
        tie whatever their ranking; the average also rewards finding errors early."""
        table = self.evaluation_table(model, test)
        caps = np.arange(1, max(1, round(cfg.capacity * 100)) + 1) / 100
        curve = recovery_curve(table, "priority", caps)
        return f"mean_recovered_points_1_to_{round(cfg.capacity * 100)}pct_capacity", float(
            curve.mean())

    def evaluation_table(self, model: ClaimModel, test: Frames) -> pd.DataFrame:
        """Per held-out claim: tenant, service month, model priority, rules priority, score,
        truth (the columns models/claim_screening/metrics.py cuts by)."""
        hits, X = prepare(test["lines"], model.reference)
        p, stake = model.predict(X)
        truth = test["labels"].set_index("claim_id")
        keep = hits["claim_id"].isin(truth.index).to_numpy()
        header = test["lines"].drop_duplicates("claim_id").set_index("claim_id")
        ids = hits["claim_id"][keep]
        total = hits["total_points"].to_numpy(float)[keep]
        return pd.DataFrame({
            "claim_id": ids.to_numpy(),
            "tenant_code": header["tenant_code"].reindex(ids).to_numpy(),
            "service_month": header["service_month"].reindex(ids).to_numpy(),
            "score": p[keep],
            "priority": p[keep] * np.minimum(stake[keep], total),
            "rules_priority": rules_priority(hits)[keep],
            "recoverable": truth.reindex(ids)["recoverable_points"].to_numpy(float),
            "error_type": truth.reindex(ids)["error_type"].to_numpy(),
        })

    def to_onnx(self, model: ClaimModel, opset: int) -> dict[str, bytes]:
        """ONNX graphs 'classifier' (probabilities) and 'stake' (log1p points)."""
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        types = [("input", FloatTensorType([None, len(FEATURE_NAMES)]))]
        clf = convert_lightgbm(model.classifier, initial_types=types, target_opset=opset,
                               zipmap=False)
        reg = convert_lightgbm(model.stake, initial_types=types, target_opset=opset)
        return {"classifier": clf.SerializeToString(), "stake": reg.SerializeToString()}

    def parity_inputs(self, model: ClaimModel, test: Frames,
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Held-out feature rows and the native outputs the ONNX graphs must reproduce."""
        _, X = prepare(test["lines"], model.reference)
        return ({"classifier": X, "stake": X},
                {"classifier": np.asarray(model.classifier.predict_proba(X))[:, 1],
                 "stake": np.asarray(model.stake.predict(X))})

    def onnx_outputs(self, session: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The combined ONNX model's outputs under the parity_inputs names."""
        p, stake = OnnxPredictor(session)(inputs["classifier"])
        return {"classifier": p, "stake": np.log1p(stake)}

    def plots(self, model: ClaimModel, test: Frames, out: Path) -> list[Path]:
        """Precision-recall and recovered-points-vs-capacity plots."""
        return _plots(self, model, test, out)

    def feature_names(self, model: ClaimModel) -> list[str]:
        """The ONNX input's columns."""
        return list(FEATURE_NAMES)

    def assets(self, model: ClaimModel) -> dict[str, bytes]:
        """reference.json: provider and diagnosis norms, feature names and medians;
        policy.json: the queue defaults the model was evaluated with (serving reads them at
        load, models/claim_screening/policy.py). Raises ValueError for a model pickled before
        it kept its capacity (train again)."""
        if model.capacity is None:
            raise ValueError("model.pkl predates the shipped review capacity: run "
                             "`kyodo train claim_screening` again before exporting")
        payload = {"reference": model.reference.to_dict(), "features": list(FEATURE_NAMES),
                   "medians": [float(v) for v in model.medians]}
        policy = QueuePolicy(capacity=model.capacity).model_dump()
        return {"reference.json": json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                POLICY_ASSET: json.dumps(policy).encode("utf-8")}

    def apply_feedback(self, store: Store, data: TaskData) -> Feedback:
        """Reviewer outcomes -> labels/<code>.csv (models/claim_screening/feedback.py)."""
        return apply_feedback(store, data, self.name)


def _metrics(table: pd.DataFrame, capacity: float) -> dict[str, float]:
    """Model, rules-only and oracle recovered points, each tenant's each month cut at capacity
    as serving cuts a month's queue (models/claim_screening/policy.py)."""
    rec = table["recoverable"].to_numpy()
    model = capacity_metrics(table, capacity, "priority")
    rules = capacity_metrics(table, capacity, "rules_priority")
    oracle = capacity_metrics(table, capacity, "recoverable")
    return {
        "claims": float(len(table)),
        "error_rate": float((rec > 0).mean()) if len(rec) else 0.0,
        "recovered_points": model["recovered_points"],
        "recovered_share": model["recovered_share"],
        "precision": model["precision"],
        "rules_recovered_points": rules["recovered_points"],
        "rules_precision": rules["precision"],
        "oracle_recovered_points": oracle["recovered_points"],
        "share_of_oracle": model["recovered_points"] / oracle["recovered_points"]
        if oracle["recovered_points"] else 0.0,
        "vs_rules": model["recovered_points"] / rules["recovered_points"]
        if rules["recovered_points"] else float("inf"),
    }


def _plots(task: ClaimScreening, model: ClaimModel, test: Frames, out: Path) -> list[Path]:
    """Precision-recall curve and recovered points vs review capacity."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    table = task.evaluation_table(model, test)
    err = (table["recoverable"] > 0).to_numpy()
    prec, rec, _ = precision_recall_curve(err, table["score"].to_numpy())
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(rec, prec)
    ax.set(xlabel="recall", ylabel="precision", title="claim_screening: P(error) on holdout")
    pr = save_figure(fig, out / "precision_recall.png")
    caps = np.linspace(0.005, 0.2, 40)
    fig, ax = plt.subplots(figsize=(5, 4))
    for col, label in (("priority", "model"), ("rules_priority", "rules only"),
                       ("recoverable", "oracle")):
        ax.plot(caps * 100, recovery_curve(table, col, caps), label=label)
    ax.set(xlabel="review capacity (% of claims)", ylabel="recovered points",
           title="recovered points vs capacity")
    ax.legend()
    cap = save_figure(fig, out / "recovered_vs_capacity.png")
    return [pr, cap]
