"""`stickerbot bench <name> --json PATH`: each benchmark lives in its own module and
writes its figures as JSON (speed targets are measured here, not in timed tests)."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

BENCHMARKS = {
    "perf": ("benchmarks.bench_perf", "end-to-end timings on the builtin model; bot-layer overhead"),
    "seal": ("benchmarks.bench_seal", "TTF vs TTF+SEAL: per-step time, memory, attention share, k sweep"),
    "quality": ("benchmarks.bench_quality", "StickerWorld quality: identity, attributes, leakage, rigidity"),
    "telegram": ("benchmarks.bench_telegram", "commands/s and latency of the Telegram adapter vs a fake Bot API"),
    "reliability": ("benchmarks.bench_reliability", "kills, restarts, fuzzing and a soak: nothing lost or doubled"),
    "scale": ("benchmarks.bench_scale", "1, 2, 4, 8 GPU workers through Redis: throughput, queue wait, bot CPU"),
    "gpu": ("benchmarks.bench_gpu", "SD-1.5 architecture at 512 px: adaptation TTF vs SEAL, samplers, batch, "
                                    "VRAM, end to end (a tiny smoke test on a CPU)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(BENCHMARKS), help="; ".join(f"{k}: {v[1]}" for k, v in BENCHMARKS.items()))
    parser.add_argument("--json", dest="json_path", help="write the figures to this JSON file")
    parser.add_argument("--quick", action="store_true", help="a small, fast run (used by the tests)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--clip", help="quality: also score CLIP-I and CLIP-T with the CLIP model in this folder")
    parser.add_argument("--workers", type=int, default=None,
                        help="quality: processes scoring configurations side by side (default: 2, 1 with --quick)")
    parser.add_argument("--dino", help="quality: also score DINO similarity with the DINO model in this folder")
    parser.add_argument("--model", help="quality: the model to measure (default: runtime.model's default, builtin)")
    parser.add_argument("--identities", type=int, default=None,
                        help="quality: held-out identities (default 8, 2 with --quick)")
    parser.add_argument("--ablations", action="store_true",
                        help="quality: also each SEAL component removed, and the k sweep")
    parser.add_argument("--seeds", type=int, default=None, help="quality: adaptation seeds (default 3, 2 with --quick)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="quality: an adaptation setting for every adapted row, e.g. --set reference_views=8")


def report(figures: dict, json_path: str | None) -> None:
    """Print a benchmark's figures, and write them to `json_path` when given."""
    text = json.dumps(figures, indent=2)
    print(text)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(text + "\n")


def run(args) -> int:
    module_name, _ = BENCHMARKS[args.name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        print(f"benchmark {args.name!r} is not available in this build ({exc.name} missing)")
        return 2
    return module.run(args)
