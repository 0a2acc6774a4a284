"""Is this a road photo at all? A photo-level classifier on what the tile model already computes.

The tile rules (analyze.road_verdict: pavement share, feature distance) judge tiles one by one;
a grey texture (gravel, the moon, a page of text, a microscope slide) can pass them tile by
tile. This check looks at the photo as a whole: the tile features that the familiarity
distance uses (net.logits_and_embedding, block 12 of EfficientNet-Lite0: per-channel mean and
spread, d = 384) pooled over the tiles the model calls road surface (their mean and their
spread across the photo), with the pavement share, the mean pavement probability, quantiles
of the feature distance and pixel statistics of the whole photo (image_statistics: dark and
bright share, contrast, flat tiles, chroma, sharpness) and what ImageNet sees in the whole
photo (scene.py: the probability mass of the ImageNet classes the training road photos favour,
the entropy and the top probability of a 224 px thumbnail), scored by a logistic regression.

Training (fit_model, once per trained tile model): road photos are the training cities' real
crops sent as photos (colour and greyscale) and the synthetic training photos with road
(close-ups, street views); non-road photos are synthetic
off-road scenes and augmented crops of the real non-road photos (assets/road_nonroad, splits
"train" and "photo": animals, people, rooms, fields, documents, microscopy), greyscale as
often as the road photos, so greyness is no shortcut. The cut is chosen on out-of-fold scores
(grouped by city, by source photo): the road photos of validation folds keep their level at
the rate `keep`, in each source (real crops, synthetic photos) apart. Nothing here sees the
held-out cities, the "val" non-road photos or scikit-image's photos (one "photo" non-road
image, stardist's nuclei, was chosen after seeing which scikit-image photos passed).

Serving needs numpy only: the weights live in road.json ("road_photo", PhotoCheck.to_dict).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Quantiles of the feature distance over the road-surface tiles.
DISTANCE_QUANTILES = (0.25, 0.5, 0.75, 0.9)
# Pixel statistics of the whole photo (image_statistics), in this order.
IMAGE_STATS = ("dark_share", "bright_share", "mean_luma", "tile_contrast_median",
               "flat_tile_share", "tile_mean_spread", "chroma", "sharpness")
DARK, BRIGHT, FLAT = 0.1, 0.9, 0.03  # luma (0-1) cuts of a near-black / near-white pixel and
#                                      the per-tile luma spread under which a tile is flat


def image_statistics(tiles: np.ndarray) -> np.ndarray:
    """Pixel statistics (len(IMAGE_STATS),) of one photo from its uint8 tiles (n, h, w, 3) as
    the model sees them, every tile (not only road surface), on luma in 0-1 (ITU-R BT.601
    weights; every second pixel): the share of near-black (< DARK) and near-white (> BRIGHT)
    pixels, the mean luma, the median over tiles of the luma spread (local contrast), the
    share of flat tiles (spread < FLAT), the spread of the tiles' mean luma, the mean chroma
    ((max - min) / 255 over R, G, B) and the median over tiles of the mean absolute luma step
    between neighbouring pixels divided by the tile's spread (how sharp its texture is for its
    contrast). What the tile features do not say about the photo as a whole: a starfield
    (mostly black), a smooth microscope field (flat), a page (mostly white). ValueError on an
    empty or malformed array."""
    t = np.asarray(tiles)
    if t.ndim != 4 or t.shape[-1] != 3 or not len(t):
        raise ValueError(f"image_statistics: tiles of shape {t.shape}: need (n, h, w, 3), n >= 1")
    t = t[:, ::2, ::2].astype(np.float32) / 255.0
    y = t @ np.array([0.299, 0.587, 0.114], np.float32)  # (n, h', w')
    spread = y.std(axis=(1, 2))
    step = (np.abs(np.diff(y, axis=1)).mean(axis=(1, 2))
            + np.abs(np.diff(y, axis=2)).mean(axis=(1, 2))) / 2
    return np.array([(y < DARK).mean(), (y > BRIGHT).mean(), y.mean(), np.median(spread),
                     (spread < FLAT).mean(), y.mean(axis=(1, 2)).std(),
                     (t.max(-1) - t.min(-1)).mean(), np.median(step / (spread + 0.01))],
                    np.float32)


def photo_features(pavement: np.ndarray, distance: np.ndarray, embedding: np.ndarray,
                   pavement_cut: float = 0.5, tiles: np.ndarray | None = None) -> np.ndarray:
    """Features (2 d + 2 + len(DISTANCE_QUANTILES) [+ len(IMAGE_STATS)],) of one photo from its
    tiles' pavement probabilities (n,), feature distances (n,) and features (n, d): the mean
    and standard deviation of the features over the road-surface tiles (all tiles when there
    are none), the road-surface share, the mean pavement probability and the distance
    quantiles over the road-surface tiles; with the uint8 tiles (n, h, w, 3), their
    image_statistics too. ValueError when the arrays disagree in length or are empty."""
    pav = np.asarray(pavement, np.float64)
    emb = np.asarray(embedding, np.float64)
    dist = np.asarray(distance, np.float64)
    if not len(pav) or len(emb) != len(pav) or len(dist) != len(pav) or (
            tiles is not None and len(tiles) != len(pav)):
        raise ValueError(f"photo_features: {len(pav)} pavement, {len(dist)} distance, "
                         f"{len(emb)} embedding and {'no' if tiles is None else len(tiles)} "
                         "tile rows: need the same number, at least 1")
    paved = pav >= pavement_cut
    use = paved if paved.any() else np.ones(len(pav), bool)
    e = emb[use]
    parts = [e.mean(0), e.std(0), [paved.mean(), pav.mean()],
             np.quantile(dist[use], DISTANCE_QUANTILES)]
    if tiles is not None:
        parts.append(image_statistics(tiles))
    return np.concatenate(parts).astype(np.float32)


@dataclass(frozen=True)
class PhotoCheck:
    """A fitted road-photo classifier: standardisation (mean, scale), logistic weights and the
    cut on the road probability under which a photo gets no level."""

    mean: np.ndarray  # (f,)
    scale: np.ndarray  # (f,)
    coef: np.ndarray  # (f,)
    intercept: float
    cut: float
    image_stats: bool = False  # its features end with image_statistics (it needs the tiles)
    # ImageNet class sets (scene.road_classes, one per road-photo source) whose masses, with
    # the entropy and top probability of the photo's thumbnail (scene.features), close its
    # features; None: no scene features
    scene_classes: tuple[tuple[int, ...], ...] | None = None

    def features(self, base: np.ndarray, scene_probs: np.ndarray | None = None) -> np.ndarray:
        """The check's features of one photo: photo_features' (base) then, for a check with
        scene classes, scene.features of the photo's ImageNet probabilities (CLASSES,).
        ValueError when the check needs them and none are given: a check silently skipped
        would level any photo."""
        if self.scene_classes is None:
            return np.asarray(base)
        if scene_probs is None:
            raise ValueError("road-photo check: it reads the photo's ImageNet class "
                             "probabilities (scene.py): pass them")
        from models.road_damage import scene

        return np.concatenate([base, scene.features(scene_probs, self.scene_classes)])

    def score(self, features: np.ndarray) -> np.ndarray:
        """Road probability of photos' features (m, f) -> (m,), or of one photo (f,) -> ()."""
        z = (np.asarray(features, np.float64) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.coef + self.intercept)))

    def to_dict(self) -> dict[str, Any]:
        """JSON form for road.json ("road_photo")."""
        return {"mean": [round(float(v), 6) for v in self.mean],
                "scale": [round(float(v), 6) for v in self.scale],
                "coef": [round(float(v), 6) for v in self.coef],
                "intercept": round(float(self.intercept), 6), "cut": round(float(self.cut), 4),
                "image_stats": self.image_stats,
                "scene_classes": None if self.scene_classes is None else
                [list(c) for c in self.scene_classes]}

    @classmethod
    def of(cls, assets: dict[str, Any]) -> PhotoCheck | None:
        """The check a model was exported with; None for a model without one."""
        d = assets.get("road_photo")
        if not d:
            return None
        classes = d.get("scene_classes")
        return cls(np.asarray(d["mean"], np.float64), np.asarray(d["scale"], np.float64),
                   np.asarray(d["coef"], np.float64), float(d["intercept"]), float(d["cut"]),
                   bool(d.get("image_stats", False)),
                   None if classes is None else tuple(tuple(int(v) for v in c)
                                                      for c in classes))


# Fit-time data (roadphoto.fit_model): real crops of the training cities sent as photos, fresh
# synthetic off-road scenes, augmented views per real non-road photo, synthetic training photos
# at most, tiles per photo whose features are pooled (a random subset: the fit runs once per
# trained model, and the mean and spread of 24 of a crop's 64 highly alike tiles are close to
# those of all 64), the share of greyscale copies (road and non-road alike), the logistic
# regression's inverse L2 strength (0.3: the best out-of-fold refusal of non-road photos at
# 99% road kept among 0.003, 0.03, 0.3 and feature sets without the spread or with only the
# share and distances; bench/road_ood.py) and the share of validation road photos that must
# keep their level.
FIT_CROPS = 240
FIT_OFF_ROAD = 60
FIT_VIEWS = 6
FIT_SYNTHETIC = 120
FIT_TILES = 24
# Real full-frame road photos (assets/road_frames, train split: frames.py) sent as road photos,
# half whole and half a view (60-100% of each side), a GREY_SHARE of them greyscale; grouped
# for the folds by runs of FRAME_RUN consecutive frames of a drive (alike neighbours stay in
# one fold). 0: none.
FIT_FRAMES = 80
FRAME_RUN = 10
GREY_SHARE = 0.3
C = 0.3
KEEP = 0.99
NONROAD_SPLITS = ("train", "photo")
# Whether the cut keeps KEEP of each source's road photos (fit: by_source).
BY_SOURCE = False
# Whether fit_model adds the photo's pixel statistics (image_statistics) to its features.
IMAGE_STATS_ON = True
# Whether fit_model adds the ImageNet scene features of the photo's thumbnail (scene.py), and
# how much lighter their L2 penalty is (their standardised values times this).
SCENE_ON = True
SCENE_WEIGHT = 3.0


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """uint8 RGB (h, w, 3) as JPEG bytes."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def view(image: np.ndarray, rng: np.random.Generator, crop: tuple[float, float] = (0.3, 1.0),
         grey: float = GREY_SHARE, small: float = 0.3) -> bytes:
    """A random view of a photo as a phone user might send it, JPEG: a crop of `crop` times
    each side, mirrored half the time, shrunk to 128 px on the short side with probability
    `small` (as the real crops are), greyscale with probability `grey`, JPEG quality 60-95."""
    from PIL import Image, ImageOps

    h, w = image.shape[:2]
    ch = max(32, int(h * rng.uniform(*crop)))
    cw = max(32, int(w * rng.uniform(*crop)))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    im = Image.fromarray(image[y:y + ch, x:x + cw])
    if rng.random() < 0.5:
        im = ImageOps.mirror(im)
    if rng.random() < small and min(im.size) > 128:
        s = 128 / min(im.size)
        im = im.resize((round(im.size[0] * s), round(im.size[1] * s)),
                       Image.Resampling.BILINEAR)
    if rng.random() < grey:
        im = im.convert("L").convert("RGB")
    return jpeg(np.asarray(im), int(rng.integers(60, 96)))


def greyscale(image: np.ndarray) -> np.ndarray:
    """The image in grey, still 3 channels (what a greyscale camera or dataset gives)."""
    from PIL import Image

    return np.asarray(Image.fromarray(image).convert("L").convert("RGB"))


Example = tuple[np.ndarray, bool, str]  # (photo_features, is a road photo, group for the folds)


def _frame_picks(rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
    """(index, RGB image) of FIT_FRAMES frames of assets/road_frames' train split, by index
    (none without the folder)."""
    from models.road_damage import frames

    try:
        train = frames.load("train")
    except FileNotFoundError:
        return []
    return [(int(j), train[j][1]) for j in sorted(rng.permutation(len(train))[:FIT_FRAMES])]


def training_photos(crops: Any, seed: int = 0) -> list[tuple[bytes, bool, str]]:
    """(JPEG, is a road photo, group) of the fit-time photos besides the synthetic training
    photos: FIT_CROPS of `crops` (real.RealCrops of the training cities; group = city), a
    GREY_SHARE of them greyscale; FIT_FRAMES real road frames (assets/road_frames' train
    split, group = a run of FRAME_RUN consecutive frames; none when the folder is missing);
    FIT_OFF_ROAD fresh synthetic off-road scenes; FIT_VIEWS views of each real non-road photo
    of NONROAD_SPLITS (group = the photo). FileNotFoundError when assets/road_nonroad is
    missing."""
    from models.road_damage import nonroad
    from models.road_damage.generate import PHOTO, effects
    from models.road_damage.street import off_road

    rng = np.random.default_rng([seed, 4242])
    out: list[tuple[bytes, bool, str]] = []
    if crops is not None and len(crops.images):
        for i in rng.choice(len(crops.images), min(FIT_CROPS, len(crops.images)), replace=False):
            img = crops.images[i]
            img = greyscale(img) if rng.random() < GREY_SHARE else img
            out.append((jpeg(img, int(rng.integers(70, 96))), True, f"city:{crops.city[i]}"))
    for j, img in _frame_picks(rng):
        r = np.random.default_rng([seed, 4245, j])
        img = greyscale(img) if r.random() < GREY_SHARE else img
        data = view(img, r, crop=(0.6, 1.0), grey=0.0, small=0.0) if r.random() < 0.5 else \
            jpeg(img, int(r.integers(70, 96)))
        out.append((data, True, f"frames:{j // FRAME_RUN}"))
    for i in range(FIT_OFF_ROAD):
        r = np.random.default_rng([seed, 4243, i])
        img = np.asarray(effects(r, off_road(r, PHOTO)))
        out.append((view(img, r, crop=(0.5, 1.0), small=0.2), False, f"off_road:{i}"))
    for split in NONROAD_SPLITS:
        for name, img in nonroad.load(split):
            out.extend((view(img, rng), False, f"nonroad:{name}") for _ in range(FIT_VIEWS))
    return out


def fit(examples: list[Example], keep: float = KEEP, c: float = C, folds: int = 5,
        judged: np.ndarray | None = None, image_stats: bool = False,
        by_source: bool = BY_SOURCE, scene_probs: np.ndarray | None = None,
        scene_weight: float = SCENE_WEIGHT) -> tuple[PhotoCheck, dict[str, Any]]:
    """The road-photo classifier and its report from examples (features, is road, group).

    Out-of-fold road probabilities (GroupKFold by group: a city's crops, one photo's views and
    one synthetic photo stay in one fold) choose the cut: the (1 - keep) quantile of the road
    photos' scores, so a share `keep` of road photos the classifier never saw keeps its
    level. `judged` (bool per example; default all) marks the photos whose level this check
    decides (those the tile rules pass): the cut and the report count only them, while all
    are trained on. The report gives the out-of-fold figures at that cut per group kind and
    the trade-off (cut, road kept, non-road refused). image_stats: the features end with
    image_statistics (the check then needs the tiles). by_source: the cut keeps `keep` of each
    source's road photos (the lowest of the per-source quantiles: real crops and synthetic
    photos each), not of all pooled, where the more numerous crops would set it.
    scene_probs: the examples' ImageNet class probabilities (m, scene.CLASSES): each fit (every
    fold's, then the final one) picks its road classes from its own road photos, per source
    (scene.road_classes; source = the group's prefix) and appends scene.features,
    standardised and then multiplied by scene_weight (a lighter L2 penalty on those few than
    on the ~800 pooled tile features).
    ValueError without both kinds of photo."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    X = np.stack([x for x, _, _ in examples]).astype(np.float64)
    y = np.array([r for _, r, _ in examples], bool)
    groups = np.array([g for _, _, g in examples])
    if y.all() or not y.any():
        raise ValueError(f"road-photo check: {int(y.sum())} road and {int((~y).sum())} "
                         "non-road photos: need both")

    source = np.array([g.split(":")[0] for g in groups])

    def design(classes: tuple[tuple[int, ...], ...] | None) -> np.ndarray:
        if classes is None or scene_probs is None:
            return X
        from models.road_damage import scene

        return np.hstack([X, scene.features(scene_probs, classes)])

    def train(rows: np.ndarray) -> PhotoCheck:
        classes = None
        if scene_probs is not None:
            from models.road_damage import scene

            road = rows[y[rows]]
            classes = scene.road_classes(scene_probs[road], source[road])
        Z = design(classes)
        mu, sd = Z[rows].mean(0), Z[rows].std(0) + 1e-6
        if classes is not None:
            sd[X.shape[1]:] /= scene_weight
        m = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
        m.fit((Z[rows] - mu) / sd, y[rows])
        return PhotoCheck(mu, sd, m.coef_[0], float(m.intercept_[0]), 0.5,
                          scene_classes=classes)

    oof = np.zeros(len(y))
    k = min(folds, len(set(groups)))
    for tr, te in GroupKFold(k).split(X, y, groups):
        fold = train(tr)
        oof[te] = fold.score(design(fold.scene_classes)[te])
    j = np.ones(len(y), bool) if judged is None else np.asarray(judged, bool)
    if not (y & j).any():
        raise ValueError("road-photo check: no road photo passes the tile rules")
    # per source and truth: "city:road" (real crops), "synthetic:road", "nonroad:not_road", ...
    kind = np.array([f"{g.split(':')[0]}:{'road' if r else 'not_road'}"
                     for g, r in zip(groups, y, strict=True)])
    sources = [y & j & (kind == kd) for kd in sorted(set(kind[y & j]))] if by_source else []
    cut = float(min([np.quantile(oof[m], 1 - keep) for m in sources] or
                    [np.quantile(oof[y & j], 1 - keep)]))
    final = train(np.arange(len(y)))
    oof, y, kind = oof[j], y[j], kind[j]
    report = {
        "photos": {"road": int(y.sum()), "non_road": int((~y).sum()),
                   "trained_on": len(j)},
        "c": c, "keep": keep, "by_source": by_source, "cut": round(cut, 4),
        "scene_classes": None if final.scene_classes is None else
        [list(c) for c in final.scene_classes],
        "scene_weight": None if scene_probs is None else scene_weight,
        "out_of_fold": {str(kd): {"photos": int((kind == kd).sum()),
                                  "passed": round(float((oof[kind == kd] >= cut).mean()), 4)}
                        for kd in sorted(set(kind))},
        "tradeoff": [{"cut": round(float(q), 4),
                      "road_kept": round(float((oof[y] >= q).mean()), 4),
                      "non_road_refused": round(float((oof[~y] < q).mean()), 4)}
                     for q in np.quantile(oof[y], [0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1])],
    }
    return PhotoCheck(final.mean, final.scale, final.coef, final.intercept, cut,
                      image_stats, final.scene_classes), report


def fit_model(net_model: Any, stats: dict[str, np.ndarray] | None, tile_sets: list[Any],
              grid: Any, pavement_cut: float, min_share: float, seed: int = 0,
              crops: Any = None, floor_share: float | None = None,
              image_stats: bool | None = None, scene_on: bool | None = None,
              ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(road.json "road_photo" or None, report) for a trained tile model (training side: torch).

    tile_sets: task.TileSet of synthetic training photos (a photo is a road photo when at
    least `min_share` of its tiles are road surface); crops: real.RealCrops of the training
    cities (default: real.split's training side; none when assets/road_real is missing); plus
    training_photos' off-road scenes and real non-road photos; at most FIT_SYNTHETIC synthetic
    photos. Only photos that reach this check (predicted road-surface share >= floor_share,
    default min_share: analyze.road_verdict) decide the cut: the others get no level before
    this check is asked (all are trained on).
    Each photo's features pool FIT_TILES of its tiles at random, with their image_statistics
    when image_stats (default IMAGE_STATS_ON), and the scene features of its whole grid image
    (scene.py: one ImageNet pass per photo) when scene_on (default SCENE_ON). None without
    familiarity statistics (no distance output)."""
    if stats is None:
        return None, {"skipped": "road_check.road_photo or road_check.familiarity off"}
    stats_on = IMAGE_STATS_ON if image_stats is None else image_stats
    return fit_collected(collect(net_model, stats, tile_sets, grid, pavement_cut, min_share,
                                 seed, crops, floor_share, stats_on, scene_on), stats_on)


def fit_collected(collected: tuple[list[Example], np.ndarray, np.ndarray | None],
                  image_stats: bool) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """fit_model's second half: (road.json "road_photo" or None, report) from collect's
    (examples, judged, ImageNet probabilities); the report counts the real crops and real
    frames among the road photos; None with the reason when fit refuses (ValueError)."""
    examples, judged, probs = collected
    try:
        check, report = fit(examples, judged=judged, image_stats=image_stats, scene_probs=probs)
    except ValueError as exc:
        return None, {"skipped": str(exc)}
    report["real_crops"] = sum(g.startswith("city:") for _, _, g in examples)
    report["frames"] = sum(g.startswith("frames:") for _, _, g in examples)
    return check.to_dict(), report


def collect(net_model: Any, stats: dict[str, np.ndarray], tile_sets: list[Any], grid: Any,
            pavement_cut: float, min_share: float, seed: int = 0, crops: Any = None,
            floor_share: float | None = None, image_stats: bool = IMAGE_STATS_ON,
            scene_on: bool | None = None,
            ) -> tuple[list[Example], np.ndarray, np.ndarray | None]:
    """fit_model's training photos as (examples, judged (m,) bool, ImageNet probabilities
    (m, scene.CLASSES) or None without scene features): what fit takes."""
    from models.road_damage import net, real, scene
    from models.road_damage.photo import photo_tiles

    if crops is None:
        try:
            crops = real.split(real.load())[0]
        except FileNotFoundError:
            crops = None
    floor = min_share if floor_share is None else floor_share
    stats_on = image_stats
    use_scene = SCENE_ON if scene_on is None else scene_on
    rng = np.random.default_rng([seed, 4244])
    examples: list[Example] = []
    judged: list[bool] = []
    thumbs: list[np.ndarray] = []  # per example, its scene.thumbnail (use_scene)
    waiting: list[tuple[np.ndarray, bool, str]] = []

    def flush() -> None:  # one batched forward pass for the waiting photos
        if not waiting:
            return
        o = net.outputs(net_model, stats, np.concatenate([t for t, _, _ in waiting]))
        start = 0
        for tiles, road, group in waiting:
            part = slice(start, start + len(tiles))
            start += len(tiles)
            examples.append((photo_features(o["pavement"][part], o["distance"][part],
                                            o["embedding"][part], pavement_cut,
                                            tiles if stats_on else None), road, group))
            judged.append(bool((o["pavement"][part] >= pavement_cut).mean() >= floor))
        waiting.clear()

    def add(tiles: np.ndarray, road: bool, group: str, image: np.ndarray) -> None:
        if use_scene:
            thumbs.append(scene.thumbnail(image))
        if len(tiles) > FIT_TILES:
            tiles = tiles[np.sort(rng.choice(len(tiles), FIT_TILES, replace=False))]
        waiting.append((tiles, road, group))
        if len(waiting) >= 32:
            flush()

    synthetic = [(k, ts, i) for k, ts in enumerate(tile_sets) for i in np.unique(ts.photo)]
    for n in rng.permutation(len(synthetic))[:FIT_SYNTHETIC]:
        k, ts, i = synthetic[n]
        m = ts.photo == i
        add(ts.tiles[m], bool(ts.pavement[m].mean() >= min_share), f"synthetic:{k}.{i}",
            ts.grid_image(i, grid.context))
    for data, road, group in training_photos(crops, seed):
        tiles, _, _, image = photo_tiles(data, grid)
        add(tiles, road, group, image)
    flush()
    probs = scene.probabilities(np.stack(thumbs)) if use_scene and thumbs else None
    return examples, np.array(judged, bool), probs


def crops_as_photos(outputs: Any, assets: dict[str, Any], crops: Any, every: int = 3,
                    ) -> dict[str, Any]:
    """How the held-out cities' real crops fare sent as photos (metrics.json real.as_photos):
    every `every`-th crop as a JPEG photo, in colour and in greyscale, through the serving
    summary; the share that keeps a level and the share that the road-photo check refuses.
    outputs maps uint8 tiles to the exported graph's outputs (task.predict_outputs); a check
    with scene classes gets each photo's ImageNet probabilities from scene.of_images (scene.onnx,
    as serving computes them)."""
    from models.road_damage import scene
    from models.road_damage.analyze import RoadCheck, summarise
    from models.road_damage.photo import Grid, photo_tiles

    grid, check, photo = Grid.of(assets), RoadCheck.of(assets), PhotoCheck.of(assets)
    picked = crops.images[::every]
    out: dict[str, Any] = {"crops": len(picked), "every": every,
                           "road_photo_check": photo is not None}
    for name, images in (("colour", picked), ("grey", [greyscale(i) for i in picked])):
        levelled, refused = [], []
        for img in images:
            tiles, (rows, cols), _, image = photo_tiles(jpeg(img, 92), grid)
            o = outputs(tiles)
            probs = scene.of_images([image])[0] if photo and photo.scene_classes else None
            res = summarise(o["probabilities"], rows, cols, assets["threshold"],
                            o["pavement"], o["distance"], check, o.get("embedding"), photo,
                            tiles, probs)
            levelled.append(res["mlit_level"] is not None)
            refused.append(any(w["code"] == "not_road_photo" for w in res["level_warnings"]))
        out[name] = {"level_given": round(float(np.mean(levelled)), 4) if levelled else None,
                     "refused_as_not_road_photo": round(float(np.mean(refused)), 4)
                     if refused else None}
    return out
