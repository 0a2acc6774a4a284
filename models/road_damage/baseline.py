"""The non-learned baseline: a tile shows a crack when enough of its pixels are clearly darker
than their neighbourhood (thin dark lines), with two thresholds calibrated on training tiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WINDOW = 9  # px: wider than a crack, narrower than a shadow


def box_mean(grey: np.ndarray, k: int) -> np.ndarray:
    """Mean over a k x k window per pixel (edges replicated), grey (n, h, w)."""
    pad = k // 2
    p = np.pad(grey, ((0, 0), (pad + 1, pad), (pad + 1, pad)), mode="edge")
    c = p.cumsum(1).cumsum(2)
    s = c[:, k:, k:] - c[:, :-k, k:] - c[:, k:, :-k] + c[:, :-k, :-k]
    return s / (k * k)


def darkness(tiles: np.ndarray) -> np.ndarray:
    """Per pixel: how much darker than its neighbourhood, relative (n, h, w), 0 when lighter."""
    grey = tiles.astype(np.float32).mean(axis=3)
    bg = box_mean(grey, WINDOW)
    return np.clip((bg - grey) / (bg + 8.0), 0, None)


@dataclass(frozen=True)
class DarkLineDetector:
    """Crack when the share of pixels darker than `contrast` exceeds `share`."""

    contrast: float = 0.25
    share: float = 0.02

    def scores(self, tiles: np.ndarray) -> np.ndarray:
        """Share of dark pixels per tile."""
        out = np.empty(len(tiles))
        for s in range(0, len(tiles), 512):
            out[s:s + 512] = (darkness(tiles[s:s + 512]) > self.contrast).mean(axis=(1, 2))
        return out

    def predict(self, tiles: np.ndarray) -> np.ndarray:
        """True where the tile is called cracked."""
        return self.scores(tiles) > self.share


def f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """F1 of boolean predictions (0 when there is nothing to find and nothing found)."""
    tp = float((truth & pred).sum())
    denom = float(truth.sum() + pred.sum())
    return 2 * tp / denom if denom else 0.0


def calibrate(tiles: np.ndarray, cracked: np.ndarray) -> DarkLineDetector:
    """The (contrast, share) pair with the best F1 on the given tiles."""
    dark = np.concatenate([darkness(tiles[s:s + 512]) for s in range(0, len(tiles), 512)])
    best = (-1.0, DarkLineDetector())
    for contrast in (0.1, 0.15, 0.2, 0.25, 0.3, 0.4):
        share = (dark > contrast).mean(axis=(1, 2))
        for q in np.quantile(share, np.linspace(0.3, 0.97, 30)):
            score = f1(cracked, share > q)
            if score > best[0]:
                best = (score, DarkLineDetector(contrast, float(q)))
    return best[1]
