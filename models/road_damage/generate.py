"""Deterministic synthetic road photos with per-class pixel masks, tile labels and MLIT levels.

A photo is rendered on a top-down road plane (render.py) and seen in one of three views: a
close-up of the pavement from a car-mounted or hand-held phone (the road fills the frame), a
street view from a dashcam or a phone at chest height (street.py: the road in the lower part of
the frame with sky, buildings, vehicles, people, kerbs and sidewalks, the car's bonnet or wiper
around it), or a photo with no road at all (a wall, a room, sky, vegetation). Then the camera
(exposure, blur, vignette, noise, JPEG) and EXIF GPS, time and sometimes a rotated orientation,
as phones do. The mask PNG holds one bit per damage class (labels.MASK_BITS) and NOT_PAVEMENT_BIT
for pixels that are not road surface, in the upright view; tile labels, each tile's `pavement`
truth and the crack ratio (over road-surface tiles only) come from it, so the generator knows the
truth exactly. A photo without any road-surface tile has no MLIT level ("").
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter

from models.road_damage import render as R
from models.road_damage import street as S
from models.road_damage.labels import (
    CLASSES,
    crack_ratio,
    mlit_level,
    pavement_tiles,
    tile_labels,
)
from models.road_damage.photo import Grid
from models.task import FilesFrames

CANVAS = (800, 600)  # road plane, w x h
PHOTO = (640, 480)  # stored photo size (upright), w x h
# City halls of the demo tenants; photos are taken within a few km of them.
CITY_CENTRES = {"121002": (35.6073, 140.1063), "012050": (42.3152, 140.9737),
                "182079": (35.9566, 136.1844), "012084": (43.8030, 143.8958)}
# Damage mix per region: Hokkaido's freeze-thaw makes transverse cracks and potholes commoner.
SNOW_BELT = {"012050", "012084"}
NOT_PAVEMENT_BIT = 1 << 7  # mask PNG bit of pixels that are not road surface
# `source` suffix of the photos generated for a tenant's holdout only (generate's `holdout`):
# task.split always holds them out, whatever their hash.
HOLDOUT = ":holdout"


@dataclass(frozen=True)
class Spec:
    """What to generate: photos overall (split by population), floor per tenant, grid."""

    total_photos: int
    min_photos: int
    grid: Grid
    damage_share: float  # photos with any damage
    street_share: float = 0.0  # photos in the street view (street.street)
    off_road_share: float = 0.0  # photos without road (street.off_road)


def counts(tenants: list[tuple[str, int]], total: int, minimum: int) -> dict[str, int]:
    """Photos per tenant: proportional to population, at least `minimum`."""
    pop = np.array([p for _, p in tenants], float)
    n = np.maximum(minimum, np.round(total * pop / pop.sum())).astype(int)
    return {code: int(k) for (code, _), k in zip(tenants, n, strict=True)}


def generate(tenants: list[tuple[str, int]], spec: Spec, seed: int,
             progress: bool = False, holdout: dict[str, int] | None = None,
             ) -> dict[str, FilesFrames]:
    """Photos, tiles and image/mask files per tenant code. `holdout`: per tenant code, further
    photos made for its holdout only (ids <code>-H00000..., source "synthetic:<view>:holdout",
    drawn from their own random stream, so the regular photos stay as they were)."""
    from tqdm import tqdm

    out = {}
    per = counts(tenants, spec.total_photos, spec.min_photos)
    for code, n in per.items():
        photos, tiles, files = [], [], {}
        extra = (holdout or {}).get(code, 0)
        for i in tqdm(range(n + extra), desc=f"photos {code}", disable=not progress):
            kept = i >= n  # a holdout-only photo
            # a holdout photo's seed has one more entry: never a regular photo's seed
            rng = np.random.default_rng([seed, zlib.crc32(code.encode()),
                                         *((1, i - n) if kept else (i,))])
            row, labels, jpeg, mask_png = photo(rng, code, i - n if kept else i, spec, kept)
            photos.append(row)
            cols = row["cols"]
            for k, lab in enumerate(labels):
                tiles.append({"photo_id": row["photo_id"], "tenant_code": code,
                              "row": k // cols, "col": k % cols,
                              **{c: int(v) for c, v in zip((*CLASSES, "pavement"), lab,
                                                           strict=True)}})
            files[row["file"]] = jpeg
            files[row["mask_file"]] = mask_png
        out[code] = FilesFrames({"photos": pd.DataFrame(photos), "tiles": pd.DataFrame(tiles)},
                                files)
    return out


def photo_id(code: str, index: int, holdout: bool = False) -> str:
    """The id of a tenant's index-th generated photo: <code>-P00000, or <code>-H00000 for a
    photo made for its holdout only."""
    return f"{code}-{'H' if holdout else 'P'}{index:05d}"


def photo(rng: np.random.Generator, code: str, index: int, spec: Spec, holdout: bool = False,
          ) -> tuple[dict, np.ndarray, bytes, bytes]:
    """One photo: (photos row, tile labels with a last `pavement` column, JPEG bytes, mask PNG
    bytes); `holdout`: a photo made for the tenant's holdout only (id ...-H, source suffix
    HOLDOUT)."""
    u = rng.random()
    view = ("off_road" if u < spec.off_road_share else
            "street" if u < spec.off_road_share + spec.street_share else "close")
    if view == "off_road":
        pixels = S.off_road(rng, PHOTO)
        pavement = np.zeros(pixels.shape[:2], bool)
        bits = np.zeros(pixels.shape[:2], np.uint8)
    else:
        rgb, mask = scene(rng, code, spec.damage_share)
        if view == "street":
            pixels, pavement, bits = S.street(rng, rgb, mask, PHOTO)
        else:
            pixels, bits = close_up(rng, rgb, mask)
            pavement = np.ones(bits.shape, bool)
    img = effects(rng, pixels)
    upright_mask = bits | np.where(pavement, 0, NOT_PAVEMENT_BIT).astype(np.uint8)
    mask_img = Image.fromarray(upright_mask, "L")
    rows, cols = spec.grid.shape(*PHOTO)
    labels = tile_labels(bits, rows, cols)
    paved = pavement_tiles(pavement, rows, cols)
    labels[~paved] = np.eye(len(CLASSES), dtype=np.int8)[0]  # not road: no damage either
    ratio = crack_ratio(labels, paved)
    lat, lon, taken = place_and_time(rng, code)
    orientation = 6 if rng.random() < 0.15 else 1  # phone held sideways: pixels stored turned
    stored = img.transpose(Image.Transpose.ROTATE_90) if orientation == 6 else img
    jpeg = encode_jpeg(stored, int(rng.integers(60, 96)), lat, lon, taken, orientation)
    buf = io.BytesIO()
    mask_img.save(buf, "PNG", optimize=False, compress_level=6)
    pid = photo_id(code, index, holdout)
    row = {"photo_id": pid, "tenant_code": code, "file": f"images/{code}/{pid}.jpg",
           "mask_file": f"masks/{code}/{pid}.png", "taken_at": taken.isoformat() if taken else "",
           "lat": "" if lat is None else f"{lat:.6f}", "lon": "" if lon is None else f"{lon:.6f}",
           "rows": rows, "cols": cols, "crack_ratio": round(ratio, 4),
           "mlit_level": mlit_level(ratio) if paved.any() else "",
           "source": f"synthetic:{view}{HOLDOUT if holdout else ''}"}
    return row, np.column_stack([labels, paved]).astype(np.int8), jpeg, buf.getvalue()


def scene(rng: np.random.Generator, code: str, damage_share: float,
          ) -> tuple[np.ndarray, np.ndarray]:
    """Road-plane RGB float32 (h, w, 3) and damage bit mask uint8 (h, w)."""
    w, h = CANVAS
    rgb = R.asphalt(rng, (h, w))
    mask = np.zeros((h, w), np.uint8)
    for draw, p in ((R.markings, 0.55), (R.patch, 0.25), (R.manhole, 0.15), (R.joint, 0.25),
                    (R.sealed_crack, 0.3)):
        if rng.random() < p:
            draw(rng, rgb)
    if rng.random() < 0.3:
        R.stain(rng, rgb, wet=False)
    if rng.random() < 0.2:
        R.stain(rng, rgb, wet=True)
    if rng.random() < damage_share:
        damage(rng, rgb, mask, code in SNOW_BELT)
    if rng.random() < 0.2:
        R.leaves(rng, rgb)
    for _ in range(int(rng.choice([0, 1, 2], p=[0.4, 0.45, 0.15]))):
        R.cast_shadows(rng, rgb)
    R.lighting(rng, rgb)
    return rgb, mask


def damage(rng: np.random.Generator, rgb: np.ndarray, mask: np.ndarray, snow: bool) -> None:
    """1 to 8 damage elements; severity varies so all three MLIT levels occur."""
    weights = np.array([0.3, 0.3, 0.25, 0.15]) if snow else np.array([0.4, 0.2, 0.3, 0.1])
    for _ in range(int(rng.choice([1, 2, 3, 5, 8], p=[0.3, 0.25, 0.2, 0.15, 0.1]))):
        cls = rng.choice(["D00", "D10", "D20", "D40"], p=weights)
        if cls in ("D00", "D10"):
            R.linear_crack(rng, rgb, mask, cls)
        elif cls == "D20":
            R.alligator(rng, rgb, mask, None)
        else:
            centre = R.pothole(rng, rgb, mask)
            if rng.random() < 0.3:
                R.alligator(rng, rgb, mask, centre)


def perspective(rng: np.random.Generator) -> tuple[float, ...]:
    """Pillow PERSPECTIVE coefficients mapping photo pixels to the road plane: a car-mounted
    phone sees the far road (top) wide and compressed; a hand-held one looks nearly straight
    down."""
    w, h = CANVAS
    near = rng.uniform(0.4, 0.75) if rng.random() < 0.6 else rng.uniform(0.85, 1.0)
    cx = w / 2 + rng.normal(0, 40)
    skew = np.abs(rng.normal(0, 25, 4))  # inward only: the view never leaves the road plane
    src: list[tuple[float, float]] = [(0, 0), (PHOTO[0], 0), (PHOTO[0], PHOTO[1]), (0, PHOTO[1])]
    dst = [(skew[0], skew[1]), (w - skew[2], skew[3]), (cx + near * w / 2, h),
           (cx - near * w / 2, h)]
    return S.homography(src, dst)


def close_up(rng: np.random.Generator, rgb: np.ndarray, mask: np.ndarray,
             ) -> tuple[np.ndarray, np.ndarray]:
    """The road plane as a close-up fills the photo: (float32 RGB (h, w, 3), damage bits
    uint8 (h, w)) in the photo's upright view."""
    coeffs = perspective(rng)
    img = Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
    img = img.transform(PHOTO, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    bits = Image.fromarray(mask, "L").transform(PHOTO, Image.Transform.PERSPECTIVE, coeffs,
                                                Image.Resampling.NEAREST)
    return np.asarray(img, np.float32) / 255.0, np.asarray(bits, np.uint8)


def effects(rng: np.random.Generator, rgb: np.ndarray) -> Image.Image:
    """What the phone does to the light: exposure, gamma, focus or motion blur, vignette and
    sensor grain, on float32 RGB (h, w, 3) in 0..1; an 8-bit RGB image of the same size."""
    exposure = 2 ** rng.normal(0, 0.3)
    gamma = rng.uniform(0.85, 1.15)
    lin = np.clip(rgb * exposure, 0, 1) ** gamma
    img = Image.fromarray((lin * 255 + 0.5).astype(np.uint8), "RGB")
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.1)))
    if rng.random() < 0.1:  # shaky hand or moving car: a short motion blur along travel
        img = img.filter(ImageFilter.Kernel((3, 3), [0, 1, 0, 0, 1, 0, 0, 1, 0], 3))
    arr = np.asarray(img, np.float32)
    h, w = arr.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    vignette = 1 - rng.uniform(0, 0.25) * (((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * 2)
    sigma = rng.uniform(1.0, 7.0)
    grain = sigma * (rng.standard_normal(arr.shape[:2], np.float32)[..., None]
                     + rng.standard_normal(arr.shape, np.float32) / 3)
    out = np.clip(arr * vignette[..., None] + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(out, "RGB")


def camera(rng: np.random.Generator, rgb: np.ndarray, mask: np.ndarray,
           ) -> tuple[Image.Image, Image.Image]:
    """A close-up photo as the phone records it, and the damage mask in the same view."""
    pixels, bits = close_up(rng, rgb, mask)
    return effects(rng, pixels), Image.fromarray(bits, "L")


def place_and_time(rng: np.random.Generator, code: str,
                   ) -> tuple[float | None, float | None, datetime | None]:
    """GPS near the tenant's city (missing on 5% of photos) and a daytime patrol timestamp."""
    h = zlib.crc32(code.encode())
    lat0, lon0 = CITY_CENTRES.get(code, (34.0 + (h % 900) / 100, 131.0 + (h // 900 % 1000) / 100))
    taken = datetime(2025, 4, 1, 8) + timedelta(days=int(rng.integers(0, 240)),
                                                 minutes=int(rng.integers(0, 9 * 60)))
    if rng.random() < 0.05:
        return None, None, taken
    return lat0 + rng.normal(0, 0.03), lon0 + rng.normal(0, 0.04), taken


def _dms(value: float) -> tuple:
    from PIL.TiffImagePlugin import IFDRational

    deg = int(value)
    minutes = int((value - deg) * 60)
    seconds = round(((value - deg) * 60 - minutes) * 60 * 1000)
    return (IFDRational(deg, 1), IFDRational(minutes, 1), IFDRational(seconds, 1000))


def encode_jpeg(img: Image.Image, quality: int, lat: float | None, lon: float | None,
                taken: datetime | None, orientation: int) -> bytes:
    """JPEG bytes with EXIF orientation, capture time and GPS position."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "kyodo"
    exif[0x0110] = "synthetic road camera"
    if taken is not None:
        exif[0x0132] = taken.strftime("%Y:%m:%d %H:%M:%S")
        exif.get_ifd(0x8769)[36867] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if lat is not None and lon is not None:
        gps = exif.get_ifd(0x8825)
        gps.update({1: "N" if lat >= 0 else "S", 2: _dms(abs(lat)),
                    3: "E" if lon >= 0 else "W", 4: _dms(abs(lon))})
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, exif=exif.tobytes(), optimize=False)
    return buf.getvalue()
