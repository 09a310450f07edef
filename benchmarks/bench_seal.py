"""`stickerbot bench seal --json PATH`: TTF alone vs TTF + SEAL, measured side by side.

On the configured model (`load_backbone(RuntimeSettings())`: the trained builtin
model when it is installed, else the builtin architecture with random weights — the
JSON says which), with a reference made in code: a round character with a face on a
striped "beach" background, and its exact mask.

Figures:
- `timing`: per-step time (median over steps, first step of each run dropped) and
  peak resident memory of TTF alone and TTF + SEAL, repeats interleaved (ABBA order)
  so drift of the machine hits both; the ratio SEAL / TTF.
  Memory is the rise of the process's peak RSS (Linux `VmHWM`, reset through
  `/proc/self/clear_refs` after `malloc_trim`) during the run, not tracemalloc, which
  does not see torch's allocations.
- `share`: inside-mask share of the concept's attention after adaptation (raw
  probabilities, mean over heads, timesteps and layers; on the constrained layers and
  on all cross-attention layers), TTF vs SEAL, with the eval loss and steps to
  convergence of each.
- `forms` (full run only): the attention loss forms and weights, and the masked
  diffusion loss, each against the same TTF run.
- `k_sweep`: k in {1, 2, 4, 8} with SEAL on.
- `lora` (full run only): the same comparison on the second TTF base.

Steps to convergence: the eval loss (diffusion loss of the merged concept on a fixed
set of noise draws and timesteps) is measured every few steps; convergence is the
first measured step that has reached 90 % of the run's total drop from the start.
"""

from __future__ import annotations

import ctypes
import json
import logging
import platform
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

log = logging.getLogger(__name__)

TTF_PROMPT = "a sticker of {}"


# -- the reference -------------------------------------------------------------------------
def synthetic_reference(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 3, size, size) in [-1, 1] and its (1, 1, size, size) subject mask."""
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    body = ((ys - 0.55) ** 2 + (xs - 0.48) ** 2) < 0.26**2
    eyes = (((ys - 0.48) ** 2 + (xs - 0.40) ** 2) < 0.035**2) | (((ys - 0.48) ** 2 + (xs - 0.56) ** 2) < 0.035**2)
    sky = torch.stack([0.45 + 0.1 * ys, 0.7 + 0.1 * ys, 0.95 + 0 * ys])
    sand = torch.stack([0.93 + 0 * ys, 0.82 + 0.05 * torch.sin(xs * 40), 0.55 + 0 * ys])
    background = torch.where(ys < 0.6, sky, sand) + 0.08 * torch.sin(xs * 25 + ys * 9)
    character = torch.stack([0.95 + 0 * ys, 0.55 + 0.1 * ys, 0.2 + 0 * ys])
    character = torch.where(eyes, torch.zeros_like(character), character)
    mask = body.float()
    image = torch.where(body, character, background).clamp(0, 1)
    return (image * 2 - 1).unsqueeze(0), mask[None, None]


# -- memory --------------------------------------------------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakRss:
    """Rise of the peak resident set size during a block (Linux); None elsewhere."""

    def __enter__(self):
        self.kib = None
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            Path("/proc/self/clear_refs").write_text("5")
            self.start = _status_kb("VmRSS")
        except OSError:
            self.start = None
        return self

    def __exit__(self, *exc):
        peak = _status_kb("VmHWM")
        if self.start is not None and peak is not None:
            self.kib = peak - self.start


# -- one adaptation with its measurements ---------------------------------------------------
class _Probe:
    """LossTerm that adds nothing: snapshots the vectors every `every` steps."""

    name = "probe"

    def __init__(self, every: int) -> None:
        self.every = every
        self.snapshots: dict[int, torch.Tensor] = {}

    def attach(self, backbone, token_ids):
        pass

    def __call__(self, context):
        if context.step % self.every == 0:
            self.snapshots[context.step] = context.vectors.detach().float().cpu().clone()
        return context.model_pred.new_zeros(())

    def detach(self):
        pass


def _eval_set(backbone, latents, count: int = 8, seed: int = 99):
    generator = torch.Generator("cpu").manual_seed(seed)
    noise = torch.randn((count, *latents.shape[1:]), generator=generator).to(latents.device, latents.dtype)
    steps = torch.linspace(50, backbone.noise_scheduler.config.num_train_timesteps - 50, count).long()
    return noise, steps.to(latents.device)


@torch.no_grad()
def eval_loss(backbone, vectors: torch.Tensor, latents, eval_set, lora_bytes: bytes | None = None) -> float:
    from seal_runtime.ttf.concept_tokens import (
        ensure_tokens,
        inject_concept,
        placeholder_tokens,
    )
    from seal_runtime.ttf.lora import lora_applied

    noise, steps = eval_set
    tokens = placeholder_tokens(vectors.shape[0])
    ids = ensure_tokens(backbone, tokens)
    with inject_concept(backbone, ids, vectors.to(backbone.device)):
        text = backbone.encode_prompts([TTF_PROMPT.format(" ".join(tokens))] * len(steps))
    with lora_applied(backbone, lora_bytes):
        noisy = backbone.noise_scheduler.add_noise(latents.expand(len(steps), -1, -1, -1), noise, steps)
        pred = backbone.unet(noisy, steps, encoder_hidden_states=text).sample
    return float(torch.nn.functional.mse_loss(pred.float(), noise.float()))


@torch.no_grad()
def inside_shares(backbone, vectors, reference, mask, layers, lora_bytes: bytes | None = None) -> dict[str, float]:
    from seal_runtime.seal.attention_loss import measure_inside_share
    from seal_runtime.ttf.concept_tokens import (
        ensure_tokens,
        inject_concept,
        placeholder_tokens,
    )
    from seal_runtime.ttf.lora import lora_applied

    tokens = placeholder_tokens(vectors.shape[0])
    ids = ensure_tokens(backbone, tokens)
    prompts = [TTF_PROMPT.format(" ".join(tokens)), "a cute sticker of {}".format(" ".join(tokens))]
    with inject_concept(backbone, ids, vectors.to(backbone.device)), lora_applied(backbone, lora_bytes):
        measured = measure_inside_share(backbone, ids, prompts, reference, mask)
    constrained = [measured[layer.name] for layer in layers if layer.name in measured]
    return {"constrained_layers": sum(constrained) / len(constrained), "all_layers": measured["all"]}


def convergence_step(curve: list[tuple[int, float]]) -> int | None:
    """First step that reached 90 % of the total drop of the eval loss; None if it never dropped."""
    start = curve[0][1]
    best = min(value for _, value in curve)
    if best >= start:
        return None
    for step, value in curve:
        if start - value >= 0.9 * (start - best):
            return step
    return None


def adapt_and_measure(backbone, reference, mask, settings, *, probe_every: int, layers, loss_terms=None) -> dict:
    from seal_runtime.seal.plugins import build_loss_terms
    from seal_runtime.seal.token_strategy import SplitMergeTokens
    from seal_runtime.ttf.adaptation import adapt_concept
    from seal_runtime.ttf.lora import lora_to_bytes

    probe = _Probe(probe_every)
    stamps: list[float] = []
    with PeakRss() as rss:
        result = adapt_concept(
            backbone, reference, mask, settings,
            loss_terms=[*(build_loss_terms(settings, backbone) if loss_terms is None else loss_terms), probe],
            on_step=lambda i, n, loss: stamps.append(time.perf_counter()),
        )
    lora_bytes = None
    if "lora" in result.extra_state:
        lora_bytes = lora_to_bytes(result.extra_state["lora"], {"rank": result.extra_state["lora_rank"]})
    latents = backbone.encode_images(reference)
    evals = _eval_set(backbone, latents)
    strategy = SplitMergeTokens(settings.num_tokens, settings.merge_rule)
    snapshots = dict(probe.snapshots)
    snapshots[result.steps] = result.learned_vectors
    # Intermediate LoRA weights are not snapshotted: the curve of a LoRA run follows the
    # tokens under the final LoRA weights, so only its end point is exact.
    curve = [(step, eval_loss(backbone, strategy.merge(v), latents, evals, lora_bytes)) for step, v in sorted(snapshots.items())]
    step_times = [b - a for a, b in zip(stamps, stamps[1:])]
    return {
        "per_step_s": statistics.median(step_times) if step_times else result.seconds / max(1, result.steps),
        "peak_rss_rise_mib": None if rss.kib is None else round(rss.kib / 1024, 1),
        "share_inside_mask": inside_shares(backbone, result.vectors, reference, mask, layers, lora_bytes),
        "share_inside_mask_learned_tokens": inside_shares(backbone, result.learned_vectors, reference, mask, layers, lora_bytes)
        if settings.num_tokens > 1 else None,
        "eval_loss_curve": [[s, round(v, 5)] for s, v in curve],
        "eval_loss_final": round(curve[-1][1], 5),
        # k > 1: the k learned tokens used side by side (the "concat" merge) instead of merged.
        "eval_loss_learned_tokens": round(eval_loss(backbone, result.learned_vectors, latents, evals, lora_bytes), 5)
        if settings.num_tokens > 1 else None,
        "steps_to_convergence": convergence_step(curve),
        "final_train_loss": round(result.losses[-1], 5),
        "vector_norm": round(float(result.vectors.norm(dim=-1).mean()), 4),
    }


# -- timing, side by side ------------------------------------------------------------------
def timing(backbone, reference, mask, configs: dict, *, repeats: int, steps: int) -> dict:
    """Per-step time of each config; configs after the first are compared with it.

    Each repeat runs every config once, back to back (ABBA order), and the ratio is
    taken within the repeat, between runs that saw the same machine state; the
    reported ratio is the median over repeats (other work on a shared machine shifts
    both runs of a pair, not their ratio)."""
    from seal_runtime.seal.plugins import build_loss_terms
    from seal_runtime.ttf.adaptation import adapt_concept

    names = list(configs)
    per_run = {name: [] for name in names}  # median wall time per step of each run
    per_run_cpu = {name: [] for name in names}  # the same in process CPU time
    per_step = {name: [] for name in names}
    memory = {name: [] for name in names}
    for repeat in range(repeats):
        order = names if repeat % 2 == 0 else names[::-1]  # ABBA: drift hits both
        for name in order:
            settings = replace(configs[name], steps=steps)
            stamps: list[tuple[float, float]] = []
            with PeakRss() as rss:
                adapt_concept(backbone, reference, mask, settings, loss_terms=build_loss_terms(settings, backbone),
                              on_step=lambda i, n, loss: stamps.append((time.perf_counter(), time.process_time())))
            # The first step (warm-up) is dropped.
            wall = [b[0] - a[0] for a, b in zip(stamps, stamps[1:])]
            cpu = [b[1] - a[1] for a, b in zip(stamps, stamps[1:])]
            per_step[name].extend(wall)
            per_run[name].append(statistics.median(wall))
            per_run_cpu[name].append(statistics.median(cpu))
            if rss.kib is not None:
                memory[name].append(rss.kib / 1024)
    figures = {
        name: {
            "per_step_ms_median": round(1000 * statistics.median(times), 2),
            "per_step_ms_mean": round(1000 * statistics.fmean(times), 2),
            "per_step_cpu_ms_median": round(1000 * statistics.median(per_run_cpu[name]), 2),
            "steps_timed": len(times),
            "peak_rss_rise_mib_median": round(statistics.median(memory[name]), 1) if memory[name] else None,
        }
        for name, times in per_step.items()
    }
    base = names[0]
    for name in names[1:]:
        ratios = [b / a for a, b in zip(per_run[base], per_run[name])]
        cpu_ratios = [b / a for a, b in zip(per_run_cpu[base], per_run_cpu[name])]
        figures[f"{name}_over_{base}_time_ratio"] = round(statistics.median(ratios), 4)
        figures[f"{name}_over_{base}_time_ratios_per_repeat"] = [round(r, 4) for r in ratios]
        figures[f"{name}_over_{base}_cpu_time_ratio"] = round(statistics.median(cpu_ratios), 4)
        if memory[base] and memory[name]:
            figures[f"{name}_over_{base}_peak_rss_ratio"] = round(
                statistics.median(memory[name]) / max(1e-6, statistics.median(memory[base])), 4)
    return figures


def _progress(message: str, figures: dict | None = None, json_path: str | None = None) -> None:
    """Say what runs next; with a path, also save what was measured so far (a long run
    that gets interrupted keeps its finished sections)."""
    print(f"[bench seal] {message}", file=sys.stderr, flush=True)
    if figures is not None and json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps({**figures, "partial": True}, indent=2) + "\n")


# -- the benchmark ---------------------------------------------------------------------------
def run(args) -> int:
    from seal_runtime.api.config import AdaptationSettings, RuntimeSettings
    from seal_runtime.models.loader import load_backbone
    from seal_runtime.seal.attention_capture import cross_attention_layers
    from seal_runtime.seal.layer_selection import describe, select_layers

    quick = bool(getattr(args, "quick", False))
    json_path = getattr(args, "json_path", None)
    repeats = getattr(args, "repeats", None) or (3 if quick else 6)
    started = time.perf_counter()
    torch.manual_seed(0)
    backbone = load_backbone(RuntimeSettings())
    reference, mask = synthetic_reference(backbone.resolution)

    # The protocol the README's figures were measured with: one token merged by mean,
    # FastComposer's loss on the deep layers, 60 steps (fixed, whatever the defaults become).
    seal = AdaptationSettings(steps=60, num_tokens=1, merge_rule="mean").with_attention_loss()
    if quick:
        seal = replace(seal, steps=16, batch_size=1)
    ttf = seal.without_seal()
    probe_every = 4 if quick else 5
    all_layers = cross_attention_layers(backbone.unet, backbone.latent_size)
    layers = select_layers(all_layers, seal.attention_layers)

    figures: dict = {
        "benchmark": "seal",
        "quick": quick,
        "model_id": backbone.model_id,
        "random_weights": backbone.model_id.startswith("builtin-random"),
        "device": str(backbone.device),
        "dtype": str(backbone.dtype),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "python": sys.version.split()[0],
        "gpu": "not measured: no GPU was available to this run" if not torch.cuda.is_available() else torch.cuda.get_device_name(),
        "settings_seal": asdict(seal),
        "settings_ttf": asdict(ttf),
        "constrained_layers": describe(layers),
        "all_cross_attention_layers": describe(all_layers),
        "memory_measure": "rise of peak RSS (VmHWM after clear_refs and malloc_trim)",
    }

    _progress(f"timing TTF vs TTF+SEAL, {repeats} interleaved repeats")
    figures["timing"] = timing(backbone, reference, mask, {"ttf": ttf, "seal": seal},
                               repeats=repeats, steps=8 if quick else 12)
    _progress("inside-mask share after adaptation", figures, json_path)
    figures["share"] = {
        "ttf": adapt_and_measure(backbone, reference, mask, ttf, probe_every=probe_every, layers=layers),
        "seal": adapt_and_measure(backbone, reference, mask, seal, probe_every=probe_every, layers=layers),
    }

    if not quick:
        from seal_runtime.seal.attention_loss import (
            SpatialAttentionLoss,
            break_a_scene_mse,
        )

        _progress("loss forms and weights", figures, json_path)
        forms = {}
        for weight in (0.01, 0.1, 1.0):
            forms[f"break_a_scene_mse_l{weight:g}"] = (
                ttf, [SpatialAttentionLoss(break_a_scene_mse, weight, seal.attention_layers)])
        for weight in (0.01, 0.1, 1.0):
            forms[f"fastcomposer_l{weight:g}"] = (
                replace(ttf, attention_loss="fastcomposer", attention_loss_weight=weight), None)
        forms["seal_all_layers"] = (replace(seal, attention_layers=("all",)), None)
        forms["seal_plus_masked_diffusion"] = (replace(seal, masked_diffusion_loss=True), None)
        forms["masked_diffusion_only"] = (replace(ttf, masked_diffusion_loss=True), None)
        figures["forms"] = {
            name: adapt_and_measure(backbone, reference, mask, settings, probe_every=probe_every, layers=layers,
                                    loss_terms=terms)
            for name, (settings, terms) in forms.items()
        }

    _progress("k sweep", figures, json_path)
    sweep_settings = replace(seal, steps=8) if quick else seal
    figures["k_sweep"] = {
        str(k): adapt_and_measure(backbone, reference, mask, replace(sweep_settings, num_tokens=k),
                                  probe_every=probe_every, layers=layers)
        for k in (1, 2, 4, 8)
    }

    if not quick:
        _progress("LoRA base", figures, json_path)
        lora_ttf = replace(ttf, method="lora")
        lora_seal = replace(seal, method="lora")
        figures["lora"] = {
            "timing": timing(backbone, reference, mask, {"ttf": lora_ttf, "seal": lora_seal}, repeats=4, steps=8),
            "ttf": adapt_and_measure(backbone, reference, mask, lora_ttf, probe_every=probe_every, layers=layers),
            "seal": adapt_and_measure(backbone, reference, mask, lora_seal, probe_every=probe_every, layers=layers),
        }

    if torch.cuda.is_available():
        _progress("SD-1.5 architecture, 512 px, fp16, random weights, on the GPU", figures, json_path)
        figures["sd15_gpu"] = sd15_gpu_timing(seal, repeats=3 if quick else 5, steps=6 if quick else 12)

    figures["seconds"] = round(time.perf_counter() - started, 1)
    print(render_table(figures))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def sd15_gpu_timing(seal, *, repeats: int, steps: int) -> dict:
    """TTF vs TTF + SEAL per-step time and peak GPU memory on SD 1.5's architecture (random
    weights: timing does not depend on their values), fp16, 512 px, batch 1."""
    from seal_runtime.models.sd15_architecture import sd15_random_backbone
    from seal_runtime.seal.plugins import build_loss_terms
    from seal_runtime.ttf.adaptation import adapt_concept

    device = torch.device("cuda")
    backbone = sd15_random_backbone(device, torch.float16)
    reference, mask = synthetic_reference(backbone.resolution)
    seal = replace(seal, batch_size=1)
    configs = {"ttf": seal.without_seal(), "seal": seal}
    figures = timing(backbone, reference, mask, configs, repeats=repeats, steps=steps)
    for name, settings in configs.items():  # peak memory of one run each, measured alone
        torch.cuda.reset_peak_memory_stats(device)
        adapt_concept(backbone, reference, mask, replace(settings, steps=3),
                      loss_terms=build_loss_terms(settings, backbone))
        figures[name]["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    figures["device"] = torch.cuda.get_device_name(device)
    figures["model"] = backbone.model_id
    return figures


def _share(run_figures: dict, which: str) -> str:
    return f"{run_figures['share_inside_mask'][which]:.4f}"


def render_table(figures: dict) -> str:
    """The markdown tables docs/seal.md shows."""
    timing_figures = figures["timing"]
    lines = [
        f"model: {figures['model_id']} ({'random weights' if figures['random_weights'] else 'trained'}), "
        f"{figures['device']} {figures['dtype']}, {figures['torch_threads']} threads, quick={figures['quick']}",
        "",
        "| run | per step (ms, median) | peak RSS rise (MiB) | inside-mask share, constrained layers | all layers "
        "| eval loss | steps to converge |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("ttf", "seal"):
        run_figures = figures["share"][name]
        lines.append(
            f"| {name} | {timing_figures[name]['per_step_ms_median']} | {timing_figures[name]['peak_rss_rise_mib_median']} "
            f"| {_share(run_figures, 'constrained_layers')} | {_share(run_figures, 'all_layers')} "
            f"| {run_figures['eval_loss_final']} | {run_figures['steps_to_convergence']} |"
        )
    lines.append(
        f"\nSEAL / TTF per-step wall time: {timing_figures['seal_over_ttf_time_ratio']} (median of per-repeat ratios "
        f"{timing_figures['seal_over_ttf_time_ratios_per_repeat']}); CPU time: {timing_figures['seal_over_ttf_cpu_time_ratio']}; "
        f"peak RSS: {timing_figures.get('seal_over_ttf_peak_rss_ratio')}"
    )
    if "forms" in figures:
        lines += ["", "| variant | inside share, constrained | all layers | eval loss | steps to converge |",
                  "|---|---|---|---|---|"]
        for name, run_figures in figures["forms"].items():
            lines.append(
                f"| {name} | {_share(run_figures, 'constrained_layers')} | {_share(run_figures, 'all_layers')} "
                f"| {run_figures['eval_loss_final']} | {run_figures['steps_to_convergence']} |"
            )
    lines += ["", "| k | inside share, constrained (merged) | (k tokens) | eval loss merged | eval loss k tokens "
                  "| steps to converge |", "|---|---|---|---|---|---|"]
    for name, run_figures in figures["k_sweep"].items():
        learned = run_figures["share_inside_mask_learned_tokens"]
        lines.append(
            f"| {name} | {_share(run_figures, 'constrained_layers')} "
            f"| {'' if learned is None else format(learned['constrained_layers'], '.4f')} "
            f"| {run_figures['eval_loss_final']} | {run_figures['eval_loss_learned_tokens'] or ''} "
            f"| {run_figures['steps_to_convergence']} |"
        )
    if "lora" in figures:
        lora = figures["lora"]
        lines += ["", "| LoRA base | per step (ms) | inside share, constrained | all layers | eval loss |",
                  "|---|---|---|---|---|"]
        for name in ("ttf", "seal"):
            lines.append(
                f"| lora {name} | {lora['timing'][name]['per_step_ms_median']} "
                f"| {_share(lora[name], 'constrained_layers')} | {_share(lora[name], 'all_layers')} "
                f"| {lora[name]['eval_loss_final']} |"
            )
        lines.append(f"\nLoRA SEAL / TTF per-step time: {lora['timing']['seal_over_ttf_time_ratio']}")
    if "sd15_gpu" in figures:
        gpu = figures["sd15_gpu"]
        lines += ["", f"SD-1.5 architecture (random weights), 512 px, fp16, on {gpu['device']}:", "",
                  "| run | per step (ms, median) | peak GPU memory (MiB) |", "|---|---|---|"]
        for name in ("ttf", "seal"):
            lines.append(f"| {name} | {gpu[name]['per_step_ms_median']} | {gpu[name].get('peak_cuda_mib')} |")
        lines.append(f"\nSEAL / TTF per-step time on the GPU: {gpu['seal_over_ttf_time_ratio']} (target <= 1.15)")
    lines.append(f"\n{figures['gpu']}; {figures['seconds']} s in all")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m benchmarks.bench_seal [--quick] [--json PATH]
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--json", dest="json_path")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int)
    raise SystemExit(run(parser.parse_args()))
