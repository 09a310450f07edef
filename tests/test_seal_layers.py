"""Attention capture and structure-aware layer restriction."""

from types import SimpleNamespace

import pytest
import torch
from diffusers import UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from seal_runtime.seal.attention_capture import ConceptAttentionCapture, ConceptAttentionProcessor, cross_attention_layers
from seal_runtime.seal.layer_selection import describe, select_layers


def sd15_shaped_model():
    """SD 1.5's block layout (4 levels, 2 layers per block, cross-attention in the first
    three down and last three up blocks) with tiny channels, at 64 x 64 latents (= 512 px)."""
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=64,
        block_out_channels=(8, 16, 16, 16),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=2,
        cross_attention_dim=16,
        attention_head_dim=2,
        norm_num_groups=4,
    ).eval()
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                                num_hidden_layers=1, num_attention_heads=2,
                                                max_position_embeddings=8)).eval()
    return SimpleNamespace(unet=unet, text_encoder=text_encoder)


def test_sd15_layout_has_sixteen_cross_attention_layers_at_four_resolutions():
    layers = cross_attention_layers(sd15_shaped_model().unet)
    assert len(layers) == 16
    by_block = {}
    for layer in layers:
        by_block.setdefault(layer.block, set()).add(layer.resolution)
    assert by_block == {
        "down_blocks.0": {64}, "down_blocks.1": {32}, "down_blocks.2": {16}, "mid_block": {8},
        "up_blocks.1": {16}, "up_blocks.2": {32}, "up_blocks.3": {64},
    }
    assert [layer.order for layer in layers] == list(range(16))
    assert layers[6].block == "mid_block"  # forward order: down, mid, up


def test_recorded_maps_have_each_layers_resolution_and_are_probabilities():
    model = sd15_shaped_model()
    layers = cross_attention_layers(model.unet)
    token = 7
    capture = ConceptAttentionCapture(layers)
    with capture.attached(model, [token]):
        ids = torch.full((1, 8), token)  # every text position is the concept token
        text = model.text_encoder(ids)[0]
        model.unet(torch.randn(1, 4, 64, 64), torch.tensor([10]), encoder_hidden_states=text)
        maps = capture.take()
    for layer in layers:
        assert maps[layer.name].shape == (1, layer.resolution**2, 1)
        # The concept holds every position, so its column is the whole softmax: 1.
        torch.testing.assert_close(maps[layer.name].sum(-1), torch.ones(1, layer.resolution**2))


def test_watching_changes_neither_the_output_nor_the_other_layers(tiny_backbone):
    layers = cross_attention_layers(tiny_backbone.unet, tiny_backbone.latent_size)
    watched = select_layers(layers, ("deep",))
    before = dict(tiny_backbone.unet.attn_processors)
    x = tiny_backbone.encode_images(torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    t = torch.tensor([500])
    text = tiny_backbone.encode_prompts(["a sticker of a character"])
    with torch.no_grad():
        plain = tiny_backbone.unet(x, t, encoder_hidden_states=text).sample
        with ConceptAttentionCapture(watched).attached(tiny_backbone, [5]):
            now = tiny_backbone.unet.attn_processors
            for name, processor in now.items():
                if any(name.startswith(layer.name) for layer in watched):
                    assert isinstance(processor, ConceptAttentionProcessor)
                else:
                    assert processor is before[name]
            observed = tiny_backbone.unet(x, t, encoder_hidden_states=text).sample
    assert torch.equal(plain, observed)
    assert tiny_backbone.unet.attn_processors == before  # detach put the originals back


def test_default_restriction_drops_the_shallow_highest_resolution_layers(tiny_backbone):
    layers = cross_attention_layers(tiny_backbone.unet, tiny_backbone.latent_size)
    chosen = select_layers(layers, ("deep",))
    assert {layer.block for layer in chosen} == {"down_blocks.1", "mid_block", "up_blocks.1"}
    assert {layer.resolution for layer in chosen} == {8, 4}
    sd_layers = cross_attention_layers(sd15_shaped_model().unet)
    sd_chosen = select_layers(sd_layers, ("deep",))
    assert len(sd_chosen) == 11 and 64 not in {layer.resolution for layer in sd_chosen}


def test_selectors_by_block_resolution_path_and_exclusion(tiny_backbone):
    layers = cross_attention_layers(tiny_backbone.unet, tiny_backbone.latent_size)
    assert len(select_layers(layers, ("all",))) == 7
    assert {layer.resolution for layer in select_layers(layers, ("res:16",))} == {16}
    assert [layer.block for layer in select_layers(layers, ("mid_block",))] == ["mid_block"]
    assert len(select_layers(layers, ("up_blocks.1.attentions.1",))) == 1
    assert "mid_block" not in {layer.block for layer in select_layers(layers, ("deep", "-mid_block"))}
    assert len(select_layers(layers, ("-res:16",))) == 4
    assert describe(select_layers(layers, ("mid_block",))) == ["mid_block.attentions.0 (4²)"]
    with pytest.raises(ValueError, match="matches no layer"):
        select_layers(layers, ("down_blocks.2",))


def _layer(name: str, resolution: int, order: int):
    from seal_runtime.seal.attention_capture import CrossAttentionLayer

    block = "mid_block" if name.startswith("mid_block") else ".".join(name.split(".")[:2])
    return CrossAttentionLayer(f"{name}.transformer_blocks.0.attn2", block, resolution, order)


# The builtin model's seven layers, written out (no model needed).
BUILTIN = [_layer("down_blocks.0.attentions.0", 16, 0), _layer("down_blocks.0.attentions.1", 16, 1),
           _layer("down_blocks.1.attentions.0", 8, 2), _layer("mid_block.attentions.0", 4, 3),
           _layer("up_blocks.1.attentions.0", 8, 4), _layer("up_blocks.2.attentions.0", 16, 5),
           _layer("up_blocks.2.attentions.1", 16, 6)]


def names(layers) -> list[str]:
    return [layer.name.removesuffix(".transformer_blocks.0.attn2") for layer in layers]


def test_deep_drops_only_the_highest_resolution_and_keeps_forward_order():
    assert names(select_layers(BUILTIN, ["deep"])) == [
        "down_blocks.1.attentions.0", "mid_block.attentions.0", "up_blocks.1.attentions.0"]
    # No selector, or only blanks, means the default: deep.
    assert select_layers(BUILTIN, []) == select_layers(BUILTIN, [" ", ""]) == select_layers(BUILTIN, ["deep"])


def test_a_model_with_one_attention_resolution_keeps_every_layer_under_deep():
    flat = [_layer("down_blocks.0.attentions.0", 8, 0), _layer("up_blocks.0.attentions.0", 8, 1)]
    assert select_layers(flat, ["deep"]) == flat


def test_selectors_are_trimmed_unioned_in_forward_order_and_excluded():
    assert names(select_layers(BUILTIN, [" mid_block ", "down_blocks.1"])) == [
        "down_blocks.1.attentions.0", "mid_block.attentions.0"]
    assert names(select_layers(BUILTIN, ["res:8", "-up_blocks.1"])) == ["down_blocks.1.attentions.0"]
    assert names(select_layers(BUILTIN, ["all", "-deep"])) == [
        "down_blocks.0.attentions.0", "down_blocks.0.attentions.1", "up_blocks.2.attentions.0",
        "up_blocks.2.attentions.1"]
    # Only removals: start from all.
    assert names(select_layers(BUILTIN, ["-res:16", "-mid_block"])) == [
        "down_blocks.1.attentions.0", "up_blocks.1.attentions.0"]


def test_a_path_prefix_matches_whole_path_parts_only():
    assert names(select_layers(BUILTIN, ["up_blocks.2.attentions"])) == [
        "up_blocks.2.attentions.0", "up_blocks.2.attentions.1"]
    full = "up_blocks.2.attentions.1.transformer_blocks.0.attn2"
    assert [layer.name for layer in select_layers(BUILTIN, [full])] == [full]
    with pytest.raises(ValueError, match=r"selector 'up_blocks.2.attent' matches no layer"):
        select_layers(BUILTIN, ["up_blocks.2.attent"])
    assert names(select_layers(BUILTIN, ["up_blocks"])) == names(BUILTIN[4:])


def test_selector_errors_say_what_is_wrong_and_what_the_model_has():
    with pytest.raises(ValueError, match=r"^attention layer selector 'res:x': expected res:<int>$"):
        select_layers(BUILTIN, ["res:x"])
    with pytest.raises(ValueError, match="'res:32' matches no layer; this model has: down_blocks.0 \\(16²\\), "
                                         "down_blocks.0 \\(16²\\), down_blocks.1 \\(8²\\), mid_block \\(4²\\)"):
        select_layers(BUILTIN, ["res:32"])
    with pytest.raises(ValueError, match="'-res:32' matches no layer|'res:32' matches no layer"):
        select_layers(BUILTIN, ["all", "-res:32"])  # a removal that removes nothing is a typo too
    with pytest.raises(ValueError, match=r"selectors \['mid_block', '-res:4'\] leave no layer"):
        select_layers(BUILTIN, ["mid_block", "-res:4"])


def test_describe_names_each_layer_by_its_attention_path_and_map_side():
    assert describe(BUILTIN[2:4]) == ["down_blocks.1.attentions.0 (8²)", "mid_block.attentions.0 (4²)"]
