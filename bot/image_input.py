"""Validate and normalise a reference upload (/setref) before anything is stored.

Whatever the user sends, the result is one RGBA picture at most 1024 px on its long
side, or a `UserError` with a one-line message. Uploads are untrusted: the size in
bytes and in pixels is checked before any pixel is decoded (Image.open only reads
the header), only common picture formats are decoded at all, and any decoder
failure becomes a friendly message, never a traceback.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps

from bot.errors import UserError
from bot.i18n import N_, _

log = logging.getLogger(__name__)

MAX_SIDE = 1024
MAX_ASPECT = 10.0
# Formats people actually send from phones and desktops. Everything else Pillow can
# read (PSD, EPS, ICO, ...) is refused rather than fed to a less-exercised decoder.
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")  # JPEG also opens MPO
ANIMATED_FORMATS = {"GIF", "WEBP", "PNG"}

NOT_AN_IMAGE = N_("That doesn't look like a picture. Please send a PNG, JPEG, WebP or GIF image.")
DAMAGED = N_("That picture seems damaged or incomplete. Please send it again, or try another file.")


@dataclass
class ReferenceImage:
    """A validated reference: `image` is RGBA, long side ≤ 1024 px."""

    image: Image.Image
    notes: list[str] = field(default_factory=list)  # things to tell the user ("I used its first frame")
    original_size: tuple[int, int] = (0, 0)
    original_format: str | None = None
    _png: bytes | None = field(default=None, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    def png_bytes(self) -> bytes:
        """The normalised picture as PNG: what is stored and sent to the runtime."""
        if self._png is None:
            buffer = io.BytesIO()
            self.image.save(buffer, format="PNG")
            self._png = buffer.getvalue()
        return self._png

    def sha256(self) -> str:
        """Identity of the normalised picture (the embedding cache key)."""
        return hashlib.sha256(self.png_bytes()).hexdigest()


def load_reference_image(
    data: bytes, *, max_bytes: int = 10_000_000, max_pixels: int = 40_000_000, min_side: int = 32
) -> ReferenceImage:
    """Decode an upload into a `ReferenceImage`, or raise `UserError` saying what is wrong."""
    if not data:
        raise UserError(_("That file is empty. Please send a picture of your character."), code="empty_image")
    if len(data) > max_bytes:
        raise UserError(
            _(
                "That file is too big ({size} MB). Please send a picture under {limit} MB.",
                size=_mb(len(data)),
                limit=_mb(max_bytes),
            ),
            code="image_too_big",
        )
    with warnings.catch_warnings():
        # Pillow warns (then errors) on huge images; both mean "refuse", never "decode".
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _load(data, max_pixels=max_pixels, min_side=min_side)
        except UserError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UserError(_too_many_pixels_message(max_pixels), code="image_too_large") from None
        except Image.UnidentifiedImageError:
            raise UserError(_(NOT_AN_IMAGE), code="not_an_image") from None
        except (Exception, MemoryError) as exc:  # noqa: BLE001 - any decoder failure is a bad upload
            log.info("reference image rejected", extra={"error": f"{type(exc).__name__}: {exc}"[:200]})
            raise UserError(_(DAMAGED), code="damaged_image") from None


def _load(data: bytes, *, max_pixels: int, min_side: int) -> ReferenceImage:
    image: Image.Image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)  # reads the header only
    original_format = image.format
    width, height = image.size
    if width * height > max_pixels:
        raise UserError(_too_many_pixels_message(max_pixels, (width, height)), code="image_too_large")
    if min(width, height) < min_side:
        raise UserError(
            _(
                "That picture is too small ({width}×{height} px). Please send one at least {min_side} px on each side.",
                width=width,
                height=height,
                min_side=min_side,
            ),
            code="image_too_small",
        )
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise UserError(
            _(
                "That picture is very long and thin ({width}×{height} px). Please send one closer "
                "to square, with your character filling most of it.",
                width=width,
                height=height,
            ),
            code="image_aspect",
        )

    notes: list[str] = []
    # `is_animated` peeks at one more frame only; n_frames would walk them all.
    if original_format in ANIMATED_FORMATS and getattr(image, "is_animated", False):
        image.seek(0)
        notes.append(_("Your picture is animated: I used its first frame."))
    if original_format in ("JPEG", "MPO") and max(width, height) > 2 * MAX_SIDE:
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode a JPEG at a reduced scale: much faster
    image.load()
    if original_format in ANIMATED_FORMATS and notes:
        image = image.copy()  # detach frame 0 from the multi-frame file
    image = _exif_upright(image)
    if _high_bit_depth(image) and max(image.size) > MAX_SIDE:
        # Scale down in the picture's own 16/32-bit mode first: converting 40 MP to 8 bits at
        # full size took about 1 GB and seconds; at 1024 px it is a few MB.
        # (`thumbnail` would call `reduce`, which has no 16-bit mode: resize directly.)
        scale = MAX_SIDE / max(image.size)
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS
        )
    rgba = _to_rgba(image)
    if max(rgba.size) > MAX_SIDE:
        rgba.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    alpha = np.asarray(rgba.getchannel("A"))
    if alpha.max() == 0:
        raise UserError(
            _("That picture is completely transparent. Please send one where your character is visible."),
            code="image_transparent",
        )
    return ReferenceImage(rgba, notes, (width, height), original_format)


def _exif_upright(image: Image.Image) -> Image.Image:
    """Phones store photos sideways plus an EXIF orientation tag: apply it."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - broken EXIF: keep the pixels as stored
        return image


def _high_bit_depth(image: Image.Image) -> bool:
    return image.mode.startswith("I;16") or image.mode in ("I", "F")


def _to_rgba(image: Image.Image) -> Image.Image:
    if _high_bit_depth(image):
        return _high_bit_depth_gray(image).convert("RGBA")
    if image.mode == "CMYK":
        # Print files: the embedded profile gives the real colours; Pillow's formula is the fallback.
        converted = _icc_to_srgb(image)
        if converted is not None:
            return converted.convert("RGBA")
    # RGBA, RGB, P (its `transparency` becomes alpha), PA, LA, L, 1, YCbCr, RGBa, La, and CMYK, LAB
    # and HSV, which Pillow converts through RGB itself (pixel for pixel what RGB then RGBA gives).
    return image.convert("RGBA")


def _high_bit_depth_gray(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit grey (scanners, 16-bit PNG): scale to 8 bits instead of clipping,
    which would turn most of the picture white."""
    array = np.asarray(image).astype(np.float64)
    if image.mode == "F":
        peak = array.max() if array.size else 1.0
        array = array * 255.0 if peak <= 1.0 else array
    elif image.mode.startswith("I;16") or array.max(initial=0) > 255:
        array = array / 257.0
    return Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8), "L")


def _icc_to_srgb(image: Image.Image) -> Image.Image | None:
    """Convert CMYK through its embedded colour profile, when there is one."""
    profile = image.info.get("icc_profile")
    if not profile:
        return None
    try:
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        target = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(image, source, target, outputMode="RGB")
    except Exception:  # noqa: BLE001 - a broken profile: fall back to the plain conversion
        return None


def _too_many_pixels_message(max_pixels: int, size: tuple[int, int] | None = None) -> str:
    limit = f"{max_pixels / 1e6:.0f}"
    if size:
        return _(
            "That picture is too large ({width}×{height} px). Please send one under {limit} megapixels "
            "(a normal photo is fine).",
            width=size[0],
            height=size[1],
            limit=limit,
        )
    return _(
        "That picture is too large. Please send one under {limit} megapixels (a normal photo is fine).", limit=limit
    )


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f}"
