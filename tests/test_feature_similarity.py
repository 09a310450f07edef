"""CLIP-I, CLIP-T and DINO scorers, on tiny random transformers models saved to a folder
the way an operator's downloaded weights would be (nothing is fetched)."""

from __future__ import annotations

import pytest
from PIL import Image

from stickerworld.tokenizer_training import build_tokenizer, vocabulary_corpus
from stickerworld.feature_similarity import ClipScorer, DinoScorer


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    folder = tmp_path_factory.mktemp("clip")
    tokenizer = build_tokenizer(vocabulary_corpus(), vocab_size=256)
    config = CLIPConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 77,
                     "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def dino_folder(tmp_path_factory):
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    folder = tmp_path_factory.mktemp("dino")
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                             image_size=32, patch_size=8)).save_pretrained(folder)
    BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def pictures():
    red = Image.new("RGBA", (64, 64), (220, 40, 40, 255))
    blue = Image.new("RGB", (80, 60), (30, 60, 200))
    half = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    half.paste((220, 40, 40, 255), (0, 0, 32, 64))
    return red, blue, half


def test_clip_image_and_text_scores_are_cosines(clip_folder):
    scorer = ClipScorer(clip_folder)
    red, blue, half = pictures()
    same, other, partial = scorer.clip_i([red, blue, half], red)
    assert same == pytest.approx(1.0, abs=1e-5)
    assert -1.0 <= other < same and -1.0 <= partial < same
    text = scorer.clip_t([red, blue], ["a happy red character", "a sad blue character on a beach"])
    assert len(text) == 2 and all(-1.0 <= t <= 1.0 for t in text)


def test_dino_scores_the_same_picture_highest(dino_folder):
    scorer = DinoScorer(dino_folder)
    red, blue, half = pictures()
    same, other, partial = scorer.dino([red, blue, half], red)
    assert same == pytest.approx(1.0, abs=1e-5)
    assert other < same and partial < same


def test_bench_quality_quick_adds_clip_and_dino_columns(tmp_path, clip_folder, dino_folder):
    import json

    from adapters.cli.commands import main as stickerbot

    out = tmp_path / "quality.json"
    assert stickerbot(["bench", "quality", "--quick", "--json", str(out), "--clip", str(clip_folder),
                       "--dino", str(dino_folder)]) == 0
    table = json.loads(out.read_text())["table"]
    assert set(table) == {"runtime default", "TTF + SEAL", "explicit words", "chance"}
    assert "clip_i" not in table["chance"]  # chance is identity agreement only
    for name, metrics in table.items():
        if name == "chance":
            continue
        assert {"identity", "attributes", "leakage", "rigidity", "clip_i", "clip_t", "dino"} <= set(metrics)
        assert -1.0 <= metrics["clip_i"]["mean"] <= 1.0 and -1.0 <= metrics["dino"]["mean"] <= 1.0


def test_a_missing_folder_is_not_fetched(tmp_path):
    with pytest.raises(OSError):
        ClipScorer(tmp_path / "no-such-model")
