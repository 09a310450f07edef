import json

import pytest

from adapters.cli.commands import main
from bot.settings import SettingsError, load_settings, read_token


def test_toml_then_environment_overrides(tmp_path):
    config = tmp_path / "bot.toml"
    config.write_text('[runtime]\ndevice = "cuda"\nport = 9000\n[adaptation]\nnum_tokens = 2\n'
                      '[limits]\nblocklist = ["badword"]\n')
    settings = load_settings(config, environ={"STICKERBOT_RUNTIME__PORT": "9100",
                                              "STICKERBOT_ADAPTATION__ATTENTION_LOSS": "fastcomposer"})
    assert settings.runtime.device == "cuda"
    assert settings.runtime.port == 9100
    assert settings.adaptation.num_tokens == 2
    assert settings.adaptation.attention_loss == "fastcomposer"
    assert settings.limits.blocklist == ("badword",)


def test_unknown_keys_and_bad_types_are_clear_errors(tmp_path):
    config = tmp_path / "bot.toml"
    config.write_text("[runtime]\ndevise = 'cpu'\n")
    with pytest.raises(SettingsError, match="unknown keys: devise"):
        load_settings(config, environ={})
    with pytest.raises(SettingsError, match="runtime.port: expected int"):
        load_settings(None, environ={"STICKERBOT_RUNTIME__PORT": "lots"})


def test_tokens_come_from_env_or_file_and_are_redacted(tmp_path, capsys, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text("123456:SECRET-FROM-FILE\n")
    assert read_token(None, str(token_file), "Telegram") == "123456:SECRET-FROM-FILE"
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:SECRET-FROM-ENV")
    monkeypatch.setenv("STICKERBOT_RUNTIME__SHARED_SECRET", "runtime-secret-value")
    assert main(["config", "--show"]) == 0
    out = capsys.readouterr().out
    assert "SECRET" not in out and "runtime-secret-value" not in out
    shown = json.loads(out)
    assert shown["telegram"]["token"] == "***" and shown["runtime"]["shared_secret"] == "***"


def test_missing_token_error_does_not_echo_anything_secret():
    with pytest.raises(SettingsError, match="no Discord token"):
        read_token(None, None, "Discord")


def test_settings_hash_changes_with_any_adaptation_setting():
    base = load_settings(None, environ={})
    changed = load_settings(None, environ={"STICKERBOT_ADAPTATION__STEPS": "61"})
    assert base.adaptation.settings_hash("m") != changed.adaptation.settings_hash("m")
    assert base.adaptation.settings_hash("m") != base.adaptation.settings_hash("other-model")
    assert base.adaptation.settings_hash("m") == load_settings(None, environ={}).adaptation.settings_hash("m")


def test_denoise_defaults_to_a_median_for_pixel_models_only():
    from seal_runtime.api.config import GenerationSettings

    assert GenerationSettings().denoise_size(pixel_space=True) == 3
    assert GenerationSettings().denoise_size(pixel_space=False) == 0
    assert GenerationSettings(denoise_px=0).denoise_size(pixel_space=True) == 0
    assert GenerationSettings(denoise_px=5).denoise_size(pixel_space=False) == 5
    assert GenerationSettings(denoise_px=4).denoise_size(pixel_space=True) == 0  # a median needs an odd size


def test_the_queue_is_embedded_by_default_and_redis_only_when_asked(capsys, monkeypatch):
    from adapters.cli.supervisor import runtime_client
    from seal_runtime.api.client import RuntimeClient
    from seal_runtime.api.redis_client import RedisRuntimeClient

    default = load_settings(None, environ={})
    assert default.general.queue == "embedded" and isinstance(runtime_client(default), RuntimeClient)
    scaled = load_settings(None, environ={"STICKERBOT_GENERAL__QUEUE": "redis",
                                          "STICKERBOT_GENERAL__REDIS_URL": "rediss://bot:pw-of-redis@r.example:6380/1"})
    client = runtime_client(scaled)
    assert isinstance(client, RedisRuntimeClient) and client.redis_settings.ssl
    assert client.redis_settings.username == "bot" and client.redis_settings.database == 1
    with pytest.raises(SettingsError, match="general.queue must be one of embedded, redis"):
        load_settings(None, environ={"STICKERBOT_GENERAL__QUEUE": "kafka"})
    monkeypatch.setenv("STICKERBOT_GENERAL__REDIS_URL", "rediss://bot:pw-of-redis@r.example:6380/1")
    assert main(["config", "--show"]) == 0
    out = capsys.readouterr().out
    assert "pw-of-redis" not in out
    assert json.loads(out)["general"]["redis_url"] == "rediss://bot:***@r.example:6380/1"


def test_a_setting_every_job_would_be_refused_for_is_a_configuration_error():
    with pytest.raises(SettingsError, match="adaptation.steps"):
        load_settings(None, environ={"STICKERBOT_ADAPTATION__STEPS": "1000000"})
    with pytest.raises(SettingsError, match="attention_loss"):
        load_settings(None, environ={"STICKERBOT_ADAPTATION__ATTENTION_LOSS": "mse"})
    assert load_settings(None, environ={"STICKERBOT_ADAPTATION__STEPS": "300"}).adaptation.steps == 300


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("ADAPTATION__METHOD", "dreambooth", "method"),
        ("ADAPTATION__MERGE_RULE", "sum", "merge_rule"),
        ("ADAPTATION__PROFILE", "sdxl", "profile"),
        ("GENERATION__SCHEDULER", "euler", "scheduler"),
        ("GENERATION__SCENE_FRAME", "square", "scene_frame"),
    ],
)
def test_every_enumerated_setting_is_checked_when_settings_load(variable, value, field):
    with pytest.raises(SettingsError, match=field):
        load_settings(None, environ={f"STICKERBOT_{variable}": value})


def test_the_profile_type_names_exactly_the_profiles_that_exist():
    from typing import get_args

    from seal_runtime.api.config import ADAPTATION_PROFILES, AdaptationProfile

    assert set(get_args(AdaptationProfile)) == {"auto", *ADAPTATION_PROFILES}
