"""Evaluation plots: reliability of P(worsen) and regret of the recommended plan."""

from __future__ import annotations

from pathlib import Path

from models.care_plan.estimator import CareModel
from models.care_plan.evaluation import decide, eval_subset, reliability
from models.care_plan.generate import Latent
from models.care_plan.plans import Catalogue
from models.care_plan.records import labels, rows
from models.figures import save_figure
from models.task import Frames


def plot_all(model: CareModel, test: Frames, out: Path) -> list[Path]:
    """reliability_worsen.png and, with an oracle, regret_hist.png."""
    import matplotlib.pyplot as plt

    persons = test["persons"]
    cat = Catalogue.from_dict(model.assets["catalogue"])
    p = model.predict(rows(persons, cat), ("change",))["change"][:, 2]
    change, _, _ = labels(persons, test["outcomes"])
    table = [r for r in reliability(p, change == 2) if r["n"]]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--", label="perfect")
    ax.plot([r["predicted"] for r in table], [r["observed"] for r in table], "o-",
            label="held-out persons")
    ax.set_xlabel("predicted P(worsen)")
    ax.set_ylabel("observed share worsened")
    ax.set_title("care_plan: reliability of P(worsen), received plans")
    ax.legend()
    paths = [save_figure(fig, out / "reliability_worsen.png")]
    if len(test["oracle"]) != len(persons):
        return paths
    d = decide(model, cat, persons, Latent.from_frames(persons, test["oracle"]),
               eval_subset(persons, model.assets.get("eval_persons", 300)))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(d.oracle - d.recommended, bins=30, alpha=0.7, label="oracle best - recommended")
    ax.hist(d.oracle - d.typical, bins=30, alpha=0.5, label="oracle best - typical plan")
    ax.set_xlabel("true P(improve or maintain) below the oracle-best plan")
    ax.set_ylabel("held-out persons")
    ax.set_title("care_plan: regret of the recommended vs the typical plan")
    ax.legend()
    return [*paths, save_figure(fig, out / "regret_hist.png")]

