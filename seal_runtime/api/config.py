"""Runtime settings: which model, where it runs, and how adaptation is done.

Plain dataclasses with no torch import, so the bot layer can carry them in
requests and hash them without loading the runtime.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class AdaptationSettings:
    """How a reference becomes a learned concept. Every SEAL component is a switch.

    With `num_tokens=1`, `attention_loss="none"` and `masked_diffusion_loss=False`
    this is plain textual inversion.

    The defaults are what carries a character best on the builtin model (`bench quality`,
    docs/seal.md): three concept tokens kept as three at generation, and no attention loss.
    A single vector cannot hold "round teal spotted" for its 3-layer text encoder (even the
    mean of those three words' embeddings draws the wrong colour), and the attention loss,
    at any weight tried, pulls the tokens toward "where" and away from "what".
    """

    method: str = "textual_inversion"  # or "lora" (second TTF base)
    steps: int = 100
    learning_rate: float = 5e-3
    batch_size: int = 2
    seed: int = 0
    initializer_word: str = "character"
    # Split-merge token strategy: k tokens while learning; for generation merged into one
    # ("mean") or kept as k ("concat").
    num_tokens: int = 3
    merge_rule: str = "concat"
    # Semantic-guided spatial attention loss.
    attention_loss: str = "none"  # "none" | "fastcomposer" (docs/seal.md: why not Break-A-Scene's MSE)
    attention_loss_weight: float = 1.0
    # Structure-aware layer restriction: which cross-attention layers carry the loss.
    # Selectors (seal_runtime/layer_selection.py): "deep" drops the highest-resolution level.
    attention_layers: tuple[str, ...] = ("deep",)
    masked_diffusion_loss: bool = False
    # Second TTF base (method = "lora"): LoRA on the U-Net attention projections.
    lora_rank: int = 4
    lora_learning_rate: float = 1e-4

    def with_attention_loss(self) -> "AdaptationSettings":
        """These settings with SEAL's attention loss on (FastComposer's form unless one is set)."""
        return self if self.attention_loss != "none" else replace(self, attention_loss="fastcomposer")

    def without_seal(self) -> "AdaptationSettings":
        """The same TTF run with every SEAL component off (the benchmark's baseline)."""
        return replace(self, num_tokens=1, attention_loss="none", masked_diffusion_loss=False)

    def settings_hash(self, model_id: str) -> str:
        """Key of the embedding cache: a change to any setting or the model re-adapts."""
        payload = json.dumps({"model": model_id, **asdict(self)}, sort_keys=True, default=list)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict) -> "AdaptationSettings":
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        if "attention_layers" in values:
            values["attention_layers"] = tuple(values["attention_layers"])
        return cls(**values)


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
    # The sticker look (seal_runtime/imaging/sticker_look.py): cut-outs get a white outline of
    # `outline_fraction` of the side and a soft drop shadow; scenes a rounded frame or "none".
    # Finished stickers are `sticker_side`-px squares, so the look is drawn at the size shown.
    outline: bool = True
    outline_fraction: float = 0.02
    shadow: bool = True
    scene_frame: str = "rounded"  # "rounded" | "none"
    sticker_side: int = 512

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
