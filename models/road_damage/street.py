"""Synthetic photos as a patrol car's phone or a walking inspector sees the road: the rendered
road plane (render.py) in the lower part of the frame with perspective, and around and over it
what is not road surface: sky, buildings, trees and hedges, kerbs and sidewalks, poles, parked
and moving vehicles, people, and from a dashcam the car's own bonnet, dashboard and wiper. Also
photos with no road at all (a wall, a room, sky and trees, vegetation).

Every function returns the photo as float32 RGB (h, w, 3) in 0..1 and a boolean pixel map of
what is road surface (h, w), so each tile gets a 'pavement' truth (labels.pavement_tiles).
Sizes are in photo pixels; the camera effects (exposure, blur, grain) come after, in
generate.camera.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from models.road_damage.render import Rng, as_alpha, noise, specks

Quad = list[tuple[float, float]]  # top-left, top-right, bottom-right, bottom-left


def homography(src: Quad, dst: Quad) -> tuple[float, ...]:
    """Pillow PERSPECTIVE coefficients mapping the points `src` (output image) to `dst` (input
    image): the 8 unknowns of the projective map through four point pairs."""
    A, b = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        A.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        A.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b += [u, v]
    return tuple(np.linalg.solve(np.array(A, float), np.array(b, float)).tolist())


def _u8(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")


def warp(texture: np.ndarray, quad: Quad, size: tuple[int, int],
         ) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """A texture (th, tw, 3) laid onto `quad` of an image of `size` (w, h) with perspective:
    (rgb float32 (h, w, 3), coverage alpha (h, w) in 0..1, the PERSPECTIVE coefficients)."""
    th, tw = texture.shape[:2]
    coeffs = homography(quad, [(0, 0), (tw, 0), (tw, th), (0, th)])
    img = _u8(texture).transform(size, Image.Transform.PERSPECTIVE, coeffs,
                                 Image.Resampling.BILINEAR)
    cover = Image.new("L", (tw, th), 255).transform(size, Image.Transform.PERSPECTIVE, coeffs,
                                                    Image.Resampling.BILINEAR)
    return (np.asarray(img, np.float32) / 255.0, np.asarray(cover, np.float32) / 255.0, coeffs)


def put(rgb: np.ndarray, alpha: np.ndarray, colour: np.ndarray | tuple | float) -> None:
    """Blend colour (a constant or an image like rgb) over rgb in place where alpha says."""
    a = alpha[..., None]
    rgb *= 1 - a
    rgb += a * np.asarray(colour, np.float32)


def draw_alpha(size: tuple[int, int], paint: object, radius: float = 0.0) -> np.ndarray:
    """Alpha (h, w) of whatever `paint(draw)` draws in white on black."""
    img = Image.new("L", size, 0)
    paint(ImageDraw.Draw(img))  # type: ignore[operator]
    return as_alpha(img, radius)


def textured(rng: Rng, shape: tuple[int, int], colour: np.ndarray, amount: float,
             scale: float) -> np.ndarray:
    """A flat colour with mottling and grain, float32 (h, w, 3)."""
    tone = 1 + amount * noise(rng, shape, scale) + 0.5 * amount * noise(rng, shape, 3)
    return np.clip(tone[..., None] * colour[None, None, :], 0, 1).astype(np.float32)


# -- the things around the road ----------------------------------------------------------------


def sky(rng: Rng, shape: tuple[int, int]) -> np.ndarray:
    """Blue, hazy or overcast sky with soft clouds, lighter towards the horizon (bottom)."""
    h, w = shape
    top = rng.choice([np.array([0.35, 0.55, 0.85]), np.array([0.7, 0.75, 0.8]),
                      np.array([0.55, 0.68, 0.85])])
    low = np.minimum(top + rng.uniform(0.1, 0.3), 1.0)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    out = top * (1 - t) + low * t + np.zeros((1, w, 1), np.float32)
    clouds = np.clip(noise(rng, shape, rng.uniform(40, 120)) * rng.uniform(0.5, 1.5), 0, 1)
    put(out, clouds * rng.uniform(0.3, 0.9), np.array([0.93, 0.93, 0.95]))
    return out.astype(np.float32)


def facade(rng: Rng, shape: tuple[int, int]) -> np.ndarray:
    """A building front: painted, tiled or concrete wall with rows of windows, maybe a sign."""
    h, w = shape
    colours = [(0.85, 0.82, 0.75), (0.7, 0.7, 0.7), (0.55, 0.45, 0.38), (0.9, 0.9, 0.88),
               (0.6, 0.55, 0.5), (0.75, 0.68, 0.55)]
    out = textured(rng, shape, np.array(colours[rng.integers(len(colours))]),
                   rng.uniform(0.03, 0.1), rng.uniform(10, 40))
    img = _u8(out)
    draw = ImageDraw.Draw(img)
    fy, fx = rng.uniform(0.12, 0.3) * h, rng.uniform(0.1, 0.25) * w
    glass = tuple(int(v) for v in rng.uniform([30, 40, 50], [110, 130, 150]))
    for y in np.arange(rng.uniform(0.02, 0.1) * h, h - fy * 0.5, fy):
        for x in np.arange(rng.uniform(0.02, 0.1) * w, w - fx * 0.5, fx):
            draw.rectangle([x, y, x + fx * 0.6, y + fy * 0.55], fill=glass,
                           outline=(200, 200, 200))
    if rng.random() < 0.4:  # a shop sign
        y = rng.uniform(0.5, 0.8) * h
        draw.rectangle([0, y, w, y + 0.08 * h], fill=tuple(int(v) for v in
                                                            rng.integers(20, 240, 3)))
    return np.asarray(img, np.float32) / 255.0


def sidewalk(rng: Rng, shape: tuple[int, int]) -> np.ndarray:
    """What lies beside the carriageway, as a top-down texture: concrete slabs, interlocking
    pavers, grass verge or a gravel shoulder."""
    h, w = shape
    kind = rng.choice(["slabs", "pavers", "grass", "gravel"], p=[0.4, 0.3, 0.2, 0.1])
    if kind == "grass":
        out = textured(rng, shape, np.array([0.3, 0.45, 0.18]), 0.25, 6)
        out *= (1 + 0.4 * specks(rng, shape, 0.1, 2.0))[..., None]
        return np.clip(out, 0, 1)
    if kind == "gravel":
        out = textured(rng, shape, np.array([0.55, 0.52, 0.48]), 0.1, 20)
        out *= (1 + 0.6 * specks(rng, shape, 0.25, 3.0) - 0.4 * specks(rng, shape, 0.2, 3.0)
                )[..., None]
        return np.clip(out, 0, 1)
    base = np.array([0.65, 0.64, 0.6]) if kind == "slabs" else np.array(
        [rng.uniform(0.45, 0.7), rng.uniform(0.3, 0.45), rng.uniform(0.25, 0.4)])
    out = textured(rng, shape, base, 0.08, 30)
    step = rng.uniform(40, 90) if kind == "slabs" else rng.uniform(18, 30)
    lines = draw_alpha((w, h), lambda d: [
        *(d.line([(0, y), (w, y)], fill=255, width=2) for y in np.arange(0, h, step)),
        *(d.line([(x, 0), (x, h)], fill=255, width=2) for x in np.arange(0, w, step * 1.5))],
        0.6)
    put(out, lines * 0.6, base * 0.55)
    return out


def car(rng: Rng, draw: ImageDraw.ImageDraw, mask: ImageDraw.ImageDraw, cx: float,
        bottom: float, width: float, rear: bool = True) -> None:
    """A car or van seen from behind (or the side when `rear` is False), standing on the road at
    (cx, bottom); drawn in colour and into the occlusion mask."""
    hgt = width * (rng.uniform(0.7, 1.05) if rear else rng.uniform(0.4, 0.55))
    if not rear:
        width *= rng.uniform(2.0, 2.6)
    x0, y0, x1, y1 = cx - width / 2, bottom - hgt, cx + width / 2, bottom
    body = tuple(int(v) for v in rng.choice([(235, 235, 235), (180, 182, 185), (25, 25, 30),
                                             (160, 30, 30), (30, 60, 140), (200, 190, 160)]))
    r = max(2, int(width * 0.08))
    draw.rounded_rectangle([x0, y0 + hgt * 0.1, x1, y1 - hgt * 0.12], r, fill=body)
    draw.rounded_rectangle([x0 + width * 0.12, y0, x1 - width * 0.12, y0 + hgt * 0.4], r,
                           fill=body)
    draw.rectangle([x0 + width * 0.18, y0 + hgt * 0.06, x1 - width * 0.18, y0 + hgt * 0.36],
                   fill=(40, 50, 60))  # window
    tyre = hgt * 0.2
    for tx in ((x0 + width * 0.05, x0 + width * 0.25), (x1 - width * 0.25, x1 - width * 0.05)):
        draw.rectangle([tx[0], y1 - tyre, tx[1], y1], fill=(15, 15, 15))
    if rear:
        for lx in (x0 + width * 0.04, x1 - width * 0.16):
            draw.rectangle([lx, y0 + hgt * 0.45, lx + width * 0.12, y0 + hgt * 0.55],
                           fill=(200, 20, 20))
        draw.rectangle([cx - width * 0.12, y0 + hgt * 0.6, cx + width * 0.12, y0 + hgt * 0.72],
                       fill=(240, 240, 230))  # number plate
    mask.rounded_rectangle([x0, y0, x1, y1], r, fill=255)


def person(rng: Rng, draw: ImageDraw.ImageDraw, mask: ImageDraw.ImageDraw, cx: float,
           bottom: float, height: float) -> None:
    """A standing or walking person (head, torso, legs) with feet at (cx, bottom)."""
    w = height * 0.28
    shirt = tuple(int(v) for v in rng.integers(20, 240, 3))
    trousers = tuple(int(v) for v in rng.integers(10, 120, 3))
    skin = tuple(int(v) for v in rng.uniform([150, 110, 90], [230, 190, 160]))
    top = bottom - height
    head = height * 0.13
    for d, fill in ((draw, None), (mask, 255)):
        d.ellipse([cx - head / 2, top, cx + head / 2, top + head], fill=fill or skin)
        d.rounded_rectangle([cx - w / 2, top + head, cx + w / 2, top + height * 0.55],
                            int(w * 0.2), fill=fill or shirt)
        stride = rng.uniform(0, w * 0.4)
        for sx in (-1, 1):
            d.line([(cx + sx * w * 0.22, top + height * 0.55),
                    (cx + sx * (w * 0.22 + stride), bottom)], fill=fill or trousers,
                   width=max(1, int(w * 0.35)))


def pole(rng: Rng, draw: ImageDraw.ImageDraw, mask: ImageDraw.ImageDraw, x: float,
         bottom: float, width: float) -> None:
    """A utility pole or sign post from the ground at (x, bottom) to beyond the top."""
    colour = tuple(int(v) for v in rng.choice([(150, 150, 145), (110, 95, 80), (200, 200, 200)]))
    for d, fill in ((draw, colour), (mask, 255)):
        d.rectangle([x - width / 2, -10, x + width / 2, bottom], fill=fill)


def tree(rng: Rng, rgb: np.ndarray, cover: np.ndarray, x: float, bottom: float, size: float,
         ) -> None:
    """A street tree: trunk and a leafy crown, drawn into rgb and the occlusion map."""
    h, w = cover.shape
    crown_y = bottom - size * rng.uniform(0.6, 1.0)
    trunk = draw_alpha((w, h), lambda d: d.rectangle(
        [x - size * 0.05, crown_y, x + size * 0.05, bottom], fill=255))
    put(rgb, trunk, np.array([0.3, 0.22, 0.15]))
    np.maximum(cover, trunk, out=cover)
    blob = draw_alpha((w, h), lambda d: d.ellipse(
        [x - size * 0.5, crown_y - size * 0.7, x + size * 0.5, crown_y + size * 0.15],
        fill=255), size * 0.08)
    leafy = np.clip(blob * (1.2 + 0.8 * noise(rng, (h, w), max(3.0, size / 10))), 0, 1)
    green = textured(rng, (h, w), np.array([rng.uniform(0.15, 0.35), rng.uniform(0.3, 0.5),
                                            rng.uniform(0.1, 0.2)]), 0.35, 4)
    put(rgb, leafy, green)
    np.maximum(cover, leafy, out=cover)


def hedge(rng: Rng, rgb: np.ndarray, cover: np.ndarray, region: np.ndarray) -> None:
    """Bushes or a hedge filling `region` (alpha, h x w), ragged at the top."""
    h, w = cover.shape
    ragged = np.clip(region * (1.3 + noise(rng, (h, w), 8)), 0, 1)
    put(rgb, ragged, textured(rng, (h, w), np.array([0.2, 0.38, 0.15]), 0.4, 3))
    np.maximum(cover, ragged, out=cover)


# -- whole views -------------------------------------------------------------------------------


def street(rng: Rng, road: np.ndarray, damage: np.ndarray, size: tuple[int, int],
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A street photo around the rendered road plane `road` (float32 (ph, pw, 3)) with its damage
    bit mask (uint8 (ph, pw)): (rgb float32 (h, w, 3), road surface bool (h, w), damage bits
    uint8 (h, w), visible road only). A dashcam (60%) sees the horizon near the middle and the
    car's own bonnet, dashboard or wiper; a phone at chest height sees it near the top."""
    w, h = size
    dashcam = rng.random() < 0.6
    horizon = rng.uniform(0.3, 0.5) * h if dashcam else rng.uniform(-0.05, 0.3) * h
    vx = rng.uniform(0.35, 0.65) * w
    depth = h - horizon
    # the road's edges meet at the vanishing point; the plane ends a little below the horizon
    far = horizon + rng.uniform(0.04, 0.15) * depth
    left, right = vx - rng.uniform(0.35, 1.3) * w, vx + rng.uniform(0.35, 1.3) * w

    def edge(x_bottom: float, y: float) -> float:
        return vx + (x_bottom - vx) * (y - horizon) / depth

    bottom = h * 1.02
    quad = [(edge(left, far), far), (edge(right, far), far), (edge(right, bottom), bottom),
            (edge(left, bottom), bottom)]
    rgb = np.zeros((h, w, 3), np.float32)
    ys = np.arange(h)[:, None] + np.zeros((1, w))
    above = ys < max(horizon, 0)
    if above.any():
        put(rgb, above.astype(np.float32), sky(rng, (h, w)))
    # the ground beyond the carriageway: sidewalk or verge, seen in the same perspective
    ground_quad = [(edge(vx - 6 * w, far), far), (edge(vx + 6 * w, far), far),
                   (edge(vx + 6 * w, bottom), bottom), (edge(vx - 6 * w, bottom), bottom)]
    side, cover_side, _ = warp(sidewalk(rng, (300, 1200)), ground_quad, size)
    put(rgb, cover_side, side)
    if horizon > 0:  # far-off ground between the horizon and the end of the plane: grey haze
        band = ((ys >= horizon) & (ys < far)).astype(np.float32)
        put(rgb, band, np.array([0.55, 0.56, 0.56]) * rng.uniform(0.8, 1.1))
    # the carriageway with kerbs along both edges
    surface, cover, coeffs = warp(road, quad, size)
    kerb = draw_alpha(size, lambda d: [d.line([(edge(x, far), far), (edge(x, bottom), bottom)],
                                              fill=255, width=int(rng.integers(6, 16)))
                                       for x in (left, right)], 1.0)
    put(rgb, cover, surface)
    occluded = np.zeros((h, w), np.float32)
    put(rgb, kerb * 0.9, np.array([0.72, 0.72, 0.7]))
    np.maximum(occluded, kerb, out=occluded)
    bits = np.asarray(Image.fromarray(damage, "L").transform(
        size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.NEAREST), np.uint8)
    # buildings and trees line the street beyond the sidewalks, nearer ones taller
    img = _u8(rgb)
    occ = Image.fromarray((occluded * 255).astype(np.uint8), "L")
    draw, mask = ImageDraw.Draw(img), ImageDraw.Draw(occ)
    if horizon > 0:
        for sgn in (-1, 1):
            x_far = edge(left if sgn < 0 else right, far) + sgn * rng.uniform(5, 40)
            x_near = x_far + sgn * rng.uniform(0.3, 0.8) * w
            top_far = horizon - rng.uniform(0.1, 0.4) * h
            top_near = top_far - rng.uniform(0.1, 0.6) * h
            base_near = horizon + rng.uniform(0.05, 0.3) * depth
            bq = [(x_near, top_near), (x_far, top_far), (x_far, far), (x_near, base_near)]
            if sgn > 0:
                bq = [bq[1], bq[0], bq[3], bq[2]]
            fac, fcover, _ = warp(facade(rng, (240, 320)), bq, size)
            arr = np.asarray(img, np.float32) / 255.0
            put(arr, fcover, fac)
            img = _u8(arr)
            occ = Image.fromarray(np.maximum(np.asarray(occ), (fcover * 255).astype(np.uint8)),
                                  "L")
            draw, mask = ImageDraw.Draw(img), ImageDraw.Draw(occ)
    # poles along the kerb, vehicles on the road, people on the sidewalks
    for _ in range(int(rng.integers(0, 4))):
        y = rng.uniform(far, h * 0.95)
        x = edge(left if rng.random() < 0.5 else right, y) + rng.normal(0, 10)
        pole(rng, draw, mask, x, y, max(2.0, 14 * (y - horizon) / depth))
    for _ in range(int(rng.choice([0, 1, 2, 3], p=[0.3, 0.35, 0.25, 0.1]))):
        y = rng.uniform(far + 0.05 * depth, h * 1.05)
        scale = (y - horizon) / depth
        lane = rng.uniform(0.15, 0.85)
        x = edge(left + lane * (right - left), y)
        car(rng, draw, mask, x, y, scale * rng.uniform(0.35, 0.6) * w, rear=rng.random() < 0.7)
    for _ in range(int(rng.choice([0, 1, 2, 3], p=[0.45, 0.3, 0.15, 0.1]))):
        y = rng.uniform(far, h * 1.1)
        scale = (y - horizon) / depth
        x = edge(left if rng.random() < 0.5 else right, y) + rng.choice([-1, 1]) * rng.uniform(
            0, 0.2) * w * scale
        if rng.random() < 0.2:  # someone crossing the road
            x = edge(left + rng.uniform(0.2, 0.8) * (right - left), y)
        person(rng, draw, mask, x, y, scale * rng.uniform(0.5, 0.9) * h)
    arr = np.asarray(img, np.float32) / 255.0
    occluded = np.asarray(occ, np.float32) / 255.0
    for _ in range(int(rng.choice([0, 1, 2], p=[0.5, 0.35, 0.15]))):
        y = rng.uniform(far, h)
        scale = (y - horizon) / depth
        x = edge(left if rng.random() < 0.5 else right, y) + rng.normal(0, 30) * scale
        tree(rng, arr, occluded, x, y, scale * rng.uniform(0.4, 0.9) * h)
    if rng.random() < 0.25:  # a hedge along one sidewalk
        sgn = rng.choice([-1, 1])
        x_b = (left if sgn < 0 else right) + sgn * rng.uniform(0.05, 0.3) * w
        hq = [(edge(x_b, far), far - 0.03 * depth), (edge(x_b, far), far),
              (edge(x_b, bottom), bottom), (edge(x_b, bottom), bottom - 0.25 * depth)]
        region = draw_alpha(size, lambda d: d.polygon(
            [*hq, (0 if sgn < 0 else w, bottom - 0.25 * depth), (0 if sgn < 0 else w, far)],
            fill=255))
        hedge(rng, arr, occluded, region)
    if dashcam:
        own_car(rng, arr, occluded)
    pavement = (cover > 0.5) & (occluded < 0.5)
    return arr, pavement, np.where(pavement, bits, 0).astype(np.uint8)


def own_car(rng: Rng, rgb: np.ndarray, occluded: np.ndarray) -> None:
    """What a dashcam sees of its own car: the bonnet's edge, the dashboard, a wiper blade."""
    h, w = occluded.shape
    if rng.random() < 0.55:  # bonnet: a shallow curve with a sky reflection
        top = h * rng.uniform(0.8, 0.95)
        bulge = h * rng.uniform(0.0, 0.05)
        xs = np.linspace(-1, 1, w)
        line = top - bulge * (1 - xs ** 2)
        region = (np.arange(h)[:, None] >= line[None, :]).astype(np.float32)
        colour = rng.choice([np.array([0.9, 0.9, 0.9]), np.array([0.1, 0.1, 0.12]),
                             np.array([0.6, 0.6, 0.62]), np.array([0.5, 0.1, 0.1])])
        shine = textured(rng, (h, w), colour, 0.15, 60)
        put(rgb, region, shine)
        np.maximum(occluded, region, out=occluded)
    elif rng.random() < 0.5:  # dashboard: dark, with a reflection in the windscreen above it
        top = h * rng.uniform(0.82, 0.95)
        region = (np.arange(h)[:, None] >= top).astype(np.float32) * np.ones((1, w), np.float32)
        put(rgb, region, textured(rng, (h, w), np.array([0.08, 0.08, 0.09]), 0.3, 40))
        np.maximum(occluded, region, out=occluded)
        glare = np.clip(noise(rng, (h, w), 80), 0, 1) * rng.uniform(0.0, 0.2)
        rgb += glare[..., None]
    if rng.random() < 0.35:  # a wiper blade at rest or mid-sweep, out of focus
        x0 = rng.uniform(-0.1, 0.5) * w
        ang = rng.uniform(-0.9, -0.2)
        length = rng.uniform(0.5, 0.9) * w
        x1, y1 = x0 + length * np.cos(ang), h + length * np.sin(ang)
        blade = draw_alpha((w, h), lambda d: d.line([(x0, h + 5), (x1, y1)], fill=255,
                                                    width=int(rng.integers(8, 20))), 2.0)
        put(rgb, blade, np.array([0.05, 0.05, 0.05]))
        np.maximum(occluded, blade, out=occluded)
    np.clip(rgb, 0, 1, out=rgb)


def off_road(rng: Rng, size: tuple[int, int]) -> np.ndarray:
    """A photo with no road surface at all: a wall, a room, sky and trees, or vegetation,
    float32 RGB (h, w, 3). (A mis-click, a test shot, a photo of the wrong thing.)"""
    w, h = size
    kind = rng.choice(["wall", "room", "sky", "vegetation", "building"])
    if kind == "wall":
        return wall(rng, size)
    if kind == "room":
        return room(rng, size)
    if kind == "vegetation":
        out = textured(rng, (h, w), np.array([rng.uniform(0.15, 0.4), rng.uniform(0.3, 0.55),
                                              rng.uniform(0.1, 0.25)]), 0.4, rng.uniform(3, 8))
        out *= (1 + 0.5 * specks(rng, (h, w), 0.15, rng.uniform(2, 6))
                - 0.5 * specks(rng, (h, w), 0.15, rng.uniform(2, 6)))[..., None]
        return np.clip(out, 0, 1).astype(np.float32)
    out = sky(rng, (h, w))
    occluded = np.zeros((h, w), np.float32)
    if kind == "building":
        fac, cover, _ = warp(facade(rng, (300, 400)), [
            (rng.uniform(-0.2, 0.2) * w, rng.uniform(-0.2, 0.3) * h),
            (rng.uniform(0.8, 1.2) * w, rng.uniform(-0.2, 0.3) * h),
            (rng.uniform(0.8, 1.2) * w, rng.uniform(0.9, 1.3) * h),
            (rng.uniform(-0.2, 0.2) * w, rng.uniform(0.9, 1.3) * h)], size)
        put(out, cover, fac)
    for _ in range(int(rng.integers(1, 4))):
        tree(rng, out, occluded, rng.uniform(0, w), h * rng.uniform(1.0, 1.4),
             h * rng.uniform(0.5, 1.1))
    return np.clip(out, 0, 1)


def wall(rng: Rng, size: tuple[int, int]) -> np.ndarray:
    """A wall filling the frame: brick, block, tiles or painted render, in perspective."""
    w, h = size
    kind = rng.choice(["brick", "block", "tiles", "render"])
    tex_h, tex_w = 400, 533
    if kind == "render":
        colour = np.array([rng.uniform(0.6, 0.95), rng.uniform(0.55, 0.9), rng.uniform(0.5, 0.85)])
        tex = textured(rng, (tex_h, tex_w), colour, rng.uniform(0.02, 0.08), rng.uniform(5, 40))
    else:
        colour = {"brick": np.array([0.55, 0.28, 0.2]), "block": np.array([0.6, 0.6, 0.58]),
                  "tiles": np.array([0.85, 0.85, 0.82])}[kind]
        tex = textured(rng, (tex_h, tex_w), colour * rng.uniform(0.8, 1.15), 0.1, 8)
        bh = {"brick": rng.uniform(12, 22), "block": rng.uniform(35, 60),
              "tiles": rng.uniform(20, 45)}[kind]
        bw = bh * (2.6 if kind == "brick" else 1.0 if kind == "tiles" else 2.0)

        def joints(d: ImageDraw.ImageDraw) -> None:
            for i, y in enumerate(np.arange(0, tex_h, bh)):
                d.line([(0, y), (tex_w, y)], fill=255, width=2)
                off = (i % 2) * bw / 2 if kind != "tiles" else 0
                for x in np.arange(-off, tex_w, bw):
                    d.line([(x, y), (x, y + bh)], fill=255, width=2)

        put(tex, draw_alpha((tex_w, tex_h), joints, 0.5) * 0.8, np.array([0.75, 0.74, 0.7]))
    j = rng.uniform(0, 0.15, 8) * np.array([w, h] * 4)
    quad = [(-j[0], -j[1]), (w + j[2], -j[3]), (w + j[4], h + j[5]), (-j[6], h + j[7])]
    out, _, _ = warp(tex, quad, size)
    ramp = 1 + rng.normal(0, 0.15) * np.linspace(-1, 1, w)[None, :]
    return np.clip(out * ramp[..., None], 0, 1).astype(np.float32)


def room(rng: Rng, size: tuple[int, int]) -> np.ndarray:
    """An indoor view: wall, floor (wood or carpet), a window and some furniture."""
    w, h = size
    floor_y = rng.uniform(0.5, 0.8) * h
    out = textured(rng, (h, w), np.array([rng.uniform(0.75, 0.95)] * 3) * np.array(
        [1.0, 0.98, 0.93]), 0.04, 60)
    ys = np.arange(h)[:, None] + np.zeros((1, w))
    wood = rng.random() < 0.6
    floor = textured(rng, (h, w), np.array([0.55, 0.38, 0.22]) if wood else
                     np.array([0.45, 0.45, 0.5]), 0.15, 6)
    if wood:
        floor *= (1 + 0.15 * np.sin(np.arange(w)[None, :] / rng.uniform(8, 20)))[..., None]
    put(out, (ys >= floor_y).astype(np.float32), np.clip(floor, 0, 1))
    img = _u8(out)
    d = ImageDraw.Draw(img)
    if rng.random() < 0.6:
        x0, y0 = rng.uniform(0.05, 0.6) * w, rng.uniform(0.05, 0.3) * h
        d.rectangle([x0, y0, x0 + rng.uniform(0.15, 0.35) * w, y0 + rng.uniform(0.2, 0.35) * h],
                    fill=(170, 200, 230), outline=(240, 240, 240), width=6)
    for _ in range(int(rng.integers(1, 4))):  # tables, shelves, a sofa
        x0 = rng.uniform(-0.1, 0.8) * w
        y1 = floor_y + rng.uniform(0, 0.2) * h
        d.rectangle([x0, y1 - rng.uniform(0.1, 0.4) * h, x0 + rng.uniform(0.15, 0.4) * w, y1],
                    fill=tuple(int(v) for v in rng.integers(30, 220, 3)))
    return np.asarray(img, np.float32) / 255.0
