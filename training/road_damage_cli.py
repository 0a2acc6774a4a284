"""`kyodo road`: import real pavement photo datasets and export staff corrections as data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from models.task import FilesFrames
    from training.workspace import Workspace

road_app = typer.Typer(help="road_damage data: import photo datasets, export corrections.",
                       no_args_is_help=True, pretty_exceptions_enable=False)
import_app = typer.Typer(help="Import a dataset into data/road_damage/ for one tenant.",
                         no_args_is_help=True)
road_app.add_typer(import_app, name="import")
app, GROUP = road_app, "road"  # `kyodo road ...` (training/cli.py finds it by the task's name)

Tenant = Annotated[str, typer.Option(help="Municipality code the photos belong to.")]
Append = Annotated[bool, typer.Option("--append", help="Add to the tenant's photos (a "
                                                       "re-imported photo replaces its rows).")]
Replace = Annotated[bool, typer.Option("--replace", help="Replace the tenant's photos with "
                                                         "these (needed when it has some).")]


def _workspace() -> Workspace:
    from training.console import workspace

    return workspace()


def _check_target(code: str, append: bool, replace: bool) -> None:
    """Refuse before any work: an unknown or non-subscribing municipality, both --append and
    --replace, or neither when the tenant already has photos (replacing them silently would
    drop a municipality's training photos: the user says which)."""
    from training.data import frame_path

    ws = _workspace()
    task = ws.task("road_damage")
    known = {t.code: t for t in ws.tenants.tenants}
    if code not in known:
        raise _fail(f"--tenant {code}: no municipality with this code in configs/tenants.yaml "
                    f"(known: {', '.join(sorted(known))})")
    if code not in {t.code for t in ws.subscribers(task.name)}:
        raise _fail(f"tenant {code} ({known[code].name}) does not subscribe to road_damage "
                    "(configs/tenants.yaml)")
    if append and replace:
        raise _fail("--append and --replace: choose one")
    path = frame_path(ws, task, task.frames[0], code)  # the photos frame
    if not (append or replace) and path.is_file():
        with path.open(encoding="utf-8") as f:
            held = max(sum(1 for _ in f) - 1, 0)  # data rows under the header
        if held:
            raise _fail(f"tenant {code} already has {held} photos ({path}): pass --append to "
                        "add these to them, or --replace to replace them")


def _write(frames: FilesFrames, code: str, append: bool) -> None:
    """Write a tenant's imported frames and files into the workspace's data folder (the target
    was checked by _check_target). Replacing also removes the tenant's earlier photo and mask
    files (data/road_damage/{images,masks}/<code>/), which no frame lists any more; a DVC
    data version made before (`kyodo retrain` makes one) still holds them."""
    import shutil

    from models.road_damage.corrections import KEYS
    from training.data import append_tenant, write_tenant

    ws = _workspace()
    task = ws.task("road_damage")
    if append:  # keep the tenant's earlier photos; a re-imported photo replaces its old rows
        append_tenant(ws, task, code, frames, KEYS)
    else:
        for folder in ("images", "masks"):
            shutil.rmtree(ws.path("data") / task.name / folder / code, ignore_errors=True)
        write_tenant(ws, task, code, frames)
    typer.echo(f"{code}: {len(frames['photos'])} photos, {len(frames['tiles'])} tiles "
               f"({int((frames['tiles']['none'].astype(int) == 0).sum())} damaged) -> "
               f"{ws.path('data') / task.name}")
    typer.echo("next: kyodo retrain road_damage  (a new data version, train + export, the "
               "promotion gate; README: onboarding)")


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(2)


@import_app.command("masks")
def import_masks(images: Annotated[Path, typer.Argument(
                     help="Folder of photos.", exists=True, file_okay=False)],
                 masks: Annotated[Path, typer.Argument(
                     help="Folder of binary masks, same file names (any image suffix).",
                     exists=True, file_okay=False)],
                 tenant: Tenant, append: Append = False, replace: Replace = False,
                 share: Annotated[float, typer.Option(help="Crack share of a tile's pixels "
                                                           "that makes it a crack tile.")] = 0.005,
                 ) -> None:
    """Image + binary mask datasets (CRACK500, CFD, DeepCrack layout), tiled as in training."""
    _import_gridded("import_masks", images, masks, tenant, share, append, replace)


def _import_gridded(importer: str, images: Path, labels: Path, tenant: str, share: float,
                    append: bool, replace: bool) -> None:
    """Run a photo importer that tiles with the workspace's grid, then write its frames."""
    from models.road_damage import importers
    from models.road_damage.photo import Grid

    _check_target(tenant, append, replace)
    cfg = _workspace().task_config(_workspace().task("road_damage"))
    try:
        frames = getattr(importers, importer)(images, labels, tenant,
                                              Grid(**cfg.grid.model_dump()), share)
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    _write(frames, tenant, append)


@import_app.command("voc")
def import_voc(images: Annotated[Path, typer.Argument(
                   help="Folder of photos.", exists=True, file_okay=False)],
               annotations: Annotated[Path, typer.Argument(
                   help="Folder of Pascal VOC .xml files, same names (RDD).", exists=True,
                   file_okay=False)],
               tenant: Tenant, append: Append = False, replace: Replace = False,
               share: Annotated[float, typer.Option(help="Share of a tile a class's boxes must "
                                                         "cover to label it.")] = 0.1,
               ) -> None:
    """Pascal VOC bounding boxes with RDD classes (Road Damage Dataset layout), tiled as in
    training."""
    _import_gridded("import_voc", images, annotations, tenant, share, append, replace)


@import_app.command("folders")
def import_folders(root: Annotated[Path, typer.Argument(
                       help="Folder with one sub-folder per class (none/crack/D00/...).",
                       exists=True, file_okay=False)],
                   tenant: Tenant, append: Append = False, replace: Replace = False,
                   crack_as: Annotated[str, typer.Option(help="Class of a 'crack' folder.")] =
                   "D00") -> None:
    """Class-folder datasets: each image is one tile labelled by its folder."""
    from models.road_damage import importers

    _check_target(tenant, append, replace)
    try:
        frames = importers.import_folders(root, tenant, crack_as)
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    _write(frames, tenant, append)


@road_app.command("export-corrections")
def export_corrections(out: Annotated[Path, typer.Option(help="Output folder (data layout: "
                                                         "<tenant>.csv, tiles/, images/).")] =
                       Path("feedback/road_damage")) -> None:
    """Corrected photos as training data: the analysed image, tile labels = the model's except
    where staff corrected a tile (or the whole photo)."""
    from models.road_damage.corrections import corrections_frames
    from serving.store import Store

    ws = _workspace()
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    photos = Store(ws.path("state") / "kyodo.db").road_training_photos()
    if not photos:
        typer.echo("no corrections recorded yet")
        return
    for code, frames in corrections_frames(photos).items():
        for rel, blob in frames.files.items():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(blob)
        frames["photos"].to_csv(out / f"{code}.csv", index=False, lineterminator="\n")
        (out / "tiles").mkdir(parents=True, exist_ok=True)
        frames["tiles"].to_csv(out / "tiles" / f"{code}.csv", index=False, lineterminator="\n")
        typer.echo(f"{code}: {len(frames['photos'])} corrected photos -> {out}")
