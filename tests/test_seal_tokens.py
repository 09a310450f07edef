"""Split-merge tokens, saving in the ecosystem's format, and SEAL switched off."""

import copy
from dataclasses import replace

import pytest
import torch
from diffusers import StableDiffusionPipeline

from seal_runtime.ttf.adaptation import adapt_concept
from seal_runtime.ttf.concept_tokens import CONCEPT_PLACEHOLDER, ensure_tokens, inject_concept, placeholder_tokens
from seal_runtime.api.config import AdaptationSettings
from seal_runtime.ttf.embedding_io import embedding_to_bytes, read_metadata
from seal_runtime.seal.plugins import build_loss_terms
from seal_runtime.seal.token_strategy import SplitMergeTokens
from tests.adaptation_helpers import character_on_a_background, reference_and_mask


def test_split_tokens_give_k_rows_while_learning_and_one_merged_concept(tiny_backbone):
    reference, mask = reference_and_mask()
    settings = AdaptationSettings(steps=2, batch_size=1, num_tokens=4, merge_rule="mean", learning_rate=0.05)
    seen = []

    class RowCounter:
        name = "rows"

        def attach(self, backbone, token_ids):
            seen.append(len(token_ids))

        def __call__(self, context):
            seen.append(tuple(context.vectors.shape))
            return context.model_pred.new_zeros(())

        def detach(self):
            pass

    result = adapt_concept(tiny_backbone, reference, mask, settings, loss_terms=[RowCounter()])
    dim = tiny_backbone.text_encoder.config.hidden_size
    assert seen == [4, (4, dim), (4, dim)]
    assert result.learned_vectors.shape == (4, dim)
    assert result.vectors.shape == (1, dim)
    # The tokens start equal and are pulled apart by their positions.
    assert not torch.allclose(result.learned_vectors[0], result.learned_vectors[1])


def test_mean_merge_keeps_the_mean_norm_of_the_split_tokens():
    vectors = torch.randn(4, 16, generator=torch.Generator().manual_seed(0))
    merged = SplitMergeTokens(4, "mean").merge(vectors)
    assert merged.shape == (1, 16)
    torch.testing.assert_close(merged.norm(), vectors.norm(dim=-1).mean())
    assert torch.nn.functional.cosine_similarity(merged[0], vectors.mean(0), dim=0) > 0.9999
    assert torch.equal(SplitMergeTokens(4, "concat").merge(vectors), vectors)
    with pytest.raises(ValueError):
        SplitMergeTokens(9)


def pipeline_from(backbone):
    """A diffusers StableDiffusionPipeline around copies of the builtin tokenizer and text
    encoder (so loading into it cannot disturb the shared test backbone)."""
    return StableDiffusionPipeline(
        vae=None, text_encoder=copy.deepcopy(backbone.text_encoder), tokenizer=copy.deepcopy(backbone.tokenizer),
        unet=backbone.unet, scheduler=backbone.noise_scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )


@pytest.mark.parametrize("merge_rule", ["mean", "concat"])
def test_merged_concept_loads_with_diffusers_load_textual_inversion(tiny_backbone, tmp_path, merge_rule):
    reference, mask = reference_and_mask()
    settings = AdaptationSettings(steps=2, batch_size=1, num_tokens=2, merge_rule=merge_rule,
                                  attention_loss="fastcomposer", learning_rate=0.05)
    result = adapt_concept(tiny_backbone, reference, mask, settings, loss_terms=build_loss_terms(settings, tiny_backbone))
    meta = {"model_id": tiny_backbone.model_id, "settings_hash": settings.settings_hash(tiny_backbone.model_id),
            "num_tokens": 2, "steps": result.steps}
    path = tmp_path / "learned_embeds.safetensors"
    path.write_bytes(embedding_to_bytes(result.vectors, meta))
    assert read_metadata(path.read_bytes()) == meta

    pipe = pipeline_from(tiny_backbone)
    pipe.load_textual_inversion(str(path))
    prompt = pipe.maybe_convert_prompt(f"a sticker of {CONCEPT_PLACEHOLDER}", pipe.tokenizer)
    ids = pipe.tokenizer(prompt, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         return_tensors="pt").input_ids
    with torch.no_grad():
        loaded = pipe.text_encoder(ids)[0]

    # The same prompt through our own path (placeholder tokens + injected vectors).
    tokens = placeholder_tokens(result.vectors.shape[0])
    token_ids = ensure_tokens(tiny_backbone, tokens)
    with torch.no_grad(), inject_concept(tiny_backbone, token_ids, result.vectors):
        ours = tiny_backbone.encode_prompts([f"a sticker of {' '.join(tokens)}"])
    torch.testing.assert_close(loaded, ours)


def test_every_seal_switch_off_is_plain_textual_inversion(each_builtin_backbone):
    tiny_backbone = each_builtin_backbone
    reference, mask = character_on_a_background(tiny_backbone.resolution)
    seal = AdaptationSettings(steps=3, batch_size=1, num_tokens=4, attention_loss="fastcomposer",
                              attention_loss_weight=1.0, masked_diffusion_loss=True)
    off = seal.without_seal()
    plain = AdaptationSettings(steps=3, batch_size=1, num_tokens=1, attention_loss="none")
    switched_off = adapt_concept(tiny_backbone, reference, mask, off, loss_terms=build_loss_terms(off, tiny_backbone))
    plain_ti = adapt_concept(tiny_backbone, reference, mask, plain)
    assert build_loss_terms(off, tiny_backbone) == []
    assert torch.equal(switched_off.vectors, plain_ti.vectors)
    assert torch.equal(switched_off.learned_vectors, plain_ti.learned_vectors)


def test_watching_with_zero_weight_leaves_textual_inversion_bit_identical(tiny_backbone):
    """The recording processor does not perturb the U-Net: SEAL's capture alone changes nothing."""
    reference, mask = reference_and_mask()
    plain = AdaptationSettings(steps=3, batch_size=1, learning_rate=0.05)
    watched = replace(plain, attention_loss="fastcomposer", attention_loss_weight=0.0, attention_layers=("all",))
    first = adapt_concept(tiny_backbone, reference, mask, plain)
    second = adapt_concept(tiny_backbone, reference, mask, watched, loss_terms=build_loss_terms(watched, tiny_backbone))
    assert torch.equal(first.vectors, second.vectors)
    assert second.loss_terms["attention_fastcomposer"] == [0.0, 0.0, 0.0]
