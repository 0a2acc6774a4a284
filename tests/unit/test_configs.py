"""Config validation: check digits, tenants, and errors that name file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from models.configs import (
    ConfigError,
    PlatformConfig,
    TenantsConfig,
    check_digit,
    hash_api_key,
    load_config,
    load_task_config,
    small_overrides,
    task_names,
    validate_municipality_code,
    with_overrides,
)
from models.task import get_task
from tests.conftest import REPO

PILOTS = {"232017": "豊橋市", "472018": "那覇市", "121002": "千葉市", "012050": "室蘭市",
          "402303": "糸島市"}


@pytest.mark.parametrize("code", sorted(PILOTS))
def test_domain_check_digits(code: str) -> None:
    assert check_digit(code[:5]) == int(code[5])


@pytest.mark.parametrize("bad", ["402304", "40230", "4023O3", "1234567"])
def test_bad_codes_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match=r"check digit|6 digits"):
        validate_municipality_code(bad)


def test_repo_tenants_load() -> None:
    cfg = load_config(REPO / "configs" / "tenants.yaml", TenantsConfig)
    assert len(cfg.tenants) == 13
    assert {c: cfg.by_code()[c].name for c in PILOTS} == PILOTS
    itoshima = cfg.by_code()["402303"]
    assert "claim_screening" in itoshima.tasks
    assert itoshima.api_key_sha256 == hash_api_key("kyodo-demo-402303")
    assert cfg.admin_key_sha256 == hash_api_key("kyodo-demo-admin")


def test_repo_platform_and_task_configs_load() -> None:
    assert load_config(REPO / "configs" / "platform.yaml", PlatformConfig).onnx_opset <= 15
    task = get_task("claim_screening")
    cfg = load_task_config(REPO / "configs" / "claim_screening.yaml", task.Config)
    assert cfg.capacity == 0.05


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_wrong_check_digit_names_file_key_and_reason(tmp_path: Path) -> None:
    text = (REPO / "configs" / "tenants.yaml").read_text(encoding="utf-8")
    path = write(tmp_path, text.replace('"402303"', '"402304"'))
    with pytest.raises(ConfigError) as err:
        load_config(path, TenantsConfig)
    msg = str(err.value)
    assert str(path) in msg and "tenants." in msg and ".code" in msg and "check digit" in msg


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\nonnx_opsett: 15\n")
    with pytest.raises(ConfigError, match="onnx_opsett"):
        load_config(path, PlatformConfig)


def test_bad_value_and_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"onnx_opset.*less than or equal"):
        load_config(write(tmp_path, "onnx_opset: 21\n"), PlatformConfig)
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "seed: [1\n"), PlatformConfig)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml", PlatformConfig)


def test_unknown_task_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="claim_screening"):
        get_task("nope")


def test_a_task_configs_small_block_is_apart_from_the_config(tmp_path: Path) -> None:
    task = get_task("claim_screening")
    text = (REPO / "configs" / "claim_screening.yaml").read_text(encoding="utf-8")
    small = small_overrides(REPO / "configs" / "claim_screening.yaml")
    assert small["generate"] == {"total_claims": 8000}
    cfg = load_task_config(write(tmp_path, text), task.Config)  # `small` is not a config key
    assert cfg.generate.total_claims > 8000
    with pytest.raises(ConfigError, match="small"):
        load_config(write(tmp_path, text), task.Config)  # only the task loader drops it
    with pytest.raises(ConfigError, match="key 'small': expected a mapping"):
        small_overrides(write(tmp_path, "small: 3\n"))
    assert small_overrides(write(tmp_path, "capacity: 0.1\n")) == {}


def test_every_listed_tasks_small_block_makes_a_valid_config() -> None:
    for name in task_names():
        path = REPO / "configs" / f"{name}.yaml"
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw.pop("small")
        get_task(name).Config.model_validate(with_overrides(raw, small_overrides(path)))


def test_overrides_update_two_levels() -> None:
    raw = {"model": {"epochs": 30, "lr": 0.1}, "bootstrap": 200}
    assert with_overrides(raw, {"model": {"epochs": 2}, "bootstrap": 20}) == {
        "model": {"epochs": 2, "lr": 0.1}, "bootstrap": 20}
    assert raw["model"]["epochs"] == 30
