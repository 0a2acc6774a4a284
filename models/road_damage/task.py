"""The road_damage Task: tile classifier for RDD damage classes, photo MLIT levels."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from models.configs import Strict, Tenant
from models.road_damage import schema as S
from models.road_damage.analyze import (
    Cuts,
    RoadCheck,
    photo_distance,
    road_verdict,
    tile_flags,
)
from models.road_damage.baseline import DarkLineDetector, calibrate, f1
from models.road_damage.corrections import apply_corrections
from models.road_damage.generate import HOLDOUT, Spec, counts, generate, photo_id
from models.road_damage.labels import (
    CLASSES,
    CRACKS,
    LABELS_JA,
    LEVELS,
    LEVELS_JA,
    TILE_MASK_SHARE,
    crack_ratio,
    mlit_level,
)
from models.road_damage.photo import Grid, photo_tiles
from models.road_damage.roadphoto import PhotoCheck
from models.split import hold_out
from models.task import Feedback, FilesFrames, Frames, Task, TaskData

if TYPE_CHECKING:
    from models.road_damage.real import RealCrops
    from serving.store import Store


class GenerateConfig(Strict):
    """Synthetic photos: how many (split by population), the floor per tenant, damage share."""

    total_photos: int = Field(default=240, ge=4, description="the scale knob")
    min_photos: int = Field(default=30, ge=2)
    damage_share: float = Field(default=0.7, ge=0, le=1)
    street_share: float = Field(default=0.35, ge=0, le=1, description="photos in the street "
                                "view (road in the lower frame, sky, buildings, vehicles, kerbs, "
                                "people, the car's bonnet or wiper around it)")
    off_road_share: float = Field(default=0.06, ge=0, le=1, description="photos with no road "
                                  "at all (wall, room, sky, vegetation)")
    min_test_photos: int = Field(default=0, ge=0, le=1000, description="per tenant: further "
                                 "photos generated for its holdout only (never trained on) until "
                                 "it holds this many, so a small city's pooled vs local-only "
                                 "comparison rests on enough cracked tiles")


class GridConfig(Strict):
    """Resize policy: the photo's long side in pixels and the square tile edge (photo.Grid)."""

    long_side: int = Field(default=512, ge=32)
    tile: int = Field(default=64, ge=16)
    context: int = Field(default=0, ge=0, le=64, description="pixels of surrounding pavement "
                         "the model sees on each side of a tile (its label stays the tile's)")


class ModelConfig(Strict):
    """Tile classifier: architecture, initialisation and training schedule."""

    architecture: Literal["resnet", "efficientnet_lite0"] = "resnet"
    init: str = Field(default="scratch", description="scratch | imagenet | local checkpoint dir")
    freeze_blocks: int = Field(default=0, ge=0, le=16, description="efficientnet_lite0: "
                               "the stem and this many early MBConv blocks stay as initialised")
    embedding_size: int = Field(default=16, ge=4)
    hidden_sizes: tuple[int, ...] = (16, 32, 64, 96)
    depths: tuple[int, ...] = (1, 1, 1, 1)
    epochs: int = Field(default=30, ge=1)
    patience: int = Field(default=5, ge=1)
    batch_size: int = Field(default=128, ge=4)
    learning_rate: float = Field(default=4e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    validation_share: float = Field(default=0.15, gt=0, lt=1)
    augment: bool = True
    clean_share: float = Field(default=0.6, gt=0, le=1,
                               description="share of undamaged tiles drawn per epoch")
    threads: int = Field(default=2, ge=1)
    ema: float = Field(default=0.0, ge=0, lt=1, description="per-step decay of the weights' "
                       "moving average that is validated and kept (0: the raw weights)")
    device: Literal["cpu", "cuda", "auto"] = Field(
        default="cpu", description="where training runs; auto takes a GPU when torch sees one")


REAL_DATA = ("assets/road_real/DATA_CARD.md: Road Damage Dataset 2018 crops (Maeda et al.; "
             "CC BY-SA 4.0, sekilab/RoadDamageDetector) via hiroyamaeda/RoadDamageGAN 365a0e4")

FRAMES_DATA = ("assets/road_frames/DATA_CARD.md: real road frames with road/crack/pothole masks "
               "of Brazilian federal highways (Passos et al., github:biankatpas/Cracks-and-"
               "Potholes-in-Road-Images-Dataset 1f20054, MIT)")

NONROAD_DATA = ("assets/road_nonroad/DATA_CARD.md: non-road sample photos from BVLC/caffe "
                "(BSD-2), pjreddie/darknet (public domain), facebookresearch/segment-anything and "
                "sam2 (Apache-2.0), matplotlib (grace_hopper, public domain) and scikit-learn "
                "(china.jpg by danielbuechele, flower.jpg by vultilion, CC BY 2.0); the "
                "road-photo check also luispedro/mahotas (MIT), madmaze/pytesseract "
                "(Apache-2.0), xinntao/Real-ESRGAN (BSD-3), stardist/stardist (BSD-3; its "
                "nuclei image from the 2018 Data Science Bowl, CC0), tesseract-ocr/tesseract and "
                "JaidedAI/EasyOCR (Apache-2.0), NCI Visuals Online cell photos (public domain, "
                "Dr. Cecil Fox), haesleinhuepf/BioImageAnalysisNotebooks (BBBC022 CC0; maize "
                "confocal by David Legland and a tissue section by Esteban et al., CC BY 4.0), "
                "and NASA (SDO, SVS/LRO) and USGS (MESSENGER) images of the sun, moon, earth and "
                "Mercury (public domain) via sunpy/sunpy (BSD-2), grafana/grizzly (Apache-2.0) "
                "and rybosome/tspice (MIT)")


class RealConfig(Strict):
    """Real crops (assets/road_real) in training: the training cities' crack crops as positives
    and their faded-marking crops as negatives, mixed with the synthetic tiles. The held-out
    cities (real.HELD_OUT_CITIES) are never trained on: they are the `real` evaluation."""

    train: bool = Field(default=False, description="add the training cities' real crops")
    repeat: int = Field(default=1, ge=1, le=20, description="copies of each real crop per "
                        "epoch: its weight against the synthetic tiles")
    nonroad_tiles: int = Field(default=0, ge=0, le=20_000, description="tiles of the real "
                               "non-road photos (assets/road_nonroad, their train split) added "
                               "as not road surface; 0: none")
    frames: bool = Field(default=False, description="add the sure tiles of the real full-frame "
                         "road photos (assets/road_frames, train split; frames.training_tiles): "
                         "intact asphalt far from any marked crack as hard negatives and as many "
                         "marked-crack tiles as positives, all road surface")


class RoadCheckConfig(Strict):
    """When a photo gets a level (analyze.RoadCheck); the distance cuts are tuned at training
    (ood.tune) on synthetic validation photos and the training cities' real crops."""

    pavement_cut: float = Field(default=0.5, gt=0, lt=1, description="pavement probability "
                                "from which a tile is road surface")
    min_share: float = Field(default=0.15, ge=0, le=1, description="road-surface tiles below "
                             "this share: not a road photo, no level")
    floor_share: float = Field(default=0.05, ge=0, le=1, description="below this share no "
                               "level at all; from here up to min_share a photo the road-photo "
                               "check passes keeps its level with a warning")
    low_share: float = Field(default=0.35, ge=0, le=1, description="below this share: a warning")
    unfamiliar_share: float = Field(default=0.5, ge=0, le=1, description="share of unfamiliar "
                                    "road-surface tiles above which the photo gets a warning")
    familiarity: bool = Field(default=True, description="fit the feature-distance statistics "
                              "(shipped in the ONNX graph) and their cuts")
    road_photo: bool = Field(default=True, description="fit the photo-level road check "
                             "(roadphoto.py; ~150 s per trained model on 2 idle cores)")


class RoadDamageConfig(Strict):
    """configs/road_damage.yaml."""

    generate: GenerateConfig = GenerateConfig()
    grid: GridConfig = GridConfig()
    test_share: float = Field(default=0.2, gt=0, lt=1, description="photos held out")
    threshold: float | Literal["auto"] = Field(
        default="auto", description="tile class probability cut, or auto: per class, the best "
                                    "F1 on the validation photos")
    model: ModelConfig = ModelConfig()
    real: RealConfig = RealConfig()
    road_check: RoadCheckConfig = RoadCheckConfig()
    parity_tolerance: float = Field(default=1e-4, gt=0)
    parity_max_mismatch_share: float = Field(default=0.0, ge=0, le=1)
    parity_tiles: int = Field(default=512, ge=8)


@dataclass
class RoadModel:
    """The trained transformers model, the calibrated baseline and road.json for serving."""

    net: Any
    baseline: DarkLineDetector
    assets: dict[str, Any]
    history: dict[str, Any] = field(default_factory=dict)
    # feature statistics of the training road surface (ood.fit_ppca; None: no distance output)
    familiarity: dict[str, np.ndarray] | None = None


@dataclass
class TileSet:
    """Decoded tiles of some photos with their labels, in the photos' order."""

    tiles: np.ndarray  # uint8 (n, t, t, 3)
    labels: np.ndarray  # int8 (n, len(CLASSES))
    photo: np.ndarray  # index into photos per tile
    photos: pd.DataFrame
    pavement: np.ndarray  # bool (n,): the tile is road surface

    def grid_image(self, i: int, context: int) -> np.ndarray:
        """Photo i's grid image (rows * t, cols * t, 3) put back together from its tiles, which
        carry `context` pixels around each (scene.grid_image): what serving's thumbnail is cut
        from."""
        from models.road_damage import scene

        row = self.photos.iloc[i]
        return scene.grid_image(self.tiles[self.photo == i], int(row["rows"]), int(row["cols"]),
                                context)

    @property
    def targets(self) -> np.ndarray:
        """Training targets (n, len(OUTPUTS)): the class labels, then pavement."""
        return np.column_stack([self.labels, self.pavement]).astype(np.int8)


def load_tiles(photos: pd.DataFrame, tiles: pd.DataFrame, grid: Grid) -> TileSet:
    """Decode each photo as serving would (EXIF orientation, resize, tiling) and attach labels."""
    parts, labels, owner, paved = [], [], [], []
    by_photo = {pid: g.sort_values(["row", "col"]) for pid, g in tiles.groupby("photo_id")}
    row: Any  # an itertuples row: its fields by column name
    for i, row in enumerate(photos.itertuples(index=False)):
        # a 1 x 1 photo is a tile dataset's image (class folders): the whole image is the tile
        g = Grid(grid.tile, grid.tile, grid.context) if row.rows == row.cols == 1 else grid
        t, (rows, cols), _, _ = photo_tiles(Path(row.file).read_bytes(), g)
        lab = by_photo.get(row.photo_id)
        if lab is None or len(lab) != rows * cols:
            raise ValueError(f"photo {row.photo_id}: {0 if lab is None else len(lab)} tile "
                             f"labels, the {rows} x {cols} grid needs {rows * cols}")
        parts.append(t)
        labels.append(lab[list(CLASSES)].to_numpy(np.int8))
        owner.append(np.full(len(t), i))
        paved.append(lab["pavement"].to_numpy(int) == 1 if "pavement" in lab
                     else np.ones(len(t), bool))
    if not parts:
        return TileSet(np.zeros((0, grid.window, grid.window, 3), np.uint8),
                       np.zeros((0, len(CLASSES)), np.int8), np.zeros(0, int), photos,
                       np.zeros(0, bool))
    return TileSet(np.concatenate(parts), np.concatenate(labels), np.concatenate(owner),
                   photos.reset_index(drop=True), np.concatenate(paved))


# scene_probs' answers by (photo file, grid): they depend on neither the model nor the tenant,
# and pooling's bootstrap scores the same held-out photos hundreds of times
_SCENE: dict[tuple[str, int, int, int], np.ndarray] = {}


def scene_probs(ts: TileSet, grid: Grid) -> np.ndarray:
    """ImageNet class probabilities (len(ts.photos), scene.CLASSES) of each photo of ts, from
    its grid image put back together from its tiles (scene.grid_image) as serving's thumbnail
    is; cached per photo file and grid."""
    from models.road_damage import scene

    keys = [(str(f), grid.long_side, grid.tile, grid.context) for f in ts.photos["file"]]
    todo = [i for i, k in enumerate(keys) if k not in _SCENE]
    images = [ts.grid_image(i, grid.context) for i in todo]
    for k, p in zip([keys[i] for i in todo], scene.of_images(images), strict=True):
        _SCENE[k] = p
    return np.stack([_SCENE[k] for k in keys]) if keys else np.zeros((0, scene.CLASSES))


def _hash_share(ids: pd.Series, salt: str) -> np.ndarray:
    """A stable pseudo-random number in [0, 1) per id."""
    return np.array([zlib.crc32(f"{salt}:{i}".encode()) / 2**32 for i in ids])


def holdout_photos(cfg: RoadDamageConfig, per_tenant: dict[str, int]) -> dict[str, int]:
    """Per tenant code: how many holdout-only photos to generate so that its holdout holds
    generate.min_test_photos photos, given its regular photo count (their ids
    <code>-P00000... are split by hash at test_share, as split does)."""
    want = cfg.generate.min_test_photos
    out = {}
    for code, n in per_tenant.items():
        ids = pd.Series([photo_id(code, i) for i in range(n)])
        held = int((_hash_share(ids, "test") < cfg.test_share).sum())
        out[code] = max(0, want - held)
    return out


def _cracked(labels: np.ndarray) -> np.ndarray:
    return np.any(labels[:, [CLASSES.index(c) for c in CRACKS]], axis=1)


class RoadDamage(Task[RoadDamageConfig, RoadModel]):
    """Road-surface damage from patrol photos: RDD classes per tile, MLIT level per photo."""

    name = "road_damage"
    Config = RoadDamageConfig
    frames = ("photos", "tiles")
    units = ("photo_id",)  # bootstrap unit: a photo with all its tiles
    # CSV columns holding paths relative to data/road_damage/ (training/data.py resolves them)
    file_columns: ClassVar[dict[str, tuple[str, ...]]] = {"photos": ("file", "mask_file")}

    def schema(self, frame: str) -> Any:
        """pandera schema of 'photos' or 'tiles'."""
        return S.SCHEMAS[frame]

    def validate(self, frame: str, df: pd.DataFrame) -> pd.DataFrame:
        """Validated frame; ValueError names the column and line."""
        return S.validate(frame, df)

    def generate(self, cfg: RoadDamageConfig, tenants: list[Tenant], seed: int,
                 ) -> dict[str, FilesFrames]:
        """Synthetic photos, masks and tile labels per tenant (with image files attached)."""
        g = cfg.generate
        if g.street_share + g.off_road_share > 1:
            raise ValueError(f"generate: street_share {g.street_share} + off_road_share "
                             f"{g.off_road_share} is over 1")
        spec = Spec(g.total_photos, g.min_photos, Grid(**cfg.grid.model_dump()), g.damage_share,
                    g.street_share, g.off_road_share)
        pairs = [(t.code, t.population) for t in tenants]
        return generate(pairs, spec, seed, progress=True,
                        holdout=holdout_photos(cfg, counts(pairs, g.total_photos, g.min_photos)))

    def split(self, cfg: RoadDamageConfig, data: Frames) -> tuple[Frames, Frames]:
        """Hold out a share of each tenant's photos (by a hash of the id) with all their tiles,
        and every photo the generator made for a holdout (source ending in HOLDOUT)."""
        photos = data["photos"]
        test = _hash_share(photos["photo_id"], "test") < cfg.test_share
        if "source" in photos:  # frames without it (imports, tests) have no holdout-only photos
            test |= photos["source"].astype(str).str.endswith(HOLDOUT).to_numpy()
        test_ids = photos["photo_id"][test]
        return hold_out(data, self.frames, "photo_id", test_ids)

    def fit(self, cfg: RoadDamageConfig, train: Frames, progress: bool = False,
            seed: int = 0, real_crops: RealCrops | None = None) -> RoadModel:
        """Train the tile classifier with early stopping on held-back training photos.
        `real_crops`: the real crops added with cfg.real.train (default: the training cities'
        crops, with_real); the onboarding bench passes them with a new city's labelled ones."""
        from models.road_damage import net

        photos = train["photos"]
        if len(photos) < 4:
            raise ValueError(f"{len(photos)} training photos: need at least 4")
        grid = Grid(**cfg.grid.model_dump())
        fit_set, val_set = fit_and_validation(cfg, train)
        model, init = net.build(cfg.model, seed)
        X, Y, hard, n_real = with_real(cfg, fit_set.tiles, fit_set.targets, grid.window,
                                       real_crops, seed)
        hist = net.train(model, X, Y.astype(np.float32), val_set.tiles,
                         val_set.targets.astype(np.float32), cfg.model, seed, progress, hard)
        road = fit_set.pavement
        baseline = calibrate(fit_set.tiles[road], _cracked(fit_set.labels[road]))
        cuts = hist.thresholds if cfg.threshold == "auto" else [cfg.threshold] * 4
        if isinstance(cuts, dict) and hist.val_outputs is not None:
            vp = hist.val_outputs[0]
            cuts = {**cuts, "class": [*cuts["class"]]}
            k = CLASSES.index("D40")
            cuts["class"][k - 1] = pothole_photo_cut(
                vp[:, k], vp[:, len(CLASSES)] >= cfg.road_check.pavement_cut, val_set,
                cuts["class"][k - 1])
        stats, check = familiarity(cfg, model, fit_set, val_set, grid.window, seed,
                                   hist.val_outputs)
        assets = make_assets(cfg, init, model, cuts)
        assets["road_check"] = check
        from models.road_damage import roadphoto  # is it a road photo at all (roadphoto.py)

        assets["road_photo"], photo_report = roadphoto.fit_model(
            model, stats if cfg.road_check.road_photo else None, [fit_set, val_set], grid,
            cfg.road_check.pavement_cut, cfg.road_check.min_share, seed, real_crops,
            cfg.road_check.floor_share)
        if assets["road_photo"]:  # the check trained on them too: the model card credits them
            assets["nonroad_data"] = NONROAD_DATA
            assets["frames_data"] = FRAMES_DATA if photo_report.get("frames") else \
                assets["frames_data"]
            assets["real_data"] = REAL_DATA if photo_report["real_crops"] else assets["real_data"]
        history = {"init": init, "epochs_run": len(hist.train_loss), "best_epoch":
                   hist.best_epoch, "train_loss": hist.train_loss, "val_loss": hist.val_loss,
                   "train_seconds": hist.seconds, "thresholds": hist.thresholds,
                   "train_tiles": len(fit_set.tiles), "train_real_crops": n_real,
                   "val_tiles": len(val_set.tiles), "road_check": check,
                   "road_photo": photo_report}
        return RoadModel(model, baseline, assets, history, stats)

    def predict_tiles(self, model: RoadModel, tiles: np.ndarray) -> np.ndarray:
        """Native class probabilities (n, len(CLASSES)) of uint8 tiles."""
        return self.predict_outputs(model, tiles)["probabilities"]

    def predict_outputs(self, model: RoadModel, tiles: np.ndarray) -> dict[str, np.ndarray]:
        """What the exported graph gives, natively: probabilities (n, classes), pavement (n,)
        and distance (n,) of uint8 tiles."""
        from models.road_damage import net

        return net.outputs(model.net, model.familiarity, tiles)

    def evaluate(self, cfg: RoadDamageConfig, model: RoadModel, test: Frames,
                 ) -> dict[str, Any]:
        """Tile F1 per class, crack/no-crack F1 vs the dark-line baseline, MLIT accuracy, and
        the `real` block on the held-out cities' real crops."""
        return {**self.evaluate_synthetic(cfg, model, test),
                "real": self.evaluate_real(cfg, model)}

    def pooling_metric(self, cfg: RoadDamageConfig, model: RoadModel, test: Frames,
                       ) -> tuple[str, float]:
        """The headline on a tenant's held-out photos, without the real block: pooling and its
        bootstrap call this hundreds of times, and the real crops are not any tenant's."""
        head = self.evaluate_synthetic(cfg, model, test)["headline"]
        return head["metric"], head["value"]

    def comparison_config(self, cfg: RoadDamageConfig) -> RoadDamageConfig:
        """Local-only and others-only fits leave out the real non-road photos' tiles and the
        familiarity statistics; the real crops stay. The non-road tiles are no tenant's data
        (every fit would get the same 1,200) and are ~23% of a small city's tile passes per
        epoch (720 of ~3,150; 11% of 千葉市's); side by side they did not move the synthetic
        crack F1 the comparison is judged on (bench/road_synth.py, 4 epochs, seed 0: held-out
        0.840 with vs 0.839 without, validation 0.892 vs 0.881; README). The
        familiarity statistics only decide warnings and withheld levels, which the crack F1
        does not read. The real crops (~1,780 passes per epoch, most of a small city's fit) do
        teach crack appearance, so leaving them out would need its own side-by-side first."""
        # the real road frames' tiles likewise (no tenant's data, the same for every fit)
        return cfg.model_copy(update={
            "real": cfg.real.model_copy(update={"nonroad_tiles": 0, "frames": False}),
            "road_check": cfg.road_check.model_copy(update={"familiarity": False})})

    def evaluate_synthetic(self, cfg: RoadDamageConfig, model: RoadModel, test: Frames,
                           ) -> dict[str, Any]:
        """evaluate without the real block: overall, per tenant and the headline."""
        ts = load_tiles(test["photos"], test["tiles"], Grid(**cfg.grid.model_dump()))
        out = self.predict_outputs(model, ts.tiles)
        probs = out["probabilities"]
        check = RoadCheck.of(model.assets)
        paved = out["pavement"] >= check.pavement_cut
        base = model.baseline.predict(ts.tiles) & paved if len(ts.tiles) else np.zeros(0, bool)
        tenant = ts.photos["tenant_code"].to_numpy()[ts.photo] if len(ts.tiles) else np.array([])
        cut = model.assets["threshold"]
        photo = PhotoCheck.of(model.assets)
        sp = scene_probs(ts, Grid(**cfg.grid.model_dump())) \
            if photo is not None and photo.scene_classes is not None else None
        overall = metrics(ts, probs, base, cut, np.ones(len(ts.tiles), bool), out, check, photo,
                          sp)
        overall.update(model.history)
        per_tenant = {code: metrics(ts, probs, base, cut, tenant == code, out, check, photo, sp)
                      for code in sorted(set(tenant))}
        return {"overall": overall, "per_tenant": per_tenant, "headline": {
            "metric": "tile_crack_f1", "value": overall["crack_f1"], "oracle": 1.0,
            "baseline": overall["baseline_crack_f1"],
            "baseline_name": "dark-line threshold detector (pixels darker than their "
                             "neighbourhood, thresholds calibrated on training tiles)"}}

    def evaluate_real(self, cfg: RoadDamageConfig, model: RoadModel) -> dict[str, Any]:
        """The `real` block (real.evaluate) on the held-out cities' real crops, with `as_photos`
        (a third of them sent as photos, colour and grey: the share that keeps a level)."""
        from models.road_damage import real, roadphoto

        block = real.evaluate(lambda w: self.predict_tiles(model, w),
                              Grid(**cfg.grid.model_dump()).window, model.assets["threshold"],
                              real.load())
        # the same cities' crops sent as photos: do they keep a level (roadphoto.py)?
        block["as_photos"] = roadphoto.crops_as_photos(
            lambda t: self.predict_outputs(model, t), model.assets, real.split(real.load())[1])
        return block

    def to_onnx(self, model: RoadModel, opset: int) -> dict[str, bytes]:
        """One graph 'tiles': normalised tiles -> sigmoid probabilities per class."""
        from models.road_damage import net

        return {"tiles": net.to_onnx(model.net, Grid.of(model.assets).window, opset,
                                     model.familiarity)}

    def parity_inputs(self, model: RoadModel, test: Frames,
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Held-out tiles through the shared numpy preprocessing and the native model."""
        from models.road_damage.photo import normalise

        grid = Grid.of(model.assets)
        limit = model.assets.get("parity_tiles", 512)
        photos = test["photos"].head(max(1, limit // 40))
        ts = load_tiles(photos, test["tiles"], grid)
        tiles = ts.tiles[:limit]
        native = self.predict_outputs(model, tiles)
        return {"tiles": normalise(tiles)}, {f"tiles_{k}": v for k, v in native.items()}

    def onnx_outputs(self, session: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The exported model's probabilities, pavement probabilities, distances, features."""
        names = ["tiles_probabilities", "tiles_pavement", "tiles_distance", "tiles_embedding"]
        return dict(zip(names, session.run(names, {"input": inputs["tiles"]}), strict=True))

    def plots(self, model: RoadModel, test: Frames, out: Path) -> list[Path]:
        """Training curves."""
        from models.road_damage.plots import plot_all

        return plot_all(model, out)

    def feature_names(self, model: RoadModel) -> list[str]:
        """None: the input is image tiles, not named columns."""
        return []

    def assets(self, model: RoadModel) -> dict[str, bytes]:
        """road.json: classes, labels, grid, threshold, levels; scene.onnx (the ImageNet
        classifier of photo thumbnails, scene.py) when the road-photo check reads it."""
        from models.road_damage import scene

        out = {"road.json": json.dumps(model.assets, ensure_ascii=False, indent=1).encode()}
        photo = PhotoCheck.of(model.assets)
        if photo is not None and photo.scene_classes is not None:
            out["scene.onnx"] = scene.to_onnx(scene.OPSET)
        return out

    def apply_feedback(self, store: Store, data: TaskData) -> Feedback:
        """Road crews' corrections -> photos and tiles (models/road_damage/corrections.py)."""
        return apply_corrections(store, data)


def fit_and_validation(cfg: RoadDamageConfig, train: Frames) -> tuple[TileSet, TileSet]:
    """The training photos' tiles cut into the fit set and the held-back validation set (early
    stopping, cuts, the road checks), by a hash of the photo id (model.validation_share)."""
    photos, grid = train["photos"], Grid(**cfg.grid.model_dump())
    val = _hash_share(photos["photo_id"], "val") < cfg.model.validation_share
    return (load_tiles(photos[~val], train["tiles"], grid),
            load_tiles(photos[val], train["tiles"], grid))


def with_real(cfg: RoadDamageConfig, tiles: np.ndarray, labels: np.ndarray, window: int,
              crops: RealCrops | None = None, seed: int = 0,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """Training tiles with real crops appended `repeat` times (resized to the model window) and
    `cfg.real.nonroad_tiles` windows of the real non-road photos (nonroad.windows: no damage,
    not road surface), with cfg.real.frames the real road frames' sure tiles (frames.py;
    intact ones flagged hard), the flags of tiles trained every epoch (the real negatives) and
    how many distinct real crops were added. `crops` defaults to the training cities' crops
    (real.split: never a held-out city's). The crops only with cfg.real.train; labels
    (n, len(OUTPUTS))."""
    parts, labs, hards, n_crops = [tiles], [labels], [np.zeros(len(tiles), bool)], 0
    if cfg.real.train:
        from models.road_damage import real

        own = real.split(real.load())[0] if crops is None else crops
        own = own.subset(np.any(own.labels, axis=1))  # codes neither damage nor look-alike
        win = np.repeat(real.windows(own.images, window), cfg.real.repeat, axis=0)
        lab = np.repeat(own.labels, cfg.real.repeat, axis=0)
        # real crops are road surface: any further target columns (pavement) are 1
        lab = np.column_stack([lab, np.ones((len(lab), labels.shape[1] - lab.shape[1]),
                                            np.int8)])
        parts, labs, hards, n_crops = ([*parts, win], [*labs, lab], [*hards, lab[:, 0] == 1],
                                       len(own.labels))
    if cfg.real.frames:
        from models.road_damage import frames

        grid = Grid(**cfg.grid.model_dump())
        if grid.window != window:
            raise ValueError(f"model window {window} differs from the grid's {grid.window}")
        win, lab = frames.training_tiles(grid)
        # as many crack tiles as intact ones: a frame's tiles must not say "real frame = crack"
        intact = lab[:, 0] == 1
        rng = np.random.default_rng([seed, 5151])
        cracked = np.flatnonzero(~intact)
        cracked = rng.choice(cracked, min(len(cracked), int(intact.sum())), replace=False)
        pick = np.sort(np.concatenate([np.flatnonzero(intact), cracked]))
        win, lab = win[pick], lab[pick]
        lab = np.column_stack([lab, np.ones((len(lab), labels.shape[1] - lab.shape[1]),
                                            np.int8)])  # road surface: pavement 1
        parts, labs, hards = [*parts, win], [*labs, lab], [*hards, lab[:, 0] == 1]
    if cfg.real.nonroad_tiles and labels.shape[1] > len(CLASSES):
        from models.road_damage import nonroad

        grid = Grid(**cfg.grid.model_dump())
        if grid.window != window:
            raise ValueError(f"model window {window} differs from the grid's {grid.window}")
        win = nonroad.windows(grid, cfg.real.nonroad_tiles, seed)
        lab = np.zeros((len(win), labels.shape[1]), np.int8)
        lab[:, 0] = 1  # no damage; pavement (the last column) 0
        parts, labs, hards = [*parts, win], [*labs, lab], [*hards, np.zeros(len(win), bool)]
    if len(parts) == 1:
        return tiles, labels, None, 0
    return (np.concatenate(parts), np.concatenate(labs), np.concatenate(hards), n_crops)


# Share of validation road photos without a pothole that may show one (pothole_photo_cut): a
# per-tile cut tuned for tile F1 still fires somewhere on ~17% of 48-tile photos.
POTHOLE_PHOTO_FP = 0.03


def pothole_photo_cut(p_hole: np.ndarray, paved: np.ndarray, val_set: TileSet, tile_cut: float,
                      share: float = POTHOLE_PHOTO_FP, ceiling: float = 0.95) -> float:
    """The pothole (D40) cut: the tile-F1 cut `tile_cut`, raised until at most `share` of the
    validation photos without a pothole have a road-surface tile over it (a photo is reported
    with a pothole when any tile is), never above `ceiling`. p_hole, paved (n,) per tile of
    val_set. Photos-level false alarms are what staff see: a pothole on a sound road sends a
    crew out."""
    k = CLASSES.index("D40")
    worst = []
    for i in np.unique(val_set.photo):
        m = val_set.photo == i
        if not val_set.labels[m, k].any() and (m & paved).any():
            worst.append(float(p_hole[m & paved].max()))
    if not worst:
        return tile_cut
    q = float(np.quantile(worst, 1 - share, method="higher")) + 1e-3
    return round(float(min(ceiling, max(tile_cut, q))), 4)


def make_assets(cfg: RoadDamageConfig, init: str, model: Any, thresholds: Cuts,
                ) -> dict[str, Any]:
    """road.json content: everything serving needs besides the ONNX graph."""
    return {"classes": list(CLASSES), "labels_ja": LABELS_JA, "levels": list(LEVELS),
            "levels_ja": LEVELS_JA, "long_side": cfg.grid.long_side, "tile": cfg.grid.tile,
            "context": cfg.grid.context,
            "threshold": thresholds, "tile_mask_share": TILE_MASK_SHARE,
            "architecture": cfg.model.architecture, "init": init,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "parity_tiles": cfg.parity_tiles,
            # the model card's attribution: CC BY-SA 4.0 crops trained on (None: synthetic only)
            "real_data": REAL_DATA if cfg.real.train else None,
            "nonroad_data": NONROAD_DATA if cfg.real.nonroad_tiles else None,
            "frames_data": FRAMES_DATA if cfg.real.frames else None}


def familiarity(cfg: RoadDamageConfig, model: Any, fit_set: TileSet, val_set: TileSet,
                window: int, seed: int,
                val_outputs: tuple[np.ndarray, np.ndarray] | None = None,
                ) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
    """(feature statistics of the training road surface or None, road.json "road_check").

    The statistics are fitted on up to 6,000 road-surface training tiles; the distance cuts
    (ood.tune) on the validation photos and the training cities' real crops. `val_outputs`:
    net.predict_all of val_set.tiles when the caller has it (task.fit: from net.train), so the
    validation tiles are not run through the network again."""
    from models.road_damage import net, ood, real

    rc = cfg.road_check
    check = RoadCheck(rc.pavement_cut, rc.min_share, rc.floor_share, rc.low_share, None,
                      rc.unfamiliar_share, None).to_dict()
    road = np.flatnonzero(fit_set.pavement)
    if not rc.familiarity or len(road) < 8:
        return None, check
    pick = np.random.default_rng(seed).choice(road, min(len(road), 6000), replace=False)
    stats = ood.fit_ppca(net.predict_all(model, fit_set.tiles[np.sort(pick)])[1], seed=seed)
    vp, vemb = net.predict_all(model, val_set.tiles) if val_outputs is None else val_outputs
    vd = ood.distance(vemb, stats) if len(vemb) else np.zeros(0)
    paved = vp[:, len(CLASSES)] >= rc.pavement_cut if len(vp) else np.zeros(0, bool)
    medians = []
    for i in np.unique(val_set.photo):
        m = val_set.photo == i
        if val_set.pavement[m].mean() >= rc.min_share and (m & paved).any():
            medians.append(photo_distance(vd[m & paved]))
    try:
        own, _ = real.split(real.load())
        real_d = ood.distance(net.predict_all(model, real.windows(own.images, window))[1], stats)
    except FileNotFoundError:
        real_d = np.zeros(0)
    tuned = ood.tune(vd[val_set.pavement] if len(vd) else vd, np.array(medians), real_d)
    check.update(familiar=tuned["familiar"], far=tuned["far"])
    return stats, check


def metrics(ts: TileSet, probs: np.ndarray, base: np.ndarray, threshold: Cuts,
            keep: np.ndarray, out: dict[str, np.ndarray] | None = None,
            check: RoadCheck | None = None, photo: PhotoCheck | None = None,
            scene: np.ndarray | None = None) -> dict[str, Any]:
    """Tile and photo metrics over the tiles selected by `keep`, as serving reports them: tiles
    the model calls not road surface (out["pavement"] under check.pavement_cut) flag nothing,
    and a photo's level follows analyze.road_verdict with the road-photo check `photo` (a
    withheld level counts as wrong; scene: each photo's ImageNet probabilities, scene_probs,
    for a check that reads them)."""
    check = check or RoadCheck()
    n = len(ts.tiles)
    pav_p = out["pavement"] if out is not None else np.ones(n)
    dist = out["distance"] if out is not None else None
    paved_pred = pav_p >= check.pavement_cut
    flags = tile_flags(probs, threshold)
    flags[~paved_pred] = np.eye(len(CLASSES), dtype=flags.dtype)[0]
    truth, pred = ts.labels[keep].astype(bool), flags[keep].astype(bool)
    per_class = {c: round(f1(truth[:, k], pred[:, k]), 4) for k, c in enumerate(CLASSES)}
    present = [c for k, c in enumerate(CLASSES) if truth[:, k].any()]
    road_t, road_p = ts.pavement[keep], paved_pred[keep]
    out_m: dict[str, Any] = {
        "tiles": int(keep.sum()),
        "macro_f1": round(float(np.mean([per_class[c] for c in present])) if present else 0, 4),
        "f1": per_class,
        "crack_f1": round(f1(_cracked(truth), _cracked(pred)), 4),
        "cracked_tiles": int(_cracked(truth).sum()),  # what crack_f1 rests on
        "baseline_crack_f1": round(f1(_cracked(truth), base[keep]), 4),
        "damage_f1": round(f1(~truth[:, 0], ~pred[:, 0]), 4),
        "pavement": {"tiles_road_surface": int(road_t.sum()),
                     "accuracy": round(float((road_t == road_p).mean()), 4) if len(road_t)
                     else 0.0,
                     "not_pavement_f1": round(f1(~road_t, ~road_p), 4)},
    }
    owners = np.unique(ts.photo[keep])
    true_lv, pred_lv, err, road, holes = [], [], [], [], []
    for i in owners:
        m = ts.photo == i
        share = float(ts.pavement[m].mean())
        emb = out.get("embedding") if out is not None else None
        paved, levelled, _ = road_verdict(pav_p[m], None if dist is None else dist[m], check,
                                          None if emb is None else emb[m], photo, ts.tiles[m],
                                          None if scene is None else scene[i])
        r_true = crack_ratio(ts.labels[m], ts.pavement[m])
        r_pred = crack_ratio(flags[m], paved)
        road.append((share >= check.min_share, levelled))
        true_lv.append(mlit_level(r_true) if share >= check.min_share else "")
        pred_lv.append(mlit_level(r_pred) if levelled else "")
        if share >= check.min_share:
            err.append(abs(r_true - r_pred))
        if not ts.labels[m, CLASSES.index("D40")].any():
            holes.append(bool(flags[m, CLASSES.index("D40")].any()))
    is_road = np.array([r for r, _ in road], bool)
    got = np.array([g for _, g in road], bool)
    agree = np.array(true_lv) == np.array(pred_lv)
    out_m["photos"] = len(owners)
    out_m["mlit_accuracy"] = round(float(agree[is_road].mean()), 4) if is_road.any() else 0.0
    out_m["crack_ratio_mae"] = round(float(np.mean(err)), 4) if err else 0.0
    out_m["levels_true"] = {lv: true_lv.count(lv) for lv in LEVELS}
    out_m["road_photos"] = int(is_road.sum())
    out_m["non_road_photos"] = int((~is_road).sum())
    out_m["level_withheld_on_road"] = round(float((~got[is_road]).mean()), 4) \
        if is_road.any() else 0.0
    out_m["level_given_on_non_road"] = round(float(got[~is_road].mean()), 4) \
        if (~is_road).any() else 0.0
    out_m["pothole_on_photos_without"] = round(float(np.mean(holes)), 4) if holes else 0.0
    return out_m
