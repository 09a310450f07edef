"""The speed switches an operator expects (issue #16 §5), on the CPU: every sampler runs,
the sticker negative prompt is the SD default, TAESD decodes from a local folder, and an
LCM-LoRA from a local file changes generation only and leaves the U-Net exactly as it was."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import save_file

from seal_runtime.api.config import SCHEDULERS, GenerationSettings, RuntimeSettings
from seal_runtime.sampling import sample


@pytest.fixture(scope="module")
def sd_backbone(sd15_model_dir):
    from seal_runtime.models.loader import load_backbone

    return load_backbone(RuntimeSettings(model=str(sd15_model_dir), device="cpu"))


def test_every_scheduler_samples_and_they_differ(tiny_backbone):
    images = {}
    for name in SCHEDULERS:
        steps = []
        pixels = sample(tiny_backbone, ["a sticker of a round teal character"], steps=3, scheduler=name,
                        generator=torch.Generator().manual_seed(0), on_step=lambda j, m: steps.append((j, m)))
        assert pixels.shape == (1, 3, 64, 64) and torch.isfinite(pixels).all()
        assert steps[-1][0] == steps[-1][1]  # progress ends at its total
        images[name] = pixels
    assert len({tuple(p.flatten()[:64].tolist()) for p in images.values()}) == len(SCHEDULERS)
    with pytest.raises(ValueError, match="scheduler"):
        GenerationSettings(scheduler="euler_a").check()


def test_sd_models_steer_away_from_a_sticker_negative_prompt(sd_backbone, monkeypatch):
    from seal_runtime import engine as engine_module
    from seal_runtime.api.protocol import JobRequest
    from seal_runtime.job_control import JobControl

    seen = []
    monkeypatch.setattr(engine_module, "sample", lambda *a, **k: seen.append(k) or torch.zeros(1, 3, 8, 8))
    engine = engine_module.StickerEngine(sd_backbone)
    width = sd_backbone.text_encoder.get_input_embeddings().weight.shape[1]
    for negative in (None, "rain"):
        request = JobRequest("n", b"", ("a sticker of <concept>",), (0,), {},
                             dataclasses.asdict(GenerationSettings(negative_prompt=negative, scheduler="unipc")))
        engine.generate(request, torch.zeros(1, width), JobControl("n"))
    assert "watermark" in seen[0]["negative_prompt"] and seen[1]["negative_prompt"] == "rain"
    assert seen[0]["scheduler"] == "unipc"


def test_taesd_from_a_local_folder_decodes_instead_of_the_vae(tmp_path, sd15_model_dir):
    from diffusers import AutoencoderTiny

    from seal_runtime.models.loader import load_backbone

    AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                    num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1)).save_pretrained(tmp_path / "taesd")
    backbone = load_backbone(RuntimeSettings(model=str(sd15_model_dir), device="cpu", taesd=str(tmp_path / "taesd")))
    assert backbone.tiny_vae is not None
    calls = []
    decode = backbone.tiny_vae.decode
    backbone.tiny_vae.decode = lambda latents: calls.append(latents.shape) or decode(latents)
    with torch.no_grad():
        pixels = backbone.decode_latents(torch.zeros(1, 4, 64, 64))
    assert calls and pixels.shape == (1, 3, 512, 512)
    with pytest.raises(RuntimeError, match="does not exist"):
        load_backbone(RuntimeSettings(model=str(sd15_model_dir), device="cpu", taesd=str(tmp_path / "nope")))


def test_an_lcm_lora_changes_generation_only_and_the_unet_comes_back_exactly(tmp_path, sd_backbone):
    from seal_runtime.models.speed_lora import SpeedLora

    unet = sd_backbone.unet
    torch.manual_seed(0)
    state = {}
    names = [name for name, module in unet.named_modules() if name.endswith(("attn1.to_q", "attn2.to_v"))]
    for name in names:
        weight = unet.get_submodule(name).weight
        state[f"unet.{name}.lora_A.weight"] = torch.randn(4, weight.shape[1]) * 0.5
        state[f"unet.{name}.lora_B.weight"] = torch.randn(weight.shape[0], 4) * 0.5
    save_file(state, tmp_path / "pytorch_lora_weights.safetensors")
    lora = SpeedLora.load(tmp_path / "pytorch_lora_weights.safetensors", unet)
    assert set(lora.deltas) == set(names)

    before = {name: unet.get_submodule(name).weight.detach().clone() for name in names}
    prompt = ["a sticker of a happy character"]
    plain = sample(sd_backbone, prompt, steps=1, scheduler="lcm", generator=torch.Generator().manual_seed(0))
    with lora.applied(unet):
        assert not torch.equal(unet.get_submodule(names[0]).weight, before[names[0]])
        fast = sample(sd_backbone, prompt, steps=1, scheduler="lcm", generator=torch.Generator().manual_seed(0))
    assert not torch.equal(plain, fast)
    assert all(torch.equal(unet.get_submodule(name).weight, before[name]) for name in names)
