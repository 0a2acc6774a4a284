"""The reminder arms (message types), their Japanese labels and default costs per postcard."""

from __future__ import annotations

from collections.abc import Mapping

CONTROL = "none"
ARMS: tuple[str, ...] = ("none", "standard", "gain_frame", "loss_frame", "social_norm",
                         "simplified")
MAILABLE: tuple[str, ...] = ARMS[1:]

ARM_LABELS_JA: dict[str, str] = {
    "none": "送付なし",
    "standard": "標準はがき",
    "gain_frame": "利得フレーム",
    "loss_frame": "損失フレーム",
    "social_norm": "社会規範",
    "simplified": "日時・会場記入済み",
}

POSTAGE_YEN = 85.0  # 2024-10 postcard rate
PRINTING_YEN = 15.0

DEFAULT_COSTS: dict[str, float] = {a: 0.0 if a == CONTROL else POSTAGE_YEN + PRINTING_YEN
                                   for a in ARMS}


def arm_costs(postage: float = POSTAGE_YEN, printing: float = PRINTING_YEN,
              overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """Cost in yen of each arm: postage + printing, `none` free, per-arm overrides applied."""
    costs = {a: 0.0 if a == CONTROL else float(postage + printing) for a in ARMS}
    unknown = sorted(set(overrides or {}) - set(ARMS))
    if unknown:
        raise ValueError(f"unknown arms in costs: {unknown}; known arms: {', '.join(ARMS)}")
    costs.update({a: float(v) for a, v in (overrides or {}).items()})
    return costs


def check_costs(costs: Mapping[str, float]) -> None:
    """Every arm priced, none negative, no unknown arm; ValueError naming the arm otherwise."""
    missing = [a for a in ARMS if a not in costs]
    if missing:
        raise ValueError(f"costs missing for arms: {', '.join(missing)}")
    unknown = sorted(set(costs) - set(ARMS))
    if unknown:
        raise ValueError(f"unknown arms in costs: {unknown}; known arms: {', '.join(ARMS)}")
    bad = [a for a in ARMS if not costs[a] >= 0]
    if bad:
        raise ValueError(f"cost of arm {bad[0]!r} must be >= 0 yen, got {costs[bad[0]]}")
