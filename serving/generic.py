"""The routes of a listed task that has no serving/<task>.py of its own (README: Adding a task).

Built from what the Task protocol declares, so a new tabular task needs no HTTP code:

- POST /v1/<task>/score `{"rows": [...]}`: rows of the task's first frame (`frames[0]`), each
  field typed by the task's pandera schema of that frame (`schema(frames[0])`: integer, number,
  boolean, text or date-time columns; unknown fields are a 422). The unit id (`units[0]`) is
  required; every column the champion reads must be given in every row (422 naming row and
  column). Answers per row the unit id and the model's score (models/drift.py `score_of`:
  P(positive) of a classifier's `*_probabilities` output, else the first output's largest
  column), with the model version. Metered like every task's scoring.
- GET /v1/<task>/model: the served champion (version, headline metric and value, trained at)
  and the columns it reads, for callers and the generic page (serving/static/_task.html).

The columns the champion reads are its packaged feature names, in input order: the keys of
the package's drift.json (written at export from `task.feature_names(model)`, training/
pipeline.py drift_reference), not a second list. Both routes need a subscribing tenant's key.

Importing models/<task>/task.py is what this costs the serving process, so a task served this
way keeps that module free of the training stack: one that imports torch, lightgbm,
scikit-learn, transformers or mlflow is a TaskWiringError at start (the four real tasks have
their own routers and never come here). No `from __future__ import annotations`: FastAPI reads
the route functions' annotations, which name models built here at run time.
"""

import sys
from datetime import datetime
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field, create_model

from models.configs import Tenant, task_labels
from models.drift import REFERENCE, score_of
from models.task import AnyTask, load_task, task_module
from serving.bounds import MAX_SCORE, RequestModel
from serving.deps import champion, get_runtime, metered, subscribed
from serving.runtime import ORT_TYPES, LoadedModel, Runtime

# what a task served by the generic routes may not pull into the serving process
TRAINING_STACK = ("torch", "transformers", "lightgbm", "sklearn", "mlflow")
KINDS: dict[str, type] = {"i": int, "u": int, "f": float, "b": bool, "M": datetime}


class TaskWiringError(RuntimeError):
    """A listed task the service cannot serve: a serving/<task>.py without a proper `router`,
    or no serving module and a task that the generic routes cannot serve (README: Adding a
    task)."""


class ScoreRow(BaseModel):
    """One scored row: the unit id and the model's score."""

    id: str = Field(description="the row's unit id (the task's `units[0]` column)")
    score: float = Field(description="the model's score of the row (higher: more likely)")


class ScoreOut(BaseModel):
    """The rows' scores, in request order, and the model that gave them."""

    task: str
    model_version: str
    unit: str = Field(description="the column the ids come from")
    scores: list[ScoreRow]


class ModelOut(BaseModel):
    """The task's served champion and the columns it reads."""

    task: str
    label: str = Field(description="the task's Japanese name (configs/platform.yaml tasks)")
    model_version: str
    headline_metric: str | None
    headline_value: float | None
    trained_at: str | None
    unit: str = Field(description="the id column every row needs")
    inputs: list[str] = Field(description="the columns the model reads, each needed per row")
    columns: list[str] = Field(description="every column a row may carry (the task's schema)")


def generic_router(name: str) -> APIRouter:
    """The /v1/<name> router of a listed task without serving/<name>.py; TaskWiringError naming
    the file and what is missing when the task cannot be served this way."""
    task = _task(name)
    frame, unit = task.frames[0], task.units[0]
    row_model = _row_model(task, frame, unit)
    body_model = create_model(f"{_camel(name)}ScoreRequest", __base__=RequestModel,
                              __doc__=f"Rows of {name}'s `{frame}` frame to score.",
                              rows=(list[row_model],  # type: ignore[valid-type]
                                    Field(min_length=1, max_length=MAX_SCORE)))
    subscriber = Annotated[Tenant, Depends(subscribed(name))]
    rt_dep = Annotated[Runtime, Depends(get_runtime)]
    router = APIRouter(prefix=f"/v1/{name}", tags=[name])

    def score(body: body_model,  # type: ignore[valid-type]  # a model built just above
              tenant: subscriber, rt: rt_dep) -> ScoreOut:
        model = champion(rt, name)
        rows = body.rows  # type: ignore[attr-defined]
        with metered(rt, tenant, name, "score", model.version) as box:
            box["rows"] = len(rows)
            X = _matrix(rows, model, row_model, tenant)
            session = model.session
            outputs = dict(zip([o.name for o in session.get_outputs()],
                               session.run(None, {session.get_inputs()[0].name: X}),
                               strict=True))
            scores = score_of(outputs)
        return ScoreOut(task=name, model_version=model.version, unit=unit, scores=[
            ScoreRow(id=str(getattr(r, unit)), score=float(s))
            for r, s in zip(rows, scores, strict=True)])

    def model_info(tenant: subscriber, rt: rt_dep) -> ModelOut:
        model = champion(rt, name)
        return ModelOut(task=name, label=task_labels()[name], model_version=model.version,
                        headline_metric=model.meta.get("headline_metric"),
                        headline_value=_number(model.meta.get("headline_value")),
                        trained_at=model.meta.get("trained_at"), unit=unit,
                        inputs=input_columns(model), columns=list(row_model.model_fields))

    score.__doc__ = (f"Score rows of {name}'s `{frame}` frame with the champion model: per row "
                     f"its `{unit}` and the score. Every column GET /v1/{name}/model lists in "
                     "`inputs` is needed in every row.")
    model_info.__doc__ = f"The served {name} model and the columns it reads."
    router.post("/score")(score)
    router.get("/model")(model_info)
    return router


def _task(name: str) -> AnyTask:
    """The listed task, imported by path, checked to have left the training stack out."""
    where = f"models/{name}/task.py"
    if name not in task_labels():
        raise TaskWiringError(f"task {name!r} is not listed in configs/platform.yaml `tasks`")
    before = set(sys.modules)
    try:
        task = load_task(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not task_module(name).startswith(exc.name):
            raise
        raise TaskWiringError(f"task {name!r} is listed in configs/platform.yaml but has neither "
                              f"serving/{name}.py nor {where}") from exc
    pulled = sorted({m.split(".")[0] for m in set(sys.modules) - before} & set(TRAINING_STACK))
    if pulled:
        raise TaskWiringError(f"{where} imports {', '.join(pulled)}, which the serving process "
                              f"never loads: import it inside the training methods, or give "
                              f"the task its own serving/{name}.py")
    return task


def _row_model(task: AnyTask, frame: str, unit: str) -> type[RequestModel]:
    """A request row of `frame`: its schema's columns, typed, all optional but the unit id."""
    schema = task.schema(frame)
    columns = getattr(schema, "columns", None)
    if not columns or unit not in columns:
        raise TaskWiringError(
            f"models/{task.name}/task.py: schema({frame!r}) gives no pandera schema with the "
            f"unit column {unit!r}, from which the generic /v1/{task.name}/score builds its "
            f"request; declare it, or give the task its own serving/{task.name}.py")
    fields: dict[str, Any] = {}
    for col, spec in columns.items():
        kind = getattr(getattr(spec.dtype, "type", None), "kind", "O")
        typ = KINDS.get(kind, str)
        about = spec.description or spec.title
        fields[col] = ((typ, Field(description=about)) if col == unit
                       else (typ | None, Field(default=None, description=about)))
    return create_model(f"{_camel(task.name)}Row", __base__=RequestModel,
                        __doc__=f"One row of {task.name}'s `{frame}` frame.", **fields)


def input_columns(model: LoadedModel) -> list[str]:
    """The columns the champion reads, in its input's order: the feature names its package's
    drift reference was written with at export; 503 when the package has none."""
    features = (model.assets.get(REFERENCE) or {}).get("features", {})
    names = [n for n in features if n != "score"]
    if not names:
        raise HTTPException(503, f"the {model.task} champion {model.tag} names no input "
                                 f"columns ({REFERENCE}: the task's feature_names at export); "
                                 "a task with image or derived inputs needs its own "
                                 f"serving/{model.task}.py")
    return names


def _matrix(rows: list[Any], model: LoadedModel, row_model: type[BaseModel], tenant: Tenant,
            ) -> np.ndarray:
    """The model's input (rows, columns) in its dtype; 422 naming row and column for a
    missing or non-numeric value, 403 for a row of another tenant."""
    names = input_columns(model)
    unknown = [n for n in names if n not in row_model.model_fields]
    if unknown:
        raise HTTPException(503, f"the {model.task} champion reads {', '.join(unknown)}, which "
                                 f"models/{model.task}/task.py's schema does not declare")
    X = np.empty((len(rows), len(names)), np.float64)
    for i, row in enumerate(rows):
        code = getattr(row, "tenant_code", None)
        if code is not None and str(code) != tenant.code:
            raise HTTPException(403, f"rows.{i}.tenant_code: {tenant.name} may only send its "
                                     f"own rows ({tenant.code})")
        for j, col in enumerate(names):
            value = getattr(row, col)
            if value is None:
                raise HTTPException(422, f"rows.{i}.{col}: missing; the model reads "
                                         f"{', '.join(names)}")
            try:
                X[i, j] = float(value)
            except (TypeError, ValueError):
                raise HTTPException(422, f"rows.{i}.{col}: {value!r} is not a number") from None
    dtype = ORT_TYPES.get(model.session.get_inputs()[0].type, np.float32)
    return X.astype(dtype)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))
