"""The one module that knows each platform's sticker format.

Every sticker is kept as an RGBA PNG master (see `storage.stickers`); these functions
turn a master into the bytes one platform accepts, and the `validate_*` functions
check bytes against the same specs (adapters' tests use them):

| target                 | format | size                                   | bytes      |
| ---------------------- | ------ | -------------------------------------- | ---------- |
| Telegram static        | WEBP   | one side exactly 512, the other ≤ 512  | ≤ 512 KB   |
| Discord message        | WEBP   | long side 512                          | ≤ 8 MB     |
| Discord server sticker | PNG    | 320 × 320                              | ≤ 512 KiB  |
| WhatsApp static        | WEBP   | 512 × 512                              | ≤ 100 KB   |
| WhatsApp tray icon     | PNG    | 96 × 96                                | ≤ 50 KB    |

Sources: Telegram Bot API (createNewStickerSet / InputSticker), Discord API
(Create Guild Sticker), WhatsApp stickers README. Where a doc says "KB" without
saying which, the stricter 1000-byte reading is used.

WebP is tried lossless first (flat stickers are tiny and exact that way), then lossy
with the quality stepped down until the file fits. `method=6` is never used: it costs
0.5–8 s for a few percent (MACHINE-NOTES). Pillow and numpy only.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from PIL import Image, ImageFilter

WEBP_METHOD = 4  # Pillow's default effort; 6 is far slower for little gain
WEBP_QUALITIES = (90, 80, 70, 55, 40, 25, 10)
PNG_COLOURS = 256
SMOOTHING_RADII = (1.0, 2.0, 4.0)


@dataclass(frozen=True)
class StickerSpec:
    name: str
    format: str  # Pillow format name: "WEBP" | "PNG"
    side: int  # the square's side, or the long side that must be exactly this
    square: bool  # True: exactly side × side; False: one side == side, the other ≤ side
    max_bytes: int
    extension: str
    mime: str

    def target_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The output size for a picture of `size`: square, or scaled so the long side is `side`."""
        if self.square:
            return self.side, self.side
        width, height = size
        if width >= height:
            return self.side, max(1, round(height * self.side / width))
        return max(1, round(width * self.side / height)), self.side


TELEGRAM_STATIC = StickerSpec("telegram_static", "WEBP", 512, False, 512_000, "webp", "image/webp")
DISCORD_MESSAGE = StickerSpec("discord_message", "WEBP", 512, False, 8_000_000, "webp", "image/webp")
DISCORD_SERVER_STICKER = StickerSpec("discord_server_sticker", "PNG", 320, True, 512 * 1024, "png", "image/png")
WHATSAPP_STATIC = StickerSpec("whatsapp_static", "WEBP", 512, True, 100_000, "webp", "image/webp")
WHATSAPP_TRAY = StickerSpec("whatsapp_tray", "PNG", 96, True, 50_000, "png", "image/png")

SPECS = {s.name: s for s in (TELEGRAM_STATIC, DISCORD_MESSAGE, DISCORD_SERVER_STICKER, WHATSAPP_STATIC,
                             WHATSAPP_TRAY)}


class StickerTooLargeError(ValueError):
    """Even the lowest quality does not fit the platform's byte limit."""


class InvalidStickerError(ValueError):
    def __init__(self, spec: StickerSpec, problems: list[str]) -> None:
        super().__init__(f"not a valid {spec.name} sticker: " + "; ".join(problems))
        self.problems = problems


# -- formatting ---------------------------------------------------------------------------------
def to_telegram_sticker(image: Image.Image | bytes) -> bytes:
    """Static Telegram sticker: WEBP, one side exactly 512 px, the other ≤ 512, ≤ 512 KB."""
    return format_sticker(image, TELEGRAM_STATIC)


def to_discord_message(image: Image.Image | bytes) -> bytes:
    """A WebP attachment Discord shows inline, long side 512 px."""
    return format_sticker(image, DISCORD_MESSAGE)


def to_discord_server_sticker(image: Image.Image | bytes) -> bytes:
    """A guild sticker: PNG, 320 × 320, ≤ 512 KiB (quantized to 256 colours if needed)."""
    return format_sticker(image, DISCORD_SERVER_STICKER)


def to_whatsapp(image: Image.Image | bytes) -> bytes:
    """A WhatsApp (or Signal) pack sticker: WEBP 512 × 512, ≤ 100 KB."""
    return format_sticker(image, WHATSAPP_STATIC)


def to_whatsapp_tray_icon(image: Image.Image | bytes) -> bytes:
    """The pack's tray icon: PNG 96 × 96, ≤ 50 KB."""
    return format_sticker(image, WHATSAPP_TRAY)


def format_sticker(image: Image.Image | bytes, spec: StickerSpec) -> bytes:
    """Resize `image` (RGBA master, or its PNG bytes) to `spec` and encode it within its byte cap."""
    rgba = fit_to_spec(_as_rgba(image), spec)
    if spec.format == "WEBP":
        return _encode_webp(rgba, spec.max_bytes)
    if spec.format == "PNG":
        return _encode_png(rgba, spec.max_bytes)
    raise ValueError(f"unknown format {spec.format}")


def fit_to_spec(rgba: Image.Image, spec: StickerSpec) -> Image.Image:
    """Scale (LANCZOS, up or down) to the spec's size; square targets are padded with
    transparency first, so the character is never stretched."""
    if spec.square and rgba.width != rgba.height:
        side = max(rgba.size)
        canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        canvas.paste(rgba, ((side - rgba.width) // 2, (side - rgba.height) // 2))
        rgba = canvas
    size = spec.target_size(rgba.size)
    if rgba.size != size:
        # LANCZOS gives the sharpest upscale of a 64-px generation; Pillow premultiplies
        # alpha when resizing RGBA, so transparent pixels do not bleed dark fringes.
        rgba = rgba.resize(size, Image.Resampling.LANCZOS)
    return rgba


def _encode_webp(rgba: Image.Image, max_bytes: int) -> bytes:
    data = _save(rgba, "WEBP", lossless=True, quality=80, method=WEBP_METHOD)
    if len(data) <= max_bytes:
        return data
    for quality in WEBP_QUALITIES:
        # The alpha plane is lossless by default; below 70 it is compressed too, or a
        # busy alpha alone can exceed a 100 KB cap.
        alpha_quality = 100 if quality >= 70 else quality
        data = _save(rgba, "WEBP", quality=quality, alpha_quality=alpha_quality, method=WEBP_METHOD)
        if len(data) <= max_bytes:
            return data
    for radius in SMOOTHING_RADII:
        # Last resort for pathological noise: smooth it, which WebP compresses far better.
        smoothed = rgba.filter(ImageFilter.GaussianBlur(radius))
        data = _save(smoothed, "WEBP", quality=WEBP_QUALITIES[-1], alpha_quality=0, method=WEBP_METHOD)
        if len(data) <= max_bytes:
            return data
    raise StickerTooLargeError(f"{len(data)} bytes at the lowest quality, limit {max_bytes}")


def _encode_png(rgba: Image.Image, max_bytes: int) -> bytes:
    data = _save(rgba, "PNG", optimize=True)
    if len(data) <= max_bytes:
        return data
    quantized = rgba.quantize(colors=PNG_COLOURS, method=Image.Quantize.FASTOCTREE)
    data = _save(quantized, "PNG", optimize=True)
    if len(data) <= max_bytes:
        return data
    raise StickerTooLargeError(f"{len(data)} bytes after quantizing, limit {max_bytes}")


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _as_rgba(image: Image.Image | bytes) -> Image.Image:
    if isinstance(image, (bytes, bytearray)):
        image = Image.open(io.BytesIO(image))
        image.load()
    return image.convert("RGBA")


# -- validation ---------------------------------------------------------------------------------
def sticker_problems(data: bytes, spec: StickerSpec) -> list[str]:
    """What is wrong with `data` as a `spec` sticker; an empty list means it is valid."""
    problems = []
    if len(data) > spec.max_bytes:
        problems.append(f"{len(data)} bytes, more than {spec.max_bytes}")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:  # noqa: BLE001 - any decode failure is the problem to report
        return [*problems, f"not a readable image ({type(exc).__name__})"]
    if image.format != spec.format:
        problems.append(f"format {image.format}, expected {spec.format}")
    if getattr(image, "is_animated", False):
        problems.append("animated, expected a static sticker")
    width, height = image.size
    if spec.square:
        if (width, height) != (spec.side, spec.side):
            problems.append(f"size {width}×{height}, expected {spec.side}×{spec.side}")
    elif max(width, height) != spec.side or min(width, height) < 1:
        problems.append(f"size {width}×{height}: one side must be exactly {spec.side}, the other at most {spec.side}")
    return problems


def validate_sticker(data: bytes, spec: StickerSpec) -> bytes:
    """`data` when valid, else InvalidStickerError listing the problems."""
    problems = sticker_problems(data, spec)
    if problems:
        raise InvalidStickerError(spec, problems)
    return data


def validate_telegram_sticker(data: bytes) -> list[str]:
    return sticker_problems(data, TELEGRAM_STATIC)


def validate_discord_message(data: bytes) -> list[str]:
    return sticker_problems(data, DISCORD_MESSAGE)


def validate_discord_server_sticker(data: bytes) -> list[str]:
    return sticker_problems(data, DISCORD_SERVER_STICKER)


def validate_whatsapp(data: bytes) -> list[str]:
    return sticker_problems(data, WHATSAPP_STATIC)


def validate_whatsapp_tray_icon(data: bytes) -> list[str]:
    return sticker_problems(data, WHATSAPP_TRAY)


# -- names --------------------------------------------------------------------------------------
TELEGRAM_SET_NAME_MAX = 64
TELEGRAM_TITLE_MAX = 64
DISCORD_NAME_MIN, DISCORD_NAME_MAX = 2, 30


def telegram_set_name(base: str, bot_username: str) -> str:
    """A valid Telegram sticker-set short name from any text: English letters, digits and
    single underscores, starting with a letter, ending in `_by_<bot username>`, ≤ 64 chars."""
    suffix = f"_by_{bot_username.lstrip('@')}"
    stem = re.sub(r"[^A-Za-z0-9]+", "_", base).strip("_")
    stem = re.sub(r"^[^A-Za-z]+", "", stem) or "stickers"
    stem = stem[: TELEGRAM_SET_NAME_MAX - len(suffix)].rstrip("_") or "s"
    return stem + suffix


def telegram_set_name_problems(name: str, bot_username: str) -> list[str]:
    problems = []
    if not 1 <= len(name) <= TELEGRAM_SET_NAME_MAX:
        problems.append(f"length {len(name)}, expected 1–{TELEGRAM_SET_NAME_MAX}")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        problems.append("must start with a letter and use only English letters, digits and underscores")
    if "__" in name:
        problems.append("must not contain consecutive underscores")
    if not name.lower().endswith(f"_by_{bot_username.lstrip('@').lower()}"):
        problems.append(f"must end in _by_{bot_username.lstrip('@')}")
    return problems


def telegram_title(text: str) -> str:
    return (text.strip() or "Stickers")[:TELEGRAM_TITLE_MAX]


def discord_sticker_name(text: str) -> str:
    """A Discord guild sticker name: 2–30 characters."""
    name = " ".join(text.split())[:DISCORD_NAME_MAX].strip()
    return name if len(name) >= DISCORD_NAME_MIN else (name + " sticker")[:DISCORD_NAME_MAX].strip()
