"""Pooling gain per tenant: pooled vs local-only vs others-only models, with bootstrap CIs.

`kyodo report pooling` answers the first promise of kyodo for every municipality: is the model
trained on everyone's data better for *this* tenant than one trained on its data alone, and what
would a new municipality get on day one (a model trained only on the others)?
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from models.figures import save_figure
from models.task import C, Frames, M, Task
from training import data as D
from training.workspace import Workspace

REPORT = "pooling.json"


def resample(task: Task, frames: Frames, rng: np.random.Generator) -> Frames:
    """A bootstrap copy of frames: units drawn with replacement, each copy's ids made unique.

    task.units names the resampling unit (first; a column of the input frame) and the other id
    columns that link frames; a drawn unit's k-th copy gets "#k" appended to all of them, so a
    twice-drawn patient is two patients with their full histories, as the estimator expects.
    """
    unit, *links = task.units
    first = frames[task.frames[0]]
    units = first[unit].drop_duplicates().to_numpy()
    draw = pd.DataFrame({unit: rng.choice(units, size=len(units), replace=True)})
    draw["_copy"] = draw.groupby(unit).cumcount().astype(str)
    out = {}
    for name, df in frames.items():
        keyed = df
        if unit not in df.columns:
            link = next(c for c in links if c in df.columns)
            owner = first[[link, unit]].drop_duplicates(link)
            keyed = df.merge(owner, on=link, how="inner")
        copied = keyed.merge(draw, on=unit, how="inner")
        for col in (unit, *links):
            if col in copied.columns:
                copied[col] = copied[col].astype(str) + "#" + copied["_copy"]
        drop = ["_copy"] + ([unit] if unit not in df.columns else [])
        out[name] = copied.drop(columns=drop).reset_index(drop=True)
    return out


def judged(task: Task[C, M], cfg: C, model: M, test: Frames) -> tuple[str, float]:
    """(name, value) of the metric pooling is judged on: the task's `pooling_metric` (its
    headline unless the task says otherwise, see models/task.py)."""
    name, value = task.pooling_metric(cfg, model, test)
    return name, float(value)


def headline(task: Task[C, M], cfg: C, model: M, test: Frames) -> float:
    """The value of the metric pooling is judged on."""
    return judged(task, cfg, model, test)[1]


def paired_ci(task: Task[C, M], cfg: C, pooled: M, local: M, test: Frames, n: int,
              rng: np.random.Generator, level: float = 0.95,
              step: Callable[[], object] = lambda: None) -> tuple[float, float]:
    """Percentile bootstrap CI of pooled - local on the same resampled held-out units (each
    model's metric on a resample: task.bootstrap_metric); `step()` after each of the n
    resamples (a progress bar's update)."""
    pooled_on, local_on = (task.bootstrap_metric(cfg, m, test) for m in (pooled, local))
    diffs = []
    for _ in range(n):
        sample = resample(task, test, rng)
        diffs.append(pooled_on(sample) - local_on(sample))
        step()
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(diffs, [tail, 100 - tail])
    return float(lo), float(hi)


def fit_or_none(task: Task[C, M], cfg: C, train: Frames, seed: int) -> M | None:
    """A model fitted on these rows, or None where there are too few to fit."""
    try:
        return task.fit(cfg, train, seed=seed)
    except ValueError:  # too little data to fit: exactly the tenants pooling is for
        return None


def task_report(ws: Workspace, task: Task, bootstrap: int, progress: bool = True,
                ) -> dict[str, dict[str, Any]]:
    """Per pooled tenant of one task: population, training units (`rows`), held-out units, the
    three headlines (local-only and others-only fitted with task.comparison_config) and the
    CI. With `progress`, a bar per municipality and, below it, one over the current
    municipality's steps (local-only fit, others-only fit, each bootstrap resample, the three
    headlines on its holdout): one step can take minutes (README: Pooling gain)."""
    cfg = ws.task_config(task)
    model_path = ws.root / "build" / task.name / "model.pkl"
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path}: no pooled model; run `kyodo train {task.name}`")
    pooled = pickle.loads(model_path.read_bytes())
    train_part, test = task.split(cfg, D.load_pooled(ws, task, progress=False))
    codes = sorted(test[task.frames[0]]["tenant_code"].unique())
    rng = np.random.default_rng(ws.platform.seed)
    population = {t.code: t.population for t in ws.tenants.tenants}
    rows: dict[str, dict[str, Any]] = {}
    for code in tqdm(codes, desc=f"pooling {task.name}", unit="municipality",
                     disable=not progress):
        with tqdm(total=3 + bootstrap, desc=f"  {code}", unit="step", leave=False,
                  disable=not progress) as steps:
            rows[code] = {"population": population.get(code),
                          **_tenant_row(ws, task, cfg, pooled, train_part, test, code, codes,
                                        bootstrap, rng, steps)}
    return rows


def _tenant_row(ws: Workspace, task: Task[C, M], cfg: C, pooled: M, train_part: Frames,
                test: Frames, code: str, codes: list[str], bootstrap: int,
                rng: np.random.Generator, steps: tqdm) -> dict[str, Any]:
    """One municipality's row of task_report (all but population); `steps` is advanced and
    labelled as each fit and resample finishes."""
    first, unit = task.frames[0], task.units[0]
    fit_cfg = task.comparison_config(cfg)  # local-only and others-only fits (models/task.py)
    local_test = task.select(test, [code])
    own_train = task.select(train_part, [code])
    steps.set_postfix_str("local-only fit")
    local = fit_or_none(task, fit_cfg, own_train, ws.platform.seed)
    steps.update()
    steps.set_postfix_str("others-only fit")
    others_model = fit_or_none(task, fit_cfg, task.select(train_part, [c for c in codes
                                                                       if c != code]),
                               ws.platform.seed)
    steps.update()
    steps.set_postfix_str("bootstrap")
    lo, hi = (paired_ci(task, cfg, pooled, local, local_test, bootstrap, rng, step=steps.update)
              if local is not None and bootstrap > 0 else (None, None))
    steps.set_postfix_str("headlines")
    metric, value = judged(task, cfg, pooled, local_test)
    row = {"rows": int(own_train[first][unit].nunique()),
           "held_out": int(local_test[first][unit].nunique()),
           "metric": metric,
           "pooled": value,
           "local": None if local is None else headline(task, cfg, local, local_test),
           "others_only": (None if others_model is None
                           else headline(task, cfg, others_model, local_test)),
           "ci_low": lo,
           "ci_high": hi}
    steps.update()
    return row


def write_report(ws: Workspace, report: dict[str, dict[str, dict[str, Any]]],
                 metrics: dict[str, str]) -> list[Path]:
    """reports/pooling.json (merged with earlier tasks) and a gain-vs-size plot per task."""
    out = ws.path("reports")
    out.mkdir(parents=True, exist_ok=True)
    path = out / REPORT
    merged = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    merged.update(report)
    path.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [path, *(plot_gain(name, rows, metrics[name], out / "pooling")
                    for name, rows in report.items())]


def plot_gain(task_name: str, rows: dict[str, dict[str, Any]], metric: str, out: Path) -> Path:
    """Pooled - local per tenant (with its CI) against the tenant's data volume."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for code, r in rows.items():
        if r["local"] is None:
            continue
        gain = r["pooled"] - r["local"]
        if r["ci_low"] is not None:  # the point may lie outside a percentile interval
            ax.vlines(r["rows"], r["ci_low"], r["ci_high"], color="tab:blue", alpha=0.5)
        ax.plot(r["rows"], gain, "o", color="tab:blue")
        ax.annotate(code, (r["rows"], gain), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("tenant's own training units (log scale)")
    ax.set_ylabel(f"pooled - local-only ({metric})")
    ax.set_title(f"{task_name}: pooling gain vs tenant size (95% bootstrap CI)")
    out.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, out / f"{task_name}.png")

