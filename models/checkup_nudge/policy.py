"""The outreach policy defaults a checkup_nudge package ships in nudge.json, checked once when
serving loads the champion (serving/runtime.py POLICIES).

The selection itself is one function used by training metrics and by serving alike:
models/checkup_nudge/outreach.py `planned_assignment` (through `assignments`, called by
task.py `Evaluation.build` and scoring.py `plan_outreach`). What serving also needs from the
package is the default budget per resident and the policy chosen at training; a package whose
values are missing or malformed is a load error for this task, not a 500 at the first request.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.checkup_nudge.arms import ARMS
from models.checkup_nudge.outreach import ROSTER, SIMPLE_ORDERS
from models.configs import validate_shipped

ASSET = "nudge.json"


class PolicyChoice(BaseModel):
    """nudge.json "policy" (task.py check_policy): the model's list, or one arm to the
    residents first by a simple score (outreach.SIMPLE_ORDERS) when training did not show the
    model beats it; "roster" order in packages exported before the simple scores."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: Literal["model", "simple"]
    arm_index: int | None = Field(default=None, ge=1, le=len(ARMS) - 1)
    order: str = ROSTER

    @model_validator(mode="after")
    def _simple_names_its_arm(self) -> PolicyChoice:
        if self.kind == "simple" and self.arm_index is None:
            raise ValueError("a simple policy needs arm_index")
        if self.order not in (*SIMPLE_ORDERS, ROSTER):
            raise ValueError(f"unknown order {self.order!r}; expected one of "
                             f"{[*SIMPLE_ORDERS, ROSTER]}")
        return self


class OutreachPolicy(BaseModel):
    """The defaults /outreach plans with when the request gives no budget."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    budget_yen_per_resident: float = Field(gt=0, allow_inf_nan=False)
    # absent in packages exported before training chose a policy: the model's list, as
    # scoring.plan_outreach treats None
    policy: PolicyChoice | None = None


def shipped_policy(assets: dict[str, Any]) -> OutreachPolicy:
    """The package's outreach defaults; ValueError naming nudge.json and the field when
    nudge.json is absent or its budget or policy is malformed."""
    raw = assets.get(ASSET)
    if raw is None:
        raise ValueError(f"the package has no {ASSET}")
    return validate_shipped(ASSET, raw, OutreachPolicy)
