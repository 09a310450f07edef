"""bot/log_format.py pinned piece by piece: which values count as secrets (at the length edge),
that the longest is replaced first, and what each formatter and the redacting stream write."""

import io
import json
import logging
import sys
from pathlib import Path

import pytest

from bot import log_format
from bot.log_format import (
    JsonFormatter,
    RedactingStream,
    TextFormatter,
    install_redacting_output,
    redact,
)


@pytest.fixture(autouse=True)
def no_secrets(monkeypatch):
    monkeypatch.setattr(log_format, "_secrets", set())


def test_a_secret_has_at_least_six_characters():
    log_format.register_secret("12345")
    log_format.register_secret(None)
    log_format.register_secret("")
    assert redact("12345 stays") == "12345 stays"
    log_format.register_secret("123456")
    assert redact("x123456y") == "x***y"


def test_a_telegram_tokens_secret_half_is_a_secret_alone_when_long_enough():
    log_format.register_secret("123456:ABCDEFGH")
    assert redact("token 123456:ABCDEFGH") == "token ***"  # the whole token first, not 123456:***
    assert redact("half ABCDEFGH") == "half ***"
    assert redact("id 123456 alone") == "id 123456 alone"
    log_format.register_secret("987654:ABCDE")  # a 5-character tail would blank too much
    assert redact("ABCDE 987654:ABCDE") == "ABCDE ***"


def test_the_redacting_stream_writes_redacted_text_and_delegates_the_rest():
    log_format.register_secret("sekrit-value")
    target = io.StringIO()
    stream = RedactingStream(target)
    assert stream.write("a sekrit-value b") == len("a sekrit-value b")  # what the caller gave
    stream.flush()
    assert target.getvalue() == "a *** b"
    assert stream.writable() and stream.isatty() is False
    assert RedactingStream(io.TextIOWrapper(io.BytesIO(), encoding="latin-1")).encoding == "latin-1"
    assert RedactingStream(object()).encoding == "utf-8"  # a target that names none
    with pytest.raises(io.UnsupportedOperation):
        stream.fileno()  # StringIO has none: the stream says so, as its target does
    assert RedactingStream(sys.__stderr__).fileno() == sys.__stderr__.fileno()


def test_install_redacting_output_wraps_stdout_and_stderr_once(monkeypatch):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    install_redacting_output()
    install_redacting_output()
    assert isinstance(sys.stdout, RedactingStream) and sys.stdout.stream is out
    assert isinstance(sys.stderr, RedactingStream) and sys.stderr.stream is err
    log_format.register_secret("printed-secret")
    print("x printed-secret")
    assert out.getvalue() == "x ***\n"
    monkeypatch.setattr(sys, "stdout", None)
    install_redacting_output()  # no stdout (pythonw, a daemon): left alone
    assert sys.stdout is None


def _record(msg="hello %s", args=("world",), exc_info=None, **extra):
    record = logging.LogRecord("bot.test", logging.WARNING, __file__, 1, msg, args, exc_info)
    record.created, record.msecs = 86400 + 3723.5, 500.0  # 1970-01-02 01:02:03.500 UTC
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_the_json_formatter_writes_one_object_per_line_with_the_extras():
    line = JsonFormatter().format(_record(job="j1", n=3))
    assert json.loads(line) == {"ts": "1970-01-02T01:02:03.500Z", "level": "warning", "logger": "bot.test",
                                "msg": "hello world", "job": "j1", "n": 3}
    assert "\n" not in line
    assert json.loads(JsonFormatter().format(_record(msg="ü", args=())))["msg"] == "ü"
    assert "ü" in JsonFormatter().format(_record(msg="ü", args=()))  # not \u00fc


def test_the_text_formatter_writes_level_logger_message_and_extras():
    assert TextFormatter().format(_record()) == "warning bot.test: hello world"
    assert TextFormatter().format(_record(job="j1")) == "warning bot.test: hello world [job=j1]"


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()], ids=["json", "text"])
def test_both_formatters_add_the_traceback_and_redact_everything(formatter):
    log_format.register_secret("tok-secret-1")
    try:
        raise ValueError("failed with tok-secret-1")
    except ValueError:
        record = _record(msg="call %s", args=("tok-secret-1",), exc_info=sys.exc_info(), url="/bot/tok-secret-1")
    out = formatter.format(record)
    assert "tok-secret-1" not in out and "ValueError: failed with ***" in out and "Traceback" in out
    if isinstance(formatter, JsonFormatter):
        assert json.loads(out)["url"] == "/bot/***"


def test_configure_logging_installs_one_handler_and_quiets_the_http_libraries(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    level = root.level
    try:
        log_format.configure_logging("debug", "text")
        assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, TextFormatter)
        assert root.level == logging.DEBUG
        for noisy in ("httpx", "httpcore", "aiohttp.access", "urllib3", "discord.http"):
            assert logging.getLogger(noisy).level == logging.WARNING, noisy
        log_format.configure_logging("INFO", "json")
        assert isinstance(root.handlers[0].formatter, JsonFormatter) and root.level == logging.INFO
    finally:
        root.setLevel(level)


def test_configure_logging_defaults_to_json_at_info_on_stderr(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    level = root.level
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    try:
        log_format.configure_logging()
        (handler,) = root.handlers
        assert isinstance(handler.formatter, JsonFormatter) and root.level == logging.INFO
        assert handler.stream is err  # operators read the logs on stderr, stdout stays the command's
    finally:
        root.setLevel(level)


def test_a_secret_with_more_colons_blanks_everything_after_the_first():
    log_format.register_secret("123456:AB:cdefgh")
    assert redact("tail AB:cdefgh") == "tail ***"


def test_a_six_character_secret_half_is_a_secret_alone():
    log_format.register_secret("123456:ABCDEF")
    assert redact("half ABCDEF") == "half ***"


def test_the_json_formatter_keeps_the_traceback_under_exc_and_writes_any_extra_as_text():
    try:
        raise KeyError("gone")
    except KeyError:
        record = _record(exc_info=sys.exc_info(), path=Path("/srv/x.png"))
    payload = json.loads(JsonFormatter().format(record))
    assert payload["exc"].startswith("Traceback") and "KeyError: 'gone'" in payload["exc"]
    assert payload["path"] == "/srv/x.png"


def test_the_text_formatter_separates_extras_by_spaces_and_puts_the_traceback_on_its_own_lines():
    try:
        raise KeyError("gone")
    except KeyError:
        record = _record(exc_info=sys.exc_info(), job="j1", n=2)
    first, second, *_ = TextFormatter().format(record).split("\n")
    assert first == "warning bot.test: hello world [job=j1 n=2]"
    assert second == "Traceback (most recent call last):"
