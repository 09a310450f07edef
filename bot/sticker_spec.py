"""The one module that knows each platform's sticker rules: file formats and pack rules.

Every sticker is kept as an RGBA PNG master (see `storage.stickers`); these functions
turn a master into the bytes one platform accepts, and the `validate_*` functions
check bytes against the same specs (adapters' tests and the exports use them):

| target                  | format      | size                                  | bytes       |
| ----------------------- | ----------- | ------------------------------------- | ----------- |
| Telegram static         | WEBP        | one side exactly 512, the other ≤ 512 | ≤ 512 KB    |
| Telegram set thumbnail  | WEBP (/PNG) | 100 × 100                             | ≤ 128 KB    |
| Discord message         | WEBP        | long side 512                         | ≤ 8 MB      |
| Discord server sticker  | PNG         | 320 × 320                             | ≤ 512 KiB   |
| WhatsApp static         | WEBP        | 512 × 512                             | ≤ 100 KB    |
| WhatsApp tray icon      | PNG         | 96 × 96                               | ≤ 50 KB     |
| Signal sticker / cover  | PNG (/WEBP) | 512 × 512                             | ≤ 300 KiB   |

and per pack (`PackRules`): Telegram 1–120 per set, 1–50 per createNewStickerSet, 1–20
emoji and 0–20 keywords (≤ 64 characters together) per sticker; WhatsApp 3–30 per pack,
0–3 emoji each, title and author ≤ 128 characters; Signal 1–200 per pack, one emoji each.

Sources, each cited again where its numbers are written down:
- Telegram Bot API, https://core.telegram.org/bots/api#createnewstickerset, #inputsticker,
  #setstickersetthumbnail, #addstickertoset, and https://core.telegram.org/stickers.
- Discord API, https://discord.com/developers/docs/resources/sticker#create-guild-sticker,
  and https://discord.com/developers/docs/resources/message#create-message (10 files).
- WhatsApp: github.com/WhatsApp/stickers, Android/README.md ("Sticker art and app
  requirements") and iOS/WAStickersThirdParty/Limits.swift.
- Signal: github.com/signalapp/Signal-Art-Creator, web/src/constants.ts (the sticker pack
  creator's own limits).
Where a doc says "KB" without saying which, the stricter 1000-byte reading is used; Signal's
creator states 300 * 1024 bytes itself.

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


# Telegram Bot API, InputSticker.sticker / createNewStickerSet: "must be up to 512 kilobytes in
# size, dimensions must not exceed 512px, and either width or height must be exactly 512px".
TELEGRAM_STATIC = StickerSpec("telegram_static", "WEBP", 512, False, 512_000, "webp", "image/webp")
# setStickerSetThumbnail: "A .WEBP or .PNG image with the thumbnail, must be up to 128 kilobytes
# in size and have a width and height of exactly 100px"; format "static" like the set's stickers.
TELEGRAM_THUMBNAIL = StickerSpec("telegram_thumbnail", "WEBP", 100, True, 128_000, "webp", "image/webp")
DISCORD_MESSAGE = StickerSpec("discord_message", "WEBP", 512, False, 8_000_000, "webp", "image/webp")
# Discord, Create Guild Sticker: "the sticker file to upload, must be a PNG, APNG, GIF, or
# Lottie JSON file, max 512 KiB"; 320 × 320 is the size Discord shows (its upload guidance).
DISCORD_SERVER_STICKER = StickerSpec("discord_server_sticker", "PNG", 320, True, 512 * 1024, "png", "image/png")
# WhatsApp Android README: "Stickers must be exactly 512 x 512 pixels", "must be in the WebP
# format", "Each sticker must be less than 100KB"; tray icon "96 x 96 pixels", "Max file size
# of 50KB" (Limits.swift: 100 * 1024 and 50 * 1024; the stricter 1000-byte reading is kept).
WHATSAPP_STATIC = StickerSpec("whatsapp_static", "WEBP", 512, True, 100_000, "webp", "image/webp")
WHATSAPP_TRAY = StickerSpec("whatsapp_tray", "PNG", 96, True, 50_000, "png", "image/png")
# Signal's sticker pack creator (Signal-Art-Creator constants.ts): STICKER_SIZE = 512,
# MAX_STICKER_BYTE_SIZE = 300 * 1024. PNG, WebP and APNG are accepted; PNG keeps every pixel.
# The pack's cover is an image of the same kind.
SIGNAL_STICKER = StickerSpec("signal_sticker", "PNG", 512, True, 300 * 1024, "png", "image/png")

SPECS = {
    s.name: s
    for s in (
        TELEGRAM_STATIC,
        TELEGRAM_THUMBNAIL,
        DISCORD_MESSAGE,
        DISCORD_SERVER_STICKER,
        WHATSAPP_STATIC,
        WHATSAPP_TRAY,
        SIGNAL_STICKER,
    )
}


@dataclass(frozen=True)
class PackRules:
    """What one platform allows in one pack (or set), besides each file's `StickerSpec`."""

    name: str
    sticker: StickerSpec
    icon: StickerSpec | None  # Telegram's set thumbnail, WhatsApp's tray icon, Signal's cover
    min_stickers: int
    max_stickers: int
    min_emoji: int  # per sticker
    max_emoji: int
    max_title_chars: int
    max_author_chars: int = 0  # 0: the platform has no author field
    max_per_call: int = 0  # stickers one creating call takes (0: no such call)
    max_keywords: int = 0  # per sticker
    max_keyword_chars: int = 0  # all of one sticker's keywords together

    def count_problems(self, count: int) -> list[str]:
        if not self.min_stickers <= count <= self.max_stickers:
            return [f"{count} stickers, expected {self.min_stickers}–{self.max_stickers}"]
        return []

    def emoji_problems(self, emoji: list[str] | tuple[str, ...]) -> list[str]:
        if not self.min_emoji <= len(emoji) <= self.max_emoji:
            return [f"{len(emoji)} emoji, expected {self.min_emoji}–{self.max_emoji}"]
        return []

    def keyword_problems(self, keywords: list[str] | tuple[str, ...]) -> list[str]:
        problems = []
        if len(keywords) > self.max_keywords:
            problems.append(f"{len(keywords)} keywords, at most {self.max_keywords}")
        if sum(len(k) for k in keywords) > self.max_keyword_chars:
            problems.append(
                f"keywords of {sum(len(k) for k in keywords)} characters, at most {self.max_keyword_chars} together"
            )
        return problems


# Telegram Bot API: createNewStickerSet "stickers: A JSON-serialized list of 1-50 initial
# stickers", title "1-64 characters"; a static set holds up to 120 stickers (addStickerToSet,
# and the @Stickers limit); InputSticker "emoji_list: List of 1-20 emoji", "keywords: List of
# 0-20 search keywords for the sticker with total length of up to 64 characters".
TELEGRAM_SET = PackRules(
    "telegram_set",
    TELEGRAM_STATIC,
    TELEGRAM_THUMBNAIL,
    min_stickers=1,
    max_stickers=120,
    min_emoji=1,
    max_emoji=20,
    max_title_chars=64,
    max_per_call=50,
    max_keywords=20,
    max_keyword_chars=64,
)
# WhatsApp Android README: "Each sticker pack must have a minimum of 3 stickers and a maximum of
# 30 stickers", "emojis (optional): add up to a maximum of three emoji for each sticker",
# `name` and `publisher` "128 characters max" (Limits.swift: MaxEmojisCount = 3, MaxCharLimit128).
WHATSAPP_PACK = PackRules(
    "whatsapp_pack",
    WHATSAPP_STATIC,
    WHATSAPP_TRAY,
    min_stickers=3,
    max_stickers=30,
    min_emoji=0,
    max_emoji=3,
    max_title_chars=128,
    max_author_chars=128,
)
# Signal-Art-Creator constants.ts: MIN_STICKERS = 1, MAX_STICKERS = 200; its emoji stage asks
# one emoji per sticker; title and author are typed into the creator (no limit stated there,
# so the WhatsApp-like 128 is used to keep them readable).
SIGNAL_PACK = PackRules(
    "signal_pack",
    SIGNAL_STICKER,
    SIGNAL_STICKER,
    min_stickers=1,
    max_stickers=200,
    min_emoji=1,
    max_emoji=1,
    max_title_chars=128,
    max_author_chars=128,
)

PACK_RULES = {r.name: r for r in (TELEGRAM_SET, WHATSAPP_PACK, SIGNAL_PACK)}

# Discord, Create Message: "files[n]": up to 10 attachments per message (a gallery is sent in
# messages of at most this many). Create Guild Sticker: name 2-30 characters, description
# empty or 2-100, tags 2-200; a server's sticker slots by boost tier 0/1/2/3: 5, 15, 30, 60.
DISCORD_FILES_PER_MESSAGE = 10
DISCORD_STICKER_DESCRIPTION_MAX = 100
DISCORD_STICKER_SLOTS = (5, 15, 30, 60)


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


def to_telegram_thumbnail(image: Image.Image | bytes) -> bytes:
    """A sticker set's thumbnail: WEBP 100 × 100, ≤ 128 KB."""
    return format_sticker(image, TELEGRAM_THUMBNAIL)


def to_signal(image: Image.Image | bytes) -> bytes:
    """A Signal pack sticker (or its cover): PNG 512 × 512, ≤ 300 KiB."""
    return format_sticker(image, SIGNAL_STICKER)


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


def validate_telegram_thumbnail(data: bytes) -> list[str]:
    return sticker_problems(data, TELEGRAM_THUMBNAIL)


def validate_signal(data: bytes) -> list[str]:
    return sticker_problems(data, SIGNAL_STICKER)


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


def pack_keywords(words, rules: PackRules = TELEGRAM_SET) -> list[str]:
    """Search keywords for one pack sticker: distinct, lower case, in order, as many as fit the
    platform's count and total-length limits (Telegram: 20 keywords, 64 characters together)."""
    chosen: list[str] = []
    used = 0
    for word in words:
        word = " ".join(str(word).lower().split())
        if not word or word in chosen or len(chosen) >= rules.max_keywords:
            continue
        if used + len(word) > rules.max_keyword_chars:
            continue  # a shorter word further on may still fit
        chosen.append(word)
        used += len(word)
    return chosen
