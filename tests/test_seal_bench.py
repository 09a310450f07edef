"""`stickerbot bench seal --quick` runs and writes the figures the docs table is made from."""

import json
from types import SimpleNamespace

from benchmarks import bench_seal


def test_quick_seal_benchmark_writes_its_figures(tmp_path):
    path = tmp_path / "seal.json"
    assert bench_seal.run(SimpleNamespace(json_path=str(path), quick=True, repeats=None)) == 0
    figures = json.loads(path.read_text())
    timing = figures["timing"]
    assert timing["ttf"]["per_step_ms_median"] > 0 and timing["seal"]["per_step_ms_median"] > 0
    assert timing["seal_over_ttf_time_ratio"] > 0
    for name in ("ttf", "seal"):
        share = figures["share"][name]["share_inside_mask"]
        assert 0 < share["constrained_layers"] < 1 and 0 < share["all_layers"] < 1
        assert figures["share"][name]["eval_loss_curve"]
    assert set(figures["k_sweep"]) == {"1", "2", "4", "8"}
    assert figures["settings_ttf"]["attention_loss"] == "none" and figures["settings_seal"]["attention_loss"] != "none"
    assert figures["seconds"] > 0
