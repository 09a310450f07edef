"""`stickerbot train-builtin --arch v4`: the builtin model as a latent miniature of SD 1.5.

Reads like diffusers' train_text_to_image example, in two stages as SD itself was made:

1. an `AutoencoderKL` (4 x downsampling) on crops of StickerWorld renders: L1 plus an L1 on
   the image gradients (what keeps outlines and small marks crisp) and a tiny KL term;
   its round trip is read back by the StickerWorld recogniser before the U-Net starts;
2. the renders encoded once; a `UNet2DConditionModel` and the `CLIPTextModel` trained
   together on those latents: v-prediction, the loss weighted toward the latent cells of
   the emotion region (face and mark, `stickerworld.render.emotion_region`), captions
   dropped 10 % of the time for classifier-free guidance, EMA weights exported.

Every `--checkpoint-minutes` the EMA weights are exported as a diffusers pipeline folder
(`--out`, fp16), which the runtime loads like any SD 1.5 folder, and the full training state
(fp32 weights, optimizer, step counts, loss logs) goes to `--state`, from which `--resume`
continues. Seeded; the command line is recorded in the folder's `seal_model.json`.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The v4 options (the shared ones are train_builtin's: --minutes is the U-Net's budget)."""
    parser.add_argument("--resolution", type=int, default=None, help="v4: pixel side (default 128)")
    parser.add_argument("--vae-minutes", type=float, default=20.0,
                        help="v4: wall-time budget of the VAE stage, counted over every run of this state")
    parser.add_argument("--vae-steps", type=int, default=None, help="v4: stop the VAE stage after this many steps")
    parser.add_argument("--vae-batch-size", type=int, default=16)
    parser.add_argument("--vae-crop", type=int, default=None, help="v4: side of the VAE's training crops "
                        "(default half the resolution; the VAE is convolutional)")
    parser.add_argument("--vae-lr", type=float, default=1e-3)
    parser.add_argument("--edge-weight", type=float, default=1.0, help="v4: weight of the image-gradient L1")
    parser.add_argument("--kl-weight", type=float, default=1e-6)
    parser.add_argument("--state", default=None, help="v4: training-state folder (default: next to --out)")
    parser.add_argument("--device", default="cpu", help="v4: cpu | cuda (bf16 autocast on cuda)")
    parser.add_argument("--cpu-bf16-vae", action="store_true",
                        help="v4: bf16 autocast for the VAE stage and the encoding on the CPU (on a CPU "
                        "with AMX a VAE step took 0.21 s against 0.49 s in fp32; the U-Net's took "
                        "longer in bf16, so it stays fp32)")


def command_line() -> str:
    """This run's command line, as typed (`stickerbot ...` or `python -m stickerworld.train_builtin_v4 ...`)."""
    program = sys.argv[0] if sys.argv else ""
    if program.endswith(("stickerbot", "commands.py")):
        return " ".join(["stickerbot", *sys.argv[1:]])
    if program.endswith("train_builtin_v4.py"):
        return " ".join(["python -m stickerworld.train_builtin_v4", *sys.argv[1:]])
    return " ".join(sys.argv)


# -- data ------------------------------------------------------------------------------------------
def _render_rgb(job) -> np.ndarray:
    from stickerworld.render import render

    scene, size, seed = job
    return np.asarray(render(scene, size, seed)[0].convert("RGB"), dtype=np.uint8)


def render_dataset(count: int, seed: int, size: int, processes: int = 1):
    """(scenes, captions, uint8 pixels (N, 3, size, size)): the samples `dataset.generate(count,
    seed, size)` draws, rendered on `processes` processes (256 px renders cost 30 ms each)."""
    from multiprocessing import get_context

    from stickerworld.dataset import caption_for, random_scene

    rng = random.Random(seed)
    jobs = []
    for _ in range(count):  # the draws of dataset.generate, in its order
        scene = random_scene(rng)
        jobs.append((scene, size, rng.randrange(2**31)))
    if processes > 1:
        with get_context("spawn").Pool(processes) as pool:
            arrays = pool.map(_render_rgb, jobs, chunksize=64)
    else:
        arrays = [_render_rgb(job) for job in jobs]
    scenes = [job[0] for job in jobs]
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return scenes, [caption_for(scene) for scene in scenes], pixels


def emotion_fractions(scenes, processes: int, side: int) -> torch.Tensor:
    """(N, 1, side, side) float: the share of each latent cell that depends on the emotion
    (found at 64 px, where it costs 8 ms a scene, and averaged to the latent grid)."""
    from multiprocessing import get_context

    from stickerworld.render import emotion_region

    with get_context("spawn").Pool(max(1, processes)) as pool:
        masks = pool.map(emotion_region, scenes, chunksize=256)
    regions = torch.from_numpy(np.stack([np.asarray(m) > 0 for m in masks]))[:, None].float()
    return F.interpolate(regions, size=(side, side), mode="area").half()


def latent_loss_weights(fractions: torch.Tensor, extra: float) -> torch.Tensor:
    """Per-cell loss weights 1 + extra * (emotion share of the cell), scaled to mean 1 per sample.

    Why: the emotion lives in a face and a mark, a small share of the plain MSE; v2 of the
    pixel model, trained without it, drew one average mark for five emotions."""
    weights = 1.0 + extra * fractions.float()
    return weights / weights.mean(dim=(1, 2, 3), keepdim=True)


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]


@torch.no_grad()
def start_with_small_posterior_noise(vae) -> None:
    """A fresh encoder's log-variance starts near 0 (std 1): the sampled latent is then mostly
    noise and the decoder learns slowly. Starting it at -8 (std 0.02) let a pilot VAE reach a
    given L1 in fewer steps; the tiny KL term still shapes it from there."""
    channels = vae.config.latent_channels
    vae.quant_conv.weight[channels:] *= 0.1
    vae.quant_conv.bias[channels:] = -8.0


def vae_loss(reconstruction, target, posterior, edge_weight: float, kl_weight: float):
    """L1 + edge_weight * L1 of the image gradients + kl_weight * KL. Returns (loss, plain L1)."""
    l1 = (reconstruction - target).abs().mean()
    edges = sum((a - b).abs().mean() for a, b in zip(image_gradients(reconstruction), image_gradients(target)))
    return l1 + edge_weight * edges + kl_weight * posterior.kl().mean(), l1


def edge_energy(x: torch.Tensor) -> float:
    return float(sum(g.abs().mean() for g in image_gradients(x)))


def high_frequency_residual(x: torch.Tensor) -> float:
    """Mean |x - median3(x)| in [-1, 1] units: speckle and detail a 3 x 3 median removes."""
    from stickerworld.recognition import median3

    return float((x - median3(x)).abs().mean())


@torch.no_grad()
def vae_round_trip(vae, resolution: int, count: int = 200, seed: int = 99, device="cpu") -> dict:
    """Held-out renders through encode/decode, read by the recogniser beside the exact renders:
    what the VAE alone lets the U-Net reach."""
    from stickerworld import recognition
    from stickerworld.dataset import generate
    from stickerworld.identities import held_out_identities

    data = generate(count, seed=seed, size=resolution, identities=held_out_identities())
    exact = torch.from_numpy(np.stack([np.asarray(s.image.convert("RGB")) for s in data])).permute(0, 3, 1, 2)
    exact = exact.float() / 127.5 - 1.0
    decoded = []
    for start in range(0, count, 20):
        chunk = exact[start:start + 20].to(device, next(vae.parameters()).dtype)
        decoded.append(vae.decode(vae.encode(chunk).latent_dist.mode()).sample.clamp(-1, 1).float().cpu())
    decoded = torch.cat(decoded)
    model = recognition.load()
    scenes = [s.scene for s in data]
    read = recognition.agreement(recognition.predict(model, recognition.resize_for_recogniser(decoded)), scenes)
    ceiling = recognition.agreement(recognition.predict(model, recognition.resize_for_recogniser(exact)), scenes)
    return {
        "count": count,
        "l1": round(float((decoded - exact).abs().mean()), 4),
        "edge_energy_ratio": round(edge_energy(decoded) / edge_energy(exact), 3),
        "hf_residual_ratio": round(high_frequency_residual(decoded) / high_frequency_residual(exact), 3),
        "recognised_round_trip": read,
        "recognised_exact": ceiling,
    }


# -- state ---------------------------------------------------------------------------------------------
class WeightAverage:
    """Exponential moving average of some modules' parameters (diffusers' EMAModel, in short)."""

    def __init__(self, modules: list[torch.nn.Module], decay: float) -> None:
        import copy

        self.modules = modules
        self.decay = decay
        self.averages = [copy.deepcopy(m).requires_grad_(False) for m in modules]

    @torch.no_grad()
    def update(self, step: int) -> None:
        # Warm-up as in EMAModel: a fresh average follows the weights closely at first.
        decay = min(self.decay, (1 + step) / (10 + step))
        for module, average in zip(self.modules, self.averages):
            for live, kept in zip(module.parameters(), average.parameters()):
                kept.lerp_(live, 1.0 - decay)


def tokenizer_content(tokenizer) -> tuple[frozenset, frozenset]:
    """What a trained BPE tokenizer knows: its tokens and merges. (The `tokenizers` trainer
    numbers tied tokens in a different order from run to run, so ids alone do not compare.)"""
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    return frozenset(model["vocab"]), frozenset(map(str, model["merges"]))


def tokenizer_from_json(text: str):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from seal_runtime.models.builtin_architecture import MAX_PROMPT_TOKENS
    from stickerworld.tokenizer_training import BOS_TOKEN, EOS_TOKEN

    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(text), bos_token=BOS_TOKEN, eos_token=EOS_TOKEN,
                                   unk_token=EOS_TOKEN, pad_token=EOS_TOKEN, model_max_length=MAX_PROMPT_TOKENS)


def save_state(folder: Path, state: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / "state.pt.partial"
    torch.save(state, partial)
    partial.replace(folder / "state.pt")  # a run stopped mid-write keeps the previous state


def write_loss_log(path: Path, losses) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "seconds", "loss"])
        writer.writerows((s, round(t, 1), round(v, 5)) for s, t, v in losses)


def learning_rate(base: float, step_in_run: int, warmup: int, fraction_done: float) -> float:
    """Linear warm-up, then a cosine over the run's time budget down to a tenth of `base`."""
    cosine = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, fraction_done))))
    return base * min(1.0, (step_in_run + 1) / warmup) * cosine


# -- the run -------------------------------------------------------------------------------------------
def run(args) -> int:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    from seal_runtime.models.builtin_architecture import (
        BUILTIN_V4_DIR,
        V4_MODEL_NAME,
        V4_RESOLUTION,
        save_v4_folder,
        text_encoder_config,
        unet_config_v4,
        v4_manifest,
        v4_scheduler,
        vae_config_v4,
    )
    from seal_runtime.ttf.adaptation import prediction_target
    from stickerworld.tokenizer_training import build_tokenizer, vocabulary_corpus
    from stickerworld.train_builtin import plot_losses

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)
    vae_autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if not cuda and args.cpu_bf16_vae else autocast)
    out = Path(args.out) if args.out else BUILTIN_V4_DIR
    state_dir = Path(args.state) if args.state else out.with_name(out.name + ".train_state")
    docs = Path(__file__).resolve().parent.parent / "docs"
    curves = docs if args.out is None else out
    started = time.perf_counter()

    state: dict = {}
    if args.resume:
        if not (state_dir / "state.pt").exists():
            raise SystemExit(f"--resume: no training state in {state_dir}")
        state = torch.load(state_dir / "state.pt", map_location="cpu", weights_only=False)
        # The data is the state's (its captions made the tokenizer); --seed only reseeds the batches.
        if args.resolution is not None and args.resolution != state["data"]["resolution"]:
            raise SystemExit(f"--resume: the state was trained at {state['data']['resolution']} px, "
                             f"not {args.resolution}")
        resolution = state["data"]["resolution"]
        data_seed = state["data"]["seed"]
        samples_count = state["data"]["samples"]
        args.model_id = args.model_id or state["model_id"]
        print(f"resuming from {state_dir}: VAE step {state['vae_step']}, U-Net step {state['unet_step']}")
    else:
        resolution = args.resolution or V4_RESOLUTION
        data_seed, samples_count = args.seed, args.samples
        args.model_id = args.model_id or V4_MODEL_NAME
    latent_side = resolution // 4

    # 1. Data: rendered once (the same for the same seed), kept in memory as uint8.
    samples, captions, pixels = render_dataset(samples_count, data_seed, resolution, args.threads)
    fractions = emotion_fractions(samples, args.threads, latent_side) if args.emotion_weight > 0 else None
    print(f"rendered {len(samples)} samples at {resolution} px in {time.perf_counter() - started:.0f}s", flush=True)

    # 2. Tokenizer: trained on the captions and the vocabulary. The text encoder's embeddings
    # are indexed by its ids, so a resumed run must have exactly the same one.
    tokenizer = build_tokenizer(captions + vocabulary_corpus())
    if state:
        saved = tokenizer_from_json(state["tokenizer"])
        if tokenizer_content(tokenizer) != tokenizer_content(saved):
            raise SystemExit("--resume: the tokenizer trained from this run's captions and vocabulary_corpus() "
                             "differs from the checkpoint's (the vocabulary changed?); the text encoder's "
                             "embeddings would not match its ids. Train from scratch.")
        tokenizer = saved  # the same tokens, numbered as the text encoder learned them
    text_encoder = CLIPTextModel(text_encoder_config(len(tokenizer)))
    unet = UNet2DConditionModel(**unet_config_v4(resolution))
    vae = AutoencoderKL(**vae_config_v4(resolution))
    if "vae" not in state:
        start_with_small_posterior_noise(vae)
    for module, key in ((text_encoder, "text_encoder"), (unet, "unet"), (vae, "vae")):
        if key in state:
            module.load_state_dict(state[key])
    text_encoder.to(device)
    unet.to(device)
    vae.to(device)
    scheduler = v4_scheduler()
    print(f"vae {sum(p.numel() for p in vae.parameters()) / 1e6:.2f}M, unet "
          f"{sum(p.numel() for p in unet.parameters()) / 1e6:.2f}M, text encoder "
          f"{sum(p.numel() for p in text_encoder.parameters()) / 1e6:.2f}M params, vocab {len(tokenizer)}", flush=True)

    vae_losses = [tuple(x) for x in state.get("vae_losses", [])]
    unet_losses = [tuple(x) for x in state.get("unet_losses", [])]
    vae_step, unet_step = state.get("vae_step", 0), state.get("unet_step", 0)
    vae_seconds, unet_seconds = state.get("vae_seconds", 0.0), state.get("unet_seconds", 0.0)
    render_seconds = time.perf_counter() - started
    data_info = {"resolution": resolution, "samples": samples_count, "seed": data_seed}
    history = state.get("commands", []) + [command_line()]

    vae_optimizer = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    if "vae_optimizer" in state:
        vae_optimizer.load_state_dict(state["vae_optimizer"])
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    if "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    ema = WeightAverage([unet, text_encoder], args.ema) if args.ema > 0 else None
    if ema is not None and "ema_unet" in state:
        ema.averages[0].load_state_dict(state["ema_unet"])
        ema.averages[1].load_state_dict(state["ema_text_encoder"])
    scaling = state.get("scaling_factor")
    round_trip = state.get("vae_round_trip")

    def snapshot() -> dict:
        snap = {
            "model_id": args.model_id, "data": data_info, "tokenizer": tokenizer.backend_tokenizer.to_str(),
            "vae": vae.state_dict(), "unet": unet.state_dict(), "text_encoder": text_encoder.state_dict(),
            "vae_optimizer": vae_optimizer.state_dict(), "optimizer": optimizer.state_dict(),
            "vae_step": vae_step, "unet_step": unet_step, "vae_seconds": vae_seconds, "unet_seconds": unet_seconds,
            "vae_losses": vae_losses, "unet_losses": unet_losses, "scaling_factor": scaling,
            "vae_round_trip": round_trip, "commands": history,
        }
        if ema is not None:
            snap["ema_unet"] = ema.averages[0].state_dict()
            snap["ema_text_encoder"] = ema.averages[1].state_dict()
        return {k: ({n: t.detach().cpu() for n, t in v.items()} if isinstance(v, dict) and k in
                    ("vae", "unet", "text_encoder", "ema_unet", "ema_text_encoder") else v) for k, v in snap.items()}

    # 3. The VAE stage: crops of the renders, L1 + edges + a tiny KL.
    crop = args.vae_crop or resolution // 2
    vae_budget = args.vae_minutes * 60
    vae_done = scaling is not None
    if not vae_done:
        run_started = time.perf_counter()
        budget_left = max(0.0, vae_budget - vae_seconds)
        next_checkpoint = time.perf_counter() + args.checkpoint_minutes * 60
        step_in_run, window = 0, []
        vae.train()
        while (time.perf_counter() - run_started < budget_left
               and (args.vae_steps is None or vae_step < args.vae_steps)):
            batch = torch.tensor([rng.randrange(len(samples)) for _ in range(args.vae_batch_size)])
            top, left = rng.randrange(resolution - crop + 1), rng.randrange(resolution - crop + 1)
            x = pixels[batch][:, :, top:top + crop, left:left + crop].to(device).float() / 127.5 - 1.0
            with vae_autocast:
                posterior = vae.encode(x).latent_dist
                reconstruction = vae.decode(posterior.sample()).sample
            loss, l1 = vae_loss(reconstruction.float(), x, posterior, args.edge_weight, args.kl_weight)
            fraction = 1 - (budget_left - (time.perf_counter() - run_started)) / max(vae_budget, 1e-6)
            for group in vae_optimizer.param_groups:
                group["lr"] = learning_rate(args.vae_lr, step_in_run, 100, fraction)
            vae_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            vae_optimizer.step()
            vae_step += 1
            step_in_run += 1
            window.append(l1.item())
            if vae_step % 25 == 0:
                elapsed = vae_seconds + time.perf_counter() - run_started
                vae_losses.append((vae_step, elapsed, sum(window) / len(window)))
                window.clear()
                print(f"vae step {vae_step} L1 {vae_losses[-1][2]:.4f} ({elapsed / 60:.1f} min)", flush=True)
            if time.perf_counter() > next_checkpoint:
                now = time.perf_counter()
                vae_seconds += now - run_started  # the state records the time spent so far
                budget_left -= now - run_started
                run_started = now
                save_state(state_dir, snapshot())
                next_checkpoint = time.perf_counter() + args.checkpoint_minutes * 60
        vae_seconds += time.perf_counter() - run_started
        vae.eval()
        write_loss_log(out / "training_loss_vae.csv", vae_losses)
        plot_losses(vae_losses, curves / "builtin_v4_vae_loss.png",
                    "builtin v4 VAE: reconstruction L1 (mean of 25 steps)")
        round_trip = vae_round_trip(vae, resolution, count=40 if args.max_steps is not None else 200,
                                    device=device)
        print("VAE round trip:", json.dumps(round_trip), flush=True)

    # 4. Latents of every render, once: the posterior's mean and std (the U-Net trains on samples).
    means, stds = [], []
    with torch.no_grad():
        for start in range(0, len(samples), 64):
            x = pixels[start:start + 64].to(device).float() / 127.5 - 1.0
            with vae_autocast:
                posterior = vae.encode(x).latent_dist
            means.append(posterior.mean.float().cpu().half())
            stds.append(posterior.std.float().cpu().half())
    means, stds = torch.cat(means), torch.cat(stds)
    if scaling is None:
        # SD's scaling_factor: latents of unit variance for the noise schedule.
        scaling = float(1.0 / means.float().std())
        save_state(state_dir, snapshot())
    vae.register_to_config(scaling_factor=scaling)
    print(f"encoded {len(samples)} renders to {tuple(means.shape[1:])} latents, scaling factor {scaling:.4f}",
          flush=True)

    ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    empty = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length,
                      return_tensors="pt").input_ids[0]

    def export(final: bool = False) -> None:
        saved_unet, saved_text = ema.averages if ema is not None else (unet, text_encoder)
        manifest = {**v4_manifest(args.model_id), "resolution": resolution, "trained_vae_steps": vae_step,
                    "trained_steps": unet_step, "samples": samples_count, "seed": data_seed,
                    "batch_size": args.batch_size, "vae_batch_size": args.vae_batch_size, "vae_crop": crop,
                    "vae_minutes": round(vae_seconds / 60, 1), "unet_minutes": round(unet_seconds_now() / 60, 1),
                    "render_minutes": round(render_seconds / 60, 1), "device": str(device),
                    "vae_round_trip": round_trip, "commands": history}
        save_v4_folder(out, tokenizer, saved_text, saved_unet, vae, manifest)
        write_loss_log(out / "training_loss.csv", unet_losses)
        save_state(state_dir, snapshot())
        print(f"{'saved' if final else 'checkpoint'} at U-Net step {unet_step} -> {out}", flush=True)

    # 5. The U-Net stage.
    run_started = time.perf_counter()

    def unet_seconds_now() -> float:
        return unet_seconds + time.perf_counter() - run_started

    deadline = run_started + args.minutes * 60
    next_checkpoint = time.perf_counter() + args.checkpoint_minutes * 60
    warmup = 50 if unet_step > 0 else 200
    first_step = unet_step
    window = []
    unet.train()
    text_encoder.train()
    while time.perf_counter() < deadline and (args.max_steps is None or unet_step - first_step < args.max_steps):
        batch = torch.tensor([rng.randrange(len(samples)) for _ in range(args.batch_size)])
        mean, std = means[batch].float(), stds[batch].float()
        x0 = ((mean + std * torch.randn_like(std)) * scaling).to(device)
        token_ids = ids[batch].clone()
        token_ids[torch.rand(args.batch_size) < 0.1] = empty  # classifier-free guidance
        token_ids = token_ids.to(device)
        noise = torch.randn_like(x0)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch_size,), device=device)
        noisy = scheduler.add_noise(x0, noise, timesteps)
        with autocast:
            pred = unet(noisy, timesteps, encoder_hidden_states=text_encoder(token_ids)[0]).sample
        squared = (pred.float() - prediction_target(scheduler, x0, noise, timesteps)) ** 2
        plain = squared.mean()  # what the loss curve shows, comparable across runs
        if fractions is None:
            loss = plain
        else:
            loss = (squared * latent_loss_weights(fractions[batch], args.emotion_weight).to(device)).mean()
        fraction = (time.perf_counter() - run_started) / max(args.minutes * 60, 1e-6)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(args.lr, unet_step - first_step, warmup, fraction)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if ema is not None:
            ema.update(unet_step)
        unet_step += 1
        window.append(plain.item())
        if unet_step % 25 == 0:
            unet_losses.append((unet_step, unet_seconds_now(), sum(window) / len(window)))
            window.clear()
            print(f"unet step {unet_step} loss {unet_losses[-1][2]:.4f} ({unet_seconds_now() / 60:.1f} min)",
                  flush=True)
        if time.perf_counter() > next_checkpoint:
            export()
            next_checkpoint = time.perf_counter() + args.checkpoint_minutes * 60

    # 6. Save.
    unet.eval()
    text_encoder.eval()
    export(final=True)
    unet_seconds = unet_seconds_now()
    plot_losses(unet_losses, curves / "builtin_v4_unet_loss.png",
                "builtin v4 U-Net: v-prediction MSE on latents (mean of 25 steps)")
    print(f"done: VAE {vae_step} steps ({vae_seconds / 60:.1f} min), U-Net {unet_step} steps "
          f"({unet_seconds / 60:.1f} min); rendering {render_seconds / 60:.1f} min this run", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from stickerworld.train_builtin import add_arguments as shared_arguments

    parser = argparse.ArgumentParser(prog="python -m stickerworld.train_builtin_v4", description=__doc__.splitlines()[0])
    shared_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m stickerworld.train_builtin_v4 ...`: the same as `stickerbot train-builtin --arch v4`
    without the CLI's imports (the GPU script runs it on a machine with only the ML stack)."""
    args = build_parser().parse_args(argv)
    args.arch = "v4"
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
