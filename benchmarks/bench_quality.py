"""`stickerbot bench quality`: does SEAL do what the paper claims, on StickerWorld?

N held-out identities, each with one reference rendered on a non-plain background,
x M prompts that vary the other attributes, x S adaptation seeds. Compared: plain
textual inversion (TTF alone), TTF + SEAL (the configured defaults with the attention
loss on), SEAL with each component ablated, and the split-token sweep k in {1, 2, 4, 8}
(plus the default k, which is the TTF + SEAL row). Every sticker is read back by the
StickerWorld recogniser:

- identity: agreement of shape, colour and pattern with the reference, and the
  cosine similarity of recogniser features (a CLIP-I/DINO-style score);
- attribute accuracy: requested emotion, action, background and composition;
- leakage: % of stickers showing the reference's background although another was asked;
- rigidity: % showing the reference's composition and action although another was asked.
- with `--clip PATH` / `--dino PATH`: CLIP-I, CLIP-T and DINO similarity computed with
  those local transformers models (stickerworld/feature_similarity.py).

Intervals are mean +- 1.96 standard errors over seeds.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import torch

from bot.schema.prompt_builder import build_prompt
from bot.schema.sticker_request import StickerRequest

REFERENCE_BACKGROUNDS = ("beach", "forest", "night sky", "city", "room")
PROMPTS = (  # (emotion, action, composition, background): pose and framing differ from the reference's
    ("sad", "sitting", "close up", "plain"),
    ("angry", "thumbs up", "upper body", "city"),
    ("love", "jumping", "wide shot", "forest"),
    ("surprised", "waving", "full body", "night sky"),
    ("sleepy", "dancing", "upper body", "room"),
    ("happy", "jumping", "close up", "beach"),
)


def configurations(base):
    """Each setting once: the k sweep's k=1 is "SEAL - split tokens", its k = the default is "TTF + SEAL"."""
    seal = base.with_attention_loss()
    configs = {
        "TTF alone": base.without_seal(),
        "TTF + SEAL": seal,
        "SEAL - attention loss": replace(seal, attention_loss="none"),
        "SEAL - layer restriction": replace(seal, attention_layers=("all",)),
        "SEAL - split tokens (k=1)": replace(seal, num_tokens=1),
    }
    for k in (2, 4, 8):
        if k != seal.num_tokens:
            configs[f"SEAL k={k}"] = replace(seal, num_tokens=k)
    return configs


def interval(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, 1.96 * statistics.stdev(values) / math.sqrt(len(values))


# What each process loads once: the model, the recogniser and the optional CLIP/DINO scorers.
_LOADED: dict = {}


def _load(clip_path: str | None, dino_path: str | None, threads: int | None) -> None:
    from seal_runtime.api.config import RuntimeSettings
    from seal_runtime.models.loader import load_backbone
    from stickerworld import recognition
    from stickerworld.feature_similarity import ClipScorer, DinoScorer

    if threads:
        torch.set_num_threads(threads)
    _LOADED.update(backbone=load_backbone(RuntimeSettings(device="cpu")), recognizer=recognition.load(),
                   clip=ClipScorer(clip_path) if clip_path else None,
                   dino=DinoScorer(dino_path) if dino_path else None)


def _score(settings, seed: int, identities, prompts, sampling_steps: int) -> dict[str, float]:
    """One configuration at one seed: adapt to each identity's reference, generate the prompts,
    read the stickers back. The mean of each metric over identities and prompts."""
    from seal_runtime.ttf.adaptation import adapt_concept
    from seal_runtime.ttf.concept_tokens import ensure_tokens, expand_prompt, inject_concept, placeholder_tokens
    from seal_runtime.engine import image_to_tensor, mask_to_tensor
    from seal_runtime.sampling import denoise, sample, to_pil_images
    from seal_runtime.seal.plugins import build_loss_terms
    from seal_runtime.imaging.subject_mask import compute_subject_mask
    from stickerworld import recognition
    from stickerworld.render import Scene, render

    backbone, recognizer, clip, dino = (_LOADED[k] for k in ("backbone", "recognizer", "clip", "dino"))
    readable = [build_prompt(StickerRequest(emotion=e, action=a, composition=c, background=b))
                for e, a, c, b in prompts]
    scores: dict[str, list[float]] = {m: [] for m in metric_names(clip, dino)}
    for index, identity in enumerate(identities):
        ref_scene = Scene(identity, "happy", "standing", "full body", "bold outline",
                          REFERENCE_BACKGROUNDS[index % len(REFERENCE_BACKGROUNDS)])
        reference, _ = render(ref_scene, 256, seed=index)
        mask, _ = compute_subject_mask(reference)
        result = adapt_concept(backbone, image_to_tensor(reference, backbone.resolution),
                               mask_to_tensor(mask, backbone.resolution), replace(settings, seed=seed),
                               loss_terms=build_loss_terms(settings, backbone))
        tokens = placeholder_tokens(result.vectors.shape[0])
        ids = ensure_tokens(backbone, tokens)
        texts = [expand_prompt(text, backbone, tokens) for text in readable]
        with inject_concept(backbone, ids, result.vectors):
            images = [denoise(image, backbone) for image in to_pil_images(
                sample(backbone, texts, steps=sampling_steps,
                       generator=torch.Generator().manual_seed(seed * 100 + index)))]
        predictions = recognition.predict(recognizer, images)
        if clip:
            scores["clip_i"] += clip.clip_i(images, reference)
            scores["clip_t"] += clip.clip_t(images, readable)
        if dino:
            scores["dino"] += dino.dino(images, reference)
        with torch.no_grad():
            similarity = (recognizer.embed(recognition.to_tensor(images))
                          @ recognizer.embed(recognition.to_tensor([reference])).T).squeeze(-1)
        for (e, a, c, b), got, sim in zip(prompts, predictions, similarity.tolist()):
            scores["identity"].append(statistics.fmean(
                [got["shape"] == identity.shape, got["colour"] == identity.colour,
                 got["pattern"] == identity.pattern]))
            scores["identity_similarity"].append(sim)
            scores["attributes"].append(statistics.fmean(
                [got["emotion"] == e, got["action"] == a, got["composition"] == c, got["background"] == b]))
            if b != ref_scene.background:  # asking for the reference's own background is not leakage
                scores["leakage"].append(float(got["background"] == ref_scene.background))
            scores["rigidity"].append(float(got["composition"] == "full body" and got["action"] == "standing"))
    return {metric: statistics.fmean(values) for metric, values in scores.items()}


def metric_names(clip, dino) -> list[str]:
    return (["identity", "identity_similarity", "attributes", "leakage", "rigidity"]
            + (["clip_i", "clip_t"] if clip else []) + (["dino"] if dino else []))


def run(args) -> int:
    from seal_runtime.api.config import AdaptationSettings
    from stickerworld.identities import held_out_identities

    quick = args.quick
    identities = held_out_identities()[:: 40 if quick else 12][: 1 if quick else 3]
    prompts = PROMPTS[: 2 if quick else len(PROMPTS)]
    seeds = (0, 1) if quick else (0, 1, 2)
    base = AdaptationSettings().resolved("builtin")  # the builtin model's tuned set
    if quick:
        base = replace(base, steps=4, batch_size=1)
    configs = configurations(base)
    if quick:
        configs = {k: v for k, v in configs.items() if k in ("TTF alone", "TTF + SEAL", "SEAL k=2")}
    sampling_steps = 4 if quick else 20
    clip_path, dino_path = getattr(args, "clip", None), getattr(args, "dino", None)
    # The tiny model's small ops leave a second core half idle (2 threads: 1.8 cores busy), so
    # on a 2-core CPU two processes of 1 thread each finish the same work ~1.5x sooner.
    workers = getattr(args, "workers", None) or (1 if quick else min(2, os.cpu_count() or 1))
    units = [(name, seed) for name in configs for seed in seeds]
    work = [(configs[name], seed, identities, prompts, sampling_steps) for name, seed in units]

    started = time.perf_counter()
    if workers == 1:
        _load(clip_path, dino_path, None)
        model_id = _model_id()
        results = (_score(*unit) for unit in work)
        pool = None
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_load, initargs=(clip_path, dino_path, threads))
        model_id = pool.submit(_model_id).result()  # before the work is queued, or it waits behind it
        results = pool.map(_score, *zip(*work))
    per_config: dict[str, dict[str, list[float]]] = {}
    try:
        for (name, seed), figures in zip(units, results):
            per_seed = per_config.setdefault(name, {})
            for metric, value in figures.items():
                per_seed.setdefault(metric, []).append(value)
            if seed == seeds[-1]:
                print(f"{name}: " + ", ".join(f"{m} {statistics.fmean(v):.3f}" for m, v in per_seed.items()),
                      flush=True)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    table = {name: {metric: dict(zip(("mean", "ci95"), interval(values))) for metric, values in metrics.items()}
             for name, metrics in per_config.items()}
    figures = {
        "model_id": model_id,
        "identities": len(identities),
        "prompts": len(prompts),
        "seeds": len(seeds),
        "adaptation_steps": base.steps,
        "sampling_steps": sampling_steps,
        "workers": workers,
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "table": table,
    }
    print(markdown_table(table))
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _model_id() -> str:
    return _LOADED["backbone"].model_id


def markdown_table(table: dict) -> str:
    extra = [m for m in ("clip_i", "clip_t", "dino") if m in next(iter(table.values()))]
    lines = ["| configuration | identity | identity sim. | attribute acc. | leakage | rigidity |"
             + "".join(f" {m.replace('_', '-').upper()} |" for m in extra),
             "|---|---|---|---|---|---|" + "---|" * len(extra)]
    for name, metrics in table.items():
        cells = []
        for metric in ("identity", "identity_similarity", "attributes", "leakage", "rigidity", *extra):
            mean, ci = metrics[metric]["mean"], metrics[metric]["ci95"]
            scale = 100 if metric in ("leakage", "rigidity") else 1
            fmt = "{:.0f} % ± {:.0f}" if scale == 100 else "{:.2f} ± {:.2f}"
            cells.append(fmt.format(mean * scale, ci * scale))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
