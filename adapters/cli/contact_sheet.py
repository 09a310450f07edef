"""A contact sheet of the demo: the reference, then each sticker with its prompt, on a
checkerboard so transparency shows (`out/contact_sheet.png`); or, with `backdrop`, on a
chat-coloured tile, where a sticker's white outline and shadow show (the pack sheet)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw

TILE = 256
LABEL = 28


def checkerboard(side: int, cell: int = 16) -> Image.Image:
    board = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    draw = ImageDraw.Draw(board)
    for y in range(0, side, cell):
        for x in range((y // cell) % 2 * cell, side, 2 * cell):
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=(225, 225, 225, 255))
    return board


def _tile(image: Image.Image, backdrop: tuple[int, int, int] | None = None) -> Image.Image:
    tile = checkerboard(TILE) if backdrop is None else Image.new("RGBA", (TILE, TILE), (*backdrop, 255))
    picture = image.convert("RGBA")
    picture.thumbnail((TILE, TILE), Image.Resampling.LANCZOS)
    tile.alpha_composite(picture, ((TILE - picture.width) // 2, (TILE - picture.height) // 2))
    return tile


def write_contact_sheet(path: Path, reference: bytes, stickers: list[tuple[str, Path]], *, columns: int | None = None,
                        backdrop: tuple[int, int, int] | None = None, prefix: str = "/mysticker ") -> Path:
    items = [("reference", Image.open(io.BytesIO(reference)))]
    items += [(f"{prefix}{prompt}", Image.open(file)) for prompt, file in stickers]
    columns = columns or len(items)
    rows = -(-len(items) // columns)
    sheet = Image.new("RGBA", (TILE * columns, (TILE + LABEL) * rows), (255, 255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for index, (label, image) in enumerate(items):
        x, y = index % columns * TILE, index // columns * (TILE + LABEL)
        sheet.alpha_composite(_tile(image, backdrop if index else None), (x, y))
        draw.text((x + 6, y + TILE + 8), label[:40], fill=(0, 0, 0, 255))
    sheet.convert("RGB").save(path)
    return path
