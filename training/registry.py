"""Promotion gate, rollback and the model list, on MLflow registry aliases (not stages)."""

from __future__ import annotations

import json
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from models.task import Task
from training import data as D
from training import package, tracking
from training.pipeline import holdout_fingerprint
from training.workspace import Workspace


class PromotionRefused(RuntimeError):
    """The candidate does not beat the current champion on the same holdout."""


def _version_value(task: str, version: str) -> tuple[float, str]:
    mv = tracking.client().get_model_version(task, version)
    return float(mv.tags["headline_value"]), mv.tags.get("holdout", "")


def _champion_on(ws: Workspace, task: Task, version: str, holdout: str) -> float | str:
    """The champion's headline on the candidate's holdout, re-evaluating if holdouts differ.

    Returns the value, or a reason (str) when the champion cannot be scored with the current
    code at all: a champion exported before a feature or output change (e.g. claims 38 → 47
    features, road 5 → 6 ONNX outputs) fails inside its own evaluation. Such a champion could
    not be served by this code either, so the caller promotes without a comparison and logs why.

    Raises:
        PromotionRefused: the candidate's holdout is not the current data's (retrain first).
    """
    value, its_holdout = _version_value(task.name, version)
    if its_holdout == holdout:
        return value
    cfg = ws.task_config(task)
    _, test = task.split(cfg, D.load_pooled(ws, task, progress=False))
    if holdout_fingerprint(test, task) != holdout:
        raise PromotionRefused("the candidate's holdout is not the current data's; retrain first")
    try:
        model = _native_model(task.name, version)
        return float(task.evaluate(cfg, model, test)["headline"]["value"])
    except Exception as exc:  # any failure means "not comparable"; the caller logs it
        return (f"champion {version} cannot be scored by the current code "
                f"({type(exc).__name__}: {str(exc)[:200]})")


def _native_model(task: str, version: str) -> Any:
    """The version's pickled native model, from its MLflow run's artifacts."""
    import mlflow

    run_id = tracking.client().get_model_version(task, version).tags["run_id"]
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="native/model.pkl",
                                                   dst_path=tmp)
        return pickle.loads(Path(path).read_bytes())


MAX_REASON = 1000  # characters of a --force reason; the record goes into registry tags


class OverrideError(ValueError):
    """--force without a non-empty --reason (or with one over MAX_REASON), or --reason alone."""


def _gate(value: float, incumbent: float) -> str:
    """'beats', 'ties' or 'trails': the candidate's headline against the champion's, exactly
    (both come from the same evaluation code on the same holdout; higher is better)."""
    return "beats" if value > incumbent else "ties" if value == incumbent else "trails"


def _refusal(task: str, version: str, value: float, current: str, incumbent: float,
             gate: str) -> str:
    """The refusal message: a tie says it is one, and both name the override."""
    # every digit the metric has (2,179,724 vs 2,181,038 both read 2.18e+06 at .4g)
    if gate == "ties":
        head = (f"version {version} ({value:,.10g}) ties champion {current} ({incumbent:,.10g}) "
                f"on the same holdout; the gate promotes only a candidate that beats it")
    else:
        head = (f"version {version} ({value:,.10g}) does not beat champion {current} "
                f"({incumbent:,.10g}) on the same holdout")
    return (f"{head}. To promote it on purpose (e.g. a change the headline does not measure): "
            f"kyodo promote {task} --version {version} --force --reason \"why\"")


def _force_reason(force: bool, reason: str | None) -> str | None:
    """The stripped reason of a forced promotion, None without --force.

    Raises:
        OverrideError: force with an empty or missing reason, or one over MAX_REASON; a reason
            without force (it would be recorded nowhere).
    """
    if not force:
        if reason is not None:
            raise OverrideError("--reason is recorded only with --force; without it the gate "
                                "decides and nothing needs a reason")
        return None
    why = (reason or "").strip()
    if not why:
        raise OverrideError("--force needs --reason \"...\": say why the candidate should "
                                 "replace the champion although it does not beat it (the "
                                 "reason is kept in the audit record)")
    if len(why) > MAX_REASON:
        raise OverrideError(f"--reason: {len(why):,} characters; at most {MAX_REASON:,}")
    return why


def _record_forced(task: str, version: str, entry: dict[str, Any]) -> None:
    """Append the forced promotion to the version's `forced_promotions` tag (a JSON list, so a
    version forced twice keeps both) and tag it `promotion_forced=true`: the record stays on the
    version when a rollback rewrites the champion history."""
    client = tracking.client()
    tags = client.get_model_version(task, version).tags
    records = [*json.loads(tags.get("forced_promotions", "[]")), entry]
    client.set_model_version_tag(task, version, "forced_promotions", json.dumps(records))
    client.set_model_version_tag(task, version, "promotion_forced", "true")


def promote(ws: Workspace, task: Task, version: str | None = None, who: str = "cli",
            force: bool = False, reason: str | None = None) -> dict[str, Any]:
    """Move alias 'champion' to `version` (default: latest) if it beats the current champion.

    A champion that the current code cannot score (see `_champion_on`) is replaced without a
    comparison; the history entry then carries `compared: false` and the reason.

    `force` promotes a candidate that ties or trails the champion's headline, on purpose; it
    needs a non-empty `reason`. Every other check still runs: the version is a registered one
    (registered only after export's ONNX parity gate passed) and its holdout must be the
    current data's. The history entry gets `forced`: {reason, gate ('ties', 'trails', 'beats',
    'no champion', 'not compared': what the gate found), candidate_value, replaced_version,
    replaced_value}; the same record, with who and when, is appended to the version's MLflow
    tag `forced_promotions`.

    Raises:
        OverrideError: force without a reason, or a reason without force.
        PromotionRefused: no versions, an unknown version, a stale holdout, or (without force)
            no improvement.
    """
    why = _force_reason(force, reason)
    tracking.setup(ws, task.name)
    client = tracking.client()
    versions = client.search_model_versions(f"name='{task.name}'")
    if not versions:
        raise PromotionRefused(f"no registered versions of {task.name}; run `kyodo export` first")
    registered = sorted(int(v.version) for v in versions)
    version = version or str(registered[-1])
    if version not in {str(v) for v in registered}:
        raise PromotionRefused(f"{task.name} has no version {version!r}; registered: "
                               f"{', '.join(map(str, registered))}")
    value, holdout = _version_value(task.name, version)
    history = tracking.champion_history(task.name)
    current = history[-1]["version"] if history else None
    if current == version:
        package.publish(ws, task.name, version, history)
        return {"promoted": False, "version": version, "reason": "already champion"}
    gate, incumbent, uncompared = _compare(ws, task, version, value, holdout, current)
    if gate in ("ties", "trails") and why is None:
        raise PromotionRefused(_refusal(task.name, version, value, str(current),
                                        float(incumbent or 0), gate))
    entry = {"version": version, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "by": who,
             "metric": client.get_model_version(task.name, version).tags["headline_metric"],
             "value": value, **uncompared}
    if why is not None:  # the audit record is written before anything moves
        entry["forced"] = {"reason": why, "gate": gate, "candidate_value": value,
                           "replaced_version": current, "replaced_value": incumbent}
        _record_forced(task.name, version, entry)
    client.set_registered_model_alias(task.name, tracking.CHAMPION, version)
    tracking.set_champion_history(task.name, [*history, entry])
    package.publish(ws, task.name, version, [*history, entry])
    return {"promoted": True, **entry, "previous": current}


def _compare(ws: Workspace, task: Task, version: str, value: float, holdout: str,
             current: str | None) -> tuple[str, float | None, dict[str, Any]]:
    """(gate, champion's headline, history fields) of the candidate against the champion:
    gate 'beats' / 'ties' / 'trails', 'no champion', or 'not compared' (a champion the current
    code cannot score; the fields then say `compared: false` and why, also printed).

    Raises:
        PromotionRefused: the candidate's holdout is not the current data's.
    """
    if current is None:
        return "no champion", None, {}
    incumbent = _champion_on(ws, task, current, holdout)
    if isinstance(incumbent, str):
        print(f"{task.name}: {incumbent}; promoting version {version} without a comparison",
              file=sys.stderr)
        return "not compared", None, {"compared": False, "reason": incumbent}
    return _gate(value, incumbent), incumbent, {}


def rollback(ws: Workspace, task: Task, who: str = "cli") -> dict[str, Any]:
    """Restore the previous champion; the history keeps the rollback as its own entry."""
    tracking.setup(ws, task.name)
    history = tracking.champion_history(task.name)
    if len(history) < 2:
        raise PromotionRefused(f"{task.name} has no previous champion to roll back to")
    previous = history[-2]
    client = tracking.client()
    client.set_registered_model_alias(task.name, tracking.CHAMPION, previous["version"])
    entry = {**previous, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "by": who,
             "rollback_of": history[-1]["version"]}
    tracking.set_champion_history(task.name, [*history[:-2], entry])
    package.publish(ws, task.name, previous["version"], [*history[:-2], entry])
    return entry


def list_models(ws: Workspace, tasks: list[str]) -> list[dict[str, Any]]:
    """Every registered version of the given tasks with aliases and headline."""
    rows = []
    for name in tasks:
        tracking.setup(ws, name)
        client = tracking.client()
        for found in client.search_model_versions(f"name='{name}'"):
            v = client.get_model_version(name, found.version)  # search omits aliases
            rows.append({"task": name, "version": str(v.version), "aliases": list(v.aliases),
                         "metric": v.tags.get("headline_metric", ""),
                         "value": v.tags.get("headline_value", ""),
                         "trained_at": v.tags.get("trained_at", "")})
    return sorted(rows, key=lambda r: (r["task"], int(r["version"])))


def champions_file(ws: Workspace) -> Path:
    """state/champions.json: which packaged version serving should load per task."""
    return ws.path("state") / "champions.json"


def read_champions(ws: Workspace) -> dict[str, Any]:
    """The serving pointer file, empty when nothing is promoted."""
    path = champions_file(ws)
    return json.loads(path.read_text()) if path.is_file() else {}
