"""Real Japanese road crops (assets/road_real, DATA_CARD.md): loading, the split by city, and
the `real` block of the evaluation (crack vs no-crack on cities the model never trained on).

Each crop is one RDD2018 box resized to 128 x 128; the model sees it as one tile window (the
crop resized to Grid.window pixels), so its damage probabilities are the crop's. Positives are
the crack codes (labels.RDD_CLASSES: D00, D01, D10, D11, D20; joint cracks count); negatives are
the faded-marking crops D43 / D44 (labels.RDD_NOT_DAMAGE): real road texture from the same
photos, cut the same way, so "real photo = damage" cannot score well here. Potholes (D40) are
neither and are only counted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from models.road_damage.analyze import CRACK, Cuts, tile_flags
from models.road_damage.labels import CLASSES, CRACKS, RDD_CLASSES, RDD_NOT_DAMAGE

ROOT = Path(__file__).resolve().parents[2] / "assets" / "road_real"
# Muroran: a pilot city, Hokkaido freeze-thaw asphalt (the least like the rest); Ichihara: the
# most marking negatives per crop. Together 296 of 1,187 crops (DATA_CARD.md).
HELD_OUT_CITIES = ("muroran", "ichihara")
MIN_CLASS_CROPS = 10  # per-RDD-code figures only where the held-out split has this many crops
ECE_BINS = 10


@dataclass
class RealCrops:
    """Real crops with their RDD code, city and tile labels (CLASSES order)."""

    images: np.ndarray  # uint8 (n, 128, 128, 3)
    rdd: np.ndarray  # str (n,)
    city: np.ndarray  # str (n,)
    labels: np.ndarray  # int8 (n, len(CLASSES)); all zero for codes that are neither

    def subset(self, keep: np.ndarray) -> RealCrops:
        """The crops where keep is True."""
        return RealCrops(self.images[keep], self.rdd[keep], self.city[keep], self.labels[keep])

    @property
    def crack(self) -> np.ndarray:
        """True for crack crops (D00/D01/D10/D11/D20)."""
        return np.any(self.labels[:, [CLASSES.index(c) for c in CRACKS]], axis=1)

    @property
    def negative(self) -> np.ndarray:
        """True for the damage-free look-alikes (faded markings)."""
        return self.labels[:, 0] == 1


def concat(parts: list[RealCrops]) -> RealCrops:
    """The crops of several sets, in order."""
    return RealCrops(*(np.concatenate([getattr(p, f) for p in parts])
                       for f in ("images", "rdd", "city", "labels")))


def rdd_labels(codes: np.ndarray) -> np.ndarray:
    """Tile labels (n, len(CLASSES)) of RDD codes: damage codes by labels.RDD_CLASSES, the
    not-damage codes as "none", anything else all zero (left out of training and scoring)."""
    out = np.zeros((len(codes), len(CLASSES)), np.int8)
    for i, code in enumerate(codes):
        if code in RDD_CLASSES:
            out[i, CLASSES.index(RDD_CLASSES[code])] = 1
        elif code in RDD_NOT_DAMAGE:
            out[i, 0] = 1
    return out


@functools.cache
def _load(root: Path) -> RealCrops:
    manifest = pd.read_csv(root / "manifest.csv", dtype=str)
    images = np.stack([np.asarray(Image.open(root / f).convert("RGB"))
                       for f in manifest["file"]])
    codes = manifest["rdd_class"].to_numpy()
    return RealCrops(images, codes, manifest["city"].to_numpy(), rdd_labels(codes))


def load(root: Path = ROOT) -> RealCrops:
    """The crops listed in root/manifest.csv (file, rdd_class, city, source_path), decoded once
    per process; FileNotFoundError when the folder is missing."""
    return _load(Path(root).resolve())


def split(crops: RealCrops, held_out: tuple[str, ...] = HELD_OUT_CITIES,
          ) -> tuple[RealCrops, RealCrops]:
    """(training cities, held-out cities): a city's crops are all on one side."""
    test = np.isin(crops.city, held_out)
    return crops.subset(~test), crops.subset(test)


def windows(images: np.ndarray, size: int) -> np.ndarray:
    """Crops resized to the model's input edge, uint8 (n, size, size, 3)."""
    if images.shape[1] == size:
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size),
                                                          Image.Resampling.BILINEAR))
                     for im in images]) if len(images) else np.zeros((0, size, size, 3), np.uint8)


def auc(truth: np.ndarray, score: np.ndarray) -> float | None:
    """Ranking AUC (Mann-Whitney, ties count half); None without both classes."""
    pos, neg = score[truth], score[~truth]
    if not len(pos) or not len(neg):
        return None
    ranks = pd.Series(np.concatenate([pos, neg])).rank().to_numpy()[:len(pos)]
    return round(float((ranks.sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))), 4)


def calibration(truth: np.ndarray, prob: np.ndarray, bins: int = ECE_BINS) -> dict[str, float]:
    """Brier score and expected calibration error (equal-width bins, weighted by count)."""
    if not len(truth):
        return {"brier": 0.0, "ece": 0.0}
    edges = np.minimum((prob * bins).astype(int), bins - 1)
    ece = sum(abs(truth[edges == b].mean() - prob[edges == b].mean()) * (edges == b).mean()
              for b in range(bins) if (edges == b).any())
    return {"brier": round(float(np.mean((prob - truth) ** 2)), 4), "ece": round(float(ece), 4)}


def _f1(truth: np.ndarray, pred: np.ndarray) -> float:
    tp = float((truth & pred).sum())
    return round(2 * tp / max(float(truth.sum() + pred.sum()), 1.0), 4)


def evaluate(predict: Callable[[np.ndarray], np.ndarray], window: int, cuts: Cuts,
             crops: RealCrops, held_out: tuple[str, ...] = HELD_OUT_CITIES) -> dict[str, Any]:
    """The `real` block: crack vs no-crack AUC, F1 at the model's own cut, calibration and
    per-RDD-code figures on the held-out cities' crops only.

    predict maps uint8 windows (n, window, window, 3) to probabilities (n, len(CLASSES)). The
    crack score is the most likely crack class's probability (analyze.tile_flags' rule).
    """
    _, test = split(crops, held_out)
    probs = predict(windows(test.images, window)) if len(test.images) else np.zeros(
        (0, len(CLASSES)), np.float32)
    scored = test.crack | test.negative
    truth, score = test.crack[scored], probs[scored, CRACK].max(axis=1)
    flags = tile_flags(probs, cuts).astype(bool)
    pred = np.any(flags[scored, CRACK], axis=1)
    pothole = test.rdd == "D40"
    per_class = {}
    for code in sorted(set(test.rdd[test.crack])):
        own = test.rdd[scored] == code
        if own.sum() >= MIN_CLASS_CROPS:
            keep = own | ~truth
            per_class[code] = {"crops": int(own.sum()),
                               "recall": round(float(pred[own].mean()), 4),
                               "auc_vs_negatives": auc(truth[keep], score[keep])}
    return {
        "source": "assets/road_real (RDD2018 crops via RoadDamageGAN 365a0e4; DATA_CARD.md)",
        "held_out_cities": list(held_out),
        "train_cities": sorted(set(crops.city) - set(held_out)),
        "crops": len(test.rdd), "crack_crops": int(truth.sum()),
        "negative_crops": int((~truth).sum()), "negatives": "faded markings D43/D44",
        "counts": {code: int((test.rdd == code).sum()) for code in sorted(set(test.rdd))},
        "crack_auc": auc(truth, score), "crack_f1": _f1(truth, pred),
        # what calling every crop cracked scores: most held-out crops are cracks, so F1 alone
        # flatters a model that flags everything; AUC and negatives_flagged do not
        "all_crack_f1": _f1(truth, np.ones_like(truth)),
        "crack_precision": round(float(truth[pred].mean()), 4) if pred.any() else 0.0,
        "crack_recall": round(float(pred[truth].mean()), 4) if truth.any() else 0.0,
        "negatives_flagged": round(float(pred[~truth].mean()), 4) if (~truth).any() else 0.0,
        "calibration": calibration(truth.astype(float), score.astype(float)),
        "per_class": per_class,
        "potholes_found": round(float(flags[pothole, CLASSES.index("D40")].mean()), 4)
        if pothole.any() else None,
        # issue target: potholes reported on at most 10% of what has none
        "potholes_flagged_without": round(float(flags[~pothole, CLASSES.index("D40")].mean()),
                                          4) if (~pothole).any() else None,
    }
