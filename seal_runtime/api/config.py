"""Runtime settings: which model, where it runs, and how adaptation is done.

Plain dataclasses with no torch import, so the bot layer can carry them in
requests and hash them without loading the runtime.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Literal, cast, get_args

# The enumerated settings, as types (mypy checks the code) and as the tuples `check` holds a
# loaded value to (a TOML file or a request is not typed): one list each.
AdaptationMethod = Literal["textual_inversion", "lora"]
AdaptationProfile = Literal["auto", "builtin", "sd15"]
MergeRule = Literal["mean", "concat"]
AttentionLoss = Literal["none", "fastcomposer"]
Scheduler = Literal["ddim", "dpmpp_2m_karras", "unipc", "lcm"]
SceneFrame = Literal["rounded", "none"]
ADAPTATION_METHODS: tuple[str, ...] = get_args(AdaptationMethod)
SCHEDULERS: tuple[str, ...] = get_args(Scheduler)
MAX_ADAPTATION_STEPS = 5000

# Defaults per kind of model, for the fields an operator leaves unset (None). Which set
# applies: `adaptation.profile`, or with "auto" the model's own (its manifest for a
# pixel-space model, "sd15" for a Stable-Diffusion-class pipeline). Sources and reasoning:
# docs/adaptation_defaults.md.
ADAPTATION_PROFILES: dict[str, dict] = {
    # Tuned on the builtin model with `bench quality` (docs/seal.md): 100 steps are what
    # carries a character on it; a plateau stop is not needed at that length.
    "builtin": {
        "steps": 100,
        "learning_rate": 5e-3,
        "batch_size": 2,
        "lora_learning_rate": 1e-4,
        "plateau_every": 0,
        "plateau_min_steps": 0,
    },
    # Stable Diffusion 1.5-class: diffusers' textual-inversion example (lr 5e-4 scaled by the
    # effective batch of 4 -> 2e-3) and DreamBooth-LoRA example (lr 1e-4, 500 steps); single
    # image methods stop after a few hundred steps, so at most 500 here, ended earlier by
    # the plateau stop once a fixed evaluation loss has stopped improving.
    "sd15": {
        "steps": 500,
        "learning_rate": 2e-3,
        "batch_size": 4,
        "lora_learning_rate": 1e-4,
        "plateau_every": 50,
        "plateau_min_steps": 200,
    },
}
PROFILE_FIELDS = ("steps", "learning_rate", "batch_size", "lora_learning_rate", "plateau_every", "plateau_min_steps")


def _known_keys(cls, data, section: str) -> dict:
    if not isinstance(data, dict):
        raise TypeError(f"{section} settings must be an object")
    unknown = set(data) - set(cls.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown {section} settings: {', '.join(sorted(map(str, unknown)))}")
    return data


def _within(name: str, value, low, high, kind) -> None:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not numeric or (kind is int and not isinstance(value, int)) or not low <= value <= high:
        raise ValueError(
            f"{name} must be {'an integer' if kind is int else 'a number'} from {low:g} to {high:g}, got {value!r}"
        )


def _within_unless_none(name: str, value, low, high, kind) -> None:
    if value is not None:
        _within(name, value, low, high, kind)


def _one_of(name: str, value, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


@dataclass(frozen=True)
class AdaptationSettings:
    """How a reference becomes a learned concept. Every SEAL component is a switch.

    With `num_tokens=1`, `attention_loss="none"` and `masked_diffusion_loss=False`
    this is plain textual inversion.

    Fields left None take the model's defaults (ADAPTATION_PROFILES, `resolved`); what
    runs is always resolved. The token defaults are what carries a character best on the
    builtin model (`bench quality`, docs/seal.md): three concept tokens kept as three at
    generation, and no attention loss.
    A single vector cannot hold "round teal spotted" for its 3-layer text encoder (even the
    mean of those three words' embeddings draws the wrong colour), and the attention loss,
    at any weight tried, pulls the tokens toward "where" and away from "what".
    """

    method: AdaptationMethod = "textual_inversion"  # or "lora" (second TTF base)
    # Which ADAPTATION_PROFILES set fills the fields left None: auto (the model's) | builtin | sd15.
    profile: AdaptationProfile = "auto"
    steps: int | None = None  # at most this many (the plateau stop may end earlier)
    learning_rate: float | None = None
    batch_size: int | None = None
    seed: int = 0
    initializer_word: str = "character"
    # Split-merge token strategy: k tokens while learning; for generation merged into one
    # ("mean") or kept as k ("concat").
    num_tokens: int = 3
    merge_rule: MergeRule = "concat"
    # Semantic-guided spatial attention loss.
    attention_loss: AttentionLoss = "none"  # "none" | "fastcomposer" (docs/seal.md: why not Break-A-Scene's MSE)
    attention_loss_weight: float = 1.0
    # Structure-aware layer restriction: which cross-attention layers carry the loss.
    # Selectors (seal_runtime/layer_selection.py): "deep" drops the highest-resolution level.
    attention_layers: tuple[str, ...] = ("deep",)
    masked_diffusion_loss: bool = False
    # Extra views of the reference made once before the loop (seal_runtime/ttf/reference_views.py):
    # the masked subject rescaled, moved and pasted on plain backgrounds. 0: the reference alone.
    reference_views: int = 0
    # Second TTF base (method = "lora"): LoRA on the U-Net attention projections.
    lora_rank: int = 4
    lora_learning_rate: float | None = None
    # Plateau stop: every `plateau_every` steps (0: never) the concept's diffusion loss on a
    # fixed set of noise draws and timesteps is measured; after `plateau_min_steps`, the run
    # ends once that loss has not improved by `plateau_min_delta` (relative) for
    # `plateau_patience` measurements in a row.
    plateau_every: int | None = None
    plateau_min_steps: int | None = None
    plateau_patience: int = 3
    plateau_min_delta: float = 0.01

    def resolved(self, model_profile: str = "builtin") -> AdaptationSettings:
        """These settings with every None field taken from the profile that applies."""
        name = model_profile if self.profile == "auto" else self.profile
        if name not in ADAPTATION_PROFILES:
            raise ValueError(
                f"adaptation.profile must be auto or one of {', '.join(ADAPTATION_PROFILES)}, got {name!r}"
            )
        defaults = ADAPTATION_PROFILES[name]
        filled = {key: defaults[key] for key in PROFILE_FIELDS if getattr(self, key) is None}
        return replace(self, profile=cast(AdaptationProfile, name), **filled)

    def with_attention_loss(self) -> AdaptationSettings:
        """These settings with SEAL's attention loss on (FastComposer's form unless one is set)."""
        return self if self.attention_loss != "none" else replace(self, attention_loss="fastcomposer")

    def without_seal(self) -> AdaptationSettings:
        """The same TTF run with every SEAL component off (the benchmark's baseline)."""
        return replace(self, num_tokens=1, attention_loss="none", masked_diffusion_loss=False)

    def settings_hash(self, model_id: str, model_profile: str = "builtin") -> str:
        """Key of the embedding cache: a change to any setting or the model re-adapts. Taken
        over the resolved settings, so leaving a field to the model's default and writing the
        same value out give the same key."""
        payload = json.dumps({"model": model_id, **asdict(self.resolved(model_profile))}, sort_keys=True, default=list)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict) -> AdaptationSettings:
        """From a request's dict; an unknown key is a ValueError (a setting the runtime
        would silently ignore would still change the cache key)."""
        values = dict(_known_keys(cls, data, "adaptation"))
        if "attention_layers" in values:
            layers = values["attention_layers"]
            if not isinstance(layers, (list, tuple)) or not all(isinstance(x, str) for x in layers):
                raise ValueError("adaptation.attention_layers must be a list of layer selectors")
            values["attention_layers"] = tuple(layers)
        return cls(**values)

    def check(self, *, resolved: bool = True) -> AdaptationSettings:
        """Raise ValueError unless every field is within what one job may ask for. With
        `resolved=False`, fields left to the model's profile may still be None."""
        unresolved = [key for key in PROFILE_FIELDS if getattr(self, key) is None]
        if resolved and (unresolved or self.profile not in ADAPTATION_PROFILES):
            raise ValueError(f"adaptation settings are not resolved for a model: {', '.join(unresolved) or 'profile'}")
        _one_of("adaptation.profile", self.profile, get_args(AdaptationProfile))
        _one_of("adaptation.method", self.method, ADAPTATION_METHODS)
        _one_of("adaptation.merge_rule", self.merge_rule, get_args(MergeRule))
        _one_of("adaptation.attention_loss", self.attention_loss, get_args(AttentionLoss))
        _within_unless_none("adaptation.steps", self.steps, 1, MAX_ADAPTATION_STEPS, int)
        _within_unless_none("adaptation.batch_size", self.batch_size, 1, 16, int)
        _within("adaptation.num_tokens", self.num_tokens, 1, 8, int)
        _within("adaptation.lora_rank", self.lora_rank, 1, 128, int)
        _within("adaptation.reference_views", self.reference_views, 0, 32, int)
        _within("adaptation.seed", self.seed, 0, 2**63 - 1, int)
        _within_unless_none("adaptation.learning_rate", self.learning_rate, 1e-8, 1.0, float)
        _within_unless_none("adaptation.lora_learning_rate", self.lora_learning_rate, 1e-8, 1.0, float)
        _within("adaptation.attention_loss_weight", self.attention_loss_weight, 0.0, 100.0, float)
        _within_unless_none("adaptation.plateau_every", self.plateau_every, 0, MAX_ADAPTATION_STEPS, int)
        _within_unless_none("adaptation.plateau_min_steps", self.plateau_min_steps, 0, MAX_ADAPTATION_STEPS, int)
        _within("adaptation.plateau_patience", self.plateau_patience, 1, 100, int)
        _within("adaptation.plateau_min_delta", self.plateau_min_delta, 0.0, 1.0, float)
        if not isinstance(self.initializer_word, str) or not 0 < len(self.initializer_word) <= 64:
            raise ValueError("adaptation.initializer_word must be a word of 1 to 64 characters")
        if not 1 <= len(self.attention_layers) <= 64:
            raise ValueError("adaptation.attention_layers must name 1 to 64 selectors")
        return self


@dataclass(frozen=True)
class GenerationSettings:
    steps: int = 20
    guidance_scale: float = 5.0
    # Images per request; the first is sent, the others are "again" candidates.
    images_per_request: int = 1
    # Median filter (odd pixel size) on the raw output before cut-out. None: 3 for pixel-space
    # models (the small builtin model leaves per-pixel speckle that a flat-colour sticker does
    # not have), 0 (off) for latent models, whose VAE decoder already smooths.
    denoise_px: int | None = None
    # Sampler (diffusers schedulers, seal_runtime/schedulers.py): ddim | dpmpp_2m_karras | unipc |
    # lcm (few steps, meant for an LCM model or runtime.lcm_lora).
    scheduler: Scheduler = "ddim"
    # What the guidance steers away from. None: the model's own ("" for the builtin model, a
    # sticker negative prompt for SD-class models, see models/backbone.py).
    negative_prompt: str | None = None

    # The sticker look (seal_runtime/imaging/sticker_look.py): cut-outs get a white outline of
    # `outline_fraction` of the side and a soft drop shadow; scenes a rounded frame or "none".
    # Finished stickers are `sticker_side`-px squares, so the look is drawn at the size shown.
    outline: bool = True
    outline_fraction: float = 0.02
    shadow: bool = True
    scene_frame: SceneFrame = "rounded"  # "rounded" | "none"
    sticker_side: int = 512

    @classmethod
    def from_dict(cls, data: dict) -> GenerationSettings:
        return cls(**_known_keys(cls, data, "generation"))

    def check(self) -> GenerationSettings:
        _within("generation.steps", self.steps, 1, 200, int)
        _within("generation.guidance_scale", self.guidance_scale, 0.0, 50.0, float)
        _within("generation.images_per_request", self.images_per_request, 1, 16, int)
        if self.denoise_px is not None:
            _within("generation.denoise_px", self.denoise_px, 0, 15, int)
        _one_of("generation.scheduler", self.scheduler, SCHEDULERS)
        if self.negative_prompt is not None and (
            not isinstance(self.negative_prompt, str) or len(self.negative_prompt) > 1000
        ):
            raise ValueError("generation.negative_prompt must be text of at most 1000 characters")
        _within("generation.outline_fraction", self.outline_fraction, 0.0, 0.1, float)
        _one_of("generation.scene_frame", self.scene_frame, get_args(SceneFrame))
        _within("generation.sticker_side", self.sticker_side, 64, 1024, int)
        return self

    def denoise_size(self, pixel_space: bool) -> int:
        size = (3 if pixel_space else 0) if self.denoise_px is None else self.denoise_px
        return size if size >= 3 and size % 2 == 1 else 0


@dataclass(frozen=True)
class RuntimeSettings:
    host: str = "127.0.0.1"
    port: int = 8765
    model: str = "builtin"  # "builtin", a local diffusers folder, or a model id
    device: str = "auto"  # auto | cuda | mps | cpu
    dtype: str = "auto"  # auto (fp16 on GPU, fp32 on CPU) | float16 | bfloat16 | float32
    resolution: int | None = None  # None: the model's native size
    # How prompts name the learned concept, "{}" standing for its tokens, e.g.
    # "a {} character"; None: the model's own (bare tokens for SD, see DiffusionBackbone).
    concept_phrase: str | None = None
    shared_secret: str | None = field(default=None, repr=False)
    sam_checkpoint: str | None = None
    sam_model_type: str = "vit_b"
    # rembg from a local ONNX file (seal_runtime/imaging/rembg_loader.py); it wins over SAM.
    rembg_model: str | None = None
    rembg_architecture: str = "auto"  # auto (from the file name) | u2net | isnet | birefnet
    # Cut generated stickers out with that segmenter too (plain backgrounds only), not the flood fill.
    segment_stickers: bool = True
    allow_downloads: bool = False  # a model id may only be fetched when the operator allows it
    # Speed switches (README, "Running with real weights on a GPU"); every path is local.
    lcm_lora: str | None = None  # an LCM-LoRA (.safetensors or its folder), for generation only
    taesd: str | None = None  # a TAESD (AutoencoderTiny) folder: decodes instead of the VAE
    compile: bool = False  # torch.compile the generation U-Net (CUDA only), warmed up at start
    channels_last: bool = True  # channels-last memory layout for the U-Net and VAE on CUDA
