"""checkup_nudge's shipped outreach defaults (models/checkup_nudge/policy.py), checked at load."""

from __future__ import annotations

import json

import pytest

from models.checkup_nudge.policy import ASSET, shipped_policy
from models.checkup_nudge.task import CheckupNudgeConfig, make_assets
from serving.runtime import POLICIES


def _nudge(**change: object) -> dict:
    assets = json.loads(json.dumps(make_assets(CheckupNudgeConfig(), {}, "s")))
    return {ASSET: {**assets, **change}}


def test_exported_defaults_load() -> None:
    policy = shipped_policy(_nudge())
    assert policy.budget_yen_per_resident == CheckupNudgeConfig().budget_yen_per_resident
    assert policy.policy is None  # packages from before training chose a policy: the model
    simple = {"kind": "simple", "arm": "standard", "arm_index": 1, "message_ja": "…"}
    chosen = POLICIES["checkup_nudge"](_nudge(policy=simple), None)
    assert chosen.policy.kind == "simple" and chosen.policy.arm_index == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"budget_yen_per_resident": 0}, "budget_yen_per_resident"),
    ({"budget_yen_per_resident": "a lot"}, "budget_yen_per_resident"),
    ({"budget_yen_per_resident": None}, "budget_yen_per_resident"),
    ({"policy": {"kind": "best"}}, "policy.kind"),
    ({"policy": {"kind": "simple"}}, "policy"),
    ({"policy": {"kind": "simple", "arm_index": 0}}, "policy.arm_index"),
])
def test_broken_defaults_fail_the_load_naming_the_field(change: dict, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^nudge\.json: {field}: "):
        shipped_policy(_nudge(**change))


def test_package_without_nudge_json_fails_the_load() -> None:
    with pytest.raises(ValueError, match=r"no nudge\.json"):
        POLICIES["checkup_nudge"]({}, None)
