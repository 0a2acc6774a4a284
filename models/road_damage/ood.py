"""Out-of-domain statistics of the tile model: the road-surface tiles it trained on, summarised
as a probabilistic-PCA Gaussian of their penultimate features (net.Familiarity computes each
tile's distance to it inside the exported graph), and the cuts of analyze.RoadCheck tuned on
held-back data: synthetic validation photos and the training cities' real crops. Nothing here
sees the held-out cities or any evaluation photo (the scikit-image photos of tests and bench).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Principal directions kept with their own variance; the rest share one (net.Familiarity).
COMPONENTS = 32
MAX_FIT_TILES = 20_000


def fit_ppca(emb: np.ndarray, k: int = COMPONENTS, seed: int = 0) -> dict[str, np.ndarray]:
    """PPCA statistics of features (n, d): mean (d,), basis (d, k) of the top-k principal
    directions, inv_var (k,) their inverse variances, inv_rest () the inverse of the mean
    variance of the remaining d - k directions. A random MAX_FIT_TILES rows are used; ValueError
    with fewer than 8 rows."""
    emb = np.asarray(emb, np.float64)
    n, d = emb.shape
    if n < 8:
        raise ValueError(f"{n} road-surface tiles to fit the familiarity statistics: need 8")
    if n > MAX_FIT_TILES:
        emb = emb[np.random.default_rng(seed).choice(n, MAX_FIT_TILES, replace=False)]
    mean = emb.mean(axis=0)
    cov = np.cov(emb - mean, rowvar=False).reshape(d, d)
    var, vec = np.linalg.eigh(cov)
    var, vec = var[::-1].clip(0), vec[:, ::-1]
    k = max(1, min(k, d - 1, len(emb) - 2))
    floor = max(float(var.mean()), 1e-12) * 1e-3  # directions with (almost) no spread
    rest = max(float(var[k:].mean()) if d > k else floor, floor)
    return {"mean": mean.astype(np.float32), "basis": vec[:, :k].astype(np.float32),
            "inv_var": (1.0 / np.maximum(var[:k], floor)).astype(np.float32),
            "inv_rest": np.float32(1.0 / rest)}


def distance(emb: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
    """numpy twin of net.Familiarity: per-row distance (n,), about 1 for training tiles."""
    c = np.asarray(emb, np.float64) - stats["mean"]
    z = c @ stats["basis"]
    rest = c - z @ stats["basis"].T
    d2 = (z * z * stats["inv_var"]).sum(1) + (rest * rest).sum(1) * float(stats["inv_rest"])
    return np.sqrt(d2 / c.shape[1] + 1e-12)


def quantile(values: np.ndarray, q: float, default: float) -> float:
    """The q-quantile of values rounded to 4 digits, or default when there are none."""
    return round(float(np.quantile(values, q)), 4) if len(values) else default


def tune(val_road_dist: np.ndarray, val_photo_dist: np.ndarray, real_dist: np.ndarray,
         margin: float = 1.1) -> dict[str, Any]:
    """The distance cuts of analyze.RoadCheck.

    familiar: the 99th percentile of held-back synthetic road-surface tiles (a tile beyond it is
    unfamiliar). far: the photo distance (analyze.photo_distance) above which a photo gets no
    level: `margin` times the largest of the 99.5th percentile of the held-back road photos'
    distances and the 99th percentile of the training cities' real crops, so that the pavement
    the model was built for keeps its level (an unfamiliar pavement photo only gets a
    warning)."""
    familiar = quantile(val_road_dist, 0.99, 1.0)
    anchors = [quantile(val_photo_dist, 0.995, familiar), quantile(real_dist, 0.99, familiar)]
    return {"familiar": familiar, "far": round(margin * max(familiar, *anchors), 4),
            "real_crops_p99": anchors[1], "val_photos_p995": anchors[0]}
