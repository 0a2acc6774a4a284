"""Staff corrections of road_damage results as training frames (same layout as data/), and the
task's feedback hook that adds them to its data before `kyodo retrain`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from models.road_damage.labels import CLASSES, crack_ratio, mlit_level
from models.task import Feedback, FilesFrames, TaskData

if TYPE_CHECKING:
    from serving.store import Store

KEYS = {"photos": ["photo_id"], "tiles": ["photo_id", "row", "col"]}  # a row's identity


def corrected_labels(result: dict[str, Any], corrections: list[tuple]) -> np.ndarray:
    """Tile labels (rows * cols, classes): the model's, overridden by staff verdicts in order.

    A photo-level 'wrong' with labels sets every tile (e.g. ["none"] clears a false alarm); a
    'right' verdict keeps the model's labels.
    """
    rows, cols = result["rows"], result["cols"]
    labels = np.array([[int(c in cell["labels"]) for c in CLASSES]
                       for line in result["grid"] for cell in line], np.int8)
    for row, col, correct, truth in corrections:
        if correct:
            continue
        fixed = np.array([int(c in truth) for c in CLASSES], np.int8)
        if fixed[1:].any():
            fixed[0] = 0
        if row is None:
            labels[:] = fixed
        elif row < rows and col < cols:
            labels[row * cols + col] = fixed
    labels[:, 0] = labels[:, 1:].sum(axis=1) == 0
    return labels


def corrections_frames(photos: list[dict[str, Any]]) -> dict[str, FilesFrames]:
    """Per tenant: photos/tiles frames and the analysed images of every corrected photo."""
    out: dict[str, tuple[list, list, dict]] = {}
    for p in photos:
        code, res = p["tenant"], p["result"]
        pid = f"{code}-fb-{p['batch_id']}-{p['index']}"
        labels = corrected_labels(res, p["corrections"])
        rows, tiles, files = out.setdefault(code, ([], [], {}))
        file = f"images/{code}/{pid}.jpg"
        files[file] = p["image"]
        # road surface as the model called it (results from before the mask: every tile)
        paved = np.array([c.get("pavement", True) for line in res["grid"] for c in line], bool)
        ratio = crack_ratio(labels, paved)
        rows.append({"photo_id": pid, "tenant_code": code, "file": file, "mask_file": "",
                     "taken_at": res.get("taken_at") or "",
                     "lat": "" if res.get("lat") is None else res["lat"],
                     "lon": "" if res.get("lon") is None else res["lon"],
                     "rows": res["rows"], "cols": res["cols"], "crack_ratio": round(ratio, 4),
                     "mlit_level": mlit_level(ratio) if paved.any() else "",
                     "source": f"corrections:{p['name']}"})
        tiles.extend({"photo_id": pid, "tenant_code": code, "row": k // res["cols"],
                      "col": k % res["cols"], **dict(zip(CLASSES, map(int, lab), strict=True)),
                      "pavement": int(paved[k])}
                     for k, lab in enumerate(labels))
    return {code: FilesFrames({"photos": pd.DataFrame(r), "tiles": pd.DataFrame(t)}, f)
            for code, (r, t, f) in out.items()}


def apply_corrections(store: Store, data: TaskData) -> Feedback:
    """Road crews' corrections recorded by the service -> their photos and tile labels added to
    data/road_damage/ (a photo corrected again replaces its earlier rows); per tenant the
    photos changed and their tiles."""
    out: Feedback = {}
    for code, frames in corrections_frames(store.road_training_photos()).items():
        data.add(code, frames, KEYS)
        out[code] = {"changed": len(frames["photos"]), "tiles": len(frames["tiles"])}
    return out
