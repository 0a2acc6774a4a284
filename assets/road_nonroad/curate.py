"""Rebuild assets/road_nonroad from its sources (DATA_CARD.md): real photos that are not road
photos, resized to 640 px on the long side and re-encoded as JPEG (quality 85).

    python assets/road_nonroad/curate.py MIRRORS    # MIRRORS/<owner>+<repo>/repo: git dirs
    python assets/road_nonroad/curate.py MIRRORS stardist_nuclei.jpg   # only these files

The GitHub sources are read at the pinned commits with `git show`; matplotlib's and
scikit-learn's sample photos come from the installed wheels. Writes the JPEGs and manifest.csv
next to this file. Not run by the pipeline: the curated files are committed. A source whose
pixels are one of scikit-image's photos (the evaluation set, re-shipped by imageio and others)
is refused (skimage_twin); tests/unit/test_road_damage_nonroad.py checks the committed files.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

from PIL import Image

HERE = Path(__file__).resolve().parent
LONG_SIDE = 640
MAHOTAS = "7e50f3394d8e504f91495eaafb09a8d081691422"
PYTESSERACT = "df9fce0b5c5ea3cd9182fce8870ab9241d951173"
ESRGAN = "a4abfb2979a7bbff3f69f58f58ae324608821e27"
STARDIST = "650d3a19bf7380ec0476d672397ff0388687a9d3"
# road-nonroad3: microscopy, astronomy, documents and signs
NCI = "e490571b370f7173c0f5cb14e0d8d2550d403d47"  # github:iiif-prezi/iiif-prezi testimages/
BIA = "3766d2f6056aa0058241b80a66c234977e833762"  # github:haesleinhuepf/BioImageAnalysisNotebooks
SUNPY = "d2ae0740e520f513fa8b91a4b8f82906c2599d80"
TSPICE = "8485f6ca769ceac257fc90e2f77affb2b5dfcc0c"
GRIZZLY = "2e561e129becabc987ba4fc6c9bfbb852890d747"
HUGO = "docs/themes/cupper-hugo-theme/exampleSite/content/post/nasa-images"
TESSERACT = "f8b689f85f6c302e4f286bfa249f2f247963ed02"  # the last commit with testing/ images
EASYOCR = "c4f3cd7225efd4f85451bd8b4a7646ae9a092420"
NCI_PD = "public domain (National Cancer Institute, Visuals Online; repo README)"
NASA_PD = "public domain (NASA image; repo MIT / Apache-2.0)"
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
    # road-nonroad3: more of the kinds the check still levelled (microscopy, the moon and
    # other telescope images, text), a few per kind held back in val. No gravel, concrete or
    # paving-stone close-ups: a phone close-up of asphalt aggregate looks like them, and a
    # gravel path is a municipality's road too (DATA_CARD.md)
    ("nci_cells_2303.jpg", "photo", "github:iiif-prezi/iiif-prezi", NCI,
     "testimages/nci-vol-2303-72.jpg", NCI_PD, "cultured connective-tissue cells, 500x (grey)"),
    ("nci_cells_2304.jpg", "photo", "github:iiif-prezi/iiif-prezi", NCI,
     "testimages/nci-vol-2304-72.jpg", NCI_PD, "cells, darkfield amplified contrast (blue)"),
    ("nci_cells_2305.jpg", "photo", "github:iiif-prezi/iiif-prezi", NCI,
     "testimages/nci-vol-2305-72.jpg", NCI_PD, "cancer cells in tissue culture, darkfield"),
    ("nci_cells_2306.jpg", "val", "github:iiif-prezi/iiif-prezi", NCI,
     "testimages/nci-vol-2306-72.jpg", NCI_PD, "cancer cells, darkfield (blue on black)"),
    ("bia_bbbc022.jpg", "photo", "github:haesleinhuepf/BioImageAnalysisNotebooks", BIA,
     "data/BBBC022/IXMtest_A02_s9.tif", "CC0 (BBBC022, Gustafsdottir et al. 2013); repo "
     "BSD-3 / CC BY 4.0", "fluorescence microscopy, nuclei (first channel, 12-bit)"),
    ("bia_maize_clsm.jpg", "photo", "github:haesleinhuepf/BioImageAnalysisNotebooks", BIA,
     "data/maize_clsm.tif", "CC BY 4.0 (David Legland, MorphoLibJ sample images)",
     "confocal microscopy, maize stem section (grey cell walls)"),
    ("bia_tissue_e39.jpg", "photo", "github:haesleinhuepf/BioImageAnalysisNotebooks", BIA,
     "data/E39.lif [E4] - 2.png", "CC BY 4.0 (Esteban et al., IDR doi:10.17867/10000174)",
     "tissue section, fluorescence (red, blue on black)"),
    ("bia_bbbc007.jpg", "val", "github:haesleinhuepf/BioImageAnalysisNotebooks", BIA,
     "data/BBBC007_batch/AS_09125_040701150004_A02f00d0.tif",
     "BBBC007v1 (Jones et al. 2005, Broad Bioimage Benchmark Collection); repo BSD-3 / CC BY "
     "4.0", "fluorescence microscopy, Drosophila cell nuclei (grey on black)"),
    ("nasa_moon.jpg", "photo", "github:grafana/grizzly", GRIZZLY, f"{HUGO}/moon.jpg",
     NASA_PD + "; GSFC_20171208_Archive_e001861", "full moon on black"),
    ("nasa_sun.jpg", "photo", "github:grafana/grizzly", GRIZZLY, f"{HUGO}/sun.jpg",
     NASA_PD + "; SDO, GSFC_20171208_Archive_e000393", "the sun in extreme UV (gold), lines"),
    ("nasa_earth.jpg", "val", "github:grafana/grizzly", GRIZZLY, f"{HUGO}/earth.jpg",
     NASA_PD + "; PIA18033", "the earth from space"),
    ("sunpy_hmi.jpg", "photo", "github:sunpy/sunpy", SUNPY,
     "sunpy/data/test/2023_01_31__03_39_23_200__SDO_HMI_HMI_continuum.jp2",
     "public domain (NASA SDO); repo BSD-2-Clause", "the sun's disc, white light (grey)"),
    ("sunpy_aia193.jpg", "photo", "github:sunpy/sunpy", SUNPY,
     "sunpy/data/test/2013_06_24__17_31_30_84__SDO_AIA_AIA_193.jp2",
     "public domain (NASA SDO); repo BSD-2-Clause", "the sun's disc, extreme UV (grey)"),
    ("sunpy_eui174.jpg", "val", "github:sunpy/sunpy", SUNPY,
     "sunpy/data/test/2022_04_01__00_00_45__SOLO-EUI-FSI_EUI_FSI_174.jp2",
     "ESA/NASA Solar Orbiter EUI data (open); repo BSD-2-Clause",
     "the sun's disc, small in a dark field (grey)"),
    ("lroc_moon_near.jpg", "photo", "github:rybosome/tspice", TSPICE,
     "apps/orrery/public/textures/planets/moon-lroc-4k.jpg",
     "public domain (NASA SVS CGI Moon Kit, LRO/LROC); repo MIT",
     "lunar surface, near-side maria and craters (a 1024 px patch of the global map)"),
    ("lroc_moon_far.jpg", "val", "github:rybosome/tspice", TSPICE,
     "apps/orrery/public/textures/planets/moon-lroc-4k.jpg",
     "public domain (NASA SVS CGI Moon Kit, LRO/LROC); repo MIT",
     "lunar surface, far-side highlands (a 1024 px patch of the global map)"),
    ("usgs_mercury.jpg", "photo", "github:rybosome/tspice", TSPICE,
     "apps/orrery/public/textures/planets/mercury.jpg",
     "public domain (USGS Astrogeology, MESSENGER MDIS mosaic); repo MIT",
     "Mercury's surface, enhanced colour (a 1024 px patch of the global map)"),
    ("tess_phototest.jpg", "photo", "github:tesseract-ocr/tesseract", TESSERACT,
     "testing/phototest.tif", "Apache-2.0", "printed text on white (bilevel scan)"),
    ("tess_eurotext.jpg", "photo", "github:tesseract-ocr/tesseract", TESSERACT,
     "testing/eurotext.tif", "Apache-2.0", "printed text in five languages (bilevel scan)"),
    ("tess_dutillet.jpg", "photo", "github:tesseract-ocr/tesseract", TESSERACT,
     "testing/DuTillet1004Pg2LG.jpg", "Apache-2.0", "scanned book page, two columns"),
    ("tess_hebrew.jpg", "photo", "github:tesseract-ocr/tesseract", TESSERACT,
     "testing/hebrew.png", "Apache-2.0", "Hebrew text on tinted paper"),
    ("tess_devatest.jpg", "val", "github:tesseract-ocr/tesseract", TESSERACT,
     "testing/devatest.png", "Apache-2.0", "Devanagari text page"),
    ("easyocr_japanese.jpg", "photo", "github:JaidedAI/EasyOCR", EASYOCR,
     "examples/japanese.jpg", "Apache-2.0", "a no-littering sign (Minato City)"),
    ("easyocr_korean.jpg", "photo", "github:JaidedAI/EasyOCR", EASYOCR,
     "examples/korean.png", "Apache-2.0", "a road sign against the sky"),
    ("easyocr_english.jpg", "photo", "github:JaidedAI/EasyOCR", EASYOCR,
     "examples/english.png", "Apache-2.0", "an infographic (screen image, text and icons)"),
    ("easyocr_french.jpg", "val", "github:JaidedAI/EasyOCR", EASYOCR,
     "examples/french.jpg", "Apache-2.0", "street-name signs on a pole, a building behind"),
]
# Sources read with tifffile (a multi-plane or 12/16-bit TIFF): the plane kept. Bilevel
# TIFFs (tesseract's) go through Pillow, which honours their white-is-zero photometry.
TIFF_PLANE = {"bia_bbbc022.jpg": 0, "bia_maize_clsm.jpg": 0, "bia_bbbc007.jpg": 0}
# Patches (left, upper, right, lower in source pixels) of the 4096 x 2048 global maps: a whole
# sphere unrolled is no photo anyone takes; a patch is what an orbiter or telescope frame shows.
CROP = {"lroc_moon_near.jpg": (1280, 512, 2304, 1536),
        "lroc_moon_far.jpg": (3072, 512, 4096, 1536),
        "usgs_mercury.jpg": (1536, 512, 2560, 1536)}


def read(source: str, commit: str, path: str, mirrors: Path) -> bytes:
    """The source file's bytes: `git show` from a mirror, or the installed wheel's file."""
    if source.startswith("github:"):
        git = mirrors / source.removeprefix("github:").replace("/", "+") / "repo"
        return subprocess.run(["git", "--git-dir", str(git), "show", f"{commit}:{path}"],
                              check=True, capture_output=True).stdout
    import importlib

    pkg = importlib.import_module(path.split("/")[0])
    return (Path(pkg.__file__).parent / Path(*path.split("/")[1:])).read_bytes()


def tiff_image(data: bytes, plane: int) -> Image.Image:
    """One plane of a TIFF (index `plane` along each leading axis) as an 8-bit image: bilevel as
    0/255, 8-bit values as they are, wider ones stretched from their 0.5% to their 99.5%
    quantile."""
    import numpy as np
    import tifffile

    a = tifffile.imread(io.BytesIO(data))
    while a.ndim > 3 or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        a = a[plane]
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.max() > 255:
        lo, hi = np.percentile(a, (0.5, 99.5))
        a = np.clip((a.astype(np.float64) - lo) / max(hi - lo, 1e-9) * 255, 0, 255)
    return Image.fromarray(a.astype(np.uint8))


def thumb(img: Image.Image) -> Any:
    """16 x 16 grey thumbnail (float array) that a resized, re-encoded copy keeps."""
    import numpy as np

    return np.asarray(img.convert("L").resize((16, 16), Image.Resampling.BILINEAR), float)


def skimage_photos() -> dict[str, Image.Image]:
    """Every image file of the installed scikit-image wheel's skimage/data (its first frame),
    by file name; ImportError without scikit-image."""
    import skimage.data

    out = {}
    for p in sorted(Path(skimage.data.__file__).parent.iterdir()):
        if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff"):
            try:
                with Image.open(p) as im:
                    im.seek(0)
                    out[p.name] = im.convert("RGB")
            except OSError:  # a TIFF Pillow cannot read (multipage_rgb.tif): its first image
                out[p.name] = tiff_image(p.read_bytes(), 0).convert("RGB")
    return out


def skimage_twin(img: Image.Image, theirs: dict[str, Image.Image],
                 tolerance: float = 4.0) -> str | None:
    """The scikit-image photo that `img` is a copy of, or None: the same pixels (SHA-256), or a
    resized or re-encoded copy (the same aspect ratio within 3% and 16 x 16 grey thumbnails
    within `tolerance` grey levels on average; a copy through this script's resize and JPEG
    differs by about 1, distinct photos by 10 or more)."""
    import hashlib

    import numpy as np

    mine = thumb(img)
    digest = hashlib.sha256(img.convert("RGB").tobytes()).digest()
    for name, other in theirs.items():
        if other.size == img.size and hashlib.sha256(other.tobytes()).digest() == digest:
            return name
        ratio = (other.width / other.height) / (img.width / img.height)
        if abs(ratio - 1) <= 0.03 and np.abs(thumb(other) - mine).mean() <= tolerance:
            return name
    return None


def main(mirrors: Path, only: set[str] | None = None) -> None:
    """Write the JPEGs (those named in `only`; default all) and manifest.csv (every row: a
    JPEG not rewritten is measured as it is)."""
    rows = []
    theirs = skimage_photos()
    for name, split, source, commit, path, licence, shows in SOURCES:
        if only is not None and name not in only:
            with Image.open(HERE / name) as kept:
                rows.append({"file": name, "split": split, "source": source, "commit": commit,
                             "path": path, "licence": licence, "shows": shows,
                             "width": kept.width, "height": kept.height})
            continue
        data = read(source, commit, path, mirrors)
        img = tiff_image(data, TIFF_PLANE[name]) if name in TIFF_PLANE else \
            Image.open(io.BytesIO(data))
        if name in CROP:
            img = img.crop(CROP[name])
        if "A" in img.getbands():  # cut-outs: on white, not on whatever the clear pixels hold
            img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img.convert("RGBA"))
        img = img.convert("RGB")
        twin = skimage_twin(img, theirs)
        if twin is not None:
            raise ValueError(f"{name} ({source} {path}) is scikit-image's {twin}: the "
                             "evaluation set, never trained on")
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
