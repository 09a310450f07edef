"""`stickerbot bench gpu --json PATH`: what a sticker costs on Stable Diffusion 1.5's architecture.

On a CUDA GPU: SD 1.5's U-Net, VAE and text encoder with random weights (timing does not
depend on the weights' values) at 512 px in fp16. On a CPU (or with --quick) the same
architecture at 1/40 of its width with a few steps: a smoke test of the code path, its
figures say nothing about a GPU. Figures:

- `adaptation`: ms per adaptation step, textual inversion alone vs with SEAL's attention
  loss (ratio; target <= 1.15), at the SD profile's batch size; peak VRAM (target <= 8 GiB).
- `generation`: ms per sticker for DDIM 20, DPM++ 2M Karras 15 and LCM 4 steps, 4
  candidates in one batch vs one at a time (2 in the smoke test), eager and (CUDA)
  torch.compile'd.
- `end_to_end`: through the real HTTP runtime child and the bot's worker, with the model
  saved as a diffusers folder: the first sticker (adaptation with the SD defaults
  included; target <= 10 s) and a cached one (target <= 0.5 s; LCM <= 0.2 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

TARGETS = {"seal_step_ratio": 1.15, "adaptation_vram_gib": 8.0, "first_sticker_s": 10.0,
           "cached_sticker_s": 0.5, "cached_sticker_lcm_s": 0.2}
SAMPLERS = (("ddim", 20), ("dpmpp_2m_karras", 15), ("lcm", 4))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(device, fn, repeats: int, warm_up: bool = True) -> float:
    """Median seconds of `fn()` over `repeats` runs (after one warm-up run)."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure_adaptation(backbone, steps: int, batch: int) -> dict:
    from benchmarks.bench_seal import synthetic_reference
    from seal_runtime.api.config import AdaptationSettings
    from seal_runtime.seal.plugins import build_loss_terms
    from seal_runtime.ttf.adaptation import adapt_concept

    reference, mask = synthetic_reference(backbone.resolution)
    figures = {}
    for name, settings in (("ttf", AdaptationSettings(steps=steps, batch_size=batch, plateau_every=0)),
                           ("ttf_seal", AdaptationSettings(steps=steps, batch_size=batch,
                                                           plateau_every=0).with_attention_loss())):
        stamps: list[float] = []

        def stamp(i, n, loss):
            _sync(backbone.device)
            stamps.append(time.perf_counter())

        if backbone.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        adapt_concept(backbone, reference, mask, settings, loss_terms=build_loss_terms(settings, backbone),
                      on_step=stamp)
        per_step = statistics.median(b - a for a, b in zip(stamps, stamps[1:])) if len(stamps) > 1 else None
        figures[f"{name}_step_ms"] = None if per_step is None else round(per_step * 1000, 1)
        figures[f"{name}_peak_vram_gib"] = (round(torch.cuda.max_memory_allocated() / 2**30, 2)
                                           if backbone.device.type == "cuda" else None)
    if figures["ttf_step_ms"] and figures["ttf_seal_step_ms"]:
        figures["seal_step_ratio"] = round(figures["ttf_seal_step_ms"] / figures["ttf_step_ms"], 3)
    figures["batch_size"] = batch
    return figures


def measure_generation(backbone, quick: bool, repeats: int) -> dict:
    from seal_runtime.sampling import sample

    rows = []
    compiled = [False]
    if backbone.device.type == "cuda" and not quick:
        compiled.append(True)
    for use_compile in compiled:
        backbone.compiled_unet = torch.compile(backbone.unet, mode="max-autotune-no-cudagraphs") if use_compile else None
        for scheduler, steps in SAMPLERS:
            steps = 2 if quick else steps
            for batch in (1, 2) if quick else (1, 4):
                def run():
                    sample(backbone, ["a cute sticker of a happy character"] * batch, steps=steps,
                           scheduler=scheduler, generator=[torch.Generator().manual_seed(i) for i in range(batch)])
                seconds = _timed(backbone.device, run, repeats, warm_up=not quick)
                rows.append({"scheduler": scheduler, "steps": steps, "batch": batch, "compiled": use_compile,
                             "ms_per_sticker": round(seconds / batch * 1000, 1)})
    backbone.compiled_unet = None
    return {"rows": rows}


def measure_end_to_end(width: float, quick: bool, args) -> dict:
    from adapters.cli.commands import SAMPLE_REFERENCE, _with_local_runtime
    from adapters.console import ConsoleSink
    from bot.messages import UserRef
    from bot.settings import load_settings
    from seal_runtime.models.sd15_architecture import save_sd15_test_model

    with tempfile.TemporaryDirectory() as tmp:
        folder = save_sd15_test_model(Path(tmp) / "sd15", width=width)
        settings = load_settings(getattr(args, "config", None))
        if quick:
            settings = replace(settings, adaptation=replace(settings.adaptation, steps=2),
                               generation=replace(settings.generation, steps=2))
        settings = replace(settings, general=replace(settings.general, database=str(Path(tmp) / "bench.sqlite")))
        sink = ConsoleSink(Path(tmp) / "out", print_fn=lambda *a: None)

        async def body(service, client, make_worker):
            worker = make_worker(sink)
            user = UserRef("console", "bench", "bench")
            service.set_reference(user, SAMPLE_REFERENCE.read_bytes())
            runs = []
            for index in range(3):
                started = time.perf_counter()
                service.request_sticker(user, "happy waving", chat={}, seed=index)
                while await worker.run_once():
                    pass
                runs.append({"seconds": time.perf_counter() - started, **worker.last_timings})
            return runs

        # The runtime child reads its settings from the environment it inherits: set the
        # model there for the run only.
        previous = os.environ.get("STICKERBOT_RUNTIME__MODEL")
        os.environ["STICKERBOT_RUNTIME__MODEL"] = str(folder)
        try:
            runs = asyncio.run(_with_local_runtime(settings, getattr(args, "config", None), body, Path(tmp) / "out",
                                                      quiet=True))
        finally:
            if previous is None:
                os.environ.pop("STICKERBOT_RUNTIME__MODEL", None)
            else:
                os.environ["STICKERBOT_RUNTIME__MODEL"] = previous
    first, cached = runs[0], runs[1:]
    return {"first_sticker_s": round(first["seconds"], 3), "first_adapted": bool(first.get("adapted")),
            "adaptation_steps": first.get("adapt_s") and round(first["adapt_s"] / max(first["adapt_step_s"], 1e-9)),
            "cached_sticker_s": round(statistics.median(r["seconds"] for r in cached), 3),
            "cached_adapted": sum(bool(r.get("adapted")) for r in cached)}


def run(args) -> int:
    from seal_runtime.models.device import pick_device
    from seal_runtime.models.sd15_architecture import (
        TEST_MODEL_WIDTH,
        sd15_random_backbone,
    )

    device = pick_device("auto")
    on_gpu = device.type == "cuda"
    quick = args.quick or not on_gpu
    width = TEST_MODEL_WIDTH if quick else 1.0
    dtype = torch.float16 if on_gpu else torch.float32
    repeats = args.repeats or (1 if quick else 3)
    backbone = sd15_random_backbone(device, dtype, width=width)
    backbone.freeze()
    figures = {
        "device": torch.cuda.get_device_name() if on_gpu else "cpu",
        "smoke_test_only": quick,
        "width": width, "dtype": str(dtype).removeprefix("torch."), "resolution": backbone.resolution,
        "adaptation": measure_adaptation(backbone, steps=3 if quick else 12, batch=1 if quick else 4),
        "generation": measure_generation(backbone, quick, repeats),
        "targets": TARGETS,
    }
    del backbone
    figures["end_to_end"] = measure_end_to_end(width, quick, args)
    print(json.dumps(figures, indent=2))
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(figures, indent=2) + "\n")
    return 0
