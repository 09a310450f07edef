"""`stickerbot bench quality`: does personalisation carry the character, and does SEAL do
what the paper claims, on StickerWorld?

N held-out identities (8 by default, chosen to spread shape, colour and pattern), each with
one reference rendered on a non-plain background, x M prompts that vary the other attributes,
x S adaptation seeds. Rows:

- *runtime default*: the adaptation the runtime runs for this model (its profile);
- *TTF alone* (plain textual inversion) and *TTF + SEAL* (the defaults, attention loss on);
- with `--ablations`: SEAL with each component removed, and the split-token sweep k in
  {1, 2, 4, 8};
- *explicit words*: no adaptation; the base model prompted with the identity's own words
  ("a round teal spotted character"): the most a text concept can carry on this model, and
  the base model's attribute accuracy;
- *chance*: the explicit-words stickers scored against the *other* identities' references:
  what identity agreement a sticker gets from a character it was not made from.

Every sticker is read back by the StickerWorld recogniser:

- identity: agreement of shape, colour and pattern with the reference (each reported, and
  their mean), and the cosine similarity of recogniser features (a CLIP-I/DINO-style score);
- attribute accuracy: requested emotion, action, background and composition;
- leakage: % of stickers showing the reference's background although another was asked;
- rigidity: % showing the reference's composition and action although another was asked.
- with `--clip PATH` / `--dino PATH`: CLIP-I, CLIP-T and DINO similarity computed with
  those local transformers models (stickerworld/feature_similarity.py).

Intervals are mean +- 1.96 standard errors over the (identity, seed) units: each unit is one
adaptation and its M stickers, so both the spread between characters and between seeds count.
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
IDENTITY_PARTS = ("shape", "colour", "pattern")
EXPLICIT_WORDS = "explicit words"
CHANCE = "chance"


def configurations(base, ablations: bool = True):
    """The adapted rows, each setting once. The runtime default comes first; an ablation that
    equals it is not run twice (`same_as_default` in the JSON names it)."""
    seal = base.with_attention_loss()
    configs = {"runtime default": base, "TTF alone": base.without_seal(), "TTF + SEAL": seal}
    if ablations:
        configs.update({
            "SEAL - attention loss": replace(seal, attention_loss="none"),
            "SEAL - layer restriction": replace(seal, attention_layers=("all",)),
            "SEAL - split tokens (k=1)": replace(seal, num_tokens=1),
        })
        for k in (2, 4, 8):
            if k != seal.num_tokens:
                configs[f"SEAL k={k}"] = replace(seal, num_tokens=k)
    return configs


def without_repeats(configs: dict) -> tuple[dict, dict[str, str]]:
    """(the configurations with later duplicates dropped, {dropped name: the name it equals})."""
    kept: dict = {}
    same: dict[str, str] = {}
    for name, settings in configs.items():
        twin = next((k for k, v in kept.items() if v == settings), None)
        if twin is None:
            kept[name] = settings
        else:
            same[name] = twin
    return kept, same


def spread_identities(pool, count: int):
    """`count` identities from `pool` that spread shape, colour and pattern: each next one is the
    first whose parts have been picked least often (held_out_identities() in its own order
    starts with eight round ones)."""
    from collections import Counter

    picked, seen = [], Counter()
    remaining = list(pool)
    while remaining and len(picked) < count:
        best = min(remaining, key=lambda i: sum(seen[(part, getattr(i, part))] for part in IDENTITY_PARTS))
        picked.append(best)
        remaining.remove(best)
        seen.update((part, getattr(best, part)) for part in IDENTITY_PARTS)
    return picked


def interval(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, 1.96 * statistics.stdev(values) / math.sqrt(len(values))


# What each process loads once: the model, the recogniser and the optional CLIP/DINO scorers.
_LOADED: dict = {}


def _load(model: str | None, clip_path: str | None, dino_path: str | None, threads: int | None) -> None:
    from seal_runtime.api.config import RuntimeSettings
    from seal_runtime.models.loader import load_backbone
    from stickerworld import recognition
    from stickerworld.feature_similarity import ClipScorer, DinoScorer

    if threads:
        torch.set_num_threads(threads)
    settings = RuntimeSettings(device="cpu") if model is None else RuntimeSettings(device="cpu", model=model)
    _LOADED.update(backbone=load_backbone(settings), recognizer=recognition.load(),
                   clip=ClipScorer(clip_path) if clip_path else None,
                   dino=DinoScorer(dino_path) if dino_path else None)


def identity_agreement(got: dict, identity) -> dict[str, float]:
    parts = {part: float(got[part] == getattr(identity, part)) for part in IDENTITY_PARTS}
    return {**parts, "identity": statistics.fmean(parts.values())}


def chance_agreement(predictions: list[dict], identity, identities) -> dict[str, float]:
    """How far `identity`'s stickers agree with every *other* identity of the bench, on average."""
    others = [other for other in identities if other != identity]
    pairs = [identity_agreement(got, other) for got in predictions for other in others]
    return {metric: statistics.fmean(p[metric] for p in pairs) for metric in (*IDENTITY_PARTS, "identity")}


def _score(settings, seed: int, identities, prompts, sampling_steps: int) -> dict[str, dict[str, list[float]]]:
    """One row at one seed: adapt to each identity's reference (or, for `settings=None`, prompt
    with the identity's own words), generate the prompts, read the stickers back.
    Returns {row: {metric: one mean per identity}}; the explicit-words row also yields chance."""
    from seal_runtime.engine import image_to_tensor, mask_to_tensor
    from seal_runtime.imaging.subject_mask import compute_subject_mask
    from seal_runtime.sampling import denoise, sample, to_pil_images
    from seal_runtime.seal.plugins import build_loss_terms
    from seal_runtime.ttf.adaptation import adapt_concept
    from seal_runtime.ttf.concept_tokens import ensure_tokens, expand_prompt, inject_concept, placeholder_tokens
    from stickerworld import recognition
    from stickerworld.render import Scene, render

    backbone, recognizer, clip, dino = (_LOADED[k] for k in ("backbone", "recognizer", "clip", "dino"))
    requests = [StickerRequest(emotion=e, action=a, composition=c, background=b) for e, a, c, b in prompts]
    readable = [build_prompt(request) for request in requests]
    rows: dict[str, dict[str, list[float]]] = {}

    def draw(texts: list[str], generator: torch.Generator) -> list:
        return [denoise(image, backbone) for image in to_pil_images(
            sample(backbone, texts, steps=sampling_steps, generator=generator))]

    def add(row: str, metric: str, per_sticker: list[float]) -> None:
        rows.setdefault(row, {}).setdefault(metric, []).append(statistics.fmean(per_sticker))

    for index, identity in enumerate(identities):
        ref_scene = Scene(identity, "happy", "standing", "full body", "bold outline",
                          REFERENCE_BACKGROUNDS[index % len(REFERENCE_BACKGROUNDS)])
        reference, _ = render(ref_scene, 256, seed=index)
        generator = torch.Generator().manual_seed(seed * 100 + index)
        if settings is None:
            # The concept phrase filled with the words, as the runtime fills it with tokens.
            words = backbone.concept_phrase.format(identity.describing_words())
            images = draw([build_prompt(request, subject=words) for request in requests], generator)
            row = EXPLICIT_WORDS
        else:
            mask, _ = compute_subject_mask(reference)
            result = adapt_concept(backbone, image_to_tensor(reference, backbone.resolution),
                                   mask_to_tensor(mask, backbone.resolution), replace(settings, seed=seed),
                                   loss_terms=build_loss_terms(settings, backbone))
            tokens = placeholder_tokens(result.vectors.shape[0])
            ids = ensure_tokens(backbone, tokens)
            with inject_concept(backbone, ids, result.vectors):
                images = draw([expand_prompt(text, backbone, tokens) for text in readable], generator)
            row = "adapted"
        predictions = recognition.predict(recognizer, images)
        agreement = [identity_agreement(got, identity) for got in predictions]
        for metric in (*IDENTITY_PARTS, "identity"):
            add(row, metric, [a[metric] for a in agreement])
        if settings is None:
            for metric, value in chance_agreement(predictions, identity, identities).items():
                add(CHANCE, metric, [value])
        with torch.no_grad():
            similarity = (recognizer.embed(recognition.to_tensor(images))
                          @ recognizer.embed(recognition.to_tensor([reference])).T).squeeze(-1)
        add(row, "identity_similarity", similarity.tolist())
        add(row, "attributes", [statistics.fmean([got["emotion"] == e, got["action"] == a,
                                                  got["composition"] == c, got["background"] == b])
                                for (e, a, c, b), got in zip(prompts, predictions)])
        # Asking for the reference's own background is not leakage.
        add(row, "leakage", [float(got["background"] == ref_scene.background)
                             for (_, _, _, b), got in zip(prompts, predictions) if b != ref_scene.background])
        add(row, "rigidity", [float(got["composition"] == "full body" and got["action"] == "standing")
                              for got in predictions])
        if clip:
            add(row, "clip_i", clip.clip_i(images, reference))
            add(row, "clip_t", clip.clip_t(images, readable))
        if dino:
            add(row, "dino", dino.dino(images, reference))
    return rows


METRICS = ("identity", *IDENTITY_PARTS, "identity_similarity", "attributes", "leakage", "rigidity",
           "clip_i", "clip_t", "dino")


def run(args) -> int:
    from seal_runtime.api.config import AdaptationSettings
    from stickerworld.identities import held_out_identities

    quick = args.quick
    count = getattr(args, "identities", None) or (2 if quick else 8)
    if count < 2:
        raise SystemExit("bench quality: --identities must be at least 2 (chance compares identities)")
    identities = spread_identities(held_out_identities(), count)
    prompts = PROMPTS[: 2 if quick else len(PROMPTS)]
    seeds = tuple(range(getattr(args, "seeds", None) or (2 if quick else 3)))
    sampling_steps = 4 if quick else 20
    model = getattr(args, "model", None)
    clip_path, dino_path = getattr(args, "clip", None), getattr(args, "dino", None)
    # The tiny model's small ops leave a second core half idle (2 threads: 1.8 cores busy), so
    # on a 2-core CPU two processes of 1 thread each finish the same work ~1.5x sooner.
    workers = getattr(args, "workers", None) or (1 if quick else min(2, os.cpu_count() or 1))

    started = time.perf_counter()
    pool = None
    if workers == 1:
        _load(model, clip_path, dino_path, None)
        model_id, profile = _model_facts()
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_load, initargs=(model, clip_path, dino_path, threads))
        model_id, profile = pool.submit(_model_facts).result()  # before the work is queued
    overrides = parse_overrides(getattr(args, "set", None) or [])
    # The model's tuned set, as the runtime resolves it, with the operator's --set changes.
    base = AdaptationSettings.from_dict(overrides).resolved(profile).check()
    if quick:
        base = replace(base, steps=4, batch_size=1)
    configs, same_as = without_repeats(configurations(base, ablations=getattr(args, "ablations", False)))
    if quick:
        configs = {k: v for k, v in configs.items() if k in ("runtime default", "TTF + SEAL")}
    rows = {**configs, EXPLICIT_WORDS: None}
    units = [(name, seed) for name in rows for seed in seeds]
    work = [(rows[name], seed, identities, prompts, sampling_steps) for name, seed in units]
    results = (_score(*unit) for unit in work) if pool is None else pool.map(_score, *zip(*work))
    per_row: dict[str, dict[str, list[float]]] = {}
    try:
        for (name, seed), scored in zip(units, results):
            for row, metrics in scored.items():
                target = per_row.setdefault(name if row == "adapted" else row, {})
                for metric, values in metrics.items():
                    target.setdefault(metric, []).extend(values)
            if seed == seeds[-1]:
                print(f"{name}: " + ", ".join(f"{m} {statistics.fmean(v):.3f}" for m, v in per_row[name].items()),
                      flush=True)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    order = [*configs, EXPLICIT_WORDS, CHANCE]
    table = {name: {metric: dict(zip(("mean", "ci95"), interval(per_row[name][metric])))
                    for metric in METRICS if metric in per_row[name]} for name in order}
    figures = {
        "model_id": model_id,
        "identities": [identity.key for identity in identities],
        "prompts": len(prompts),
        "seeds": len(seeds),
        "units_per_row": len(identities) * len(seeds),
        "adaptation_steps": base.steps,
        "sampling_steps": sampling_steps,
        "workers": workers,
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "overrides": overrides,
        "same_as_default": same_as,
        "ceiling_share": ceiling_share(table),
        "table": table,
    }
    print(markdown_table(table))
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def parse_overrides(pairs: list[str]) -> dict:
    """`--set key=value` pairs as adaptation settings: values read as JSON where they parse
    (numbers, true/false, lists), as text otherwise."""
    overrides = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        if not separator or not key:
            raise SystemExit(f"bench quality: --set wants key=value, got {pair!r}")
        try:
            overrides[key] = json.loads(text)
        except json.JSONDecodeError:
            overrides[key] = text
    return overrides


def ceiling_share(table: dict) -> dict[str, float]:
    """Each adapted row's identity as a share of the explicit-words ceiling, measured from chance
    (0: no better than a stranger's character; 1: as good as the words) and as a plain ratio."""
    ceiling, floor = table[EXPLICIT_WORDS]["identity"]["mean"], table[CHANCE]["identity"]["mean"]
    shares = {}
    for name, metrics in table.items():
        if name in (EXPLICIT_WORDS, CHANCE):
            continue
        value = metrics["identity"]["mean"]
        shares[name] = {"of_ceiling": round(value / ceiling, 3) if ceiling else float("nan"),
                        "above_chance": round((value - floor) / (ceiling - floor), 3) if ceiling > floor
                        else float("nan")}
    return shares


def _model_facts() -> tuple[str, str]:
    backbone = _LOADED["backbone"]
    return backbone.model_id, backbone.adaptation_profile


def markdown_table(table: dict) -> str:
    extra = [m for m in ("clip_i", "clip_t", "dino") if any(m in metrics for metrics in table.values())]
    columns = [m for m in METRICS if any(m in metrics for metrics in table.values())]
    titles = {"identity_similarity": "identity sim.", "attributes": "attribute acc."}
    lines = ["| row | " + " | ".join(titles.get(c, c.replace("_", "-").upper() if c in extra else c)
                                    for c in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for name, metrics in table.items():
        cells = []
        for metric in columns:
            if metric not in metrics:
                cells.append("–")
                continue
            mean, ci = metrics[metric]["mean"], metrics[metric]["ci95"]
            percent = metric in ("leakage", "rigidity")
            cells.append(f"{mean * 100:.0f} % ± {ci * 100:.0f}" if percent else f"{mean:.2f} ± {ci:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
