"""care_plan building blocks: items and scales, generator and oracle, plans, caps, constraints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.care_plan import survey
from models.care_plan.generate import (
    PRACTICE,
    Latent,
    change_probs,
    expected_minutes,
    generate_tenant,
    item_change_probs,
    outcome_probs,
    p_dementia_iia,
)
from models.care_plan.items import (
    CAPS_2019_10,
    DEMENTIA_SCALE,
    ITEM_BY_CODE,
    ITEMS,
    KEY_ITEMS,
    LEVELS,
    OUTCOMES,
    PHYSICAL_SCALE,
    form,
)
from models.care_plan.plans import (
    Constraints,
    PlanInputError,
    candidates,
    cost,
    fit_to_cap,
    plan_vector,
)
from models.care_plan.schema import SurveyInputError, check_persons, person_inputs, read_persons
from models.care_plan.task import CarePlanConfig
from models.configs import load_task_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cfg() -> CarePlanConfig:
    return load_task_config(REPO / "configs" / "care_plan.yaml", CarePlanConfig)


@pytest.fixture(scope="module")
def frames(cfg: CarePlanConfig) -> dict[str, pd.DataFrame]:
    return generate_tenant("232017", 1500, cfg.catalogue(), PRACTICE[0], seed=7)


def test_74_items_with_official_numbers_and_scales() -> None:
    assert len(ITEMS) == 74
    groups = [i.group for i in ITEMS]
    assert [groups.count(g) for g in range(1, 7)] == [20, 12, 9, 15, 6, 12]
    assert ITEM_BY_CODE["1-3"].choices == ("つかまらないでできる", "何かにつかまればできる",
                                           "できない")
    assert ITEM_BY_CODE["2-1"].choices == ("介助されていない", "見守り等", "一部介助", "全介助")
    assert ITEM_BY_CODE["5-3"].choices[1:] == ("特別な場合を除いてできる", "日常的に困難",
                                               "できない")
    assert ITEM_BY_CODE["1-5"].levels == 4 and ITEM_BY_CODE["1-10"].levels == 4
    assert all(ITEM_BY_CODE[f"4-{k}"].choices == ("ない", "ときどきある", "ある")
               for k in range(1, 16))
    assert ITEM_BY_CODE["6-1"].name == "点滴の管理" and ITEM_BY_CODE["6-12"].group == 6
    assert PHYSICAL_SCALE == ("自立", "J1", "J2", "A1", "A2", "B1", "B2", "C1", "C2")
    assert DEMENTIA_SCALE == ("自立", "I", "IIa", "IIb", "IIIa", "IIIb", "IV", "M")
    assert CAPS_2019_10 == (0, 5032, 10531, 16765, 19705, 27048, 30938, 36217)
    f = form()
    assert sum(len(g["items"]) for g in f["groups"]) == 74 and f["care_levels"][0] == "要支援1"


def test_care_level_follows_the_official_thresholds() -> None:
    minutes = np.array([24.9, 25, 31.9, 32, 49.9, 50, 69.9, 70, 90, 110, 200])
    level = survey.level_from_minutes(minutes, np.zeros(len(minutes), bool))
    assert [LEVELS[k] for k in level] == ["非該当", "要支援1", "要支援1", "要支援2", "要支援2",
                                          "要介護2", "要介護2", "要介護3", "要介護4", "要介護5",
                                          "要介護5"]
    assert LEVELS[survey.level_from_minutes(np.array([40.0]), np.array([True]))[0]] == "要介護1"


def test_generator_is_deterministic_and_on_the_scales(cfg: CarePlanConfig,
                                                      frames: dict[str, pd.DataFrame]) -> None:
    again = generate_tenant("232017", 1500, cfg.catalogue(), PRACTICE[0], seed=7)
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(frame, again[name])
    persons = frames["persons"]
    for item in ITEMS:
        assert persons[item.column].between(1, item.levels).all(), item.code
        assert persons[item.column].nunique() >= 2, item.code  # every answer level is used
    assert set(persons["care_level"]) == set(LEVELS[1:])
    assert set(frames["outcomes"]["outcome"]) <= set(OUTCOMES)
    assert {"施設入所", "死亡", "非該当"} <= set(frames["outcomes"]["outcome"])
    checked = check_persons(persons.astype(str), with_plan=True)
    assert len(checked) == len(persons)


def test_plans_fit_the_cap_of_the_care_level(cfg: CarePlanConfig,
                                             frames: dict[str, pd.DataFrame]) -> None:
    cat = cfg.catalogue()
    persons = frames["persons"]
    Q = persons[[f"plan_{n}" for n in cat.names]].to_numpy(float)
    level = persons["care_level"].map(LEVELS.index).to_numpy()
    assert (cat.monthly_units(Q, level) <= cat.caps[level]).all()
    big = np.tile([[3, 0, 5, 2, 1, 2, 4, 1]], (3, 1)).astype(float)
    cut = fit_to_cap(cat, big, np.array([1, 2, 7]))
    assert (cat.monthly_units(cut, np.array([1, 2, 7])) <= cat.caps[[1, 2, 7]]).all()


def _oracle_for(lat: Latent, rows: np.ndarray, Q: np.ndarray, names: tuple[str, ...],
                ) -> np.ndarray:
    """True P(improve or maintain) at the level the latent state implies today."""
    lat = lat.take(rows)
    level = survey.level_from_minutes(expected_minutes(lat.a, lat.b), p_dementia_iia(lat.b) > 0.5)
    return 1 - change_probs(outcome_probs(lat, Q, names), level)[:, 2]


def test_oracle_rehab_helps_mobile_mild_but_not_bedridden(cfg: CarePlanConfig) -> None:
    names = cfg.catalogue().names
    n = 2
    lat = Latent(a=np.array([-0.3, 2.6]), b=np.zeros(n), ra=np.full(n, 0.25),
                 rb=np.full(n, 0.2), age=np.full(n, 82.0), alone=np.zeros(n),
                 medical=np.zeros(n))
    none = np.zeros((n, len(names)))
    rehab = none.copy()
    rehab[:, names.index("day_rehab")] = 2
    gain = (_oracle_for(lat, np.arange(n), rehab, names)
            - _oracle_for(lat, np.arange(n), none, names))
    assert gain[0] > 0.15  # mobile, mild: rehab prevents worsening
    assert gain[0] > 5 * abs(gain[1])  # bedridden: little effect
    P = outcome_probs(lat, none, names)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-9)


def test_oracle_excess_help_hurts_mild_and_short_stay_relieves_family(
        cfg: CarePlanConfig) -> None:
    names = cfg.catalogue().names
    lat = Latent(a=np.array([-0.5]), b=np.array([0.0]), ra=np.array([0.25]),
                 rb=np.array([0.2]), age=np.array([80.0]), alone=np.array([0.0]),
                 medical=np.array([0.0]))
    none = np.zeros((1, len(names)))
    help_ = none.copy()
    help_[0, names.index("home_help_body")] = 5
    help_[0, names.index("home_help_life")] = 2
    assert (_oracle_for(lat, np.array([0]), help_, names)
            < _oracle_for(lat, np.array([0]), none, names) - 0.05)
    frail = Latent(a=np.array([1.5]), b=np.array([1.2]), ra=np.array([0.2]),
                   rb=np.array([0.2]), age=np.array([85.0]), alone=np.array([0.0]),
                   medical=np.array([0.0]))
    stay = none.copy()
    stay[0, names.index("short_stay")] = 4
    facility = OUTCOMES.index("施設入所")
    assert (outcome_probs(frail, stay, names)[0, facility]
            < outcome_probs(frail, none, names)[0, facility])
    items = item_change_probs(lat, none, names, np.array([[2] * len(KEY_ITEMS)]))
    np.testing.assert_allclose(items.sum(axis=2), 1.0, atol=1e-9)


def test_oracle_day_service_helps_cognition_most_for_people_living_alone(
        cfg: CarePlanConfig) -> None:
    names = cfg.catalogue().names
    lat = Latent(a=np.array([0.3, 0.3]), b=np.array([0.6, 0.6]), ra=np.full(2, 0.2),
                 rb=np.full(2, 0.2), age=np.full(2, 84.0), alone=np.array([1.0, 0.0]),
                 medical=np.zeros(2))
    none = np.zeros((2, len(names)))
    day = none.copy()
    day[:, names.index("day_service")] = 3
    gain = (_oracle_for(lat, np.arange(2), day, names)
            - _oracle_for(lat, np.arange(2), none, names))
    assert gain[0] > gain[1] > 0


def test_candidates_respect_cap_and_constraints(cfg: CarePlanConfig) -> None:
    cat = cfg.catalogue()
    for level in range(1, 8):
        Q = candidates(cat, level, Constraints())
        assert (cat.monthly_units(Q, level) <= cat.caps[level]).all()
    Q = candidates(cat, 4, Constraints(exclude=("short_stay",), require=("day_rehab",),
                                       max_days_per_week=2))
    j = cat.names.index
    assert len(Q) >= 50
    assert (Q[:, j("short_stay")] == 0).all() and (Q[:, j("day_rehab")] > 0).all()
    assert (Q[:, j("day_service")] + Q[:, j("day_rehab")] <= 2).all()
    assert len(candidates(cat, 7, Constraints())) >= 200


def test_impossible_constraints_say_why(cfg: CarePlanConfig) -> None:
    cat = cfg.catalogue()
    with pytest.raises(PlanInputError, match="no plan fits the 要支援1 cap of 5,032 units"):
        candidates(cat, 1, Constraints(require=("home_nursing", "short_stay", "day_rehab",
                                                "home_help_body")))
    with pytest.raises(PlanInputError, match="both excluded and required"):
        candidates(cat, 3, Constraints(exclude=("equipment",), require=("equipment",)))
    with pytest.raises(PlanInputError, match="unknown service 'massage'"):
        candidates(cat, 3, Constraints(exclude=("massage",)))
    with pytest.raises(PlanInputError, match="exclude every plan"):
        candidates(cat, 3, Constraints(require=("day_rehab",), max_days_per_week=0))


def test_cost_and_copay(cfg: CarePlanConfig) -> None:
    cat = cfg.catalogue()
    q = plan_vector(cat, {"day_service": 2, "equipment": 1})
    c = cost(cat, q[None, :], 4)  # 要介護2: 777 units a day, rental 800
    assert c["monthly_units"] == round(2 * 4.3 * 777 + 800)
    assert c["cost_yen"] == c["monthly_units"] * 10
    assert c["copay_yen"]["10%"] == c["cost_yen"] // 10
    with pytest.raises(PlanInputError, match="whole number 0-7"):
        plan_vector(cat, {"day_service": 9})


def _person(**items: int) -> dict:
    answers = {i.code: 1 for i in ITEMS}
    answers.update({k.replace("_", "-"): v for k, v in items.items()})
    return {"age": 80, "sex": 2, "living_alone": 0, "care_level": "要介護1",
            "physical_independence": "A1", "dementia_independence": "I", "items": answers}


def test_bad_survey_names_the_item_in_japanese_and_english() -> None:
    pid, x = person_inputs(_person())
    assert pid == "-" and x.shape == (1, 80) and x[0, 3] == LEVELS.index("要介護1")
    bad = _person()
    bad["items"]["1-7"] = 5
    with pytest.raises(SurveyInputError,
                       match=r"1-7「歩行」.*選択肢 1〜3.*item 1-7 \(walking\).*scale 1-3"):
        person_inputs(bad)
    unknown = _person()
    unknown["items"]["7-1"] = 1
    with pytest.raises(SurveyInputError, match=r"7-1.*不明な項目番号.*unknown item number"):
        person_inputs(unknown)
    missing = _person()
    del missing["items"]["2-12"]
    with pytest.raises(SurveyInputError,
                       match=r"2-12「外出頻度」.*必須.*\(frequency of going out\): required"):
        person_inputs(missing)


def test_person_csv_in_cp932_with_bare_item_numbers(frames: dict[str, pd.DataFrame]) -> None:
    persons = frames["persons"].head(5)
    renamed = persons.rename(columns=lambda c: c.removeprefix("item_"))
    raw = renamed.to_csv(index=False, lineterminator="\r\n").encode("cp932")
    got = read_persons(raw, "232017")
    assert len(got) == 5 and (got["item_1-7"] == persons["item_1-7"].to_numpy()).all()
    broken = renamed.assign(**{"3-4": ["1", "2", "3", "1", "1"]})
    with pytest.raises(SurveyInputError, match=r"3-4「短期記憶」 行 4"):
        read_persons(broken.to_csv(index=False).encode(), "232017")
