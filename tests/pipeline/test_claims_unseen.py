"""Issue 14's target on test-sized data: a held-out month whose provider ids the model has never
seen keeps >= 0.9 of the points recovered with the known ids (bench/claims_unseen.py measures
the demo size with the platform seed: 0.678 before providers without history were trained on,
0.996 after)."""

from __future__ import annotations

import pandas as pd

from bench.claims_unseen import TARGET_RATIO, run, unseen_providers


def test_unseen_provider_ids_keep_nine_tenths_of_recovered_points() -> None:
    # 80,000 claims. Cut over the pooled holdout, 20,000 swung with the seed (0.72-1.0 over
    # five), 40,000 gave 0.958-0.991 and 80,000 0.96-1.02. Cut per office-month as served
    # (issue 18: ~13 claims per queue at 40,000), seeds 0-4 gave 0.85-1.10 at 40,000 and
    # 0.962-1.004 at 80,000.
    report = run(80_000, seed=0)
    known, unseen = report["known"], report["unseen_providers"]
    assert unseen["recovered_points"] >= TARGET_RATIO * known["recovered_points"], report
    # the headline with known ids stays where it was
    assert known["share_of_oracle"] >= 0.8 and known["vs_rules"] >= 1.2, report


def test_unseen_providers_rewrites_every_id_consistently() -> None:
    lines = pd.DataFrame({"provider_id": ["a", "b", "a"], "claim_id": ["1", "2", "3"]})
    out = unseen_providers({"lines": lines, "labels": pd.DataFrame()})["lines"]
    assert out["provider_id"].tolist() == ["NEW0000000", "NEW0000001", "NEW0000000"]
    assert lines["provider_id"].tolist() == ["a", "b", "a"]  # input untouched
