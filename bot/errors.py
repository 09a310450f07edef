"""Errors a user can cause. Adapters show `user_message` verbatim and change nothing: it
is written in the user's language when the error is raised (bot/i18n.py)."""

from bot.i18n import _


class UserError(Exception):
    """Bad input from a chat user; the message is safe and friendly to show them."""

    def __init__(self, user_message: str, *, code: str = "bad_input") -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.code = code


class NoReferenceError(UserError):
    def __init__(self) -> None:
        super().__init__(
            _(
                "You have not saved a character yet. Send /setref with a picture of your character first "
                "(one clear picture, ideally on a plain background)."
            ),
            code="no_reference",
        )


class BusyError(UserError):
    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or _("The sticker oven is busy right now, please try again in a minute."), code="busy")


class RuntimeUnavailableError(Exception):
    """The SEAL runtime could not be reached or failed; the job is retried, the user is told."""
