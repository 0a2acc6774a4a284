"""Photo preprocessing shared by training, the export parity check and serving (numpy/Pillow).

Resize policy: the upright photo (EXIF orientation applied) is resized, aspect ratio kept up to
rounding, onto a grid of square tiles whose long side has `long_side` pixels; each tile is one
model input. A 4000 x 3000 phone photo and a 768 x 576 synthetic one both become 8 x 6 tiles of
64 px at the default long side of 512, so a tile always covers about the same share of the view.
"""

from __future__ import annotations

import contextlib
import functools
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any, SupportsFloat

import numpy as np
from PIL import Image, UnidentifiedImageError

# MPO: what some phones write for JPEG; HEIF: iPhone photos (.heic), decoded by pi-heif, the
# decode-only build of pillow-heif (libheif + libde265, LGPL; no GPL x265 encoder bundled).
FORMATS = ("JPEG", "PNG", "MPO", "WEBP", "HEIF")
EXPECTED = "expected JPEG, PNG or HEIC"
# EXIF DateTimeOriginal as cameras write it, and the ISO-like form some apps write instead.
STAMP_FORMATS = ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
                 "%Y/%m/%d %H:%M:%S")
MAX_PIXELS = 50_000_000  # 12 MP phones with room; a decompression bomb is refused unread
# ImageNet statistics: what the pretrained backbone expects; harmless for a model from scratch.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


EXPECTED_JA = "JPEG・PNG・HEIC の写真を送ってください"
# What Pillow raises while decoding damaged, truncated or oversized image data (load()).
UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class PhotoError(ValueError):
    """A file that is not a usable photo; the message says why in English, `ja` in Japanese
    for staff (serving adds the file name)."""

    def __init__(self, message: str, ja: str):
        super().__init__(message)
        self.ja = ja


def warning(code: str, ja: str, en: str) -> dict[str, str]:
    """A note on a usable photo that staff should see (response, export, page)."""
    return {"code": code, "ja": ja, "en": en}


@functools.cache
def _register_heif() -> None:
    """Teach Pillow HEIC/HEIF once, on first use (no import-time side effect)."""
    from pi_heif import register_heif_opener

    register_heif_opener()


@dataclass(frozen=True)
class Grid:
    """How a photo is cut into tiles: the analysis size, the tile edge in pixels and the
    surrounding pavement (context, pixels on each side) the model sees around each tile."""

    long_side: int = 512
    tile: int = 64
    context: int = 0

    @classmethod
    def of(cls, assets: dict) -> Grid:
        """The grid an exported model was trained with (its road.json)."""
        return cls(assets["long_side"], assets["tile"], assets.get("context", 0))

    @property
    def window(self) -> int:
        """The model's input edge: the tile and its context."""
        return self.tile + 2 * self.context

    def shape(self, width: int, height: int) -> tuple[int, int]:
        """(rows, cols) of tiles for a photo of this size."""
        cells = max(1, self.long_side // self.tile)
        short = max(1, round(min(width, height) / max(width, height) * cells))
        return (short, cells) if width >= height else (cells, short)


def open_photo(data: bytes, max_pixels: int = MAX_PIXELS, draft: int | None = None,
               ) -> tuple[Image.Image, dict]:
    """Upright RGB image and its EXIF facts (lat, lon, taken_at, warnings); PhotoError if
    unusable.

    The size is checked from the header before any pixel is decoded; `draft` lets JPEG decode
    at 1/2, 1/4 or 1/8 scale when only `draft` pixels on the long side are needed. HEIC comes out
    already turned upright by libheif (its EXIF orientation then reads 1).
    """
    _register_heif()
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise PhotoError(f"more than {max_pixels:,} pixels (decompression bomb?)",
                         f"画素数が多すぎます（{max_pixels:,} 画素まで）") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise PhotoError(f"not an image ({EXPECTED})",
                         f"画像ファイルではありません。{EXPECTED_JA}") from None
    if img.format not in FORMATS:
        raise PhotoError(f"unsupported image format {img.format} ({EXPECTED})",
                         f"対応していない画像形式です（{img.format}）。{EXPECTED_JA}")
    w, h = img.size
    if w * h > max_pixels or w < 16 or h < 16:
        raise PhotoError(f"{w} x {h} pixels: expected at least 16 pixels on each side and "
                         f"at most {max_pixels:,} pixels in all",
                         f"画像の大きさが範囲外です（{w}×{h} 画素。各辺 16 画素以上、"
                         f"全体で {max_pixels:,} 画素まで）")
    facts = read_exif(img)
    if draft and img.format in ("JPEG", "MPO"):
        img.draft("RGB", (draft, draft))
    try:
        img.load()
    except UNREADABLE as exc:
        raise PhotoError(f"image data is damaged or truncated ({exc})",
                         "画像データが壊れているか、途中で切れています。撮り直すか、元の写真を"
                         "送ってください") from None
    return to_rgb(upright(img, facts.pop("orientation", 1))), facts


def upright(img: Image.Image, orientation: int) -> Image.Image:
    """The image turned as EXIF orientation 1-8 says; an unknown value leaves it unturned."""
    method = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}.get(orientation)
    return img.transpose(method) if method is not None else img


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB from greyscale, 16-bit, palette, CMYK or alpha images."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() if arr.size else 1.0
        scale = 255.0 / (65535.0 if top > 255 else 255.0)
        img = Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (128, 128, 128, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")


def _rational(v: SupportsFloat) -> float:
    return float(v)  # IFDRational and plain numbers alike


def read_exif(img: Image.Image) -> dict[str, Any]:
    """Orientation, GPS position, capture time and warnings, each read on its own: a damaged
    or zero timestamp never loses the position, and broken EXIF gives none of them.

    GPS 0°, 0° is what phones write without a fix ("null island"): no position, a warning.
    """
    out: dict[str, Any] = {"orientation": 1, "lat": None, "lon": None, "taken_at": None,
                           "warnings": []}
    try:
        exif = img.getexif()
    except Exception:  # EXIF is optional; a damaged block must not reject the photo
        return out
    with contextlib.suppress(TypeError, ValueError):
        out["orientation"] = int(exif.get(0x0112, 1) or 1)
    out["taken_at"], problem = _taken_at(exif)
    if problem:
        out["warnings"].append(problem)
    (out["lat"], out["lon"]), problem = _position(exif)
    if problem:
        out["warnings"].append(problem)
    return out


def _taken_at(exif: Image.Exif) -> tuple[str | None, dict[str, str] | None]:
    """ISO capture time from DateTimeOriginal (or DateTime), or None and why not."""
    try:
        stamp = exif.get_ifd(0x8769).get(36867) or exif.get(306)
    except Exception:
        return None, None
    if not stamp:
        return None, None
    text = str(stamp).strip("\x00 ")
    for fmt in STAMP_FORMATS:
        try:
            return datetime.strptime(text, fmt).isoformat(), None
        except ValueError:
            continue
    return None, warning("taken_at_unreadable",
                         f"撮影日時「{text}」を読めないため、撮影日時は空欄です（位置情報は有効）",
                         f"capture time {text!r} is not a date; left empty (GPS kept)")


def _position(exif: Image.Exif) -> tuple[tuple[float | None, float | None],
                                         dict[str, str] | None]:
    """(lat, lon) in degrees from the GPS block, or (None, None) and why not."""
    try:
        gps = exif.get_ifd(0x8825)
        if 2 not in gps or 4 not in gps:
            return (None, None), None
        lat = sum(_rational(x) / 60**i for i, x in enumerate(gps[2]))
        lon = sum(_rational(x) / 60**i for i, x in enumerate(gps[4]))
    except Exception:
        return (None, None), warning("gps_unreadable", "GPS 情報が壊れているため位置はありません",
                                     "the GPS block is damaged: no position")
    lat = -lat if str(gps.get(1, "N")).startswith("S") else lat
    lon = -lon if str(gps.get(3, "E")).startswith("W") else lon
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        where = f"({lat:.5f}, {lon:.5f})"
        return (None, None), warning("gps_invalid",
                                     f"GPS の値 {where} が範囲外のため位置はありません",
                                     f"GPS {where} is out of range: no position")
    if round(lat, 7) == 0 and round(lon, 7) == 0:
        return (None, None), warning("gps_zero",
                                     "GPS が 0°, 0°（測位できていない値）のため位置はありません",
                                     "GPS 0°, 0° means the phone had no fix: no position")
    return (round(lat, 7), round(lon, 7)), None


def to_grid(img: Image.Image, grid: Grid) -> np.ndarray:
    """The photo resized onto its tile grid, uint8 (rows * tile, cols * tile, 3)."""
    rows, cols = grid.shape(*img.size)
    size = (cols * grid.tile, rows * grid.tile)
    return np.asarray(img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))


def tiles(arr: np.ndarray, tile: int, context: int = 0) -> np.ndarray:
    """Row-major tiles of a grid image, each with `context` pixels of its surroundings on every
    side (mirrored at the photo's edge), uint8 (rows * cols, tile + 2 context, same, 3)."""
    h, w = arr.shape[:2]
    rows, cols = h // tile, w // tile
    arr = arr[:rows * tile, :cols * tile]
    if context:
        arr = np.pad(arr, ((context, context), (context, context), (0, 0)), mode="symmetric")
        win = tile + 2 * context
        view = np.lib.stride_tricks.sliding_window_view(arr, (win, win, 3))[::tile, ::tile, 0]
        return np.ascontiguousarray(view[:rows, :cols].reshape(rows * cols, win, win, 3))
    t = arr.reshape(rows, tile, cols, tile, 3)
    return np.ascontiguousarray(t.transpose(0, 2, 1, 3, 4).reshape(rows * cols, tile, tile, 3))


def normalise(batch: np.ndarray) -> np.ndarray:
    """uint8 tiles (n, t, t, 3) as the model's float32 input (n, 3, t, t)."""
    x = (batch.astype(np.float32) / 255.0 - np.asarray(MEAN, np.float32)) / np.asarray(
        STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def photo_tiles(data: bytes, grid: Grid, max_pixels: int = MAX_PIXELS,
                ) -> tuple[np.ndarray, tuple[int, int], dict, np.ndarray]:
    """(tiles uint8, (rows, cols), EXIF facts, grid image) of an encoded photo."""
    img, facts = open_photo(data, max_pixels, draft=grid.long_side)
    arr = to_grid(img, grid)
    rows, cols = arr.shape[0] // grid.tile, arr.shape[1] // grid.tile
    return tiles(arr, grid.tile, grid.context), (rows, cols), facts, arr
