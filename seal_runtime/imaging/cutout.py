"""From a generated picture to a sticker: transparent background, trimmed, square.

Stickers are generated on a plain background (the prompt builder asks for one by
default) precisely so this step is easy: the near-uniform colour connected to the
border becomes transparent, with a soft 1–2 px edge. When the user asked for a
scene ("beach", "night sky") the background is not plain and is kept as it is:
`cut_out` only ever removes a near-uniform, border-connected background.

numpy and Pillow only, no torch: the same flood fill as `seal_runtime.imaging.subject_mask`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from seal_runtime.imaging.subject_mask import (
    alpha_mask,
    background_colours,
    flood_background,
)

WORK_SIDE = 1024  # larger pictures are analysed at this size, the mask scaled back up
PLAIN_MIN_BORDER_SHARE = 0.75  # the dominant colour must cover this much of the border...
PLAIN_MAX_TOLERANCE = 40.0  # ...with little spread (noise/gradient); see background_colours
MIN_REMOVED = 0.02  # removing less than this is not worth a cut-out
MIN_KEPT = 0.005  # keeping less than this means the "background" was the subject


def has_plain_background(image: Image.Image) -> bool:
    """Is the border one near-uniform colour (or already transparent)? Scenes are not."""
    rgba = image.convert("RGBA")
    if alpha_mask(rgba) is not None:
        return True
    colour = _dominant_border_colour(_work_rgb(rgba))
    return colour is not None


def cut_out(image: Image.Image, *, edge_px: float = 1.5) -> Image.Image:
    """RGBA with the plain, border-connected background made transparent and a soft edge
    about `edge_px` wide. Anything else comes back unchanged (as RGBA): a picture that is
    already transparent, a scene, or a cut that would remove nearly nothing or everything."""
    rgba = image.convert("RGBA")
    if alpha_mask(rgba) is not None:
        return rgba
    rgb = _work_rgb(rgba)
    colour = _dominant_border_colour(rgb)
    if colour is None:
        return rgba
    background = flood_background(rgb, [colour])
    removed = float(background.mean())
    if removed < MIN_REMOVED or removed > 1 - MIN_KEPT:
        return rgba
    hard = Image.fromarray((~background).astype(np.uint8) * 255, "L")
    if hard.size != rgba.size:
        hard = hard.resize(rgba.size, Image.Resampling.BILINEAR).point(lambda v: 255 if v >= 128 else 0)
    # A small blur of the hard mask: edge pixels fade over ~edge_px instead of a jagged step.
    soft = hard.filter(ImageFilter.GaussianBlur(edge_px / 2)) if edge_px > 0 else hard
    alpha = np.minimum(np.asarray(soft), np.asarray(rgba.getchannel("A")))
    out = rgba.copy()
    out.putalpha(Image.fromarray(alpha.astype(np.uint8), "L"))
    return out


def trim_and_pad(rgba: Image.Image, margin_fraction: float = 0.05, *, alpha_threshold: int = 8) -> Image.Image:
    """Crop to the visible subject and centre it on a transparent square with a margin of
    `margin_fraction` of the square's side on each edge."""
    rgba = rgba.convert("RGBA")
    visible = rgba.getchannel("A").point(lambda a: 255 if a > alpha_threshold else 0)
    bbox = visible.getbbox()
    subject = rgba.crop(bbox) if bbox else rgba
    side = max(subject.size)
    margin = round(side * margin_fraction / max(1e-6, 1 - 2 * margin_fraction)) if margin_fraction > 0 else 0
    canvas = Image.new("RGBA", (side + 2 * margin, side + 2 * margin), (0, 0, 0, 0))
    canvas.paste(subject, ((canvas.width - subject.width) // 2, (canvas.height - subject.height) // 2))
    return canvas


def prepare_sticker(image: Image.Image, margin_fraction: float = 0.05) -> Image.Image:
    """The whole step for one generated image: cut out and trim when the background is
    plain; a scene is kept whole (only made RGBA)."""
    if has_plain_background(image):
        return trim_and_pad(cut_out(image), margin_fraction)
    return image.convert("RGBA")


def _work_rgb(rgba: Image.Image) -> np.ndarray:
    rgb = rgba.convert("RGB")
    if max(rgb.size) > WORK_SIDE:
        rgb.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(rgb)


def _dominant_border_colour(rgb: np.ndarray):
    colours = background_colours(rgb, max_colours=1)
    if not colours:
        return None
    colour = colours[0]
    if colour.border_share < PLAIN_MIN_BORDER_SHARE or colour.tolerance > PLAIN_MAX_TOLERANCE:
        return None
    return colour
