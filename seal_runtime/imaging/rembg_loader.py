"""rembg as the segmenter, from a local ONNX file only (isnet-anime, u2net, BiRefNet ...).

`runtime.rembg_model` names the file; `runtime.rembg_architecture` says which network it is
(`u2net`, `isnet`, `birefnet`, or `auto`: read from the file name), which decides rembg's
pre-processing (input size, normalisation). rembg's own session classes are used for that,
with their `download_models` replaced by the configured path: rembg is never asked to fetch
anything, and a missing file is a start-up error, not a download. (rembg's custom-model
sessions also insist the file lies under its home folder, `~/.rembg`; the operator's path is
taken as it is instead.)

The masker answers `mask(image) -> "L" image` (255 = subject) like `SamMasker`, and says
`source = "rembg"`, which `compute_subject_mask` records as the mask's source.

Optional: `pip install 'seal-sticker-bot[rembg]'` (rembg, onnxruntime).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from PIL import Image

from seal_runtime.api.config import RuntimeSettings

log = logging.getLogger(__name__)

# rembg session class per architecture: (module, class).
SESSIONS = {
    "u2net": ("rembg.sessions.u2net_custom", "U2netCustomSession"),  # 320 px, ImageNet normalisation
    "isnet": ("rembg.sessions.dis_custom", "DisCustomSession"),  # 1024 px (isnet-anime, isnet-general-use)
    "birefnet": ("rembg.sessions.birefnet_general", "BiRefNetSessionGeneral"),  # 1024 px, sigmoid output
}


class RembgMasker:
    source = "rembg"

    def __init__(self, session) -> None:
        self.session = session

    def mask(self, image: Image.Image) -> Image.Image | None:
        masks = self.session.predict(image.convert("RGB"))
        if not masks:
            return None
        mask = masks[0].convert("L")
        return mask if mask.size == image.size else mask.resize(image.size, Image.Resampling.BILINEAR)

    __call__ = mask


def architecture_of(path: str, configured: str = "auto") -> str:
    if configured != "auto":
        if configured not in SESSIONS:
            raise ValueError(
                f"runtime.rembg_architecture must be one of auto, {', '.join(SESSIONS)}; got {configured!r}"
            )
        return configured
    name = Path(path).name.lower()
    if "birefnet" in name:
        return "birefnet"
    if "isnet" in name or "dis" in name:
        return "isnet"
    return "u2net"


def load_rembg_masker(settings: RuntimeSettings) -> RembgMasker | None:
    if not settings.rembg_model:
        return None
    path = Path(settings.rembg_model).expanduser()
    if not path.is_file():
        raise RuntimeError(
            f"runtime.rembg_model: there is no file at {path} (a local .onnx model; nothing is downloaded)"
        )
    architecture = architecture_of(str(path), settings.rembg_architecture)
    module_name, class_name = SESSIONS[architecture]
    try:
        import onnxruntime

        base = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        raise RuntimeError(
            f"runtime.rembg_model is set but rembg is not installed: pip install 'seal-sticker-bot[rembg]' ({exc})"
        ) from exc

    class LocalFileSession(base):  # type: ignore[misc, valid-type]
        @classmethod
        def download_models(cls, *args, **kwargs):
            return str(path)  # the operator's file; never a download

    options = onnxruntime.SessionOptions()
    session = LocalFileSession(class_name, options, model_path=str(path), providers=_providers(onnxruntime))
    log.info("rembg loaded", extra={"model": str(path), "architecture": architecture})
    return RembgMasker(session)


def _providers(onnxruntime) -> list[str]:
    available = onnxruntime.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
