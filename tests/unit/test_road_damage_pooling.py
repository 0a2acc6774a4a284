"""road_damage in the pooling comparison: local-only fits leave out the shared non-road tiles."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from models.road_damage.task import RoadDamage, RoadDamageConfig
from training import pipeline


def test_comparison_config_drops_shared_nonroad_tiles_and_familiarity_only() -> None:
    cfg = RoadDamageConfig.model_validate({"real": {"train": True, "repeat": 2,
                                                    "nonroad_tiles": 1200}})
    local = RoadDamage().comparison_config(cfg)
    assert local.real.nonroad_tiles == 0 and not local.road_check.familiarity
    # the real crops (crack appearance, which the judged crack F1 reads) stay in every fit
    assert local.real.train and local.real.repeat == 2
    same = {k for k in RoadDamageConfig.model_fields if k not in ("real", "road_check")}
    assert all(getattr(local, k) == getattr(cfg, k) for k in same)
    assert cfg.real.nonroad_tiles == 1200 and cfg.road_check.familiarity  # not changed


def test_pipeline_local_only_fits_use_the_comparison_config(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(pipeline, "fit_or_none",
                        lambda task, cfg, train, seed: seen.append(cfg) or object())
    monkeypatch.setattr(pipeline, "headline", lambda task, cfg, model, test: 0.5)
    photos = pd.DataFrame({"photo_id": ["a", "b", "c"],
                           "tenant_code": ["121002", "012050", "012050"]})
    data = {"photos": photos, "tiles": photos.copy()}
    cfg = RoadDamageConfig.model_validate({"real": {"nonroad_tiles": 1200}})
    ws = SimpleNamespace(platform=SimpleNamespace(seed=0))
    out = pipeline.pooling(ws, RoadDamage(), cfg, data, data, object(), False)  # type: ignore[arg-type]
    assert len(seen) == 2 and all(c.real.nonroad_tiles == 0 for c in seen)
    assert out["012050"]["held_out"] == 2 and out["121002"]["held_out"] == 1
