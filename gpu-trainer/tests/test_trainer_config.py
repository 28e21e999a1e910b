"""Trainer configs: every shipped YAML validates; overrides apply; every problem is reported at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from forge_trainer.config import ConfigError, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_the_configs_folder_ships_a_cpu_lora_a_cuda_lora_and_a_cuda_qlora():
    names = {p.name for p in CONFIGS}
    assert {"tiny_lora_cpu.yaml", "qwen2.5-0.5b_lora_cuda.yaml", "llama-3.2-1b_qlora_cuda.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads_validates_and_is_named_model_method_device(path):
    config = load_config(path)
    model, method, device = re.fullmatch(r"([\w.-]+)_(lora|qlora)_(cpu|cuda)\.yaml", path.name).groups()
    assert (config.model.quantization == "4bit") == (method == "qlora")
    if device == "cpu":
        assert config.model.quantization == "none"
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and "forge-trainer train --config configs/" + path.name in first


def test_overrides_set_nested_keys_with_yaml_typed_values(tmp_path):
    config = load_config(CONFIGS[0], ["train.epochs=1.5", "lora.target_modules=[q_proj, v_proj]",
                                      "data.packing=false", "train.max_steps=7"])
    assert config.train.epochs == 1.5 and config.train.max_steps == 7
    assert config.lora.target_modules == ["q_proj", "v_proj"] and config.data.packing is False


def test_an_invalid_config_lists_every_problem_with_its_key():
    with pytest.raises(ConfigError) as caught:
        load_config(None, ["model.name_or_path=m", "data.train=t.jsonl", "lora.r=0", "train.lr=-1", "train.bogus=1"])
    message = str(caught.value)
    assert "lora.r" in message and "train.lr" in message and "train.bogus" in message


def test_a_missing_config_file_or_a_malformed_override_says_what_to_pass(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(CONFIGS[0], ["epochs"])
