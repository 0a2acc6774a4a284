"""Reports: reports/<task>/metrics.json (one shape for every task) and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.figures import save_figure
from models.task import Frames, M, Task
from training.workspace import Workspace


def write_metrics(ws: Workspace, task: Task, evaluation: dict[str, Any], version: str,
                  ) -> dict[str, Any]:
    """Write reports/<task>/metrics.json and return it."""
    metrics = {
        "task": task.name,
        "model_version": version,
        "overall": evaluation["overall"],
        "per_tenant": evaluation["per_tenant"],
        "pooling": evaluation["pooling"],
        "headline": evaluation["headline"],
        "holdout": evaluation["holdout"],
        # figures on real public data the model did not train on, where a task has them
        **({"real": evaluation["real"]} if "real" in evaluation else {}),
    }
    path = ws.path("reports") / task.name / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    return metrics


def plots(task: Task[Any, M], model: M, test: Frames, evaluation: dict[str, Any], out: Path,
          ) -> list[Path]:
    """The task's own plots plus the per-tenant pooling-gain chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = list(task.plots(model, test, out))
    pool = evaluation["pooling"]
    codes = sorted(pool)
    fig, ax = plt.subplots(figsize=(8, 4))
    xs = range(len(codes))
    ax.bar([x - 0.2 for x in xs], [pool[c]["pooled"] or 0 for c in codes], 0.4, label="pooled")
    ax.bar([x + 0.2 for x in xs], [pool[c]["local"] or 0 for c in codes], 0.4, label="local only")
    ax.set_xticks(list(xs), codes, rotation=45)
    ax.set_ylabel(evaluation["headline"]["metric"])
    ax.set_title(f"{task.name}: pooled vs local-only model per tenant")
    ax.legend()
    return [*paths, save_figure(fig, out / "pooling_gain.png")]
