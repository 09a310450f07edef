"""SD 1.5's architecture built in code (bench seal times SEAL on it when a GPU is there):
here at 1/40 of its width on the CPU, through the same adaptation loop."""

from __future__ import annotations

import pytest
import torch

from seal_runtime.ttf.adaptation import adapt_concept
from seal_runtime.seal.attention_capture import cross_attention_layers
from benchmarks.bench_seal import synthetic_reference
from seal_runtime.api.config import AdaptationSettings
from seal_runtime.seal.layer_selection import select_layers
from seal_runtime.models.sd15_architecture import sd15_random_backbone
from seal_runtime.seal.plugins import build_loss_terms


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])  # fp16 is what a GPU runs
def test_sd15_architecture_runs_seal_on_its_sixteen_layers(dtype):
    backbone = sd15_random_backbone(torch.device("cpu"), dtype, width=1 / 40)
    layers = cross_attention_layers(backbone.unet, backbone.latent_size)
    assert backbone.latent_size == 64 and len(layers) == 16
    assert sorted({layer.resolution for layer in layers}) == [8, 16, 32, 64]
    watched = select_layers(layers, AdaptationSettings().attention_layers)
    assert {layer.block for layer in layers} - {layer.block for layer in watched} == {"down_blocks.0", "up_blocks.3"}

    reference, mask = synthetic_reference(backbone.resolution)
    settings = AdaptationSettings(steps=2, batch_size=1).with_attention_loss()  # the defaults, SEAL's loss on
    terms = build_loss_terms(settings, backbone)
    losses = []
    result = adapt_concept(backbone, reference, mask, settings, loss_terms=terms,
                           on_step=lambda i, n, loss: losses.append(loss))
    assert terms and len(result.loss_terms[terms[0].name]) == 2
    assert len(losses) == 2 and result.vectors.shape == (settings.num_tokens, backbone.text_encoder.config.hidden_size)
    assert torch.isfinite(result.vectors).all()
