"""Builds the SEAL loss terms an AdaptationSettings asks for.

The adaptation loop (`seal_runtime.ttf.adaptation`) is plain test-time fine-tuning; SEAL
plugs into it through these terms, the split-merge token strategy
(`seal_runtime.seal.token_strategy`) and the optional masked diffusion loss. With
`attention_loss = "none"` no processor is installed and no term is added.
"""

from __future__ import annotations

from seal_runtime.seal.attention_loss import ATTENTION_LOSSES, SpatialAttentionLoss
from seal_runtime.api.config import AdaptationSettings


def build_loss_terms(settings: AdaptationSettings, backbone=None) -> list:
    """The extra LossTerms for `settings` (the backbone is bound later, in `attach`)."""
    if settings.attention_loss == "none":
        return []
    if settings.attention_loss not in ATTENTION_LOSSES:
        raise ValueError(f"attention_loss must be one of {ATTENTION_LOSSES}, got {settings.attention_loss!r}")
    return [SpatialAttentionLoss(settings.attention_loss, settings.attention_loss_weight, settings.attention_layers)]
