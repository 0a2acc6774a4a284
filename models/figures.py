"""Saving evaluation plots the same way everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_figure(fig: Any, path: Path) -> Path:
    """Lay out, write as PNG and close a matplotlib figure (closing frees its memory)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
