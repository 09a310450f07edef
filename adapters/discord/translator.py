"""Slash commands in each member's language: discord.py's `app_commands.Translator` over the
bot's gettext catalogs.

Every name and description given to the commands (marked with N_ in commands.py and
admin_commands.py) reaches discord.py as a `locale_str` (`auto_locale_strings`); when the
commands are synced, discord.py asks `translate` for each string in each Discord locale, and
sends what it gets as `name_localizations` / `description_localizations`. Discord then shows
"/misticker" with a Spanish description to a member whose client is in Spanish ("es-ES",
"es-419"), "/мойстикер" in Russian. The bot still knows each command by its English name.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot import i18n


class CatalogTranslator(app_commands.Translator):
    async def translate(self, string: app_commands.locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContextTypes) -> str | None:
        code = i18n.match_language(locale.value)
        if code is None or code == i18n.SOURCE_LANGUAGE:
            return None
        translated = i18n.translations(code).gettext(string.message)
        return translated if translated != string.message else None
