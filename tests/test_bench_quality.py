"""`stickerbot bench quality`: the rows it reports, scored the same in one process as in several."""

import json

import pytest

from adapters.cli.commands import main as stickerbot
from benchmarks.bench_quality import (
    CHANCE,
    EXPLICIT_WORDS,
    ceiling_share,
    chance_agreement,
    parse_overrides,
    configurations,
    spread_identities,
    without_repeats,
)
from seal_runtime.api.config import AdaptationSettings
from stickerworld.identities import Identity, held_out_identities


def test_two_worker_processes_score_what_one_does(tmp_path):
    tables = {}
    for workers in (1, 2):
        out = tmp_path / f"quality-{workers}.json"
        assert stickerbot(["bench", "quality", "--quick", "--workers", str(workers), "--json", str(out)]) == 0
        figures = json.loads(out.read_text())
        assert figures["workers"] == workers and figures["model_id"].startswith("builtin-stickerworld")
        assert len(figures["identities"]) == 2 and figures["units_per_row"] == 4
        tables[workers] = figures["table"]
    table = tables[1]
    assert list(table) == ["runtime default", "TTF + SEAL", EXPLICIT_WORDS, CHANCE]
    for name in ("runtime default", EXPLICIT_WORDS):
        assert {"identity", "shape", "colour", "pattern", "attributes", "leakage", "rigidity"} <= set(table[name])
    assert set(table[CHANCE]) == {"identity", "shape", "colour", "pattern"}  # nothing else has a chance level
    for name, metrics in table.items():
        parts = [metrics[p]["mean"] for p in ("shape", "colour", "pattern")]
        assert metrics["identity"]["mean"] == pytest.approx(sum(parts) / 3), name
        for metric, value in metrics.items():
            assert abs(value["mean"] - tables[2][name][metric]["mean"]) < 1e-3, (name, metric)
    assert set(figures["ceiling_share"]) == {"runtime default", "TTF + SEAL"}


def test_chance_scores_a_sticker_against_the_other_identities_only():
    a = Identity("round", "red", "plain", "dot", "none")
    b = Identity("round", "blue", "spots", "dot", "none")
    c = Identity("square", "blue", "plain", "dot", "none")
    drawn_as_a = [{"shape": "round", "colour": "red", "pattern": "plain"}]
    chance = chance_agreement(drawn_as_a, a, [a, b, c])
    assert chance == {"shape": 0.5, "colour": 0.0, "pattern": 0.5, "identity": pytest.approx(1 / 3)}


def test_ceiling_share_is_measured_from_chance_up_to_the_words():
    row = {"identity": {"mean": 0.6, "ci95": 0.1}}
    table = {"runtime default": row, EXPLICIT_WORDS: {"identity": {"mean": 0.8, "ci95": 0}},
             CHANCE: {"identity": {"mean": 0.2, "ci95": 0}}}
    assert ceiling_share(table) == {"runtime default": {"of_ceiling": 0.75, "above_chance": pytest.approx(2 / 3, abs=1e-3)}}


def test_the_identities_spread_over_shapes_colours_and_patterns():
    picked = spread_identities(held_out_identities(), 8)
    assert len(set(picked)) == 8
    assert len({i.shape for i in picked}) >= 3 and len({i.colour for i in picked}) >= 6
    assert len({i.pattern for i in picked}) >= 3


def test_an_ablation_equal_to_the_default_is_run_once():
    base = AdaptationSettings().resolved("builtin")  # attention loss off by default
    configs, same = without_repeats(configurations(base, ablations=True))
    assert "runtime default" in configs and "TTF + SEAL" in configs
    assert same.get("SEAL - attention loss") == "runtime default"
    assert len({repr(v) for v in configs.values()}) == len(configs)


def test_set_overrides_read_json_values_and_reject_a_pair_without_a_value():
    assert parse_overrides(["reference_views=8", "attention_loss=fastcomposer", "masked_diffusion_loss=true"]) == {
        "reference_views": 8, "attention_loss": "fastcomposer", "masked_diffusion_loss": True}
    with pytest.raises(SystemExit, match="key=value"):
        parse_overrides(["reference_views"])
