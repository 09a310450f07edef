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

from bot.i18n import _, _n

# Which stickers an export took (bot.exports.selection); the message says it in the user's language.
LATEST_PACK = "your latest /makepack"
NEWEST = "your newest stickers"


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
            "whatsapp": _("Open it with a WhatsApp sticker-maker app (e.g. “Sticker Maker”) to add the pack."),
            "signal": _(
                "Unzip it, then in Signal Desktop choose File → Create/upload sticker pack and drop "
                "in the numbered pictures (README.txt inside lists each one's emoji and the cover)."
            ),
            "png-zip": _("The PNG pictures of your stickers, with their emoji in manifest.json."),
        }[self.format]
        if self.source == LATEST_PACK:
            text = _n("{n} sticker from your latest /makepack.", "{n} stickers from your latest /makepack.", self.count)
        else:
            text = _n("{n} sticker from your newest stickers.", "{n} stickers from your newest stickers.", self.count)
        if self.left_out:
            text += " " + _n(
                "({n} more did not fit this format's limit.)",
                "({n} more did not fit this format's limit.)",
                self.left_out,
            )
        return f"{text} {what}"
