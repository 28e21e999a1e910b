from pathlib import Path

import pytest

from forge.config import Provider, load_settings, write_setting
from forge.domain.errors import ConfigError


def test_defaults_are_the_seed_values():
    s = load_settings()
    assert s.enabled is True
    assert s.trigger_threshold == 500
    assert s.schedule_cron == "0 0 2 * * *"
    assert s.min_score == 90
    assert s.provider is Provider.LOCAL
    assert s.storage_connection is None and s.uses_managed_azurite
    assert s.teacher_model == "gpt-4.1" and s.student_base_model.startswith("gpt-4.1-mini")


def test_environment_variables_override_defaults(monkeypatch):
    monkeypatch.setenv("FORGE_TRIGGER_THRESHOLD", "25")
    monkeypatch.setenv("FORGE_PROVIDER", "azure-openai")
    monkeypatch.setenv("FORGE_ENABLED", "false")
    s = load_settings()
    assert (s.trigger_threshold, s.provider, s.enabled) == (25, Provider.AZURE_OPENAI, False)


def test_an_out_of_range_min_score_names_the_variable_and_the_allowed_range(monkeypatch):
    monkeypatch.setenv("FORGE_MIN_SCORE", "120")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "FORGE_MIN_SCORE='120'" in str(caught.value)
    assert "from 0 to 100" in str(caught.value)


def test_an_unknown_provider_lists_the_providers_there_are(monkeypatch):
    monkeypatch.setenv("FORGE_PROVIDER", "sagemaker")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "FORGE_PROVIDER" in str(caught.value)
    for name in ("local", "azure-openai", "openai", "azureml"):
        assert name in str(caught.value)


def test_a_five_field_cron_is_refused_with_the_six_fields_explained(monkeypatch):
    monkeypatch.setenv("FORGE_SCHEDULE_CRON", "0 2 * * *")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "FORGE_SCHEDULE_CRON" in str(caught.value) and "six fields" in str(caught.value)


def test_every_invalid_value_is_reported_at_once(monkeypatch):
    monkeypatch.setenv("FORGE_TRIGGER_THRESHOLD", "0")
    monkeypatch.setenv("FORGE_ENABLED", "maybe")
    message = str(pytest.raises(ConfigError, load_settings).value)
    assert "FORGE_TRIGGER_THRESHOLD" in message and "FORGE_ENABLED" in message


def test_the_storage_connection_never_appears_in_errors_or_repr(monkeypatch):
    secret = "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=c2VjcmV0"
    monkeypatch.setenv("FORGE_STORAGE_CONNECTION", secret)
    assert "c2VjcmV0" not in repr(load_settings())
    monkeypatch.setenv("FORGE_MIN_SCORE", "-1")
    assert "c2VjcmV0" not in str(pytest.raises(ConfigError, load_settings).value)


def test_forge_toml_in_forge_home_is_read_and_the_environment_wins(monkeypatch, tmp_path):
    home = Path(tmp_path / "forge-home")
    home.mkdir(parents=True, exist_ok=True)
    (home / "forge.toml").write_text('domain = "legal"\ntrigger_threshold = 42\n')
    assert load_settings().domain == "legal"
    monkeypatch.setenv("FORGE_TRIGGER_THRESHOLD", "7")
    assert load_settings().trigger_threshold == 7


def test_write_setting_keeps_other_keys_and_refuses_an_invalid_value_without_writing(tmp_path):
    s = load_settings()
    write_setting(s, "trigger_threshold", 42)
    write_setting(s, "domain", "finance")
    before = s.config_file.read_text()
    with pytest.raises(ConfigError):
        write_setting(s, "min_score", 300)
    assert s.config_file.read_text() == before
    reread = load_settings()
    assert (reread.trigger_threshold, reread.domain) == (42, "finance")


def test_a_broken_forge_toml_says_which_file_to_fix(tmp_path):
    home = tmp_path / "forge-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "forge.toml").write_text("domain = \n")
    message = str(pytest.raises(ConfigError, load_settings).value)
    assert str(home / "forge.toml") in message
