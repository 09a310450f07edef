"""`stickerbot bench quality` scores the same in one process as in several."""

import json

from adapters.cli.commands import main as stickerbot


def test_two_worker_processes_score_what_one_does(tmp_path):
    tables = {}
    for workers in (1, 2):
        out = tmp_path / f"quality-{workers}.json"
        assert stickerbot(["bench", "quality", "--quick", "--workers", str(workers), "--json", str(out)]) == 0
        figures = json.loads(out.read_text())
        assert figures["workers"] == workers and figures["model_id"].startswith("builtin-stickerworld")
        tables[workers] = figures["table"]
    assert set(tables[1]) == {"TTF alone", "TTF + SEAL", "SEAL k=2"}
    for name, metrics in tables[1].items():
        for metric, value in metrics.items():
            assert abs(value["mean"] - tables[2][name][metric]["mean"]) < 1e-3, (name, metric)
