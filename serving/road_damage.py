"""road_damage endpoints: analyse patrol photos, overlays, GeoJSON/CSV export, corrections."""

from __future__ import annotations

import io
import logging
import uuid
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from PIL import Image
from pydantic import ConfigDict, Field
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from models.configs import Tenant
from models.road_damage import scene
from models.road_damage.analyze import RoadCheck, overlay_png, run_onnx, summarise
from models.road_damage.labels import CLASSES, LEVELS_JA
from models.road_damage.photo import Grid, PhotoError, photo_tiles
from models.road_damage.position import outside_warning
from models.road_damage.roadphoto import PhotoCheck
from serving.bounds import Index, RequestModel
from serving.deps import champion, get_runtime, metered, subscribed
from serving.downloads import download, geojson_download
from serving.runtime import LoadedModel, Runtime
from serving.store.files import FileStoreError
from serving.uploads import PhotoForm, request_body

TASK = "road_damage"
NO_LEVEL_JA = "判定なし"  # a photo without a level (not a road photo, or unlike the training data)
ASSETS = "road.json"
MAX_FILES = 20
MAX_FILE_MB = 20
router = APIRouter(prefix=f"/v1/{TASK}", tags=[TASK])
log = logging.getLogger("kyodo")
Subscriber = Annotated[Tenant, Depends(subscribed(TASK))]
Rt = Annotated[Runtime, Depends(get_runtime)]


class Correction(RequestModel):
    """Staff verdict on a photo (no row/col) or one tile: right, or wrong with the true labels."""

    model_config = ConfigDict(extra="forbid")
    batch_id: str = Field(max_length=64)
    index: Index = Field(description="photo index in the batch (as in the analyze answer)")
    row: Index | None = None
    col: Index | None = None
    correct: bool
    labels: list[Literal["none", "D00", "D10", "D20", "D40"]] = Field(
        default_factory=list, max_length=5, description="the true labels when the model was wrong")
    note: str = Field(default="", max_length=500)


class CorrectionsRequest(RequestModel):
    """Corrections recorded together (all or nothing)."""

    model_config = ConfigDict(extra="forbid")
    items: list[Correction] = Field(min_length=1, max_length=2000)


async def _uploads(request: Request) -> list[UploadFile]:
    """The multipart 'files' (or 'file') parts; 4xx naming what is wrong."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "multipart/form-data":
        raise HTTPException(415, f"content-type {ctype or 'missing'}: send multipart/form-data "
                                 "with photos in the field 'files'")
    limit = (MAX_FILE_MB * MAX_FILES + 1) * 1_000_000
    if int(request.headers.get("content-length") or 0) > limit:
        raise HTTPException(413, f"request larger than {limit // 1_000_000} MB "
                                 f"({MAX_FILES} photos of at most {MAX_FILE_MB} MB)")
    try:
        form = await request.form(max_files=MAX_FILES + 1, max_fields=50)
    except MultiPartException as exc:
        raise HTTPException(413 if "Too many" in str(exc) else 400,
                            f"files: {exc} (at most {MAX_FILES} photos per request)") from None
    files = [f for k, f in form.multi_items() if k in ("files", "file")
             and isinstance(f, UploadFile)]
    if not files:
        raise HTTPException(422, "files: no photo uploaded (multipart field 'files')")
    if len(files) > MAX_FILES:
        raise HTTPException(413, f"files: {len(files)} photos; at most {MAX_FILES} per request")
    for f in files:
        size = f.size or 0  # starlette's form parser sets it; the type allows None
        if size > MAX_FILE_MB * 1_000_000:
            raise HTTPException(413, f"{f.filename}: {size / 1e6:.1f} MB; at most "
                                     f"{MAX_FILE_MB} MB per photo")
    return files


Decoded = tuple[str, np.ndarray, tuple[int, int], dict, np.ndarray]


def _decode(raw: list[tuple[str, bytes]], grid: Grid, skip: bool = False,
            ) -> tuple[list[Decoded], list[dict[str, str]]]:
    """(tiles of every usable photo, one entry per file that is not a usable photo: {"field":
    "files", "file", "message", "ja"}). Unless `skip`, any such file is a 422 naming each:
    `error` (English, every file) and `errors` (the page names them in Japanese and offers to
    analyse the other photos); with `skip` (the API's skip_unreadable) only a batch with no
    usable photo is."""
    out, bad = [], []
    for name, data in raw:
        try:
            out.append((name, *photo_tiles(data, grid)))
        except PhotoError as exc:
            bad.append({"field": "files", "file": name, "message": str(exc), "ja": exc.ja})
    if bad and (not skip or not out):
        raise HTTPException(422, {"error": "; ".join(f"{b['file']}: {b['message']}"
                                                     for b in bad), "errors": bad})
    return out, bad


def _warnings(facts: dict[str, Any], tenant: Tenant) -> list[dict[str, str]]:
    """What staff should check about a photo: its EXIF notes and a position outside the
    tenant's configured area (configs/tenants.yaml)."""
    far = outside_warning(facts["lat"], facts["lon"], tenant.area, tenant.name)
    return [*facts.get("warnings", []), *([far] if far else [])]


def _analyse(model: LoadedModel, raw: list[tuple[str, bytes]], tenant: Tenant,
             skipped: list[dict[str, str]] | None = None) -> list[dict[str, Any]]:
    """Per usable photo: the summary, EXIF facts, warnings and overlay PNG (all tiles in
    batched ONNX calls). An unusable file is a 422 (_decode), or with `skipped` given, is
    appended to it and left out (`index` then counts the analysed photos only)."""
    a = model.assets[ASSETS]
    check, photo = RoadCheck.of(a), PhotoCheck.of(a)
    decoded, bad = _decode(raw, Grid.of(a), skip=skipped is not None)
    if skipped is not None:
        skipped.extend(bad)
    out = run_onnx(model.session, np.concatenate([d[1] for d in decoded]))
    probs = _scene(model, photo, [d[4] for d in decoded])
    results, start = [], 0
    for i, (name, tiles, (rows, cols), facts, image) in enumerate(decoded):
        part = slice(start, start + len(tiles))
        start += len(tiles)
        p = out["probabilities"][part]
        res = summarise(p, rows, cols, a["threshold"], _part(out["pavement"], part),
                        _part(out["distance"], part), check, _part(out["embedding"], part),
                        photo, tiles, None if probs is None else probs[i])
        res.update(index=i, name=name, lat=facts["lat"], lon=facts["lon"],
                   taken_at=facts["taken_at"],
                   warnings=[*res.pop("level_warnings"), *_warnings(facts, tenant)])
        paved = np.array([c["pavement"] for line in res["grid"] for c in line], bool)
        res["overlay"] = overlay_png(image, p, rows, cols, a["threshold"], paved)
        res["image"] = _jpeg(image)  # what was analysed: corrections export it for training
        results.append(res)
    return results


def _scene(model: LoadedModel, photo: PhotoCheck | None, images: list[np.ndarray],
           ) -> np.ndarray | None:
    """The photos' ImageNet class probabilities (m, scene.CLASSES) from the package's
    scene.onnx, for a road-photo check that reads them (None otherwise). RuntimeError for a
    package whose check needs scene.onnx and lacks it (a broken export, not the client's
    fault)."""
    if photo is None or photo.scene_classes is None:
        return None
    session = model.extra.get("scene")
    if session is None:
        raise RuntimeError(f"{TASK} {model.version}: its road-photo check reads scene.onnx, "
                           "which the package lacks")
    return scene.run_onnx(session, np.stack([scene.thumbnail(i) for i in images]))


def _part(values: np.ndarray | None, part: slice) -> np.ndarray | None:
    return None if values is None else values[part]


def _unavailable(exc: FileStoreError, what: str) -> HTTPException:
    """503 for a file store outage: the operator's log gets the cause (paths, S3 errors), the
    client only that it is temporary."""
    log.error("road_damage: %s", exc)
    return HTTPException(503, f"{what}: the photo store is unavailable, try again later "
                              "(写真の保存先に接続できません。しばらくしてから再度お試しください)",
                         headers={"Retry-After": "30"})


def _jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@router.post("/analyze", openapi_extra=request_body({"multipart/form-data": PhotoForm}))
async def analyze(request: Request, tenant: Subscriber, rt: Rt,
                  skip_unreadable: Annotated[bool, Query(
                      description="analyse the usable photos and list the others in `skipped` "
                                  "instead of refusing the batch (422 only when none is usable)"
                  )] = False) -> dict[str, Any]:
    """Photos (JPEG, PNG or iPhone HEIC, up to 20 of 20 MB each) -> per photo: damage types
    with confidence, crack ratio over road-surface tiles, `pavement_share` (share of tiles that
    are road surface), MLIT level (null for a photo that is not a road photo or unlike the
    training data, with a warning saying why), tile grid (each cell with `pavement`), GPS and
    time from EXIF, warnings (no level, unfamiliar pavement, GPS 0°, 0° = no fix, unreadable
    time, far outside the municipality), overlay URL (tiles that are not road surface greyed);
    worst first, photos without a level last. Top-level `warnings` lists every photo's
    warnings with the photo name; `summary` counts levels and `none` (no level). A file that
    is not a usable photo is a 422 naming each (`errors`), or with `skip_unreadable=true` is
    left out and listed in `skipped` (same entries: file, message, reason in Japanese `ja`)."""
    model = champion(rt, TASK)
    with metered(rt, tenant, TASK, "analyze", model.version) as meter:
        files = await _uploads(request)
        raw = [(f.filename or f"photo{i + 1}", await f.read()) for i, f in enumerate(files)]
        skipped: list[dict[str, str]] = []
        results = await run_in_threadpool(_analyse, model, raw, tenant,
                                          skipped if skip_unreadable else None)
        meter["images"] = len(results)
        meter["rows"] = sum(r["rows"] * r["cols"] for r in results)
    batch_id = uuid.uuid4().hex[:16]
    try:
        await run_in_threadpool(rt.store.save_road_batch, batch_id, tenant.code, model.version,
                                results)
    except FileStoreError as exc:
        raise _unavailable(exc, "the photos were analysed but could not be saved") from None
    photos = []
    for r in sorted(results, key=lambda r: -r["severity"]):
        body = {k: v for k, v in r.items() if k not in ("overlay", "image")}
        body["overlay_url"] = f"/v1/{TASK}/batches/{batch_id}/photos/{r['index']}/overlay.png"
        photos.append(body)
    return {"task": TASK, "model_version": model.version, "batch_id": batch_id,
            "classes": list(CLASSES), "labels_ja": model.assets[ASSETS]["labels_ja"],
            "levels_ja": LEVELS_JA, "photos": photos,
            "summary": {**{lv: sum(r["mlit_level"] == lv for r in results) for lv in LEVELS_JA},
                        "none": sum(r["mlit_level"] is None for r in results)},
            "warnings": [{"photo": p["name"], **w} for p in photos for w in p["warnings"]],
            "skipped": skipped,
            "exports": {f: f"/v1/{TASK}/batches/{batch_id}/export?format={f}"
                        for f in ("geojson", "csv")}}


@router.get("/batches")
def batches(tenant: Subscriber, rt: Rt) -> dict[str, Any]:
    """Your analysed batches, newest first."""
    return {"batches": rt.store.road_batches(tenant.code)}


def _batch(rt: Runtime, tenant: Tenant, batch_id: str) -> list[dict[str, Any]]:
    photos = rt.store.road_photos(tenant.code, batch_id)
    if photos is None:  # another tenant's batch looks exactly like a missing one
        raise HTTPException(404, f"no batch {batch_id!r} for {tenant.name}")
    return photos


@router.get("/batches/{batch_id}")
def batch(batch_id: str, tenant: Subscriber, rt: Rt) -> dict[str, Any]:
    """One of your batches: every photo's result, worst first."""
    photos = sorted(_batch(rt, tenant, batch_id), key=lambda r: -r["severity"])
    return {"batch_id": batch_id, "photos": photos}


@router.get("/batches/{batch_id}/photos/{index}/overlay.png")
def overlay(batch_id: str, index: Annotated[int, Path(ge=0, le=9_999)], tenant: Subscriber,
            rt: Rt) -> Response:
    """The photo as analysed with damaged tiles tinted (red cracks, purple potholes)."""
    try:
        png = rt.store.road_overlay(tenant.code, batch_id, index)
    except FileStoreError as exc:
        raise _unavailable(exc, "the overlay cannot be read") from None
    if png is None:
        raise HTTPException(404, f"no photo {index} in batch {batch_id!r} for {tenant.name}")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private"})


def _warning_text(photo: dict[str, Any]) -> str:
    """The photo's warnings for staff, in Japanese (batches saved before warnings: none)."""
    return " / ".join(w["ja"] for w in photo.get("warnings") or [])


def batch_table(photos: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per photo: lat, lon, level (empty when withheld), crack ratio, pavement share,
    types, photo name, warnings (worst first)."""
    rows = [{"photo": p["name"], "lat": p["lat"], "lon": p["lon"], "taken_at": p["taken_at"],
             "mlit_level": p["mlit_level"] or "", "crack_ratio": p["crack_ratio"],
             "pavement_share": p.get("pavement_share"),
             "types": " ".join(t["type"] for t in p["types"]), "warnings": _warning_text(p)}
            for p in sorted(photos, key=lambda r: -r["severity"])]
    return pd.DataFrame(rows, columns=["photo", "lat", "lon", "taken_at", "mlit_level",
                                       "crack_ratio", "pavement_share", "types", "warnings"])


def geojson(photos: list[dict[str, Any]]) -> dict[str, Any]:
    """Photos with a GPS position as GeoJSON points (lon, lat order) for the office GIS; a
    photo without a fix (no GPS, or 0°, 0°) has no point. `warnings` (Japanese) says what to
    check, e.g. a position far outside the municipality or why a photo has no level
    (mlit_level null)."""
    features = [{"type": "Feature", "geometry": {"type": "Point",
                                                 "coordinates": [p["lon"], p["lat"]]},
                 "properties": {"photo": p["name"], "mlit_level": p["mlit_level"],
                                "mlit_level_ja": LEVELS_JA.get(p["mlit_level"], NO_LEVEL_JA),
                                "crack_ratio": p["crack_ratio"],
                                "pavement_share": p.get("pavement_share"),
                                "taken_at": p["taken_at"],
                                "types": [t["type"] for t in p["types"]],
                                "warnings": _warning_text(p)}}
                for p in sorted(photos, key=lambda r: -r["severity"]) if p["lat"] is not None]
    return {"type": "FeatureCollection", "features": features}


@router.get("/batches/{batch_id}/export")
def export(batch_id: str, tenant: Subscriber, rt: Rt,
           format: Literal["geojson", "csv", "csv_cp932", "xlsx"] = "geojson") -> Response:
    """The batch for GIS: GeoJSON points, CSV or xlsx (lat, lon, level, types, photo, warnings),
    all through the formula-safe download writer (models/downloads.py)."""
    photos = _batch(rt, tenant, batch_id)
    if format == "geojson":
        return geojson_download(geojson(photos), f"road-{batch_id}")
    return download(batch_table(photos), format, f"road-{batch_id}")


@router.post("/corrections")
def corrections(body: CorrectionsRequest, tenant: Subscriber, rt: Rt) -> dict[str, Any]:
    """Record staff verdicts on photos or tiles; they become training labels."""
    for i, c in enumerate(body.items):
        photos = rt.store.road_photos(tenant.code, c.batch_id)
        if photos is None:
            raise HTTPException(404, f"items.{i}.batch_id: no batch {c.batch_id!r} for "
                                     f"{tenant.name}")
        photo = next((p for p in photos if p["index"] == c.index), None)
        if photo is None:
            raise HTTPException(422, f"items.{i}.index: batch {c.batch_id} has no photo "
                                     f"{c.index}")
        if (c.row is None) != (c.col is None):
            raise HTTPException(422, f"items.{i}: give both row and col for a tile, or neither")
        if c.row is not None and (c.row >= photo["rows"] or c.col >= photo["cols"]):
            raise HTTPException(422, f"items.{i}: tile ({c.row}, {c.col}) is outside the "
                                     f"{photo['rows']} x {photo['cols']} grid")
        if not c.correct and not c.labels:
            raise HTTPException(422, f"items.{i}.labels: say what the true labels are when the "
                                     "model was wrong (e.g. [\"none\"] or [\"D00\"])")
    saved = rt.store.save_road_corrections(tenant.code, [c.model_dump() for c in body.items])
    return {"saved": saved}


@router.get("/corrections")
def list_corrections(tenant: Subscriber, rt: Rt) -> dict[str, Any]:
    """Your recorded corrections, newest first."""
    return {"corrections": rt.store.road_corrections(tenant.code)}
