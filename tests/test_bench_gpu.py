"""`stickerbot bench gpu` runs on a CPU as a smoke test (tiny width, few steps) and writes
every figure the GPU run reports."""

import json
import os

from adapters.cli.commands import main


def test_bench_gpu_runs_on_the_cpu_at_tiny_width(tmp_path, monkeypatch):
    monkeypatch.setenv("STICKERBOT_RUNTIME__DEVICE", "cpu")
    monkeypatch.setenv("STICKERBOT_GENERAL__LOG_FORMAT", "text")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    import torch

    out = tmp_path / "gpu.json"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # this shared 2-core machine: two threads ran 3-4x slower
    try:
        assert main(["bench", "gpu", "--quick", "--json", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    figures = json.loads(out.read_text())
    assert "STICKERBOT_RUNTIME__MODEL" not in os.environ  # the bench leaves the environment as it was
    assert figures["smoke_test_only"] and figures["resolution"] == 512
    assert figures["adaptation"]["ttf_step_ms"] > 0 and figures["adaptation"]["seal_step_ratio"] > 0
    rows = figures["generation"]["rows"]
    assert {(r["scheduler"], r["batch"]) for r in rows} == {(s, b) for s in ("ddim", "dpmpp_2m_karras", "lcm")
                                                            for b in (1, 2)}
    e2e = figures["end_to_end"]
    assert e2e["first_adapted"] and e2e["cached_adapted"] == 0 and e2e["cached_sticker_s"] > 0
