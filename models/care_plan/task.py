"""The care_plan Task: predicted 12-month outcomes of care plans, the best plans in the cap."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from models.care_plan import schema as S
from models.care_plan.estimator import CareModel, fit_booster, fit_model, widen
from models.care_plan.evaluation import evaluate_model, headline_on_resamples, reliability
from models.care_plan.features import (
    INPUT_FIELDS,
    PERSON_FEATURES,
    encode_inputs,
    plan_feature_names,
)
from models.care_plan.generate import GenerateSpec, generate
from models.care_plan.items import CAPS_2019_10, CHANGE, LEVELS
from models.care_plan.plans import Catalogue
from models.care_plan.records import labels, plan_matrix, rows, typical_plans
from models.configs import Strict, Tenant
from models.lgbm import Bagging
from models.split import hold_out, tenant_share
from models.task import Frames, Task

ASSET_OPSET = 15  # change.onnx: the platform's default opset, the highest onnxmltools supports


class GenerateConfig(Strict):
    """Synthetic data size."""

    total_persons: int = Field(default=30_000, ge=100)
    min_persons: int = Field(default=1500, ge=50)


class ServiceConfig(Strict):
    """One service of the catalogue (unit costs approximate, see the domain notes)."""

    name_ja: str = Field(min_length=1)
    per: Literal["week", "month"]
    unit_ja: str = Field(min_length=1)
    units_by_level: tuple[float, ...] = Field(min_length=7, max_length=7,
                                              description="要支援1, 要支援2, 要介護1..5")
    grid: tuple[int, ...] = Field(min_length=2)

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if v[0] != 0 or list(v) != sorted(set(v)):
            raise ValueError("grid must start at 0 and increase")
        return v


class ModelConfig(Bagging):
    """LightGBM hyper-parameters of every outcome model."""

    n_estimators: int = Field(default=80, ge=5)
    learning_rate: float = Field(default=0.1, gt=0, le=1)
    num_leaves: int = Field(default=15, ge=4)
    min_child_samples: int = Field(default=40, ge=1)
    reg_lambda: float = Field(default=1.0, ge=0)


class CarePlanConfig(Strict):
    """configs/care_plan.yaml."""

    generate: GenerateConfig = GenerateConfig()
    test_share: float = Field(default=0.2, gt=0, lt=1)
    eval_persons: int = Field(default=600, ge=20)
    yen_per_unit: float = Field(default=10.0, gt=0)
    caps: tuple[int, ...] = Field(default=CAPS_2019_10, min_length=8, max_length=8)
    services: dict[str, ServiceConfig]
    max_day_visits: int = Field(default=4, ge=1, le=7)
    reliability_share: float = Field(default=0.15, gt=0, lt=0.5)
    parity_tolerance: float = Field(default=1e-4, gt=0)
    parity_max_mismatch_share: float = Field(default=0.001, ge=0, le=1)
    model: ModelConfig = ModelConfig()

    @field_validator("services")
    @classmethod
    def _services(cls, v: dict[str, ServiceConfig]) -> dict[str, ServiceConfig]:
        if set(v) != set(S.SERVICES):
            raise ValueError(f"services must be exactly {', '.join(S.SERVICES)}")
        return v

    def catalogue(self) -> Catalogue:
        """The service catalogue with caps and the unit price."""
        return Catalogue.from_dict(self.catalogue_dict())

    def catalogue_dict(self) -> dict[str, Any]:
        """The catalogue as plan.json stores it."""
        # canonical order: YAML writers may sort keys, the model's columns must not move
        return {"services": {k: self.services[k].model_dump() for k in S.SERVICES},
                "caps": list(self.caps), "yen_per_unit": self.yen_per_unit,
                "max_day_visits": self.max_day_visits}


class CarePlan(Task[CarePlanConfig, CareModel]):
    """AI care-plan support: outcomes under candidate plans and the best plans within the cap."""

    name = "care_plan"
    Config = CarePlanConfig
    frames = ("persons", "outcomes", "oracle")
    units = ("person_id",)

    def schema(self, frame: str) -> Any:
        """pandera schema of 'persons', 'outcomes' or 'oracle'."""
        return {"persons": S.PERSONS, "outcomes": S.OUTCOMES_SCHEMA, "oracle": S.ORACLE}[frame]

    def validate(self, frame: str, df: pd.DataFrame) -> pd.DataFrame:
        """Validated frame; SurveyInputError names the item and line."""
        return S.validate_frame(frame, df)

    def generate(self, cfg: CarePlanConfig, tenants: list[Tenant], seed: int,
                 ) -> dict[str, dict[str, pd.DataFrame]]:
        """Synthetic persons (with plans), outcomes and oracle per tenant."""
        spec = GenerateSpec(**cfg.generate.model_dump())
        return generate([(t.code, t.population) for t in tenants], spec, cfg.catalogue(), seed)

    def split(self, cfg: CarePlanConfig, data: Frames) -> tuple[Frames, Frames]:
        """Hold out a share of each tenant's persons with their outcomes and oracle."""
        test_ids = tenant_share(data["persons"], "person_id", cfg.test_share)
        return hold_out(data, self.frames, "person_id", test_ids)

    def fit(self, cfg: CarePlanConfig, train: Frames, progress: bool = False,
            seed: int = 0) -> CareModel:
        """Every outcome model on all training persons; held-out reliability on a share."""
        persons, cat = train["persons"], cfg.catalogue()
        if len(persons) < 200:
            raise ValueError(f"{len(persons)} persons are too few to learn plan effects")
        X = rows(persons, cat)
        change, outcome, items = labels(persons, train["outcomes"])
        params = cfg.model.model_dump()
        model = fit_model(X, change, outcome, items, params, seed)
        model.assets = make_assets(cfg, persons, self._reliability(cfg, X, change, params, seed))
        return model

    @staticmethod
    def _reliability(cfg: CarePlanConfig, X: np.ndarray, change: np.ndarray,
                     params: dict[str, Any], seed: int) -> list[dict[str, Any]]:
        """Reliability of P(worsen) of a change model fitted without a share of the persons."""
        held = np.random.default_rng(seed).random(len(X)) < cfg.reliability_share
        clf, classes = fit_booster(X[~held], change[~held], params, seed)
        p = widen(clf.predict_proba(X[held]), classes, len(CHANGE))
        return reliability(p[:, 2], change[held] == 2)

    def evaluate(self, cfg: CarePlanConfig, model: CareModel, test: Frames) -> dict[str, Any]:
        """Observed-plan accuracy and, on the oracle, recommended vs oracle-best vs typical."""
        return evaluate_model(cfg, model, test)

    def bootstrap_metric(self, cfg: CarePlanConfig, model: CareModel, test: Frames,
                         ) -> Callable[[Frames], float]:
        """The headline on resamples from each held-out person's recommendation, worked out
        once (evaluation.headline_on_resamples: the same values, a fraction of the work of
        recommending again on every resample); without the oracle, the default."""
        return (headline_on_resamples(cfg, model, test)
                or super().bootstrap_metric(cfg, model, test))

    def to_onnx(self, model: CareModel, opset: int) -> dict[str, bytes]:
        """One graph per booster, each with a '<graph>_probabilities' output."""
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        width = next(iter(model.boosters.values())).n_features_in_
        types = [("input", FloatTensorType([None, width]))]
        return {name: convert_lightgbm(b, initial_types=types, target_opset=opset,
                                       zipmap=False).SerializeToString()
                for name, b in model.boosters.items()}

    def parity_inputs(self, model: CareModel, test: Frames,
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Held-out rows (received plans) and every booster's native probabilities."""
        X = rows(test["persons"], Catalogue.from_dict(model.assets["catalogue"]))
        return ({g: X for g in model.boosters},
                {g: b.predict_proba(X) for g, b in model.boosters.items()})

    def onnx_outputs(self, session: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The combined model's probabilities per graph."""
        names = list(inputs)
        X = np.ascontiguousarray(inputs[names[0]], np.float32)
        raw = session.run([f"{g}_probabilities" for g in names], {"input": X})
        return dict(zip(names, raw, strict=True))

    def plots(self, model: CareModel, test: Frames, out: Path) -> list[Path]:
        """Reliability diagram of P(worsen) and the regret histogram."""
        from models.care_plan.plots import plot_all

        return plot_all(model, test, out)

    def feature_names(self, model: CareModel) -> list[str]:
        """The ONNX input's columns: person features, then plan features."""
        return [*PERSON_FEATURES, *model.assets["plan_features"]]

    def assets(self, model: CareModel) -> dict[str, bytes]:
        """plan.json (catalogue, typical plans, medians, classes, reliability, support) and
        rank.onnx: the change graph alone, since onnxruntime runs every graph of the combined
        model on each call and the thousand candidates of a request need only this one."""
        payload = {**model.assets, "classes": model.classes}
        rank = self.to_onnx(CareModel({"change": model.boosters["change"]}, {}), ASSET_OPSET)
        return {"plan.json": json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                "rank.onnx": rank["change"]}


def make_assets(cfg: CarePlanConfig, persons: pd.DataFrame, rel: list[dict[str, Any]],
                ) -> dict[str, Any]:
    """Everything serving needs besides the ONNX graphs."""
    cat = cfg.catalogue()
    inputs = encode_inputs(persons)
    level = persons["care_level"].map(LEVELS.index).to_numpy(int)
    Q = plan_matrix(persons, cat).astype(int)
    return {"catalogue": cfg.catalogue_dict(), "typical_plans": typical_plans(cat, persons),
            "input_fields": list(INPUT_FIELDS),
            "input_medians": [float(v) for v in np.median(inputs, axis=0)],
            "plan_features": list(plan_feature_names(cat)), "reliability": rel,
            "eval_persons": cfg.eval_persons,
            "training_plans": {str(lv): Q[level == lv].tolist() for lv in range(1, len(LEVELS))}}
