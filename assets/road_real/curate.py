"""Rebuild this folder from a RoadDamageGAN snapshot (a bare git dir or a checkout):

    python assets/road_real/curate.py /work/.mirror/hiroyamaeda+RoadDamageGAN/repo

Reads croppedDataset-resized/<class>/<city>_<timestamp>.png at the pinned commit, keeps the
documented RDD2018 classes (labels.RDD_CLASSES and labels.RDD_NOT_DAMAGE), re-encodes each crop
as JPEG (quality 92) under <class>/ and writes manifest.csv. See DATA_CARD.md.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

from PIL import Image

COMMIT = "365a0e4f2e1992c29bdd0b535fc76684cd70ee77"
FOLDER = "croppedDataset-resized"
OUT = Path(__file__).resolve().parent


def _git(git_dir: str, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", git_dir, *args], check=True,
                          capture_output=True).stdout


def main(git_dir: str) -> None:
    """Write <class>/<city>_<timestamp>.jpg and manifest.csv from the snapshot."""
    sys.path.insert(0, str(OUT.parents[1]))
    from models.road_damage.labels import RDD_CLASSES, RDD_NOT_DAMAGE

    keep = set(RDD_CLASSES) | set(RDD_NOT_DAMAGE)
    names = _git(git_dir, "ls-tree", "-r", "--name-only", COMMIT, FOLDER).decode().split()
    rows = []
    for name in sorted(names):
        _, code, file = name.split("/")
        if code not in keep or not file.endswith(".png"):
            continue
        img = Image.open(io.BytesIO(_git(git_dir, "show", f"{COMMIT}:{name}"))).convert("RGB")
        target = Path(code) / file.replace(".png", ".jpg")
        (OUT / code).mkdir(exist_ok=True)
        img.save(OUT / target, "JPEG", quality=92)
        rows.append({"file": target.as_posix(), "rdd_class": code,
                     "city": file.split("_")[0], "source_path": name})
    with open(OUT / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} crops written to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
