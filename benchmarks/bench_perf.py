"""`stickerbot bench perf`: where the time of a sticker goes, on the builtin model.

Runs the real path (bot service -> SQLite job -> worker -> runtime child process over
HTTP) and reports adaptation time per step, generation time per sticker, first
request vs cache hit, sticker formatting time, and the bot layer's own overhead
(end-to-end minus the runtime's compute); and the CPU the runtime spends per 512 px
sticker after sampling (cut-out, labelling, PNG: benchmarks/sticker_cpu.py).
"""

from __future__ import annotations

import asyncio
import io
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from PIL import Image

from adapters.cli.commands import SAMPLE_REFERENCE, _with_local_runtime
from adapters.console import ConsoleSink
from bot.messages import UserRef
from bot.settings import load_settings
from bot.sticker_spec import to_telegram_sticker


def run(args) -> int:
    settings = load_settings(getattr(args, "config", None))
    repeats = args.repeats or (2 if args.quick else 5)
    if args.quick:
        settings = replace(settings, adaptation=replace(settings.adaptation, steps=3),
                           generation=replace(settings.generation, steps=3))
    with tempfile.TemporaryDirectory() as tmp:
        settings = replace(settings, general=replace(settings.general, database=str(Path(tmp) / "bench.sqlite")))
        sink = ConsoleSink(Path(tmp) / "out", print_fn=lambda *a: None)
        figures = asyncio.run(_with_local_runtime(settings, getattr(args, "config", None),
                                                  lambda s, c, w: _measure(s, w(sink), sink, repeats), Path(tmp) / "out",
                                                  quiet=True))
    from benchmarks.sticker_cpu import sticker_cpu_ms

    figures["finish_512px"] = sticker_cpu_ms(repeats=3 if args.quick else 7)
    figures["settings"] = {"adaptation_steps": settings.adaptation.resolved().steps,
                           "sampling_steps": settings.generation.steps, "repeats": repeats}
    print(json.dumps(figures, indent=2))
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


async def _measure(service, worker, sink, repeats: int) -> dict:
    user = UserRef("console", "bench", "bench")
    service.set_reference(user, SAMPLE_REFERENCE.read_bytes())
    runs = []
    for i in range(repeats + 1):
        started = time.perf_counter()
        enqueue_started = time.perf_counter()
        queued = service.request_sticker(user, "happy waving beach", chat={}, seed=i)
        enqueue_s = time.perf_counter() - enqueue_started
        while await worker.run_once():
            pass
        runs.append({**worker.last_timings, "enqueue_s": enqueue_s, "end_to_end_s": time.perf_counter() - started,
                     "format_s": sink.format_seconds.get(queued.job_id, 0.0)})
    first, hits = runs[0], runs[1:]
    sticker_png = next(iter(sink.delivered.values()))  # one delivered file, re-read as a master image
    image = Image.open(io.BytesIO(Path(sticker_png[0]).read_bytes())).convert("RGBA")
    format_times = []
    for _ in range(5):
        started = time.perf_counter()
        to_telegram_sticker(image)
        format_times.append(time.perf_counter() - started)
    # End-to-end minus what the runtime computed (mask, adaptation, sampling) and minus
    # the platform formatting (reported on its own): the bot layer, SQLite, HTTP, JSON.
    overheads = [r["end_to_end_s"] - r.get("mask_s", 0) - r.get("adapt_s", 0) - r.get("generate_s", 0) - r["format_s"]
                 for r in runs]
    worker_only = [r["bot_overhead_s"] + r["enqueue_s"] for r in runs]
    median_hit = statistics.median(r["end_to_end_s"] for r in hits)
    return {
        "model_id": await worker.model_id(),
        "adaptation_step_ms": round(first.get("adapt_step_s", 0) * 1000, 1),
        "adaptation_total_s": round(first.get("adapt_s", 0), 2),
        "generation_per_sticker_s": round(statistics.median(r["generate_per_image_s"] for r in runs), 3),
        "first_request_s": round(first["end_to_end_s"], 3),
        "cache_hit_request_s": round(median_hit, 3),
        "first_over_cache_hit_ratio": round(first["end_to_end_s"] / median_hit, 2),
        "cache_hits_adapted": sum(bool(r.get("adapted")) for r in hits),
        "telegram_format_ms": round(statistics.median(format_times) * 1000, 1),
        "bot_overhead_ms_median": round(statistics.median(overheads) * 1000, 1),
        "bot_overhead_ms_max": round(max(overheads) * 1000, 1),
        "bot_overhead_target_ms": 20,
        "bot_worker_ms_median": round(statistics.median(worker_only) * 1000, 1),
    }
