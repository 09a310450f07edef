"""The sticker look: a white outline and a soft drop shadow around a cut-out, a frame for a scene.

Telegram's sticker guidelines ask for a "white stroke and shadow"; WhatsApp recommends "a 8px
#FFFFFF stroke" at 512 px (about 1.6 % of the side). The outline is the cut-out's alpha
dilated by a disk (grey-level, so the anti-aliased edge stays anti-aliased), filled white;
the shadow is that silhouette blurred, darkened and moved down a little. A scene (a
requested background: beach, night sky…) is not cut out: it gets a rounded frame, or
nothing, as configured.

The look is drawn at `side` px (512: the size Telegram, WhatsApp and Signal show), so a
small model's 64-px output is first scaled up and its alpha edge made crisp again; an outline
drawn at 64 px and scaled up 8× would be a blurred, blocky band.

Pillow and numpy only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

FRAMES = ("rounded", "none")
EDGE_PX = 1.5  # width of the anti-aliased alpha ramp after scaling up
MARGIN_FRACTION = 0.03  # clear space to the canvas edge (WhatsApp asks 16 px of 512)
SUPERSAMPLE = 4  # the rounded frame's mask is drawn this much larger, then scaled down


@dataclass(frozen=True)
class StickerLook:
    """How a finished sticker looks. Built from `GenerationSettings` by `from_generation`."""

    side: int = 512
    outline: bool = True
    outline_fraction: float = 0.02  # outline width, as a share of `side` (≈ 10 px at 512)
    outline_colour: tuple[int, int, int] = (255, 255, 255)
    shadow: bool = True
    shadow_offset_fraction: float = 0.012  # how far down the shadow falls
    shadow_blur_fraction: float = 0.012  # its softness (Gaussian radius)
    shadow_opacity: float = 0.35
    scene_frame: str = "rounded"  # "rounded" | "none"
    frame_radius_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.scene_frame not in FRAMES:
            raise ValueError(f"scene_frame must be one of {FRAMES}, got {self.scene_frame!r}")
        if self.side < 16:
            raise ValueError(f"side must be at least 16 px, got {self.side}")

    @classmethod
    def from_generation(cls, generation) -> StickerLook:
        """The look a request's `GenerationSettings` ask for."""
        return cls(
            side=generation.sticker_side,
            outline=generation.outline,
            outline_fraction=generation.outline_fraction,
            shadow=generation.shadow,
            scene_frame=generation.scene_frame,
        )

    @property
    def outline_px(self) -> float:
        return self.outline_fraction * self.side if self.outline else 0.0

    @property
    def shadow_reach_px(self) -> float:
        """How far the shadow reaches past the outline (offset plus blur)."""
        if not self.shadow:
            return 0.0
        return (self.shadow_offset_fraction + 2 * self.shadow_blur_fraction) * self.side


# -- cut-outs ----------------------------------------------------------------------------------
def dress_cutout(rgba: Image.Image, look: StickerLook = StickerLook()) -> Image.Image:
    """A cut-out (RGBA with a transparent background) as a `look.side` square: the subject
    trimmed, centred, scaled to leave room for outline and shadow, then outlined and shadowed.
    The canvas border is fully transparent."""
    rgba = rgba.convert("RGBA")
    side = look.side
    pad = look.outline_px + look.shadow_reach_px + MARGIN_FRACTION * side
    subject = fit_subject(rgba, max(8, round(side - 2 * pad)))
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(subject, ((side - subject.width) // 2, (side - subject.height) // 2))
    return outline_and_shadow(canvas, look)


def outline_and_shadow(canvas: Image.Image, look: StickerLook) -> Image.Image:
    """Under `canvas` (RGBA): the white outline (its alpha dilated), and under that the shadow."""
    alpha = np.asarray(canvas.getchannel("A"))
    silhouette = dilate_disk(alpha, look.outline_px) if look.outline else alpha
    out = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    if look.shadow:
        out = Image.alpha_composite(out, drop_shadow(silhouette, look))
    if look.outline:
        stroke = Image.new("RGBA", canvas.size, (*look.outline_colour, 0))
        stroke.putalpha(Image.fromarray(silhouette, "L"))
        out = Image.alpha_composite(out, stroke)
    return Image.alpha_composite(out, canvas)


def fit_subject(rgba: Image.Image, box: int) -> Image.Image:
    """The visible part of `rgba`, scaled (LANCZOS) so its long side is `box`. Scaled up, its
    alpha ramp (then `scale` px wide) is steepened back to about EDGE_PX, so the edge is
    crisp and still anti-aliased."""
    bbox = rgba.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
    subject = rgba.crop(bbox) if bbox else rgba
    scale = box / max(subject.size)
    size = (max(1, round(subject.width * scale)), max(1, round(subject.height * scale)))
    if size != subject.size:
        subject = subject.resize(size, Image.Resampling.LANCZOS)
    if scale > 1.5:
        alpha = np.asarray(subject.getchannel("A")).astype(np.float32)
        steep = np.clip((alpha - 127.5) * (scale / EDGE_PX) + 127.5, 0, 255)
        subject.putalpha(Image.fromarray(steep.astype(np.uint8), "L"))
    return subject


def dilate_disk(alpha: np.ndarray, radius: float) -> np.ndarray:
    """Grey-level dilation of an 8-bit alpha by a flat disk of `radius` px: each pixel takes
    the largest alpha within that distance. Row maxima of every half-width are built once
    (H[k] = max over |dx| ≤ k), then each row offset dy takes H at the disk's half-width
    there: about 3·radius array maxima instead of π·radius² shifts."""
    reach = int(np.floor(radius))
    if reach < 1:
        return alpha.copy()
    h, w = alpha.shape
    padded = np.zeros((h + 2 * reach, w + 2 * reach), alpha.dtype)
    padded[reach : reach + h, reach : reach + w] = alpha
    rows = [padded]
    for k in range(1, reach + 1):
        wider = rows[-1].copy()
        np.maximum(wider[:, k:], padded[:, :-k], out=wider[:, k:])
        np.maximum(wider[:, :-k], padded[:, k:], out=wider[:, :-k])
        rows.append(wider)
    out = np.zeros_like(alpha)
    for dy in range(-reach, reach + 1):
        half = int(np.floor(np.sqrt(max(0.0, radius * radius - dy * dy))))
        np.maximum(out, rows[half][reach + dy : reach + dy + h, reach : reach + w], out=out)
    return out


def drop_shadow(silhouette: np.ndarray, look: StickerLook) -> Image.Image:
    """A soft dark copy of the silhouette, moved down by the look's offset."""
    side = silhouette.shape[0]
    shadow = Image.fromarray((silhouette.astype(np.float32) * look.shadow_opacity).astype(np.uint8), "L")
    shadow = ImageChops.offset(shadow, 0, round(look.shadow_offset_fraction * side))
    shadow = shadow.filter(ImageFilter.GaussianBlur(look.shadow_blur_fraction * side))
    layer = Image.new("RGBA", shadow.size, (0, 0, 0, 0))
    layer.putalpha(shadow)
    return layer


# -- scenes ------------------------------------------------------------------------------------
def dress_scene(image: Image.Image, look: StickerLook = StickerLook()) -> Image.Image:
    """A scene as a `look.side` square: centre-cropped and scaled; with `scene_frame =
    "rounded"`, inset with rounded, anti-aliased corners, a white outline and the shadow."""
    rgb = image.convert("RGB")
    side = look.side
    if look.scene_frame == "none":
        return _square(rgb, side).convert("RGBA")
    pad = look.outline_px + look.shadow_reach_px + MARGIN_FRACTION * side
    inner = max(8, round(side - 2 * pad))
    picture = _square(rgb, inner).convert("RGBA")
    radius = look.frame_radius_fraction * inner
    picture.putalpha(rounded_mask(inner, radius))
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    offset = (side - inner) // 2
    canvas.paste(picture, (offset, offset))
    return outline_and_shadow(canvas, look)


def rounded_mask(side: int, radius: float) -> Image.Image:
    """An anti-aliased rounded square (drawn SUPERSAMPLE× larger, then scaled down)."""
    return _rounded_mask(side, round(radius, 1)).copy()


@functools.lru_cache(maxsize=8)
def _rounded_mask(side: int, radius: float) -> Image.Image:  # every scene of one look has the same one
    big = Image.new("L", (side * SUPERSAMPLE, side * SUPERSAMPLE), 0)
    ImageDraw.Draw(big).rounded_rectangle([0, 0, big.width - 1, big.height - 1], radius=radius * SUPERSAMPLE, fill=255)
    return big.resize((side, side), Image.Resampling.LANCZOS)


def _square(rgb: Image.Image, side: int) -> Image.Image:
    """Centre-crop to a square, then scale to `side`."""
    short = min(rgb.size)
    left, top = (rgb.width - short) // 2, (rgb.height - short) // 2
    return rgb.crop((left, top, left + short, top + short)).resize((side, side), Image.Resampling.LANCZOS)
