"""Rebuild assets/road_nonroad from its sources (DATA_CARD.md): real photos that are not road
photos, resized to 640 px on the long side and re-encoded as JPEG (quality 85).

    python assets/road_nonroad/curate.py MIRRORS    # MIRRORS/<owner>+<repo>/repo: git dirs
    python assets/road_nonroad/curate.py MIRRORS stardist_nuclei.jpg   # only these files

The GitHub sources are read at the pinned commits with `git show`; matplotlib's and
scikit-learn's sample photos come from the installed wheels. Writes the JPEGs and manifest.csv
next to this file. Not run by the pipeline: the curated files are committed.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
LONG_SIDE = 640
MAHOTAS = "7e50f3394d8e504f91495eaafb09a8d081691422"
PYTESSERACT = "df9fce0b5c5ea3cd9182fce8870ab9241d951173"
ESRGAN = "a4abfb2979a7bbff3f69f58f58ae324608821e27"
STARDIST = "650d3a19bf7380ec0476d672397ff0388687a9d3"
# (file, split, source, commit or version, path, licence, what it shows). split: train photos
# are trained on as non-road tiles; val photos only check the rule (never trained on); photo
# photos train the road-photo check only (models/road_damage/roadphoto.py).
SOURCES = [
    ("caffe_cat.jpg", "train", "github:BVLC/caffe", "9b891540183ddc834a02b2bd81b31afae71b2153",
     "examples/images/cat.jpg", "BSD-2-Clause", "kitten on grass"),
    ("caffe_fish-bike.jpg", "train", "github:BVLC/caffe",
     "9b891540183ddc834a02b2bd81b31afae71b2153", "examples/images/fish-bike.jpg",
     "BSD-2-Clause", "person on a fish-shaped bike, beach sand"),
    ("darknet_eagle.jpg", "train", "github:pjreddie/darknet",
     "f6afaabcdf85f77e7aff2ec55c020c0e297c77f9", "data/eagle.jpg", "public domain (LICENSE)",
     "eagle by water"),
    ("darknet_giraffe.jpg", "train", "github:pjreddie/darknet",
     "f6afaabcdf85f77e7aff2ec55c020c0e297c77f9", "data/giraffe.jpg", "public domain (LICENSE)",
     "giraffe and zebra, vegetation"),
    ("darknet_horses.jpg", "val", "github:pjreddie/darknet",
     "f6afaabcdf85f77e7aff2ec55c020c0e297c77f9", "data/horses.jpg", "public domain (LICENSE)",
     "horses on a grass field, sky"),
    ("darknet_kite.jpg", "train", "github:pjreddie/darknet",
     "f6afaabcdf85f77e7aff2ec55c020c0e297c77f9", "data/kite.jpg", "public domain (LICENSE)",
     "beach, sea, people, kites"),
    ("darknet_person.jpg", "train", "github:pjreddie/darknet",
     "f6afaabcdf85f77e7aff2ec55c020c0e297c77f9", "data/person.jpg", "public domain (LICENSE)",
     "person, dog and horse in a field"),
    ("darknet_scream.jpg", "val", "github:pjreddie/darknet",
     "f6afaabcdf85f77e7aff2ec55c020c0e297c77f9", "data/scream.jpg", "public domain (LICENSE)",
     "a painting (Munch, The Scream)"),
    ("sa_dog.jpg", "train", "github:facebookresearch/segment-anything",
     "dca509fe793f601edb92606367a655c15ac00fdf", "notebooks/images/dog.jpg", "Apache-2.0",
     "dog indoors, tiled floor, person's legs"),
    ("sa_dogs.jpg", "train", "github:facebookresearch/segment-anything",
     "dca509fe793f601edb92606367a655c15ac00fdf", "demo/src/assets/data/dogs.jpg", "Apache-2.0",
     "two dogs on a beach, sky"),
    ("sam2_bedroom_00000.jpg", "train", "github:facebookresearch/sam2",
     "2b90b9f5ceec907a1c18123530e92e794ad901a4", "notebooks/videos/bedroom/00000.jpg",
     "Apache-2.0", "children in a bedroom (video frame)"),
    ("sam2_bedroom_00080.jpg", "train", "github:facebookresearch/sam2",
     "2b90b9f5ceec907a1c18123530e92e794ad901a4", "notebooks/videos/bedroom/00080.jpg",
     "Apache-2.0", "children in a bedroom (video frame)"),
    ("sam2_bedroom_00160.jpg", "val", "github:facebookresearch/sam2",
     "2b90b9f5ceec907a1c18123530e92e794ad901a4", "notebooks/videos/bedroom/00160.jpg",
     "Apache-2.0", "children in a bedroom (video frame)"),
    ("mpl_grace_hopper.jpg", "train", "pypi:matplotlib", "wheel",
     "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
     "public domain (U.S. Navy photo); matplotlib licence for the file",
     "portrait, flag"),
    ("sklearn_china.jpg", "train", "pypi:scikit-learn", "wheel",
     "sklearn/datasets/images/china.jpg", "CC BY 2.0 (danielbuechele, Flickr)",
     "temple, trees, lake, sky"),
    ("sklearn_flower.jpg", "val", "pypi:scikit-learn", "wheel",
     "sklearn/datasets/images/flower.jpg", "CC BY 2.0 (vultilion, Flickr)",
     "flower close-up, foliage"),
    # split "photo": only the road-photo check (roadphoto.py) trains on them, not the tiles
    ("mahotas_nuclear.jpg", "photo", "github:luispedro/mahotas",
     MAHOTAS,
     "mahotas/demos/data/nuclear.png", "MIT",
     "fluorescence microscopy, cell nuclei (dark, greyish)"),
    ("mahotas_zbest.jpg", "photo", "github:luispedro/mahotas",
     MAHOTAS,
     "docs/source/images/zbest.jpg", "MIT",
     "bright-field microscopy, one cell (grey)"),
    ("mahotas_luispedro.jpg", "photo", "github:luispedro/mahotas",
     MAHOTAS,
     "mahotas/demos/data/luispedro.jpg", "MIT",
     "portrait, building behind"),
    ("pytesseract_european.jpg", "photo", "github:madmaze/pytesseract",
     PYTESSERACT,
     "tests/data/test-european.jpg", "Apache-2.0",
     "scanned text page (greyscale)"),
    ("pytesseract_test.jpg", "photo", "github:madmaze/pytesseract",
     PYTESSERACT,
     "tests/data/test.png", "Apache-2.0", "text on white (document)"),
    ("esrgan_00003.jpg", "photo", "github:xinntao/Real-ESRGAN",
     ESRGAN,
     "inputs/00003.png", "BSD-3-Clause", "bare branches against a pale sky"),
    ("esrgan_00017_gray.jpg", "photo", "github:xinntao/Real-ESRGAN",
     ESRGAN,
     "inputs/00017_gray.png", "BSD-3-Clause", "two people (greyscale photo)"),
    ("esrgan_children.jpg", "photo", "github:xinntao/Real-ESRGAN",
     ESRGAN,
     "inputs/children-alpha.png", "BSD-3-Clause", "children (cut-out on white)"),
    ("esrgan_tree.jpg", "photo", "github:xinntao/Real-ESRGAN",
     ESRGAN,
     "inputs/tree_alpha_16bit.png", "BSD-3-Clause", "a tree (cut-out on white)"),
    ("esrgan_wolf_gray.jpg", "photo", "github:xinntao/Real-ESRGAN",
     ESRGAN,
     "inputs/wolf_gray.jpg", "BSD-3-Clause", "a wolf in snow (greyscale)"),
    # stardist's 2-D test image (its data/__init__.py names the origin): a dark field with
    # bright blobs, which the first 26 photos lack (its H&E image, "from the Cancer Imaging
    # Archive" without a collection, is left out: its licence cannot be traced)
    ("stardist_nuclei.jpg", "photo", "github:stardist/stardist", STARDIST,
     "stardist/data/images/img2d.tif",
     "BSD-3-Clause; image from the 2018 Data Science Bowl (BBBC038, CC0)",
     "fluorescence microscopy, nuclei on black (16-bit greyscale, values under 256)"),
]


def read(source: str, commit: str, path: str, mirrors: Path) -> bytes:
    """The source file's bytes: `git show` from a mirror, or the installed wheel's file."""
    if source.startswith("github:"):
        git = mirrors / source.removeprefix("github:").replace("/", "+") / "repo"
        return subprocess.run(["git", "--git-dir", str(git), "show", f"{commit}:{path}"],
                              check=True, capture_output=True).stdout
    import importlib

    pkg = importlib.import_module(path.split("/")[0])
    return (Path(pkg.__file__).parent / Path(*path.split("/")[1:])).read_bytes()


def main(mirrors: Path, only: set[str] | None = None) -> None:
    """Write the JPEGs (those named in `only`; default all) and manifest.csv (every row: a
    JPEG not rewritten is measured as it is)."""
    rows = []
    for name, split, source, commit, path, licence, shows in SOURCES:
        if only is not None and name not in only:
            with Image.open(HERE / name) as kept:
                rows.append({"file": name, "split": split, "source": source, "commit": commit,
                             "path": path, "licence": licence, "shows": shows,
                             "width": kept.width, "height": kept.height})
            continue
        img = Image.open(io.BytesIO(read(source, commit, path, mirrors)))
        if "A" in img.getbands():  # cut-outs: on white, not on whatever the clear pixels hold
            img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img.convert("RGBA"))
        img = img.convert("RGB")
        img.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
        img.save(HERE / name, "JPEG", quality=85)
        rows.append({"file": name, "split": split, "source": source, "commit": commit,
                     "path": path, "licence": licence, "shows": shows,
                     "width": img.width, "height": img.height})
    with open(HERE / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main(Path(sys.argv[1]), set(sys.argv[2:]) or None)
