"""`stickerbot demo` end to end, as `make demo` runs it (fast settings), twice."""

import os
import subprocess
import sys

from bot.sticker_spec import validate_telegram_sticker
from tests.runtime_helpers import FAST_ENV


def run_demo(tmp_path, *extra):
    env = {**os.environ, **FAST_ENV}
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli.commands", "demo", "--out", str(tmp_path / "out"), *extra],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )


def test_demo_writes_telegram_stickers_then_hits_the_cache_and_is_never_rate_limited(tmp_path):
    first = run_demo(tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    stickers = sorted((tmp_path / "out").glob("*.webp"))
    assert len(stickers) >= 3
    for path in stickers:
        assert validate_telegram_sticker(path.read_bytes()) == []
    assert "learned the character" in first.stdout
    assert first.stdout.count("embedding cache hit") == 2  # prompts 2 and 3 reuse the concept
    from PIL import Image

    sheet = Image.open(tmp_path / "out" / "contact_sheet.png")
    assert sheet.size == (4 * 256, 256 + 28)  # the reference and three stickers

    second = run_demo(tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout.count("embedding cache hit") == 3
    assert "learned the character" not in second.stdout

    # Nine stickers within a minute: the console is the operator's own, no rate limit applies.
    third = run_demo(tmp_path)
    assert third.returncode == 0 and "Traceback" not in third.stderr, third.stderr[-2000:]
    assert third.stdout.count("embedding cache hit") == 3


def test_demo_with_a_broken_reference_exits_with_one_line(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    result = run_demo(tmp_path, "--reference", str(broken))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr


def test_demo_with_a_missing_reference_exits_with_one_line(tmp_path):
    result = run_demo(tmp_path, "--reference", str(tmp_path / "nope.png"))
    assert result.returncode == 2 and "cannot read reference" in result.stderr and "Traceback" not in result.stderr


def one_error_line(result) -> str:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr[-3000:]
    return error_lines[0]


def test_a_prompt_the_parser_refuses_is_one_line_not_a_traceback(tmp_path):
    result = run_demo(tmp_path, "   ")
    assert result.returncode == 2
    assert "Tell me what the sticker should show" in one_error_line(result)


def test_a_runtime_that_cannot_start_is_one_line_naming_the_cause_and_its_log(tmp_path, monkeypatch):
    monkeypatch.setenv("STICKERBOT_RUNTIME__MODEL", str(tmp_path / "no-such-model"))
    result = run_demo(tmp_path)
    assert result.returncode == 1
    line = one_error_line(result)
    assert "no-such-model" in line and "runtime.log" in line
    assert "Traceback" in (tmp_path / "out" / "runtime.log").read_text()  # the details are kept for the operator


def test_demo_reports_a_failed_job_as_failed_not_as_a_cache_hit(tmp_path):
    # A layer selector no layer of the model matches: every adaptation fails on the runtime.
    env = {**os.environ, **FAST_ENV, "STICKERBOT_ADAPTATION__ATTENTION_LOSS": "fastcomposer",
           "STICKERBOT_ADAPTATION__ATTENTION_LAYERS": "res:3", "STICKERBOT_LIMITS__JOB_ATTEMPTS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "adapters.cli.commands", "demo", "--out", str(tmp_path / "out"), "happy"],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]
    assert "job failed after 1 tries" in result.stdout and "matches no layer" in result.stdout
    assert "cache hit" not in result.stdout and "generated in" not in result.stdout
