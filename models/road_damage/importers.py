"""Real data in: image + binary-mask datasets (CRACK500, CFD, DeepCrack layout) and class-folder
datasets, converted to the task's photos/tiles frames with the files written beside them.

Masks: a pixel is crack when its grey value is above 127. A tile is cracked when at least
labels.TILE_MASK_SHARE (0.5%) of its pixels are crack, the rule the generator's labels follow.
Binary masks do not say which kind of crack: the class of a cracked tile comes from the shape of
its crack pixels (elongated along travel D00, across D10, no dominant direction D20); the
crack / no-crack label, the headline, is exact.
Class folders: each image is one tile (grid 1 x 1) labelled by its folder name.
Pascal VOC boxes (the Road Damage Dataset format): a tile shows a class when that class's boxes
cover at least VOC_BOX_SHARE (10%) of the tile. Boxes are coarse (a thin crack's box holds mostly
sound pavement), so a box must cover a real part of a tile, not clip its corner. RDD codes map to
the four classes by labels.RDD_CLASSES (joint cracks count: D01 -> D00, D11 -> D10); D43/D44
(faded markings), D50 (manhole) and "Repair" are not damage: their tiles stay "none".
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
from PIL import Image

from models.road_damage.labels import (
    CLASSES,
    MASK_BITS,
    RDD_CLASSES,
    RDD_NOT_DAMAGE,
    TILE_MASK_SHARE,
    crack_ratio,
    grid_cells,
    mlit_level,
)
from models.road_damage.photo import UNREADABLE, Grid, PhotoError, open_photo
from models.task import FilesFrames

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".heic", ".heif")
VOC_BOX_SHARE = 0.1
VOC_CLASSES = RDD_CLASSES  # the joint-crack decision lives in labels.py
VOC_NOT_DAMAGE = set(RDD_NOT_DAMAGE)
FOLDER_CLASSES = {"none": "none", "negative": "none", "no_crack": "none", "nocrack": "none",
                  "0": "none", "crack": "crack", "positive": "crack", "1": "crack",
                  **{c.lower(): c for c in CLASSES}}


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def crack_class(ys: np.ndarray, xs: np.ndarray) -> str:
    """D00, D10 or D20 from the spread of a tile's crack pixels (row, column coordinates)."""
    if len(ys) < 3:
        return "D00"
    cov = np.cov(np.vstack([xs, ys]).astype(float))
    vals, vecs = np.linalg.eigh(cov)
    if vals[1] < 3 * max(vals[0], 1e-9):  # no dominant direction: a network
        return "D20"
    dx, dy = vecs[:, 1]
    return "D00" if abs(dy) >= abs(dx) else "D10"


def class_mask(binary: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A bit mask (labels.MASK_BITS) from a binary crack mask, one crack class per cell."""
    h, w = binary.shape
    out = np.zeros((h, w), np.uint8)
    ys_cut = np.linspace(0, h, rows + 1).round().astype(int)
    xs_cut = np.linspace(0, w, cols + 1).round().astype(int)
    for r in range(rows):
        for c in range(cols):
            cell = binary[ys_cut[r]:ys_cut[r + 1], xs_cut[c]:xs_cut[c + 1]]
            ys, xs = np.nonzero(cell)
            if len(ys):
                cls = crack_class(ys, xs)
                out[ys_cut[r]:ys_cut[r + 1], xs_cut[c]:xs_cut[c + 1]][cell] = MASK_BITS[cls]
    return out


def _png(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask, "L").save(buf, "PNG")
    return buf.getvalue()


def _frames(code: str, rows: list[dict], tiles: list[dict], files: dict[str, bytes],
            ) -> FilesFrames:
    """Imported rows as the task's frames with their files."""
    return FilesFrames({"photos": pd.DataFrame(rows), "tiles": pd.DataFrame(tiles)}, files)


def _photo_row(code: str, pid: str, file: str, mask_file: str, facts: dict, rows: int,
               cols: int, labels: np.ndarray, source: str) -> dict:
    ratio = crack_ratio(labels)
    return {"photo_id": pid, "tenant_code": code, "file": file, "mask_file": mask_file,
            "taken_at": facts.get("taken_at") or "", "lat": "" if facts.get("lat") is None
            else f"{facts['lat']:.6f}", "lon": "" if facts.get("lon") is None
            else f"{facts['lon']:.6f}", "rows": rows, "cols": cols,
            "crack_ratio": round(ratio, 4), "mlit_level": mlit_level(ratio), "source": source}


def _tile_rows(code: str, pid: str, labels: np.ndarray, cols: int) -> Iterable[dict]:
    for k, lab in enumerate(labels):
        yield {"photo_id": pid, "tenant_code": code, "row": k // cols, "col": k % cols,
               **{c: int(v) for c, v in zip(CLASSES, lab, strict=True)}}


def _photo(path: Path) -> tuple[bytes, Image.Image, dict]:
    """The file's bytes, its upright image and EXIF facts; ValueError names the file."""
    raw = path.read_bytes()
    try:
        img, facts = open_photo(raw)
    except PhotoError as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    return raw, img, facts


def _add_photo(out: tuple[list, list, dict], code: str, path: Path, raw: bytes, facts: dict,
               bits: np.ndarray, grid_shape: tuple[int, int], share: float, source: str) -> None:
    """Tile labels from a class bit mask; the photo, its tiles and files appended to `out`."""
    rows, tiles, files = out
    r, c = grid_shape
    damage = grid_cells(bits, r, c).reshape(r * c, -1) >= share
    labels = np.column_stack([~damage.any(axis=1), damage]).astype(np.int8)
    pid = f"{code}-{path.stem}"
    file, mask_file = f"images/{code}/{pid}{path.suffix.lower()}", f"masks/{code}/{pid}.png"
    files[file], files[mask_file] = raw, _png(bits)
    rows.append(_photo_row(code, pid, file, mask_file, facts, r, c, labels, source))
    tiles.extend(_tile_rows(code, pid, labels, c))


# How far a mask's aspect ratio may be from its photo's before the pair is refused: a mask
# of another shape is almost always the wrong file (or one drawn on the unrotated pixels of a
# photo whose EXIF turns it); a scaled copy of the right shape is resized.
MASK_ASPECT_TOLERANCE = 0.02
SHOWN_PROBLEMS = 20  # problems listed in one error (the count says how many in all)


def _mask_for(path: Path, mask_path: Path, size: tuple[int, int]) -> Image.Image:
    """The photo's mask as an 8-bit image of the photo's (upright) size; ValueError naming both
    files when it is not an image or its shape is another one."""
    try:
        mask: Image.Image = Image.open(mask_path)
        mask.load()
    except UNREADABLE as exc:
        raise ValueError(f"{mask_path.name}: the mask of {path.name} is not a readable image "
                         f"({exc})") from None
    (mw, mh), (w, h) = mask.size, size
    if abs(mw / mh - w / h) > MASK_ASPECT_TOLERANCE * (w / h):
        raise ValueError(f"{mask_path.name}: mask is {mw} x {mh} pixels but its photo "
                         f"{path.name} is {w} x {h} (upright): expected the photo's shape "
                         "(a scaled copy is fine)")
    mask = mask.convert("L")
    return mask if mask.size == size else mask.resize(size, Image.Resampling.NEAREST)


def import_masks(images: Path, masks: Path, code: str, grid: Grid,
                 share: float = TILE_MASK_SHARE) -> FilesFrames:
    """Images with same-named binary masks (any image suffix) -> photos, tiles and files.

    Every pair is checked before anything is returned: ValueError listing the photos without
    a mask, unreadable photos or masks and masks of another shape (all of them, counted, the
    first SHOWN_PROBLEMS named), so one run shows what to fix; nothing is imported then."""
    by_stem = {p.stem: p for p in _images(masks)}
    out: tuple[list, list, dict] = ([], [], {})
    problems: list[str] = []
    for path in _images(images):
        mask_path = by_stem.get(path.stem)
        if mask_path is None:
            problems.append(f"{path.name}: no mask with the same name in {masks}")
            continue
        try:
            raw, img, facts = _photo(path)
            mask = _mask_for(path, mask_path, img.size)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        r, c = grid.shape(*img.size)
        bits = class_mask(np.asarray(mask) > 127, r, c)
        _add_photo(out, code, path, raw, facts, bits, (r, c), share, f"masks:{images.name}")
    if problems:
        more = len(problems) - SHOWN_PROBLEMS
        raise ValueError(f"{len(problems)} problem(s), nothing imported: "
                         + "; ".join(problems[:SHOWN_PROBLEMS])
                         + (f"; and {more} more" if more > 0 else ""))
    if not out[0]:
        raise ValueError(f"{images}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return _frames(code, *out)


def read_voc(xml: bytes, name: str) -> tuple[tuple[int, int] | None, list[tuple[str, tuple]]]:
    """(annotated width, height or None, [(RDD code, (xmin, ymin, xmax, ymax))]) of a VOC file."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise ValueError(f"{name}: not a Pascal VOC XML file ({exc})") from None
    size = None
    w, h = root.findtext("size/width"), root.findtext("size/height")
    boxes = []
    try:
        if w and h and int(float(w)) > 0 and int(float(h)) > 0:
            size = (int(float(w)), int(float(h)))
        for k, obj in enumerate(root.iter("object"), 1):
            code = (obj.findtext("name") or "").strip().upper()
            box = obj.find("bndbox")
            if box is None:
                raise ValueError(f"{name}: object {k} ({code or 'no name'}) has no bndbox")
            xyxy = tuple(float(box.findtext(t) or "nan")
                         for t in ("xmin", "ymin", "xmax", "ymax"))
            if not all(np.isfinite(xyxy)) or xyxy[2] <= xyxy[0] or xyxy[3] <= xyxy[1]:
                raise ValueError(f"{name}: object {k} ({code}) has an empty or broken bndbox "
                                 f"{xyxy}")
            boxes.append((code, xyxy))
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc) if str(exc).startswith(name) else
                         f"{name}: unreadable size or box ({exc})") from None
    return size, boxes


def box_mask(boxes: list[tuple[str, tuple]], size: tuple[int, int],
             annotated: tuple[int, int] | None, name: str) -> np.ndarray:
    """A class bit mask of the upright photo's size with each damage box filled."""
    w, h = size
    sx, sy = (w / annotated[0], h / annotated[1]) if annotated else (1.0, 1.0)
    out = np.zeros((h, w), np.uint8)
    for code, (x0, y0, x1, y1) in boxes:
        if code in VOC_NOT_DAMAGE:
            continue
        cls = VOC_CLASSES.get(code)
        if cls is None:
            raise ValueError(f"{name}: unknown damage class {code!r}; expected one of "
                             f"{', '.join(sorted(VOC_CLASSES | dict.fromkeys(VOC_NOT_DAMAGE)))}")
        xa, xb = (int(np.clip(round(v * sx), 0, w)) for v in (x0, x1))
        ya, yb = (int(np.clip(round(v * sy), 0, h)) for v in (y0, y1))
        out[ya:yb, xa:xb] |= MASK_BITS[cls]
    return out


def import_voc(images: Path, annotations: Path, code: str, grid: Grid,
               share: float = VOC_BOX_SHARE) -> FilesFrames:
    """Photos with same-named Pascal VOC XML files (RDD layout) -> photos, tiles and files. A
    photo without an XML file has no damage (RDD ships such negatives)."""
    if not annotations.is_dir():
        raise ValueError(f"{annotations}: not a folder of Pascal VOC .xml files")
    xmls = {p.stem: p for p in annotations.glob("*.xml")}
    out: tuple[list, list, dict] = ([], [], {})
    for path in _images(images):
        raw, img, facts = _photo(path)
        xml = xmls.get(path.stem)
        size, boxes = read_voc(xml.read_bytes(), xml.name) if xml else (None, [])
        bits = box_mask(boxes, img.size, size, xml.name if xml else path.name)
        _add_photo(out, code, path, raw, facts, bits, grid.shape(*img.size), share,
                   f"voc:{images.name}")
    if not out[0]:
        raise ValueError(f"{images}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return _frames(code, *out)


def import_folders(root: Path, code: str, crack_as: str = "D00") -> FilesFrames:
    """<root>/<class>/<image>: each image is one tile labelled by its folder (none, crack,
    negative, positive, 0, 1 or a class code D00/D10/D20/D40); 'crack' counts as `crack_as`."""
    rows: list[dict] = []
    tiles: list[dict] = []
    files: dict[str, bytes] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        cls = FOLDER_CLASSES.get(folder.name.lower())
        if cls is None:
            raise ValueError(f"{folder.name}: unknown class folder; expected one of "
                             f"{', '.join(sorted(FOLDER_CLASSES))}")
        cls = crack_as if cls == "crack" else cls
        labels = np.array([[int(c == cls) for c in CLASSES]], np.int8)
        for path in _images(folder):
            raw = path.read_bytes()
            try:
                _, facts = open_photo(raw)
            except PhotoError as exc:
                raise ValueError(f"{folder.name}/{path.name}: {exc}") from None
            pid = f"{code}-{folder.name}-{path.stem}"
            file = f"images/{code}/{pid}{path.suffix.lower()}"
            files[file] = raw
            rows.append(_photo_row(code, pid, file, "", facts, 1, 1, labels,
                                   f"folders:{root.name}"))
            tiles.extend(_tile_rows(code, pid, labels, 1))
    if not rows:
        raise ValueError(f"{root}: no class folders with images")
    return _frames(code, rows, tiles, files)
