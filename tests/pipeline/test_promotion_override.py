"""`kyodo promote --force --reason`: a candidate that ties the champion is refused (and the
refusal says it ties), promoted on purpose with a reason, recorded (MLflow registry, champion
history, state/champions.json) and served, on a real SQLite MLflow registry in a temp workspace.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import make_workspace
from tests.serving.conftest import bound_client
from training.registry import OverrideError, PromotionRefused, promote, read_champions
from training.workspace import Workspace

# fast trees on small data; trained twice on the same data and config, the two versions have
# the same headline to every digit (LightGBM runs deterministic=True with a fixed seed)
SAME = {"generate": {"total_claims": 6000},
        "model": {"n_estimators": 10, "num_leaves": 4, "min_child_samples": 500}}
REASON = "same recovered points; v2 adds the corrected provider master (checked by hand)"


@pytest.fixture(scope="module")
def tied(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """v1 is the champion; v2, trained again on the same data and config, is only exported."""
    from training.data import write_generated
    from training.pipeline import export, train

    ws = Workspace.load(make_workspace(tmp_path_factory.mktemp("ws-tie"), SAME))
    task = ws.task("claim_screening")
    write_generated(ws, task, progress=False)
    for expected in ("1", "2"):
        train(ws, task, progress=False)
        assert export(ws, task, progress=False)["version"] == expected
        if expected == "1":
            assert promote(ws, task, who="setup")["promoted"]
    return ws


def _cli(ws: Workspace, *args: str) -> tuple[int, str]:
    """`kyodo promote claim_screening *args` in the workspace as user 'hanako': (exit, output)."""
    from training.cli import app

    result = CliRunner().invoke(app, ["promote", "claim_screening", *args],
                                env={"KYODO_ROOT": str(ws.root), "USER": "hanako"})
    return result.exit_code, result.output


def _version_tags(ws: Workspace, version: str) -> dict[str, str]:
    from training import tracking

    tracking.setup(ws, "claim_screening")
    return dict(tracking.client().get_model_version("claim_screening", version).tags)


def test_a_tie_is_refused_as_a_tie_and_force_needs_a_reason(tied: Workspace) -> None:
    one, two = (float(_version_tags(tied, v)["headline_value"]) for v in ("1", "2"))
    assert one == two  # the premise: a real tie on the same holdout
    with pytest.raises(PromotionRefused, match=r"version 2 \(.*\) ties champion 1 \(.*\)"):
        promote(tied, tied.task("claim_screening"), "2")

    code, out = _cli(tied, "--version", "2")
    assert code == 1 and "ties champion 1" in out and "does not beat" not in out
    assert "--force --reason" in out
    for args in (["--force"], ["--force", "--reason", "  "]):
        code, out = _cli(tied, "--version", "2", *args)
        assert code == 2 and "--force needs --reason" in out
    code, out = _cli(tied, "--version", "2", "--reason", REASON)
    assert code == 2 and "only with --force" in out
    with pytest.raises(OverrideError):
        promote(tied, tied.task("claim_screening"), "2", force=True, reason="")
    # nothing moved, nothing recorded
    assert read_champions(tied)["claim_screening"]["version"] == "1"
    assert "forced_promotions" not in _version_tags(tied, "2")


def test_forced_promotion_is_recorded_and_served(tied: Workspace) -> None:
    from serving.runtime import Runtime
    from training import tracking

    value = float(_version_tags(tied, "2")["headline_value"])
    code, out = _cli(tied, "--version", "2", "--force", "--reason", REASON)
    assert code == 0, out
    result = json.loads(out)
    forced = {"reason": REASON, "gate": "ties", "candidate_value": value,
              "replaced_version": "1", "replaced_value": value}
    assert result["promoted"] and result["previous"] == "1" and result["by"] == "hanako"
    assert result["forced"] == forced

    # MLflow: the alias moved; the version carries the audit record, who and when included
    client = tracking.client()
    assert str(client.get_model_version_by_alias("claim_screening", "champion").version) == "2"
    tags = _version_tags(tied, "2")
    assert tags["promotion_forced"] == "true"
    [record] = json.loads(tags["forced_promotions"])
    assert record["forced"] == forced and record["by"] == "hanako" and record["at"]
    assert record["version"] == "2" and record["metric"] == tags["headline_metric"]
    history = tracking.champion_history("claim_screening")
    assert [h["version"] for h in history] == ["1", "2"] and history[-1]["forced"] == forced

    # serving follows state/champions.json: the forced champion is served, with its record
    pointer = read_champions(tied)["claim_screening"]
    assert pointer["version"] == "2" and pointer["history"][-1]["forced"]["reason"] == REASON
    with bound_client(Runtime.load(Path(tied.root))) as c:
        [model] = c.get("/v1/models").json()["models"]
    assert model["version"] == "2" and model["tag"] == pointer["tag"]
    assert model["champion_history"][-1]["forced"] == forced
