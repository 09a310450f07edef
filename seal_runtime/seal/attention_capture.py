"""Recording the concept tokens' cross-attention, only on the layers SEAL watches.

The spatial attention loss needs, for each watched cross-attention layer (`attn2`),
how much attention each image position pays to the concept tokens. diffusers swaps
attention behaviour in through processor classes (`Attention.set_processor`), so this
is a processor: `ConceptAttentionProcessor` computes the layer's output exactly as
diffusers' `AttnProcessor2_0` does (SDPA), and next to it the attention probabilities
explicitly, the way diffusers' `AttnProcessor` does, keeping only the concept-token
columns averaged over heads, (batch, pixels, k). The full (batch x heads, pixels,
tokens) maps are never stored. Layers that are not watched keep their original
processor; the U-Net itself is untouched.

Which image positions belong to which text position is known only when the prompt
is tokenised, so a forward pre-hook on the text encoder's token embedding notes where
the concept tokens sit in each prompt of the batch.

Layers are named by their module path (`down_blocks.2.attentions.0.transformer_blocks.0.attn2`),
their block (`down_blocks.2`) and the side of their attention map at the model's
native size (SD 1.5 at 512 px: 64 in down_blocks.0/up_blocks.3, 32, 16, and 8 in the
mid block; the builtin model, 16 x 16 x 48 folded pixels: 16 in down_blocks.0/up_blocks.2,
8 in down_blocks.1/up_blocks.1, 4 in mid_block).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention


@dataclass(frozen=True)
class CrossAttentionLayer:
    name: str  # module path of the Attention module
    block: str  # "down_blocks.2", "mid_block", "up_blocks.0"
    resolution: int  # side of the attention map at the model's native sample size
    order: int  # position in the U-Net's forward pass (0 = first)


def block_resolution(block: str, sample_size: int, levels: int) -> int:
    """Side of the feature map in `block` of a UNet2DConditionModel with `levels` blocks
    per path: every down block but the last halves the size, every up block but the
    last doubles it."""
    kind, _, index = block.partition(".")
    if kind == "mid_block":
        return sample_size // 2 ** (levels - 1)
    if kind == "down_blocks":
        return sample_size // 2 ** int(index)
    if kind == "up_blocks":
        return sample_size // 2 ** (levels - 1 - int(index))
    raise ValueError(f"not a U-Net block: {block!r}")


def cross_attention_layers(unet, sample_size: int | None = None) -> list[CrossAttentionLayer]:
    """Every cross-attention layer of `unet`, in forward order, with its block and map size.

    `sample_size` is what the U-Net denoises (latent side for SD, pixel side for the
    builtin model); by default the U-Net's configured sample size."""
    sample_size = sample_size or unet.config.sample_size
    levels = len(unet.config.block_out_channels)
    found = []
    for name, module in unet.named_modules():
        if isinstance(module, Attention) and module.is_cross_attention and name.endswith("attn2"):
            parts = name.split(".")
            block = "mid_block" if parts[0] == "mid_block" else ".".join(parts[:2])
            found.append((block, name))
    # named_modules lists down, up, then mid; the forward pass runs down, mid, up.
    rank = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}
    found.sort(key=lambda item: (rank[item[0].split(".")[0]], _block_index(item[0])))
    return [
        CrossAttentionLayer(name, block, block_resolution(block, sample_size, levels), order)
        for order, (block, name) in enumerate(found)
    ]


def _block_index(block: str) -> int:
    _, _, index = block.partition(".")
    return int(index) if index else 0


class ConceptAttentionProcessor:
    """`AttnProcessor2_0` that also records the concept-token columns of the probabilities.

    The layer's output is computed exactly as by diffusers' `AttnProcessor2_0` (SDPA,
    the fused kernel), so watching a layer does not change what the U-Net computes.
    Next to it, the probabilities softmax(q kᵀ · scale) are computed explicitly, in
    fp32, from a *detached* query: the attention loss then moves the concept's key —
    its embedding (and, for the LoRA base, that layer's key projection) — and never
    reshapes the U-Net's image features. That also makes layer restriction exact:
    a layer that is not watched gets no gradient from the attention loss, not even
    through the features it feeds into a watched layer.
    """

    def __init__(self, capture: "ConceptAttentionCapture", layer: CrossAttentionLayer) -> None:
        self.capture = capture
        self.layer = layer

    def __call__(self, attn: Attention, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 temb=None, *args, **kwargs):
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, sequence_length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        )
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)

        inner_dim = key.shape[-1]
        head_dim = inner_dim // attn.heads
        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        self.capture.record(self.layer, attn, query, key, attention_mask)

        hidden_states = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False
        )
        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = hidden_states.to(query.dtype)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


class ConceptAttentionCapture:
    """Watches `layers`; after a U-Net forward, `maps[layer.name]` is (B, pixels, k):
    the attention each pixel pays to each of the k concept tokens, averaged over heads.

    Use `attach(backbone, token_ids)` / `detach()` (or `with capture.attached(...)`);
    detach puts the original processors back and removes the tokenizer-side hook.
    """

    def __init__(self, layers: list[CrossAttentionLayer]) -> None:
        self.layers = list(layers)
        self.maps: dict[str, torch.Tensor] = {}
        self._originals: dict[str, object] = {}
        self._concept_positions: torch.Tensor | None = None  # (B, L, k) one-hot
        self._hook = None
        self._backbone = None

    # -- lifecycle ----------------------------------------------------------------------
    def attach(self, backbone, token_ids: list[int]) -> "ConceptAttentionCapture":
        if self._backbone is not None:
            raise RuntimeError("capture is already attached")
        ids = torch.tensor(list(token_ids))

        def note_positions(module, inputs):
            if not inputs:
                return
            input_ids = inputs[0]
            self._concept_positions = (input_ids.unsqueeze(-1) == ids.to(input_ids.device)).float()

        embedding = backbone.text_encoder.get_input_embeddings()
        self._hook = embedding.register_forward_pre_hook(note_positions)
        for layer in self.layers:
            module = backbone.unet.get_submodule(layer.name)
            self._originals[layer.name] = module.processor
            module.set_processor(ConceptAttentionProcessor(self, layer))
        self._backbone = backbone
        return self

    def detach(self) -> None:
        if self._backbone is None:
            return
        for name, processor in self._originals.items():
            self._backbone.unet.get_submodule(name).set_processor(processor)
        self._originals.clear()
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self._backbone = None
        self._concept_positions = None
        self.maps.clear()

    @contextmanager
    def attached(self, backbone, token_ids: list[int]):
        self.attach(backbone, token_ids)
        try:
            yield self
        finally:
            self.detach()

    # -- recording ----------------------------------------------------------------------
    def record(self, layer: CrossAttentionLayer, attn: Attention, query, key, attention_mask=None) -> None:
        """query (B, heads, pixels, d), key (B, heads, L, d) -> keep (B, pixels, k)."""
        positions = self._concept_positions
        if positions is None:
            return
        if positions.shape[0] != query.shape[0] or positions.shape[1] != key.shape[2]:
            return  # an encoding this capture did not see (e.g. a guidance batch)
        scores = torch.matmul(query.detach().float(), key.float().transpose(-1, -2)) * attn.scale
        if attention_mask is not None:
            scores = scores + attention_mask.float()
        probs = scores.softmax(dim=-1)  # (B, heads, pixels, L)
        # Mean over heads of the concept columns: (B, pixels, k).
        self.maps[layer.name] = torch.einsum("bhnl,blk->bnk", probs, positions.float()) / attn.heads

    def take(self) -> dict[str, torch.Tensor]:
        """The maps of the last forward pass; the store is emptied for the next step."""
        maps, self.maps = self.maps, {}
        return maps
