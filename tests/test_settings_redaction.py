"""What `stickerbot config --show` and the logs may say about secrets: never the secret.

Settings.redacted() replaces every set secret field (a token, the runtime's shared secret)
with ***, in every section, at any depth; an unset secret shows as unset (None or empty),
which is what someone debugging "why is my token not read" needs to see. read_token takes
the secret from the setting or its file, and its errors never echo a secret.
"""

import dataclasses
import json

import pytest

from bot.settings import (
    REDACTED,
    SECRET_FIELDS,
    Settings,
    SettingsError,
    _redact,
    load_settings,
    read_token,
)


def test_the_secret_fields_are_the_tokens_and_the_runtime_secret():
    assert REDACTED == "***"
    assert {"token", "shared_secret"} <= SECRET_FIELDS


def test_every_set_secret_is_replaced_and_everything_else_is_kept():
    settings = load_settings(None, environ={"TELEGRAM_BOT_TOKEN": "123:telegram-secret",
                                            "DISCORD_BOT_TOKEN": "discord-secret",
                                            "STICKERBOT_RUNTIME__SHARED_SECRET": "runtime-secret",
                                            "STICKERBOT_TELEGRAM__ADMIN_IDS": "7,8"})
    shown = settings.redacted()
    assert shown["telegram"]["token"] == shown["discord"]["token"] == shown["runtime"]["shared_secret"] == "***"
    text = repr(shown)
    for secret in ("telegram-secret", "discord-secret", "runtime-secret"):
        assert secret not in text
    # The rest is the settings as they are, sequences as lists (JSON's shape).
    expected = json.loads(json.dumps(dataclasses.asdict(settings)))
    expected["telegram"]["token"] = expected["discord"]["token"] = expected["runtime"]["shared_secret"] = "***"
    assert shown == expected and shown["telegram"]["admin_ids"] == [7, 8]


def test_an_unset_secret_shows_as_unset():
    shown = Settings().redacted()
    assert shown["telegram"]["token"] is None and shown["discord"]["token"] is None
    assert _redact({"token": ""}) == {"token": ""}


def test_secrets_are_found_at_any_depth_and_inside_lists():
    data = {"outer": {"token": "a", "list": [{"shared_secret": "b", "name": "kept"}, ("x", {"token": "c"})]},
            "token_file": "/run/secrets/t", "name": "token"}
    assert _redact(data) == {"outer": {"token": "***", "list": [{"shared_secret": "***", "name": "kept"},
                                                                ["x", {"token": "***"}]]},
                             "token_file": "/run/secrets/t", "name": "token"}
    assert _redact("token") == "token" and _redact(5) == 5


def test_runtime_secret_is_the_shared_secret():
    assert Settings().runtime_secret() is None
    settings = load_settings(None, environ={"STICKERBOT_RUNTIME__SHARED_SECRET": "s3cret-value"})
    assert settings.runtime_secret() == "s3cret-value"


def test_read_token_prefers_the_setting_and_strips_it(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    assert read_token("  from-setting\n", str(token_file), "Telegram") == "from-setting"
    assert read_token("", str(token_file), "Telegram") == "from-file"
    assert read_token(None, str(token_file), "Telegram") == "from-file"


def test_read_token_errors_name_the_platform_and_the_file_but_no_secret(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(SettingsError) as info:
        read_token(None, str(missing), "Discord")
    assert str(info.value) == f"cannot read the Discord token file {missing}: No such file or directory"
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    with pytest.raises(SettingsError, match=r"^no Telegram token: set the environment variable or token_file$"):
        read_token(None, str(empty), "Telegram")
    with pytest.raises(SettingsError, match=r"^no Discord token: set the environment variable or token_file$"):
        read_token("", None, "Discord")


def test_the_redis_url_is_shown_with_its_password_replaced():
    settings = load_settings(None, environ={"STICKERBOT_GENERAL__REDIS_URL": "redis://bot:pa55word@10.0.0.5:6380/2"})
    shown = settings.redacted()
    assert "pa55word" not in repr(shown)
    assert shown["general"]["redis_url"] == "redis://bot:***@10.0.0.5:6380/2"
