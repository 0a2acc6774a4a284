"""Evaluation plots: Qini curves per arm and attendees gained vs mailing budget."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.checkup_nudge import metrics as M
from models.checkup_nudge import outreach as O
from models.checkup_nudge.arms import ARMS
from models.figures import save_figure

if TYPE_CHECKING:
    from models.checkup_nudge.task import Evaluation

BUDGET_SHARES = np.linspace(0, 1, 41)  # share of residents the budget could mail


def plot_qini(ev: Evaluation, out: Path) -> Path:
    """Qini (uplift-gain) curve of each arm vs no postcard on held-out randomised rows."""
    import matplotlib.pyplot as plt

    r = ev.rows
    fig, ax = plt.subplots(figsize=(6, 4))
    for arm, c in M.qini_by_arm(ev.P[r.groups], r.arm, r.y, r.prop, ARMS).items():
        label = f"{arm} (Qini {c['qini']:.4f})"
        ax.plot(np.r_[0, c["fraction"]], np.r_[0, c["gain"]], label=label)
    ax.plot([0, 1], [0, 0], color="grey", lw=0.5)
    ax.set(xlabel="share of residents mailed (ranked by predicted uplift)",
           ylabel="additional attendees per resident", title="checkup_nudge: Qini per arm")
    ax.legend(fontsize=7)
    return save_figure(fig, out / "qini_by_arm.png")


def plot_gain(ev: Evaluation, out: Path) -> Path:
    """Attendees gained vs budget: policy, both baselines, and the oracle on synthetic truth."""
    import matplotlib.pyplot as plt

    budgets = BUDGET_SHARES * ev.n * float(ev.costs[O.STANDARD])
    truth = ev.truth if ev.truth is not None else ev.P
    curves = O.gain_curves(ev.P, ev.costs, budgets, truth)
    if ev.truth is not None:
        curves["oracle"] = O.gain_curves(ev.truth, ev.costs, budgets)["policy"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        ax.plot(budgets / 10_000, values, label=name)
    default = ev.budget_per_resident * ev.n / 10_000
    ax.axvline(default, color="grey", ls=":", lw=1, label="default budget")
    what = "true" if ev.truth is not None else "predicted"
    ax.set(xlabel="budget (10,000 yen)", ylabel=f"additional attendees ({what})",
           title="attendees gained vs mailing budget (held-out residents)")
    ax.legend(fontsize=7)
    return save_figure(fig, out / "gain_vs_budget.png")


def plot_all(ev: Evaluation, out: Path) -> list[Path]:
    """Every checkup_nudge plot under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    return [plot_qini(ev, out), plot_gain(ev, out)]
