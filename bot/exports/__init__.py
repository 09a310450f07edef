"""Exports: a user's pack as a file other platforms' tools import.

| format     | file                | for                                                     |
| ---------- | ------------------- | ------------------------------------------------------- |
| `whatsapp` | `<name>.wastickers` | WhatsApp sticker-maker apps (a zip: title, author, tray) |
| `signal`   | `<name>-signal.zip` | Signal Desktop's sticker pack creator                   |
| `png-zip`  | `<name>-png.zip`    | anything: the 512 px PNG masters and a manifest          |

Each file is built by its own module from the same `ExportSticker`s and checked against
`bot.sticker_spec`'s rules before it is handed out. `build_export` picks the stickers
(`bot.exports.selection`) and the format.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExportSticker:
    """One sticker going into an export: its RGBA master and its emoji."""

    sticker_id: int
    png: bytes
    emoji: str
    description: str = ""


@dataclass(frozen=True)
class ExportFile:
    """A finished export: what to send (or write) and what it holds."""

    format: str
    name: str  # our own: "stickers-<user id>.wastickers"
    data: bytes
    mime: str
    count: int  # stickers inside
    left_out: int = 0  # stickers of the pack the format could not take (over its maximum)
    source: str = ""  # which stickers: "your latest /makepack" | "your newest stickers"

    def user_message(self) -> str:
        what = {
            "whatsapp": "Open it with a WhatsApp sticker-maker app (e.g. “Sticker Maker”) to add the pack.",
            "signal": "Unzip it, then in Signal Desktop choose File → Create/upload sticker pack and drop "
            "in the numbered pictures (README.txt inside lists each one's emoji and the cover).",
            "png-zip": "The PNG pictures of your stickers, with their emoji in manifest.json.",
        }[self.format]
        extra = f" ({self.left_out} more did not fit this format's limit.)" if self.left_out else ""
        return f"{self.count} stickers from {self.source}.{extra} {what}"
