"""The repository as a workspace: validated configs and where files live."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.configs import PlatformConfig, Tenant, TenantsConfig, load_config, load_task_config
from models.task import C, Task, get_task

# Read once, before mlflow is imported: mlflow.set_tracking_uri() writes this variable itself,
# which would otherwise pin every later workspace to the first one's store.
USER_TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI")


@dataclass(frozen=True)
class Workspace:
    """Configs and paths rooted at one directory (the repo root by default)."""

    root: Path
    platform: PlatformConfig
    tenants: TenantsConfig

    @classmethod
    def load(cls, root: str | Path | None = None) -> Workspace:
        """Load configs/ under root (KYODO_ROOT or the current directory)."""
        base = Path(root or os.environ.get("KYODO_ROOT") or ".").resolve()
        platform = load_config(base / "configs" / "platform.yaml", PlatformConfig)
        tenants = load_config(base / "configs" / "tenants.yaml", TenantsConfig)
        return cls(base, platform, tenants)

    def path(self, name: str) -> Path:
        """A configured directory (data, reports, mlflow, state) as an absolute path."""
        return self.root / getattr(self.platform.paths, name)

    def task_config(self, task: Task[C, Any]) -> C:
        """configs/<task>.yaml validated by the task's Config."""
        return load_task_config(self.root / "configs" / f"{task.name}.yaml", task.Config)

    def task(self, name: str) -> Task:
        """A registered task by name."""
        return get_task(name)

    def subscribers(self, task: str) -> list[Tenant]:
        """Tenants subscribed to the task."""
        return self.tenants.subscribers(task)

    def tracking_uri(self) -> str:
        """MLflow tracking URI: MLFLOW_TRACKING_URI, else SQLite under the workspace."""
        if USER_TRACKING_URI:
            return USER_TRACKING_URI
        uri = self.platform.mlflow_tracking_uri
        prefix = "sqlite:///"
        if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
            return prefix + str(self.root / uri[len(prefix):])
        return uri
