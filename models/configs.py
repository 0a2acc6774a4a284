"""Typed, validated configuration: platform, tenants, and the YAML loader shared by all tasks."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

M = TypeVar("M", bound=BaseModel)
# The one list of tasks: `tasks` in the code's own configs/platform.yaml, which dvc.yaml's
# foreach reads too (README: Adding a task).
TASKS_FILE = Path(__file__).resolve().parents[1] / "configs" / "platform.yaml"


class ConfigError(ValueError):
    """A configuration file that is missing, unparsable or invalid (names file, key and reason)."""


def task_labels(path: Path = TASKS_FILE) -> dict[str, str]:
    """Every task of the code base, name -> Japanese label, in the file's order: the `tasks`
    mapping of configs/platform.yaml. ConfigError naming the file and key when it is missing, or
    a name is not a lower-case Python identifier (it names a package) or a label is empty."""
    return dict(_read_tasks(path))


@cache
def _read_tasks(path: Path) -> tuple[tuple[str, str], ...]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the task list ({exc})") from exc
    tasks = raw.get("tasks") if isinstance(raw, dict) else None
    if not isinstance(tasks, dict) or not tasks:
        raise ConfigError(f"{path}: key 'tasks': expected a mapping task name -> Japanese label")
    for name, label in tasks.items():
        if not (isinstance(name, str) and name.isidentifier() and name == name.lower()):
            raise ConfigError(f"{path}: key 'tasks.{name}': a task name is a lower-case Python "
                              "identifier (models/<name>/ is its package)")
        if not (isinstance(label, str) and label.strip()):
            raise ConfigError(f"{path}: key 'tasks.{name}': give the Japanese label pages show")
    return tuple(tasks.items())


def task_names() -> tuple[str, ...]:
    """Every task's name, in configs/platform.yaml's order (see task_labels)."""
    return tuple(task_labels())


def known_task(name: str) -> str:
    """`name` if it is a listed task, else a ValueError listing them."""
    if name not in task_labels():
        raise ValueError(f"unknown task {name!r}; tasks (configs/platform.yaml): "
                         f"{', '.join(task_names())}")
    return name


TaskName = Annotated[str, AfterValidator(known_task)]  # a task listed in configs/platform.yaml


class Strict(BaseModel):
    """Base for config models: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_digit(five: str) -> int:
    """Check digit of a 全国地方公共団体コード from its first five digits."""
    d = [int(c) for c in five]
    r = (6 * d[0] + 5 * d[1] + 4 * d[2] + 3 * d[3] + 2 * d[4]) % 11
    return (11 - r) % 10


def validate_municipality_code(code: str) -> str:
    """Return the 6-digit code if its check digit is right, else raise ValueError saying why."""
    if len(code) != 6 or not code.isdigit():
        raise ValueError(f"municipality code must be 6 digits, got {code!r}")
    expected = check_digit(code[:5])
    if int(code[5]) != expected:
        raise ValueError(f"check digit of {code} is wrong: expected {code[:5]}{expected}")
    return code


def hash_api_key(key: str) -> str:
    """SHA-256 hex digest of an API key; only digests are ever stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Area(Strict):
    """Where a municipality lies, roughly: a centre (about its city office) and a radius in km
    that covers all of it. Road photos whose GPS position lies beyond it are flagged."""

    lat: float = Field(ge=20.0, le=46.0, description="degrees north (Japan: 20.4 to 45.6)")
    lon: float = Field(ge=122.0, le=154.0, description="degrees east (Japan: 122.9 to 153.99)")
    radius_km: float = Field(gt=0, le=200, description="km from the centre covering the area")


class Tenant(Strict):
    """One municipality using kyodo."""

    code: str = Field(description="6-digit 全国地方公共団体コード with check digit")
    name: str = Field(min_length=1, description="Japanese name, e.g. 糸島市")
    name_en: str = ""
    population: int = Field(gt=0)
    tasks: tuple[TaskName, ...] = ()
    pooling_consent: bool = True
    api_key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    area: Area | None = Field(default=None, description="centre and radius; road_damage needs it")

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        return validate_municipality_code(v)

    @model_validator(mode="after")
    def _road_area(self) -> Tenant:
        if "road_damage" in self.tasks and self.area is None:
            raise ValueError(f"{self.code} subscribes to road_damage: give its area (lat, lon, "
                             "radius_km) so photos taken far outside it are flagged")
        return self


class TenantsConfig(Strict):
    """configs/tenants.yaml."""

    admin_key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    tenants: tuple[Tenant, ...]

    @field_validator("tenants")
    @classmethod
    def _unique(cls, v: tuple[Tenant, ...]) -> tuple[Tenant, ...]:
        codes = [t.code for t in v]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"duplicate tenant codes: {dupes}")
        return v

    def by_code(self) -> dict[str, Tenant]:
        """Tenants keyed by municipality code."""
        return {t.code: t for t in self.tenants}

    def subscribers(self, task: str) -> list[Tenant]:
        """Tenants subscribed to a task, in file order."""
        return [t for t in self.tenants if task in t.tasks]


class Paths(Strict):
    """Where things live, relative to the repository root."""

    data: str = "data"
    reports: str = "reports"
    mlflow: str = "mlflow"
    state: str = "state"


class ServingLimits(Strict):
    """Limits that protect the service from oversized or abusive requests."""

    max_upload_mb: int = Field(default=200, gt=0)
    max_claims_per_request: int = Field(default=1_000_000, gt=0)
    max_claims_json: int = Field(default=10_000, gt=0)
    max_json_mb: int = Field(default=16, gt=0)  # any body but an upload endpoint's
    # JSON body of /score (at most bounds.MAX_SCORE rows: 10,000 claims of 5 lines are 6.0 MB,
    # 10,000 residents 3.7 MB); min(this, max_json_mb) applies (serving/guard.py body_limit)
    max_score_mb: int = Field(default=8, gt=0)
    # JSON body of one row (/score_claim, /score_resident, care_plan /suggest and /predict):
    # a claim of bounds.MAX_LINES (2,000) lines is 172 kB; refused that much sooner
    max_row_kb: int = Field(default=256, gt=0)
    max_csv_columns: int = Field(default=1_000, gt=0)  # refused before pandas reads the CSV
    max_csv_rows: int = Field(default=5_000_000, gt=0)  # lines; a claim has several
    # seconds the service waits for the next piece of a request body before a 408 (slow bodies)
    body_timeout_s: float = Field(default=30, gt=0)
    # seconds a whole request body may take however it trickles in (a 200 MB upload at 8 Mbit/s
    # takes 200 s); past it, a 408
    body_deadline_s: float = Field(default=600, gt=0)
    # seconds from a connection's opening (or its previous response) to a complete request line
    # and headers; a slower client (slowloris) is disconnected
    header_timeout_s: float = Field(default=10, gt=0)
    # seconds an idle kept-alive connection stays open between requests (uvicorn's keep-alive)
    keep_alive_s: int = Field(default=5, gt=0)
    # after refusing a request whose body is still arriving (413, 429, 500), the rest of the
    # body is read and thrown away behind a half-close for at most this long and this much,
    # so the client reads the answer instead of a reset (serving/connections.py; RFC 9112 9.6);
    # either at 0: closed at once, with the client's unread bytes (a reset)
    linger_s: float = Field(default=2, ge=0, le=60)
    linger_mb: int = Field(default=64, ge=0, le=1024)
    # worker processes of `kyodo serve`; None: one per CPU core (`kyodo serve --workers` wins)
    workers: int | None = Field(default=None, gt=0, le=64)
    # heavy requests (uploads: queue, outreach, batch, road photos) one tenant may have in
    # flight at once across all workers; one more is a 429 with Retry-After
    heavy_per_tenant: int = Field(default=2, gt=0, le=64)
    heavy_retry_after_s: int = Field(default=10, gt=0)
    port: int = Field(default=3000, gt=0, lt=65536)
    # the single-row APIs (/v1/claim_screening/score_claim, /v1/checkup_nudge/score_resident)
    # through BentoML's adaptive batching under `bentoml serve` (serving/batching.py); off: each
    # request is scored on its own, as /score's fast path does. README: Single-row APIs
    batching: bool = False
    batch_max_size: int = Field(default=32, gt=0, le=1024)
    # a request that would wait longer than this for its batch is a 503 (BentoML's dispatcher)
    batch_max_latency_ms: int = Field(default=2000, gt=0, le=60_000)

    @model_validator(mode="before")
    @classmethod
    def _tasks_moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tasks" in data:
            raise ValueError("serving.tasks is now the top-level `tasks` of platform.yaml (one "
                             "line `name: Japanese label` per task; README: Adding a task)")
        return data


class UsageWeights(Strict):
    """Cost units per metered unit: a row, an image, a second of compute (see models/costs.py)."""

    rows: float = Field(default=1.0, ge=0)
    images: float = Field(default=20.0, ge=0)
    compute_seconds: float = Field(default=5.0, ge=0)

    @model_validator(mode="after")
    def _some_weight(self) -> UsageWeights:
        if self.rows + self.images + self.compute_seconds <= 0:
            raise ValueError("at least one usage weight must be positive")
        return self


class CostAllocation(Strict):
    """How a task's monthly cost pool is split among its subscribers."""

    equal_share: float = Field(default=0.0, ge=0, le=1,
                               description="均等割: share split equally among subscribers")
    fixed_share: float = Field(default=0.3, ge=0, le=1,
                               description="人口割: share split by population; the rest by usage")
    usage_weights: UsageWeights = UsageWeights()

    @model_validator(mode="after")
    def _shares_fit(self) -> CostAllocation:
        both = self.equal_share + self.fixed_share
        if both > 1:
            raise ValueError(f"equal_share + fixed_share is {both:g}; at most 1 (the rest is "
                             "split by usage)")
        return self


class CostsConfig(Strict):
    """Monthly shared costs in yen and the allocation rule (models/costs.py, README)."""

    infrastructure_yen: float = Field(default=0.0, ge=0)
    operations_yen: float = Field(default=0.0, ge=0)
    development_yen: dict[TaskName, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    standalone_minimum_platform_yen: float = Field(default=0.0, ge=0)
    allocation: CostAllocation = CostAllocation()


class Operations(Strict):
    """Running the service for years: model hot swap, meter retries, audit retention."""

    champion_check_s: float = Field(default=2.0, ge=0, description="0 checks every request")
    meter_retry_limit: int = Field(default=100_000, gt=0,
                                   description="unwritten meter records kept for retry")
    audit_retention_days: int = Field(default=1827, gt=0)
    photo_retention_days: int = Field(
        default=400, gt=0, description="road photos and overlays older than this are deleted by "
        "`kyodo purge` (a year's patrol cycle plus a month to correct and retrain)")
    drift_days: float = Field(default=30, gt=0, description="requests compared with training")
    drift_psi_threshold: float = Field(default=0.2, gt=0, description="PSI flagged at or over")
    drift_min_rows: int = Field(default=500, ge=0, description="fewer rows counted: not flagged")


class PlatformConfig(Strict):
    """configs/platform.yaml."""

    seed: int = 20261126
    paths: Paths = Paths()
    # name -> Japanese label; /readyz is 503 until each one a tenant subscribes to has a champion
    tasks: dict[TaskName, str] = Field(default_factory=task_labels)
    mlflow_tracking_uri: str = "sqlite:///mlflow/mlflow.db"
    onnx_opset: int = Field(default=15, ge=9, le=15)
    serving: ServingLimits = ServingLimits()
    costs: CostsConfig = CostsConfig()
    operations: Operations = Operations()


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        parts.append(f"key '{key}': {e['msg']}")
    return "; ".join(parts)


def _read_mapping(path: Path) -> dict[str, Any]:
    """A YAML file's top-level mapping; ConfigError naming the file when it is missing,
    unparsable or not a mapping."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return raw


def _validate(path: Path, raw: dict[str, Any], model: type[M]) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from exc


def validate_shipped(asset: str, raw: Any, model: type[M]) -> M:
    """A packaged JSON asset's content (e.g. policy.json) as `model`; ValueError naming the
    asset and its first bad field ("policy.json: capacity: Input should be ...")."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(map(str, first["loc"])) or "(root)"
        raise ValueError(f"{asset}: {field}: {first['msg']}") from exc


def load_config(path: str | Path, model: type[M]) -> M:
    """Load a YAML file into `model`; ConfigError names the file, key and reason."""
    path = Path(path)
    return _validate(path, _read_mapping(path), model)


# A task config's (configs/<task>.yaml) block of overrides that shrink it for tests and
# benches; not part of the config the task validates.
SMALL = "small"


def load_task_config(path: str | Path, model: type[M]) -> M:
    """A task's config file into its `model`, without its `small` block (see small_overrides);
    ConfigError names the file, key and reason."""
    path = Path(path)
    raw = _read_mapping(path)
    raw.pop(SMALL, None)
    return _validate(path, raw, model)


def with_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`raw` updated with `overrides` two levels deep: a mapping value updates the mapping
    under its key (model: {epochs: 2} keeps the other model keys), anything else replaces."""
    out = dict(raw)
    for key, value in overrides.items():
        old = out.get(key)
        out[key] = {**old, **value} if isinstance(value, dict) and isinstance(old, dict) \
            else value
    return out


def small_overrides(path: str | Path) -> dict[str, Any]:
    """A task config's `small` block: the overrides (with_overrides) that shrink it to seconds
    for tests and benches (tiny data, few trees or epochs), {} when it has none. ConfigError
    when the block is not a mapping."""
    path = Path(path)
    small = _read_mapping(path).get(SMALL) or {}
    if not isinstance(small, dict):
        raise ConfigError(f"{path}: key '{SMALL}': expected a mapping of overrides")
    return small
