"""The second TTF base: LoRA on the U-Net attention, trained with the concept tokens."""

import torch

from seal_runtime.ttf.adaptation import adapt_concept
from seal_runtime.api.config import AdaptationSettings
from seal_runtime.ttf.lora import lora_applied, lora_from_bytes, lora_to_bytes
from seal_runtime.seal.plugins import build_loss_terms
from tests.adaptation_helpers import reference_and_mask


def unet_output(backbone):
    generator = torch.Generator().manual_seed(0)
    x = backbone.encode_images(torch.randn(1, 3, 64, 64, generator=generator))
    with torch.no_grad():
        text = backbone.encode_prompts(["a sticker of a character"])
        return backbone.unet(x, torch.tensor([400]), encoder_hidden_states=text).sample


def test_lora_learns_with_the_tokens_and_seal_and_leaves_the_shared_unet_as_it_was(tiny_backbone):
    unet = tiny_backbone.unet
    modules_before = [type(m) for m in unet.modules()]
    weights_before = {k: v.clone() for k, v in unet.state_dict().items()}
    processors_before = dict(unet.attn_processors)
    output_before = unet_output(tiny_backbone)
    reference, mask = reference_and_mask()
    settings = AdaptationSettings(method="lora", steps=2, batch_size=1, num_tokens=2, attention_loss="fastcomposer",
                                  lora_learning_rate=1e-2)
    result = adapt_concept(tiny_backbone, reference, mask, settings, loss_terms=build_loss_terms(settings, tiny_backbone))

    lora = result.extra_state["lora"]
    assert result.extra_state["lora_rank"] == 4
    assert any(".attn2.to_k.lora_B.weight" in key for key in lora)
    assert any(".attn1.to_out.0.lora_A.weight" in key for key in lora)
    assert any(value.abs().sum() > 0 for key, value in lora.items() if "lora_B" in key)  # B left zero init
    assert "attention_fastcomposer" in result.loss_terms
    assert [type(m) for m in unet.modules()] == modules_before
    assert all(torch.equal(v, weights_before[k]) for k, v in unet.state_dict().items())
    assert unet.attn_processors == processors_before
    assert not hasattr(unet, "peft_config")
    assert torch.equal(unet_output(tiny_backbone), output_before)


def test_lora_weights_travel_as_their_own_blob_and_apply_only_inside_the_block(tiny_backbone):
    reference, mask = reference_and_mask()
    settings = AdaptationSettings(method="lora", steps=2, batch_size=1, lora_learning_rate=1e-2)
    result = adapt_concept(tiny_backbone, reference, mask, settings)
    data = lora_to_bytes(result.extra_state["lora"], {"rank": 4, "model_id": tiny_backbone.model_id})
    state, meta = lora_from_bytes(data)
    assert meta == {"rank": 4, "model_id": tiny_backbone.model_id}
    assert all(torch.equal(state[k], v) for k, v in result.extra_state["lora"].items())

    plain = unet_output(tiny_backbone)
    with lora_applied(tiny_backbone, data):
        adapted = unet_output(tiny_backbone)
    assert not torch.allclose(plain, adapted)
    assert torch.equal(unet_output(tiny_backbone), plain)


def test_same_seed_gives_the_same_lora(tiny_backbone):
    reference, mask = reference_and_mask()
    settings = AdaptationSettings(method="lora", steps=2, batch_size=1, lora_learning_rate=1e-2)
    first = adapt_concept(tiny_backbone, reference, mask, settings)
    second = adapt_concept(tiny_backbone, reference, mask, settings)
    assert torch.equal(first.vectors, second.vectors)
    assert all(torch.equal(v, second.extra_state["lora"][k]) for k, v in first.extra_state["lora"].items())
