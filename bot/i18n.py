"""The bot's languages: gettext catalogs, and the language the current reply is written in.

English is the source language. Every text a chat user reads is written in English in the
code and marked for the catalogs:

- `_("Queued at position {position}.", position=3)` translates at once, into the current
  language, then fills the `str.format` placeholders (the catalog test fails on a
  translation that drops, adds or renames one);
- `_n(singular, plural, n, ...)` for texts whose grammar follows a number (Russian has three
  plural forms);
- `N_("...")` only marks a text built before any language is known (a module constant, a
  command description); translate it with `_()` where it is used.

Catalogs: `bot/locales/<code>/LC_MESSAGES/messages.po`, compiled to `.mo` files that ship
with the package. `make catalogs` runs Babel: extract the marked texts from `bot/` and
`adapters/` into `bot/locales/messages.pot`, update every `.po` from it, compile.

The current language lives in a ContextVar: an adapter sets it for each update from the
user's choice (`activate`), the job worker for each job it reports on (`language()` as a
block). asyncio copies it into every task it creates, so two chats served at once never
see each other's language; `asyncio.to_thread` copies it too (`bot.image_work` does the
same for its threads).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext
import logging
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

DOMAIN = "messages"
LOCALE_DIR = Path(__file__).resolve().parent / "locales"
SOURCE_LANGUAGE = "en"
# Every shipped language, in its own name (what /language lists).
LANGUAGES: dict[str, str] = {"en": "English", "es": "Español", "ru": "Русский"}

_current: contextvars.ContextVar[str] = contextvars.ContextVar("language", default=SOURCE_LANGUAGE)


def match_language(code: str | None) -> str | None:
    """A platform's language tag (Telegram `language_code` "es", Discord `locale` "es-ES",
    "pt-BR", "es-419") as a shipped language code, or None when it is not one we speak."""
    if not code:
        return None
    primary = code.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LANGUAGES else None


def pick_language(*candidates: str | None) -> str:
    """The first candidate we speak (a user's choice, their platform's, the configured
    default), else the source language."""
    for candidate in candidates:
        chosen = match_language(candidate)
        if chosen is not None:
            return chosen
    return SOURCE_LANGUAGE


def language_list() -> str:
    """'en (English), es (Español), ru (Русский)'."""
    return ", ".join(f"{code} ({name})" for code, name in LANGUAGES.items())


@functools.cache
def translations(code: str) -> gettext.NullTranslations:
    """The compiled catalog of `code` (the source language: none, texts stay as written)."""
    if code == SOURCE_LANGUAGE or code not in LANGUAGES:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[code], fallback=True)


def current() -> str:
    return _current.get()


def activate(code: str | None) -> str:
    """Write the rest of this task's replies in `code` (unknown codes: the source language)."""
    chosen = match_language(code) or SOURCE_LANGUAGE
    _current.set(chosen)
    return chosen


@contextlib.contextmanager
def language(code: str | None) -> Iterator[str]:
    """Within the block, texts come out in `code`; the language before is restored after."""
    token = _current.set(match_language(code) or SOURCE_LANGUAGE)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def _fill(translated: str, source: str, params: dict) -> str:
    if not params:
        return translated
    try:
        return translated.format(**params)
    except (KeyError, IndexError, ValueError) as exc:  # a broken translation: never a crash, the source instead
        log.error(
            "translation has broken placeholders",
            extra={"language": current(), "text": source[:80], "error": repr(exc)},
        )
        return source.format(**params)


def _(message: str, **params) -> str:
    """`message` in the current language, its `{placeholders}` filled from `params`."""
    return _fill(translations(current()).gettext(message), message, params)


def _n(singular: str, plural: str, n: int, **params) -> str:
    """The form of `singular`/`plural` that goes with the number `n` (also given as `{n}`)."""
    translated = translations(current()).ngettext(singular, plural, n)
    return _fill(translated, singular if n == 1 else plural, {"n": n, **params})


def _p(context: str, message: str, **params) -> str:
    """`message` as meant in `context` (the same English word may translate differently)."""
    return _fill(translations(current()).pgettext(context, message), message, params)


def N_(message: str) -> str:
    """Marks `message` for the catalogs without translating it (translate it with `_()` when used)."""
    return message


def in_language(code: str, message: str, **params) -> str:
    """`message` in the given language, whatever the current one (Discord's command translator)."""
    with language(code):
        return _(message, **params)
