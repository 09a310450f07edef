"""How the concept is represented while learning and while generating.

Split-merge (SEAL, Sec. "Split-merge Token Strategy"): the concept is learned as k
tokens, all initialised from the initializer word — more capacity and a steadier
optimisation than one token — and merged into one concept for generation.

Merge rules:
- "mean": the k vectors are averaged and the average is rescaled to their mean
  norm (a plain mean of diverging vectors shrinks towards the origin, which CLIP
  embeddings never visit). One token at generation, as the paper describes.
- "concat": the k vectors are kept side by side as a multi-vector concept, which is
  plain multi-vector textual inversion.
With k = 1 both rules return the single vector unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MERGE_RULES = ("mean", "concat")


@dataclass(frozen=True)
class SplitMergeTokens:
    num_tokens: int = 1
    merge_rule: str = "mean"

    def __post_init__(self) -> None:
        if not 1 <= self.num_tokens <= 8:
            raise ValueError(f"num_tokens must be 1..8, got {self.num_tokens}")
        if self.merge_rule not in MERGE_RULES:
            raise ValueError(f"merge_rule must be one of {MERGE_RULES}, got {self.merge_rule!r}")

    def initial_vectors(self, init: torch.Tensor) -> torch.Tensor:
        """k copies of the initializer vector (positional embeddings make their gradients differ)."""
        return init.unsqueeze(0).repeat(self.num_tokens, 1).clone()

    def merge(self, vectors: torch.Tensor) -> torch.Tensor:
        """(k, d) learned vectors -> (m, d) vectors used for generation."""
        if self.merge_rule == "concat" or vectors.shape[0] == 1:
            return vectors.detach().clone()
        mean = vectors.mean(dim=0)
        target_norm = vectors.norm(dim=-1).mean()
        return (mean * (target_norm / mean.norm().clamp_min(1e-8))).unsqueeze(0).detach()
