"""Procedural pavement rendering on a top-down road plane (float32 RGB in 0..1, y = travel).

Everything here draws into the canvas and, for damage, into the class bit mask; the generator
(generate.py) decides what a photo contains and applies the camera.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from models.road_damage.labels import MASK_BITS

Rng = np.random.Generator


def noise(rng: Rng, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Smooth value noise in about -1..1 with features of `scale` pixels, float32 (h, w)."""
    h, w = shape
    small = rng.standard_normal((max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)))
    img = Image.fromarray(small.astype(np.float32), "F").resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(img, np.float32) / 1.2


def blur(a: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of a float (h, w) map (through 8-bit Pillow: fast, and ample for looks)."""
    if radius <= 0:
        return a
    lo, hi = float(a.min()), float(a.max())
    span = hi - lo or 1.0
    img = Image.fromarray(((a - lo) * (255 / span) + 0.5).astype(np.uint8), "L")
    return np.asarray(img.filter(ImageFilter.GaussianBlur(radius)), np.float32) * (
        span / 255) + lo


def shade(rgb: np.ndarray, alpha: np.ndarray, colour: tuple[float, float, float] | float,
          ) -> None:
    """Blend `colour` over rgb in place where alpha (h, w, 0..1) says."""
    a = alpha[..., None]
    rgb *= 1 - a
    rgb += a * np.asarray(colour, np.float32)


def darken(rgb: np.ndarray, alpha: np.ndarray, factor: float) -> None:
    """Multiply rgb by `factor` where alpha says (shadows, wet, stains)."""
    rgb *= (1 - alpha * (1 - factor))[..., None]


def canvas(size: tuple[int, int]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """An empty 'L' drawing surface of (w, h)."""
    img = Image.new("L", size, 0)
    return img, ImageDraw.Draw(img)


def as_alpha(img: Image.Image, radius: float = 0.0) -> np.ndarray:
    """An 'L' drawing as a float 0..1 map, optionally softened."""
    if radius:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(img, np.float32) / 255.0


# -- surface ------------------------------------------------------------------------------------


def specks(rng: Rng, shape: tuple[int, int], density: float, scale: float) -> np.ndarray:
    """Random stones about `scale` pixels across covering `density` of the area, float32
    (h, w) in 0..1 (drawn on a coarser grid and enlarged, so they stay round and soft)."""
    h, w = shape
    small = (rng.random((max(2, int(h / scale)), max(2, int(w / scale)))) < density)
    img = Image.fromarray((small * 255).astype(np.uint8), "L").resize(
        (w, h), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(scale / 4))
    return np.asarray(img, np.float32) / 255.0


def asphalt(rng: Rng, shape: tuple[int, int]) -> np.ndarray:
    """Asphalt: grey with colour cast, patchy wear, aggregate stones and fine grain."""
    w = shape[1]
    grey = rng.uniform(0.30, 0.55)
    tint = np.array([1.0, 1.0, 1.0]) + rng.normal(0, 0.025, 3) + (
        np.array([0.04, 0.015, -0.03]) if rng.random() < 0.5 else 0)  # aged asphalt is brownish
    tone = 1 + 0.12 * noise(rng, shape, rng.uniform(120, 300)) + 0.05 * noise(rng, shape, 40)
    grain = blur(rng.standard_normal(shape).astype(np.float32), 0.6)
    light = blur((rng.random(shape) < rng.uniform(0.01, 0.04)).astype(np.float32), 0.8)
    dark = blur((rng.random(shape) < rng.uniform(0.01, 0.03)).astype(np.float32), 0.9)
    stones = 1 + rng.uniform(0.04, 0.10) * grain + rng.uniform(0.8, 1.6) * light - 1.0 * dark
    if rng.random() < 0.6:  # coarse aggregate as phones see it up close: stones of 2-5 px
        scale = rng.uniform(1.8, 4.5)
        stones += rng.uniform(0.3, 0.8) * specks(rng, shape, rng.uniform(0.03, 0.09), scale)
        stones -= rng.uniform(0.3, 0.7) * specks(rng, shape, rng.uniform(0.02, 0.06), scale)
    # wheel paths polish the surface: slightly lighter bands along the direction of travel
    x = np.arange(w, dtype=np.float32)
    paths = sum(np.exp(-((x - c * w) / (0.07 * w)) ** 2) for c in (0.3, 0.7))
    wear = 1 + rng.uniform(0, 0.06) * paths[None, :]
    value = grey * tone * stones * wear
    return np.clip(value[..., None] * tint[None, None, :], 0, 1).astype(np.float32)


def worn(rng: Rng, alpha: np.ndarray, amount: float) -> np.ndarray:
    """Paint alpha with worn-away spots (amount 0 = fresh)."""
    holes = noise(rng, alpha.shape, 12) + 0.6 * noise(rng, alpha.shape, 4)
    return alpha * np.clip(1.2 - amount * (1.5 + holes), 0, 1)


def markings(rng: Rng, rgb: np.ndarray) -> None:
    """Lane lines (solid or dashed, white or yellow), stop lines and crosswalk bars."""
    h, w = rgb.shape[:2]
    img, draw = canvas((w, h))
    kind = rng.choice(["centre", "edge", "crosswalk", "stop"], p=[0.4, 0.25, 0.2, 0.15])
    if kind in ("centre", "edge"):
        x = rng.uniform(0.1, 0.9) * w
        lw = rng.uniform(10, 22)
        dash, gap = (h + 1, 0) if rng.random() < 0.5 else (rng.uniform(150, 300),
                                                             rng.uniform(100, 250))
        y = -rng.uniform(0, dash + gap)
        while y < h:
            draw.rectangle([x - lw / 2, y, x + lw / 2, y + dash], fill=255)
            y += dash + gap
    elif kind == "crosswalk":
        y0, y1 = sorted(rng.uniform(0, h, 2))
        y1 = max(y1, y0 + 200)
        bar, x = rng.uniform(45, 70), rng.uniform(-40, 40)
        while x < w:
            draw.rectangle([x, y0, x + bar, y1], fill=255)
            x += 2 * bar
    else:
        y, lw = rng.uniform(0.1, 0.9) * h, rng.uniform(25, 45)
        draw.rectangle([0, y, w, y + lw], fill=255)
    colour = (0.88, 0.72, 0.2) if rng.random() < 0.25 else (0.9, 0.9, 0.88)
    shade(rgb, worn(rng, as_alpha(img, 0.8), rng.uniform(0, 0.7)) * 0.92, colour)


def manhole(rng: Rng, rgb: np.ndarray) -> None:
    """A cast-iron cover: rim, dark plate with a raised pattern, a little rust."""
    h, w = rgb.shape[:2]
    cx, cy, r = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h, rng.uniform(35, 70)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot(xx - cx, yy - cy)
    plate = np.clip(r - d, 0, 1)
    pattern = 0.5 + 0.5 * np.sign(np.sin((xx - cx) / rng.uniform(4, 7))
                                  * np.sin((yy - cy) / rng.uniform(4, 7)))
    rings = (np.abs(d - r * rng.uniform(0.5, 0.8)) < 2).astype(np.float32)
    base = rng.uniform(0.18, 0.3)
    value = base * (0.85 + 0.3 * pattern + 0.4 * rings)
    rust = np.array([1.15, 0.9, 0.7]) if rng.random() < 0.4 else np.ones(3)
    colour = np.clip(value[..., None] * rust, 0, 1)
    a = plate[..., None]
    rgb *= 1 - a
    rgb += a * colour
    darken(rgb, np.clip(1 - np.abs(d - r) / 2.5, 0, 1), 0.5)  # gap between rim and asphalt


def patch(rng: Rng, rgb: np.ndarray) -> None:
    """A repaired rectangle of newer, darker asphalt with a sealed seam along its edge."""
    h, w = rgb.shape[:2]
    x0, y0 = rng.uniform(0, 0.8) * w, rng.uniform(0, 0.8) * h
    x1, y1 = x0 + rng.uniform(80, 350), y0 + rng.uniform(80, 350)
    img, draw = canvas((w, h))
    jitter = rng.normal(0, 4, 8)
    pts = [(x0 + jitter[0], y0 + jitter[1]), (x1 + jitter[2], y0 + jitter[3]),
           (x1 + jitter[4], y1 + jitter[5]), (x0 + jitter[6], y1 + jitter[7])]
    draw.polygon(pts, fill=255)
    fresh = asphalt(rng, (h, w)) * rng.uniform(0.6, 0.85)
    a = as_alpha(img, 0.7)[..., None]
    rgb *= 1 - a
    rgb += a * fresh
    seam, sdraw = canvas((w, h))
    sdraw.line([*pts, pts[0]], fill=255, width=int(rng.integers(3, 8)))
    shade(rgb, as_alpha(seam, 0.8) * rng.uniform(0.5, 0.9), 0.08)


def stain(rng: Rng, rgb: np.ndarray, wet: bool = False) -> None:
    """An oil stain (brownish, dark) or a wet patch (dark, smooth, a faint sheen)."""
    h, w = rgb.shape[:2]
    cx, cy = rng.uniform(0, 1) * w, rng.uniform(0, 1) * h
    rx, ry = rng.uniform(30, 180), rng.uniform(20, 140)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ell = 1 - ((xx - cx) / rx) ** 2 - ((yy - cy) / ry) ** 2
    blob = np.clip((ell + 0.35 * noise(rng, (h, w), 25)) * 3, 0, 1)
    if wet:
        darken(rgb, blob, rng.uniform(0.55, 0.75))
        rgb += (blob * rng.uniform(0.0, 0.06) * (0.5 + 0.5 * noise(rng, (h, w), 60)))[..., None]
    else:
        shade(rgb, blob * rng.uniform(0.3, 0.6), (0.1, 0.08, 0.06))


def leaves(rng: Rng, rgb: np.ndarray) -> None:
    """A scatter of fallen leaves (brown, orange, yellow, green), each a small rotated ellipse."""
    h, w = rgb.shape[:2]
    colours = [(0.45, 0.28, 0.12), (0.75, 0.42, 0.1), (0.8, 0.7, 0.2), (0.3, 0.45, 0.15)]
    for colour in colours:
        img, draw = canvas((w, h))
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        for _ in range(int(rng.integers(3, 15))):
            x, y = cx + rng.normal(0, 120), cy + rng.normal(0, 120)
            length, width, ang = rng.uniform(8, 22), rng.uniform(4, 10), rng.uniform(0, np.pi)
            t = np.linspace(0, 2 * np.pi, 12)
            px = x + length * np.cos(t) * np.cos(ang) - width * np.sin(t) * np.sin(ang)
            py = y + length * np.cos(t) * np.sin(ang) + width * np.sin(t) * np.cos(ang)
            draw.polygon(list(zip(px.tolist(), py.tolist(), strict=True)), fill=255)
        shade(rgb, as_alpha(img, 0.6) * rng.uniform(0.7, 1.0), colour)


# -- damage (drawn into the mask too) -----------------------------------------------------------


def walk(rng: Rng, x: float, y: float, angle: float, length: float, wobble: float,
         ) -> list[tuple[float, float]]:
    """A crack's polyline: a random walk in 4 px steps whose heading drifts around `angle`."""
    pts, heading = [(x, y)], angle
    for _ in range(int(length / 4)):
        heading += rng.normal(0, wobble) + 0.15 * (angle - heading)
        x, y = x + 4 * np.cos(heading), y + 4 * np.sin(heading)
        pts.append((x, y))
    return pts


def crack_lines(rng: Rng, draw: ImageDraw.ImageDraw, pts: list[tuple[float, float]],
                width: float, branch_p: float, depth: int = 0) -> None:
    """Draw a polyline with width varying along it, and random thinner branches."""
    scale = width * np.exp(noise(rng, (1, len(pts) + 2), 6)[0, :len(pts)] * 0.35)
    for i in range(len(pts) - 1):
        draw.line([pts[i], pts[i + 1]], fill=255, width=max(1, round(scale[i])))
        if depth < 2 and rng.random() < branch_p:
            ang = np.arctan2(pts[i + 1][1] - pts[i][1], pts[i + 1][0] - pts[i][0])
            ang += rng.choice([-1, 1]) * rng.uniform(0.4, 1.1)
            child = walk(rng, *pts[i], ang, rng.uniform(20, 120), 0.25)
            crack_lines(rng, draw, child, max(1.0, width * 0.6), branch_p * 0.5, depth + 1)


def apply_crack(rng: Rng, rgb: np.ndarray, mask: np.ndarray, img: Image.Image, cls: str,
                contrast: float) -> None:
    """Darken the canvas along the drawn crack and mark it in the mask."""
    hard = np.asarray(img) > 127
    alpha = as_alpha(img, 0.5) * contrast
    alpha += hard * contrast * 0.15  # the crack's depth is darker than its soft edge
    darken(rgb, np.clip(alpha, 0, 1), rng.uniform(0.15, 0.35))
    mask[hard] |= MASK_BITS[cls]


def linear_crack(rng: Rng, rgb: np.ndarray, mask: np.ndarray, cls: str) -> None:
    """D00 (along travel, often in a wheel path) or D10 (across), thin and branching."""
    h, w = rgb.shape[:2]
    img, draw = canvas((w, h))
    if cls == "D00":
        x = (rng.choice([0.3, 0.7, 0.5]) + rng.normal(0, 0.08)) * w
        y, angle, span = rng.uniform(-0.2, 0.6) * h, np.pi / 2, h
    else:
        x, y = rng.uniform(-0.2, 0.5) * w, rng.uniform(0.05, 0.95) * h
        angle, span = 0.0, w
    angle += rng.normal(0, 0.12)
    pts = walk(rng, x, y, angle, rng.uniform(0.35, 1.1) * span, rng.uniform(0.08, 0.25))
    crack_lines(rng, draw, pts, rng.uniform(1.2, 4.0), rng.uniform(0.0, 0.04))
    apply_crack(rng, rgb, mask, img, cls, rng.uniform(0.45, 0.95))


def alligator(rng: Rng, rgb: np.ndarray, mask: np.ndarray, around: tuple[float, float] | None,
              ) -> None:
    """D20: a network of small polygonal blocks over an irregular area, often in a wheel path."""
    h, w = rgb.shape[:2]
    cx, cy = around or ((rng.choice([0.3, 0.7]) + rng.normal(0, 0.08)) * w, rng.uniform(0, h))
    rx, ry = rng.uniform(70, 220), rng.uniform(90, 300)
    cell = rng.uniform(18, 40)
    nx, ny = int(2 * rx / cell) + 2, int(2 * ry / cell) + 2
    gx = cx - rx + cell * (np.arange(nx)[None, :] + rng.uniform(-0.3, 0.3, (ny, nx)))
    gy = cy - ry + cell * (np.arange(ny)[:, None] + rng.uniform(-0.3, 0.3, (ny, nx)))
    ragged = 1 + 0.3 * rng.standard_normal((ny, nx))
    inside = ((gx - cx) / rx) ** 2 + ((gy - cy) / ry) ** 2 < ragged
    img, draw = canvas((w, h))
    width = rng.uniform(1.2, 3.0)
    for j in range(ny):
        for i in range(nx):
            for dj, di in ((0, 1), (1, 0)):
                jj, ii = j + dj, i + di
                if jj < ny and ii < nx and inside[j, i] and inside[jj, ii] and rng.random() < 0.85:
                    a, b = (gx[j, i], gy[j, i]), (gx[jj, ii], gy[jj, ii])
                    mid = ((a[0] + b[0]) / 2 + rng.normal(0, cell * 0.12),
                           (a[1] + b[1]) / 2 + rng.normal(0, cell * 0.12))
                    lw = max(1, round(width + rng.normal(0, 0.5)))
                    draw.line([a, mid, b], fill=255, width=lw)
    # blocks loosen and settle: the area is a little darker between cracks as well
    area, adraw = canvas((w, h))
    adraw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    darken(rgb, as_alpha(area, 15) * rng.uniform(0.0, 0.5), 0.85)
    apply_crack(rng, rgb, mask, img, "D20", rng.uniform(0.5, 0.95))


def pothole(rng: Rng, rgb: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """D40: an irregular hole, shaded by depth against the light, with coarse stones and debris."""
    h, w = rgb.shape[:2]
    cx, cy, r = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h, rng.uniform(22, 75)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = np.arctan2(yy - cy, xx - cx)
    k = rng.normal(0, 1, 6)
    edge = r * (1 + 0.12 * (k[0] * np.sin(2 * theta + k[1]) + k[2] * np.sin(3 * theta + k[3])
                            + 0.5 * k[4] * np.sin(5 * theta + k[5])))
    d = np.hypot(xx - cx, yy - cy)
    hole = np.clip(edge - d, 0, 1)
    light = rng.uniform(0, 2 * np.pi)
    lx, ly = np.cos(light), np.sin(light)
    along = ((xx - cx) * lx + (yy - cy) * ly) / np.maximum(edge, 1)
    depth = np.clip(1 - d / np.maximum(edge, 1), 0, 1)
    floor = rng.uniform(0.18, 0.32) * (1 + 0.5 * along) * (0.8 + 0.2 * depth)
    stones = blur((rng.random((h, w)) < 0.08).astype(np.float32), 1.2)
    floor = floor * (1 + 1.5 * stones) + 0.03 * noise(rng, (h, w), 6)
    if rng.random() < 0.25:  # rain water in the hole
        floor = floor * 0.6 + 0.05
    a = hole[..., None]
    rgb *= 1 - a
    rgb += a * np.clip(floor, 0, 1)[..., None] * np.array([1.0, 0.97, 0.92], np.float32)
    rim = np.clip(1 - np.abs(d - edge) / 3, 0, 1)
    rgb += (rim * 0.15 * np.clip(-along, 0, 1))[..., None]  # lit far rim
    debris = (rng.random((h, w)) < 0.01) & (d < edge * 1.6) & (d > edge)
    rgb[debris] = rgb[debris] * 0.5
    mask[hole > 0.5] |= MASK_BITS["D40"]
    return cx, cy


def sealed_crack(rng: Rng, rgb: np.ndarray) -> None:
    """A crack filled with sealant: a wide, even, near-black band (not damage)."""
    h, w = rgb.shape[:2]
    img, draw = canvas((w, h))
    vertical = rng.random() < 0.5
    x, y = (rng.uniform(0, w), rng.uniform(-0.2, 0.5) * h) if vertical else (
        rng.uniform(-0.2, 0.5) * w, rng.uniform(0, h))
    pts = walk(rng, x, y, np.pi / 2 if vertical else 0.0, rng.uniform(200, 900), 0.15)
    draw.line(pts, fill=255, width=int(rng.integers(6, 14)), joint="curve")
    shade(rgb, as_alpha(img, 1.0) * rng.uniform(0.7, 0.95), 0.07)


def joint(rng: Rng, rgb: np.ndarray) -> None:
    """A straight construction joint across or along the lane: narrow and even (not damage)."""
    h, w = rgb.shape[:2]
    img, draw = canvas((w, h))
    if rng.random() < 0.5:
        x = rng.uniform(0, w)
        draw.line([(x, 0), (x + rng.normal(0, 15), h)], fill=255, width=int(rng.integers(3, 6)))
    else:
        y = rng.uniform(0, h)
        draw.line([(0, y), (w, y + rng.normal(0, 15))], fill=255, width=int(rng.integers(3, 6)))
    shade(rgb, as_alpha(img, 0.7) * rng.uniform(0.5, 0.8), 0.1)


# -- light --------------------------------------------------------------------------------------


def cast_shadows(rng: Rng, rgb: np.ndarray) -> None:
    """Shadows of a pole, wires, a tree or a car, with soft edges."""
    h, w = rgb.shape[:2]
    kind = rng.choice(["pole", "wires", "tree", "car"])
    img, draw = canvas((w, h))
    if kind in ("pole", "wires"):
        n = 1 if kind == "pole" else int(rng.integers(1, 4))
        x0, ang = rng.uniform(0, w), rng.uniform(-0.9, 0.9)
        for i in range(n):
            off = i * rng.uniform(10, 30)
            lw = int(rng.integers(10, 28)) if kind == "pole" else int(rng.integers(1, 3))
            draw.line([(x0 + off, -10), (x0 + off + np.tan(ang) * h, h + 10)], fill=255,
                      width=lw)
        alpha = as_alpha(img, rng.uniform(1.5, 4.0) if kind == "pole" else 1.2)
        darken(rgb, alpha, rng.uniform(0.45, 0.7) if kind == "pole" else rng.uniform(0.75, 0.9))
    elif kind == "tree":
        blob = noise(rng, (h, w), rng.uniform(15, 40)) + 0.8 * noise(rng, (h, w), 150)
        region = np.clip(blob - rng.uniform(-0.3, 0.5), 0, 1) * 4
        darken(rgb, blur(np.clip(region, 0, 1), 2.5), rng.uniform(0.45, 0.65))
    else:
        side = rng.integers(4)
        box = [[-50, -50, w * 0.3, h + 50], [w * 0.7, -50, w + 50, h + 50],
               [-50, -50, w + 50, h * 0.25], [-50, h * 0.75, w + 50, h + 50]][side]
        draw.rounded_rectangle(box, radius=60, fill=255)
        darken(rgb, as_alpha(img, 12), rng.uniform(0.4, 0.55))


def lighting(rng: Rng, rgb: np.ndarray) -> None:
    """Uneven daylight: a soft gradient across the view."""
    h, w = rgb.shape[:2]
    gx, gy = rng.normal(0, 0.12, 2)
    ramp = 1 + gx * np.linspace(-1, 1, w)[None, :] + gy * np.linspace(-1, 1, h)[:, None]
    rgb *= ramp[..., None].astype(np.float32)
