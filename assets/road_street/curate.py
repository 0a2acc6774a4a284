"""Rebuild assets/road_street from its sources (DATA_CARD.md): real full-frame road photos
(dashcam, windscreen phone, street level), resized to 800 px on the long side and re-encoded as
JPEG (quality 88). A check of the road model on real street views, never trained or tuned on.

    python assets/road_street/curate.py MIRRORS    # MIRRORS/<owner>+<repo>/repo: git dirs

Each source is read at its pinned commit with `git show`. Writes the JPEGs and manifest.csv next
to this file. Not run by the pipeline: the curated files are committed.

The expected answer of each photo is the curator's visual judgement (DATA_CARD.md, "Expected
answers"): `expected_level` the MLIT levels that would be right ("none" = a withheld level is
right too), `expected_pothole` yes / no / unclear, `road_top` the height share (0 = top) above
which no road surface shows anywhere across the frame (set a little above the highest road
pixel), `bonnet_top` the height share below which the own car (bonnet, dashboard, wiper) fills
the frame (1 = none), `rdd_labels` the Road Damage Dataset's own boxes where the source ships
them (RDD 4-class codes).
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
LONG_SIDE = 800
QUALITY = 88
P1 = ("github:udacity/CarND-LaneLines-P1", "ce5681be7ef8140560c0e464ef2da611e40b4fc9", "MIT")
ADV = ("github:udacity/CarND-Advanced-Lane-Lines", "91b080357290da37f533e2d0832f601c3e770d51",
       "MIT")
RDD = ("github:leedsnoob/yolo_roaddamage_project", "d26ba1a5c99064bcd2349417cb3c917c8df3b3e4",
       "CC BY-SA 4.0 (RDD2022, Arya et al.; licence per sekilab/RoadDamageDetector README)")
RDD_A = "road_damage_pipeline/01_segmentation/assets/pidnet_fastsam_comparison/raw/"
RDD_B = "road_damage_pipeline/02_detection/samples/images/raw/"
SA = ("github:facebookresearch/segment-anything", "dca509fe793f601edb92606367a655c15ac00fdf",
      "Apache-2.0")
SAM2 = ("github:facebookresearch/sam2", "2b90b9f5ceec907a1c18123530e92e794ad901a4", "Apache-2.0")
FIELDS = ("file", "source", "commit", "path", "licence", "view", "shows", "expected_level",
          "expected_pothole", "road_top", "bonnet_top", "rdd_labels")
HIGHWAY = "intact asphalt highway, lane markings, sky, hills"
# (file, source, path, view, what it shows, expected levels, pothole, road_top, bonnet_top,
#  RDD labels)
SOURCES = [
    ("udacity_p1_solidWhiteCurve.jpg", P1, "test_images/solidWhiteCurve.jpg", "dashcam",
     f"{HIGHWAY}; cars ahead", "I", "no", 0.55, 1.0, ""),
    ("udacity_p1_solidWhiteRight.jpg", P1, "test_images/solidWhiteRight.jpg", "dashcam",
     f"{HIGHWAY}; cars ahead", "I", "no", 0.55, 1.0, ""),
    ("udacity_p1_solidYellowCurve.jpg", P1, "test_images/solidYellowCurve.jpg", "dashcam",
     f"{HIGHWAY}; one car", "I", "no", 0.55, 1.0, ""),
    ("udacity_p1_solidYellowCurve2.jpg", P1, "test_images/solidYellowCurve2.jpg", "dashcam",
     f"{HIGHWAY}; sign", "I", "no", 0.55, 1.0, ""),
    ("udacity_p1_solidYellowLeft.jpg", P1, "test_images/solidYellowLeft.jpg", "dashcam",
     f"{HIGHWAY}; cars ahead", "I", "no", 0.55, 1.0, ""),
    ("udacity_p1_whiteCarLaneSwitch.jpg", P1, "test_images/whiteCarLaneSwitch.jpg", "dashcam",
     HIGHWAY, "I", "no", 0.55, 1.0, ""),
    ("udacity_adv_straight_lines1.jpg", ADV, "test_images/straight_lines1.jpg", "dashcam",
     f"{HIGHWAY}; bonnet strip at the bottom", "I", "no", 0.55, 0.93, ""),
    ("udacity_adv_straight_lines2.jpg", ADV, "test_images/straight_lines2.jpg", "dashcam",
     f"{HIGHWAY}; cars ahead; bonnet strip", "I", "no", 0.53, 0.93, ""),
    ("udacity_adv_test1.jpg", ADV, "test_images/test1.jpg", "dashcam",
     "concrete bridge deck, tyre marks and stains (no clear crack), two cars, trees, sky; "
     "bonnet strip", "I|II", "no", 0.54, 0.93, ""),
    ("udacity_adv_test2.jpg", ADV, "test_images/test2.jpg", "dashcam",
     f"{HIGHWAY}; deer sign; bonnet strip", "I", "no", 0.54, 0.93, ""),
    ("udacity_adv_test3.jpg", ADV, "test_images/test3.jpg", "dashcam",
     f"{HIGHWAY}; one car; bonnet strip", "I", "no", 0.54, 0.93, ""),
    ("udacity_adv_test4.jpg", ADV, "test_images/test4.jpg", "dashcam",
     "concrete bridge deck with tree shadows, two cars, trees, sky; bonnet strip", "I|II", "no",
     0.54, 0.93, ""),
    ("udacity_adv_test5.jpg", ADV, "test_images/test5.jpg", "dashcam",
     "concrete bridge deck, tree shadows, dark tyre marks, two cars, trees; bonnet strip",
     "I|II", "no", 0.52, 0.93, ""),
    ("udacity_adv_test6.jpg", ADV, "test_images/test6.jpg", "dashcam",
     "intact asphalt, concrete joint far ahead, two cars, trees, sky; bonnet strip", "I", "no",
     0.54, 0.93, ""),
    ("rdd2022_Czech_000201.jpg", RDD, f"{RDD_A}D002_Czech_000201.jpg", "windscreen phone",
     "urban road, no clear damage at this size; tram tracks, grass verge, pole, cars, "
     "windscreen frit at the top; bonnet", "I|II", "no", 0.58, 0.86, ""),
    ("rdd2022_Czech_000194.jpg", RDD, f"{RDD_A}D005_Czech_000194.jpg", "windscreen phone",
     "multi-lane road, a sealed longitudinal crack along the dashed line; lamp posts, trees, "
     "windscreen frit; bonnet", "I|II", "no", 0.55, 0.86, ""),
    ("rdd2022_India_000090.jpg", RDD, f"{RDD_A}D008_India_000090.jpg", "windscreen phone",
     "worn road with dark patches (patching or wet), ravelled edge; hoardings, motorbike, "
     "towers; bonnet in the centre", "?", "no", 0.48, 1.0, ""),
    ("rdd2022_India_000118.jpg", RDD, f"{RDD_A}D011_India_000118.jpg", "windscreen phone",
     "worn dusty road, no clear crack; buildings, motorbike, cars, rickshaw, wires",
     "I|II", "no", 0.6, 1.0, ""),
    ("rdd2022_Japan_000035.jpg", RDD, f"{RDD_A}D014_Japan_000035.jpg", "windscreen phone",
     "wet mountain road, clear cracking around painted characters; LPG truck, forest; wiper "
     "and dashboard", "II|III", "no", 0.31, 0.86, ""),
    ("rdd2022_Japan_000076.jpg", RDD, f"{RDD_A}D017_Japan_000076.jpg", "windscreen phone",
     "urban street, one transverse crack or joint, manholes, lane lines, red sidewalk, "
     "bollards; wiper and white bonnet", "I|II", "no", 0.0, 0.82, ""),
    ("rdd2022_Japan_001608.jpg", RDD, f"{RDD_B}Japan_001608.jpg", "dashcam",
     "residential street, no damage visible to the curator, manhole, centre line; houses, "
     "poles, wires, sign, sky", "I|II", "unclear", 0.46, 1.0,
     "D40 x2 (one box on the manhole)"),
    ("rdd2022_Japan_006310.jpg", RDD, f"{RDD_B}Japan_006310.jpg", "dashcam",
     "road beside a block wall, a pole's shadow across the centre line, no damage visible to "
     "the curator; trees, wires, sky", "I", "unclear", 0.69, 1.0, "D40 (on the shadow)"),
    ("rdd2022_Norway_000031.jpg", RDD, f"{RDD_A}D020_Norway_000031.jpg", "dashcam (wide)",
     "intact rural road, yellow centre line, forest, sky", "I", "no", 0.43, 1.0, ""),
    ("rdd2022_Norway_000059.jpg", RDD, f"{RDD_A}D023_Norway_000059.jpg", "dashcam (wide)",
     "intact rural road, double yellow line, field, hills, house, sky", "I", "no", 0.43, 1.0,
     ""),
    ("rdd2022_Norway_004021.jpg", RDD, f"{RDD_B}Norway_004021.jpg", "dashcam (wide)",
     "rural road in snow, a faint transverse crack; snow banks, barn, sky; own car's shadow",
     "I|II", "no", 0.45, 1.0, "D10"),
    ("rdd2022_Norway_004657.jpg", RDD, f"{RDD_B}Norway_004657.jpg", "dashcam (wide)",
     "rural road in snow, a longitudinal crack in the lane; snow, houses, trees, sky",
     "I|II", "no", 0.46, 1.0, "D00"),
    ("rdd2022_China_MotorBike_000036.jpg", RDD, f"{RDD_A}D032_China_MotorBike_000036.jpg",
     "motorbike", "campus road with long longitudinal and branching cracks; trees, hedges, van",
     "II|III", "no", 0.06, 1.0, ""),
    ("rdd2022_China_MotorBike_000160.jpg", RDD, f"{RDD_A}D035_China_MotorBike_000160.jpg",
     "motorbike", "campus road with long longitudinal and branching cracks; trees, hedges",
     "II|III", "no", 0.06, 1.0, ""),
    ("sa_truck.jpg", SA, "notebooks/images/truck.jpg", "street level",
     "a pickup truck at the kerb filling the frame, red wall; street in the lower third with "
     "a faint crack", "none|I|II", "no", 0.6, 1.0, ""),
    ("sam2_cars.jpg", SAM2, "notebooks/images/cars.jpg", "street level",
     "two classic cars filling the frame, dark street with a yellow line, building, trees, "
     "overcast sky", "none|I|II", "no", 0.55, 1.0, ""),
]


def read(source: str, commit: str, path: str, mirrors: Path) -> bytes:
    """The source file's bytes, by `git show` from the mirror of a GitHub repository."""
    git = mirrors / source.removeprefix("github:").replace("/", "+") / "repo"
    return subprocess.run(["git", "--git-dir", str(git), "show", f"{commit}:{path}"],
                          check=True, capture_output=True).stdout


def rows() -> list[dict[str, object]]:
    """The manifest rows without the image sizes (SOURCES as dicts)."""
    out = []
    for file, (source, commit, licence), path, view, shows, level, hole, top, bonnet, rdd \
            in SOURCES:
        out.append(dict(zip(FIELDS, (file, source, commit, path, licence, view, shows, level,
                                     hole, top, bonnet, rdd), strict=True)))
    return out


def main(mirrors: Path) -> None:
    """Write the JPEGs and manifest.csv."""
    out = []
    for row in rows():
        img = Image.open(io.BytesIO(read(str(row["source"]), str(row["commit"]),
                                         str(row["path"]), mirrors))).convert("RGB")
        img.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
        img.save(HERE / str(row["file"]), "JPEG", quality=QUALITY)
        out.append({**row, "width": img.width, "height": img.height})
    with open(HERE / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(out[0]))
        w.writeheader()
        w.writerows(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
