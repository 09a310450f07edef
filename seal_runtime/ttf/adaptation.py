"""Test-time adaptation of a concept from one reference picture.

Reads top to bottom like diffusers' textual-inversion example: tokens, frozen parts,
optimizer, loop, result. SEAL plugs in through three hook points, each switchable:

- the token strategy (`SplitMergeTokens`): how many tokens are learned and how they
  are merged for generation;
- loss terms (`LossTerm`): extra losses added to the diffusion loss each step, e.g.
  the semantic spatial attention loss, which sees the attention maps recorded on
  the layers the layer selection chose;
- the diffusion loss itself, optionally restricted to the subject mask.

With no loss terms, k = 1 and an unmasked diffusion loss, this is plain textual
inversion. `settings.method = "lora"` is the second TTF base: LoRA layers on the
U-Net attention (`seal_runtime.ttf.lora`) learn together with the tokens, in
this same loop; their weights come back in `AdaptationResult.extra_state["lora"]`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F

from seal_runtime.api.config import AdaptationSettings
from seal_runtime.models.backbone import DiffusionBackbone
from seal_runtime.seal.token_strategy import SplitMergeTokens
from seal_runtime.ttf.concept_tokens import (
    ensure_tokens,
    initializer_vector,
    inject_concept,
    placeholder_tokens,
)
from seal_runtime.ttf.plateau import PlateauStop
from seal_runtime.ttf.reference_views import make_views

log = logging.getLogger(__name__)

# Short neutral templates: they name the subject but not its surroundings, so
# without SEAL the reference's background is free to leak into the concept.
# `{}` is the concept in the model's phrase (DiffusionBackbone.concept_phrase).
TEMPLATES = (
    "a sticker of {}",
    "a picture of {}",
    "a drawing of {}",
    "a sticker showing {}",
    "a cute sticker of {}",
)


@dataclass
class StepContext:
    """What one optimisation step exposes to loss terms."""

    step: int
    model_pred: torch.Tensor
    target: torch.Tensor
    timesteps: torch.Tensor
    mask: torch.Tensor  # (B, 1, H, W) subject mask at pixel resolution, 1 = subject
    token_ids: list[int]
    vectors: torch.Tensor | None = None  # the (k, d) concept vectors being learned


class LossTerm(Protocol):
    """An extra loss; `attach` before the loop, `detach` after (e.g. to remove processors)."""

    name: str

    def attach(self, backbone: DiffusionBackbone, token_ids: list[int]) -> None: ...

    def __call__(self, context: StepContext) -> torch.Tensor: ...

    def detach(self) -> None: ...


@dataclass
class AdaptationResult:
    vectors: torch.Tensor  # merged, for generation: (m, d)
    learned_vectors: torch.Tensor  # as optimised: (k, d)
    losses: list[float]
    loss_terms: dict[str, list[float]]
    seconds: float
    steps: int
    # Second TTF base: {"lora": {key: tensor}, "lora_rank": r} (see lora_adaptation).
    extra_state: dict = field(default_factory=dict)
    # (step, fixed evaluation loss) of each plateau measurement; empty when the stop is off.
    plateau: list[tuple[int, float]] = field(default_factory=list)


ProgressCallback = Callable[[int, int, float], None]


def prediction_target(scheduler, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """What the U-Net predicts: the noise (SD 1.5) or the velocity (v-prediction models)."""
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(x0, noise, timesteps)
    return noise


def diffusion_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """MSE on the predicted noise; with `mask`, only inside the subject (reconstruction
    of the reference's background is then not rewarded at all)."""
    if mask is None:
        return F.mse_loss(pred.float(), target.float())
    mask = F.interpolate(mask, size=pred.shape[-2:], mode="area")
    squared = (pred.float() - target.float()) ** 2 * mask
    return squared.sum() / (mask.sum() * pred.shape[1]).clamp_min(1.0)


def loss_scaler(backbone: DiffusionBackbone) -> torch.amp.GradScaler:
    """Dynamic loss scaling for an fp16 model, as diffusers' textual_inversion.py does (its
    GradScaler through accelerate): fp16 gradients of a small loss underflow to zero, so the
    loss is multiplied before backward and the fp32 gradients divided again before the step
    (a step whose gradients overflowed is skipped and the scale lowered). Off for fp32 and
    bf16 (bf16 has fp32's range)."""
    enabled = backbone.dtype == torch.float16
    try:
        return torch.amp.GradScaler(backbone.device.type, init_scale=2.0**10, enabled=enabled)
    except (RuntimeError, ValueError):  # a device type without GradScaler support
        log.warning("no loss scaling on %s; fp16 gradients may underflow", backbone.device.type)
        return torch.amp.GradScaler("cpu", enabled=False)


@dataclass
class TrainingBatch:
    """The random draws of one step (prompts, flips, noise, timesteps) made into tensors."""

    prompts: list[str]
    x0: torch.Tensor
    mask: torch.Tensor
    noise: torch.Tensor
    timesteps: torch.Tensor


def draw_batch(backbone: DiffusionBackbone, latents: torch.Tensor, mask: torch.Tensor, concept: str,
               batch: int, generator: torch.Generator) -> TrainingBatch:
    picks = torch.randint(len(TEMPLATES), (batch,), generator=generator).tolist()
    prompts = [TEMPLATES[i].format(concept) for i in picks]
    flip = torch.rand(batch, generator=generator) < 0.5
    if latents.shape[0] > 1:  # the reference and its views (reference_views.py): one each, at random
        views = torch.randint(latents.shape[0], (batch,), generator=generator)
        x0, step_mask = latents[views.to(latents.device)].clone(), mask[views.to(mask.device)].clone()
    else:
        x0, step_mask = latents.expand(batch, -1, -1, -1).clone(), mask.expand(batch, -1, -1, -1).clone()
    x0[flip] = x0[flip].flip(-1)
    step_mask[flip] = step_mask[flip].flip(-1)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
    timesteps = torch.randint(
        0, backbone.noise_scheduler.config.num_train_timesteps, (batch,), generator=generator
    ).to(backbone.device)
    return TrainingBatch(prompts, x0, step_mask, noise, timesteps)


def step_loss(backbone: DiffusionBackbone, batch: TrainingBatch, token_ids: list[int], vectors: torch.Tensor,
              settings: AdaptationSettings, loss_terms=(), step: int = 0) -> tuple[torch.Tensor, dict]:
    """The loss of one step (diffusion loss plus the loss terms), in fp32; and each term's value."""
    noisy = backbone.noise_scheduler.add_noise(batch.x0, batch.noise, batch.timesteps)
    with inject_concept(backbone, token_ids, vectors):
        text = backbone.encode_prompts(batch.prompts)
    pred = backbone.unet(noisy, batch.timesteps, encoder_hidden_states=text).sample
    target = prediction_target(backbone.noise_scheduler, batch.x0, batch.noise, batch.timesteps)
    loss = diffusion_loss(pred, target, batch.mask if settings.masked_diffusion_loss else None)
    context = StepContext(step, pred, target, batch.timesteps, batch.mask, token_ids, vectors)
    terms = {}
    for term in loss_terms:
        value = term(context)
        terms[term.name] = value.detach()
        loss = loss + value
    return loss, terms


def adapt_concept(
    backbone: DiffusionBackbone,
    reference: torch.Tensor,
    mask: torch.Tensor,
    settings: AdaptationSettings,
    *,
    loss_terms: list[LossTerm] = (),
    on_step: ProgressCallback | None = None,
) -> AdaptationResult:
    """Learn the concept in `reference` ((1, 3, H, W) in [-1, 1]; `mask` (1, 1, H, W) in [0, 1]).
    Settings left to the model's defaults are resolved with the backbone's profile."""
    started = time.perf_counter()
    settings = settings.resolved(backbone.adaptation_profile)
    generator = torch.Generator("cpu").manual_seed(settings.seed)
    strategy = SplitMergeTokens(settings.num_tokens, settings.merge_rule)

    # 1. Tokens: k placeholders, initialised from the initializer word.
    tokens = placeholder_tokens(strategy.num_tokens)
    token_ids = ensure_tokens(backbone, tokens)
    init = initializer_vector(backbone, settings.initializer_word)
    vectors = torch.nn.Parameter(strategy.initial_vectors(init).to(backbone.device))

    # 2. Frozen parts: everything but the concept vectors. The VAE's sample is drawn from
    # the seeded generator, so a seed reproduces the embedding.
    # With reference_views, the reference's views are made and encoded here, once.
    backbone.freeze()
    images, masks = make_views(reference, mask, settings.reference_views, generator)
    with torch.no_grad():
        latents = backbone.encode_images(images, generator=generator).detach()
    mask = masks.to(backbone.device, torch.float32)
    plateau = PlateauStop(settings.plateau_every, settings.plateau_min_steps, settings.plateau_patience,
                          settings.plateau_min_delta)
    if plateau.enabled:
        plateau.prepare(backbone, latents[:1], settings.seed)  # measured on the reference itself

    # 2b. The TTF base: textual inversion learns only the vectors; LoRA also learns
    # low-rank updates of the U-Net attention, attached for this run only.
    lora = None
    if settings.method == "lora":
        from seal_runtime.ttf.lora import UnetLora

        lora = UnetLora(settings.lora_rank, seed=settings.seed)
    elif settings.method != "textual_inversion":
        raise ValueError(f"adaptation method must be 'textual_inversion' or 'lora', got {settings.method!r}")

    # 3. Optimizer. (Inside the try: whatever gets attached is detached again.)
    losses: list[float] = []
    # Kept as tensors until the end: a float() per term would make the GPU wait mid-step.
    term_history: dict[str, list[torch.Tensor]] = {term.name: [] for term in loss_terms}
    concept = backbone.concept_words(tokens)
    scaler = loss_scaler(backbone)
    steps_run = 0
    try:
        groups = [{"params": [vectors], "lr": settings.learning_rate}]
        if lora is not None:
            groups.append({"params": lora.attach(backbone), "lr": settings.lora_learning_rate})
        optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
        for term in loss_terms:
            term.attach(backbone, token_ids)

        # 4. Loop.
        for step in range(settings.steps):
            batch = draw_batch(backbone, latents, mask, concept, settings.batch_size, generator)
            loss, terms = step_loss(backbone, batch, token_ids, vectors, settings, loss_terms, step)
            for name, value in terms.items():
                term_history[name].append(value)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            steps_run = step + 1
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(steps_run, settings.steps, losses[-1])
            measure_now = plateau.enabled and steps_run % plateau.every == 0 and steps_run < settings.steps
            if measure_now and plateau.should_stop(steps_run, plateau.measure(backbone, token_ids, vectors, concept)):
                log.info("adaptation stopped on a plateau", extra={"steps": steps_run, "of": settings.steps})
                break
    finally:
        for term in loss_terms:
            term.detach()
        extra_state = {}
        if lora is not None:
            if lora.attached:
                extra_state = {"lora": lora.state_dict(), "lora_rank": settings.lora_rank}
            lora.detach()

    learned = vectors.detach().float().cpu()
    return AdaptationResult(
        vectors=strategy.merge(learned),
        learned_vectors=learned,
        losses=losses,
        loss_terms={name: [float(v) for v in values] for name, values in term_history.items()},
        seconds=time.perf_counter() - started,
        steps=steps_run,
        extra_state=extra_state,
        plateau=plateau.history,
    )
