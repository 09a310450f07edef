"""Semantic-guided spatial attention loss (SEAL, Sec. "Semantic-guided Spatial Attention Loss").

With one reference, textual inversion learns whatever explains the picture, the
background included ("visual entanglement": the reference's beach leaks into every
sticker). SEAL pushes the concept tokens' cross-attention onto the subject: for every
watched layer, the concept map — the attention probabilities of the concept tokens,
averaged over heads and over the k split tokens — is compared with the subject mask
resized to that layer's resolution, and the mean over layers is added to the
diffusion loss with weight λ (`adaptation.attention_loss_weight`).

Two forms from prior art were implemented and measured (`stickerbot bench seal`,
docs/seal.md); both see the map max-normalised (divided by its peak), so only its
shape is constrained, not how much attention the concept takes from the other words:

- `fastcomposer` (the default, `adaptation.attention_loss = "fastcomposer"`) —
  FastComposer's (Xiao et al. 2023) object localisation loss: mean of the map outside
  the mask minus its mean inside. FastComposer applies it to raw probabilities, whose
  size depends on the prompt length (about 1/length on an untrained model, so λ would
  have to be ~100x larger); normalised, λ = 1 is its measured default.
- Break-A-Scene's (Avrahami et al. 2023) MSE between the max-normalised map and the
  mask, λ = 0.01 in that paper (`break_a_scene_mse`). On the benchmark it did not
  raise the inside share at λ = 0.01 and lowered it at λ = 0.1 and 1: against a
  max-normalised map, the cheapest way to lower the MSE is a sharper peak anywhere,
  not more attention inside. It is kept as a function so the benchmark can keep
  comparing it (e.g. on a trained model), but not as a configuration option.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from seal_runtime.seal.attention_capture import ConceptAttentionCapture, CrossAttentionLayer, cross_attention_layers
from seal_runtime.seal.layer_selection import select_layers

ATTENTION_LOSSES = ("none", "fastcomposer")


def concept_map(columns: torch.Tensor) -> torch.Tensor:
    """(B, pixels, k) recorded columns -> (B, pixels): mean over the split tokens."""
    return columns.float().mean(dim=-1)


def mask_for(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """(B, 1, H, W) subject mask -> (B, pixels) at the layer's resolution (area average,
    so edge pixels get the subject's share of their cell)."""
    height, width = mask.shape[-2:]
    rows = max(1, round(math.sqrt(pixels * height / width)))
    cols = pixels // rows
    if rows * cols != pixels:
        raise ValueError(f"cannot fold {pixels} attention positions into the mask's {height}x{width} aspect")
    return F.interpolate(mask.float(), size=(rows, cols), mode="area").flatten(1)


def max_normalised(attention: torch.Tensor) -> torch.Tensor:
    """(B, pixels) map divided by its per-sample maximum: 1 at the peak."""
    return attention / attention.amax(dim=-1, keepdim=True).clamp_min(1e-12)


def break_a_scene_mse(attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE between the max-normalised map and the mask (both (B, pixels))."""
    return F.mse_loss(max_normalised(attention), mask)


def fastcomposer_balance(attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the max-normalised map outside the subject minus its mean inside."""
    attention = max_normalised(attention)
    inside = (attention * mask).sum(-1) / mask.sum(-1).clamp_min(1e-6)
    outside = (attention * (1 - mask)).sum(-1) / (1 - mask).sum(-1).clamp_min(1e-6)
    return (outside - inside).mean()


LOSS_FORMS = {"fastcomposer": fastcomposer_balance}


def inside_share(attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Share of the concept's attention mass that falls inside the subject, per sample."""
    return (attention * mask).sum(-1) / attention.sum(-1).clamp_min(1e-12)


class SpatialAttentionLoss:
    """LossTerm: λ · mean over the selected layers of the loss form.

    `form` is a name from LOSS_FORMS, or a function (map, mask) -> loss for
    experiments (the benchmark passes `break_a_scene_mse`). `attach` installs the
    recording processor on the selected layers only; `detach` restores the originals.
    `last_maps` keeps the latest maps for inspection (tests).
    """

    def __init__(self, form, weight: float, layer_selectors: tuple[str, ...]) -> None:
        if callable(form):
            self.form_fn, form_name = form, getattr(form, "__name__", "custom")
        elif form in LOSS_FORMS:
            self.form_fn, form_name = LOSS_FORMS[form], form
        else:
            raise ValueError(f"attention_loss must be one of {ATTENTION_LOSSES}, got {form!r}")
        self.name = f"attention_{form_name}"
        self.weight = float(weight)
        self.layer_selectors = tuple(layer_selectors)
        self.layers: list[CrossAttentionLayer] = []
        self.capture: ConceptAttentionCapture | None = None
        self.last_maps: dict[str, torch.Tensor] = {}

    def attach(self, backbone, token_ids: list[int]) -> None:
        available = cross_attention_layers(backbone.unet, backbone.latent_size)
        self.layers = select_layers(available, self.layer_selectors)
        self.capture = ConceptAttentionCapture(self.layers).attach(backbone, token_ids)

    def __call__(self, context) -> torch.Tensor:
        maps = self.capture.take()
        self.last_maps = maps
        if not maps:
            return context.model_pred.new_zeros(())
        per_layer = []
        for columns in maps.values():
            attention = concept_map(columns)
            per_layer.append(self.form_fn(attention, mask_for(context.mask, attention.shape[-1])))
        return self.weight * torch.stack(per_layer).mean()

    def detach(self) -> None:
        if self.capture is not None:
            self.capture.detach()
            self.capture = None


@torch.no_grad()
def measure_inside_share(
    backbone,
    token_ids: list[int],
    prompts: list[str],
    reference: torch.Tensor,
    mask: torch.Tensor,
    *,
    layers: list[CrossAttentionLayer] | None = None,
    timesteps: tuple[int, ...] = (100, 300, 500, 700),
    seed: int = 1234,
) -> dict[str, float]:
    """Inside-mask share of the concept's attention, on noisy copies of the reference.

    Call it inside `inject_concept(...)` so the tokens carry the learned vectors. The
    same noise (seeded) and timesteps for every call, so runs compare. Returns the mean
    share over all measured layers ("all") and per layer name.
    """
    layers = layers or cross_attention_layers(backbone.unet, backbone.latent_size)
    latents = backbone.encode_images(reference)
    generator = torch.Generator("cpu").manual_seed(seed)
    shares: dict[str, list[float]] = {layer.name: [] for layer in layers}
    with ConceptAttentionCapture(layers).attached(backbone, token_ids) as capture:
        text = backbone.encode_prompts(prompts)
        for t in timesteps:
            noise = torch.randn(latents.shape, generator=generator).to(latents.device, latents.dtype)
            step = torch.full((1,), t, device=backbone.device, dtype=torch.long)
            noisy = backbone.noise_scheduler.add_noise(latents, noise, step)
            batch = noisy.expand(len(prompts), -1, -1, -1)
            backbone.unet(batch, step.expand(len(prompts)), encoder_hidden_states=text)
            for name, columns in capture.take().items():
                attention = concept_map(columns)
                layer_mask = mask_for(mask.to(attention.device).expand(len(prompts), -1, -1, -1), attention.shape[-1])
                shares[name].append(float(inside_share(attention, layer_mask).mean()))
    per_layer = {name: sum(values) / len(values) for name, values in shares.items() if values}
    result = {"all": sum(per_layer.values()) / max(1, len(per_layer))}
    result.update(per_layer)
    return result
