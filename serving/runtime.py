"""What a running service holds: tenants, the store, and the champion ONNX models."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from models.checkup_nudge.policy import shipped_policy as outreach_policy
from models.claim_screening.policy import shipped_policy as queue_policy
from models.configs import PlatformConfig, Tenant, TenantsConfig, hash_api_key, load_config
from models.onnx_session import open_session
from serving.drift import REFERENCE, ObservedSession
from serving.lifecycle import ChampionWatcher
from serving.metering import Meter
from serving.slots import TenantSlots
from serving.store import Store


@dataclass
class LoadedModel:
    """A champion model as packaged in the BentoML store."""

    task: str
    version: str
    tag: str
    session: ort.InferenceSession
    assets: dict[str, Any]
    meta: dict[str, Any]
    # the package's other ONNX graphs by file stem (care_plan: "rank"), opened and smoke-tested
    # at load like the main one, so a corrupt file fails the load, not a request
    extra: dict[str, ort.InferenceSession] = field(default_factory=dict)
    # policy defaults shipped with the model, validated once at load (claim_screening:
    # QueuePolicy from policy.json; checkup_nudge: OutreachPolicy from nudge.json); None for
    # tasks without POLICIES
    policy: Any = None


@dataclass
class Runtime:
    """Everything request handlers need; built once per worker."""

    root: Path
    platform: PlatformConfig
    tenants: TenantsConfig
    store: Store
    models: dict[str, LoadedModel] = field(default_factory=dict)
    by_key: dict[str, Tenant] = field(default_factory=dict)
    meter: Meter = field(init=False)
    watcher: ChampionWatcher | None = None
    # heavy-request slots per tenant, shared by the workers (serving/guard.py HeavyLimit)
    slots: TenantSlots | None = None

    def __post_init__(self) -> None:
        self.meter = Meter(self.store.record_request, self.platform.operations.meter_retry_limit)

    @classmethod
    def load(cls, root: str | Path | None = None) -> Runtime:
        """Read configs, open the store and load every promoted champion."""
        base = workspace_root(root)
        platform = load_config(base / "configs" / "platform.yaml", PlatformConfig)
        tenants = load_config(base / "configs" / "tenants.yaml", TenantsConfig)
        state = base / platform.paths.state
        rt = cls(base, platform, tenants, Store(state / "kyodo.db"),
                 slots=TenantSlots(state / "slots", platform.serving.heavy_per_tenant))
        rt.by_key = {t.api_key_sha256: t for t in tenants.tenants}
        rt.watcher = ChampionWatcher(state / "champions.json",
                                     platform.operations.champion_check_s,
                                     partial(load_packaged, root=base))
        rt.watcher.sync(rt.models)
        return rt

    def refresh_models(self) -> None:
        """Pick up a promote/rollback (cheap; see serving/lifecycle.py)."""
        if self.watcher is not None:
            self.watcher.poll(self.models)

    def readiness(self) -> dict[str, Any]:
        """/readyz: ready when every task in platform.yaml's `tasks` that a tenant subscribes to
        has a loaded champion; `tasks` says per task "ready", "degraded" (served, but the newest
        champions.json entry failed) or "missing" with the reason."""
        problems = self.watcher.problems if self.watcher else {}
        wanted = [t for t in self.platform.tasks if self.tenants.subscribers(t)]
        tasks: dict[str, dict[str, Any]] = {}
        for task in wanted:
            model = self.models.get(task)
            why = problems.get(task) or problems.get("*")
            if model is None:
                tasks[task] = {"state": "missing", "reason": why or (
                    f"no champion in state/champions.json: run `kyodo promote {task}`")}
            else:
                tasks[task] = {"state": "degraded" if why else "ready", "tag": model.tag,
                               **({"reason": why} if why else {})}
        ready = all(t["state"] != "missing" for t in tasks.values())
        return {"ready": ready, "tasks": tasks,
                "degraded": sorted(t for t, v in tasks.items() if v["state"] != "ready")}

    def tenant_for(self, api_key: str) -> Tenant | None:
        """The tenant owning this API key, if any."""
        return self.by_key.get(hash_api_key(api_key))

    def is_admin(self, api_key: str) -> bool:
        """Whether the key is the operator's admin key."""
        return hash_api_key(api_key) == self.tenants.admin_key_sha256


def workspace_root(root: str | Path | None = None) -> Path:
    """The workspace the service serves: `root`, else $KYODO_ROOT, else the current directory."""
    return Path(root or os.environ.get("KYODO_ROOT") or ".").resolve()


# Per task: the shipped policy defaults from the package's assets and the workspace root (for
# packages exported before the defaults were shipped); raises ValueError when they are unusable.
POLICIES: dict[str, Callable[[dict[str, Any], Path | None], Any]] = {
    "claim_screening": lambda assets, root: queue_policy(
        assets, root / "configs" / "claim_screening.yaml" if root else None),
    "checkup_nudge": lambda assets, root: outreach_policy(assets),
}


def load_packaged(task: str, tag: str, root: Path | None = None) -> LoadedModel:
    """Load a packaged model from the BentoML store into an onnxruntime session, with its
    policy defaults (POLICIES); a missing or broken policy fails this task's load, which
    serving/lifecycle.py reports for the task alone. root: the workspace, whose config an old
    package without shipped defaults falls back to (logged)."""
    import bentoml

    path = Path(bentoml.models.get(tag).path)
    assets = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in path.glob("*.json")}
    meta = assets.pop("meta.json", {})
    graphs = {p.stem: smoke_tested(p) for p in sorted(path.glob("*.onnx"))}
    if "model" not in graphs:
        raise FileNotFoundError(f"{path}: the package has no model.onnx")
    session = ObservedSession(graphs.pop("model"), assets.get(REFERENCE))
    policy = POLICIES[task](assets, root) if task in POLICIES else None
    return LoadedModel(task, str(meta.get("version", "")), tag, session, assets, meta, graphs,
                       policy)


ORT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
             "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_,
             "tensor(string)": np.str_}


def smoke_tested(path: Path) -> ort.InferenceSession:
    """An onnxruntime session for an ONNX file that has answered one all-zero row (symbolic
    dimensions as 1); raises with the file's name when it cannot be opened or run."""
    try:
        session = open_session(path)
        feeds = {i.name: np.zeros([d if isinstance(d, int) and d > 0 else 1 for d in i.shape],
                                  dtype=ORT_TYPES.get(i.type, np.float32))
                 for i in session.get_inputs()}
        session.run(None, feeds)
    except Exception as exc:
        raise RuntimeError(f"{path}: not a working ONNX model ({exc})") from exc
    return session
