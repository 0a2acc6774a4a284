"""checkup_nudge generator: deterministic, calibrated to the domain facts, oracle consistent."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from models.checkup_nudge.arms import ARMS
from models.checkup_nudge.generate import GenerateSpec, generate, tenant_sizes
from models.checkup_nudge.schema import validate_campaigns, validate_oracle, validate_residents
from tests.conftest import REPO

TENANTS = [("472018", 317_000), ("121002", 980_000), ("382108", 35_000)]
SPEC = GenerateSpec(total_residents=24_000)
P_COLS = [f"p_{a}" for a in ARMS]


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    out = generate(TENANTS, SPEC, 7)
    return {f: pd.concat([t[f] for t in out.values()], ignore_index=True)
            for f in ("residents", "campaigns", "oracle")}


def _digest(spec: GenerateSpec, seed: int) -> str:
    out = generate(TENANTS[2:], spec, seed)["382108"]
    blob = b"".join(df.to_csv(index=False, lineterminator="\n").encode() for df in out.values())
    return hashlib.sha256(blob).hexdigest()


def test_byte_identical_across_processes() -> None:
    spec = GenerateSpec(total_residents=3000)
    code = ("from tests.unit.test_checkup_nudge_generate import _digest, GenerateSpec; "
            "print(_digest(GenerateSpec(total_residents=3000), 5))")
    other = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.strip()
    assert other == _digest(spec, 5)
    assert _digest(spec, 6) != other


def test_sizes_follow_population_and_order_does_not_matter() -> None:
    sizes = tenant_sizes(TENANTS, SPEC)
    assert sizes["121002"] > 2.5 * sizes["472018"] > 2.5 * sizes["382108"] >= SPEC.min_residents
    assert abs(sum(sizes.values()) - SPEC.total_residents) < 10
    a = generate(TENANTS, GenerateSpec(total_residents=2000), 3)["382108"]["campaigns"]
    b = generate(TENANTS[::-1], GenerateSpec(total_residents=2000), 3)["382108"]["campaigns"]
    pd.testing.assert_frame_equal(a, b)  # seeded by tenant code, not by position


def test_generated_frames_pass_the_upload_schemas(frames: dict[str, pd.DataFrame]) -> None:
    res = validate_residents(frames["residents"])
    assert res.columns[0] == "resident_id" and res["resident_id"].is_unique
    assert res["age"].between(40, 74).all()
    validate_campaigns(frames["campaigns"])
    validate_oracle(frames["oracle"])
    never = res[["attended_y1", "attended_y2", "attended_y3"]].sum(axis=1) == 0
    assert res.loc[never, "bmi"].isna().all() and res.loc[~never, "bmi"].notna().all()


def test_attendance_calibrated_to_domain(frames: dict[str, pd.DataFrame]) -> None:
    res = frames["residents"]
    past = res[["attended_y1", "attended_y2", "attended_y3"]].to_numpy().mean()
    assert 0.30 <= past <= 0.42  # municipal NHI ~37%
    assert 0.30 <= frames["campaigns"]["attended"].mean() <= 0.45
    by_tenant = res.groupby("tenant_code")["attended_y1"].mean()
    assert by_tenant["121002"] < by_tenant["472018"] < by_tenant["382108"]  # large cities lowest
    assert 0.30 <= by_tenant["472018"] <= 0.42  # Naha ~36%
    men40 = res[(res["sex"] == 1) & (res["age"] < 50)]["attended_y1"].mean()
    women60 = res[(res["sex"] == 2) & (res["age"] >= 60)]["attended_y1"].mean()
    assert men40 < 0.25 < women60
    # past attendance drives this year's: regulars attend far more often than never-attenders
    k = res.set_index("resident_id")[["attended_y1", "attended_y2", "attended_y3"]].sum(axis=1)
    camp = frames["campaigns"].assign(k=lambda d: d["resident_id"].map(k).to_numpy())
    rate = camp.groupby("k")["attended"].mean()
    assert rate[3] > 0.75 and rate[0] < 0.2


def test_oracle_matches_the_log(frames: dict[str, pd.DataFrame]) -> None:
    camp, oracle = frames["campaigns"], frames["oracle"]
    joined = camp.merge(oracle, on=["resident_id", "tenant_code", "campaign"], validate="1:1")
    assert len(joined) == len(camp) == len(oracle)
    arm = pd.Categorical(joined["arm"], categories=list(ARMS)).codes
    p_received = joined[P_COLS].to_numpy()[np.arange(len(joined)), arm]
    # outcomes are Bernoulli draws from the oracle: rates agree within sampling error per arm
    for a in ARMS:
        m = (joined["arm"] == a).to_numpy()
        assert abs(joined["attended"][m].mean() - p_received[m].mean()) < 0.02
    assert ((joined[P_COLS] >= 0) & (joined[P_COLS] <= 1)).all().all()


def test_assignment_probabilities(frames: dict[str, pd.DataFrame]) -> None:
    camp = frames["campaigns"]
    uniform = camp[camp["campaign"] != "2024-autumn"]
    assert np.allclose(uniform["assignment_prob"], 1 / 6, atol=1e-6)
    skewed = camp[camp["campaign"] == "2024-autumn"]
    assert skewed["assignment_prob"].nunique() > 2
    shares = uniform["arm"].value_counts(normalize=True)
    assert set(shares.index) == set(ARMS) and (abs(shares - 1 / 6) < 0.02).all()


def test_effects_are_heterogeneous(frames: dict[str, pd.DataFrame]) -> None:
    oracle = frames["oracle"].merge(frames["residents"], on=["resident_id", "tenant_code"])
    up = oracle[P_COLS[1:]].to_numpy() - oracle[["p_none"]].to_numpy()
    mean = dict(zip(ARMS[1:], up.mean(axis=0), strict=True))
    assert mean["loss_frame"] > mean["gain_frame"]
    assert all(0.01 < v < 0.10 for v in mean.values())  # a few points each
    assert 0.02 < (up.min(axis=1) < 0).mean() < 0.25  # a small group hurt by some message
    best = np.bincount(up.argmax(axis=1), minlength=len(ARMS) - 1)
    assert (best[1:] > 0.05 * len(up)).all()  # no single message is best for everyone
    k = oracle[["attended_y1", "attended_y2", "attended_y3"]].sum(axis=1).to_numpy()
    sure = (k == 3) & (oracle["p_none"].to_numpy() > 0.9)
    assert up[sure].max(axis=1).mean() < 0.02 < up[k == 1].max(axis=1).mean()
    lazy = (oracle["questionnaire_type"] == "面倒くさがり").to_numpy()
    assert up[lazy, 4].mean() > up[~lazy, 4].mean()  # simplified helps 面倒くさがり
    young = (oracle["age"] < 50).to_numpy()
    assert up[young, 3].mean() > up[~young, 3].mean()  # social norm helps the 40s
