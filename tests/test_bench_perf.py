"""`stickerbot bench perf --quick` runs the real path (service -> SQLite job -> worker ->
runtime child over HTTP) and writes every figure the README's perf table reads."""

import json

from adapters.cli.commands import main


def test_bench_perf_quick_writes_the_readme_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("STICKERBOT_GENERAL__LOG_FORMAT", "text")
    out = tmp_path / "perf.json"
    assert main(["bench", "perf", "--quick", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["cache_hits_adapted"] == 0  # every repeat after the first is a cache hit
    assert figures["first_request_s"] > figures["cache_hit_request_s"] > 0
    assert figures["telegram_format_ms"] > 0 and figures["bot_overhead_ms_median"] >= 0
    finish = figures["finish_512px"]
    assert finish["side_px"] == 512 and finish["sticker_cpu_ms"] > 0 and finish["sticker_png_bytes"] > 0
