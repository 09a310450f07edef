"""Structured logs for operators: one JSON object per line, with the `extra=` fields,
and every registered secret (bot tokens, the runtime secret) replaced by ***.

Logs are not the only output: libraries put the token in exception messages (PTB's
`InvalidToken` does), and an uncaught exception's traceback goes straight to stderr.
`install_redacting_output()` (the CLI calls it first) routes stdout and stderr through the
same redaction, so no output of any command carries a registered secret."""

from __future__ import annotations

import io
import json
import logging
import sys
import time

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    if value and len(value) >= 6:
        _secrets.add(value)
        _, _, tail = value.partition(":")  # a Telegram token is <bot id>:<secret>: the secret alone too
        if len(tail) >= 6:
            _secrets.add(tail)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):  # the whole token before its tail
        text = text.replace(secret, "***")
    return text


class RedactingStream(io.TextIOBase):
    """A text stream that writes to `stream` with every registered secret replaced by ***."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return self.stream.isatty()

    @property
    def encoding(self):
        return getattr(self.stream, "encoding", "utf-8")

    def writable(self) -> bool:
        return True


def install_redacting_output() -> None:
    """Route sys.stdout and sys.stderr (prints, tracebacks of uncaught exceptions in any
    thread, warnings, the logging fallback) through `redact`."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(payload, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD)
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}" + (f" [{extras}]" if extras else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries' chatter (HTTP request lines carry the bot token in their URL) stays quiet.
    for noisy in ("httpx", "httpcore", "aiohttp.access", "urllib3", "discord.http"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
