"""The textual-inversion loop on the builtin architecture (random weights, CPU)."""

import torch

from seal_runtime.ttf.adaptation import StepContext, adapt_concept
from seal_runtime.ttf.concept_tokens import ensure_tokens, expand_prompt, inject_concept, placeholder_tokens
from seal_runtime.api.config import AdaptationSettings
from seal_runtime.ttf.embedding_io import embedding_from_bytes, embedding_to_bytes
from seal_runtime.sampling import sample
from tests.adaptation_helpers import reference_and_mask


def test_same_seed_gives_the_same_embedding(tiny_backbone):
    reference, mask = reference_and_mask()
    settings = AdaptationSettings(steps=3, batch_size=1)
    first = adapt_concept(tiny_backbone, reference, mask, settings)
    second = adapt_concept(tiny_backbone, reference, mask, settings)
    assert torch.equal(first.vectors, second.vectors)
    assert len(first.losses) == 3


def test_only_the_concept_vectors_change(tiny_backbone):
    reference, mask = reference_and_mask()
    unet_before = {k: v.clone() for k, v in tiny_backbone.unet.state_dict().items()}
    text_before = tiny_backbone.text_encoder.get_input_embeddings().weight.clone()
    settings = AdaptationSettings(steps=3, batch_size=1, learning_rate=0.05)
    result = adapt_concept(tiny_backbone, reference, mask, settings)
    from seal_runtime.ttf.concept_tokens import initializer_vector

    assert not torch.allclose(result.vectors[0], initializer_vector(tiny_backbone, "character"))
    for key, value in tiny_backbone.unet.state_dict().items():
        assert torch.equal(value, unet_before[key]), key
    rows = text_before.shape[0]
    assert torch.equal(tiny_backbone.text_encoder.get_input_embeddings().weight[:rows], text_before)


def test_loss_terms_are_called_every_step_and_detached(tiny_backbone):
    calls = []

    class CountingTerm:
        name = "counting"

        def attach(self, backbone, token_ids):
            calls.append("attach")

        def __call__(self, context: StepContext):
            calls.append(context.step)
            return context.model_pred.sum() * 0.0

        def detach(self):
            calls.append("detach")

    reference, mask = reference_and_mask()
    result = adapt_concept(tiny_backbone, reference, mask, AdaptationSettings(steps=2, batch_size=1),
                           loss_terms=[CountingTerm()])
    assert calls == ["attach", 0, 1, "detach"]
    assert result.loss_terms["counting"] == [0.0, 0.0]


def test_multi_vector_concept_round_trips_through_safetensors(tiny_backbone):
    reference, mask = reference_and_mask()
    settings = AdaptationSettings(steps=1, batch_size=1, num_tokens=3, merge_rule="concat")
    result = adapt_concept(tiny_backbone, reference, mask, settings)
    assert result.vectors.shape == (3, tiny_backbone.text_encoder.config.hidden_size)
    data = embedding_to_bytes(result.vectors, {"model_id": tiny_backbone.model_id, "num_tokens": 3})
    vectors, meta = embedding_from_bytes(data)
    assert torch.equal(vectors, result.vectors) and meta == {"model_id": tiny_backbone.model_id, "num_tokens": 3}


def test_injected_concept_changes_the_generated_image(tiny_backbone):
    tokens = placeholder_tokens(1)
    ids = ensure_tokens(tiny_backbone, tokens)
    prompt = expand_prompt("a sticker of <concept>", tiny_backbone, tokens)
    images = []
    for scale in (0.0, 5.0):
        vectors = torch.full((1, tiny_backbone.text_encoder.config.hidden_size), scale)
        with inject_concept(tiny_backbone, ids, vectors):
            images.append(sample(tiny_backbone, [prompt], steps=2, generator=torch.Generator().manual_seed(0)))
    assert images[0].shape == (1, 3, 64, 64)
    assert not torch.allclose(images[0], images[1])


def test_the_concept_takes_the_models_subject_slot(tiny_backbone, tmp_path):
    from seal_runtime.models.loader import load_pixel_model, save_pixel_model

    tokens = placeholder_tokens(2)
    assert tiny_backbone.concept_phrase == "a {} character"
    assert (expand_prompt("a sticker of <concept>, happy", tiny_backbone, tokens)
            == "a sticker of a <concept_0> <concept_1> character, happy")
    save_pixel_model(tmp_path, tiny_backbone)
    reloaded = load_pixel_model(tmp_path, torch.device("cpu"), torch.float32)
    assert reloaded.concept_phrase == "a {} character"


def test_an_operator_sets_the_concept_phrase_and_a_broken_one_is_refused():
    import pytest

    from seal_runtime.api.config import RuntimeSettings
    from seal_runtime.models.loader import load_backbone

    backbone = load_backbone(RuntimeSettings(device="cpu", concept_phrase="{} the sticker character"))
    assert expand_prompt("<concept>, waving", backbone, ["<c>"]) == "<c> the sticker character, waving"
    assert backbone.model_id.endswith("[{} the sticker character]")  # its own embedding cache key
    with pytest.raises(ValueError, match="concept_phrase"):
        load_backbone(RuntimeSettings(device="cpu", concept_phrase="a character"))
