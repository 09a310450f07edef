"""Semantic-guided spatial attention loss, with structure-aware layer restriction."""

import functools
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from seal_runtime.ttf.adaptation import StepContext, adapt_concept
from seal_runtime.seal.attention_capture import cross_attention_layers
from seal_runtime.seal.attention_loss import (
    SpatialAttentionLoss,
    break_a_scene_mse,
    fastcomposer_balance,
    concept_map,
    inside_share,
    mask_for,
    max_normalised,
    measure_inside_share,
)
from seal_runtime.ttf.concept_tokens import ensure_tokens, initializer_vector, inject_concept, placeholder_tokens
from seal_runtime.api.config import AdaptationSettings
from seal_runtime.seal.layer_selection import select_layers
from seal_runtime.seal.plugins import build_loss_terms
from tests.adaptation_helpers import character_on_a_background


def test_loss_forms_prefer_attention_inside_the_mask():
    mask = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    inside = torch.tensor([[0.01, 0.4, 0.4, 0.01]])
    outside = torch.tensor([[0.4, 0.01, 0.01, 0.4]])
    for form in (break_a_scene_mse, fastcomposer_balance):
        assert form(inside, mask) < form(outside, mask)
    # Both see only the map's shape: scaling the attention changes nothing.
    torch.testing.assert_close(break_a_scene_mse(inside * 3, mask), break_a_scene_mse(inside, mask))
    torch.testing.assert_close(fastcomposer_balance(inside * 3, mask), fastcomposer_balance(inside, mask))
    assert inside_share(inside, mask).item() == pytest.approx(0.8 / 0.82)


def test_mask_is_resized_to_each_layers_resolution():
    mask = torch.zeros(2, 1, 64, 64)
    mask[:, :, :32] = 1
    resized = mask_for(mask, 16 * 16)
    assert resized.shape == (2, 256)
    assert resized.view(2, 16, 16)[:, :8].eq(1).all() and resized.view(2, 16, 16)[:, 8:].eq(0).all()


def test_unknown_loss_form_is_a_configuration_error(tiny_backbone):
    for rejected in ("l1", "mse"):  # Break-A-Scene's MSE lost on the benchmark: not an option
        with pytest.raises(ValueError, match="attention_loss"):
            build_loss_terms(AdaptationSettings(attention_loss=rejected), tiny_backbone)


def test_excluded_layers_get_zero_gradient_from_the_attention_loss(each_builtin_backbone):
    tiny_backbone = each_builtin_backbone
    unet = tiny_backbone.unet
    layers = cross_attention_layers(unet, tiny_backbone.latent_size)
    constrained = {layer.name for layer in select_layers(layers, ("deep",))}
    assert 0 < len(constrained) < len(layers)
    ids = ensure_tokens(tiny_backbone, placeholder_tokens(1))
    vectors = initializer_vector(tiny_backbone, "character")[None].clone().requires_grad_(True)
    reference, mask = character_on_a_background(tiny_backbone.resolution)
    projections = [unet.get_submodule(layer.name) for layer in layers]
    term = SpatialAttentionLoss("fastcomposer", 1.0, ("deep",))
    # Let the frozen projections collect gradients for this one backward pass.
    for attn in projections:
        attn.to_k.weight.requires_grad_(True)
        attn.to_q.weight.requires_grad_(True)
    try:
        term.attach(tiny_backbone, ids)
        with inject_concept(tiny_backbone, ids, vectors):
            text = tiny_backbone.encode_prompts(["a sticker of <concept_0>"])
        t = torch.tensor([300])
        latents = tiny_backbone.encode_images(reference, generator=torch.Generator().manual_seed(0))
        pred = unet(latents, t, encoder_hidden_states=text).sample
        loss = term(StepContext(0, pred, latents, t, mask, ids, vectors))
        loss.backward()
        key_grads = {layer.name: attn.to_k.weight.grad for layer, attn in zip(layers, projections)}
        query_grads = [attn.to_q.weight.grad for attn in projections]
    finally:
        term.detach()
        for attn in projections:
            for weight in (attn.to_k.weight, attn.to_q.weight):
                weight.requires_grad_(False)
                weight.grad = None
    assert set(term.last_maps) == constrained
    for name, grad in key_grads.items():
        if name in constrained:
            assert grad is not None and grad.abs().sum() > 0, name
        else:
            assert grad is None or torch.count_nonzero(grad) == 0, name
    # The loss moves the concept through its keys, never the image features.
    assert all(grad is None or torch.count_nonzero(grad) == 0 for grad in query_grads)
    assert vectors.grad.abs().sum() > 0


def concept_share_after(backbone, settings, reference, mask):
    result = adapt_concept(backbone, reference, mask, settings, loss_terms=build_loss_terms(settings, backbone))
    ids = ensure_tokens(backbone, placeholder_tokens(1))
    layers = select_layers(cross_attention_layers(backbone.unet, backbone.latent_size), ("deep",))
    with inject_concept(backbone, ids, result.vectors):
        return measure_inside_share(backbone, ids, ["a sticker of <concept_0>"], reference, mask, layers=layers)["all"]


@pytest.mark.slow  # two adaptations; the arithmetic is pinned by the fast tests below
def test_attention_loss_moves_the_concepts_attention_into_the_mask(tiny_backbone):
    reference, mask = character_on_a_background()
    loss_off = AdaptationSettings(steps=16, batch_size=1, learning_rate=0.05, seed=3, attention_loss="none")
    loss_on = replace(loss_off, attention_loss="fastcomposer", attention_loss_weight=1.0)
    share_off = concept_share_after(tiny_backbone, loss_off, reference, mask)
    share_on = concept_share_after(tiny_backbone, loss_on, reference, mask)
    assert share_on > share_off + 0.005, (share_off, share_on)


# -- the loss's arithmetic, pinned on small hand-computed maps (fast: mutation testing runs these) --

def test_concept_map_is_the_float_mean_over_the_split_tokens():
    columns = torch.tensor([[[1.0, 3.0], [0.0, 2.0]]], dtype=torch.float16)  # (B=1, pixels=2, k=2)
    merged = concept_map(columns)
    assert merged.dtype == torch.float32 and merged.shape == (1, 2)
    torch.testing.assert_close(merged, torch.tensor([[2.0, 1.0]]))


def test_mask_for_keeps_the_masks_aspect_and_averages_each_cell():
    mask = torch.zeros(1, 1, 4, 8)  # twice as wide as high: 8 positions fold into 2 x 4
    mask[..., :, :3] = 1  # the third column of cells is half subject
    folded = mask_for(mask, 8)
    torch.testing.assert_close(folded, torch.tensor([[1.0, 0.5, 0.0, 0.0, 1.0, 0.5, 0.0, 0.0]]))
    tall = torch.zeros(1, 1, 8, 2)
    tall[..., :4, :] = 1
    torch.testing.assert_close(mask_for(tall, 4), torch.tensor([[1.0, 1.0, 0.0, 0.0]]))  # 4 x 1
    torch.testing.assert_close(mask_for(mask, 1), torch.tensor([[3 / 8]]))  # one cell: the whole mean
    assert mask_for(mask.bool(), 8).dtype == torch.float32


def test_mask_for_refuses_a_count_that_does_not_fold_into_the_masks_aspect():
    with pytest.raises(ValueError, match="cannot fold 7 attention positions into the mask's 4x4 aspect"):
        mask_for(torch.ones(1, 1, 4, 4), 7)


def test_max_normalised_divides_each_sample_by_its_own_peak_and_survives_an_empty_map():
    attention = torch.tensor([[0.5, 0.25], [4.0, 2.0], [0.0, 0.0]])
    torch.testing.assert_close(max_normalised(attention), torch.tensor([[1.0, 0.5], [1.0, 0.5], [0.0, 0.0]]))


def test_break_a_scene_mse_compares_the_normalised_map_with_the_mask():
    attention = torch.tensor([[0.25, 0.5]])  # normalised: [0.5, 1]
    mask = torch.tensor([[0.0, 1.0]])
    assert break_a_scene_mse(attention, mask).item() == pytest.approx((0.5**2 + 0) / 2)


def test_fastcomposer_balance_is_mean_outside_minus_mean_inside_averaged_over_the_batch():
    attention = torch.tensor([[2.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    # sample 1: normalised [1, .5, 0, .5]: inside .75, outside .25 -> -.5; sample 2: 1 - 1 = 0
    assert fastcomposer_balance(attention, mask).item() == pytest.approx(-0.25)
    # An empty or a full mask has nothing on one side: that side counts 0, never NaN.
    assert fastcomposer_balance(torch.tensor([[1.0, 0.5]]), torch.zeros(1, 2)).item() == pytest.approx(0.75)
    assert fastcomposer_balance(torch.tensor([[1.0, 0.5]]), torch.ones(1, 2)).item() == pytest.approx(-0.75)
    # A soft mask (edge cells after area averaging) weighs each side by its share, however small.
    soft = fastcomposer_balance(torch.tensor([[1.0, 0.5]]), torch.tensor([[0.75, 1.0]]))
    inside, outside = (0.75 * 1.0 + 0.5) / 1.75, (0.25 * 1.0) / 0.25
    assert soft.item() == pytest.approx(outside - inside)


def test_inside_share_is_the_mass_inside_per_sample_and_zero_for_no_attention():
    attention = torch.tensor([[3.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    mask = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    torch.testing.assert_close(inside_share(attention, mask), torch.tensor([0.75, 0.5, 0.0]))


class _RecordedMaps:
    """Stands in for ConceptAttentionCapture: hands out fixed maps, notes a detach."""

    def __init__(self, maps):
        self.maps, self.detached = maps, False

    def take(self):
        return self.maps

    def detach(self):
        self.detached = True


def _step(mask):
    return StepContext(0, torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), torch.tensor([1]), mask, [5])


def test_the_loss_term_is_its_weight_times_the_mean_over_layers_of_the_form():
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1  # the top half is the subject
    inside = torch.zeros(1, 16, 2)
    inside[:, :8] = 1.0  # a 4 x 4 layer looking only at the subject: balance -1
    outside = torch.zeros(1, 4, 2)
    outside[:, 2:] = 1.0  # a 2 x 2 layer looking mostly at the background...
    outside[:, 0, 0] = 2.0  # ...and, by one token, at one subject cell: map [1, 0, 1, 1] -> 1 - .5 = +.5
    term = SpatialAttentionLoss("fastcomposer", 3.0, ("deep",))
    assert term.name == "attention_fastcomposer" and term.weight == 3.0 and term.layer_selectors == ("deep",)
    term.capture = _RecordedMaps({"a": inside, "b": outside})
    loss = term(_step(mask))
    assert loss.item() == pytest.approx(3.0 * (-1.0 + 0.5) / 2)
    assert set(term.last_maps) == {"a", "b"}


def test_the_loss_term_takes_any_form_function_and_is_zero_without_maps():
    term = SpatialAttentionLoss(break_a_scene_mse, 0.5, ["mid_block"])
    assert term.name == "attention_break_a_scene_mse" and term.layer_selectors == ("mid_block",)
    anonymous = SpatialAttentionLoss(lambda attention, mask: attention.sum(), 1, ())
    assert anonymous.name == "attention_<lambda>" and isinstance(anonymous.weight, float)
    assert SpatialAttentionLoss(functools.partial(break_a_scene_mse), 1, ()).name == "attention_custom"  # no __name__
    # Before attach: no layers, no maps (what the benchmark's describe() and the tests read).
    assert term.layers == [] and term.last_maps == {} and term.capture is None
    term.capture = _RecordedMaps({})
    loss = term(_step(torch.ones(1, 1, 4, 4)))
    assert loss.shape == () and loss.item() == 0.0 and term.last_maps == {}


def test_an_unknown_form_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"attention_loss must be one of \('none', 'fastcomposer'\), got 'l1'"):
        SpatialAttentionLoss("l1", 1.0, ("deep",))


def test_detach_releases_the_capture_once():
    term = SpatialAttentionLoss("fastcomposer", 1.0, ("deep",))
    term.detach()  # never attached: nothing to do
    capture = _RecordedMaps({})
    term.capture = capture
    term.detach()
    assert capture.detached and term.capture is None


def test_attach_watches_the_layers_at_the_size_the_backbone_denoises():
    """The selection reads resolutions at the backbone's latent size, not the U-Net's configured
    one: a model run at half its native size has its res:32 layers in down_blocks.0."""
    from tests.test_seal_layers import sd15_shaped_model

    model = sd15_shaped_model()
    backbone = SimpleNamespace(unet=model.unet, text_encoder=model.text_encoder, latent_size=32)
    term = SpatialAttentionLoss("fastcomposer", 1.0, ("res:32",))
    term.attach(backbone, [7])
    try:
        assert {layer.block for layer in term.layers} == {"down_blocks.0", "up_blocks.3"}
        assert term.capture is not None and term.capture.layers == term.layers
    finally:
        term.detach()
    assert term.capture is None
