"""Rebuild assets/road_masks from its source (DATA_CARD.md): real asphalt photos with pixel crack
masks, cut to the surveyed lane's near field so that each photo is pavement only, the way a
close-up pavement photo is. A check of the road model (and of onboarding on a new kind of
photo), never trained or tuned on by the shipped model.

    python assets/road_masks/curate.py MIRRORS    # MIRRORS/<owner>+<repo>/repo: git dirs

The source is read at its pinned commit (`git cat-file --batch`). Writes photos/*.jpg,
masks/*.png (1-bit) and manifest.csv next to this file. Not run by the pipeline: the curated
files are committed.

Selection (deterministic, no randomness): photos whose pothole mask is empty (the independent
check's sets hold no pothole either; a crack-only set keeps "crack" unambiguous), grouped by
survey segment (the file name's state, highway and segment fields: frames 5 m apart overlap, so
a segment's frames never straddle the split). Segments go, largest first, to whichever split has
fewer photos so far; each segment gives at most PER_SEGMENT frames evenly spaced along its
chainage. Crop: the largest bottom-anchored rectangle inside the lane mask (the source annotates
cracks inside the surveyed lane only: outside it a crack may be unlabelled) with an aspect ratio
in ASPECT; frames whose rectangle is smaller than MIN_SIZE are skipped.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
SOURCE = "github:biankatpas/Cracks-and-Potholes-in-Road-Images-Dataset"
COMMIT = "1f200541d2e88596fb9dcd91f4262c1ac5f6202e"
LICENCE = ("MIT (repository LICENSE, Copyright (c) 2020 Bianka Passos); the same data on "
           "Mendeley Data doi:10.17632/t576ydh9v8.4 is CC BY 4.0")
SPLITS = {"onboard": 100, "check": 100}  # photos per split (fewer if the source runs out)
PER_SEGMENT = 16
ASPECT = (1.5, 2.0)  # width / height of the crop
MIN_SIZE = (360, 200)  # smallest crop kept (w, h) in source pixels
QUALITY = 90
FIELDS = ("file", "mask", "split", "segment", "source", "commit", "path", "mask_path", "licence",
          "crop", "width", "height", "crack_share")


class Blobs:
    """Files of one git commit through one `git cat-file --batch` process."""

    def __init__(self, git_dir: Path, commit: str) -> None:
        self.commit = commit
        self.proc = subprocess.Popen(["git", "--git-dir", str(git_dir), "cat-file", "--batch"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def read(self, path: str) -> bytes:
        """The file's bytes; KeyError when the commit has no such file."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{self.commit}:{path}\n".encode())
        self.proc.stdin.flush()
        head = self.proc.stdout.readline().split()
        if len(head) < 3 or head[1] != b"blob":
            raise KeyError(path)
        data = self.proc.stdout.read(int(head[2]))
        self.proc.stdout.read(1)  # the newline after each blob
        return data


def binary(data: bytes) -> np.ndarray:
    """A source mask PNG (black / white RGB) as a bool array (h, w)."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("L")) > 127


def lane_crop(lane: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the largest rectangle inside the lane mask whose bottom is the
    lane's lowest row and whose width / height lies in ASPECT; None when there is none of at
    least MIN_SIZE."""
    rows = np.flatnonzero(lane.any(axis=1))
    if not len(rows):
        return None
    bottom = int(rows[-1]) + 1
    best, left, right = None, 0, lane.shape[1]
    for top in range(bottom - 1, -1, -1):
        xs = np.flatnonzero(lane[top])
        if not len(xs):
            break
        # the lane row's own run around the running window (a convex lane: first..last)
        left, right = max(left, int(xs[0])), min(right, int(xs[-1]) + 1)
        h, w = bottom - top, right - left
        if w < MIN_SIZE[0]:
            break
        w = min(w, int(h * ASPECT[1]))
        if h < MIN_SIZE[1] or w < h * ASPECT[0]:
            continue
        if best is None or w * h > (best[2] - best[0]) * (best[3] - best[1]):
            x0 = left + (right - left - w) // 2
            best = (x0, top, x0 + w, bottom)
    return best


def segment(photo_id: str) -> str:
    """The survey segment of a source photo id (state, highway, segment fields)."""
    return "_".join(photo_id.split("_")[1:4])


def chainage(photo_id: str) -> int:
    """The frame's position along its segment (the id's last field)."""
    return int(photo_id.split("_")[-1])


def spaced(items: list[str], k: int) -> list[str]:
    """k items evenly spread over a list (all of it when k >= len)."""
    if k >= len(items):
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, k).round().astype(int)]


def main(mirrors: Path) -> None:
    """Write photos/, masks/ and manifest.csv."""
    git = mirrors / SOURCE.removeprefix("github:").replace("/", "+") / "repo"
    names = subprocess.run(["git", "--git-dir", str(git), "ls-tree", "-r", "--name-only",
                            COMMIT, "Dataset"], check=True, capture_output=True,
                           text=True).stdout.split()
    ids = sorted({n.split("/")[1] for n in names})
    blobs = Blobs(git, COMMIT)
    clean = [i for i in ids
             if not binary(blobs.read(f"Dataset/{i}/{i}_POTHOLE.png")).any()]
    by_seg: dict[str, list[str]] = defaultdict(list)
    for i in clean:
        by_seg[segment(i)].append(i)
    picked: dict[str, int] = dict.fromkeys(SPLITS, 0)
    out = []
    for seg in sorted(by_seg, key=lambda s: (-len(by_seg[s]), s)):
        open_ = [s for s in SPLITS if picked[s] < SPLITS[s]]
        if not open_:
            break
        split = min(open_, key=lambda s: picked[s] / SPLITS[s])
        frames = sorted(by_seg[seg], key=chainage)
        kept = 0
        for i in spaced(frames, PER_SEGMENT * 3):  # spare frames for skipped crops
            if kept == PER_SEGMENT or picked[split] == SPLITS[split]:
                break
            base = f"Dataset/{i}/{i}"
            box = lane_crop(binary(blobs.read(f"{base}_LANE.png")))
            if box is None:
                continue
            x0, y0, x1, y1 = box
            img = Image.open(io.BytesIO(blobs.read(f"{base}_RAW.jpg"))).convert("RGB")
            crack = binary(blobs.read(f"{base}_CRACK.png"))[y0:y1, x0:x1]
            file, mask = f"photos/{i}.jpg", f"masks/{i}.png"
            (HERE / "photos").mkdir(exist_ok=True)
            (HERE / "masks").mkdir(exist_ok=True)
            img.crop(box).save(HERE / file, "JPEG", quality=QUALITY)
            Image.fromarray(crack).convert("1").save(HERE / mask, optimize=True)
            out.append({"file": file, "mask": mask, "split": split, "segment": seg,
                        "source": SOURCE, "commit": COMMIT, "path": f"{base}_RAW.jpg",
                        "mask_path": f"{base}_CRACK.png", "licence": LICENCE,
                        "crop": f"{x0} {y0} {x1} {y1}", "width": x1 - x0, "height": y1 - y0,
                        "crack_share": round(float(crack.mean()), 5)})
            kept += 1
            picked[split] += 1
    with open(HERE / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(sorted(out, key=lambda r: (r["split"], r["file"])))
    print(f"{len(clean)} of {len(ids)} photos without a pothole; kept {picked}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
