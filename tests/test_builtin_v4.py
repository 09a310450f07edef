"""Builtin v4: a latent miniature of SD 1.5, loaded by the same code as an SD 1.5 folder, and
the SEAL specifications holding on it (issue 19). Runs on a random v4 folder built in code."""

import json
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from seal_runtime.api.config import AdaptationSettings, GenerationSettings, RuntimeSettings
from seal_runtime.seal.attention_capture import cross_attention_layers
from seal_runtime.seal.attention_loss import measure_inside_share
from seal_runtime.seal.layer_selection import select_layers
from seal_runtime.seal.plugins import build_loss_terms
from seal_runtime.ttf.adaptation import adapt_concept
from seal_runtime.ttf.concept_tokens import ensure_tokens, inject_concept, placeholder_tokens
from tests.adaptation_helpers import character_on_a_background


def test_v4_is_a_stable_diffusion_pipeline_folder_loaded_by_the_sd_path(v4_model_dir, v4_backbone):
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel

    index = json.loads((v4_model_dir / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert {"vae", "unet", "text_encoder", "tokenizer", "scheduler"} <= set(index)
    pipe = StableDiffusionPipeline.from_pretrained(v4_model_dir, safety_checker=None, requires_safety_checker=False,
                                                   local_files_only=True)
    assert pipe.vae_scale_factor == 4
    b = v4_backbone
    assert isinstance(b.vae, AutoencoderKL) and isinstance(b.unet, UNet2DConditionModel)
    assert b.pixel_shuffle == 1 and b.resolution == 128
    # The latent size follows the VAE's config (three levels: 4 x), not SD's 8.
    assert b.latent_size == 32 == b.resolution // pipe.vae_scale_factor
    # The folder's seal_model.json hints: the concept's slot and the adaptation profile.
    assert b.concept_phrase == "a {} character" and b.adaptation_profile == "builtin"
    assert b.default_negative_prompt == ""
    # A content-hash id, prefixed with the model's name: new weights, new cache keys.
    assert b.model_id.startswith("builtin-random-v4-") and len(b.model_id) == len("builtin-random-v4-") + 16
    # A latent model's decoder smooths: no median clean-up.
    assert GenerationSettings().denoise_size(pixel_space=b.vae is None) == 0


def test_builtin_names_pick_a_shipped_folder_and_a_missing_one_says_so(monkeypatch, tmp_path):
    from seal_runtime.models import builtin_architecture, loader

    assert set(builtin_architecture.BUILTIN_NAMES) == {"builtin", "builtin-v3", "builtin-v4"}
    assert builtin_architecture.BUILTIN_NAMES["builtin"] == builtin_architecture.SHIPPED_BUILTIN
    monkeypatch.setitem(loader.BUILTIN_NAMES, "builtin-v4", tmp_path / "not-there")
    with pytest.raises(RuntimeError, match="builtin-v4"):
        loader.load_backbone(RuntimeSettings(device="cpu", model="builtin-v4"))


def test_v4_has_cross_attention_at_three_resolutions_plus_the_mid_block(v4_backbone):
    layers = cross_attention_layers(v4_backbone.unet, v4_backbone.latent_size)
    by_block = {}
    for layer in layers:
        by_block.setdefault(layer.block, set()).add(layer.resolution)
    assert by_block == {"down_blocks.1": {16}, "down_blocks.2": {8}, "down_blocks.3": {4}, "mid_block": {4},
                        "up_blocks.0": {4}, "up_blocks.1": {8}, "up_blocks.2": {16}}
    deep = select_layers(layers, ("deep",))
    assert 16 not in {layer.resolution for layer in deep} and len(deep) == len(layers) - 3


def test_v4_generates_at_its_native_size(v4_backbone):
    from seal_runtime.sampling import sample

    pixels = sample(v4_backbone, ["a happy round teal character"], steps=2,
                    generator=torch.Generator().manual_seed(0))
    assert pixels.shape == (1, 3, 128, 128) and torch.isfinite(pixels).all()


@pytest.mark.slow  # two adaptations on the 128-px latent model
def test_attention_loss_moves_the_concepts_attention_into_the_mask_on_v4(v4_backbone):
    reference, mask = character_on_a_background(v4_backbone.resolution)
    loss_off = AdaptationSettings(steps=16, batch_size=1, learning_rate=0.05, seed=3, num_tokens=1,
                                  attention_loss="none")
    loss_on = replace(loss_off, attention_loss="fastcomposer", attention_loss_weight=1.0)

    def share_after(settings):
        result = adapt_concept(v4_backbone, reference, mask, settings,
                               loss_terms=build_loss_terms(settings, v4_backbone))
        ids = ensure_tokens(v4_backbone, placeholder_tokens(1))
        layers = select_layers(cross_attention_layers(v4_backbone.unet, v4_backbone.latent_size), ("deep",))
        with inject_concept(v4_backbone, ids, result.vectors):
            return measure_inside_share(v4_backbone, ids, [v4_backbone.concept_words(["<concept_0>"])], reference,
                                        mask, layers=layers)["all"]

    share_off, share_on = share_after(loss_off), share_after(loss_on)
    assert share_on > share_off + 0.005, (share_off, share_on)


# -- training -------------------------------------------------------------------------------------------
def train_v4(out, *extra):
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli.commands", "train-builtin", "--arch", "v4", "--out", str(out),
         "--samples", "24", "--batch-size", "4", "--vae-batch-size", "4", "--vae-steps", "3", "--threads", "1",
         *extra],
        check=False, capture_output=True, text=True, timeout=600,
    )


def test_a_short_v4_run_exports_a_folder_the_runtime_loads_and_resume_continues_it(tmp_path):
    from seal_runtime.models.loader import load_backbone
    from stickerworld.tokenizer_training import build_tokenizer

    out = tmp_path / "v4"
    first = train_v4(out, "--max-steps", "3", "--model-id", "tiny-v4", "--seed", "5")
    assert first.returncode == 0, first.stderr[-3000:]
    manifest = json.loads((out / "seal_model.json").read_text())
    assert manifest["trained_steps"] == 3 and manifest["trained_vae_steps"] == 3
    assert manifest["commands"][0].startswith("stickerbot train-builtin --arch v4")
    assert set(manifest["vae_round_trip"]["recognised_round_trip"]) >= {"emotion", "pattern"}
    assert (out / "builtin_v4_unet_loss.png").exists() and (out / "builtin_v4_vae_loss.png").exists()
    assert not (out / "state.pt").exists() and (tmp_path / "v4.train_state" / "state.pt").exists()

    resumed = train_v4(out, "--max-steps", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout and "VAE step 3, U-Net step 3" in resumed.stdout
    manifest = json.loads((out / "seal_model.json").read_text())
    assert manifest["trained_steps"] == 5 and len(manifest["commands"]) == 2

    backbone = load_backbone(RuntimeSettings(device="cpu", model=str(out)))
    assert backbone.model_id.startswith("tiny-v4-") and backbone.vae.config.scaling_factor > 0

    # A tokenizer that does not match the captions and vocabulary is refused on resume.
    state_path = tmp_path / "v4.train_state" / "state.pt"
    state = torch.load(state_path, weights_only=False)
    state["tokenizer"] = build_tokenizer(["some other words entirely"]).backend_tokenizer.to_str()
    torch.save(state, state_path)
    refused = train_v4(out, "--max-steps", "1", "--resume")
    assert refused.returncode != 0 and "tokenizer" in refused.stderr

    from stickerworld.quality_gate import run as gate

    result = gate(count=2, steps=2, batch=2, model=str(out), swapped=True, cutout=True)
    assert set(result["recogniser_on_vae_round_trip"]) == set(result["accuracy"]) >= {"identity", "pattern"}
    assert set(result["gate"]) == {"emotion", "composition", "background", "action", "identity"}
    assert result["hf_residual"]["ratio"] > 0 and set(result["swapped_emotion"]) == {"reads_asked", "reads_original"}
    assert set(result["cutout"]["cut_out_share"]) == {"full body", "close up", "upper body", "wide shot"}


def test_the_gpu_script_passes_only_options_the_trainer_and_the_gate_know():
    import re
    from pathlib import Path

    from stickerworld.train_builtin_v4 import build_parser

    script = (Path(__file__).resolve().parent.parent / "deploy" / "gpu" / "train_builtin_v4.sh").read_text()
    train = script[script.index("-m stickerworld.train_builtin_v4"):script.index('tee "$OUT/train.log"')]
    known = {option for action in build_parser()._actions for option in action.option_strings}
    assert set(re.findall(r"--[a-z][a-z-]*", train)) <= known
    gate = script[script.index("-m stickerworld.quality_gate"):script.index('tee "$OUT/gate.log"')]
    assert set(re.findall(r"--[a-z][a-z-]*", gate)) <= {"--model", "--device", "--count", "--swapped", "--cutout", "--json",
                                                        "--sheet", "--steps", "--seed", "--guidance-scale"}
