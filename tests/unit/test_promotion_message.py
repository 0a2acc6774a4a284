"""The promotion gate's refusal names both headlines with all their digits."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from training import registry


def test_refusal_shows_values_that_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    """A retrained claims model 1,314 points short of the champion must not read
    '2.18e+06 does not beat 2.18e+06' (what `kyodo retrain claim_screening` printed)."""
    client = SimpleNamespace(search_model_versions=lambda q: [SimpleNamespace(version="2")])
    monkeypatch.setattr(registry.tracking, "setup", lambda ws, name: None)
    monkeypatch.setattr(registry.tracking, "client", lambda: client)
    monkeypatch.setattr(registry.tracking, "champion_history", lambda name: [{"version": "1"}])
    monkeypatch.setattr(registry, "_version_value", lambda name, v: (2179724.0, "h2"))
    monkeypatch.setattr(registry, "_champion_on", lambda ws, task, v, holdout: 2181038.0)
    with pytest.raises(registry.PromotionRefused) as refused:
        registry.promote(SimpleNamespace(), SimpleNamespace(name="claim_screening"))
    assert str(refused.value) == ("version 2 (2,179,724) does not beat champion 1 (2,181,038) "
                                  "on the same holdout")

    monkeypatch.setattr(registry, "_version_value", lambda name, v: (0.8461, "h2"))
    monkeypatch.setattr(registry, "_champion_on", lambda ws, task, v, holdout: 0.84615)
    with pytest.raises(registry.PromotionRefused, match=r"\(0\.8461\) .* \(0\.84615\)"):
        registry.promote(SimpleNamespace(), SimpleNamespace(name="road_damage"))
