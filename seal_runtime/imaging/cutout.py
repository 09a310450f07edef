"""From a generated picture to a sticker: transparent background, trimmed, square.

Stickers are generated on a plain background (the prompt builder asks for one by
default) precisely so this step is easy: the near-uniform colour connected to the
border becomes transparent, with a soft 1–2 px edge. When the user asked for a
scene ("beach", "night sky") the background is not plain and is kept as it is:
`cut_out` only ever removes a near-uniform, border-connected background.

The request says which it is (`JobRequest.background`): "plain" (asked for the plain
background: always cut out, with looser tests of "plain", since a close-up covers much
of the border and a small model's background is noisy), "scene" (never cut out), or
"auto" (decide from the picture alone). Specks the flood fill leaves in a noisy
background are dropped; the look (outline, shadow, frame) is `sticker_look`'s.

numpy and Pillow only, no torch: the same flood fill as `seal_runtime.imaging.subject_mask`.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
from PIL import Image, ImageFilter

from seal_runtime.api.protocol import BACKGROUNDS
from seal_runtime.imaging.sticker_look import StickerLook, dress_cutout, dress_scene
from seal_runtime.imaging.subject_mask import (
    BackgroundColour,
    alpha_mask,
    background_colours,
    fill_holes,
    flood_background,
    label_components,
)

log = logging.getLogger(__name__)

WORK_SIDE = 1024  # larger pictures are analysed at this size, the mask scaled back up
PLAIN_MIN_BORDER_SHARE = 0.75  # the dominant colour must cover this much of the border...
PLAIN_MAX_TOLERANCE = 40.0  # ...with little spread (noise/gradient); see background_colours
MIN_REMOVED = 0.02  # removing less than this is not worth a cut-out
MIN_KEPT = 0.005  # keeping less than this means the "background" was the subject
# When the plain background was asked for, the border may be mostly subject (a close-up
# touches three edges) and the model's background noisier: the dominant border colour need
# only cover this much of the border, and pixels this close to it count as background. On
# the builtin model the speckle of a white background reaches ~70 (RGB distance) while a
# sticker's bold outline and saturated colours are > 150 away; 40 left pale halos and specks.
ASKED_MIN_BORDER_SHARE = 0.3
ASKED_MIN_TOLERANCE = 75.0
# Kept pieces smaller than this share of the biggest are specks of background noise (0.1-2.6 %
# on the builtin model); an emotion mark drawn apart from the character is 7-15 % of it.
SPECK_SHARE = 0.03
MASK_CLEAR = 8  # a segmenter's alpha below this is background, above 255 minus it subject


def has_plain_background(image: Image.Image, *, asked: bool = False) -> bool:
    """Is the border one near-uniform colour (or already transparent)? Scenes are not.
    `asked`: the plain background was asked for, so the looser thresholds apply."""
    rgba = image.convert("RGBA")
    if alpha_mask(rgba) is not None:
        return True
    colour = _dominant_border_colour(_work_rgb(rgba), asked=asked)
    return colour is not None


def cut_out(image: Image.Image, *, edge_px: float = 1.5, background: str = "auto", masker=None) -> Image.Image:
    """RGBA with the plain, border-connected background made transparent and a soft edge
    about `edge_px` wide. Anything else comes back unchanged (as RGBA): a picture that is
    already transparent, a scene (asked for, or found with `background="auto"`), or a cut
    that would remove nearly nothing or everything. With a `masker` (the runtime's
    segmenter, `mask(image) -> L`) a plain background is cut along its mask instead, which
    is already soft; an implausible mask falls back to the flood fill."""
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {BACKGROUNDS}, got {background!r}")
    rgba = image.convert("RGBA")
    if background == "scene" or alpha_mask(rgba) is not None:
        return rgba
    if masker is not None and background == "plain":
        segmented = _segmented(rgba, masker)
        if segmented is not None:
            return segmented
    rgb = _work_rgb(rgba)
    colour = _dominant_border_colour(rgb, asked=background == "plain")
    if colour is None:
        return rgba
    subject = fill_holes(drop_specks(~flood_background(rgb, [colour])))
    kept = float(subject.mean())
    if kept > 1 - MIN_REMOVED or kept < MIN_KEPT:
        return rgba
    hard = Image.fromarray(subject.astype(np.uint8) * 255, "L")
    if hard.size != rgba.size:
        hard = hard.resize(rgba.size, Image.Resampling.BILINEAR).point(lambda v: 255 if v >= 128 else 0)
    # A small blur of the hard mask: edge pixels fade over ~edge_px instead of a jagged step.
    soft = hard.filter(ImageFilter.GaussianBlur(edge_px / 2)) if edge_px > 0 else hard
    alpha = np.minimum(np.asarray(soft), np.asarray(rgba.getchannel("A")))
    out = rgba.copy()
    out.putalpha(Image.fromarray(alpha.astype(np.uint8), "L"))
    return out


def _segmented(rgba: Image.Image, masker) -> Image.Image | None:
    try:
        mask = getattr(masker, "mask", masker)(rgba.convert("RGB"))
    except Exception:  # noqa: BLE001 - a segmenter is an improvement, never a reason to fail a job
        log.warning("segmenter failed on a sticker; using the flood fill", exc_info=True)
        return None
    if mask is None:
        return None
    alpha = np.asarray(mask.convert("L").resize(rgba.size, Image.Resampling.BILINEAR))
    # A network's mask is never exactly 0 or 255; a faint haze would become a faint outline
    # all over the canvas, so the nearly-clear and nearly-solid ends are made exact.
    alpha = np.where(alpha < MASK_CLEAR, 0, np.where(alpha > 255 - MASK_CLEAR, 255, alpha)).astype(np.uint8)
    kept = float((alpha >= 128).mean())
    if kept > 1 - MIN_REMOVED or kept < MIN_KEPT:
        return None
    out = rgba.copy()
    out.putalpha(Image.fromarray(np.minimum(alpha, np.asarray(rgba.getchannel("A"))), "L"))
    return out


def drop_specks(subject: np.ndarray, min_share: float = SPECK_SHARE) -> np.ndarray:
    """The pieces of a boolean mask at least `min_share` of its biggest piece."""
    if not subject.any():
        return subject
    labels = label_components(subject)
    sizes = np.bincount(labels[labels >= 0])
    keep = np.flatnonzero(sizes >= max(1.0, min_share * sizes.max()))
    return np.isin(labels, keep) & subject


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


def prepare_sticker(image: Image.Image, margin_fraction: float = 0.05, *, background: str = "auto",
                    look: StickerLook | None = None, masker=None) -> Image.Image:
    """The whole step for one generated image. A plain background is cut out; a scene is kept
    whole. With a `look`, the cut-out gets its outline and shadow (a scene its frame) and
    both become `look.side`-px squares; without one, the cut-out is only trimmed to a square
    with a `margin_fraction` margin and a scene is only made RGBA."""
    cut = cut_out(image, background=background, masker=masker)
    if alpha_mask(cut) is None:  # nothing was cut: a scene (asked for, or found)
        return dress_scene(cut, look) if look is not None else cut
    return dress_cutout(cut, look) if look is not None else trim_and_pad(cut, margin_fraction)


def _work_rgb(rgba: Image.Image) -> np.ndarray:
    rgb = rgba.convert("RGB")
    if max(rgb.size) > WORK_SIDE:
        rgb.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(rgb)


def _dominant_border_colour(rgb: np.ndarray, *, asked: bool) -> BackgroundColour | None:
    colours = background_colours(rgb, max_colours=1)
    if not colours:
        return None
    colour = colours[0]
    if asked:
        if colour.border_share < ASKED_MIN_BORDER_SHARE:
            return None
        return replace(colour, tolerance=max(colour.tolerance, ASKED_MIN_TOLERANCE))
    if colour.border_share < PLAIN_MIN_BORDER_SHARE or colour.tolerance > PLAIN_MAX_TOLERANCE:
        return None
    return colour
