"""The translation catalogs (bot/locales) are complete and sound.

Every text marked for translation in bot/ and adapters/ (extracted from the source here, with
Babel, the way `make catalogs` does) is translated in every shipped language, not fuzzy, with
exactly the placeholders of the English text and as many plural forms as the language has;
the shipped .mo files say what the .po files say. The checks run on a planted broken catalog
too, to show they fail when they should.
"""

from __future__ import annotations

import gettext
import io
import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot import i18n

ROOT = Path(__file__).resolve().parents[1]
KEYWORDS = {"_": None, "N_": None, "_n": (1, 2), "_p": ((1, "c"), 2)}
SHIPPED = [code for code in i18n.LANGUAGES if code != i18n.SOURCE_LANGUAGE]


def source_messages() -> set[str]:
    """The msgid of every marked text (a plural's singular), read from the source."""
    found: set[str] = set()
    for folder in ("bot", "adapters"):
        for _filename, _line, message, _comments, _context in extract_from_dir(
                ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS):
            found.add(message[0] if isinstance(message, tuple) else message)
    return found


def placeholders(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conv in string.Formatter().parse(text) if name is not None}


def catalog_problems(po_text: str, expected: set[str]) -> list[str]:
    """What is wrong with one language's catalog, one line per problem."""
    catalog = read_po(io.StringIO(po_text))
    problems = []
    present = {m.id[0] if isinstance(m.id, tuple) else m.id: m for m in catalog if m.id}
    problems += [f"missing: {msgid!r}" for msgid in sorted(expected - set(present))]
    for msgid, message in present.items():
        forms = list(message.string) if isinstance(message.string, tuple) else [message.string]
        if message.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        if not all(forms):
            problems.append(f"untranslated: {msgid!r}")
            continue
        wanted = placeholders(msgid)
        if isinstance(message.id, tuple):
            wanted |= placeholders(message.id[1])
            if len(forms) != catalog.num_plurals:
                problems.append(f"{len(forms)} plural forms instead of {catalog.num_plurals}: {msgid!r}")
        for form in forms:
            try:
                got = placeholders(form)
            except ValueError as exc:  # an unmatched brace
                problems.append(f"broken braces ({exc}): {form!r}")
                continue
            if got != wanted:
                problems.append(f"placeholders {sorted(got)} instead of {sorted(wanted)}: {form!r}")
    return problems


def po_path(code: str) -> Path:
    return ROOT / "bot" / "locales" / code / "LC_MESSAGES" / "messages.po"


@pytest.fixture(scope="module")
def expected() -> set[str]:
    return source_messages()


def test_the_source_marks_the_texts_users_read(expected):
    assert len(expected) > 250
    assert "Queued at position {position}: {what}." in expected  # bot/messages.py
    assert "Cancelled." in expected  # every adapter
    assert "I make stickers of your own character." in expected  # the help


@pytest.mark.parametrize("code", SHIPPED)
def test_every_text_is_translated_with_its_placeholders(code, expected):
    assert catalog_problems(po_path(code).read_text(encoding="utf-8"), expected) == []


@pytest.mark.parametrize("code", SHIPPED)
def test_the_shipped_mo_file_says_what_the_po_file_says(code):
    catalog = read_po(po_path(code).open("rb"))
    compiled = gettext.GNUTranslations(po_path(code).with_suffix(".mo").open("rb"))
    plural = gettext.c2py(catalog.plural_expr)  # the catalog's own formula
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            for n in (1, 2, 5, 21):
                index = plural(n)
                assert compiled.ngettext(*message.id, n) == message.string[index], message.id
        else:
            assert compiled.gettext(message.id) == message.string, "run `make catalogs`: the .mo is stale"


def test_the_checks_catch_a_missing_message_and_a_broken_placeholder(expected):
    """Plant both faults in a copy of the Spanish catalog: each is reported."""
    text = po_path("es").read_text(encoding="utf-8")
    text = text.replace('msgstr "En la cola, posición {position}: {what}."', 'msgstr "En la cola: {what}."')
    text = re.sub(r'msgid "Cancelled\.\"\nmsgstr "[^"]*"\n', "", text)
    text = text.replace('msgstr "Dibujando tu sticker ({step}/{total})…"', 'msgstr "Dibujando tu sticker ({step/{total})…"')
    problems = catalog_problems(text, expected)
    assert "missing: 'Cancelled.'" in problems
    assert any("placeholders ['what'] instead of ['position', 'what']" in p for p in problems)
    assert any(p.startswith("broken braces") for p in problems)


def test_a_broken_translation_at_run_time_falls_back_to_english(monkeypatch):
    class Broken(gettext.NullTranslations):
        def gettext(self, message):
            return "{nope} " + message

    monkeypatch.setattr(i18n, "translations", lambda code: Broken())
    with i18n.language("es"):
        assert i18n._("Queued at position {position}…", position=2) == "Queued at position 2…"


DISCORD_NAME = re.compile(r"^[-_'\w]{1,32}$")


@pytest.mark.parametrize("code", SHIPPED)
def test_discord_command_names_stay_valid_in_every_language(code):
    """Discord refuses the whole command sync for one bad localised name: lowercase, no spaces,
    1-32 letters, digits, - or _."""
    from discord import app_commands

    from adapters.discord.commands import COMMANDS

    translations = i18n.translations(code)
    checked = 0
    for command in COMMANDS:
        if isinstance(command, app_commands.ContextMenu):
            continue  # a message menu's name may have spaces and capitals
        for name in [command.name, *(p.display_name for p in command.parameters)]:
            translated = translations.gettext(name)
            assert DISCORD_NAME.match(translated) and translated == translated.lower(), (name, translated)
            checked += translated != name
    assert checked >= 15  # the names are translated at all
