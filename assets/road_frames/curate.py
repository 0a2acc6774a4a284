"""Rebuild assets/road_frames from its source (DATA_CARD.md): real full-frame road photos of
Brazilian federal highways (Rio Grande do Sul only) with their road / crack / pothole masks,
resized to 512 px on the long side (the serving grid's size), JPEG quality 85, and one label
PNG per frame (0 not the vehicle's road, 1 road, 2 crack, 3 pothole).

    python assets/road_frames/curate.py MIRRORS    # MIRRORS/<owner>+<repo>/repo: git dirs

Reads Dataset/<id>/<id>_{RAW.jpg,LANE.png,CRACK.png,POTHOLE.png} at the pinned commit with
`git show`. Frames are taken every STEP-th along each highway (consecutive frames are 5 m
apart); BR-290 frames are `train`, BR-386 frames `val`. A frame whose difference hash is near
any photo of assets/road_street (the street-view check set) is left out (none is, by
construction: other country, other camera; tests/unit/test_road_frames.py re-checks).
Writes the files and manifest.csv next to this file. Not run by the pipeline.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = "biankatpas+Cracks-and-Potholes-in-Road-Images-Dataset"
SOURCE = "github:biankatpas/Cracks-and-Potholes-in-Road-Images-Dataset"
COMMIT = "1f200541d2e88596fb9dcd91f4262c1ac5f6202e"
LICENCE = "MIT (repository LICENSE, Copyright (c) 2020 Bianka Passos)"
LONG_SIDE = 512
QUALITY = 85
# (highway prefix of the frame id, split, frames wanted)
PICK = (("RS_290", "train", 160), ("RS_386", "val", 60))
NEAR = 40  # difference-hash bits (of 256) under which two photos count as the same photo
FIELDS = ("file", "mask", "source", "commit", "path", "licence", "state", "highway", "split",
          "width", "height", "road_share", "crack_share", "pothole_share")


def _git(git_dir: str, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", git_dir, *args], check=True,
                          capture_output=True).stdout


def street_hashes() -> list[np.ndarray]:
    """Difference hashes of every photo of assets/road_street."""
    from models.road_damage.frames import image_hash

    street = HERE.parent / "road_street"
    return [image_hash(np.asarray(Image.open(p).convert("RGB")))
            for p in sorted(street.glob("*.jpg"))]


def main(mirrors: str) -> None:
    from models.road_damage.frames import image_hash

    git_dir = str(Path(mirrors) / REPO / "repo")
    names = _git(git_dir, "ls-tree", "-r", "--name-only", COMMIT).decode().split("\n")
    ids = sorted({n.split("/")[1] for n in names if n.endswith("_RAW.jpg")})
    checks = street_hashes()
    rows = []
    for prefix, split, want in PICK:
        mine = [i for i in ids if f"_{prefix}_" in i]
        step = max(1, len(mine) // want)
        for frame_id in mine[::step][:want]:
            base = f"Dataset/{frame_id}/{frame_id}"
            img = Image.open(io.BytesIO(_git(git_dir, "show", f"{COMMIT}:{base}_RAW.jpg")))
            img = img.convert("RGB")
            s = LONG_SIDE / max(img.size)
            size = (round(img.size[0] * s), round(img.size[1] * s))
            small = img.resize(size, Image.Resampling.LANCZOS)
            h = image_hash(np.asarray(small))
            if any(int((h != c).sum()) < NEAR for c in checks):
                print(f"left out {frame_id}: like a road_street photo")
                continue
            label = np.zeros((size[1], size[0]), np.uint8)
            for value, kind, rule in ((1, "LANE", 0.5), (2, "CRACK", 0.0), (3, "POTHOLE", 0.0)):
                m = Image.open(io.BytesIO(_git(git_dir, "show", f"{COMMIT}:{base}_{kind}.png")))
                grey = np.asarray(m.convert("L").resize(size, Image.Resampling.BOX)) / 255.0
                label[grey > rule] = value  # cracks: any marked pixel under the new one
            file, mask = f"{frame_id}.jpg", f"{frame_id}_mask.png"
            small.save(HERE / file, "JPEG", quality=QUALITY)
            Image.fromarray(label).save(HERE / mask, optimize=True)
            state, highway = frame_id.split("_")[1:3]
            rows.append({"file": file, "mask": mask, "source": SOURCE, "commit": COMMIT,
                         "path": f"{base}_RAW.jpg", "licence": LICENCE, "state": state,
                         "highway": f"BR-{highway}", "split": split, "width": size[0],
                         "height": size[1],
                         "road_share": round(float((label >= 1).mean()), 4),
                         "crack_share": round(float((label == 2).mean()), 4),
                         "pothole_share": round(float((label == 3).mean()), 4)})
    with open(HERE / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} frames -> {HERE}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
