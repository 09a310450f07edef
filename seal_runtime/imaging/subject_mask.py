"""Where the character is in the reference picture: an "L" mask, 255 = subject.

SEAL's spatial attention loss pulls the concept token's cross-attention toward this
mask, so the reference's background is not learned as part of the character.

`compute_subject_mask` tries, in order:
  1. "alpha"        - the picture has real transparency: its alpha channel is the mask;
  2. "sam"/"rembg"  - the runtime's segmenter, when one is configured (segment-anything
                      from a checkpoint, or rembg from a local ONNX file);
  3. "flood_fill"   - the classical mask: the background is what is connected to the
                      border and close to the border's colour(s) (most stickers and
                      mascots sit on a plain background);
  4. "center_prior" - none of that worked: a centred ellipse, since references are
                      framed around their subject.

numpy, Pillow and scipy's connected-component labelling (no torch): the runtime computes
the mask of a reference once, and `seal_runtime.imaging.cutout` reuses the flood fill on
every generated image, so labelling must be fast (a C loop, not a Python or numpy one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

log = logging.getLogger(__name__)

WORK_SIDE = 256  # the classical mask is computed at this long side, then scaled up
OPAQUE = 250
MIN_SUBJECT = 0.01  # a mask covering less (or more than MAX_SUBJECT) is degenerate
MAX_SUBJECT = 0.97
MIN_BORDER_BACKGROUND = 0.4  # share of the border the background must cover to be trusted


# -- the public entry points ----------------------------------------------------------------
def compute_subject_mask(image: Image.Image, sam_predictor=None) -> tuple[Image.Image, str]:
    """The subject mask of a reference picture and where it came from:
    "alpha" | "sam" | "flood_fill" | "center_prior" (see the module docstring)."""
    rgba = image.convert("RGBA")
    alpha = alpha_mask(rgba)
    if alpha is not None:
        return alpha, "alpha"
    if sam_predictor is not None:
        mask = _sam_mask(rgba, sam_predictor)
        if mask is not None:
            return mask, getattr(sam_predictor, "source", "sam")  # "sam" | "rembg"
    return classical_mask(rgba)


def classical_mask(image: Image.Image) -> tuple[Image.Image, str]:
    """Alpha, else border flood fill, else the centred ellipse. Returns (L mask, source)."""
    rgba = image.convert("RGBA")
    alpha = alpha_mask(rgba)
    if alpha is not None:
        return alpha, "alpha"
    small = rgba.convert("RGB")
    if max(small.size) > WORK_SIDE:
        small.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BILINEAR)
    subject = flood_fill_subject(np.asarray(small))
    if subject is None:
        return center_prior(rgba.size), "center_prior"
    mask = Image.fromarray(subject.astype(np.uint8) * 255, "L")
    if mask.size != rgba.size:
        # Bilinear then threshold: a smooth outline at full size, still a hard 0/255 mask.
        mask = mask.resize(rgba.size, Image.Resampling.BILINEAR).point(lambda v: 255 if v >= 128 else 0)
    return mask, "flood_fill"


def alpha_mask(image: Image.Image) -> Image.Image | None:
    """The alpha channel, when the picture has real transparency (some see-through and
    some opaque pixels, not just a few anti-aliased ones); else None."""
    if image.mode != "RGBA":
        return None
    alpha = np.asarray(image.getchannel("A"))
    transparent = float((alpha < OPAQUE).mean())
    opaque = float((alpha >= OPAQUE).mean())
    if transparent >= MIN_SUBJECT and opaque >= MIN_SUBJECT:
        return image.getchannel("A")
    return None


def center_prior(size: tuple[int, int], fraction: float = 0.7) -> Image.Image:
    """A centred ellipse covering `fraction` of each side: the last-resort subject mask."""
    width, height = size
    mask = Image.new("L", size, 0)
    dx, dy = width * (1 - fraction) / 2, height * (1 - fraction) / 2
    ImageDraw.Draw(mask).ellipse([dx, dy, width - 1 - dx, height - 1 - dy], fill=255)
    return mask


# -- the flood fill ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BackgroundColour:
    rgb: np.ndarray  # float (3,)
    tolerance: float  # Euclidean RGB distance still counted as this colour
    border_share: float  # share of the border pixels that are this colour


def border_pixels(rgb: np.ndarray, width: int = 2) -> np.ndarray:
    """The outer `width`-pixel ring, as (N, 3) floats."""
    h, w = rgb.shape[:2]
    width = max(1, min(width, h // 2, w // 2))
    ring = np.zeros((h, w), bool)
    ring[:width, :] = ring[-width:, :] = True
    ring[:, :width] = ring[:, -width:] = True
    return rgb[ring].astype(np.float64)


def border_share(mask: np.ndarray) -> float:
    """Share of the outer ring's pixels that are set in a boolean mask."""
    return float(border_pixels(mask[..., None].astype(np.float64)).mean())


def background_colours(rgb: np.ndarray, *, min_share: float = 0.1, max_colours: int = 3,
                       min_tolerance: float = 24.0, max_tolerance: float = 60.0) -> list[BackgroundColour]:
    """The border's dominant colours: coarse colour bins holding at least `min_share` of the
    border, most common first, each with a tolerance from its own spread (noise, gradients)."""
    border = border_pixels(rgb)
    bins = (border // 32).astype(np.int64)
    keys = bins[:, 0] * 64 + bins[:, 1] * 8 + bins[:, 2]
    values, counts = np.unique(keys, return_counts=True)
    colours = []
    for index in np.argsort(-counts)[:max_colours]:
        share = counts[index] / len(border)
        if share < min_share:
            break
        centre = border[keys == values[index]].mean(axis=0)
        # Take in the neighbouring bins too: a colour near a bin edge splits across two.
        near = np.linalg.norm(border - centre, axis=1) <= max_tolerance
        members = border[near]
        centre = members.mean(axis=0)
        spread = np.sqrt(((members - centre) ** 2).sum(axis=1).mean())
        tolerance = float(np.clip(2.5 * spread, min_tolerance, max_tolerance))
        share = float((np.linalg.norm(border - centre, axis=1) <= tolerance).mean())
        colours.append(BackgroundColour(centre, tolerance, share))
    return colours


def background_like(rgb: np.ndarray, colours: list[BackgroundColour]) -> np.ndarray:
    """Pixels within tolerance of any of the background colours."""
    pixels = rgb.astype(np.float64)
    close = np.zeros(rgb.shape[:2], bool)
    for colour in colours:
        close |= np.linalg.norm(pixels - colour.rgb, axis=2) <= colour.tolerance
    return close


def border_connected(candidate: np.ndarray) -> np.ndarray:
    """The `candidate` pixels 4-connected to the image border through other candidates."""
    labels = label_components(candidate)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    edge = np.unique(edge[edge >= 0])
    return np.isin(labels, edge) & candidate


def flood_background(rgb: np.ndarray, colours: list[BackgroundColour] | None = None) -> np.ndarray:
    """Boolean background mask: border-connected pixels close to the border's colours."""
    colours = background_colours(rgb) if colours is None else colours
    if not colours:
        return np.zeros(rgb.shape[:2], bool)
    return border_connected(background_like(rgb, colours))


def flood_fill_subject(rgb: np.ndarray) -> np.ndarray | None:
    """The subject as a boolean mask: not background, the largest connected piece, holes
    filled. None when no trustworthy answer (busy border, nothing or everything found)."""
    colours = background_colours(rgb)
    if not colours:
        return None
    background = flood_background(rgb, colours)
    if border_share(background) < MIN_BORDER_BACKGROUND:
        return None  # most of the border is not background: the flood fill has nothing to stand on
    subject = largest_component(~background)
    if subject is None:
        return None
    subject = fill_holes(subject)
    share = float(subject.mean())
    if not MIN_SUBJECT <= share <= MAX_SUBJECT:
        return None
    return subject


def largest_component(mask: np.ndarray) -> np.ndarray | None:
    labels = label_components(mask)
    if not mask.any():
        return None
    counts = np.bincount(labels[labels >= 0])
    return labels == int(np.argmax(counts))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Add the enclosed gaps: non-mask pixels that cannot reach the border."""
    return mask | ~border_connected(~mask)


# 4-connectivity: diagonal neighbours are not connected (a one-pixel diagonal gap in an
# outline does not let the background flood into the character).
FOUR_CONNECTED = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def label_components(mask: np.ndarray) -> np.ndarray:
    """4-connected component labels, -1 outside `mask` (scipy.ndimage.label: one pass in C;
    the numpy pointer-jumping it replaces took 0.2-0.7 s on a 512 px sticker with thin lines)."""
    from scipy import ndimage

    labels, _ = ndimage.label(mask, structure=FOUR_CONNECTED)
    return labels.astype(np.int64) - 1


# -- SAM --------------------------------------------------------------------------------------
def _sam_mask(image: Image.Image, sam_predictor) -> Image.Image | None:
    """Ask the runtime's masker (`seal_runtime.imaging.sam_loader.SamMasker`, or any callable taking
    a PIL image) for a mask; a failure or an implausible mask falls through to classical."""
    try:
        masker = getattr(sam_predictor, "mask", sam_predictor)
        mask = masker(image.convert("RGB"))
    except Exception:
        log.warning("SAM mask failed; using the classical mask", exc_info=True)
        return None
    if mask is None:
        return None
    mask = mask.convert("L")
    if mask.size != image.size:
        mask = mask.resize(image.size, Image.Resampling.BILINEAR)
    share = float((np.asarray(mask) >= 128).mean())
    if not MIN_SUBJECT <= share <= MAX_SUBJECT:
        return None
    return mask
