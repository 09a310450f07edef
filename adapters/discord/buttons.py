"""The buttons under a sticker (Again / Add to server / Delete), the Cancel button under a
progress message, and the /forget confirmation.

They are `DynamicItem`s: everything a press needs (action, sticker id, owner, expiry) is
in the custom id, so they keep working across restarts without a stored view, and only
the member named in them may press them (the refusal is in the presser's language). Past
their expiry a press removes the buttons and says so, instead of Discord's "This
interaction failed".
"""

from __future__ import annotations

import logging
import time

import discord

from adapters.discord.context import deps, queue_and_track, send_ephemeral, use_language, user_ref
from adapters.discord.server_stickers import add_server_sticker
from bot import confirmations
from bot.errors import UserError
from bot.i18n import N_, _
from bot.messages import cancel_message

log = logging.getLogger(__name__)

AGAIN, ADD, DELETE = "ag", "add", "rm"
_LOOKS = {
    AGAIN: (N_("Again"), "🔁", discord.ButtonStyle.primary),
    ADD: (N_("Add to server"), "➕", discord.ButtonStyle.secondary),
    DELETE: (N_("Delete"), "🗑️", discord.ButtonStyle.danger),
}


def sticker_view(sticker_id: int, owner_id: int, timeout_s: float) -> discord.ui.View:
    until = int(time.time() + timeout_s)
    view = discord.ui.View(timeout=None)
    for action in (AGAIN, ADD, DELETE):
        view.add_item(StickerButton(action, sticker_id, owner_id, until))
    return view


class _OwnedButton:
    """Mixed into a button that only its owner may press; others get a private refusal."""

    owner_id: int
    refusal = N_("Only the member who asked for this can use these buttons.")

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        use_language(interaction)
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(_(self.refusal), ephemeral=True)
            return False
        return True


class StickerButton(_OwnedButton, discord.ui.DynamicItem[discord.ui.Button], template=r"stk:(?P<action>ag|add|rm):(?P<sticker>\d+):(?P<owner>\d+):(?P<until>\d+)"):
    refusal = N_("Only the member who asked for this sticker can use its buttons.")

    def __init__(self, action: str, sticker_id: int, owner_id: int, until: int) -> None:
        label, emoji, style = _LOOKS[action]
        super().__init__(discord.ui.Button(label=_(label), emoji=emoji, style=style,
                                           custom_id=f"stk:{action}:{sticker_id}:{owner_id}:{until}"))
        self.action, self.sticker_id, self.owner_id, self.until = action, sticker_id, owner_id, until

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match):
        return cls(match["action"], int(match["sticker"]), int(match["owner"]), int(match["until"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        if time.time() > self.until:
            await interaction.response.edit_message(view=None)
            await send_ephemeral(interaction, _("These buttons have expired. Use /again for another take, or "
                                                "/sticker-add to add your newest sticker to the server."))
            return
        d = deps(interaction)
        try:
            user_id = d.service.user_id(user_ref(interaction))  # refuses banned members
            sticker = d.service.stickers.own(user_id, self.sticker_id)  # only ever the presser's own
            if self.action == AGAIN:
                await self._again(interaction, user_id, sticker)
            elif self.action == ADD:
                await add_server_sticker(interaction, user_id, sticker)
            else:
                d.service.stickers.delete(user_id, sticker.id)
                await interaction.response.edit_message(content=_("🗑️ Sticker deleted."), attachments=[], view=None)
        except UserError as exc:
            await send_ephemeral(interaction, exc.user_message)

    async def _again(self, interaction: discord.Interaction, user_id: int, sticker) -> None:
        d = deps(interaction)
        words = d.service.words_of(user_id, sticker)
        await queue_and_track(interaction, lambda chat: d.service.request_sticker(user_ref(interaction), words, chat))


class ForgetButton(_OwnedButton, discord.ui.DynamicItem[discord.ui.Button], template=r"fg:(?P<answer>yes|no):(?P<owner>\d+):(?P<until>\d+)"):
    refusal = N_("Only the member who used /forget can confirm it.")

    def __init__(self, answer: str, owner_id: int, until: int) -> None:
        label, style = (_("Yes, delete everything"), discord.ButtonStyle.danger) if answer == "yes" else (
            _("Cancel"), discord.ButtonStyle.secondary)
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=f"fg:{answer}:{owner_id}:{until}"))
        self.answer, self.owner_id, self.until = answer, owner_id, until

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match):
        return cls(match["answer"], int(match["owner"]), int(match["until"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        if self.answer == "no":
            await interaction.response.edit_message(content=_("OK, nothing was deleted."), view=None)
            return
        if confirmations.expired(self.until, deps(interaction).clock()):
            await interaction.response.edit_message(content=_("This confirmation expired: use /forget again."),
                                                    view=None)
            return
        d = deps(interaction)
        counts = d.service.forget(user_ref(interaction))
        text = (_("Done: I deleted your character and everything I stored for you.") if counts
                else _("I had nothing stored for you."))
        await interaction.response.edit_message(
            content=text + " " + _("Stickers already added to a server stay there; its managers can remove them."),
            view=None)


class CancelButton(_OwnedButton, discord.ui.DynamicItem[discord.ui.Button],
                   template=r"cx:(?P<request>[0-9a-f-]{36}):(?P<owner>\d+)"):
    """Under a "Queued…"/progress response: takes back that request (a sticker or a pack)."""

    refusal = N_("Only the member who asked for this sticker can cancel it.")

    def __init__(self, request_id: str, owner_id: int) -> None:
        super().__init__(discord.ui.Button(label=_("Cancel"), emoji="✖️", style=discord.ButtonStyle.secondary,
                                           custom_id=f"cx:{request_id}:{owner_id}"))
        self.request_id, self.owner_id = request_id, owner_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match):
        return cls(match["request"], int(match["owner"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        d = deps(interaction)
        cancelled = d.service.cancel(user_ref(interaction), request_id=self.request_id)
        await d.sink.forget_progress(self.request_id)  # this press edits the message itself
        if cancelled:
            await interaction.response.edit_message(content=_("Cancelled."), view=None)
        else:  # it finished (or failed) meanwhile: only the button goes
            await interaction.response.edit_message(view=None)
            await send_ephemeral(interaction, cancel_message(cancelled))


def cancel_view(request_id: str, owner_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(request_id, owner_id))
    return view


def forget_view(owner_id: int, now: float) -> discord.ui.View:
    until = confirmations.deadline(now)
    view = discord.ui.View(timeout=None)
    view.add_item(ForgetButton("yes", owner_id, until))
    view.add_item(ForgetButton("no", owner_id, until))
    return view


