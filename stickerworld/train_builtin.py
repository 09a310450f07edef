"""`stickerbot train-builtin`: train the builtin model on StickerWorld renders.

Reads like diffusers' train_text_to_image example, shrunk to a laptop: render a data
set, train a BPE tokenizer on its captions, then train the text encoder and the
U-Net together on the noise-prediction loss (weighted toward the pixels that carry
the emotion), with captions dropped 10 % of the time so classifier-free guidance
works. Checkpoints go to the builtin model folder every few minutes, so a long run
can be stopped at any time and leaves a usable model.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=100.0, help="wall-time budget of the training loop")
    parser.add_argument("--samples", type=int, default=12000, help="rendered training images")
    parser.add_argument("--batch-size", type=int, default=24)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint-minutes", type=float, default=10.0)
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke runs)")
    parser.add_argument("--out", default=None, help="model folder (default: the shipped builtin folder)")
    parser.add_argument("--model-id", help="the model's name, part of the key of cached embeddings (default: "
                        "the checkpoint's when resuming, else builtin-stickerworld-v3)")
    parser.add_argument("--ema", type=float, default=0.999,
                        help="decay of the exponential moving average of the weights that checkpoints save "
                             "(0 saves the raw weights)")
    parser.add_argument("--emotion-weight", type=float, default=4.0,
                        help="extra loss weight on the pixels that depend on the emotion (face and mark); "
                             "0 trains on the plain MSE")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the checkpoint in --out (weights, tokenizer, step count, loss log)")
    parser.add_argument("--arch", choices=("v3", "v4"), default="v3",
                        help="v3: the 64-px pixel-space model (builtin_model/); v4: the latent SD-1.5-class "
                             "pipeline (builtin_model_v4/, stickerworld/train_builtin_v4.py)")
    from stickerworld import train_builtin_v4

    train_builtin_v4.add_arguments(parser)


def render_dataset(count: int, seed: int):
    from stickerworld.dataset import generate

    samples = generate(count, seed=seed)
    pixels = np.stack([np.asarray(s.image.convert("RGB"), dtype=np.uint8) for s in samples])
    return samples, torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()


def emotion_regions(samples, processes: int) -> torch.Tensor:
    """(N, 1, H, W) bool: where each sample's pixels depend on its emotion."""
    from multiprocessing import get_context

    from stickerworld.render import emotion_region

    with get_context("spawn").Pool(processes) as pool:
        masks = pool.map(emotion_region, [s.scene for s in samples], chunksize=256)
    return torch.from_numpy(np.stack([np.asarray(m) > 0 for m in masks]))[:, None]


def loss_weights(regions: torch.Tensor, extra: float, fold: int) -> torch.Tensor:
    """Per-value loss weights in the U-Net's folded layout, scaled to mean 1.

    Why: the emotion lives in a face ~8 px wide and a mark beside it, a small share
    of the plain MSE, and a model trained on it alone learned where the mark goes but
    drew the same average mark for every emotion but love (docs/builtin_model.md)."""
    weights = 1.0 + extra * regions.float().expand(-1, 3, -1, -1)
    weights = F.pixel_unshuffle(weights, fold)
    return weights / weights.mean(dim=(1, 2, 3), keepdim=True)


def run(args) -> int:
    if args.arch == "v4":
        from stickerworld import train_builtin_v4

        return train_builtin_v4.run(args)
    from seal_runtime.ttf.adaptation import prediction_target
    from seal_runtime.models.backbone import DiffusionBackbone
    from seal_runtime.models.builtin_architecture import (
        BUILTIN_RESOLUTION,
        CONCEPT_PHRASE,
        BUILTIN_DIR,
        PIXEL_SHUFFLE,
        noise_scheduler,
        text_encoder_config,
        unet_config,
    )
    from stickerworld.tokenizer_training import build_tokenizer, vocabulary_corpus
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    out = Path(args.out) if args.out else BUILTIN_DIR
    started = time.perf_counter()

    # 1. Data: rendered once, kept in memory as uint8.
    samples, pixels = render_dataset(args.samples, args.seed)
    captions = [s.caption for s in samples]
    regions = emotion_regions(samples, args.threads) if args.emotion_weight > 0 else None
    print(f"rendered {len(samples)} samples in {time.perf_counter() - started:.0f}s")

    # 2. Tokenizer and models: fresh, or the last checkpoint when resuming (its
    # tokenizer must be kept, since the embeddings are indexed by its ids).
    first_step, losses, elapsed_before = 0, [], 0.0
    if args.resume:
        from seal_runtime.models.loader import load_pixel_model

        resumed = load_pixel_model(out, torch.device("cpu"), torch.float32)
        tokenizer, text_encoder, unet = resumed.tokenizer, resumed.text_encoder, resumed.unet
        losses = read_loss_log(out)
        elapsed_before = losses[-1][1] if losses else 0.0
        manifest = json.loads((out / "seal_model.json").read_text())
        first_step = int(manifest.get("trained_steps", losses[-1][0] if losses else 0))
        args.model_id = args.model_id or manifest["model_id"]
        print(f"resuming from step {first_step} in {out}")
    else:
        tokenizer = build_tokenizer(captions + vocabulary_corpus())
        text_encoder = CLIPTextModel(text_encoder_config(len(tokenizer)))
        unet = UNet2DConditionModel(**unet_config())
        args.model_id = args.model_id or "builtin-stickerworld-v3"
    ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    empty = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length,
                      return_tensors="pt").input_ids[0]
    scheduler = noise_scheduler()
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    print(f"unet {sum(p.numel() for p in unet.parameters()) / 1e6:.2f}M params, "
          f"text encoder {sum(p.numel() for p in text_encoder.parameters()) / 1e6:.2f}M, vocab {len(tokenizer)}")

    # An exponential moving average of the weights is what gets saved, as in diffusers'
    # training examples (EMAModel): the raw weights of a short, noisy run draw speckle.
    ema = WeightAverage([unet, text_encoder], args.ema) if args.ema > 0 else None

    def checkpoint(step: int, losses: list[tuple[int, float, float]]) -> None:
        saved_unet, saved_text = (ema.copies() if ema is not None else (unet, text_encoder))
        backbone = DiffusionBackbone(args.model_id, tokenizer, saved_text, saved_unet, scheduler, None,
                                     BUILTIN_RESOLUTION, torch.device("cpu"), torch.float32, PIXEL_SHUFFLE,
                                     CONCEPT_PHRASE)
        save_half(out, backbone, {"trained_steps": step, "samples": args.samples, "batch_size": args.batch_size,
                                  "wall_minutes": round((elapsed_before + time.perf_counter() - started) / 60, 1)})
        write_loss_log(out, losses)
        print(f"checkpoint at step {step} -> {out}")

    # 3. Loop. A resumed run has lost its optimizer state, so it warms up again, briefly.
    window: list[float] = []
    deadline = started + args.minutes * 60
    next_checkpoint = time.perf_counter() + args.checkpoint_minutes * 60
    warmup = 50 if args.resume else 200
    step = first_step
    unet.train()
    text_encoder.train()
    while time.perf_counter() < deadline and (args.max_steps is None or step - first_step < args.max_steps):
        batch = torch.tensor([rng.randrange(len(samples)) for _ in range(args.batch_size)])
        x0 = F.pixel_unshuffle(pixels[batch].float() / 127.5 - 1.0, PIXEL_SHUFFLE)
        token_ids = ids[batch].clone()
        drop = torch.rand(args.batch_size) < 0.1  # classifier-free guidance
        token_ids[drop] = empty
        noise = torch.randn_like(x0)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch_size,))
        noisy = scheduler.add_noise(x0, noise, timesteps)
        pred = unet(noisy, timesteps, encoder_hidden_states=text_encoder(token_ids)[0]).sample
        squared = (pred - prediction_target(scheduler, x0, noise, timesteps)) ** 2
        plain = squared.mean()  # what the loss curve shows, comparable across runs
        if regions is None:
            loss = plain
        else:
            loss = (squared * loss_weights(regions[batch], args.emotion_weight, PIXEL_SHUFFLE)).mean()
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step - first_step + 1) / warmup)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if ema is not None:
            ema.update()
        step += 1
        window.append(plain.item())
        if step % 25 == 0:
            elapsed = elapsed_before + time.perf_counter() - started
            losses.append((step, elapsed, sum(window) / len(window)))
            print(f"step {step} loss {losses[-1][2]:.4f} ({elapsed / 60:.1f} min)", flush=True)
            window.clear()
        if time.perf_counter() > next_checkpoint:
            checkpoint(step, losses)
            next_checkpoint = time.perf_counter() + args.checkpoint_minutes * 60

    # 4. Save.
    unet.eval()
    text_encoder.eval()
    checkpoint(step, losses)
    plot_losses(losses, out.parent.parent / "docs" / "builtin_loss.png" if args.out is None else out / "loss.png")
    print(f"done: {step - first_step} steps in {(time.perf_counter() - started) / 60:.1f} min (model at step {step})")
    return 0


class WeightAverage:
    """Exponential moving average of some modules' parameters (buffers are copied as they are)."""

    def __init__(self, modules: list[torch.nn.Module], decay: float) -> None:
        import copy

        self.modules = modules
        self.decay = decay
        self.averages = [copy.deepcopy(m).requires_grad_(False) for m in modules]

    @torch.no_grad()
    def update(self) -> None:
        for module, average in zip(self.modules, self.averages):
            for live, kept in zip(module.parameters(), average.parameters()):
                kept.lerp_(live, 1.0 - self.decay)

    def copies(self) -> list[torch.nn.Module]:
        return self.averages


def save_half(folder: Path, backbone, extra: dict) -> None:
    """Weights in fp16 to keep the shipped model small; they load back as fp32."""
    import copy

    from seal_runtime.models.loader import save_pixel_model

    half = copy.copy(backbone)
    half.unet = copy.deepcopy(backbone.unet).half()
    half.text_encoder = copy.deepcopy(backbone.text_encoder).half()
    save_pixel_model(folder, half, extra)


def write_loss_log(folder: Path, losses) -> None:
    with open(folder / "training_loss.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "seconds", "loss"])
        writer.writerows((s, round(t, 1), round(l, 5)) for s, t, l in losses)


def read_loss_log(folder: Path) -> list[tuple[int, float, float]]:
    path = folder / "training_loss.csv"
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [(int(r["step"]), float(r["seconds"]), float(r["loss"])) for r in csv.DictReader(handle)]


def plot_losses(losses, path: Path,
                title: str = "builtin model: training loss (v-prediction MSE, mean of 25 steps)") -> None:
    """A loss curve drawn with Pillow (no plotting library in the stack)."""
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    width, height, pad = 640, 360, 48
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([pad, pad // 2, width - pad // 2, height - pad], outline=(0, 0, 0))
    if len(losses) >= 2:
        steps = [s for s, _, _ in losses]
        values = [l for _, _, l in losses]
        top, bottom = max(values), min(values)
        span = max(top - bottom, 1e-6)
        points = [(pad + (s - steps[0]) / max(1, steps[-1] - steps[0]) * (width - 1.5 * pad),
                   pad // 2 + (top - v) / span * (height - 1.5 * pad)) for s, v in zip(steps, values)]
        draw.line(points, fill=(40, 90, 200), width=2)
        draw.text((pad + 4, pad // 2 + 4), f"loss {top:.3f}", fill=(0, 0, 0))
        draw.text((pad + 4, height - pad - 14), f"loss {bottom:.3f}", fill=(0, 0, 0))
        draw.text((width - 2 * pad - 40, height - pad + 8), f"step {steps[-1]}", fill=(0, 0, 0))
    draw.text((pad, height - 20), title, fill=(0, 0, 0))
    image.save(path)
