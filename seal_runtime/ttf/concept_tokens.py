"""Placeholder tokens for the learned concept and the hook that injects their vectors.

The learned vectors live outside the text encoder: a forward hook on the token
embedding swaps the placeholder rows for them. The encoder's weights never change,
several concepts can be served one after another from one loaded model, and
during adaptation the gradient flows only into the concept vectors.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

CONCEPT_PLACEHOLDER = "<concept>"


def placeholder_tokens(count: int) -> list[str]:
    return [f"<concept_{i}>" for i in range(count)]


def ensure_tokens(backbone, tokens: list[str]) -> list[int]:
    """Add the placeholder tokens once; their embedding rows are never trained directly."""
    missing = [t for t in tokens if t not in backbone.tokenizer.get_vocab()]
    if missing:
        backbone.tokenizer.add_tokens(missing)
        backbone.text_encoder.resize_token_embeddings(len(backbone.tokenizer), mean_resizing=False)
    return backbone.tokenizer.convert_tokens_to_ids(tokens)


def expand_prompt(prompt: str, backbone, tokens: list[str]) -> str:
    """The bot's prompt with its placeholder replaced by the concept in the model's phrase."""
    return prompt.replace(CONCEPT_PLACEHOLDER, backbone.concept_words(tokens))


def initializer_vector(backbone, word: str) -> torch.Tensor:
    ids = backbone.tokenizer(word, add_special_tokens=False).input_ids
    table = backbone.text_encoder.get_input_embeddings().weight
    # A word that splits into several tokens starts from the mean of their rows.
    return table[ids].detach().float().mean(dim=0)


@contextmanager
def inject_concept(backbone, token_ids: list[int], vectors: torch.Tensor):
    """While active, token `token_ids[i]` embeds as `vectors[i]` (gradients reach `vectors`)."""
    ids = torch.tensor(token_ids, device=backbone.device)

    def swap_rows(module, inputs, output):
        input_ids = inputs[0]
        match = input_ids.unsqueeze(-1) == ids  # (B, L, k)
        if not match.any():
            return output
        replacement = torch.einsum("blk,kd->bld", match.to(vectors.dtype), vectors.to(output.device))
        keep = (~match.any(-1)).unsqueeze(-1).to(output.dtype)
        return output * keep + replacement.to(output.dtype)

    handle = backbone.text_encoder.get_input_embeddings().register_forward_hook(swap_rows)
    try:
        yield
    finally:
        handle.remove()
