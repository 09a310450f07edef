"""Hypothesis strategies for what users type and upload; shared by the fuzz tests and
`stickerbot bench reliability` (which runs them with many more examples).

The image strategies add to tests/test_image_input.py's byte mutations of four seeds:
well-formed pictures in every mode and accepted format, forged headers that claim huge
sizes (decompression bombs with valid checksums), animations, odd EXIF orientations,
and mutations of those.
"""

from __future__ import annotations

import io
import struct
import zlib

from hypothesis import strategies as st
from PIL import Image

from bot.schema.vocabulary import ALL_VOCABULARIES

SPELLINGS = sorted({s for v in ALL_VOCABULARIES for value in v.values for s in value.spellings()})
SEPARATORS = (" ", "  ", "-", "_", ",", ", ", "\t", "\n", " / ", "!", "?", "…", "\u200b", "\u00a0")
ODD = ("😀", "🔥", "ä", "É", "ß", "ﬁ", "İ", "ǅ", "\u0301", "\u202e", "\x00", "\ufeff", "'", "''", "@bot", "/mysticker",
       "<script>", "../../etc/passwd", "%s%n", "{0}", "DROP TABLE jobs;", "BadWord", "bädwörd", "BAD-WORD")


def prompts() -> st.SearchStrategy[str]:
    vocabulary_sentence = st.lists(st.one_of(st.sampled_from(SPELLINGS), st.sampled_from(ODD),
                                             st.text(max_size=8)), max_size=30).flatmap(
        lambda words: st.lists(st.sampled_from(SEPARATORS), min_size=len(words), max_size=len(words)).map(
            lambda seps: "".join(w + s for w, s in zip(words, seps))))
    return st.one_of(
        st.text(max_size=300),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=260),
        vocabulary_sentence,
        st.sampled_from(SPELLINGS).map(lambda w: (w + " ") * 40),  # overlong
    )


# -- pictures -----------------------------------------------------------------------------------
MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F")
SAVE_AS = {"PNG": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"), "JPEG": ("L", "RGB", "CMYK"),
           "WEBP": ("RGB", "RGBA"), "GIF": ("L", "P"), "BMP": ("1", "L", "P", "RGB"),
           "TIFF": ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F")}


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@st.composite
def well_formed(draw) -> bytes:
    fmt = draw(st.sampled_from(sorted(SAVE_AS)))
    mode = draw(st.sampled_from(SAVE_AS[fmt]))
    width, height = draw(st.integers(1, 160)), draw(st.integers(1, 160))
    colour = draw(st.integers(0, 255))
    base = Image.new("RGB", (width, height), (colour, 255 - colour, colour // 2))
    image = base.convert(mode) if mode not in ("I;16", "I", "F") else base.convert("L").convert(mode)
    options = {}
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF") and draw(st.booleans()):
        exif = Image.Exif()
        exif[0x0112] = draw(st.integers(0, 300))  # orientation: 1-8 are valid, the rest is junk
        options["exif"] = exif.tobytes()
    return _encode(image, fmt, **options)


@st.composite
def animated(draw) -> bytes:
    fmt = draw(st.sampled_from(("GIF", "WEBP", "PNG")))
    frames = [Image.new("RGBA", (draw(st.integers(32, 64)),) * 2, (i * 40 % 256, 90, 200, 255))
              for i in range(draw(st.integers(2, 6)))]
    frames = [f.resize(frames[0].size) for f in frames]
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


@st.composite
def forged_headers(draw) -> bytes:
    """Headers that claim any size, with valid checksums, over a few bytes of pixels."""
    width = draw(st.integers(1, 2**31 - 1))
    height = draw(st.integers(1, 2**31 - 1))
    kind = draw(st.sampled_from(("png", "gif", "bmp")))
    if kind == "png":
        depth, colour = draw(st.sampled_from(((8, 2), (8, 6), (1, 0), (16, 2), (8, 3))))
        ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
        body = zlib.compress(b"\x00" * draw(st.integers(0, 4096)))
        return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")
    if kind == "gif":
        w, h = width % 65536, height % 65536
        return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0xF7, 0, 0) + bytes(768) + b"," +
                struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x08" + b"\x02\x4c\x01\x00" + b";")
    return (b"BM" + struct.pack("<IHHI", 54 + 16, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, width % 2**31,
            height % 2**31, 1, 24, 0, 16, 2835, 2835, 0, 0) + bytes(16))


@st.composite
def mutated(draw, inner: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(inner))
    for _ in range(draw(st.integers(0, 6))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[: max(1, cut)]) if draw(st.booleans()) else bytes(data)


def image_uploads() -> st.SearchStrategy[bytes]:
    structured = st.one_of(well_formed(), animated(), forged_headers())
    return st.one_of(structured, mutated(structured), st.binary(max_size=512))
