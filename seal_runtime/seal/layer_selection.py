"""Structure-aware layer restriction: which cross-attention layers carry the attention loss.

SEAL (Sec. "Structure-aware Layer Restriction") observes that constraining the
shallow, highest-resolution cross-attention layers ("Layer 0") makes the concept copy
the reference's edges and layout, so every sticker gets the reference's pose
("structural rigidity"). The constraint therefore goes on the deeper, semantic layers
only. Layers that are not selected are not even watched: their processor stays the
fast one and the attention loss has no term, hence no gradient, from them.

Selectors (config key `adaptation.attention_layers`, a list; in the environment a
comma-separated string), unioned in order:

- `deep` (default): every cross-attention layer except those at the model's highest
  attention resolution (SD 1.5 at 512 px: drops the 64 x 64 layers of down_blocks.0
  and up_blocks.3; the builtin model: drops the 16 x 16 layers of down_blocks.0 and
  up_blocks.2, keeping 8 x 8 and the 4 x 4 mid block). A model with a single attention resolution keeps all of them.
- `all`: every cross-attention layer.
- `res:N`: the layers whose map is N x N at the model's native size (`res:16`).
- a block name or module-path prefix: `mid_block`, `down_blocks.2`, `up_blocks.0.attentions.1`.
- `-<selector>`: remove what the selector matches (`-mid_block`). A list made only
  of removals starts from `all`.

A selector that matches no layer of the loaded model is a configuration error.
"""

from __future__ import annotations

from seal_runtime.seal.attention_capture import CrossAttentionLayer

DEFAULT_ATTENTION_LAYERS = ("deep",)


def _matches(selector: str, layer: CrossAttentionLayer, layers: list[CrossAttentionLayer]) -> bool:
    if selector == "all":
        return True
    if selector == "deep":
        resolutions = {item.resolution for item in layers}
        return len(resolutions) == 1 or layer.resolution < max(resolutions)
    if selector.startswith("res:"):
        try:
            return layer.resolution == int(selector[4:])
        except ValueError:
            raise ValueError(f"attention layer selector {selector!r}: expected res:<int>") from None
    return layer.name == selector or layer.name.startswith(selector + ".") or layer.block == selector


def select_layers(layers: list[CrossAttentionLayer], selectors: tuple[str, ...] | list[str]) -> list[CrossAttentionLayer]:
    """The layers `selectors` choose, in forward order."""
    selectors = [s.strip() for s in selectors if s.strip()] or list(DEFAULT_ATTENTION_LAYERS)
    includes = [s for s in selectors if not s.startswith("-")]
    excludes = [s[1:] for s in selectors if s.startswith("-")]
    for selector in includes + excludes:
        if not any(_matches(selector, layer, layers) for layer in layers):
            available = ", ".join(f"{layer.block} ({layer.resolution}²)" for layer in layers)
            raise ValueError(f"attention layer selector {selector!r} matches no layer; this model has: {available}")
    chosen = [
        layer
        for layer in layers
        if (not includes or any(_matches(s, layer, layers) for s in includes))
        and not any(_matches(s, layer, layers) for s in excludes)
    ]
    if not chosen:
        raise ValueError(f"attention layer selectors {selectors} leave no layer")
    return chosen


def describe(layers: list[CrossAttentionLayer]) -> list[str]:
    """Short names for logs and the benchmark: `mid_block.attentions.0 (16²)`."""
    return [f"{layer.name.removesuffix('.transformer_blocks.0.attn2')} ({layer.resolution}²)" for layer in layers]
