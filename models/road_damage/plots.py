"""Training curves of the tile classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.figures import save_figure


def plot_all(model: Any, out: Path) -> list[Path]:
    """Training and validation loss per epoch, the kept epoch marked."""
    import matplotlib.pyplot as plt

    h = model.history
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(h.get("train_loss", []), label="train (augmented)")
    ax.plot(h.get("val_loss", []), label="validation photos")
    if h.get("best_epoch", -1) >= 0:
        ax.axvline(h["best_epoch"], color="grey", linestyle=":", label="kept")
    ax.set_xlabel("epoch")
    ax.set_ylabel("BCE loss")
    ax.set_title(f"road_damage tile classifier ({h.get('init', '')})")
    ax.legend()
    return [save_figure(fig, out / "training_curves.png")]
