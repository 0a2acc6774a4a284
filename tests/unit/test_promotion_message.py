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
    assert str(refused.value).startswith("version 2 (2,179,724) does not beat champion 1 "
                                         "(2,181,038) on the same holdout. ")
    assert ("kyodo promote claim_screening --version 2 --force --reason" in str(refused.value))

    monkeypatch.setattr(registry, "_version_value", lambda name, v: (0.8461, "h2"))
    monkeypatch.setattr(registry, "_champion_on", lambda ws, task, v, holdout: 0.84615)
    with pytest.raises(registry.PromotionRefused, match=r"\(0\.8461\) .* \(0\.84615\)"):
        registry.promote(SimpleNamespace(), SimpleNamespace(name="road_damage"))


def test_a_tie_is_called_a_tie_and_names_the_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """road_damage v6 had v5's crack F1 to the last digit: the refusal must say it ties (not
    'does not beat') and how to promote it on purpose."""
    client = SimpleNamespace(search_model_versions=lambda q: [SimpleNamespace(version="5"),
                                                              SimpleNamespace(version="6")])
    monkeypatch.setattr(registry.tracking, "setup", lambda ws, name: None)
    monkeypatch.setattr(registry.tracking, "client", lambda: client)
    monkeypatch.setattr(registry.tracking, "champion_history", lambda name: [{"version": "5"}])
    monkeypatch.setattr(registry, "_version_value", lambda name, v: (0.8613, "h"))
    monkeypatch.setattr(registry, "_champion_on", lambda ws, task, v, holdout: 0.8613)
    with pytest.raises(registry.PromotionRefused) as refused:
        registry.promote(SimpleNamespace(), SimpleNamespace(name="road_damage"), "6")
    assert str(refused.value).startswith("version 6 (0.8613) ties champion 5 (0.8613) on the "
                                         "same holdout")
    assert "does not beat" not in str(refused.value)
    assert 'kyodo promote road_damage --version 6 --force --reason "why"' in str(refused.value)


@pytest.mark.parametrize(("force", "reason", "says"), [
    (True, None, "--force needs --reason"), (True, "   ", "--force needs --reason"),
    (True, "x" * 1001, "at most 1,000"), (False, "better cut", "only with --force")])
def test_override_needs_a_reason_and_a_reason_needs_the_override(
        force: bool, reason: str | None, says: str) -> None:
    """Checked before the registry is touched (the workspace here is a bare object)."""
    with pytest.raises(registry.OverrideError, match=says):
        registry.promote(SimpleNamespace(), SimpleNamespace(name="road_damage"), "6",
                         force=force, reason=reason)
