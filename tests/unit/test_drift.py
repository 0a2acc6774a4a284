"""PSI drift: reference bins, counting a scoring call, and the PSI itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.drift import bin_counts, observe, psi, reference, report


def _data(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    age = rng.normal(65 + shift, 8, n)
    sex = rng.integers(1, 3, n).astype(float)  # two values: bins are the values themselves
    lab = rng.lognormal(1, 0.5, n)
    lab[rng.random(n) < 0.1] = np.nan  # missing values get their own bin
    return np.column_stack([age, sex, lab])


def test_same_population_is_stable_and_a_shift_is_flagged() -> None:
    rng = np.random.default_rng(0)
    train = _data(rng, 20000)
    ref = reference(train, train[:, 0] / 100, ["age", "sex", "lab"])
    assert len(ref["features"]["sex"]["shares"]) == 3  # 2 values + missing
    assert abs(sum(ref["features"]["lab"]["shares"]) - 1) < 1e-9
    same = _data(rng, 4000)
    rows = {r["feature"]: r for r in report(ref, observe(ref, same, same[:, 0] / 100), 0.2)}
    assert all(r["psi"] < 0.05 and not r["flag"] for r in rows.values())
    older = _data(rng, 4000, shift=8.0)
    rows = {r["feature"]: r for r in report(ref, observe(ref, older, older[:, 0] / 100), 0.2)}
    assert rows["age"]["flag"] and rows["score"]["flag"] and rows["age"]["psi"] > 0.5
    assert not rows["sex"]["flag"] and rows["age"]["rows"] == 4000
    # too few rows counted: PSI still reported, but not flagged as a finding
    few = report(ref, observe(ref, older, older[:, 0] / 100), 0.2, min_rows=5000)
    assert not any(r["flag"] for r in few) and max(r["psi"] for r in few) > 0.5


def test_counts_sample_large_calls_and_psi_of_nothing_is_none() -> None:
    rng = np.random.default_rng(1)
    X = _data(rng, 50000)
    ref = reference(X, X[:, 0], ["age", "sex", "lab"])
    counts = observe(ref, X, X[:, 0])
    assert 4000 <= sum(counts["age"]) <= 5000  # strided sample of a large call
    assert bin_counts(np.array([np.nan, 1.0, 5.0]), [2.0]).tolist() == [1, 1, 1]
    assert psi([0.5, 0.5], [0, 0]) is None
    assert psi([0.5, 0.5], [50, 50]) == 0.0


def test_exported_package_carries_the_drift_reference(trained_root: Path) -> None:
    import json

    from models.claim_screening.features import FEATURE_NAMES

    ref = json.loads((trained_root / "build/claim_screening/onnx/drift.json").read_text())
    assert next(iter(ref["features"])) == "R_INDICATION"
    assert len(ref["features"]) == len(FEATURE_NAMES) + 1 == 48  # features and the score
    assert list(ref["features"])[-1] == "score" and ref["rows"] > 100
    score = ref["features"]["score"]
    assert abs(sum(score["shares"]) - 1) < 1e-9 and len(score["edges"]) >= 5


def test_bin_table_bins_as_searchsorted_does() -> None:
    """BinTable (one vectorised step over every column) against np.searchsorted(side="right")
    per column, with values on the edges, NaN and infinities."""
    from models.drift import BinTable

    rng = np.random.default_rng(3)
    edges = [[0.0, 1.0, 2.5], [], [5.0], sorted(rng.normal(size=9).tolist())]
    X = rng.choice([-1.0, 0.0, 1.0, 2.5, 3.0, 5.0, np.nan, np.inf, -np.inf], size=(200, 4))
    X[:, 3] = rng.normal(size=200)
    X[:5, 3] = edges[3][:5]
    got = BinTable(edges).counts(X)
    for j, e in enumerate(edges):
        col = X[:, j]
        finite = np.isfinite(col)
        at = np.searchsorted(np.asarray(e), col[finite], side="right")
        want = [*np.bincount(at, minlength=len(e) + 1).tolist(), int((~finite).sum())]
        assert got[j] == want


def test_report_drift_cli_does_not_call_too_few_rows_stable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kyodo report drift`: a tenant with fewer rows than operations.drift_min_rows is not
    flagged, and the CLI says so instead of calling a PSI of 8 'stable' (the operations page
    shows it as 注意（件数少）)."""
    from types import SimpleNamespace

    from typer.testing import CliRunner

    import serving.store
    import training.report_cli as report_cli
    from models.configs import Operations

    ops = Operations()
    ws = SimpleNamespace(platform=SimpleNamespace(operations=ops),
                         path=lambda name: tmp_path / name)
    rows = [
        {"task": "claim_screening", "tenant": "121002", "model_version": "1", "rows_counted": 1,
         "flagged": [], "features": [{"feature": "log_total_points", "psi": 8.3, "rows": 1,
                                      "flag": False}]},
        {"task": "claim_screening", "tenant": "402303", "model_version": "1",
         "rows_counted": 16_348, "flagged": [], "features": [
             {"feature": "age", "psi": 0.01, "rows": 16_348, "flag": False}]},
        {"task": "checkup_nudge", "tenant": "472018", "model_version": "1",
         "rows_counted": 78_924, "flagged": ["tenant_rate"], "features": [
             {"feature": "tenant_rate", "psi": 7.4, "rows": 78_924, "flag": True}]},
    ]

    class FakeStore:
        def __init__(self, path: Path) -> None:
            self.audit_trail = SimpleNamespace(drift_report=lambda *a: rows)

    monkeypatch.setattr(report_cli, "workspace", lambda: ws)
    monkeypatch.setattr(report_cli, "_references", lambda w: {})
    monkeypatch.setattr(serving.store, "Store", FakeStore)
    res = CliRunner().invoke(report_cli.report_app, ["drift"])
    assert res.exit_code == 0, res.output
    lines = {ln.split()[1]: ln for ln in res.output.splitlines() if ln.startswith("  ")}
    assert "stable" not in lines["121002"]
    assert f"too few rows to judge (< {ops.drift_min_rows:,}; PSI >= 0.2 on 1 features)" \
        in lines["121002"]
    assert "stable" in lines["402303"]
    assert "FLAGGED: tenant_rate" in lines["472018"]
